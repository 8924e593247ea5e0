// Package client is the datasource plugin's connection to a logsift server:
// it calls the Loki-compatible HTTP query API with the tenant and the API
// token of the datasource settings, asks for categorized labels, and decodes
// the answers into plain Go values for the frame builders.
package client

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Config is what a Client needs to reach one server.
type Config struct {
	// URL is the server's base URL, e.g. http://logsift:3100. A path is
	// kept as a prefix, for servers behind a reverse proxy.
	URL string
	// Tenant goes in X-Scope-OrgID; empty sends none.
	Tenant string
	// Token goes in Authorization: Bearer; empty sends none.
	Token string
	// HTTP carries the requests; its transport holds the TLS settings.
	HTTP *http.Client
	// Timeout bounds one request that is not a stream; 0 leaves it to the
	// caller's context.
	Timeout time.Duration
}

// Client calls one server's query API. It is safe for concurrent use.
type Client struct {
	base    *url.URL
	tenant  string
	token   string
	http    *http.Client
	timeout time.Duration
}

// New checks the URL and returns a client.
func New(cfg Config) (*Client, error) {
	raw := strings.TrimSpace(cfg.URL)
	if raw == "" {
		return nil, errors.New("the server URL is empty: set it in the datasource settings, e.g. http://localhost:3100")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("the server URL %q is not a valid URL: %w", raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("the server URL %q must start with http:// or https://", raw)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("the server URL %q has no host", raw)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawQuery, u.Fragment = "", ""
	hc := cfg.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	return &Client{base: u, tenant: cfg.Tenant, token: cfg.Token, http: hc, timeout: cfg.Timeout}, nil
}

// URL returns the base URL the client talks to.
func (c *Client) URL() string { return c.base.String() }

// Tenant returns the tenant the client sends.
func (c *Client) Tenant() string { return c.tenant }

// StatusError is a non-2xx answer from the server.
type StatusError struct {
	Code int
	Path string
	Body string
}

func (e *StatusError) Error() string {
	body := strings.TrimSpace(e.Body)
	if len(body) > 512 {
		body = body[:512] + "..."
	}
	if body == "" {
		body = http.StatusText(e.Code)
	}
	return fmt.Sprintf("server answered %d to %s: %s", e.Code, e.Path, body)
}

// IsStatus reports whether err is a StatusError with the code.
func IsStatus(err error, code int) bool {
	var se *StatusError
	return errors.As(err, &se) && se.Code == code
}

// ConnectError is a request that never got an answer: the server is
// unreachable, the name does not resolve, or TLS failed.
type ConnectError struct {
	URL string
	Err error
}

func (e *ConnectError) Error() string { return describeConnectError(e.URL, e.Err) }
func (e *ConnectError) Unwrap() error { return e.Err }

// describeConnectError says in words what went wrong and what to check.
func describeConnectError(u string, err error) string {
	var dnsErr *net.DNSError
	var opErr *net.OpError
	msg := err.Error()
	switch {
	case errors.As(err, &dnsErr):
		return fmt.Sprintf("cannot resolve the host %q of %s: check the URL (%v)", dnsErr.Name, u, dnsErr)
	case strings.Contains(msg, "connection refused"):
		return fmt.Sprintf("cannot connect to %s: connection refused; is the logsift server running, and is the port right?", u)
	case strings.Contains(msg, "certificate required") || strings.Contains(msg, "bad certificate") || strings.Contains(msg, "unknown certificate authority"):
		return fmt.Sprintf("TLS with %s failed: the server asks for a client certificate it accepts (%v); turn on TLS client authentication and set the client certificate and key", u, err)
	case errors.As(err, new(x509.UnknownAuthorityError)):
		return fmt.Sprintf("TLS with %s failed: the server's certificate is signed by an authority this plugin does not trust (%v); set the CA certificate in the datasource settings", u, err)
	case errors.As(err, new(x509.HostnameError)):
		return fmt.Sprintf("TLS with %s failed: the server's certificate is for another name (%v); use the name it is for in the URL, or set the TLS server name", u, err)
	case strings.Contains(msg, "certificate") || strings.Contains(msg, "tls:") || strings.Contains(msg, "x509"):
		return fmt.Sprintf("TLS with %s failed: %v; check the CA certificate, or use http:// if the server does not serve TLS", u, err)
	case errors.Is(err, context.DeadlineExceeded) || strings.Contains(msg, "Client.Timeout"):
		return fmt.Sprintf("%s did not answer in time: %v; check the URL and the timeout setting", u, err)
	case errors.As(err, &opErr):
		return fmt.Sprintf("cannot connect to %s: %v", u, opErr)
	}
	return fmt.Sprintf("request to %s failed: %v", u, err)
}

// endpoint is the full URL of an API path with its parameters.
func (c *Client) endpoint(path string, params url.Values) string {
	u := *c.base
	u.Path += path
	if len(params) > 0 {
		u.RawQuery = params.Encode()
	}
	return u.String()
}

// setHeaders adds the tenant, the token and the label categorization flag.
func (c *Client) setHeaders(h http.Header) {
	if c.tenant != "" {
		h.Set("X-Scope-OrgID", c.tenant)
	}
	if c.token != "" {
		h.Set("Authorization", "Bearer "+c.token)
	}
	h.Set("X-Loki-Response-Encoding-Flags", "categorize-labels")
}

// maxBody bounds an answer read into memory: a query answer is capped by
// the line limit, but a misconfigured URL may point at anything.
const maxBody = 512 << 20

// readBuffers are reused to read answers: an answer is read into one,
// then copied once into the string its decoded values share.
var readBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// get runs a GET and returns the body of a 2xx answer.
func (c *Client) get(ctx context.Context, path string, params url.Values, hdr http.Header) ([]byte, error) {
	body, err := c.getString(ctx, path, params, hdr)
	return []byte(body), err
}

// getString runs a GET and returns the body of a 2xx answer as a string.
func (c *Client) getString(ctx context.Context, path string, params url.Values, hdr http.Header) (string, error) {
	if c.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.endpoint(path, params), nil)
	if err != nil {
		return "", fmt.Errorf("build request for %s: %w", path, err)
	}
	c.setHeaders(req.Header)
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() == context.Canceled {
			return "", ctx.Err()
		}
		return "", &ConnectError{URL: c.base.String(), Err: err}
	}
	defer resp.Body.Close()
	buf := readBuffers.Get().(*bytes.Buffer)
	buf.Reset()
	defer func() {
		if buf.Cap() <= 64<<20 {
			readBuffers.Put(buf)
		}
	}()
	if resp.ContentLength > 0 {
		buf.Grow(int(min(resp.ContentLength, maxBody)))
	}
	if _, err := io.Copy(buf, io.LimitReader(resp.Body, maxBody+1)); err != nil {
		return "", fmt.Errorf("read answer of %s: %w", path, err)
	}
	if buf.Len() > maxBody {
		return "", fmt.Errorf("answer of %s is larger than %d bytes; lower the line limit", path, maxBody)
	}
	if resp.StatusCode/100 != 2 {
		return "", &StatusError{Code: resp.StatusCode, Path: path, Body: buf.String()}
	}
	return buf.String(), nil
}

