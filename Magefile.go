//go:build mage

// Build, test and benchmark targets for logsift. Run them with
// `go run mage.go <target>` (no mage install needed) or `mage <target>`.
package main

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
)

// Default is what `mage` alone runs.
var Default = Test

func run(name string, args ...string) error {
	fmt.Println("+", name, strings.Join(args, " "))
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	return cmd.Run()
}

// Build compiles the server into bin/.
func Build() error {
	ext := ""
	if runtime.GOOS == "windows" {
		ext = ".exe"
	}
	return run("go", "build", "-o", "bin/logsift"+ext, "./pkg/cmd/logsift")
}

// Test runs every test: gofmt, vet, the Go unit, fuzz-seed and end-to-end tests,
// the race detector on the concurrent core, and the plugin frontend's
// checks and browser test. It first installs the
// real services the tests run against (redis-server from Debian) when it
// can; with LOGSIFT_REQUIRE_SERVICES=1 (as .ci/run sets) a test whose
// service is missing fails instead of skipping.
func Test() error {
	if err := ensurePackages(map[string]string{"redis-server": "redis-server", "prometheus": "prometheus", "docker-compose": "docker-compose"}); err != nil {
		return err
	}
	if err := checkGofmt(); err != nil {
		return err
	}
	if err := run("go", "vet", "./..."); err != nil {
		return err
	}
	if err := run("go", "test", "-count=1", "-timeout=20m", "./..."); err != nil {
		return err
	}
	if err := run("go", "test", "-count=1", "-race", "-timeout=10m", "./pkg/store/...", "./pkg/query/...", "./pkg/ingest/..."); err != nil {
		return err
	}
	// The plugin's frontend: npm install when needed, typecheck, lint,
	// jest, the production build, and the editors in headless chromium.
	return run("bash", "scripts/test-frontend.sh")
}

// checkGofmt fails when gofmt would change a tracked Go file, naming them.
func checkGofmt() error {
	files, err := exec.Command("git", "ls-files", "*.go").Output()
	if err != nil {
		return fmt.Errorf("list Go files: %w", err)
	}
	out, err := exec.Command("gofmt", append([]string{"-l"}, strings.Fields(string(files))...)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("gofmt: %w: %s", err, out)
	}
	if s := strings.TrimSpace(string(out)); s != "" {
		return fmt.Errorf("gofmt would change (run gofmt -w on them):\n%s", s)
	}
	return nil
}

// ensurePackages installs the Debian packages whose commands are missing
// (command name to package name), when running as root with apt-get, as
// on CI machines. Elsewhere it says what is missing and goes on: the
// tests that need it skip, unless LOGSIFT_REQUIRE_SERVICES is set.
func ensurePackages(cmds map[string]string) error {
	var missing []string
	for cmd, pkg := range cmds {
		if _, err := exec.LookPath(cmd); err != nil {
			missing = append(missing, pkg)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	_, aptErr := exec.LookPath("apt-get")
	if os.Geteuid() != 0 || aptErr != nil {
		fmt.Printf("missing %s: install it (apt-get install -y %s) to run the tests that need it\n", strings.Join(missing, ", "), strings.Join(missing, " "))
		return nil
	}
	if err := run("apt-get", "update", "-q"); err != nil {
		return fmt.Errorf("apt-get update: %w", err)
	}
	args := append([]string{"install", "-y", "-q", "--no-install-recommends"}, missing...)
	if err := run("apt-get", args...); err != nil {
		return fmt.Errorf("install %s: %w", strings.Join(missing, " "), err)
	}
	return nil
}

// Demo runs the main job: the server on the embedded default with sample logs.
func Demo() error {
	return run("go", "run", "./pkg/cmd/logsift", "demo")
}

// Bench runs the benchmarks docs/benchmarks.md reports: the end-to-end
// comparison with VictoriaLogs (when ~/go/bin/victoria-logs exists), the
// agent's import end to end, and the Go benchmarks of the query engine,
// the store, the event stream, the agent and the cache. Set LOGSIFT_BENCH_SIZE (default 1GB) for the
// end-to-end runs.
func Bench() error {
	size := os.Getenv("LOGSIFT_BENCH_SIZE")
	if size == "" {
		size = "1GB"
	}
	steps := [][]string{
		{"go", "run", "./pkg/cmd/logsift-bench", "-size", size},
		{"go", "run", "./pkg/cmd/logsift-bench", "-import", "-size", size},
		{"go", "test", "-run", "^$", "-bench", "SumCountOverTime|SumByStatusPattern|RateLineFilter|AccessPattern|JSONFilter|CountByLevel", "./pkg/query"},
		{"go", "test", "-run", "^$", "-bench", "AppendParallel", "-benchtime", "300x", "./pkg/store"},
		{"go", "test", "-run", "^$", "-bench", ".", "./pkg/events/stream"},
		{"go", "test", "-run", "^$", "-bench", "Parse|Sample", "./pkg/pipeline"},
		{"go", "test", "-run", "^$", "-bench", "Encode|DecodeScan", "./pkg/chunk"},
		{"go", "test", "-run", "^$", "-bench", "TailOneFile|Tail1000Files", "./agent/tail"},
		{"go", "test", "-run", "^$", "-bench", "ImportPlain|ImportGzip", "./agent/importer"},
		{"go", "test", "-run", "^$", "-bench", "MemoryGet|RealRedisGet", "./pkg/cache"},
		{"go", "test", "-run", "^$", "-bench", "CachedQueryWarm", "./pkg/query"},
		{"go", "test", "-run", "^$", "-bench", ".", "./datasource/e2e"},
	}
	for _, s := range steps {
		if err := run(s[0], s[1:]...); err != nil {
			return err
		}
	}
	return nil
}
