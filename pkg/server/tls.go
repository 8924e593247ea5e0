package server

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// TLSConfig is the `tls:` block: certificates for the HTTP and gRPC
// listeners. TLS is on when CertFile and KeyFile are set.
type TLSConfig struct {
	// CertFile is the PEM certificate chain, leaf first.
	CertFile string `yaml:"cert_file"`
	// KeyFile is the PEM private key of the leaf.
	KeyFile string `yaml:"key_file"`
	// ClientCAFile, when set, is the PEM bundle of CAs that client
	// certificates must chain to (mutual TLS).
	ClientCAFile string `yaml:"client_ca_file"`
	// ClientAuth is how client certificates are asked for when
	// ClientCAFile is set: "require" (the default: every client presents
	// a valid certificate) or "verify_if_given" (clients without one, such
	// as a token-only Grafana, may still connect).
	ClientAuth string `yaml:"client_auth"`
	// MinVersion is "1.2" (the default) or "1.3".
	MinVersion string `yaml:"min_version"`
}

// Enabled reports whether the listeners serve TLS.
func (c *TLSConfig) Enabled() bool { return c.CertFile != "" || c.KeyFile != "" }

// certCheckInterval is how often a handshake may look at the certificate
// files for changes (a few stat calls): a renewed certificate (cert-manager,
// certbot) is served within it without a restart.
const certCheckInterval = 10 * time.Second

// CertReloader holds the loaded certificates and reloads them when their
// files change, or when Reload is called (on SIGHUP).
type CertReloader struct {
	cfg       TLSConfig
	log       *slog.Logger
	base      *tls.Config
	current   atomic.Pointer[tls.Config]
	mu        sync.Mutex
	stamps    []fileStamp
	lastCheck atomic.Int64
}

type fileStamp struct {
	mod  time.Time
	size int64
}

// ServerTLS loads the certificates and returns the TLS configuration for
// the HTTP and gRPC listeners, and the reloader that keeps it current. The
// configuration accepts TLS 1.2 and newer only, with Go's default cipher
// suites (all AEAD with forward secrecy for 1.2), and offers HTTP/2.
//
// For HTTP: http.Server.TLSConfig = cfg, then ServeTLS(ln, "", ""). For
// gRPC: grpc.Creds(credentials.NewTLS(cfg)).
func ServerTLS(c TLSConfig, log *slog.Logger) (*tls.Config, *CertReloader, error) {
	if log == nil {
		log = slog.Default()
	}
	if c.CertFile == "" || c.KeyFile == "" {
		return nil, nil, errors.New("tls: cert_file and key_file must both be set")
	}
	minVersion := uint16(tls.VersionTLS12)
	switch strings.TrimPrefix(strings.ToLower(c.MinVersion), "tls") {
	case "", "1.2", "12":
	case "1.3", "13":
		minVersion = tls.VersionTLS13
	default:
		return nil, nil, fmt.Errorf("tls.min_version %q: use 1.2 or 1.3", c.MinVersion)
	}
	clientAuth := tls.NoClientCert
	if c.ClientCAFile != "" {
		switch strings.ToLower(c.ClientAuth) {
		case "", "require", "require_and_verify":
			clientAuth = tls.RequireAndVerifyClientCert
		case "verify_if_given":
			clientAuth = tls.VerifyClientCertIfGiven
		default:
			return nil, nil, fmt.Errorf("tls.client_auth %q: use require or verify_if_given", c.ClientAuth)
		}
	} else if c.ClientAuth != "" {
		return nil, nil, errors.New("tls.client_auth is set but tls.client_ca_file is not")
	}
	r := &CertReloader{
		cfg: c,
		log: log,
		base: &tls.Config{
			MinVersion: minVersion,
			ClientAuth: clientAuth,
			NextProtos: []string{"h2", "http/1.1"},
		},
	}
	if err := r.load(); err != nil {
		return nil, nil, err
	}
	r.lastCheck.Store(time.Now().UnixNano())
	outer := &tls.Config{
		MinVersion: minVersion,
		NextProtos: []string{"h2", "http/1.1"},
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			r.maybeReload()
			return r.current.Load(), nil
		},
	}
	return outer, r, nil
}

func (r *CertReloader) files() []string {
	fs := []string{r.cfg.CertFile, r.cfg.KeyFile}
	if r.cfg.ClientCAFile != "" {
		fs = append(fs, r.cfg.ClientCAFile)
	}
	return fs
}

func (r *CertReloader) stat() ([]fileStamp, error) {
	var out []fileStamp
	for _, f := range r.files() {
		fi, err := os.Stat(f)
		if err != nil {
			return nil, fmt.Errorf("tls: %w", err)
		}
		out = append(out, fileStamp{fi.ModTime(), fi.Size()})
	}
	return out, nil
}

// load reads the files and installs a new configuration.
func (r *CertReloader) load() error {
	stamps, err := r.stat()
	if err != nil {
		return err
	}
	cert, err := tls.LoadX509KeyPair(r.cfg.CertFile, r.cfg.KeyFile)
	if err != nil {
		return fmt.Errorf("tls: load %s and %s: %w", r.cfg.CertFile, r.cfg.KeyFile, err)
	}
	cfg := r.base.Clone()
	cfg.Certificates = []tls.Certificate{cert}
	if r.cfg.ClientCAFile != "" {
		pem, err := os.ReadFile(r.cfg.ClientCAFile)
		if err != nil {
			return fmt.Errorf("tls: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("tls: %s holds no PEM certificate", r.cfg.ClientCAFile)
		}
		cfg.ClientCAs = pool
	}
	r.current.Store(cfg)
	r.stamps = stamps
	if cert.Leaf != nil {
		if left := time.Until(cert.Leaf.NotAfter); left < 14*24*time.Hour {
			r.log.Warn("the TLS certificate expires soon", "cert_file", r.cfg.CertFile, "not_after", cert.Leaf.NotAfter)
		}
	}
	return nil
}

// Reload rereads the certificate files now. On error the certificates
// already loaded stay in use.
func (r *CertReloader) Reload() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.load(); err != nil {
		r.log.Error("cannot reload the TLS certificates; keeping the ones loaded", "err", err)
		return err
	}
	r.log.Info("TLS certificates loaded", "cert_file", r.cfg.CertFile)
	return nil
}

// maybeReload reloads when certCheckInterval has passed and a file
// changed. Certificate renewers write the files one by one, so a
// mismatched pair fails to load and is retried at the next check.
func (r *CertReloader) maybeReload() {
	now := time.Now().UnixNano()
	last := r.lastCheck.Load()
	if now-last < int64(certCheckInterval) || !r.lastCheck.CompareAndSwap(last, now) {
		return
	}
	r.mu.Lock()
	stamps, err := r.stat()
	changed := err == nil && !sameStamps(stamps, r.stamps)
	r.mu.Unlock()
	if changed {
		_ = r.Reload()
	}
}

func sameStamps(a, b []fileStamp) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !a[i].mod.Equal(b[i].mod) || a[i].size != b[i].size {
			return false
		}
	}
	return true
}