// RangeQuery is a /loki/api/v1/query_range request.
type RangeQuery struct {
	Query      string
	Start, End time.Time
	Step       time.Duration // metric queries; 0 lets the server choose
	Limit      int           // log queries; 0 lets the server choose
	Direction  string        // "backward" (default) or "forward"
}

// QueryRange runs a range query.
func (c *Client) QueryRange(ctx context.Context, q RangeQuery) (*Result, error) {
	v := url.Values{
		"query": {q.Query},
		"start": {strconv.FormatInt(q.Start.UnixNano(), 10)},
		"end":   {strconv.FormatInt(q.End.UnixNano(), 10)},
	}
	if q.Step > 0 {
		v.Set("step", FormatStep(q.Step))
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	if q.Direction != "" {
		v.Set("direction", q.Direction)
	}
	body, err := c.getString(ctx, "/loki/api/v1/query_range", v, nil)
	if err != nil {
		return nil, err
	}
	return decodeQuery(body)
}

// QueryInstant runs an instant (metric) query at t.
func (c *Client) QueryInstant(ctx context.Context, query string, t time.Time, limit int) (*Result, error) {
	v := url.Values{
		"query": {query},
		"time":  {strconv.FormatInt(t.UnixNano(), 10)},
	}
	if limit > 0 {
		v.Set("limit", strconv.Itoa(limit))
	}
	body, err := c.getString(ctx, "/loki/api/v1/query", v, nil)
	if err != nil {
		return nil, err
	}
	return decodeQuery(body)
}

// FormatStep writes a step as the server reads it: seconds, with a
// fraction when the step is not whole.
func FormatStep(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64)
}

