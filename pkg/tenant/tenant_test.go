package tenant

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	valid := []string{"fake", "a", "Team-1_prod.eu", "!-_.*'()", strings.Repeat("x", MaxIDLength), "..."}
	for _, id := range valid {
		if err := Validate(id); err != nil {
			t.Errorf("Validate(%q) = %v, want nil", id, err)
		}
	}
	invalid := map[string]string{
		"":                                 "empty",
		".":                                "not allowed",
		"..":                               "not allowed",
		strings.Repeat("x", MaxIDLength+1): "151 bytes long, the limit is 150",
		"a/b":                              "unsupported character '/' at byte 1",
		"a b":                              "unsupported character ' '",
		"a|b":                              "only queries",
		"caf\u00e9":                        "unsupported character",
		"a\x00":                            "unsupported character '\\x00'",
		"semi;colon":                       "unsupported character ';'",
	}
	for id, want := range invalid {
		err := Validate(id)
		if err == nil {
			t.Errorf("Validate(%q) = nil, want error", id)
			continue
		}
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Validate(%q) = %q, want it to mention %q", id, err, want)
		}
	}
}

func TestParseQueryIDs(t *testing.T) {
	ids, err := ParseQueryIDs("b|a|b")
	if err != nil {
		t.Fatal(err)
	}
	if got := JoinQueryIDs(ids); got != "a|b" {
		t.Fatalf("got %q, want a|b", got)
	}
	ids, err = ParseQueryIDs("solo")
	if err != nil || len(ids) != 1 || ids[0] != "solo" {
		t.Fatalf("ParseQueryIDs(solo) = %v, %v", ids, err)
	}
	for _, bad := range []string{"", "a||b", "|a", "a|", "a|b/c", "a|.."} {
		if _, err := ParseQueryIDs(bad); err == nil {
			t.Errorf("ParseQueryIDs(%q) = nil error", bad)
		}
	}
}

func TestContext(t *testing.T) {
	if _, ok := FromContext(context.Background()); ok {
		t.Fatal("empty context has a tenant")
	}
	if _, err := IDsFromContext(context.Background()); err != ErrNoOrgID {
		t.Fatalf("IDsFromContext(empty) = %v, want ErrNoOrgID", err)
	}
	ctx := WithID(context.Background(), "b|a")
	id, ok := FromContext(ctx)
	if !ok || id != "b|a" {
		t.Fatalf("FromContext = %q, %v", id, ok)
	}
	ids, err := IDsFromContext(ctx)
	if err != nil || len(ids) != 2 || ids[0] != "a" {
		t.Fatalf("IDsFromContext = %v, %v", ids, err)
	}
}

func serve(h http.Handler, header string, set bool) (int, string) {
	req := httptest.NewRequest(http.MethodPost, "/loki/api/v1/push", nil)
	if set {
		req.Header.Set(Header, header)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Code, strings.TrimSpace(rec.Body.String())
}

func echoTenant() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, ok := FromContext(r.Context())
		if !ok {
			http.Error(w, "no tenant in context", http.StatusInternalServerError)
			return
		}
		_, _ = w.Write([]byte(id))
	})
}

func TestMiddleware(t *testing.T) {
	cases := []struct {
		name     string
		res      Resolver
		header   string
		set      bool
		code     int
		body     string
		multiOK  bool
		multiRes string
	}{
		{name: "default tenant", res: Resolver{}, code: 200, body: "fake"},
		{name: "configured default", res: Resolver{Default: "local"}, code: 200, body: "local"},
		{name: "empty header is absent", res: Resolver{}, header: "", set: true, code: 200, body: "fake"},
		{name: "header wins", res: Resolver{Default: "local"}, header: "team-a", set: true, code: 200, body: "team-a"},
		{name: "required and missing", res: Resolver{Required: true}, code: 401, body: "no org id"},
		{name: "required and present", res: Resolver{Required: true}, header: "t1", set: true, code: 200, body: "t1"},
		{name: "invalid", res: Resolver{}, header: "a/b", set: true, code: 400, body: "unsupported character"},
		{name: "multi on write", res: Resolver{}, header: "b|a", set: true, code: 400, body: "only queries"},
	}
	for _, c := range cases {
		code, body := serve(c.res.Middleware(echoTenant()), c.header, c.set)
		if code != c.code || !strings.Contains(body, c.body) {
			t.Errorf("%s: got %d %q, want %d containing %q", c.name, code, body, c.code, c.body)
		}
	}
}

func TestQueryMiddleware(t *testing.T) {
	code, body := serve(Resolver{}.QueryMiddleware(echoTenant()), "b|a|a", true)
	if code != 200 || body != "a|b" {
		t.Fatalf("got %d %q, want 200 a|b", code, body)
	}
	code, body = serve(Resolver{Required: true}.QueryMiddleware(echoTenant()), "", false)
	if code != 401 || body != "no org id" {
		t.Fatalf("got %d %q, want 401 no org id", code, body)
	}
	code, _ = serve(Resolver{}.QueryMiddleware(echoTenant()), "a||b", true)
	if code != 400 {
		t.Fatalf("got %d for a||b, want 400", code)
	}
}
