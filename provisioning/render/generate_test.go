package render_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"go.yaml.in/yaml/v3"

	"github.com/logsift/logsift/datasource/plugin"
	"github.com/logsift/logsift/pkg/lokiclient"
	"github.com/logsift/logsift/pkg/sampledata"
	"github.com/logsift/logsift/provisioning/dashgen"
	"github.com/logsift/logsift/provisioning/internal/harness"
	"github.com/logsift/logsift/provisioning/render"
)

var (
	update = flag.Bool("update", false, "regenerate tests/browser/panels/data/ by running the compose setup without Docker (takes -run-for plus about a minute)")
	runFor = flag.Duration("run-for", 5*time.Minute+30*time.Second, "with -update: how long the server, agent and Prometheus run before the panels are asked")
)

// logsKeep is how many lines of a logs panel's answer the fixture keeps:
// more than the tallest logs panel shows.
const logsKeep = 100

const (
	repoRoot    = "../.."
	fixturesDir = repoRoot + "/tests/browser/panels/data"
	command     = "go test ./provisioning/render -run TestFixtures -update -timeout 30m"
)

// shown says how each dashboard is drawn: its time range when not the
// dashboard's own, and its variables' values.
var shown = []struct {
	file     string
	from, to string
	why      string
	values   map[string]render.Value
}{
	{
		file:   "logs-overview.json",
		values: map[string]render.Value{"service": {All: true}, "workspace": {All: true}, "filters": {}},
	},
	{
		file: "workspace-investigation.json", from: "now-24h", to: "now",
		why:    "the sample bundle covers the last 24 hours; the dashboard's default 30 days would draw it as a sliver (its description says to set the range to the bundle's period)",
		values: map[string]render.Value{"workspace": {Values: []string{"sample-bundle"}}, "file": {All: true}, "search": {Values: []string{""}}},
	},
	{
		file: "imports.json", from: "now-5m", to: "now",
		why: "Prometheus holds only the minutes the generator ran (the dashboard's default is the last 6 hours)",
	},
	{
		file: "logsift.json", from: "now-5m", to: "now",
		why: "Prometheus holds only the minutes the generator ran (the dashboard's default is the last hour)",
	},
}

// TestFixtures checks that the fixtures the panels page draws from match
// the dashboards (any change but a description needs new fixtures and
// pictures), and that each logsift panel's recorded request is what the
// dashboard's queries give with the recorded variable values. With
// -update it first regenerates them.
func TestFixtures(t *testing.T) {
	onDisk, err := filepath.Glob(filepath.Join(repoRoot, "provisioning", "dashboards", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range onDisk {
		known := false
		for _, s := range shown {
			known = known || s.file == filepath.Base(p)
		}
		if !known {
			t.Errorf("%s is not in this test's list of dashboards to draw: add it to shown", filepath.Base(p))
		}
	}
	if *update {
		generate(t)
	}
	for _, s := range shown {
		d := loadDashboard(t, s.file)
		f := loadFixture(t, d.UID)
		drift, err := render.Drift(f, d)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range drift {
			t.Errorf("%s (regenerate: %s)", m, command)
		}
		if len(drift) > 0 {
			continue
		}
		values := map[string]render.Value{}
		for _, v := range f.Variables {
			values[v.Name] = render.Value{All: v.All, Values: v.Values}
		}
		for i, p := range d.Panels {
			fp := f.Panels[i]
			if p.Type == "row" {
				if fp.Request != nil || fp.Response != nil {
					t.Errorf("%s: row %q has a request in the fixture", d.UID, p.Title)
				}
				continue
			}
			if fp.Request == nil || fp.Response == nil {
				t.Errorf("%s: panel %q has no request or answer in the fixture", d.UID, p.Title)
				continue
			}
			if len(fp.Request.Queries) != len(p.Targets) {
				t.Errorf("%s: panel %q: %d queries recorded, %d in the dashboard", d.UID, p.Title, len(fp.Request.Queries), len(p.Targets))
				continue
			}
			for j, tg := range p.Targets {
				var rec struct {
					RefID string `json:"refId"`
					Expr  string `json:"expr"`
				}
				if err := json.Unmarshal(fp.Request.Queries[j], &rec); err != nil {
					t.Fatal(err)
				}
				want := tg.Expr
				if tg.Datasource.UID == dashgen.LogsiftUID {
					if want, err = render.Interpolate(tg.Expr, d.Templating.List, values); err != nil {
						t.Errorf("%s: panel %q: %v", d.UID, p.Title, err)
					}
				}
				if rec.RefID != tg.RefID || rec.Expr != want {
					t.Errorf("%s: panel %q query %s: recorded %q, the dashboard gives %q", d.UID, p.Title, tg.RefID, rec.Expr, want)
				}
				r, ok := fp.Response.Responses[tg.RefID]
				switch {
				case !ok:
					t.Errorf("%s: panel %q: no answer for query %s", d.UID, p.Title, tg.RefID)
				case r.Error != nil:
					t.Errorf("%s: panel %q query %s answered an error: %v", d.UID, p.Title, tg.RefID, r.Error)
				case len(r.Frames) == 0:
					t.Errorf("%s: panel %q query %s answered no frame", d.UID, p.Title, tg.RefID)
				}
			}
		}
	}
}

func loadDashboard(t *testing.T, file string) render.Dashboard {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "provisioning", "dashboards", file))
	if err != nil {
		t.Fatal(err)
	}
	d, err := render.ParseDashboard(b)
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return d
}

