package deploy

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// repoRoot is where docker-compose.yml lives.
const repoRoot = ".."

// composeCLI finds a Compose implementation that can run `config` without
// an engine: the docker CLI's compose plugin, or a docker-compose binary.
// Without one the test skips, and fails under LOGSIFT_REQUIRE_SERVICES=1.
func composeCLI(t *testing.T) []string {
	t.Helper()
	if docker, err := exec.LookPath("docker"); err == nil {
		if exec.Command(docker, "compose", "version").Run() == nil {
			return []string{docker, "compose"}
		}
	}
	return []string{needProgram(t, "docker-compose", "install the docker CLI's compose plugin, or apt-get install -y docker-compose")}
}

// composeFile is the normalised output of `docker compose config` (both
// the v2 plugin's long syntax and docker-compose 1.x's short syntax).
type composeFile struct {
	Services map[string]composeService `yaml:"services"`
	Volumes  map[string]any            `yaml:"volumes"`
}

type composeService struct {
	Build       any                       `yaml:"build"`
	Image       string                    `yaml:"image"`
	Command     any                       `yaml:"command"`
	Environment map[string]any            `yaml:"environment"`
	Volumes     []any                     `yaml:"volumes"`
	Ports       []any                     `yaml:"ports"`
	DependsOn   map[string]map[string]any `yaml:"depends_on"`
	Healthcheck map[string]any            `yaml:"healthcheck"`
	Profiles    []string                  `yaml:"profiles"`
}

type mount struct {
	bind           bool
	source, target string
	readOnly       bool
}

func (s composeService) mounts(t *testing.T) []mount {
	t.Helper()
	var out []mount
	for _, v := range s.Volumes {
		switch v := v.(type) {
		case string:
			parts := strings.Split(v, ":")
			if len(parts) < 2 {
				t.Fatalf("volume %q", v)
			}
			m := mount{source: parts[0], target: parts[1], bind: filepath.IsAbs(parts[0])}
			m.readOnly = len(parts) > 2 && strings.Contains(parts[2], "ro")
			out = append(out, m)
		case map[string]any:
			m := mount{bind: v["type"] == "bind"}
			m.source, _ = v["source"].(string)
			m.target, _ = v["target"].(string)
			m.readOnly, _ = v["read_only"].(bool)
			out = append(out, m)
		default:
			t.Fatalf("volume entry %v (%T)", v, v)
		}
	}
	return out
}

func (s composeService) build() (context, dockerfile, target string) {
	switch b := s.Build.(type) {
	case string:
		return b, "Dockerfile", ""
	case map[string]any:
		context, _ = b["context"].(string)
		dockerfile, _ = b["dockerfile"].(string)
		target, _ = b["target"].(string)
		if dockerfile == "" {
			dockerfile = "Dockerfile"
		}
	}
	return context, dockerfile, target
}

func (s composeService) commandArgs() []string {
	switch c := s.Command.(type) {
	case []any:
		var out []string
		for _, a := range c {
			out = append(out, a.(string))
		}
		return out
	case string:
		return strings.Fields(c)
	}
	return nil
}

func composeConfig(t *testing.T, cli []string, profiles ...string) composeFile {
	t.Helper()
	args := append(append([]string{}, cli[1:]...), "-f", "docker-compose.yml")
	for _, p := range profiles {
		args = append(args, "--profile", p)
	}
	args = append(args, "config")
	cmd := exec.Command(cli[0], args...)
	cmd.Dir = repoRoot
	// The defaults in the file are what is checked, not this shell's.
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "COMPOSE_") && !strings.HasPrefix(kv, "LOGSIFT_CONFIG=") && !strings.HasPrefix(kv, "GRAFANA_") && !strings.HasPrefix(kv, "DOCKER_") {
			env = append(env, kv)
		}
	}
	cmd.Env = env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, stderr.String())
	}
	var f composeFile
	if err := yaml.Unmarshal(out, &f); err != nil {
		t.Fatalf("decode the output of compose config: %v\n%s", err, out)
	}
	return f
}

