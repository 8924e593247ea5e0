// Package config reads and validates the agent's YAML configuration: where
// to ship (logsift's gRPC chunk stream or a Loki push URL), which files to
// follow with which labels, and the limits of spool, tailer and chunks.
// Every field has a default except the output and the files; errors name
// the file and line.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/logsift/logsift/agent/detect"
	"github.com/logsift/logsift/agent/glob"
	"github.com/logsift/logsift/pkg/chunk"
	"github.com/logsift/logsift/pkg/labels"
	"github.com/logsift/logsift/pkg/servicename"
	"github.com/logsift/logsift/pkg/tenant"
)

// Config is the agent's configuration file.
type Config struct {
	// DataDir holds the spool, the positions file and the dead-letter
	// folder unless they are set on their own.
	DataDir string `yaml:"data_dir"`
	// MemoryLimit is the Go runtime's soft memory limit (GOMEMLIMIT); the
	// GC works harder as the heap nears it. 0 disables it. Default 32MiB.
	MemoryLimit ByteSize    `yaml:"memory_limit"`
	Output      Output      `yaml:"output"`
	Files       []FileGroup `yaml:"files"`
	Tail        Tail        `yaml:"tail"`
	Chunks      Chunks      `yaml:"chunks"`
	Spool       Spool       `yaml:"spool"`
	Positions   Positions   `yaml:"positions"`
	Metrics     Metrics     `yaml:"metrics"`
	Log         Log         `yaml:"log"`
	// Detection corrects timestamp, level and multi-line detection of
	// `logsift-agent import` per path glob (see "Workspace import" in
	// docs/agent.md).
	Detection detect.Overrides `yaml:"detection"`
	// DiscoverLogLevels adds structured metadata detected_level to every
	// tailed line and imported record, as Loki's (and logsift's) push API
	// does with its option of the same name: the server stores the
	// agent's chunks as sent and cannot add it later. Grafana colours
	// lines by it, Logs Drilldown groups by it, and the provisioned
	// error-lines alert counts it. Default true.
	DiscoverLogLevels bool `yaml:"discover_log_levels"`
	// DiscoverServiceName lists the labels, in order, from which a stream
	// without a service_name label gets one, as Loki's option of the same
	// name does: the first label the stream has. A tailed file's stream
	// with none of them gets "unknown_service", an imported file's stream
	// the workspace name. Default Loki's list, the server's default too;
	// an empty list turns it off.
	DiscoverServiceName []string `yaml:"discover_service_name"`
}

// Output says where chunks go.
type Output struct {
	// Type is "logsift" (gRPC chunk stream, the default) or "loki" (Loki
	// push API, protobuf+snappy).
	Type string `yaml:"type"`
	// URL is host:port of logsift's gRPC listener, or the base URL of a
	// Loki-compatible server (http://host:3100).
	URL string `yaml:"url"`
	// Tenant is sent as X-Scope-OrgID; empty sends none.
	Tenant string `yaml:"tenant"`
	// Token is an API token sent with every call: gRPC metadata
	// "authorization: Bearer <token>", or the Authorization header of the
	// Loki output. TokenFile names a file holding it instead (read once at
	// start, surrounding white space trimmed), which keeps the secret out
	// of the configuration; the two are mutually exclusive.
	Token     string `yaml:"token"`
	TokenFile string `yaml:"token_file"`
	TLS       TLS    `yaml:"tls"`
	// MaxInflight bounds chunks sent and not yet acknowledged (logsift).
	// The server acknowledges a chunk once it is fsynced, so a large
	// import is bound by how many acknowledgements it waits for at once:
	// 64 kept two cores busy where 8 left them half idle (docs/benchmarks.md).
	MaxInflight int `yaml:"max_inflight"`
	// MaxChunkBytes is the largest chunk the server accepts (logsift).
	MaxChunkBytes ByteSize `yaml:"max_chunk_bytes"`
	// Timeout bounds one push (loki).
	Timeout time.Duration `yaml:"timeout"`
	// BatchBytes bounds the encoded chunks of one push (loki).
	BatchBytes ByteSize `yaml:"batch_bytes"`
	// MinBackoff and MaxBackoff pace retries (jittered exponential).
	MinBackoff time.Duration `yaml:"min_backoff"`
	MaxBackoff time.Duration `yaml:"max_backoff"`
}

