package plugin

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
)

// testPKI is a CA with a server certificate for 127.0.0.1 and a client
// certificate, in PEM.
type testPKI struct {
	caPEM, serverCert, serverKey, clientCert, clientKey string
	pool                                                *x509.CertPool
}

func newTestPKI(t *testing.T) testPKI {
	t.Helper()
	key := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	pemOf := func(typ string, b []byte) string { return string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b})) }
	keyPEM := func(k *ecdsa.PrivateKey) string {
		b, err := x509.MarshalECPrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return pemOf("EC PRIVATE KEY", b)
	}
	caKey := key()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	issue := func(serial int64, usage x509.ExtKeyUsage, ips []net.IP) (string, string) {
		k := key()
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "leaf"}, NotBefore: time.Now().Add(-time.Hour),
			NotAfter: time.Now().Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{usage}, IPAddresses: ips, KeyUsage: x509.KeyUsageDigitalSignature}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return pemOf("CERTIFICATE", der), keyPEM(k)
	}
	p := testPKI{caPEM: pemOf("CERTIFICATE", caDER), pool: x509.NewCertPool()}
	p.pool.AddCert(ca)
	p.serverCert, p.serverKey = issue(2, x509.ExtKeyUsageServerAuth, []net.IP{net.IPv4(127, 0, 0, 1)})
	p.clientCert, p.clientKey = issue(3, x509.ExtKeyUsageClientAuth, nil)
	return p
}

// TestTLSClientCertificate checks the TLS settings against a server that
// requires a client certificate from its CA, as logsift does with
// tls.client_ca_file set.
func TestTLSClientCertificate(t *testing.T) {
	pki := newTestPKI(t)
	mux := http.NewServeMux()
	mux.HandleFunc("/loki/api/v1/status/buildinfo", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(buildInfoLogsift)) })
	mux.HandleFunc("/loki/api/v1/labels", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(`{"status":"success","data":["job"]}`))
	})
	srv := httptest.NewUnstartedServer(mux)
	cert, err := tls.X509KeyPair([]byte(pki.serverCert), []byte(pki.serverKey))
	if err != nil {
		t.Fatal(err)
	}
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, ClientCAs: pki.pool, ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12}
	srv.StartTLS()
	t.Cleanup(srv.Close)

	health := func(jsonData map[string]any, secure map[string]string) *backend.CheckHealthResult {
		t.Helper()
		jd, _ := json.Marshal(jsonData)
		in := newInstance(backend.DataSourceInstanceSettings{URL: srv.URL, JSONData: jd, DecryptedSecureJSONData: secure})
		t.Cleanup(in.Dispose)
		return checkHealth(t, in)
	}
	cases := []struct {
		name     string
		jsonData map[string]any
		secure   map[string]string
		ok       bool
		want     string
	}{
		{"no CA", map[string]any{}, nil, false, "set the CA certificate in the datasource settings"},
		{"CA, no client certificate", map[string]any{"tlsAuthWithCACert": true}, map[string]string{"tlsCACert": pki.caPEM}, false,
			"asks for a client certificate"},
		{"CA and client certificate", map[string]any{"tlsAuthWithCACert": true, "tlsAuth": true},
			map[string]string{"tlsCACert": pki.caPEM, "tlsClientCert": pki.clientCert, "tlsClientKey": pki.clientKey}, true, "Connected to logsift"},
		{"client certificate without key", map[string]any{"tlsAuthWithCACert": true, "tlsAuth": true},
			map[string]string{"tlsCACert": pki.caPEM, "tlsClientCert": pki.clientCert}, false, "client certificate or key is not set"},
		{"client key of another certificate", map[string]any{"tlsAuthWithCACert": true, "tlsAuth": true},
			map[string]string{"tlsCACert": pki.caPEM, "tlsClientCert": pki.clientCert, "tlsClientKey": pki.serverKey}, false, "do not form a valid pair"},
		{"wrong server name", map[string]any{"tlsAuthWithCACert": true, "tlsAuth": true, "serverName": "logsift.example"},
			map[string]string{"tlsCACert": pki.caPEM, "tlsClientCert": pki.clientCert, "tlsClientKey": pki.clientKey}, false, "certificate is for another name"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := health(c.jsonData, c.secure)
			if (res.Status == backend.HealthStatusOk) != c.ok || !strings.Contains(res.Message, c.want) {
				t.Errorf("status %v: %q\nwant ok=%v and %q", res.Status, res.Message, c.ok, c.want)
			}
		})
	}
}