func TestComposeFile(t *testing.T) {
	cli := composeCLI(t)
	root, err := filepath.Abs(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	// With the full profile, every service is in the output (docker-compose
	// 1.x lists profiled services anyway); their profiles say which start
	// by default.
	full := composeConfig(t, cli, "full")
	for name, profiles := range map[string]string{
		"grafana": "", "logsift": "", "agent": "", "agent-import": "", "loggen": "", "sample-bundle": "", "prometheus": "",
		"redis": "full", "nats": "full",
	} {
		s, ok := full.Services[name]
		if !ok {
			t.Errorf("service %s is missing", name)
			continue
		}
		if got := strings.Join(s.Profiles, ","); got != profiles {
			t.Errorf("service %s has profiles %q, want %q", name, got, profiles)
		}
	}

	pluginID := pluginJSON(t, root)["id"].(string)
	built := map[string]bool{}
	for name, s := range full.Services {
		// Images built here: the context and Dockerfile exist, the target
		// is a stage of it, and what it copies from the context exists.
		if s.Build != nil {
			ctx, df, target := s.build()
			if !filepath.IsAbs(ctx) {
				ctx = filepath.Join(root, ctx)
			}
			if st, err := os.Stat(ctx); err != nil || !st.IsDir() {
				t.Errorf("%s: build context %s: %v", name, ctx, err)
			}
			if !filepath.IsAbs(df) {
				df = filepath.Join(ctx, df)
			}
			checkDockerfile(t, name, ctx, df, target)
			built[s.Image] = true
		} else if !strings.Contains(s.Image, ":") && !built[s.Image] {
			t.Errorf("%s: image %q has no tag", name, s.Image)
		}
		for _, m := range s.mounts(t) {
			if !m.bind {
				if _, ok := full.Volumes[m.source]; !ok {
					t.Errorf("%s: volume %s is not declared", name, m.source)
				}
				continue
			}
			checkBindSource(t, name, root, m)
		}
		for dep, c := range s.DependsOn {
			if _, ok := full.Services[dep]; !ok {
				t.Errorf("%s depends on %s, which does not exist", name, dep)
			}
			if c["condition"] == "service_healthy" && full.Services[dep].Healthcheck == nil {
				t.Errorf("%s waits for %s to be healthy, which has no health check", name, dep)
			}
		}
		for _, p := range s.Ports {
			if !portOnLoopback(p) {
				t.Errorf("%s: port %v is published on every interface; bind it to 127.0.0.1", name, p)
			}
		}
	}
	// Images that never come from a build must be built by a sibling
	// service (sample-bundle and agent-import reuse loggen's and agent's).
	for name, s := range full.Services {
		if s.Build == nil && strings.HasSuffix(s.Image, ":local") && !built[s.Image] {
			t.Errorf("%s uses %s, which no service builds", name, s.Image)
		}
	}
	for _, name := range []string{"logsift", "agent", "prometheus", "grafana", "redis", "nats"} {
		if full.Services[name].Healthcheck == nil {
			t.Errorf("%s has no health check", name)
		}
	}

	// Grafana loads the plugin from dist/ under its id, unsigned loading
	// is allowed for exactly that id, and provisioning is where Grafana
	// reads it.
	g := full.Services["grafana"]
	if v, _ := g.Environment["GF_PLUGINS_ALLOW_LOADING_UNSIGNED_PLUGINS"].(string); v != pluginID {
		t.Errorf("GF_PLUGINS_ALLOW_LOADING_UNSIGNED_PLUGINS is %q, want %q", v, pluginID)
	}
	want := map[string]string{
		filepath.Join(root, "dist"):                     "/var/lib/grafana/plugins/" + pluginID,
		filepath.Join(root, "provisioning/datasources"): "/etc/grafana/provisioning/datasources",
		filepath.Join(root, "provisioning/dashboards"):  "/etc/grafana/provisioning/dashboards",
		filepath.Join(root, "provisioning/alerting"):    "/etc/grafana/provisioning/alerting",
	}
	for _, m := range g.mounts(t) {
		if w, ok := want[m.source]; ok {
			if m.target != w {
				t.Errorf("grafana mounts %s at %s, want %s", m.source, m.target, w)
			}
			delete(want, m.source)
		}
	}
	for src, dst := range want {
		t.Errorf("grafana does not mount %s at %s", src, dst)
	}
	checkProvider(t, root)

	checkWiring(t, root, full)
}

// checkBindSource fails for a bind-mounted host path that does not exist,
// except dist/, the plugin build's output (git-ignored): there the test
// checks that the build writes it.
func checkBindSource(t *testing.T, service, root string, m mount) {
	t.Helper()
	if _, err := os.Stat(m.source); err == nil {
		return
	}
	if m.source == filepath.Join(root, "dist") {
		mp, err := os.ReadFile(filepath.Join(root, "mage_plugin.go"))
		gi, _ := os.ReadFile(filepath.Join(root, ".gitignore"))
		if err != nil || !strings.Contains(string(mp), `OutputBinaryPath = "dist"`) || !strings.Contains(string(gi), "/dist/") {
			t.Errorf("%s mounts dist/, which does not exist and which the plugin build does not write", service)
		}
		t.Logf("dist/ is not built yet (go run mage.go buildAll writes it); grafana would start without the plugin")
		return
	}
	t.Errorf("%s mounts %s, which does not exist", service, m.source)
}

var fromLine = regexp.MustCompile(`(?i)^FROM\s+(?:--\S+\s+)*(\S+)(?:\s+AS\s+(\S+))?`)

// checkDockerfile checks a Dockerfile the compose file builds: several
// stages, the target among them, a non-root user and a health check in
// the target stage, and COPY sources that exist in the context.
func checkDockerfile(t *testing.T, service, ctx, path, target string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Errorf("%s: Dockerfile: %v", service, err)
		return
	}
	type stage struct {
		name              string
		user, healthcheck bool
		userName          string
	}
	var stages []*stage
	sc := bufio.NewScanner(bytes.NewReader(joinContinuations(b)))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		word := strings.ToUpper(strings.Fields(line)[0])
		if word == "FROM" {
			m := fromLine.FindStringSubmatch(line)
			if m == nil {
				t.Errorf("%s: %s: bad FROM line %q", service, path, line)
				continue
			}
			stages = append(stages, &stage{name: m[2]})
			continue
		}
		if len(stages) == 0 {
			if word != "ARG" {
				t.Errorf("%s: %s: %s before FROM", service, path, word)
			}
			continue
		}
		cur := stages[len(stages)-1]
		switch word {
		case "USER":
			cur.user = true
			cur.userName = strings.Fields(line)[1]
		case "HEALTHCHECK":
			cur.healthcheck = true
		case "COPY", "ADD":
			fields := strings.Fields(line)[1:]
			var srcs []string
			fromStage := false
			for _, f := range fields {
				if strings.HasPrefix(f, "--from=") {
					fromStage = true
				}
				if !strings.HasPrefix(f, "--") {
					srcs = append(srcs, f)
				}
			}
			if fromStage || len(srcs) < 2 {
				continue
			}
			for _, src := range srcs[:len(srcs)-1] {
				if _, err := os.Stat(filepath.Join(ctx, src)); err != nil {
					t.Errorf("%s: %s copies %s, which is not in the build context: %v", service, path, src, err)
				}
			}
		}
	}
	if len(stages) < 2 {
		t.Errorf("%s: %s has %d stage(s); build in one stage and run in a small one", service, path, len(stages))
		return
	}
	final := stages[len(stages)-1]
	if target != "" {
		final = nil
		for _, s := range stages {
			if s.name == target {
				final = s
			}
		}
		if final == nil {
			t.Errorf("%s: target %q is not a stage of %s", service, target, path)
			return
		}
	}
	if !final.user || final.userName == "0" || strings.HasPrefix(final.userName, "root") || strings.HasPrefix(final.userName, "0:") {
		t.Errorf("%s: the %q stage of %s must set a non-root USER (has %q)", service, final.name, path, final.userName)
	}
	if target != "loggen" && !final.healthcheck {
		t.Errorf("%s: the %q stage of %s has no HEALTHCHECK", service, final.name, path)
	}
}

