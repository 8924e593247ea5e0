package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grafana/loki/pkg/push"
	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zlib"
	"go.yaml.in/yaml/v3"

	"github.com/logsift/logsift/pkg/labels"
	"github.com/logsift/logsift/pkg/store"
	"github.com/logsift/logsift/pkg/tenant"
)

func TestPushProto(t *testing.T) {
	app := &fakeAppender{}
	h, set := newTestHandler(t, app, nil)
	body := protoBody(t,
		push.Stream{Labels: `{job="api", host="web-1"}`, Entries: []push.Entry{
			{Timestamp: ts(1556000000), Line: "imported from 2019"},
			{Timestamp: time.Unix(1700000000, 123), Line: "with metadata", StructuredMetadata: push.LabelsAdapter{
				{Name: "trace_id", Value: "abc"}, {Name: "level", Value: "error"},
			}},
			{Timestamp: ts(1700000001), Line: ""},
		}},
		push.Stream{Labels: `{job="db"}`, Entries: []push.Entry{{Timestamp: ts(1700000002), Line: "db line"}}},
	)
	resp := do(h, body, map[string]string{"Content-Type": "application/x-protobuf"})
	if resp.code != http.StatusNoContent {
		t.Fatalf("status %d: %s", resp.code, resp.body)
	}
	if len(app.tenants) != 1 || app.tenants[0] != tenant.DefaultID {
		t.Fatalf("tenants %v, want [fake]", app.tenants)
	}
	got := app.lines(`{host="web-1", job="api"}`)
	if strings.Join(got, "|") != "imported from 2019|with metadata|" {
		t.Fatalf("api lines %q", got)
	}
	if got := app.lines(`{job="db"}`); len(got) != 1 || got[0] != "db line" {
		t.Fatalf("db lines %q", got)
	}
	es := app.entries()
	if es[0].Timestamp != 1556000000*1e9 || es[1].Timestamp != 1700000000*1e9+123 {
		t.Fatalf("timestamps %d %d", es[0].Timestamp, es[1].Timestamp)
	}
	// Structured metadata arrives sorted by name, as chunk.Entry requires.
	// detected_level is added as Loki's discover_log_levels does.
	if want := labels.New("detected_level", "error", "level", "error", "trace_id", "abc"); !es[1].Metadata.Equal(want) {
		t.Fatalf("metadata %v, want %v", es[1].Metadata, want)
	}
	if !es[0].Metadata.Equal(labels.New("detected_level", "unknown")) || es[2].Line == nil && len(es[2].Line) != 0 {
		t.Fatalf("entry 0 metadata %v", es[0].Metadata)
	}
	m := metricsText(set)
	for _, want := range []string{
		`logsift_ingest_received_lines_total{tenant="fake"} 4`,
		`logsift_ingest_requests_total{status="204"} 1`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %q:\n%s", want, m)
		}
	}
}

func TestPushContentTypes(t *testing.T) {
	body := protoBody(t, push.Stream{Labels: `{a="b"}`, Entries: []push.Entry{{Timestamp: ts(1), Line: "x"}}})
	for _, ct := range []string{"", "application/x-protobuf", "application/x-protobuf; charset=utf-8", "application/protobuf"} {
		app := &fakeAppender{}
		h, _ := newTestHandler(t, app, nil)
		if resp := do(h, body, map[string]string{"Content-Type": ct}); resp.code != http.StatusNoContent || len(app.entries()) != 1 {
			t.Errorf("Content-Type %q: %d %s", ct, resp.code, resp.body)
		}
	}
	h, _ := newTestHandler(t, &fakeAppender{}, nil)
	resp := do(h, body, map[string]string{"Content-Type": "text/plain"})
	if resp.code != http.StatusUnsupportedMediaType || !strings.Contains(resp.body, "application/json") {
		t.Fatalf("text/plain: %d %s", resp.code, resp.body)
	}
	resp = do(h, body, map[string]string{"Content-Encoding": "br"})
	if resp.code != http.StatusUnsupportedMediaType || !strings.Contains(resp.body, `"br"`) {
		t.Fatalf("br: %d %s", resp.code, resp.body)
	}
	req, _ := http.NewRequest(http.MethodGet, "/loki/api/v1/push", nil)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusMethodNotAllowed {
		t.Fatalf("GET: %d", rec.Code)
	}
}

const jsonPush = `{"streams":[
 {"stream":{"job":"api","host":"web-1"},"values":[
   ["1556000000000000000","plain"],
   ["1700000000000000123","quote \" backslash \\ tab\t unicode \u00e9 \ud83d\ude00 slash \/",{"trace_id":"abc","level":"warn"}],
   ["1700000000000000124",""]
 ]},
 {"values":[["1700000000000000125","db \"line\""]],"stream":{"job":"db"},"ignored":{"x":[1,2.5e3,true,null]}}
],"extra":"ignored"}`