func rangeParams(start, end time.Time, selector string) url.Values {
	v := url.Values{}
	if !start.IsZero() {
		v.Set("start", strconv.FormatInt(start.UnixNano(), 10))
	}
	if !end.IsZero() {
		v.Set("end", strconv.FormatInt(end.UnixNano(), 10))
	}
	if selector != "" {
		v.Set("query", selector)
	}
	return v
}

// Labels lists the label names of the streams in [start, end], narrowed
// to the streams the selector matches when it is not empty.
func (c *Client) Labels(ctx context.Context, start, end time.Time, selector string) ([]string, error) {
	body, err := c.get(ctx, "/loki/api/v1/labels", rangeParams(start, end, selector), nil)
	if err != nil {
		return nil, err
	}
	return decodeStrings(body)
}

// LabelValues lists the values of one label, as Labels narrows them.
func (c *Client) LabelValues(ctx context.Context, name string, start, end time.Time, selector string) ([]string, error) {
	body, err := c.get(ctx, "/loki/api/v1/label/"+url.PathEscape(name)+"/values", rangeParams(start, end, selector), nil)
	if err != nil {
		return nil, err
	}
	return decodeStrings(body)
}

// Series lists the label sets of the streams a selector matches.
func (c *Client) Series(ctx context.Context, start, end time.Time, selector string) ([]map[string]string, error) {
	v := rangeParams(start, end, "")
	v.Set("match[]", selector)
	body, err := c.get(ctx, "/loki/api/v1/series", v, nil)
	if err != nil {
		return nil, err
	}
	return decodeSeries(body)
}

// IndexStats is the answer of /loki/api/v1/index/stats: what a query would
// read, from the index alone.
type IndexStats struct {
	Streams int64 `json:"streams"`
	Chunks  int64 `json:"chunks"`
	Entries int64 `json:"entries"`
	Bytes   int64 `json:"bytes"`
}

// IndexStats asks the index what the query's selectors cover in [start, end].
func (c *Client) IndexStats(ctx context.Context, query string, start, end time.Time) (IndexStats, error) {
	body, err := c.get(ctx, "/loki/api/v1/index/stats", rangeParams(start, end, query), nil)
	if err != nil {
		return IndexStats{}, err
	}
	return decodeIndexStats(body)
}

// FormatQuery asks the server for the canonical form of a query.
func (c *Client) FormatQuery(ctx context.Context, query string) (string, error) {
	body, err := c.get(ctx, "/loki/api/v1/format_query", url.Values{"query": {query}}, nil)
	if err != nil {
		return "", err
	}
	return decodeFormatted(body)
}

// BuildInfo is the answer of /loki/api/v1/status/buildinfo.
type BuildInfo struct {
	Version        string `json:"version"`
	Revision       string `json:"revision"`
	Branch         string `json:"branch"`
	GoVersion      string `json:"goVersion"`
	Application    string `json:"application"`
	LogsiftVersion string `json:"logsiftVersion"`
}

// BuildInfo reads the server's version.
func (c *Client) BuildInfo(ctx context.Context) (BuildInfo, error) {
	body, err := c.get(ctx, "/loki/api/v1/status/buildinfo", nil, nil)
	if err != nil {
		return BuildInfo{}, err
	}
	return decodeBuildInfo(body)
}
