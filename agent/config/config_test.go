package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/logsift/logsift/pkg/chunk"
	"github.com/logsift/logsift/pkg/servicename"
)

func TestParseAppliesDefaultsAndResolvesPaths(t *testing.T) {
	cfg, err := Parse("/etc/logsift/agent.yaml", []byte(`
data_dir: data
output:
  type: Loki
  url: http://loki:3100
  tenant: team-a
files:
  - paths: ["logs/**/*.log", /var/log/syslog]
    exclude: ["logs/secret/**"]
    labels: {job: web, env: prod}
chunks:
  target_bytes: 2MiB
  max_age: 2s
  block_bytes: 64KiB
  codec: lz4
spool:
  max_bytes: 512MB
`))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.DataDir != "/etc/logsift/data" || cfg.SpoolDir() != "/etc/logsift/data/spool" || cfg.PositionsFile() != "/etc/logsift/data/positions.json" {
		t.Fatalf("paths: %q %q %q", cfg.DataDir, cfg.SpoolDir(), cfg.PositionsFile())
	}
	if cfg.Output.Type != "loki" || cfg.Files[0].Paths[0] != "/etc/logsift/logs/**/*.log" || cfg.Files[0].Exclude[0] != "/etc/logsift/logs/secret/**" {
		t.Fatalf("%+v", cfg)
	}
	if o := cfg.Chunks.ChunkOptions(); o != (chunk.Options{BlockSize: 64 << 10, Codec: chunk.CodecLZ4}) {
		t.Fatalf("chunk options %+v", o)
	}
	if cfg.Chunks.TargetBytes != 2<<20 || cfg.Chunks.MaxAge != 2*time.Second || cfg.Spool.MaxBytes != 512_000_000 {
		t.Fatalf("sizes %+v %+v", cfg.Chunks, cfg.Spool)
	}
	if cfg.Tail.MaxOpenFiles != 512 || cfg.Output.MaxChunkBytes != 16<<20 {
		t.Fatalf("defaults lost: %+v", cfg.Tail)
	}
}

func TestParseReportsEveryErrorWithItsLine(t *testing.T) {
	_, err := Parse("a.yaml", []byte(`output:
  type: kafka
files:
  - paths: []
tail:
  start_at: middle
  max_open_files: 0
spool:
  max_bytes: 1MiB
chunks:
  codec: gzip
`))
	if err == nil {
		t.Fatal("no error")
	}
	msg := err.Error()
	for _, want := range []string{
		`a.yaml:2: output.type: "kafka" is not an output type`,
		`a.yaml:4: files[0].paths: required`,
		`a.yaml:6: tail.start_at: "middle"`,
		`a.yaml:7: tail.max_open_files: must be positive`,
		`a.yaml:9: spool.max_bytes: must be at least twice segment_bytes`,
		`a.yaml:11: chunks.codec: "gzip": use lz4 or zstd`,
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("missing %q in\n%s", want, msg)
		}
	}
}

func TestParseRejectsUnknownFieldsAndBadTypes(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"output: {url: x:1}\nfiles: [{paths: [/a]}]\ntypo_field: 1\n", "line 3: field typo_field not found"},
		{"chunks: {target_bytes: lots}\n", `"lots" is not a size`},
		{"tail: {poll_interval: often}\n", "line 1"},
	} {
		_, err := Parse("c.yaml", []byte(c.in))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want %q", c.in, err, c.want)
		}
	}
}