func TestPushJSON(t *testing.T) {
	app := &fakeAppender{}
	h, _ := newTestHandler(t, app, nil)
	resp := do(h, []byte(jsonPush), jsonHeader)
	if resp.code != http.StatusNoContent {
		t.Fatalf("status %d: %s", resp.code, resp.body)
	}
	got := app.lines(`{host="web-1", job="api"}`)
	want := []string{"plain", "quote \" backslash \\ tab\t unicode \u00e9 \U0001F600 slash /", ""}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("lines %q, want %q", got, want)
	}
	if got := app.lines(`{job="db"}`); len(got) != 1 || got[0] != `db "line"` {
		t.Fatalf("db lines %q", got)
	}
	es := app.entries()
	if es[0].Timestamp != 1556000000000000000 || es[1].Timestamp != 1700000000000000123 {
		t.Fatalf("timestamps %d %d", es[0].Timestamp, es[1].Timestamp)
	}
	if want := labels.New("detected_level", "warn", "level", "warn", "trace_id", "abc"); !es[1].Metadata.Equal(want) {
		t.Fatalf("metadata %v, want %v", es[1].Metadata, want)
	}
}

func TestPushCompressed(t *testing.T) {
	protoRaw := protoBody(t, push.Stream{Labels: `{a="b"}`, Entries: []push.Entry{{Timestamp: ts(1), Line: "p"}}})
	zlibBytes := func(b []byte) []byte {
		var buf bytes.Buffer
		zw := zlib.NewWriter(&buf)
		zw.Write(b)
		zw.Close()
		return buf.Bytes()
	}
	flateBytes := func(b []byte) []byte {
		var buf bytes.Buffer
		zw, _ := flate.NewWriter(&buf, 5)
		zw.Write(b)
		zw.Close()
		return buf.Bytes()
	}
	cases := []struct {
		name, ct, enc string
		body          []byte
	}{
		{"gzip proto", "application/x-protobuf", "gzip", gzipBytes(t, protoRaw)},
		{"gzip json", "application/json", "gzip", gzipBytes(t, []byte(jsonPush))},
		{"zlib deflate json", "application/json", "deflate", zlibBytes([]byte(jsonPush))},
		{"raw deflate proto", "", "deflate", flateBytes(protoRaw)},
	}
	for _, c := range cases {
		app := &fakeAppender{}
		h, _ := newTestHandler(t, app, nil)
		resp := do(h, c.body, map[string]string{"Content-Type": c.ct, "Content-Encoding": c.enc})
		if resp.code != http.StatusNoContent || len(app.entries()) == 0 {
			t.Errorf("%s: %d %q, %d entries", c.name, resp.code, resp.body, len(app.entries()))
		}
	}
}

func TestTenantRouting(t *testing.T) {
	body := protoBody(t, push.Stream{Labels: `{a="b"}`, Entries: []push.Entry{{Timestamp: ts(1), Line: "x"}}})
	cases := []struct {
		name   string
		res    tenant.Resolver
		header string
		code   int
		tenant string
		msg    string
	}{
		{"default", tenant.Resolver{}, "", 204, "fake", ""},
		{"configured default", tenant.Resolver{Default: "me"}, "", 204, "me", ""},
		{"header", tenant.Resolver{}, "team-a", 204, "team-a", ""},
		{"required missing", tenant.Resolver{Required: true}, "", 401, "", "no org id"},
		{"multi-tenant push", tenant.Resolver{}, "a|b", 400, "", "only queries"},
		{"invalid", tenant.Resolver{}, "..", 400, "", "not allowed"},
	}
	for _, c := range cases {
		app := &fakeAppender{}
		h, _ := newTestHandler(t, app, func(cfg *Config) { cfg.Tenants = c.res })
		hdr := map[string]string{}
		if c.header != "" {
			hdr[tenant.Header] = c.header
		}
		resp := do(h, body, hdr)
		if resp.code != c.code || !strings.Contains(resp.body, c.msg) {
			t.Errorf("%s: %d %q, want %d %q", c.name, resp.code, resp.body, c.code, c.msg)
			continue
		}
		if c.code == 204 && (len(app.tenants) != 1 || app.tenants[0] != c.tenant) {
			t.Errorf("%s: appended for %v, want %s", c.name, app.tenants, c.tenant)
		}
		if c.code != 204 && len(app.tenants) != 0 {
			t.Errorf("%s: appended although refused", c.name)
		}
	}
	// Behind the middleware the handler takes the tenant from the context.
	app := &fakeAppender{}
	h, _ := newTestHandler(t, app, nil)
	resp := do(tenant.Resolver{}.Middleware(h), body, map[string]string{tenant.Header: "ctx-tenant"})
	if resp.code != 204 || app.tenants[0] != "ctx-tenant" {
		t.Fatalf("middleware: %d %v", resp.code, app.tenants)
	}
}

