package plugin

import (
	"bytes"
	"encoding/json"
	"flag"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/data"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// fakeServer is a stand-in for the server's HTTP API: canned answers by
// path, and a record of what the plugin asked.
type fakeServer struct {
	t      *testing.T
	srv    *httptest.Server
	mu     sync.Mutex
	reqs   []recorded
	routes map[string]http.HandlerFunc
}

type recorded struct {
	path   string
	params url.Values
	header http.Header
}

func newFakeServer(t *testing.T) *fakeServer {
	f := &fakeServer{t: t, routes: map[string]http.HandlerFunc{}}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		f.mu.Lock()
		f.reqs = append(f.reqs, recorded{path: r.URL.Path, params: r.Form, header: r.Header.Clone()})
		h := f.routes[r.URL.Path]
		f.mu.Unlock()
		if h == nil {
			http.Error(w, "404 page not found", http.StatusNotFound)
			return
		}
		h(w, r)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

// answer serves a fixed body on a path.
func (f *fakeServer) answer(path string, code int, body string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.routes[path] = func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_, _ = w.Write([]byte(body))
	}
}

func (f *fakeServer) handle(path string, h http.HandlerFunc) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.routes[path] = h
}

// last returns the newest request to a path.
func (f *fakeServer) last(path string) recorded {
	f.t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := len(f.reqs) - 1; i >= 0; i-- {
		if f.reqs[i].path == path {
			return f.reqs[i]
		}
	}
	f.t.Fatalf("no request to %s", path)
	return recorded{}
}

func (f *fakeServer) count(path string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, r := range f.reqs {
		if r.path == path {
			n++
		}
	}
	return n
}

// testInstance is an instance pointed at url with a tenant and a token.
func testInstance(t *testing.T, u string) *Instance {
	t.Helper()
	in := newInstance(backend.DataSourceInstanceSettings{
		UID:                     "ds-uid",
		URL:                     u,
		JSONData:                json.RawMessage(`{"tenant":"team-a","timeoutSeconds":10,"maxLines":500}`),
		DecryptedSecureJSONData: map[string]string{"apiToken": "s3cret"},
	})
	if in.configErr != nil {
		t.Fatal(in.configErr)
	}
	t.Cleanup(in.Dispose)
	return in
}

// checkGolden compares v, as indented JSON, with testdata/<name>.golden.json.
func checkGolden(t *testing.T, name string, v any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := json.Indent(&out, b, "", "  "); err != nil {
		t.Fatal(err)
	}
	out.WriteByte('\n')
	path := filepath.Join("testdata", name+".golden.json")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to write it)", err)
	}
	if !bytes.Equal(want, out.Bytes()) {
		t.Errorf("%s differs from the golden file (go test -update rewrites it)\ngot:\n%s", path, out.String())
	}
}

// recordingSender keeps what a stream sent.
type recordingSender struct {
	mu      sync.Mutex
	frames  []*data.Frame
	include []data.FrameInclude
	jsons   [][]byte
	notify  chan struct{}
}

func newRecordingSender() *recordingSender {
	return &recordingSender{notify: make(chan struct{}, 1024)}
}

func (s *recordingSender) SendFrame(f *data.Frame, inc data.FrameInclude) error {
	b, err := data.FrameToJSON(f, inc)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.frames = append(s.frames, f)
	s.include = append(s.include, inc)
	s.jsons = append(s.jsons, b)
	s.mu.Unlock()
	s.notify <- struct{}{}
	return nil
}

func (s *recordingSender) snapshot() ([]*data.Frame, []data.FrameInclude) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*data.Frame(nil), s.frames...), append([]data.FrameInclude(nil), s.include...)
}

// bodies lists the body column of every frame sent, in order.
func (s *recordingSender) bodies() []string {
	fs, _ := s.snapshot()
	var out []string
	for _, f := range fs {
		n, _ := f.RowLen()
		for i := 0; i < n; i++ {
			out = append(out, f.Fields[1].At(i).(string))
		}
	}
	return out
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func parseInt(s string) (int64, error) { return strconv.ParseInt(strings.TrimSpace(s), 10, 64) }

func urlEncode(s string) string { return url.QueryEscape(s) }
