package plugin

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
)

// Settings are one datasource's configuration: the URL and jsonData from
// the datasource form, the token and CA certificate from secureJsonData.
type Settings struct {
	URL               string
	Tenant            string
	Timeout           time.Duration
	MaxLines          int
	TLSSkipVerify     bool
	TLSAuthWithCACert bool
	// TLSAuth presents a client certificate (servers with
	// tls.client_ca_file ask for one).
	TLSAuth bool
	// TLSServerName overrides the name the server's certificate is
	// checked against.
	TLSServerName string
	APIToken      string
	TLSCACert     string
	TLSClientCert string
	TLSClientKey  string
}

// jsonData is the non-secret part of the settings, as the config editor
// writes it.
type jsonData struct {
	Tenant            string `json:"tenant"`
	TimeoutSeconds    int    `json:"timeoutSeconds"`
	MaxLines          int    `json:"maxLines"`
	TLSSkipVerify     bool   `json:"tlsSkipVerify"`
	TLSAuthWithCACert bool   `json:"tlsAuthWithCACert"`
	TLSAuth           bool   `json:"tlsAuth"`
	ServerName        string `json:"serverName"`
}

// Defaults and bounds of the settings.
const (
	DefaultTimeout  = 60 * time.Second
	maxTimeout      = 30 * time.Minute
	DefaultMaxLines = 1000
	maxMaxLines     = 1_000_000
)

// ParseSettings reads and checks the settings Grafana passes.
func ParseSettings(s backend.DataSourceInstanceSettings) (Settings, error) {
	var jd jsonData
	if raw := strings.TrimSpace(string(s.JSONData)); raw != "" && raw != "null" {
		if err := json.Unmarshal(s.JSONData, &jd); err != nil {
			return Settings{}, fmt.Errorf("the datasource's jsonData is not valid: %w", err)
		}
	}
	out := Settings{
		URL:               strings.TrimSpace(s.URL),
		Tenant:            strings.TrimSpace(jd.Tenant),
		Timeout:           DefaultTimeout,
		MaxLines:          DefaultMaxLines,
		TLSSkipVerify:     jd.TLSSkipVerify,
		TLSAuthWithCACert: jd.TLSAuthWithCACert,
		TLSAuth:           jd.TLSAuth,
		TLSServerName:     strings.TrimSpace(jd.ServerName),
		APIToken:          strings.TrimSpace(s.DecryptedSecureJSONData["apiToken"]),
		TLSCACert:         s.DecryptedSecureJSONData["tlsCACert"],
		TLSClientCert:     s.DecryptedSecureJSONData["tlsClientCert"],
		TLSClientKey:      s.DecryptedSecureJSONData["tlsClientKey"],
	}
	if jd.TimeoutSeconds < 0 || time.Duration(jd.TimeoutSeconds)*time.Second > maxTimeout {
		return out, fmt.Errorf("timeoutSeconds %d is out of range: use 1 to %d, or 0 for %d", jd.TimeoutSeconds, int(maxTimeout.Seconds()), int(DefaultTimeout.Seconds()))
	}
	if jd.TimeoutSeconds > 0 {
		out.Timeout = time.Duration(jd.TimeoutSeconds) * time.Second
	}
	if jd.MaxLines < 0 || jd.MaxLines > maxMaxLines {
		return out, fmt.Errorf("maxLines %d is out of range: use 1 to %d, or 0 for %d", jd.MaxLines, maxMaxLines, DefaultMaxLines)
	}
	if jd.MaxLines > 0 {
		out.MaxLines = jd.MaxLines
	}
	if strings.ContainsAny(out.Tenant, "\r\n") {
		return out, errors.New("the tenant must not contain line breaks")
	}
	if strings.ContainsAny(out.APIToken, "\r\n") {
		return out, errors.New("the API token must not contain line breaks")
	}
	return out, nil
}

// transport builds the HTTP transport of a datasource: its own connection
// pool, so that disposing the instance closes exactly its connections.
func (s Settings) transport() (*http.Transport, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: s.TLSSkipVerify, ServerName: s.TLSServerName} //nolint:gosec // the user's explicit choice
	if s.TLSAuth {
		if strings.TrimSpace(s.TLSClientCert) == "" || strings.TrimSpace(s.TLSClientKey) == "" {
			return nil, errors.New("TLS client authentication is on, but the client certificate or key is not set")
		}
		cert, err := tls.X509KeyPair([]byte(s.TLSClientCert), []byte(s.TLSClientKey))
		if err != nil {
			return nil, fmt.Errorf("the TLS client certificate and key do not form a valid pair: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	if s.TLSAuthWithCACert {
		if strings.TrimSpace(s.TLSCACert) == "" {
			return nil, errors.New("TLS with a CA certificate is on, but no CA certificate is set")
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM([]byte(s.TLSCACert)) {
			return nil, errors.New("the CA certificate is not a valid PEM certificate")
		}
		tc.RootCAs = pool
	}
	return &http.Transport{
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       tc,
		TLSHandshakeTimeout:   10 * time.Second,
		MaxIdleConns:          64,
		MaxIdleConnsPerHost:   32,
		IdleConnTimeout:       90 * time.Second,
		ExpectContinueTimeout: time.Second,
		ForceAttemptHTTP2:     true,
	}, nil
}