func TestParseByteSize(t *testing.T) {
	for in, want := range map[string]int64{"4096": 4096, "512KiB": 512 << 10, "16MiB": 16 << 20, "1GB": 1e9, "1.5KiB": 1536, "10 MB": 1e7} {
		got, err := ParseByteSize(in)
		if err != nil || got != want {
			t.Errorf("%q: %d %v, want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-1", "abc", "1XB", "1e30GiB"} {
		if _, err := ParseByteSize(in); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
}

// FuzzParse feeds arbitrary YAML to the config parser: it returns a config
// or an error, never panics.
func FuzzParse(f *testing.F) {
	f.Add([]byte("output: {url: 127.0.0.1:9095}\nfiles: [{paths: [/var/log/*.log]}]\n"))
	f.Add([]byte("output:\n  type: loki\n  url: http://x:3100\nfiles:\n  - paths: ['/a/**/b']\n    labels: {a: b}\n"))
	f.Add([]byte("chunks: {target_bytes: 1MiB}"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, b []byte) {
		cfg, err := Parse("f.yaml", b)
		if err == nil && (cfg.Output.URL == "" || len(cfg.Files) == 0) {
			t.Fatal("accepted a config without output or files")
		}
	})
}

func TestTokenSettings(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("good.token", "\n  lsk_abc123  \n")
	write("empty.token", " \n\t\n")
	write("spaced.token", "lsk_abc def\n")
	base := "output: {url: 'h:1'%s}\nfiles: [{paths: [/a]}]\n"

	// token_file is resolved against the configuration's directory and
	// read trimmed.
	cfg, err := Parse(filepath.Join(dir, "agent.yaml"), []byte(fmt.Sprintf(base, ", token_file: good.token")))
	if err != nil {
		t.Fatal(err)
	}
	if tok, err := cfg.Output.ResolveToken(); err != nil || tok != "lsk_abc123" || cfg.Output.TokenFile != filepath.Join(dir, "good.token") {
		t.Fatalf("token %q (%v) from %q", tok, err, cfg.Output.TokenFile)
	}
	cfg, err = Parse(filepath.Join(dir, "agent.yaml"), []byte(fmt.Sprintf(base, ", token: lsk_inline")))
	if err != nil {
		t.Fatal(err)
	}
	if tok, err := cfg.Output.ResolveToken(); err != nil || tok != "lsk_inline" {
		t.Fatalf("token %q (%v)", tok, err)
	}

	for _, c := range []struct{ extra, want string }{
		{", token: lsk_a, token_file: good.token", "output.token_file: token and token_file are mutually exclusive"},
		{", token_file: missing.token", "output.token_file: read token file: stat " + filepath.Join(dir, "missing.token") + ": no such file"},
		{", token_file: empty.token", "is empty"},
		{", token_file: spaced.token", "has a space, control or non-ASCII character at byte 7"},
		{", token: 'lsk_a b'", "output.token: the token has a space"},
	} {
		_, err := Parse(filepath.Join(dir, "agent.yaml"), []byte(fmt.Sprintf(base, c.extra)))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.extra, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "lsk_a b") {
			t.Errorf("the error quotes the token: %v", err)
		}
	}
}

func TestDiscoverySettings(t *testing.T) {
	base := "output: {url: \"x:1\"}\nfiles: [{paths: [/a]}]\ndata_dir: /d\n"
	cfg, err := Parse("c.yaml", []byte(base))
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.DiscoverLogLevels || strings.Join(cfg.DiscoverServiceName, ",") != strings.Join(servicename.DefaultLabels, ",") {
		t.Fatalf("defaults: %v %v", cfg.DiscoverLogLevels, cfg.DiscoverServiceName)
	}
	// The default list is the config's own copy.
	cfg.DiscoverServiceName[0] = "changed"
	if servicename.DefaultLabels[0] != "service" {
		t.Fatal("the configuration shares servicename.DefaultLabels")
	}
	cfg, err = Parse("c.yaml", []byte(base+"discover_log_levels: false\ndiscover_service_name: []\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.DiscoverLogLevels || len(cfg.DiscoverServiceName) != 0 {
		t.Fatalf("off: %v %v", cfg.DiscoverLogLevels, cfg.DiscoverServiceName)
	}
	cfg, err = Parse("c.yaml", []byte(base+"discover_service_name: [team, job]\n"))
	if err != nil || strings.Join(cfg.DiscoverServiceName, ",") != "team,job" {
		t.Fatalf("custom list: %v %v", cfg, err)
	}
	_, err = Parse("c.yaml", []byte(base+"discover_service_name:\n  - app\n  - 9lives\n  - service_name\n  - app\n"))
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{
		`c.yaml:6: discover_service_name[1]: "9lives" is not a valid label name`,
		`c.yaml:7: discover_service_name[2]: service_name is what is discovered`,
		`c.yaml:8: discover_service_name[3]: "app" is listed twice`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in\n%s", want, err)
		}
	}
	if _, err := Parse("c.yaml", []byte(base+"discover_log_levels: sometimes\n")); err == nil {
		t.Error("discover_log_levels: sometimes accepted")
	}
}