// TestBadInput sends one bad thing together with a valid stream and checks
// the status, that the message says what is wrong, and that the valid rest
// of the push was stored whenever the body could be decoded at all.
func TestBadInput(t *testing.T) {
	good := push.Stream{Labels: `{job="good"}`, Entries: []push.Entry{{Timestamp: ts(1600000000), Line: "good line"}}}
	thousand := make([]string, 1000)
	for i := range thousand {
		thousand[i] = fmt.Sprintf(`l%d="v"`, i)
	}
	bigLine := strings.Repeat("x", 10<<20)
	validMsg, _ := (&push.PushRequest{Streams: []push.Stream{good}}).Marshal()
	hugeClaim := append(binaryUvarint(0xffffffff), 0x00) // snappy header claiming 4 GiB

	type tc struct {
		name    string
		body    []byte
		header  map[string]string
		code    int
		msg     []string
		keepsOK bool // the good stream must have been stored
		mod     func(*Config)
	}
	cases := []tc{
		{name: "malformed protobuf", body: s2.EncodeSnappy(nil, []byte{0x0a, 0xff, 0xff, 0x03, 0x01}), code: 400, msg: []string{"malformed protobuf"}},
		{name: "not snappy", body: []byte("hello, this is not snappy"), code: 400, msg: []string{"snappy"}},
		{name: "truncated snappy", body: s2.EncodeSnappy(nil, validMsg)[:len(validMsg)/2], code: 400, msg: []string{"snappy"}},
		{name: "snappy claiming a huge size", body: hugeClaim, code: 413, msg: []string{"4294967295", "134217728", "max_decompressed_bytes"}},
		{name: "gzip bomb", body: gzipBytes(t, make([]byte, 64<<20)), header: map[string]string{"Content-Encoding": "gzip", "Content-Type": "application/json"}, code: 413, msg: []string{"decompressed request body", "1048576", "max_decompressed_bytes"}, mod: func(c *Config) { c.MaxDecompressedBytes = 1 << 20 }},
		{name: "bad gzip", body: []byte("not gzip at all"), header: map[string]string{"Content-Encoding": "gzip"}, code: 400, msg: []string{"gzip"}},
		{name: "invalid UTF-8 label value", body: protoBody(t, good, push.Stream{Labels: "{job=\"\xff\xfe\"}", Entries: []push.Entry{{Timestamp: ts(1), Line: "x"}}}), code: 400, msg: []string{"not valid UTF-8", "{job=\"\uFFFD\"}", "1 of 2 entries"}, keepsOK: true},
		{name: "1000 labels", body: protoBody(t, push.Stream{Labels: "{" + strings.Join(thousand, ",") + "}", Entries: []push.Entry{{Timestamp: ts(1), Line: "x"}}}, good), code: 400, msg: []string{"1000 or more label names; limit 32", "max_label_names_per_series", "bytes)"}, keepsOK: true},
		{name: "10 MB line", body: protoBody(t, push.Stream{Labels: `{job="big"}`, Entries: []push.Entry{{Timestamp: ts(1), Line: bigLine}, {Timestamp: ts(2), Line: "small"}}}, good), code: 400, msg: []string{`{job="big"}`, "'10485760' bytes", "'262144' bytes", "max_line_size"}, keepsOK: true},
		{name: "missing labels", body: protoBody(t, push.Stream{Labels: `{}`, Entries: []push.Entry{{Timestamp: ts(1), Line: "x"}}}, good), code: 400, msg: []string{"at least one label pair is required"}, keepsOK: true},
		{name: "unparsable labels", body: protoBody(t, push.Stream{Labels: `job=x`, Entries: []push.Entry{{Timestamp: ts(1), Line: "x"}}}, good), code: 400, msg: []string{`error parsing stream labels: parse labels "job=x": at 0: expected '{'`}, keepsOK: true},
		{name: "duplicate labels", body: protoBody(t, push.Stream{Labels: `{a="1",a="2"}`, Entries: []push.Entry{{Timestamp: ts(1), Line: "x"}}}, good), code: 400, msg: []string{"duplicate label name", `"a"`}, keepsOK: true},
		{name: "label name too long", body: protoBody(t, push.Stream{Labels: `{` + strings.Repeat("n", 1025) + `="v"}`, Entries: []push.Entry{{Timestamp: ts(1), Line: "x"}}}, good), code: 400, msg: []string{"label name too long", "1025 bytes, limit 1024"}, keepsOK: true},
		{name: "label value too long", body: protoBody(t, push.Stream{Labels: `{a="` + strings.Repeat("v", 2049) + `"}`, Entries: []push.Entry{{Timestamp: ts(1), Line: "x"}}}, good), code: 400, msg: []string{"label value too long", "2049 bytes, limit 2048", "max_label_value_length"}, keepsOK: true},
		{name: "zero timestamp", body: protoBody(t, push.Stream{Labels: `{job="z"}`, Entries: []push.Entry{{Timestamp: time.Unix(0, 0), Line: "x"}}}, good), code: 400, msg: []string{"not after 1970"}, keepsOK: true},
		{name: "bad metadata name", body: protoBody(t, push.Stream{Labels: `{job="m"}`, Entries: []push.Entry{{Timestamp: ts(1), Line: "x", StructuredMetadata: push.LabelsAdapter{{Name: "bad-name", Value: "v"}}}}}, good), code: 400, msg: []string{"invalid structured metadata name", "bad-name"}, keepsOK: true},
		{name: "metadata too large", body: protoBody(t, push.Stream{Labels: `{job="m"}`, Entries: []push.Entry{{Timestamp: ts(1), Line: "x", StructuredMetadata: push.LabelsAdapter{{Name: "big", Value: strings.Repeat("v", 70000)}}}}}, good), code: 400, msg: []string{"structured metadata too large", "'70003' bytes", "max_structured_metadata_size"}, keepsOK: true},
		{name: "duplicate metadata", body: protoBody(t, push.Stream{Labels: `{job="m"}`, Entries: []push.Entry{{Timestamp: ts(1), Line: "x", StructuredMetadata: push.LabelsAdapter{{Name: "a", Value: "1"}, {Name: "a", Value: "2"}}}}}, good), code: 400, msg: []string{"given twice"}, keepsOK: true},

		{name: "bad JSON", body: []byte(`{"streams":[{"stream":{"a":"b"},"values":[["1","x"]]}`), header: jsonHeader, code: 400, msg: []string{"malformed JSON", "expected ',' or ']'"}},
		{name: "JSON trailing garbage", body: []byte(`{"streams":[]} x`), header: jsonHeader, code: 400, msg: []string{"unexpected data"}},
		{name: "JSON deep nesting", body: []byte(`{"x":` + strings.Repeat("[", 100000) + `}`), header: jsonHeader, code: 400, msg: []string{"nested deeper"}},
		{name: "JSON bad timestamp string", body: []byte(`{"streams":[{"stream":{"job":"t"},"values":[["17OO","bad"],["1700000000000000000","fine"]]},{"stream":{"job":"good"},"values":[["1600000000000000000","good line"]]}]}`), header: jsonHeader, code: 400, msg: []string{`timestamp "17OO" is not a string of Unix nanoseconds`, "1 of 3 entries"}, keepsOK: true},
		{name: "JSON numeric timestamp", body: []byte(`{"streams":[{"stream":{"job":"t"},"values":[[1700000000000000000,"bad"]]},{"stream":{"job":"good"},"values":[["1600000000000000000","good line"]]}]}`), header: jsonHeader, code: 400, msg: []string{"must be a string of Unix nanoseconds"}, keepsOK: true},
		{name: "JSON overflowing timestamp", body: []byte(`{"streams":[{"stream":{"job":"t"},"values":[["99999999999999999999","bad"]]},{"stream":{"job":"good"},"values":[["1600000000000000000","good line"]]}]}`), header: jsonHeader, code: 400, msg: []string{"beyond 2262"}, keepsOK: true},
		{name: "JSON missing labels", body: []byte(`{"streams":[{"values":[["1","x"]]},{"stream":{},"values":[["1","x"]]},{"stream":{"job":"good"},"values":[["1600000000000000000","good line"]]}]}`), header: jsonHeader, code: 400, msg: []string{"at least one label pair", "2 of 3 entries"}, keepsOK: true},
		{name: "JSON non-string label", body: []byte(`{"streams":[{"stream":{"job":1},"values":[["1","x"]]},{"stream":{"job":"good"},"values":[["1600000000000000000","good line"]]}]}`), header: jsonHeader, code: 400, msg: []string{`label "job" must have a string value`}, keepsOK: true},
		{name: "JSON invalid label name", body: []byte(`{"streams":[{"stream":{"1job":"x"},"values":[["1","x"]]},{"stream":{"job":"good"},"values":[["1600000000000000000","good line"]]}]}`), header: jsonHeader, code: 400, msg: []string{`invalid label name "1job"`}, keepsOK: true},
		{name: "JSON duplicate label", body: []byte(`{"streams":[{"stream":{"a":"1","a":"2"},"values":[["1","x"]]},{"stream":{"job":"good"},"values":[["1600000000000000000","good line"]]}]}`), header: jsonHeader, code: 400, msg: []string{`duplicate label name: 'a'`}, keepsOK: true},
		{name: "JSON short entry", body: []byte(`{"streams":[{"stream":{"job":"t"},"values":[["1700000000000000000"]]},{"stream":{"job":"good"},"values":[["1600000000000000000","good line"]]}]}`), header: jsonHeader, code: 400, msg: []string{"entry has 1 elements"}, keepsOK: true},
		{name: "JSON metadata not string", body: []byte(`{"streams":[{"stream":{"job":"t"},"values":[["1700000000000000000","x",{"n":5}]]},{"stream":{"job":"good"},"values":[["1600000000000000000","good line"]]}]}`), header: jsonHeader, code: 400, msg: []string{`structured metadata "n" must have a string value`}, keepsOK: true},
		{name: "JSON stream not object", body: []byte(`{"streams":[{"stream":"job=x","values":[]}]}`), header: jsonHeader, code: 400, msg: []string{`"stream" must be an object`}},
		{name: "body too large", body: make([]byte, 33<<20), code: 413, msg: []string{"request body of 34603008 bytes exceeds the limit of 33554432 bytes", "max_body_bytes"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			app := &fakeAppender{}
			h, _ := newTestHandler(t, app, c.mod)
			resp := do(h, c.body, c.header)
			t.Logf("%d %s", resp.code, shortenTo(resp.body, 600))
			if resp.code != c.code {
				t.Fatalf("status %d, want %d: %s", resp.code, c.code, resp.body)
			}
			for _, m := range c.msg {
				if !strings.Contains(resp.body, m) {
					t.Errorf("message %q lacks %q", shortenTo(resp.body, 2000), m)
				}
			}
			good := app.lines(`{job="good"}`)
			if c.keepsOK && (len(good) != 1 || good[0] != "good line") {
				t.Errorf("valid rest not stored: %q", good)
			}
			if !c.keepsOK && len(app.streams) != 0 {
				t.Errorf("stored %d streams from a refused push", len(app.streams))
			}
		})
	}
}

