package deploy

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/logsift/logsift/agent/config"
	"github.com/logsift/logsift/pkg/auth"
	"github.com/logsift/logsift/pkg/events"
	"github.com/logsift/logsift/pkg/server"
	"github.com/logsift/logsift/pkg/tracing"
)

// pendingBlocks are server configuration blocks with a type of their own
// that may not be a field of server.Config yet (they were wired in one by
// one). A block server.Config has a field for goes through
// server.LoadConfig with the rest of the file; one it lacks is decoded
// strictly into its type here.
var pendingBlocks = map[string]func() any{
	"tls":      func() any { return new(server.TLSConfig) },
	"auth":     func() any { return new(auth.Config) },
	"overload": func() any { return new(auth.OverloadConfig) },
	"cache":    func() any { return new(server.CacheConfig) },
	"events":   func() any { return new(events.Config) },
	"tracing":  func() any { return new(tracing.Config) },
}

func strictYAML(b []byte, out any) error {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(out); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}

// loadServerConfig checks a server configuration file with the server's
// own loader, and its pending blocks with their packages' types. It
// returns the server configuration and the decoded pending blocks.
func loadServerConfig(t *testing.T, name string, b []byte) (server.Config, map[string]any) {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	blocks := map[string]any{}
	if len(doc.Content) == 1 && doc.Content[0].Kind == yaml.MappingNode {
		m := doc.Content[0]
		kept := m.Content[:0:0]
		for i := 0; i+1 < len(m.Content); i += 2 {
			k, v := m.Content[i], m.Content[i+1]
			mk, ok := pendingBlocks[k.Value]
			if !ok || serverKeys[k.Value] {
				kept = append(kept, k, v)
				continue
			}
			raw, err := yaml.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			dst := mk()
			if err := strictYAML(raw, dst); err != nil {
				t.Errorf("%s: %s: %v", name, k.Value, err)
			}
			blocks[k.Value] = dst
		}
		m.Content = kept
	}
	rest, err := yaml.Marshal(&doc)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), filepath.Base(name))
	if err := os.WriteFile(p, rest, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := server.LoadConfig(p)
	if err != nil {
		t.Errorf("%s: %v", name, err)
	}
	return cfg, blocks
}

func TestServerConfigs(t *testing.T) {
	paths, err := filepath.Glob("server/*.yaml")
	if err != nil || len(paths) < 3 {
		t.Fatalf("want the three example server configs in deploy/server, have %v (%v)", paths, err)
	}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		cfg, blocks := loadServerConfig(t, p, b)
		if cfg.Target != "all" || cfg.DataDir == "" {
			t.Errorf("%s: target %q, data_dir %q", p, cfg.Target, cfg.DataDir)
		}
		switch filepath.Base(p) {
		case "logsift.yaml":
			if len(blocks) != 0 {
				t.Errorf("%s is the embedded default, but configures %v", p, keys(blocks))
			}
			// The example shows the defaults: it must run the same server
			// as no file at all.
			def := server.DefaultConfig()
			if cfg.HTTPListenAddress != def.HTTPListenAddress || cfg.GRPCListenAddress != def.GRPCListenAddress ||
				cfg.Limits.MaxLineSize != def.Limits.MaxLineSize || cfg.Limits.IngestionRateMB != def.Limits.IngestionRateMB ||
				cfg.Query.MaxQueryLength != def.Query.MaxQueryLength || cfg.Query.MaxQuerySeries != def.Query.MaxQuerySeries {
				t.Errorf("%s differs from the built-in defaults it claims to show", p)
			}
		case "logsift-redis-nats.yaml":
			if cfg.Events.NATS.URL != "nats://nats:4222" {
				t.Errorf("%s: events.nats.url %q must point at docker-compose's nats service", p, cfg.Events.NATS.URL)
			}
			if c := cacheOf(cfg, blocks); c == nil || c.Redis.Addr != "redis:6379" {
				t.Errorf("%s must point at docker-compose's redis and nats services", p)
			}
		case "logsift-tls-tokens.yaml":
			tc, ac := &cfg.TLS, &cfg.Auth
			if !tc.Enabled() || ac.Enabled != "true" {
				t.Fatalf("%s must turn TLS and auth on", p)
			}
			// The server's own TLS loader accepts the settings (with
			// certificates made here in place of the example's paths).
			cert, key, ca := writeCerts(t)
			tc.CertFile, tc.KeyFile, tc.ClientCAFile = cert, key, ca
			if _, _, err := server.ServerTLS(*tc, nil); err != nil {
				t.Errorf("%s: the tls block is refused by server.ServerTLS: %v", p, err)
			}
		}
	}
}

