package server

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// testCA issues certificates for the tests.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
	pool *x509.CertPool
}

var serial int64

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial++
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(serial),
		Subject:               pkix.Name{CommonName: "logsift test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pool: pool}
}

// issue returns PEM certificate and key for cn, for a server or a client.
func (ca *testCA) issue(t *testing.T, cn string, client bool) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial++
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:     []string{"localhost"},
	}
	if client {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// serveHTTPS serves a handler that answers with the protocol, the way the
// server does: http.Server.TLSConfig plus ServeTLS.
func serveHTTPS(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte(r.Proto))
		}),
		TLSConfig: cfg,
		ErrorLog:  nil,
	}
	go srv.ServeTLS(ln, "", "")
	t.Cleanup(func() { srv.Close() })
	return "https://" + ln.Addr().String()
}

func get(url string, client *tls.Config) (string, *tls.ConnectionState, error) {
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: client, ForceAttemptHTTP2: true}}
	defer c.CloseIdleConnections()
	resp, err := c.Get(url)
	if err != nil {
		return "", nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), resp.TLS, err
}

func quietLog() *slog.Logger { return slog.New(slog.DiscardHandler) }

func TestServerTLS(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t)
	certPEM, keyPEM := ca.issue(t, "server-1", false)
	cfg := TLSConfig{CertFile: filepath.Join(dir, "tls.crt"), KeyFile: filepath.Join(dir, "tls.key")}
	writeFile(t, cfg.CertFile, certPEM)
	writeFile(t, cfg.KeyFile, keyPEM)
	if !cfg.Enabled() || (&TLSConfig{}).Enabled() {
		t.Fatal("Enabled wrong")
	}
	tcfg, reloader, err := ServerTLS(cfg, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	url := serveHTTPS(t, tcfg)

	proto, st, err := get(url, &tls.Config{RootCAs: ca.pool})
	if err != nil {
		t.Fatal(err)
	}
	if proto != "HTTP/2.0" {
		t.Errorf("protocol %s, want HTTP/2.0", proto)
	}
	if st.PeerCertificates[0].Subject.CommonName != "server-1" {
		t.Fatalf("served %s", st.PeerCertificates[0].Subject.CommonName)
	}
	if _, _, err := get(url, &tls.Config{RootCAs: ca.pool, MaxVersion: tls.VersionTLS11}); err == nil {
		t.Fatal("a TLS 1.1 client was served")
	}
	if _, _, err := get(url, &tls.Config{}); err == nil {
		t.Fatal("a client that does not trust the CA connected")
	}

	// A renewed certificate is served after Reload (SIGHUP) without a
	// restart; a broken one is refused and the old one kept.
	certPEM, keyPEM = ca.issue(t, "server-2", false)
	writeFile(t, cfg.CertFile, certPEM)
	writeFile(t, cfg.KeyFile, keyPEM)
	if err := reloader.Reload(); err != nil {
		t.Fatal(err)
	}
	if _, st, err := get(url, &tls.Config{RootCAs: ca.pool}); err != nil || st.PeerCertificates[0].Subject.CommonName != "server-2" {
		t.Fatalf("after reload: %v", err)
	}
	writeFile(t, cfg.KeyFile, []byte("not a key"))
	if err := reloader.Reload(); err == nil {
		t.Fatal("a broken key reloaded")
	}
	if _, st, err := get(url, &tls.Config{RootCAs: ca.pool}); err != nil || st.PeerCertificates[0].Subject.CommonName != "server-2" {
		t.Fatalf("after a failed reload: %v", err)
	}
}

func TestServerTLSMutual(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t)
	other := newTestCA(t)
	certPEM, keyPEM := ca.issue(t, "server", false)
	cfg := TLSConfig{CertFile: filepath.Join(dir, "tls.crt"), KeyFile: filepath.Join(dir, "tls.key"), ClientCAFile: filepath.Join(dir, "ca.crt")}
	writeFile(t, cfg.CertFile, certPEM)
	writeFile(t, cfg.KeyFile, keyPEM)
	writeFile(t, cfg.ClientCAFile, ca.pem)
	tcfg, _, err := ServerTLS(cfg, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	url := serveHTTPS(t, tcfg)
	clientCert := func(ca *testCA) []tls.Certificate {
		c, k := ca.issue(t, "agent", true)
		pair, err := tls.X509KeyPair(c, k)
		if err != nil {
			t.Fatal(err)
		}
		return []tls.Certificate{pair}
	}
	if _, _, err := get(url, &tls.Config{RootCAs: ca.pool}); err == nil {
		t.Fatal("a client without a certificate connected")
	}
	if _, _, err := get(url, &tls.Config{RootCAs: ca.pool, Certificates: clientCert(other)}); err == nil {
		t.Fatal("a client certificate from another CA was accepted")
	}
	if _, _, err := get(url, &tls.Config{RootCAs: ca.pool, Certificates: clientCert(ca)}); err != nil {
		t.Fatalf("a valid client certificate was refused: %v", err)
	}

	cfg.ClientAuth = "verify_if_given"
	tcfg, _, err = ServerTLS(cfg, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	url = serveHTTPS(t, tcfg)
	if _, _, err := get(url, &tls.Config{RootCAs: ca.pool}); err != nil {
		t.Fatalf("verify_if_given refused a client without a certificate: %v", err)
	}
	if _, _, err := get(url, &tls.Config{RootCAs: ca.pool, Certificates: clientCert(other)}); err == nil {
		t.Fatal("verify_if_given accepted a certificate from another CA")
	}
}

func TestServerTLSGRPC(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t)
	certPEM, keyPEM := ca.issue(t, "server", false)
	cfg := TLSConfig{CertFile: filepath.Join(dir, "tls.crt"), KeyFile: filepath.Join(dir, "tls.key"), MinVersion: "1.3"}
	writeFile(t, cfg.CertFile, certPEM)
	writeFile(t, cfg.KeyFile, keyPEM)
	tcfg, _, err := ServerTLS(cfg, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer(grpc.Creds(credentials.NewTLS(tcfg)))
	healthpb.RegisterHealthServer(gs, health.NewServer())
	go gs.Serve(ln)
	defer gs.Stop()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: ca.pool, ServerName: "localhost"})))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatalf("health check over TLS: %v", err)
	}
	if resp.Status != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("status %v", resp.Status)
	}
}

func TestServerTLSConfigErrors(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t)
	certPEM, keyPEM := ca.issue(t, "server", false)
	crt, key := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	writeFile(t, crt, certPEM)
	writeFile(t, key, keyPEM)
	bad := map[string]TLSConfig{
		"no key":            {CertFile: crt},
		"missing file":      {CertFile: crt, KeyFile: filepath.Join(dir, "nope.key")},
		"key of no cert":    {CertFile: key, KeyFile: key},
		"min version":       {CertFile: crt, KeyFile: key, MinVersion: "1.1"},
		"client auth no CA": {CertFile: crt, KeyFile: key, ClientAuth: "require"},
		"bad client auth":   {CertFile: crt, KeyFile: key, ClientCAFile: crt, ClientAuth: "sometimes"},
		"CA not PEM":        {CertFile: crt, KeyFile: key, ClientCAFile: key},
	}
	for name, c := range bad {
		if _, _, err := ServerTLS(c, quietLog()); err == nil {
			t.Errorf("%s: accepted", name)
		} else if name == "missing file" && !errors.Is(err, os.ErrNotExist) {
			t.Errorf("missing file: %v does not say so", err)
		}
	}
}
