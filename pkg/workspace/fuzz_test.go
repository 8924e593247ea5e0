package workspace

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/logsift/logsift/pkg/tenant"
)

// FuzzHTTPAPI sends arbitrary requests to the workspace API: whatever the
// method, path and body, the answer is JSON, never a server error or a
// panic.
func FuzzHTTPAPI(f *testing.F) {
	f.Add(uint8(1), "/api/v1/workspaces", []byte(`{"name":"case-1","labels":{"a":"b"}}`))
	f.Add(uint8(2), "/api/v1/workspaces/case-1", []byte(`{"name":"case-2","description":"d"}`))
	f.Add(uint8(1), "/api/v1/workspaces/case-1/runs", []byte(`{"host":"h","source":"x.zip","files":3}`))
	f.Add(uint8(1), "/api/v1/workspaces/case-1/runs/000000000001-deadbeef/progress", []byte(`{"counters":{"files_done":1},"errors":["\xff"]}`))
	f.Add(uint8(1), "/api/v1/workspaces/case-1/runs/000000000001-deadbeef/finish", []byte(`{"status":"failed"}`))
	f.Add(uint8(3), "/api/v1/workspaces/case-1?confirm=case-1", []byte(nil))
	f.Add(uint8(1), "/api/v1/workspaces/case-1/sources", []byte(`{"kind":"tail","path":"/var/log/*.log"}`))

	svc, err := Open(f.TempDir(), Options{Data: &fakeData{}})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { svc.Close() })
	mux := http.NewServeMux()
	(&HTTP{Service: svc, Tenants: tenant.Resolver{}}).Register(mux)
	methods := []string{"GET", "POST", "PATCH", "DELETE", "PUT"}

	f.Fuzz(func(t *testing.T, m uint8, path string, body []byte) {
		// Other paths belong to other handlers of the server's mux.
		inAPI := path == "/api/v1/workspaces" || strings.HasPrefix(path, "/api/v1/workspaces/") || strings.HasPrefix(path, "/api/v1/workspaces?")
		if !inAPI || strings.ContainsAny(path, " \t\r\n#") {
			return
		}
		req, err := http.NewRequest(methods[int(m)%len(methods)], "http://x"+path, bytes.NewReader(body))
		if err != nil {
			return
		}
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		if rec.Code >= 500 && rec.Code != http.StatusNotImplemented {
			t.Fatalf("%s %s %q: %d %s", req.Method, path, body, rec.Code, rec.Body)
		}
		if rec.Code == http.StatusMovedPermanently || rec.Code == http.StatusTemporaryRedirect {
			return // the mux cleaning a path such as /api/v1/workspaces/./x
		}
		if !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("%s %s: answer is not JSON: %q", req.Method, path, rec.Body)
		}
	})
}
