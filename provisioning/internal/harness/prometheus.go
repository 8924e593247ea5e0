package harness

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// RequireServices is set in CI: a test that needs a program (prometheus,
// docker) fails instead of skipping when it is missing.
func RequireServices() bool { return os.Getenv("LOGSIFT_REQUIRE_SERVICES") == "1" }

// NeedProgram returns the path of a program, skipping the test when it is
// absent (failing it under LOGSIFT_REQUIRE_SERVICES=1). hint says how to
// install it.
func NeedProgram(t testing.TB, name, hint string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if RequireServices() {
			t.Fatalf("%s is required (LOGSIFT_REQUIRE_SERVICES=1) but not on PATH: %s", name, hint)
		}
		t.Skipf("%s not on PATH (%s); CI sets LOGSIFT_REQUIRE_SERVICES=1 and fails here", name, hint)
	}
	return p
}

// Prometheus is a real Prometheus server (Debian's prometheus package)
// scraping targets on loopback every second.
type Prometheus struct {
	URL string
}

// StartPrometheus runs prometheus with one scrape job per name in jobs
// (job name to host:port of a /metrics endpoint), scraping every second.
func StartPrometheus(t testing.TB, jobs map[string]string) *Prometheus {
	t.Helper()
	bin := NeedProgram(t, "prometheus", "apt-get install -y --no-install-recommends prometheus")
	dir := t.TempDir()
	var cfg strings.Builder
	cfg.WriteString("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n")
	for job, target := range jobs {
		fmt.Fprintf(&cfg, "  - job_name: %q\n    static_configs:\n      - targets: [%q]\n", job, target)
	}
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	cmd := exec.Command(bin,
		"--config.file="+cfgPath,
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr,
		"--log.level=warn",
	)
	logf, err := os.Create(filepath.Join(dir, "prometheus.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start prometheus: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("prometheus log:\n%s", b)
		}
	})
	p := &Prometheus{URL: "http://" + addr}
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(p.URL + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("prometheus at %s not ready within 20s (last error: %v)", addr, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func freeAddr(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// Sample is one series of an instant query's answer.
type Sample struct {
	Labels map[string]string
	Value  float64
}

// Query runs an instant PromQL query at ts; a query Prometheus refuses is
// an error with its message.
func (p *Prometheus) Query(ctx context.Context, expr string, ts time.Time) ([]Sample, error) {
	form := url.Values{"query": {expr}, "time": {strconv.FormatFloat(float64(ts.UnixMilli())/1000, 'f', 3, 64)}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.URL+"/api/v1/query", strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var body struct {
		Status    string `json:"status"`
		Error     string `json:"error"`
		ErrorType string `json:"errorType"`
		Data      struct {
			ResultType string `json:"resultType"`
			Result     []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, fmt.Errorf("decode the answer to %s: %w", expr, err)
	}
	if body.Status != "success" {
		return nil, fmt.Errorf("prometheus refused %s: %s: %s", expr, body.ErrorType, body.Error)
	}
	var out []Sample
	switch body.Data.ResultType {
	case "vector":
		for _, r := range body.Data.Result {
			s, _ := r.Value[1].(string)
			v, err := strconv.ParseFloat(s, 64)
			if err != nil {
				return nil, fmt.Errorf("value %q of %s: %w", s, expr, err)
			}
			out = append(out, Sample{Labels: r.Metric, Value: v})
		}
	case "scalar":
		// A scalar answer has no series; Grafana reads it as one value.
	default:
		return nil, fmt.Errorf("%s answered a %s, not an instant vector", expr, body.Data.ResultType)
	}
	return out, nil
}

// WaitScrapes waits until job has been scraped successfully at least n
// more times than when called (up{job} samples), so that what the server
// did before is in Prometheus.
func (p *Prometheus) WaitScrapes(t testing.TB, job string, n int) {
	t.Helper()
	ctx := context.Background()
	count := func() float64 {
		s, err := p.Query(ctx, `count_over_time(up{job="`+job+`"}[10m])`, time.Now())
		if err != nil || len(s) == 0 {
			return 0
		}
		return s[0].Value
	}
	start := count()
	deadline := time.Now().Add(30 * time.Second)
	for count() < start+float64(n) {
		if time.Now().After(deadline) {
			t.Fatalf("prometheus did not scrape %s %d more times within 30s", job, n)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
