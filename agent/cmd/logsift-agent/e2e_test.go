//go:build unix

package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// buildBinaries compiles the agent and the test receiver once per run.
func buildBinaries(t *testing.T) (agentBin, serverBin string) {
	t.Helper()
	dir := t.TempDir()
	agentBin = filepath.Join(dir, "logsift-agent")
	serverBin = filepath.Join(dir, "testserver")
	for _, b := range []struct{ out, pkg string }{{agentBin, "."}, {serverBin, "../../internal/testserver"}} {
		cmd := exec.Command("go", "build", "-o", b.out, b.pkg)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", b.pkg, err, out)
		}
	}
	return agentBin, serverBin
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// proc is a child process of the test.
type proc struct {
	cmd    *exec.Cmd
	stderr *bytes.Buffer
}

func startProc(t *testing.T, waitFor string, name string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(name, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, stderr: &stderr}
	t.Cleanup(func() { p.kill() })
	if waitFor != "" {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), waitFor) {
				break
			}
		}
		go func() { _, _ = io.Copy(io.Discard, out) }()
	} else {
		go func() { _, _ = io.Copy(io.Discard, out) }()
	}
	return p
}

// kill sends SIGKILL to this child (by its pid) and reaps it.
func (p *proc) kill() {
	if p.cmd.ProcessState != nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	_ = p.cmd.Wait()
}

func (p *proc) term(t *testing.T) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Errorf("process did not stop on SIGTERM; stderr:\n%s", p.stderr.String())
		p.kill()
	}
}

// TestKillNineAgentAndServer kills the agent and the server with SIGKILL
// mid-stream, restarts them, and checks that every line written is stored
// exactly once.
func TestKillNineAgentAndServer(t *testing.T) {
	agentBin, serverBin := buildBinaries(t)
	dir := t.TempDir()
	logs := filepath.Join(dir, "logs")
	os.MkdirAll(logs, 0o755)
	grpcAddr, httpAddr := freeAddr(t), freeAddr(t)
	serverArgs := []string{"-data", filepath.Join(dir, "server"), "-listen", grpcAddr, "-http", httpAddr}
	server := startProc(t, "listening", serverBin, serverArgs...)

	cfgPath := filepath.Join(dir, "agent.yaml")
	cfg := fmt.Sprintf(`data_dir: %s
output:
  type: logsift
  url: %s
  tenant: t1
  min_backoff: 20ms
  max_backoff: 300ms
files:
  - paths: ["%s/*.log"]
    labels: {job: kill9}
tail:
  poll_interval: 50ms
  rescan_interval: 200ms
  drain_timeout: 500ms
chunks:
  max_age: 100ms
  target_bytes: 64KiB
metrics:
  listen_address: ""
log:
  level: warn
`, filepath.Join(dir, "agent"), grpcAddr, logs)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	runAgent := func() *proc { return startProc(t, "", agentBin, "run", "--config", cfgPath) }
	agent := runAgent()

	// Writer: numbered lines at a steady rate, with a rename rotation in
	// the middle.
	var n atomic.Int64
	var stop atomic.Bool
	var mu sync.Mutex
	path := filepath.Join(logs, "app.log")
	line := func(i int64) string { return fmt.Sprintf("k9 %07d %s", i, strings.Repeat("y", int(i%40))) }
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		for !stop.Load() {
			mu.Lock()
			for range 4 {
				f.WriteString(line(n.Load()) + "\n")
				n.Add(1)
			}
			if n.Load()%4000 == 0 {
				f.Close()
				os.Rename(path, fmt.Sprintf("%s.%d", path, n.Load()))
				f, _ = os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
			}
			mu.Unlock()
			time.Sleep(time.Millisecond)
		}
		f.Close()
	}()

	step := func() { time.Sleep(700 * time.Millisecond) }
	step()
	agent.kill() // SIGKILL mid-stream
	agent = runAgent()
	step()
	server.kill()
	time.Sleep(300 * time.Millisecond)
	server = startProc(t, "listening", serverBin, serverArgs...)
	step()
	agent.kill()
	time.Sleep(100 * time.Millisecond)
	agent = runAgent()
	step()
	server.kill()
	agent.kill()
	server = startProc(t, "listening", serverBin, serverArgs...)
	agent = runAgent()
	step()
	stop.Store(true)
	wg.Wait()
	written := n.Load()

	deadline := time.Now().Add(60 * time.Second)
	var counts map[string]int
	for {
		counts = storedLines(t, httpAddr)
		missing := 0
		for i := range written {
			if counts[line(i)] == 0 {
				missing++
			}
		}
		if missing == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d lines never stored\nagent stderr:\n%s", missing, written, agent.stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	for l, c := range counts {
		if c != 1 {
			t.Errorf("stored %d times: %q", c, l)
		}
	}
	if int64(len(counts)) != written {
		t.Fatalf("%d distinct lines stored, %d written", len(counts), written)
	}
	agent.term(t)
	server.term(t)
	t.Logf("%d lines written across 2 agent and 2 server SIGKILLs, each stored once", written)
}

func storedLines(t *testing.T, addr string) map[string]int {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/lines?tenant=t1")
	if err != nil {
		return nil // restarting
	}
	defer resp.Body.Close()
	out := map[string]int{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		out[sc.Text()]++
	}
	return out
}

func TestValidateReportsErrorsWithLines(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "agent.yaml")
	os.WriteFile(path, []byte(`output:
  type: logsift
  url: "http://not-an-address"
files:
  - paths: ["/var/log/**x/*.log"]
    labels:
      filename: nope
      "bad-name": x
`), 0o644)
	var stdout, stderr bytes.Buffer
	if code := run([]string{"validate", "--config", path}, &stdout, &stderr); code != 1 {
		t.Fatalf("exit %d, stdout %q", code, stdout.String())
	}
	msg := stderr.String()
	for _, want := range []string{
		path + ":3: output.url:",
		path + ":5: files[0].paths[0]:",
		path + ":7: files[0].labels.filename: the agent sets filename itself",
		`files[0].labels.bad-name: "bad-name" is not a valid label name`,
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("missing %q in:\n%s", want, msg)
		}
	}
	os.WriteFile(path, []byte("output: {url: 127.0.0.1:9095}\nfiles: [{paths: [/tmp/*.log]}]\n"), 0o644)
	stdout.Reset()
	stderr.Reset()
	if code := run([]string{"validate", "--config", path}, &stdout, &stderr); code != 0 || !strings.Contains(stdout.String(), "ok") {
		t.Fatalf("valid config: exit %d, %q %q", code, stdout.String(), stderr.String())
	}
}
