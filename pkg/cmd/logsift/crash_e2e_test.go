package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/logsift/logsift/pkg/chunk"
	"github.com/logsift/logsift/pkg/labels"
	"github.com/logsift/logsift/pkg/lokiclient"
)

// TestKill9KeepsEveryAcknowledgedLine pushes continuously from several
// clients, kills the server with SIGKILL at a random moment, restarts it,
// and checks that every acknowledged line is stored exactly once. Pushes
// that were in flight at the kill are resent, as Promtail would do after an
// error, and must also end up stored exactly once. Three crash cycles run
// against the same data directory, with chunks small enough that flushes
// happen between kills.
func TestKill9KeepsEveryAcknowledgedLine(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(t.TempDir(), "logsift.yaml")
	if err := os.WriteFile(cfg, []byte("store:\n  target_chunk_size: 65536\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	base := time.Date(2024, 2, 29, 12, 0, 0, 0, time.UTC)
	var tsCounter atomic.Int64
	type push struct {
		stream lokiclient.Stream
		lines  []string
	}
	var (
		mu        sync.Mutex
		acked     = map[string]bool{}
		unacked   []push
		totalSent int
	)
	r := rand.New(rand.NewPCG(11, 12))
	for cycle := 0; cycle < 3; cycle++ {
		p := startServer(t, dir, "-config.file", cfg)
		c := p.client("crash")
		// Resend what was not acknowledged before the last crash.
		for _, u := range unacked {
			if err := c.Push(context.Background(), []lokiclient.Stream{u.stream}); err != nil {
				t.Fatalf("resend after restart: %v", err)
			}
			for _, l := range u.lines {
				acked[l] = true
			}
		}
		unacked = nil
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for w := 0; w < 4; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				ls := labels.New("job", "crash", "worker", fmt.Sprint(w))
				for seq := 0; ctx.Err() == nil; seq++ {
					var pu push
					pu.stream.Labels = ls
					for k := 0; k < 50; k++ {
						line := fmt.Sprintf("cycle=%d worker=%d seq=%d k=%d payload=%032x", cycle, w, seq, k, uint64(seq*k))
						ts := base.Add(time.Duration(tsCounter.Add(1)) * time.Microsecond).UnixNano()
						pu.stream.Entries = append(pu.stream.Entries, chunk.Entry{Timestamp: ts, Line: []byte(line)})
						pu.lines = append(pu.lines, line)
					}
					err := c.Push(context.Background(), []lokiclient.Stream{pu.stream})
					mu.Lock()
					totalSent += len(pu.lines)
					if err == nil {
						for _, l := range pu.lines {
							acked[l] = true
						}
					} else {
						unacked = append(unacked, pu)
					}
					mu.Unlock()
					if err != nil {
						return
					}
				}
			}(w)
		}
		time.Sleep(time.Duration(300+r.IntN(1200)) * time.Millisecond)
		p.kill()
		cancel()
		wg.Wait()
		t.Logf("cycle %d: %d lines acknowledged so far, %d pushes in flight at the kill", cycle, len(acked), len(unacked))
	}
	// Final restart: resend the last in-flight pushes, then count.
	p := startServer(t, dir, "-config.file", cfg)
	c := p.client("crash")
	for _, u := range unacked {
		if err := c.Push(context.Background(), []lokiclient.Stream{u.stream}); err != nil {
			t.Fatalf("final resend: %v", err)
		}
		for _, l := range u.lines {
			acked[l] = true
		}
	}
	got := queryAll(t, c, `{job="crash"}`, base, base.Add(time.Hour))
	counts := map[string]int{}
	for _, e := range got {
		counts[e.Line]++
	}
	missing, dup := 0, 0
	for l := range acked {
		switch counts[l] {
		case 0:
			missing++
			if missing < 5 {
				t.Errorf("acknowledged line lost: %s", l)
			}
		case 1:
		default:
			dup++
			if dup < 5 {
				t.Errorf("line stored %d times: %s", counts[l], l)
			}
		}
	}
	for l := range counts {
		if !acked[l] {
			t.Errorf("line that was never sent: %s", l)
		}
	}
	if len(acked) < 1000 {
		t.Fatalf("only %d lines acknowledged; the test did not push enough to mean anything", len(acked))
	}
	if missing > 0 || dup > 0 {
		t.Fatalf("%d of %d acknowledged lines lost, %d stored more than once", missing, len(acked), dup)
	}
	t.Logf("%d acknowledged lines, all stored exactly once (%d lines sent in all)", len(acked), totalSent)
}
