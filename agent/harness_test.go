//go:build unix

package agent

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"google.golang.org/grpc"

	"github.com/logsift/logsift/agent/config"
	"github.com/logsift/logsift/pkg/chunk"
	"github.com/logsift/logsift/pkg/ingest"
	"github.com/logsift/logsift/pkg/store"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// receiver is the real logsift receive path: the store behind the chunk
// service on loopback TCP. It can be stopped and started on the same
// directory and address.
type receiver struct {
	t     *testing.T
	dir   string
	addr  string
	mu    sync.Mutex
	store *store.Store
	grpc  *grpc.Server
}

func startReceiver(t *testing.T, dir string) *receiver {
	r := &receiver{t: t, dir: dir, addr: "127.0.0.1:0"}
	r.start()
	t.Cleanup(r.stop)
	return r
}

func (r *receiver) start() {
	r.t.Helper()
	st, err := store.Open(r.dir, store.Options{Logger: quiet()})
	if err != nil {
		r.t.Fatal(err)
	}
	svc := ingest.NewChunkService(st, ingest.ChunkConfig{Metrics: metrics.NewSet(), Logger: quiet()})
	g := grpc.NewServer(svc.ServerOptions()...)
	svc.Register(g)
	var ln net.Listener
	for i := 0; ; i++ {
		// The port of a stopped server can take a moment to be free.
		if ln, err = net.Listen("tcp", r.addr); err == nil || i == 50 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		r.t.Fatal(err)
	}
	r.addr = ln.Addr().String()
	go func() { _ = g.Serve(ln) }()
	r.mu.Lock()
	r.store, r.grpc = st, g
	r.mu.Unlock()
}

func (r *receiver) stop() {
	r.mu.Lock()
	g, st := r.grpc, r.store
	r.grpc, r.store = nil, nil
	r.mu.Unlock()
	if g == nil {
		return
	}
	g.Stop()
	_ = st.Close(context.Background())
}

// counts returns how many times each stored line of the tenant occurs.
func (r *receiver) counts(tenantID string) map[string]int {
	r.mu.Lock()
	st := r.store
	r.mu.Unlock()
	out := map[string]int{}
	if st == nil {
		return out
	}
	var bb chunk.BlockBuffer
	for _, sd := range st.Select(tenantID, nil, 0, 1<<62) {
		for _, ref := range sd.Chunks {
			c, _, err := st.ReadChunk(ref, nil)
			if err != nil {
				r.t.Error(err)
				return out
			}
			for i := range c.Meta().Blocks {
				ents, err := c.ReadBlock(i, &bb)
				if err != nil {
					r.t.Error(err)
					return out
				}
				for _, e := range ents {
					out[string(e.Line)]++
				}
			}
		}
		for _, e := range sd.Head {
			out[string(e.Line)]++
		}
	}
	return out
}

// writer appends numbered lines to a log file at a steady rate; chaos
// operations take its lock to act between two lines, as logrotate does
// between two writes of a daemon.
type writer struct {
	path    string
	mu      sync.Mutex
	f       *os.File
	n       int // lines written
	stopped atomic.Bool
}

func (w *writer) line(i int) string {
	return fmt.Sprintf("seq=%07d %s", i, strings.Repeat("x", i%50))
}

func (w *writer) writeOne(t *testing.T) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		f, err := os.OpenFile(w.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			t.Error(err)
			return
		}
		w.f = f
	}
	if _, err := w.f.WriteString(w.line(w.n) + "\n"); err != nil {
		t.Error(err)
		return
	}
	w.n++
}

func (w *writer) run(t *testing.T, perTick int, tick time.Duration) {
	for !w.stopped.Load() {
		for range perTick {
			w.writeOne(t)
		}
		time.Sleep(tick)
	}
}

func (w *writer) written() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.n
}

// runAgent runs an agent until the returned stop is called.
func runAgent(t *testing.T, cfg *config.Config) (stop func()) {
	t.Helper()
	a, err := New(cfg, quiet())
	if err != nil {
		t.Fatal(err)
	}
	a.ShutdownTimeout = 3 * time.Second
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	return func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}

func harnessConfig(dir, addr string) *config.Config {
	cfg := config.Default()
	cfg.DataDir = filepath.Join(dir, "agent")
	cfg.Output.URL = addr
	cfg.Output.Tenant = "t1"
	cfg.Output.MinBackoff = 20 * time.Millisecond
	cfg.Output.MaxBackoff = 200 * time.Millisecond
	cfg.Files = []config.FileGroup{{Paths: []string{filepath.Join(dir, "logs", "*.log")}, Labels: map[string]string{"job": "harness"}}}
	cfg.Tail.PollInterval = 20 * time.Millisecond
	cfg.Tail.RescanInterval = 100 * time.Millisecond
	cfg.Tail.DrainTimeout = 300 * time.Millisecond
	cfg.Chunks.MaxAge = 100 * time.Millisecond
	cfg.Chunks.TargetBytes = 64 << 10
	cfg.Metrics.ListenAddress = ""
	return &cfg
}