func loadFixture(t *testing.T, uid string) render.Fixture {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fixturesDir, uid+".json"))
	if err != nil {
		t.Fatalf("%v (generate it: %s)", err, command)
	}
	var f render.Fixture
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatalf("%s.json: %v", uid, err)
	}
	return f
}

// provisioned is the provisioned datasources file.
type provisioned struct {
	Datasources []struct {
		Name     string         `yaml:"name"`
		UID      string         `yaml:"uid"`
		Type     string         `yaml:"type"`
		JSONData map[string]any `yaml:"jsonData"`
	} `yaml:"datasources"`
}

func loadDatasources(t *testing.T) []render.FixtureSource {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "provisioning", "datasources", "datasources.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var p provisioned
	if err := yaml.Unmarshal(b, &p); err != nil {
		t.Fatal(err)
	}
	var out []render.FixtureSource
	for _, d := range p.Datasources {
		jd, err := json.Marshal(d.JSONData)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, render.FixtureSource{UID: d.UID, Type: d.Type, Name: d.Name, JSONData: jd})
	}
	return out
}

func source(t *testing.T, all []render.FixtureSource, uid string) render.FixtureSource {
	t.Helper()
	for _, s := range all {
		if s.UID == uid {
			return s
		}
	}
	t.Fatalf("datasource %s is not provisioned", uid)
	return render.FixtureSource{}
}

