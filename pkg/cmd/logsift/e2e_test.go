package main

// End-to-end tests: they build the real logsift binary, run it on loopback
// and talk to it only through its HTTP API, as a Loki client would.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/logsift/logsift/pkg/lokiclient"
)

var binPath string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "logsift-e2e-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binPath = filepath.Join(dir, "logsift")
	build := exec.Command("go", "build", "-o", binPath, ".")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building logsift:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// proc is a running server process.
type proc struct {
	t       *testing.T
	cmd     *exec.Cmd
	url     string
	dataDir string
	logs    *bytes.Buffer
	done    chan error
}

// startServer runs `logsift serve` on a free loopback port.
func startServer(t *testing.T, dataDir string, args ...string) *proc {
	t.Helper()
	addrFile := filepath.Join(t.TempDir(), "addr")
	cmd := exec.Command(binPath, append([]string{"serve", "-data-dir", dataDir, "-http-listen-address", "127.0.0.1:0", "-grpc-listen-address", "127.0.0.1:0"}, args...)...)
	cmd.Env = append(os.Environ(), "LOGSIFT_ADDR_FILE="+addrFile)
	logs := &bytes.Buffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("start server: %v", err)
	}
	p := &proc{t: t, cmd: cmd, dataDir: dataDir, logs: logs, done: make(chan error, 1)}
	go func() { p.done <- cmd.Wait() }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if b, err := os.ReadFile(addrFile); err == nil && len(b) > 0 {
			p.url = "http://" + string(b)
			if resp, err := http.Get(p.url + "/ready"); err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					break
				}
			}
		}
		select {
		case err := <-p.done:
			t.Fatalf("server exited during start: %v\n%s", err, logs)
		default:
		}
		if time.Now().After(deadline) {
			p.kill()
			t.Fatalf("server not ready after 60s\n%s", logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			p.stop()
		}
	})
	return p
}

func (p *proc) client(tenant string) *lokiclient.Client {
	return &lokiclient.Client{URL: p.url, Tenant: tenant, Categorize: true}
}

// kill ends the server with SIGKILL: no flush, no cleanup, like a crash.
func (p *proc) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// stop ends the server with SIGTERM and checks that it shut down cleanly.
func (p *proc) stop() {
	p.t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		if err != nil {
			p.t.Errorf("server exited with %v\n%s", err, p.logs)
		}
	case <-time.After(60 * time.Second):
		p.kill()
		p.t.Errorf("server did not stop within 60s of SIGTERM\n%s", p.logs)
	}
}

// queryAll reads every entry of a log query over [start, end) by paging
// forward with the limit, as a client without a line cap would.
func queryAll(t *testing.T, c *lokiclient.Client, q string, start, end time.Time) []lokiclient.Entry {
	t.Helper()
	var out []lokiclient.Entry
	from := start
	seen := map[string]int{}
	for {
		resp, err := c.QueryRange(context.Background(), q, from, end, 5000, url.Values{"direction": {"forward"}})
		if err != nil {
			t.Fatalf("query %s: %v", q, err)
		}
		streams, err := resp.Streams()
		if err != nil {
			t.Fatalf("decode %s: %v", q, err)
		}
		var page []lokiclient.Entry
		for _, s := range streams {
			page = append(page, s.Entries...)
		}
		if len(page) == 0 {
			return out
		}
		var last int64
		for _, e := range page {
			last = max(last, e.Timestamp)
		}
		// Entries at the last timestamp may continue on the next page: keep
		// the ones before it, and resume at it while remembering what of it
		// we have already taken.
		added := 0
		for _, e := range page {
			k := fmt.Sprintf("%d\x00%s", e.Timestamp, e.Line)
			if seen[k] > 0 {
				seen[k]--
				continue
			}
			out = append(out, e)
			added++
		}
		if len(page) < 5000 {
			return out
		}
		if added == 0 {
			t.Fatalf("paging made no progress at %d for %s", last, q)
		}
		seen = map[string]int{}
		for _, e := range page {
			if e.Timestamp == last {
				seen[fmt.Sprintf("%d\x00%s", e.Timestamp, e.Line)]++
			}
		}
		from = time.Unix(0, last)
	}
}

func isStatus(err error, code int) bool {
	var se *lokiclient.StatusError
	return errors.As(err, &se) && se.Code == code
}

func statusBody(err error) string {
	var se *lokiclient.StatusError
	if errors.As(err, &se) {
		return se.Body
	}
	return ""
}

func mustContain(t *testing.T, what, s, sub string) {
	t.Helper()
	if !strings.Contains(s, sub) {
		t.Errorf("%s: %q does not contain %q", what, s, sub)
	}
}