// TLS configures a TLS connection to the server.
type TLS struct {
	Enabled            bool   `yaml:"enabled"`
	CAFile             string `yaml:"ca_file"`
	ServerName         string `yaml:"server_name"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
}

// FileGroup is a set of globs sharing static labels.
type FileGroup struct {
	// Paths are globs; "**" matches any number of directories. Relative
	// paths are relative to the configuration file's directory.
	Paths   []string `yaml:"paths"`
	Exclude []string `yaml:"exclude"`
	// Labels are added to every stream of the group; "filename" is set by
	// the agent to the file's path.
	Labels map[string]string `yaml:"labels"`
}

// Tail tunes file following.
type Tail struct {
	PollInterval   time.Duration `yaml:"poll_interval"`
	RescanInterval time.Duration `yaml:"rescan_interval"`
	IdleTimeout    time.Duration `yaml:"idle_timeout"`
	DrainTimeout   time.Duration `yaml:"drain_timeout"`
	MaxOpenFiles   int           `yaml:"max_open_files"`
	Workers        int           `yaml:"workers"`
	MaxLineBytes   ByteSize      `yaml:"max_line_bytes"`
	ReadBufferSize ByteSize      `yaml:"read_buffer_bytes"`
	// StartAt is "beginning" or "end": where files without a position
	// start on an agent's very first run.
	StartAt string `yaml:"start_at"`
}

// Chunks tunes chunk building.
type Chunks struct {
	TargetBytes ByteSize      `yaml:"target_bytes"`
	MaxAge      time.Duration `yaml:"max_age"`
	BufferBytes ByteSize      `yaml:"buffer_bytes"`
	BlockBytes  ByteSize      `yaml:"block_bytes"`
	// Codec compresses the chunks: zstd (the default) or lz4, whose chunks
	// are about 40 % larger on the spool, the wire and the server's disk
	// but decompress about 2.5 times faster in the server's queries
	// (docs/formats/chunk.md).
	Codec string `yaml:"codec"`
}

// ChunkOptions is the chunk encoder's configuration. Call it on a
// validated configuration: an unknown codec falls back to the default.
func (c Chunks) ChunkOptions() chunk.Options {
	codec, _ := chunk.ParseCodec(c.Codec)
	return chunk.Options{BlockSize: int(c.BlockBytes), Codec: codec}
}

// Spool tunes the on-disk queue.
type Spool struct {
	Dir                string   `yaml:"dir"`
	MaxBytes           ByteSize `yaml:"max_bytes"`
	SegmentBytes       ByteSize `yaml:"segment_bytes"`
	DeadLetterDir      string   `yaml:"dead_letter_dir"`
	DeadLetterMaxBytes ByteSize `yaml:"dead_letter_max_bytes"`
}

// Positions configures the positions file.
type Positions struct {
	File      string        `yaml:"file"`
	Retention time.Duration `yaml:"retention"`
}

// Metrics configures the /metrics listener.
type Metrics struct {
	// ListenAddress serves /metrics; "" disables it.
	ListenAddress string `yaml:"listen_address"`
}

// Log configures the agent's own log.
type Log struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // text or json
}

// Default returns the configuration an empty file gives (no files, no
// output URL: both must be set).
func Default() Config {
	return Config{
		DataDir: "/var/lib/logsift-agent",
		Output: Output{
			Type:          "logsift",
			MaxInflight:   64,
			MaxChunkBytes: 16 << 20,
			Timeout:       30 * time.Second,
			BatchBytes:    1 << 20,
			MinBackoff:    250 * time.Millisecond,
			MaxBackoff:    30 * time.Second,
		},
		Tail: Tail{
			PollInterval:   time.Second,
			RescanInterval: 10 * time.Second,
			IdleTimeout:    time.Minute,
			DrainTimeout:   5 * time.Second,
			MaxOpenFiles:   512,
			MaxLineBytes:   256 << 10,
			ReadBufferSize: 256 << 10,
			StartAt:        "beginning",
		},
		Chunks: Chunks{
			TargetBytes: 1 << 20,
			MaxAge:      5 * time.Second,
			BufferBytes: 8 << 20,
		},
		MemoryLimit: 32 << 20,
		Spool: Spool{
			MaxBytes:           1 << 30,
			SegmentBytes:       16 << 20,
			DeadLetterMaxBytes: 256 << 20,
		},
		Positions: Positions{Retention: 24 * time.Hour},
		Metrics:   Metrics{ListenAddress: "127.0.0.1:9080"},
		Log:       Log{Level: "info", Format: "text"},

		DiscoverLogLevels:   true,
		DiscoverServiceName: slices.Clone(servicename.DefaultLabels),
	}
}

// SpoolDir, PositionsFile and DeadLetterDir resolve their defaults under
// DataDir.
func (c *Config) SpoolDir() string {
	if c.Spool.Dir != "" {
		return c.Spool.Dir
	}
	return filepath.Join(c.DataDir, "spool")
}

// PositionsFile is the positions file path.
func (c *Config) PositionsFile() string {
	if c.Positions.File != "" {
		return c.Positions.File
	}
	return filepath.Join(c.DataDir, "positions.json")
}

// DeadLetterDir is where rejected chunks go.
func (c *Config) DeadLetterDir() string {
	if c.Spool.DeadLetterDir != "" {
		return c.Spool.DeadLetterDir
	}
	return filepath.Join(c.DataDir, "dead-letter")
}

// Errors is every problem found in a configuration, one per line.
type Errors []string

func (e Errors) Error() string { return strings.Join(e, "\n") }

// Load reads and validates a configuration file.
func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Parse(path, b)
}

// Parse decodes and validates a configuration; name is used in messages
// and relative paths are resolved against its directory.
func Parse(name string, b []byte) (*Config, error) {
	cfg := Default()
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
		return nil, Errors{fmt.Sprintf("%s: %s", name, strings.TrimPrefix(err.Error(), "yaml: "))}
	}
	var root yaml.Node
	_ = yaml.Unmarshal(b, &root)
	base, _ := filepath.Abs(filepath.Dir(name))
	cfg.resolve(base)
	if errs := cfg.validate(name, &root); len(errs) > 0 {
		return nil, errs
	}
	return &cfg, nil
}

func (c *Config) resolve(base string) {
	abs := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(base, p)
	}
	c.DataDir = abs(c.DataDir)
	c.Spool.Dir = abs(c.Spool.Dir)
	c.Spool.DeadLetterDir = abs(c.Spool.DeadLetterDir)
	c.Positions.File = abs(c.Positions.File)
	c.Output.TokenFile = abs(c.Output.TokenFile)
	for i := range c.Files {
		for j := range c.Files[i].Paths {
			c.Files[i].Paths[j] = abs(c.Files[i].Paths[j])
		}
		for j := range c.Files[i].Exclude {
			c.Files[i].Exclude[j] = abs(c.Files[i].Exclude[j])
		}
	}
	c.Output.Type = strings.ToLower(c.Output.Type)
	c.Tail.StartAt = strings.ToLower(c.Tail.StartAt)
}

func (c *Config) validate(name string, root *yaml.Node) Errors {
	var errs Errors
	add := func(path []any, format string, args ...any) {
		loc := name
		if line := lineOf(root, path); line > 0 {
			loc = fmt.Sprintf("%s:%d", name, line)
		}
		errs = append(errs, fmt.Sprintf("%s: %s: %s", loc, dotted(path), fmt.Sprintf(format, args...)))
	}

	o := &c.Output
	switch o.Type {
	case "logsift":
		if o.URL == "" {
			add([]any{"output", "url"}, "required: host:port of the logsift server's gRPC listener")
		} else if _, port, err := net.SplitHostPort(o.URL); err != nil || strings.Contains(o.URL, "://") || !validPort(port) {
			add([]any{"output", "url"}, "%q is not host:port (the gRPC output takes an address, not a URL)", o.URL)
		}
	case "loki":
		u, err := url.Parse(o.URL)
		switch {
		case o.URL == "":
			add([]any{"output", "url"}, "required: the Loki-compatible server's base URL, e.g. http://loki:3100")
		case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
			add([]any{"output", "url"}, "%q is not an http(s) URL", o.URL)
		}
	default:
		add([]any{"output", "type"}, "%q is not an output type; use logsift or loki", o.Type)
	}
	if o.Tenant != "" {
		if err := tenant.Validate(o.Tenant); err != nil {
			add([]any{"output", "tenant"}, "%v", err)
		}
	}
	switch {
	case o.Token != "" && o.TokenFile != "":
		add([]any{"output", "token_file"}, "token and token_file are mutually exclusive; keep one")
	case o.Token != "":
		if err := CheckToken(o.Token); err != nil {
			add([]any{"output", "token"}, "%v", err)
		}
	case o.TokenFile != "":
		if _, err := ReadTokenFile(o.TokenFile); err != nil {
			add([]any{"output", "token_file"}, "%v", err)
		}
	}
	if o.TLS.CAFile != "" {
		if _, err := os.Stat(o.TLS.CAFile); err != nil {
			add([]any{"output", "tls", "ca_file"}, "%v", err)
		}
	}
	positive := func(path []any, v int64) {
		if v <= 0 {
			add(path, "must be positive")
		}
	}
	positiveDur := func(path []any, v time.Duration) {
		if v <= 0 {
			add(path, "must be a positive duration like 5s")
		}
	}
	positive([]any{"output", "max_inflight"}, int64(o.MaxInflight))
	positive([]any{"output", "max_chunk_bytes"}, int64(o.MaxChunkBytes))
	positive([]any{"output", "batch_bytes"}, int64(o.BatchBytes))
	positiveDur([]any{"output", "timeout"}, o.Timeout)
	positiveDur([]any{"output", "min_backoff"}, o.MinBackoff)
	positiveDur([]any{"output", "max_backoff"}, o.MaxBackoff)
	if o.MaxBackoff > 0 && o.MinBackoff > o.MaxBackoff {
		add([]any{"output", "max_backoff"}, "is below min_backoff (%s)", o.MinBackoff)
	}

	if c.MemoryLimit < 0 {
		add([]any{"memory_limit"}, "must not be negative")
	}
	if len(c.Files) == 0 {
		add([]any{"files"}, "required: at least one group of paths to follow")
	}
	for i, g := range c.Files {
		if len(g.Paths) == 0 {
			add([]any{"files", i, "paths"}, "required: at least one glob")
		}
		for j, p := range g.Paths {
			if err := checkPattern(p); err != nil {
				add([]any{"files", i, "paths", j}, "%v", err)
			}
		}
		for j, p := range g.Exclude {
			if err := checkPattern(p); err != nil {
				add([]any{"files", i, "exclude", j}, "%v", err)
			}
		}
		for k, v := range g.Labels {
			switch {
			case k == "filename":
				add([]any{"files", i, "labels", k}, "the agent sets filename itself")
			case !labels.ValidName(k):
				add([]any{"files", i, "labels", k}, "%q is not a valid label name ([a-zA-Z_][a-zA-Z0-9_]*)", k)
			case v == "":
				add([]any{"files", i, "labels", k}, "empty value; drop the label instead")
			}
		}
	}

	t := &c.Tail
	positiveDur([]any{"tail", "poll_interval"}, t.PollInterval)
	positiveDur([]any{"tail", "rescan_interval"}, t.RescanInterval)
	positiveDur([]any{"tail", "idle_timeout"}, t.IdleTimeout)
	positiveDur([]any{"tail", "drain_timeout"}, t.DrainTimeout)
	positive([]any{"tail", "max_open_files"}, int64(t.MaxOpenFiles))
	if t.Workers < 0 {
		add([]any{"tail", "workers"}, "must not be negative (0 means one per core)")
	}
	positive([]any{"tail", "max_line_bytes"}, int64(t.MaxLineBytes))
	if t.ReadBufferSize < 4<<10 {
		add([]any{"tail", "read_buffer_bytes"}, "must be at least 4KiB")
	}
	if t.StartAt != "beginning" && t.StartAt != "end" {
		add([]any{"tail", "start_at"}, "%q: use beginning or end", t.StartAt)
	}

	ch := &c.Chunks
	positive([]any{"chunks", "target_bytes"}, int64(ch.TargetBytes))
	positiveDur([]any{"chunks", "max_age"}, ch.MaxAge)
	positive([]any{"chunks", "buffer_bytes"}, int64(ch.BufferBytes))
	if ch.BlockBytes != 0 && (ch.BlockBytes < 4<<10 || ch.BlockBytes > 4<<20) {
		add([]any{"chunks", "block_bytes"}, "must be between 4KiB and 4MiB (0 for the default)")
	}
	if _, err := chunk.ParseCodec(ch.Codec); err != nil {
		add([]any{"chunks", "codec"}, "%q: use lz4 or zstd", ch.Codec)
	}
	if ch.TargetBytes+t.MaxLineBytes > o.MaxChunkBytes {
		add([]any{"chunks", "target_bytes"}, "target_bytes plus tail.max_line_bytes (%s) must stay below output.max_chunk_bytes (%s)", t.MaxLineBytes+ch.TargetBytes, o.MaxChunkBytes)
	}

	sp := &c.Spool
	positive([]any{"spool", "max_bytes"}, int64(sp.MaxBytes))
	positive([]any{"spool", "segment_bytes"}, int64(sp.SegmentBytes))
	positive([]any{"spool", "dead_letter_max_bytes"}, int64(sp.DeadLetterMaxBytes))
	if sp.MaxBytes > 0 && sp.MaxBytes < 2*sp.SegmentBytes {
		add([]any{"spool", "max_bytes"}, "must be at least twice segment_bytes (%s)", sp.SegmentBytes)
	}
	if c.DataDir == "" && (sp.Dir == "" || c.Positions.File == "") {
		add([]any{"data_dir"}, "required unless spool.dir and positions.file are both set")
	}
	positiveDur([]any{"positions", "retention"}, c.Positions.Retention)

	if a := c.Metrics.ListenAddress; a != "" {
		if _, _, err := net.SplitHostPort(a); err != nil {
			add([]any{"metrics", "listen_address"}, "%q is not host:port: %v", a, err)
		}
	}
	switch strings.ToLower(c.Log.Level) {
	case "debug", "info", "warn", "error":
	default:
		add([]any{"log", "level"}, "%q: use debug, info, warn or error", c.Log.Level)
	}
	switch strings.ToLower(c.Log.Format) {
	case "text", "json":
	default:
		add([]any{"log", "format"}, "%q: use text or json", c.Log.Format)
	}
	seen := map[string]bool{}
	for i, l := range c.DiscoverServiceName {
		switch {
		case !labels.ValidName(l):
			add([]any{"discover_service_name", i}, "%q is not a valid label name ([a-zA-Z_][a-zA-Z0-9_]*)", l)
		case l == servicename.Label:
			add([]any{"discover_service_name", i}, "service_name is what is discovered; list the labels it is taken from")
		case seen[l]:
			add([]any{"discover_service_name", i}, "%q is listed twice", l)
		}
		seen[l] = true
	}
	return errs
}

// maxTokenFileBytes bounds what is read from a token file: a token is
// short, and a wrong path (a log file, a device) must not be read whole.
const maxTokenFileBytes = 64 << 10

// ReadTokenFile reads an API token from a file, trimming surrounding white
// space (an editor's trailing newline), and checks it.
func ReadTokenFile(path string) (string, error) {
	// Only regular files: opening a FIFO or a terminal would block.
	if fi, err := os.Stat(path); err != nil {
		return "", fmt.Errorf("read token file: %w", err)
	} else if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("token file %s is not a regular file", path)
	}
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("read token file: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxTokenFileBytes+1))
	if err != nil {
		return "", fmt.Errorf("read token file %s: %w", path, err)
	}
	if len(b) > maxTokenFileBytes {
		return "", fmt.Errorf("token file %s is over %d KiB; is it the right file?", path, maxTokenFileBytes>>10)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("token file %s is empty", path)
	}
	if err := CheckToken(tok); err != nil {
		return "", fmt.Errorf("token file %s: %w", path, err)
	}
	return tok, nil
}

// CheckToken accepts any token an HTTP header can carry as one value:
// visible ASCII without spaces. logsift's own tokens start with "lsk_",
// but the Loki output may talk to servers with tokens of their own.
func CheckToken(tok string) error {
	if tok == "" {
		return errors.New("the token is empty")
	}
	if len(tok) > 4096 {
		return fmt.Errorf("the token is %d bytes long; at most 4096", len(tok))
	}
	for i := 0; i < len(tok); i++ {
		if c := tok[i]; c <= ' ' || c >= 0x7f {
			// Never echo the token: it is a secret.
			return fmt.Errorf("the token has a space, control or non-ASCII character at byte %d; a token is one word of visible ASCII", i)
		}
	}
	return nil
}

// ResolveToken returns the token to send: Token, or the content of
// TokenFile; "" when neither is set.
func (o *Output) ResolveToken() (string, error) {
	switch {
	case o.Token != "" && o.TokenFile != "":
		return "", errors.New("output.token and output.token_file are mutually exclusive")
	case o.Token != "":
		if err := CheckToken(o.Token); err != nil {
			return "", err
		}
		return o.Token, nil
	case o.TokenFile != "":
		return ReadTokenFile(o.TokenFile)
	}
	return "", nil
}

func validPort(p string) bool {
	n, err := strconv.Atoi(p)
	return err == nil && n > 0 && n < 65536
}

func checkPattern(p string) error {
	if p == "" {
		return errors.New("empty path")
	}
	_, err := glob.Compile(p)
	return err
}

// lineOf finds the line of the node at path (map keys and list indexes)
// in a YAML document, or of its deepest existing ancestor.
func lineOf(root *yaml.Node, path []any) int {
	n := root
	if n == nil || n.Kind == 0 {
		return 0
	}
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	line := 0
	for _, p := range path {
		var next *yaml.Node
		switch k := p.(type) {
		case string:
			if n.Kind == yaml.MappingNode {
				for i := 0; i+1 < len(n.Content); i += 2 {
					if n.Content[i].Value == k {
						line = n.Content[i].Line
						next = n.Content[i+1]
						break
					}
				}
			}
		case int:
			if n.Kind == yaml.SequenceNode && k < len(n.Content) {
				next = n.Content[k]
				line = next.Line
			}
		}
		if next == nil {
			break
		}
		n = next
	}
	return line
}

func dotted(path []any) string {
	var b strings.Builder
	for i, p := range path {
		switch k := p.(type) {
		case int:
			fmt.Fprintf(&b, "[%d]", k)
		case string:
			if i > 0 {
				b.WriteByte('.')
			}
			b.WriteString(k)
		}
	}
	return b.String()
}

// ByteSize is a size in bytes written as a number or with a unit: 512KiB,
// 16MiB, 1GiB (powers of 1024), or KB, MB, GB (powers of 1000).
type ByteSize int64

// UnmarshalYAML parses a size.
func (s *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseByteSize(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*s = ByteSize(v)
	return nil
}

// ParseByteSize parses "16MiB", "1GB", "4096".
func ParseByteSize(str string) (int64, error) {
	t := strings.TrimSpace(str)
	units := []struct {
		suffix string
		mult   int64
	}{
		{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
		{"KB", 1000}, {"MB", 1000 * 1000}, {"GB", 1000 * 1000 * 1000}, {"TB", 1000 * 1000 * 1000 * 1000},
		{"B", 1},
	}
	mult := int64(1)
	for _, u := range units {
		if strings.HasSuffix(t, u.suffix) {
			t = strings.TrimSpace(strings.TrimSuffix(t, u.suffix))
			mult = u.mult
			break
		}
	}
	f, err := strconv.ParseFloat(t, 64)
	if err != nil || f < 0 || f*float64(mult) > 1<<62 {
		return 0, fmt.Errorf("%q is not a size (examples: 4096, 512KiB, 16MiB, 1GiB)", str)
	}
	return int64(f * float64(mult)), nil
}

func (s ByteSize) String() string {
	switch {
	case s >= 1<<30 && s%(1<<30) == 0:
		return fmt.Sprintf("%dGiB", s>>30)
	case s >= 1<<20 && s%(1<<20) == 0:
		return fmt.Sprintf("%dMiB", s>>20)
	case s >= 1<<10 && s%(1<<10) == 0:
		return fmt.Sprintf("%dKiB", s>>10)
	}
	return strconv.FormatInt(int64(s), 10)
}