// serverKeys are the top-level keys server.Config knows.
var serverKeys = func() map[string]bool {
	out := map[string]bool{}
	rt := reflect.TypeOf(server.Config{})
	for i := 0; i < rt.NumField(); i++ {
		if name, _, _ := strings.Cut(rt.Field(i).Tag.Get("yaml"), ","); name != "" && name != "-" {
			out[name] = true
		}
	}
	return out
}()

// cacheOf is the cache block, from server.Config once it has one.
func cacheOf(cfg server.Config, blocks map[string]any) *server.CacheConfig {
	if v := reflect.ValueOf(&cfg).Elem().FieldByName("Cache"); v.IsValid() {
		if c, ok := v.Addr().Interface().(*server.CacheConfig); ok {
			return c
		}
	}
	c, _ := blocks["cache"].(*server.CacheConfig)
	return c
}

func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// writeCerts makes a CA and a server certificate it signed.
func writeCerts(t *testing.T) (cert, key, ca string) {
	t.Helper()
	dir := t.TempDir()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "logsift test CA"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	srvKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	srvTmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "logsift"}, DNSNames: []string{"logsift"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, caTmpl, &srvKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(srvKey)
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	return write("server.crt", "CERTIFICATE", srvDER), write("server.key", "EC PRIVATE KEY", keyDER), write("ca.crt", "CERTIFICATE", caDER)
}

// parseAgentConfig runs the agent's own validator (what `logsift-agent
// validate` prints).
func parseAgentConfig(t *testing.T, name string, b []byte) *config.Config {
	t.Helper()
	cfg, err := config.Parse(name, b)
	if err != nil {
		t.Errorf("%s: the agent refuses it:\n%v", name, err)
		return nil
	}
	return cfg
}

func TestAgentConfigs(t *testing.T) {
	for _, p := range []string{"agent/agent.yaml", "compose/agent.yaml"} {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		cfg := parseAgentConfig(t, p, b)
		if cfg == nil {
			continue
		}
		if cfg.Output.Type != "logsift" {
			t.Errorf("%s: output %s; the examples ship over gRPC", p, cfg.Output.Type)
		}
		for i, g := range cfg.Files {
			if g.Labels["host"] == "" {
				t.Errorf("%s: files[%d] has no host label, which the \"Agent stopped shipping\" alert groups by", p, i)
			}
		}
		if cfg.Metrics.ListenAddress == "" {
			t.Errorf("%s: metrics off: the image's health check and Prometheus read /ready and /metrics", p)
		}
	}
}

func TestSystemdUnits(t *testing.T) {
	units := map[string]struct{ binary, config string }{
		"systemd/logsift-agent.service": {"/usr/local/bin/logsift-agent", "/etc/logsift-agent/agent.yaml"},
		"systemd/logsift.service":       {"/usr/local/bin/logsift", "/etc/logsift/logsift.yaml"},
	}
	for p, want := range units {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		sections := parseUnit(t, p, string(b))
		exec := sections["Service"]["ExecStart"]
		if !strings.HasPrefix(exec, want.binary+" ") || !strings.Contains(exec, want.config) {
			t.Errorf("%s: ExecStart %q should run %s with %s", p, exec, want.binary, want.config)
		}
		for _, k := range []string{"User", "StateDirectory", "Restart", "NoNewPrivileges", "ProtectSystem"} {
			if sections["Service"][k] == "" {
				t.Errorf("%s: [Service] %s is not set", p, k)
			}
		}
		if sections["Install"]["WantedBy"] != "multi-user.target" {
			t.Errorf("%s: not enabled for multi-user.target", p)
		}
		// The example config installed there must match the data_dir the
		// unit's StateDirectory creates.
		if strings.Contains(p, "agent") {
			cb, _ := os.ReadFile("agent/agent.yaml")
			cfg := parseAgentConfig(t, "agent/agent.yaml", cb)
			if cfg != nil && cfg.DataDir != "/var/lib/"+sections["Service"]["StateDirectory"] {
				t.Errorf("agent/agent.yaml data_dir %s is not the unit's StateDirectory /var/lib/%s", cfg.DataDir, sections["Service"]["StateDirectory"])
			}
		}
		verifyUnit(t, p, string(b), want.binary)
	}
}

// parseUnit reads a systemd unit file's sections and keys (the last value
// of a repeated key wins, which is enough for the keys checked here).
func parseUnit(t *testing.T, name, text string) map[string]map[string]string {
	t.Helper()
	out := map[string]map[string]string{}
	section := ""
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = line[1 : len(line)-1]
			out[section] = map[string]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("%s:%d: %q is not key=value in a section", name, i+1, line)
			}
			out[section][strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	return out
}