// waitStored waits until every written line is stored, then checks that
// each is stored exactly once.
func waitStored(t *testing.T, rcv *receiver, w *writer, timeout time.Duration) {
	t.Helper()
	waitStoredN(t, rcv, w, w.written(), timeout)
}

// waitStoredN is waitStored for the first n lines, for callers holding the
// writer's lock.
func waitStoredN(t *testing.T, rcv *receiver, w *writer, n int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var counts map[string]int
	for {
		counts = rcv.counts("t1")
		missing := 0
		for i := range n {
			if counts[w.line(i)] == 0 {
				missing++
			}
		}
		if missing == 0 {
			break
		}
		if time.Now().After(deadline) {
			var ex []string
			for i := 0; i < n && len(ex) < 10; i++ {
				if counts[w.line(i)] == 0 {
					ex = append(ex, fmt.Sprint(i))
				}
			}
			t.Fatalf("%d of %d lines never stored, e.g. seq %s", missing, n, strings.Join(ex, " "))
		}
		time.Sleep(50 * time.Millisecond)
	}
	dups, extra := 0, 0
	for line, c := range counts {
		if c > 1 {
			dups++
			if dups < 5 {
				t.Errorf("stored %d times: %q", c, line)
			}
		}
		if !strings.HasPrefix(line, "seq=") {
			extra++
		}
	}
	if dups > 0 || extra > 0 || len(counts) != n {
		t.Fatalf("%d lines stored more than once, %d foreign, %d distinct for %d written", dups, extra, len(counts), n)
	}
}

// TestRotationHarness writes numbered lines at a steady rate while the
// file is rotated by rename (with late writes to the renamed file), by
// copytruncate, truncated, deleted and recreated, while the agent and the
// server restart; every line must be stored exactly once.
func TestRotationHarness(t *testing.T) {
	dir := t.TempDir()
	logs := filepath.Join(dir, "logs")
	if err := os.MkdirAll(logs, 0o755); err != nil {
		t.Fatal(err)
	}
	rcv := startReceiver(t, filepath.Join(dir, "server"))
	cfg := harnessConfig(dir, rcv.addr)
	stopAgent := runAgent(t, cfg)

	w := &writer{path: filepath.Join(logs, "app.log")}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		w.run(t, 5, time.Millisecond)
	}()
	pause := func() { time.Sleep(250 * time.Millisecond) }
	rounds := 2
	if testing.Short() {
		rounds = 1
	}
	for round := range rounds {
		pause()
		// Rename rotation; the daemon writes a few more lines to the old
		// descriptor before it reopens.
		w.mu.Lock()
		if err := os.Rename(w.path, fmt.Sprintf("%s.%d", w.path, round)); err != nil {
			t.Fatal(err)
		}
		for range 20 {
			w.f.WriteString(w.line(w.n) + "\n")
			w.n++
		}
		w.f.Close()
		w.f = nil
		w.mu.Unlock()
		pause()

		// copytruncate: copy, then truncate, between two writes.
		w.mu.Lock()
		b, err := os.ReadFile(w.path)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(fmt.Sprintf("%s.ct%d", w.path, round), b, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(w.path, 0); err != nil {
			t.Fatal(err)
		}
		w.mu.Unlock()
		pause()

		// Plain truncation drops what was not read yet by definition, so
		// it waits until everything so far is stored.
		w.mu.Lock()
		waitStoredN(t, rcv, w, w.n, 20*time.Second)
		if err := os.Truncate(w.path, 0); err != nil {
			t.Fatal(err)
		}
		w.mu.Unlock()
		pause()

		// Delete and recreate: the agent drains the deleted file through
		// its descriptor.
		w.mu.Lock()
		w.f.Close()
		w.f = nil
		if err := os.Remove(w.path); err != nil {
			t.Fatal(err)
		}
		w.mu.Unlock()
		pause()

		// Agent restart, mid-stream.
		stopAgent()
		pause()
		stopAgent = runAgent(t, cfg)
		pause()

		// Server restart, mid-stream: the agent spools and resends.
		rcv.stop()
		pause()
		rcv.start()
	}
	pause()
	w.stopped.Store(true)
	wg.Wait()
	waitStored(t, rcv, w, 30*time.Second)
	stopAgent()
	t.Logf("%d lines written and stored once", w.written())
}