// generate runs what docker-compose.yml runs, without Docker: the server
// (in this process, with the plugin backend), the agent tailing the live
// log loggen writes and importing the sample bundle, Prometheus scraping
// both; and meanwhile pushes an hour of sample logs through the Loki API,
// imports a second bundle and a truncated one, and asks the dashboards'
// logsift panels every 15 seconds as an open dashboard would. Then it asks
// every panel once more and writes the fixtures.
func generate(t *testing.T) {
	sources := loadDatasources(t)
	logsiftDS := source(t, sources, dashgen.LogsiftUID)
	promDS := source(t, sources, dashgen.PrometheusUID)
	var promJSON struct {
		TimeInterval string `json:"timeInterval"`
	}
	if err := json.Unmarshal(promDS.JSONData, &promJSON); err != nil {
		t.Fatal(err)
	}
	scrape, err := time.ParseDuration(promJSON.TimeInterval)
	if err != nil {
		t.Fatalf("the Prometheus datasource's timeInterval %q: %v", promJSON.TimeInterval, err)
	}
	harness.NeedProgram(t, "prometheus", "apt-get install -y --no-install-recommends prometheus")

	env := harness.Start(t, logsiftDS.JSONData)
	bin := buildTools(t)
	dir := t.TempDir()
	agentMetrics := freeAddr(t)
	tailCfg := agentConfig(t, dir, "agent", env.Server.GRPCAddr(), filepath.Join(dir, "logs", "*.log"), agentMetrics)
	importCfg := agentConfig(t, dir, "import", env.Server.GRPCAddr(), filepath.Join(dir, "logs", "*.log"), "")

	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	// Flags before the file: Go's flag package stops at the first
	// argument that is not one.
	daemon(t, ctx, filepath.Join(bin, "loggen"), "live", "-rate", "5", filepath.Join(dir, "logs", "app.log"))
	daemon(t, ctx, filepath.Join(bin, "logsift-agent"), "run", "--config", tailCfg)
	prom := harness.StartPrometheus(t, map[string]string{
		"logsift":       strings.TrimPrefix(env.URL, "http://"),
		"logsift-agent": agentMetrics,
	})
	start := time.Now()
	t.Logf("server %s, agent metrics %s, prometheus %s; running for %s", env.URL, agentMetrics, prom.URL, *runFor)

	dashboards := map[string]render.Dashboard{}
	for _, s := range shown {
		dashboards[s.file] = loadDashboard(t, s.file)
	}

	// An hour of sample logs, pushed in time order over most of the run,
	// as Promtail would ship them.
	pushFor := *runFor * 7 / 10
	samples := sampledata.Generate(sampledata.Options{Seed: 1, End: start, Span: time.Hour, Lines: 1500})
	ticks := int(pushFor / time.Second)
	var mu sync.Mutex
	var events []string
	note := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		events = append(events, fmt.Sprintf("%s +%s: %s", time.Now().UTC().Format(time.TimeOnly), time.Since(start).Round(time.Second), fmt.Sprintf(format, args...)))
		t.Log(events[len(events)-1])
	}

	// The bundles are written first: t.Fatal belongs to this goroutine.
	sampleBundle := filepath.Join(dir, "bundle", "sample-bundle.tar.gz")
	run(t, filepath.Join(bin, "loggen"), "bundle", sampleBundle)
	src, err := os.ReadFile(sampleBundle)
	if err != nil {
		t.Fatal(err)
	}
	// A bundle cut short in transfer: the importer reads what it can and
	// the run reports the damage.
	truncated := filepath.Join(dir, "bundle", "truncated.tar.gz")
	if err := os.WriteFile(truncated, src[:len(src)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	imports := []struct {
		at        time.Duration
		workspace string
		host      string
		path      string
	}{
		{15 * time.Second, "sample-bundle", "sample-host", sampleBundle},
		{60 * time.Second, "case-4711", "bundle-host", writeBundle(t, filepath.Join(dir, "bundle", "case-4711"), start.Add(-time.Hour))},
		{100 * time.Second, "case-4712", "bundle-host", truncated},
	}
	var wg sync.WaitGroup
	for _, im := range imports {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case <-time.After(im.at):
			case <-ctx.Done():
				return
			}
			path := im.path
			out, err := exec.CommandContext(ctx, filepath.Join(bin, "logsift-agent"), "import", path,
				"--workspace", im.workspace, "--host", im.host, "--config", importCfg,
				"--state-dir", filepath.Join(dir, "import-state", im.workspace)).CombinedOutput()
			last := strings.TrimSpace(string(out))
			if i := strings.LastIndexByte(last, '\n'); i >= 0 {
				last = last[i+1:]
			}
			note("logsift-agent import %s --workspace %s: %v: %s", filepath.Base(path), im.workspace, exitOf(err), last)
		}()
	}

	refresh := time.NewTicker(15 * time.Second)
	defer refresh.Stop()
	push := time.NewTicker(time.Second)
	defer push.Stop()
	deadline := time.After(*runFor)
	for tick := 0; ; {
		select {
		case <-push.C:
			if tick < ticks {
				env.Push(t, slice(samples, tick, ticks))
				tick++
			}
			continue
		case <-refresh.C:
			now := time.Now()
			for _, s := range shown {
				d := dashboards[s.file]
				tr, err := render.Resolve(d.Time.From, d.Time.To, now)
				if err != nil {
					t.Fatal(err)
				}
				for _, p := range d.Panels {
					if len(p.Targets) > 0 && p.Targets[0].Datasource.UID == dashgen.LogsiftUID {
						askLogsift(t, env, d, p, tr, s.values)
					}
				}
			}
			continue
		case <-deadline:
		}
		break
	}
	wg.Wait()
	prom.WaitScrapes(t, "logsift", 2)
	prom.WaitScrapes(t, "logsift-agent", 2)

	now := time.Now()
	for _, s := range shown {
		d := dashboards[s.file]
		from, to := d.Time.From, d.Time.To
		if s.from != "" {
			from, to = s.from, s.to
		}
		tr, err := render.Resolve(from, to, now)
		if err != nil {
			t.Fatal(err)
		}
		f := render.Fixture{
			Command: command, Generated: now.UTC().Truncate(time.Second), UID: d.UID, Title: d.Title,
			Layout: render.DefaultLayout, Time: render.NewRange(tr), TimeZone: "utc",
			Sources: []render.FixtureSource{logsiftDS, promDS},
		}
		if s.why != "" {
			f.Notes = append(f.Notes, fmt.Sprintf("time range %s to %s: %s", from, to, s.why))
		}
		f.Notes = append(f.Notes, events...)
		for _, v := range d.Templating.List {
			val, ok := s.values[v.Name]
			if !ok {
				t.Fatalf("%s: no value chosen for variable %s", d.UID, v.Name)
			}
			f.Variables = append(f.Variables, render.FixtureVar{Variable: v, All: val.All, Values: val.Values})
		}
		for _, p := range d.Panels {
			fp := render.FixturePanel{Panel: p.Raw}
			if p.Type != "row" {
				var notes []string
				if p.Targets[0].Datasource.UID == dashgen.PrometheusUID {
					fp.Request, fp.Response, notes = askPrometheus(t, prom.URL, p, tr, scrape)
				} else {
					fp.Request, fp.Response, notes = askLogsift(t, env, d, p, tr, s.values)
				}
				fp.Notes = notes
			}
			f.Panels = append(f.Panels, fp)
		}
		writeFixture(t, f)
	}
}