func binaryUvarint(v uint64) []byte {
	var b []byte
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

func TestPartialKeepsValidEntriesOfSameStream(t *testing.T) {
	app := &fakeAppender{}
	h, set := newTestHandler(t, app, nil)
	body := protoBody(t, push.Stream{Labels: `{job="mixed"}`, Entries: []push.Entry{
		{Timestamp: ts(1), Line: "first"},
		{Timestamp: ts(2), Line: strings.Repeat("y", 300<<10)},
		{Timestamp: ts(3), Line: "third"},
	}})
	resp := do(h, body, nil)
	if resp.code != 400 || !strings.Contains(resp.body, "1 of 3 entries were rejected; the other 2 were stored") {
		t.Fatalf("%d %s", resp.code, resp.body)
	}
	if got := app.lines(`{job="mixed"}`); fmt.Sprint(got) != "[first third]" {
		t.Fatalf("stored %q", got)
	}
	m := metricsText(set)
	for _, want := range []string{
		`logsift_ingest_discarded_lines_total{tenant="fake",reason="line_too_long"} 1`,
		`logsift_ingest_discarded_bytes_total{tenant="fake",reason="line_too_long"} 307200`,
		`logsift_ingest_received_lines_total{tenant="fake"} 3`,
		`logsift_ingest_requests_total{status="400"} 1`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

func TestReportLimitsMessages(t *testing.T) {
	app := &fakeAppender{}
	h, _ := newTestHandler(t, app, nil)
	var entries []push.Entry
	for i := 0; i < 50; i++ {
		entries = append(entries, push.Entry{Timestamp: time.Unix(0, 0), Line: "bad"})
	}
	resp := do(h, protoBody(t, push.Stream{Labels: `{a="b"}`, Entries: entries}), nil)
	if resp.code != 400 || strings.Count(resp.body, "not after 1970") != DefaultMaxReportedErrors || !strings.Contains(resp.body, "40 more problems") {
		t.Fatalf("%d %s", resp.code, resp.body)
	}
	if len(app.streams) != 0 {
		t.Fatal("appended a stream without valid entries")
	}
}

func TestFutureTimestamps(t *testing.T) {
	far := time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)
	body := protoBody(t, push.Stream{Labels: `{a="b"}`, Entries: []push.Entry{{Timestamp: far, Line: "future"}, {Timestamp: ts(1700000000), Line: "now"}}})
	app := &fakeAppender{}
	h, _ := newTestHandler(t, app, nil)
	if resp := do(h, body, nil); resp.code != 204 || len(app.entries()) != 2 {
		t.Fatalf("default must accept the future: %d %s", resp.code, resp.body)
	}
	app = &fakeAppender{}
	lim := DefaultLimits()
	lim.CreationGracePeriod = 10 * time.Minute
	lim.DiscoverServiceName = nil
	h, _ = newTestHandler(t, app, func(c *Config) { c.Limits = &lim })
	resp := do(h, body, nil)
	if resp.code != 400 || !strings.Contains(resp.body, "timestamp too new: 2200-01-01T00:00:00Z") || !strings.Contains(resp.body, "creation_grace_period") {
		t.Fatalf("%d %s", resp.code, resp.body)
	}
	if got := app.lines(`{a="b"}`); fmt.Sprint(got) != "[now]" {
		t.Fatalf("stored %q", got)
	}
}

func TestOverridesAndTruncate(t *testing.T) {
	strict := DefaultLimits()
	strict.MaxLineSize = 4
	strict.MaxLineSizeTruncate = true
	strict.MaxStreamsPerPush = 1
	strict.DiscoverServiceName = nil
	app := &fakeAppender{}
	h, _ := newTestHandler(t, app, func(c *Config) { c.Overrides = Overrides{"strict": strict} })
	body := protoBody(t,
		push.Stream{Labels: `{a="1"}`, Entries: []push.Entry{{Timestamp: ts(1), Line: "truncated"}}},
		push.Stream{Labels: `{a="2"}`, Entries: []push.Entry{{Timestamp: ts(1), Line: "x"}}},
	)
	resp := do(h, body, map[string]string{tenant.Header: "strict"})
	if resp.code != 400 || !strings.Contains(resp.body, "push has 2 streams, more than the limit of 1") {
		t.Fatalf("%d %s", resp.code, resp.body)
	}
	if got := app.lines(`{a="1"}`); fmt.Sprint(got) != "[trun]" {
		t.Fatalf("stored %q", got)
	}
	app2 := &fakeAppender{}
	h2, _ := newTestHandler(t, app2, func(c *Config) { c.Overrides = Overrides{"strict": strict} })
	if resp := do(h2, body, map[string]string{tenant.Header: "relaxed"}); resp.code != 204 || len(app2.entries()) != 2 {
		t.Fatalf("other tenant: %d %s", resp.code, resp.body)
	}
}

func TestRateLimit(t *testing.T) {
	now := time.Unix(1700000000, 0)
	lim := DefaultLimits()
	lim.IngestionRateMB = 1.0 / 1024 // 1 KiB/s
	lim.IngestionBurstSizeMB = 2.0 / 1024
	app := &fakeAppender{}
	h, set := newTestHandler(t, app, func(c *Config) {
		c.Limits = &lim
		c.Now = func() time.Time { return now }
	})
	line := strings.Repeat("z", 1500)
	body := protoBody(t, push.Stream{Labels: `{a="b"}`, Entries: []push.Entry{{Timestamp: ts(1), Line: line}}})
	if resp := do(h, body, map[string]string{tenant.Header: "t1"}); resp.code != 204 {
		t.Fatalf("first push: %d %s", resp.code, resp.body)
	}
	resp := do(h, body, map[string]string{tenant.Header: "t1"})
	if resp.code != http.StatusTooManyRequests {
		t.Fatalf("second push: %d %s", resp.code, resp.body)
	}
	want := "Ingestion rate limit exceeded for user t1 (limit: 1024 bytes/sec) while attempting to ingest '1' lines totaling '1500' bytes, reduce log volume or contact your Loki administrator to see if the limit can be increased"
	if resp.body != want {
		t.Fatalf("message %q", resp.body)
	}
	// 548 bytes are left; 952 more arrive in 952/1024 s, so one second.
	if ra := resp.header.Get("Retry-After"); ra != "1" {
		t.Fatalf("Retry-After %q", ra)
	}
	if len(app.entries()) != 1 {
		t.Fatalf("rate-limited push was appended")
	}
	// Another tenant has its own bucket.
	if resp := do(h, body, map[string]string{tenant.Header: "t2"}); resp.code != 204 {
		t.Fatalf("other tenant: %d", resp.code)
	}
	now = now.Add(time.Second)
	if resp := do(h, body, map[string]string{tenant.Header: "t1"}); resp.code != 204 {
		t.Fatalf("after Retry-After: %d %s", resp.code, resp.body)
	}
	if m := metricsText(set); !strings.Contains(m, `logsift_ingest_discarded_bytes_total{tenant="t1",reason="rate_limited"} 1500`) {
		t.Fatalf("metrics:\n%s", m)
	}
	big := protoBody(t, push.Stream{Labels: `{a="b"}`, Entries: []push.Entry{{Timestamp: ts(1), Line: strings.Repeat("z", 3000)}}})
	if resp := do(h, big, map[string]string{tenant.Header: "t3"}); resp.code != 429 || !strings.Contains(resp.body, "larger than the burst of 2048 bytes") {
		t.Fatalf("over burst: %d %s", resp.code, resp.body)
	}
}

func TestAppendErrors(t *testing.T) {
	body := protoBody(t,
		push.Stream{Labels: `{a="1"}`, Entries: []push.Entry{{Timestamp: ts(1), Line: "x"}}},
		push.Stream{Labels: `{a="2"}`, Entries: []push.Entry{{Timestamp: ts(1), Line: "y"}}},
	)
	cases := []struct {
		err  error
		code int
		msg  string
	}{
		{&store.StreamLimitError{Tenant: "fake", Limit: 1, Rejected: []labels.Labels{labels.New("a", "2")}}, 429, "reached its limit of 1 streams"},
		{fmt.Errorf("wal write: %w", store.ErrDiskFull), 507, "out of space"},
		{store.ErrClosed, 503, "store is closed"},
		{context.Canceled, statusClientClosed, "before the store made it durable"},
		{context.DeadlineExceeded, 503, "before the store made it durable"},
		{errors.New("disk on fire"), 500, "disk on fire"},
	}
	for _, c := range cases {
		h, set := newTestHandler(t, &fakeAppender{err: c.err}, nil)
		resp := do(h, body, nil)
		if resp.code != c.code || !strings.Contains(resp.body, c.msg) {
			t.Errorf("%v: %d %q, want %d %q", c.err, resp.code, resp.body, c.code, c.msg)
		}
		m := metricsText(set)
		wantReason := `reason="store_error"} 2`
		if c.code == 429 {
			wantReason = `reason="stream_limit"} 1`
		}
		if !strings.Contains(m, wantReason) {
			t.Errorf("%v: metrics lack %s", c.err, wantReason)
		}
	}
}

func TestLimitsYAML(t *testing.T) {
	var l Limits
	// What a YAML library does with a block that sets one field.
	err := l.UnmarshalYAML(func(v any) error {
		reflect.ValueOf(v).Elem().FieldByName("MaxLineSize").SetInt(1000)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := DefaultLimits()
	want.MaxLineSize = 1000
	if !reflect.DeepEqual(l, want) {
		t.Fatalf("got %+v, want %+v", l, want)
	}
	// A real YAML document: the defaults block and a tenant override each
	// start from DefaultLimits.
	var cfg struct {
		Limits    Limits    `yaml:"limits"`
		Overrides Overrides `yaml:"overrides"`
	}
	doc := "limits:\n  max_line_size: 1000\n  creation_grace_period: 10m\noverrides:\n  team-a:\n    ingestion_rate_mb: 0\n"
	if err := yaml.Unmarshal([]byte(doc), &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Limits.MaxLineSize != 1000 || cfg.Limits.CreationGracePeriod != 10*time.Minute || cfg.Limits.MaxLabelNamesPerSeries != 32 {
		t.Fatalf("limits %+v", cfg.Limits)
	}
	if o := cfg.Overrides["team-a"]; o.IngestionRateMB != 0 || o.MaxLineSize != 256<<10 || o.IngestionBurstSizeMB != 512 {
		t.Fatalf("override %+v", o)
	}
	// Every field has a yaml tag, so config files can name it.
	typ := reflect.TypeOf(l)
	for i := 0; i < typ.NumField(); i++ {
		if typ.Field(i).Tag.Get("yaml") == "" {
			t.Errorf("field %s has no yaml tag", typ.Field(i).Name)
		}
	}
}

// recordingHandler keeps slog records for assertions.
type recordingHandler struct {
	mu      sync.Mutex
	records []slog.Record
}

func (h *recordingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *recordingHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	h.records = append(h.records, r)
	h.mu.Unlock()
	return nil
}
func (h *recordingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *recordingHandler) WithGroup(string) slog.Handler      { return h }

func TestRejectedPushLogIsSampled(t *testing.T) {
	rec := &recordingHandler{}
	now := time.Unix(1700000000, 0)
	h, _ := newTestHandler(t, &fakeAppender{}, func(c *Config) {
		c.Logger = slog.New(rec)
		c.Now = func() time.Time { return now }
	})
	for i := 0; i < 100; i++ {
		do(h, []byte("garbage"), nil)
	}
	if len(rec.records) != 5 {
		t.Fatalf("%d records for 100 bad pushes in one instant, want the burst of 5", len(rec.records))
	}
	now = now.Add(time.Second)
	do(h, []byte("garbage"), map[string]string{tenant.Header: "noisy"})
	if len(rec.records) != 6 {
		t.Fatalf("%d records after a second", len(rec.records))
	}
	last := rec.records[5]
	if last.Level != slog.LevelWarn {
		t.Errorf("level %v, want warn", last.Level)
	}
	attrs := map[string]string{}
	last.Attrs(func(a slog.Attr) bool { attrs[a.Key] = a.Value.String(); return true })
	if attrs["tenant"] != "noisy" || attrs["status"] != "400" || attrs["suppressed_since_last"] != "95" || !strings.Contains(attrs["reason"], "snappy") {
		t.Fatalf("attrs %v", attrs)
	}
}

func TestConcurrentPushes(t *testing.T) {
	app := &fakeAppender{}
	h, set := newTestHandler(t, app, nil)
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 25; i++ {
				body := protoBody(t, push.Stream{Labels: fmt.Sprintf(`{g="%d", i="%d"}`, g, i%3), Entries: []push.Entry{{Timestamp: ts(int64(i + 1)), Line: "x"}}})
				if resp := do(h, body, map[string]string{tenant.Header: fmt.Sprintf("t%d", g)}); resp.code != 204 {
					t.Errorf("status %d: %s", resp.code, resp.body)
					return
				}
			}
		}(g)
	}
	wg.Wait()
	if n := len(app.entries()); n != 100 {
		t.Fatalf("%d entries stored, want 100", n)
	}
	if m := metricsText(set); !strings.Contains(m, `logsift_ingest_received_lines_total{tenant="t3"} 25`) {
		t.Fatalf("metrics:\n%s", m)
	}
}

// copyingAppender keeps deep copies, as an Appender must under ReuseBuffers.
type copyingAppender struct{ fakeAppender }

func (c *copyingAppender) Append(ctx context.Context, tenant string, streams []store.Stream) error {
	cp := make([]store.Stream, len(streams))
	for i, s := range streams {
		cp[i].Labels = s.Labels
		for _, e := range s.Entries {
			e.Line = bytes.Clone(e.Line)
			md := make(labels.Labels, len(e.Metadata))
			for j, l := range e.Metadata {
				md[j] = labels.Label{Name: strings.Clone(l.Name), Value: strings.Clone(l.Value)}
			}
			e.Metadata = md
			cp[i].Entries = append(cp[i].Entries, e)
		}
	}
	return c.fakeAppender.Append(ctx, tenant, cp)
}

// TestBuffersAndLaterPushes checks in both buffer modes that what an
// Appender kept is intact after later pushes reuse the handler's memory.
func TestBuffersAndLaterPushes(t *testing.T) {
	for _, reuse := range []bool{false, true} {
		var app interface {
			Appender
			lines(string) []string
		}
		if reuse {
			app = &copyingAppender{}
		} else {
			app = &fakeAppender{}
		}
		h, _ := newTestHandler(t, app, func(c *Config) { c.ReuseBuffers = reuse })
		for i := 0; i < 6; i++ {
			line := fmt.Sprintf("push %d %s", i, strings.Repeat(string(rune('a'+i)), 100))
			var resp response
			switch i % 3 {
			case 0:
				resp = do(h, protoBody(t, push.Stream{Labels: `{a="b"}`, Entries: []push.Entry{{Timestamp: ts(1), Line: line, StructuredMetadata: push.LabelsAdapter{{Name: "m", Value: line}}}}}), nil)
			case 1:
				resp = do(h, []byte(`{"streams":[{"stream":{"a":"b"},"values":[["1",`+strconv.Quote(line)+`,{"m":`+strconv.Quote(line)+`}]]}]}`), jsonHeader)
			case 2:
				resp = do(h, gzipBytes(t, protoBody(t, push.Stream{Labels: `{a="b"}`, Entries: []push.Entry{{Timestamp: ts(1), Line: line, StructuredMetadata: push.LabelsAdapter{{Name: "m", Value: line}}}}})), map[string]string{"Content-Encoding": "gzip"})
			}
			if resp.code != 204 {
				t.Fatalf("reuse=%v push %d: %d %s", reuse, i, resp.code, resp.body)
			}
		}
		got := app.lines(`{a="b"}`)
		for i, l := range got {
			if want := fmt.Sprintf("push %d %s", i, strings.Repeat(string(rune('a'+i)), 100)); l != want {
				t.Fatalf("reuse=%v: line %d is %q, want %q", reuse, i, l, want)
			}
		}
		if len(got) != 6 {
			t.Fatalf("reuse=%v: %d lines", reuse, len(got))
		}
	}
}

// TestConcurrentLargePushesKeepTheirBytes is the regression test for a
// pooled body buffer that went back to the pool before it was decoded:
// under concurrency another request overwrote it and pushes failed as
// "corrupt snappy" or, worse, carried another push's bytes.
func TestConcurrentLargePushesKeepTheirBytes(t *testing.T) {
	app := &fakeAppender{}
	h, _ := newTestHandler(t, app, nil)
	srv := httptest.NewServer(h)
	defer srv.Close()
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 30; i++ {
				var entries []push.Entry
				for k := 0; k < 200; k++ {
					entries = append(entries, push.Entry{Timestamp: ts(int64(k + 1)), Line: fmt.Sprintf("g=%d i=%d k=%d %s", g, i, k, strings.Repeat(string(rune('a'+(g*7+i+k)%26)), 300))})
				}
				body := protoBody(t, push.Stream{Labels: fmt.Sprintf(`{g="%d"}`, g), Entries: entries})
				resp, err := http.Post(srv.URL, "application/x-protobuf", bytes.NewReader(body))
				if err != nil {
					t.Error(err)
					return
				}
				msg, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 204 {
					t.Errorf("push g=%d i=%d: %d %s", g, i, resp.StatusCode, msg)
					return
				}
			}
		}(g)
	}
	wg.Wait()
	for g := 0; g < 4; g++ {
		lines := app.lines(fmt.Sprintf(`{g="%d"}`, g))
		if len(lines) != 30*200 {
			t.Fatalf("g=%d: %d lines stored, want %d", g, len(lines), 30*200)
		}
		for _, l := range lines {
			var gg, i, k int
			if _, err := fmt.Sscanf(l, "g=%d i=%d k=%d", &gg, &i, &k); err != nil || gg != g {
				t.Fatalf("stream g=%d holds a line of another push: %.40q", g, l)
			}
			if want := strings.Repeat(string(rune('a'+(g*7+i+k)%26)), 300); !strings.HasSuffix(l, want) {
				t.Fatalf("line damaged: %.60q", l)
			}
		}
	}
}

func TestDiscoverLogLevels(t *testing.T) {
	for _, on := range []bool{true, false} {
		lim := DefaultLimits()
		lim.DiscoverLogLevels = on
		app := &fakeAppender{}
		h, _ := newTestHandler(t, app, func(c *Config) { c.Limits = &lim })
		body := protoBody(t,
			push.Stream{Labels: `{job="a"}`, Entries: []push.Entry{
				{Timestamp: ts(1), Line: "2024-01-01 ERROR disk full"},
				{Timestamp: ts(2), Line: `{"level":"debug","msg":"x"}`, StructuredMetadata: push.LabelsAdapter{{Name: "trace_id", Value: "t"}}},
				{Timestamp: ts(3), Line: "kept as sent", StructuredMetadata: push.LabelsAdapter{{Name: "detected_level", Value: "warn"}}},
			}},
			push.Stream{Labels: `{job="b", detected_level="info"}`, Entries: []push.Entry{{Timestamp: ts(4), Line: "ERROR but the stream says info"}}},
		)
		if resp := do(h, body, nil); resp.code != 204 {
			t.Fatalf("%d %s", resp.code, resp.body)
		}
		got := map[string]string{}
		for _, e := range app.entries() {
			got[string(e.Line)] = e.Metadata.String()
		}
		want := map[string]string{
			"2024-01-01 ERROR disk full":     `{detected_level="error"}`,
			`{"level":"debug","msg":"x"}`:    `{detected_level="debug", trace_id="t"}`,
			"kept as sent":                   `{detected_level="warn"}`,
			"ERROR but the stream says info": `{}`,
		}
		if !on {
			want["2024-01-01 ERROR disk full"] = `{}`
			want[`{"level":"debug","msg":"x"}`] = `{trace_id="t"}`
		}
		for line, w := range want {
			if got[line] != w {
				t.Errorf("discover=%v %q: metadata %s, want %s", on, line, got[line], w)
			}
		}
	}
}

func TestDiscoverServiceName(t *testing.T) {
	lim := DefaultLimits()
	app := &fakeAppender{}
	h, _ := newTestHandler(t, app, func(c *Config) { c.Limits = &lim })
	body := protoBody(t,
		push.Stream{Labels: `{job="varlogs", app="shop"}`, Entries: []push.Entry{{Timestamp: ts(1), Line: "a"}}},
		push.Stream{Labels: `{job="varlogs"}`, Entries: []push.Entry{{Timestamp: ts(2), Line: "b"}}},
		push.Stream{Labels: `{host="h"}`, Entries: []push.Entry{{Timestamp: ts(3), Line: "c"}}},
		push.Stream{Labels: `{service_name="given", app="x"}`, Entries: []push.Entry{{Timestamp: ts(4), Line: "d"}}},
	)
	if resp := do(h, body, nil); resp.code != 204 {
		t.Fatalf("%d %s", resp.code, resp.body)
	}
	for _, want := range []string{`{app="shop", job="varlogs", service_name="shop"}`, `{job="varlogs", service_name="varlogs"}`, `{host="h", service_name="unknown_service"}`, `{app="x", service_name="given"}`} {
		if len(app.lines(want)) != 1 {
			t.Errorf("no stream %s", want)
		}
	}
}