func joinContinuations(b []byte) []byte {
	return regexp.MustCompile(`\\\r?\n`).ReplaceAll(b, []byte(" "))
}

func portOnLoopback(p any) bool {
	switch p := p.(type) {
	case string:
		return strings.HasPrefix(p, "127.0.0.1:")
	case map[string]any:
		return p["host_ip"] == "127.0.0.1"
	}
	return false
}

func pluginJSON(t *testing.T, root string) map[string]any {
	t.Helper()
	for _, p := range []string{"src/plugin.json", "plugin.json"} {
		b, err := os.ReadFile(filepath.Join(root, p))
		if err != nil {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		return m
	}
	t.Fatal("no plugin.json in src/ or the repository root")
	return nil
}

// checkProvider: the dashboard provider reads the folder Grafana mounts.
func checkProvider(t *testing.T, root string) {
	t.Helper()
	var prov struct {
		Providers []struct {
			Options struct {
				Path string `yaml:"path"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	b, err := os.ReadFile(filepath.Join(root, "provisioning/dashboards/dashboards.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &prov); err != nil {
		t.Fatal(err)
	}
	if len(prov.Providers) != 1 || prov.Providers[0].Options.Path != "/etc/grafana/provisioning/dashboards" {
		t.Errorf("the dashboard provider must read /etc/grafana/provisioning/dashboards, where compose mounts the JSON")
	}
}

// checkWiring follows the addresses between the services: the datasources
// reach the server and Prometheus, Prometheus scrapes the server and the
// agent where they listen, the agent ships to the server's gRPC port, and
// each service's configuration file is valid and mounted where its command
// reads it.
func checkWiring(t *testing.T, root string, f composeFile) {
	t.Helper()
	// Server: the config file its command names comes from a mount of
	// deploy/server, and every file there loads.
	srv := f.Services["logsift"]
	var serverCfgFile string
	for _, a := range srv.commandArgs() {
		if v, ok := strings.CutPrefix(a, "-config.file="); ok {
			serverCfgFile = v
		}
	}
	hostCfg := hostPathOf(t, srv, serverCfgFile)
	if hostCfg == "" {
		t.Fatalf("the server reads %s, which no mount provides", serverCfgFile)
	}
	b, err := os.ReadFile(hostCfg)
	if err != nil {
		t.Fatal(err)
	}
	scfg, _ := loadServerConfig(t, hostCfg, b)
	httpPort, grpcPort := portOf(t, scfg.HTTPListenAddress), portOf(t, scfg.GRPCListenAddress)

	// Agent: its config is valid, ships to logsift's gRPC port and serves
	// metrics where Prometheus and the health check look.
	ag := f.Services["agent"]
	agentCfg := hostPathOf(t, ag, flagValue(ag.commandArgs(), "--config"))
	ab, err := os.ReadFile(agentCfg)
	if err != nil {
		t.Fatalf("agent config: %v", err)
	}
	acfg := parseAgentConfig(t, agentCfg, ab)
	if acfg == nil {
		return
	}
	host, port, _ := net.SplitHostPort(acfg.Output.URL)
	if _, ok := f.Services[host]; !ok || host != "logsift" || port != itoa(grpcPort) {
		t.Errorf("the agent ships to %s; the server listens for agents on logsift:%d", acfg.Output.URL, grpcPort)
	}
	metricsPort := portOf(t, acfg.Metrics.ListenAddress)
	if !strings.Contains(healthcheckText(ag), ":"+itoa(metricsPort)+"/ready") {
		t.Errorf("the agent's health check does not probe its metrics port %d", metricsPort)
	}
	if !strings.Contains(healthcheckText(srv), ":"+itoa(httpPort)+"/ready") {
		t.Errorf("the server's health check does not probe its HTTP port %d", httpPort)
	}
	// The agent tails what loggen writes: the glob's directory is the
	// mount of the volume loggen writes into.
	logsDir := filepath.Dir(acfg.Files[0].Paths[0])
	var shared string
	for _, m := range ag.mounts(t) {
		if m.target == logsDir && !m.bind {
			shared = m.source
		}
	}
	writes := false
	for _, m := range f.Services["loggen"].mounts(t) {
		for _, a := range f.Services["loggen"].commandArgs() {
			if m.source == shared && !m.readOnly && strings.HasPrefix(a, m.target+"/") {
				writes = true
			}
		}
	}
	if shared == "" || !writes {
		t.Errorf("the agent follows %s, but loggen does not write a log into the volume mounted there", acfg.Files[0].Paths)
	}
	checkLoggenWrites(t, f.Services["loggen"].commandArgs(), logsDir)
	imp := f.Services["agent-import"].commandArgs()
	if len(imp) < 2 || imp[0] != "import" || flagValue(imp, "--workspace") == "" {
		t.Errorf("agent-import does not import into a workspace: %v", imp)
	}

	// Prometheus scrapes the server and the agent where they listen.
	prom := f.Services["prometheus"]
	var promCfg string
	for _, m := range prom.mounts(t) {
		if m.target == "/etc/prometheus/prometheus.yml" {
			promCfg = m.source
		}
	}
	pb, err := os.ReadFile(promCfg)
	if err != nil {
		t.Fatalf("prometheus config: %v", err)
	}
	var pc struct {
		ScrapeConfigs []struct {
			JobName       string `yaml:"job_name"`
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	if err := strictYAML(pb, &struct {
		Global        map[string]any `yaml:"global"`
		ScrapeConfigs any            `yaml:"scrape_configs"`
	}{}); err != nil {
		t.Errorf("%s: %v", promCfg, err)
	}
	if err := yaml.Unmarshal(pb, &pc); err != nil {
		t.Fatal(err)
	}
	targets := map[string]string{}
	for _, sc := range pc.ScrapeConfigs {
		for _, s := range sc.StaticConfigs {
			for _, tg := range s.Targets {
				targets[tg] = sc.JobName
			}
		}
	}
	if targets["logsift:"+itoa(httpPort)] != "logsift" {
		t.Errorf("prometheus does not scrape logsift:%d as job logsift (the dashboards select job=\"logsift\")", httpPort)
	}
	if targets["agent:"+itoa(metricsPort)] == "" {
		t.Errorf("prometheus does not scrape the agent at agent:%d", metricsPort)
	}

	// The provisioned datasources point at these services.
	var ds struct {
		Datasources []struct {
			Type string `yaml:"type"`
			URL  string `yaml:"url"`
		} `yaml:"datasources"`
	}
	db, _ := os.ReadFile(filepath.Join(root, "provisioning/datasources/datasources.yaml"))
	if err := yaml.Unmarshal(db, &ds); err != nil {
		t.Fatal(err)
	}
	wantURL := map[string]string{"logsift-datasource": "http://logsift:" + itoa(httpPort), "loki": "http://logsift:" + itoa(httpPort), "prometheus": "http://prometheus:9090"}
	for _, d := range ds.Datasources {
		if w := wantURL[d.Type]; d.URL != w {
			t.Errorf("datasource %s points at %s; in compose it is %s", d.Type, d.URL, w)
		}
	}
}

func hostPathOf(t *testing.T, s composeService, containerPath string) string {
	t.Helper()
	for _, m := range s.mounts(t) {
		if !m.bind {
			continue
		}
		if containerPath == m.target {
			return m.source
		}
		if rel, err := filepath.Rel(m.target, containerPath); err == nil && !strings.HasPrefix(rel, "..") {
			return filepath.Join(m.source, rel)
		}
	}
	return ""
}

func healthcheckText(s composeService) string {
	b, _ := json.Marshal(s.Healthcheck["test"])
	return string(b)
}

func itoa(n int32) string { return strconv.Itoa(int(n)) }

// checkLoggenWrites runs loggen with the compose file's own command line,
// its log directory moved to a temporary one, and checks that it writes a
// line instead of stopping at its usage message.
func checkLoggenWrites(t *testing.T, args []string, logsDir string) {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "loggen")
	if out, err := exec.Command("go", "build", "-o", bin, "./loggen").CombinedOutput(); err != nil {
		t.Fatalf("build loggen: %v\n%s", err, out)
	}
	dir := t.TempDir()
	var run []string
	for _, a := range args {
		run = append(run, strings.Replace(a, logsDir, dir, 1))
	}
	cmd := exec.Command(bin, run...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start loggen: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	// stop ends loggen and returns its output, which is safe to read only
	// once it has exited.
	stop := func() string {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		err := <-exited
		exited <- err
		return out.String()
	}
	defer stop()
	// Wait for a first line (loggen writes 5 a second), however slow the
	// machine; ending before one is the failure this check is for.
	deadline := time.After(20 * time.Second)
	for {
		logs, _ := filepath.Glob(filepath.Join(dir, "*"))
		for _, l := range logs {
			if b, _ := os.ReadFile(l); bytes.Contains(b, []byte("\n")) {
				return
			}
		}
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("loggen %v ended before writing a line (%v): %s", args, err, out.String())
		case <-deadline:
			t.Fatalf("loggen %v wrote no line into the log directory in 20 s: %s", args, stop())
		case <-time.After(50 * time.Millisecond):
		}
	}
}