// askLogsift sends a panel's queries to the plugin backend as Grafana's
// server would forward the frontend's request.
func askLogsift(t *testing.T, env *harness.Env, d render.Dashboard, p render.Panel, dashRange render.TimeRange, values map[string]render.Value) (*render.Request, *backend.QueryDataResponse, []string) {
	t.Helper()
	tr, err := render.PanelRange(p, dashRange)
	if err != nil {
		t.Fatal(err)
	}
	maxDP := maxDataPoints(p)
	iv := render.Interval(tr, maxDP, 0)
	req := &render.Request{Range: render.NewRange(tr), IntervalMs: iv.Milliseconds(), MaxDataPoints: maxDP}
	for _, tg := range p.Targets {
		expr, err := render.Interpolate(tg.Expr, d.Templating.List, values)
		if err != nil {
			t.Fatalf("%s: panel %q: %v", d.UID, p.Title, err)
		}
		q, err := render.QueryModel(tg, expr, req.IntervalMs, req.MaxDataPoints)
		if err != nil {
			t.Fatal(err)
		}
		req.Queries = append(req.Queries, q)
	}
	dr, err := render.DataRequest(plugin.ID, *req)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := env.DS.QueryData(context.Background(), dr)
	if err != nil {
		t.Fatalf("%s: panel %q: QueryData: %v", d.UID, p.Title, err)
	}
	var notes []string
	for ref, r := range resp.Responses {
		if r.Error != nil {
			t.Errorf("%s: panel %q query %s: %v", d.UID, p.Title, ref, r.Error)
			continue
		}
		frames, cut, err := render.TrimLogs(r.Frames, logsKeep, p.Options.SortOrder)
		if err != nil {
			t.Fatal(err)
		}
		r.Frames = frames
		resp.Responses[ref] = r
		notes = append(notes, cut...)
		if rows(r) == 0 {
			notes = append(notes, fmt.Sprintf("query %s answered no data", ref))
		}
	}
	sort.Strings(notes)
	return req, resp, notes
}

// askPrometheus runs a panel's queries on Prometheus as Grafana's
// Prometheus datasource would.
func askPrometheus(t *testing.T, url string, p render.Panel, dashRange render.TimeRange, scrape time.Duration) (*render.Request, *backend.QueryDataResponse, []string) {
	t.Helper()
	tr, err := render.PanelRange(p, dashRange)
	if err != nil {
		t.Fatal(err)
	}
	maxDP := maxDataPoints(p)
	iv := render.Interval(tr, maxDP, scrape)
	req := &render.Request{Range: render.NewRange(tr), IntervalMs: iv.Milliseconds(), MaxDataPoints: maxDP}
	resp := backend.NewQueryDataResponse()
	var notes []string
	for _, tg := range p.Targets {
		q, err := render.QueryModel(tg, tg.Expr, req.IntervalMs, req.MaxDataPoints)
		if err != nil {
			t.Fatal(err)
		}
		req.Queries = append(req.Queries, q)
		pq := render.NewPromQuery(tg, tr, iv, maxDP, scrape)
		r, err := pq.Run(context.Background(), url)
		if err != nil {
			t.Fatal(err)
		}
		if r.Error != nil {
			t.Errorf("panel %q query %s (%s): %v", p.Title, tg.RefID, pq.Expr, r.Error)
		}
		if rows(r) == 0 {
			notes = append(notes, fmt.Sprintf("query %s: Prometheus has no series for %s in the range", tg.RefID, pq.Expr))
		}
		resp.Responses[tg.RefID] = r
	}
	return req, resp, notes
}

// maxDataPoints is what Grafana asks a panel for: its maxDataPoints
// option, else its width in pixels.
func maxDataPoints(p render.Panel) int64 {
	if p.MaxDataPoints > 0 {
		return p.MaxDataPoints
	}
	return int64(render.DefaultLayout.PanelWidth(p.GridPos.W))
}

func rows(r backend.DataResponse) int {
	n := 0
	for _, f := range r.Frames {
		n += f.Rows()
	}
	return n
}

func writeFixture(t *testing.T, f render.Fixture) {
	t.Helper()
	b, err := f.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(fixturesDir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(fixturesDir, f.UID+".json")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s (%d bytes)", p, len(b))
}

// slice is the part i of n of every stream's entries.
func slice(streams []sampledata.Stream, i, n int) []lokiclient.Stream {
	var out []lokiclient.Stream
	for _, s := range streams {
		lo, hi := len(s.Entries)*i/n, len(s.Entries)*(i+1)/n
		if lo < hi {
			out = append(out, lokiclient.Stream{Labels: s.Labels, Entries: s.Entries[lo:hi]})
		}
	}
	return out
}

// writeBundle writes two hours of sample logs ending at end as the files
// of a support bundle folder.
func writeBundle(t *testing.T, dir string, end time.Time) string {
	t.Helper()
	names := map[string]string{"nginx": "var/log/nginx/access.log", "api": "var/log/api/api.log", "payments": "var/log/payments/payments.json", "billing": "opt/billing/logs/billing.log"}
	for _, s := range sampledata.Generate(sampledata.Options{Seed: 7, End: end, Span: 2 * time.Hour, Lines: 600}) {
		p := filepath.Join(dir, names[s.Labels.Get("job")])
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		for _, e := range s.Entries {
			b.Write(e.Line)
			b.WriteByte('\n')
		}
		if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// buildTools builds the agent and the compose setup's log generator.
func buildTools(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command("go", "build", "-o", dir+string(filepath.Separator), "./agent/cmd/logsift-agent", "./deploy/loggen")
	cmd.Dir = repoRoot
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build the agent and loggen: %v\n%s", err, out)
	}
	return dir
}

// agentConfig writes deploy/compose/agent.yaml with this run's server,
// folders and metrics address in place of the compose network's.
func agentConfig(t *testing.T, dir, name, grpcAddr, glob, metrics string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "deploy", "compose", "agent.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	cfg["data_dir"] = filepath.Join(dir, name)
	cfg["output"].(map[string]any)["url"] = grpcAddr
	cfg["files"].([]any)[0].(map[string]any)["paths"] = []string{glob}
	cfg["metrics"] = map[string]any{"listen_address": metrics}
	cfg["log"] = map[string]any{"level": "warn"}
	out, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name+".yaml")
	if err := os.WriteFile(p, out, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// daemon runs a program until the test ends; one that stops before is a
// failure.
func daemon(t *testing.T, ctx context.Context, name string, args ...string) {
	t.Helper()
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 15 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		select {
		case err := <-done:
			t.Errorf("%s %s stopped before the test ended (%s):\n%s", filepath.Base(name), strings.Join(args, " "), exitOf(err), out.String())
			return
		default:
		}
		_ = cmd.Process.Signal(syscall.SIGTERM)
		<-done
	})
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, out)
	}
}

func exitOf(err error) string {
	if err == nil {
		return "exit 0"
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return fmt.Sprintf("exit %d", ee.ExitCode())
	}
	return err.Error()
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
