package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang/snappy"

	"github.com/logsift/logsift/pkg/chunk"
	"github.com/logsift/logsift/pkg/labels"
	"github.com/logsift/logsift/pkg/lokiclient"
)

// TestBadInputGetsClearErrorsAndLosesNothingElse sends each kind of bad
// input to a running server and checks the status, the message, that the
// good part of a mixed push was kept, and that the server keeps serving.
func TestBadInputGetsClearErrorsAndLosesNothingElse(t *testing.T) {
	p := startServer(t, t.TempDir())
	c := p.client("bad")
	ctx := context.Background()
	now := time.Now()
	good := lokiclient.Stream{Labels: labels.New("job", "good"), Entries: []chunk.Entry{{Timestamp: now.UnixNano(), Line: []byte("still here")}}}

	stillServing := func(step string) {
		t.Helper()
		resp, err := http.Get(p.url + "/ready")
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("after %s the server is not ready: %v", step, err)
		}
		resp.Body.Close()
		if err := c.Push(ctx, []lokiclient.Stream{good}); err != nil {
			t.Fatalf("after %s a good push fails: %v", step, err)
		}
	}

	cases := []struct {
		name        string
		body        []byte
		contentType string
		code        int
		msg         string
	}{
		{"malformed protobuf", snappy.Encode(nil, []byte{0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 1, 2}), "application/x-protobuf", 400, ""},
		{"not snappy", []byte("this is not snappy"), "application/x-protobuf", 400, "snappy"},
		{"snappy claiming a huge size", hugeSnappyHeader(), "application/x-protobuf", 413, ""},
		{"malformed JSON", []byte(`{"streams":[{"stream":{"a":"b"},"values":[["1","x"]`), "application/json", 400, ""},
		{"bad JSON timestamp", []byte(`{"streams":[{"stream":{"a":"b"},"values":[["yesterday","x"]]}]}`), "application/json", 400, "timestamp"},
	}
	for _, tc := range cases {
		err := c.PushBody(ctx, tc.body, tc.contentType, "")
		if !isStatus(err, tc.code) {
			t.Errorf("%s: got %v, want status %d", tc.name, err, tc.code)
		} else if tc.msg != "" {
			mustContain(t, tc.name, strings.ToLower(statusBody(err)), tc.msg)
		}
		stillServing(tc.name)
	}

	// Invalid UTF-8 in a label value, next to a good stream in the same push.
	bad := lokiclient.Stream{Labels: labels.Labels{{Name: "job", Value: "bad\xff"}}, Entries: good.Entries}
	mixedGood := lokiclient.Stream{Labels: labels.New("job", "mixed-good"), Entries: good.Entries}
	err := c.Push(ctx, []lokiclient.Stream{bad, mixedGood})
	if !isStatus(err, 400) {
		t.Errorf("invalid UTF-8 label: got %v, want 400", err)
	}
	mustContain(t, "invalid UTF-8 label", statusBody(err), "UTF-8")

	// A 10 MB line next to a good one in the same stream.
	long := lokiclient.Stream{Labels: labels.New("job", "long"), Entries: []chunk.Entry{
		{Timestamp: now.UnixNano(), Line: bytes.Repeat([]byte("x"), 10<<20)},
		{Timestamp: now.UnixNano() + 1, Line: []byte("short line kept")},
	}}
	err = c.Push(ctx, []lokiclient.Stream{long})
	if !isStatus(err, 400) {
		t.Errorf("10 MB line: got %v, want 400", err)
	}
	mustContain(t, "10 MB line", statusBody(err), "line")
	stillServing("10 MB line")

	// 1,000 labels.
	var many labels.Labels
	for i := 0; i < 1000; i++ {
		many = append(many, labels.Label{Name: fmt.Sprintf("l%04d", i), Value: "v"})
	}
	err = c.Push(ctx, []lokiclient.Stream{{Labels: many, Entries: good.Entries}})
	if !isStatus(err, 400) {
		t.Errorf("1,000 labels: got %v, want 400", err)
	}
	mustContain(t, "1,000 labels", statusBody(err), "label")
	stillServing("1,000 labels")

	// The good parts of the mixed pushes were kept.
	for _, sel := range []string{`{job="mixed-good"}`, `{job="long"}`} {
		got := queryAll(t, c, sel, now.Add(-time.Minute), now.Add(time.Minute))
		if len(got) != 1 {
			t.Errorf("%s: %d entries kept, want 1", sel, len(got))
		}
	}

	// A query with a syntax error: 400 with the position.
	_, err = c.QueryRange(ctx, `{job="good"} |= `, now.Add(-time.Minute), now.Add(time.Minute), 10, nil)
	if !isStatus(err, 400) {
		t.Errorf("syntax error: got %v, want 400", err)
	}
	mustContain(t, "syntax error", statusBody(err), "col ")
	for _, q := range []string{`{job="good"`, `{job=~"("}`, `{}`, `{job="good"} |~ "[z-a]"`, `sum(`} {
		_, err = c.QueryRange(ctx, q, now.Add(-time.Minute), now.Add(time.Minute), 10, nil)
		if !isStatus(err, 400) || statusBody(err) == "" {
			t.Errorf("query %q: got %v, want 400 with a message", q, err)
		}
	}
	// Bad parameters.
	for _, params := range []url.Values{{"limit": {"-1"}}, {"direction": {"sideways"}}, {"limit": {"999999999"}}} {
		_, err = c.QueryRange(ctx, `{job="good"}`, now.Add(-time.Minute), now.Add(time.Minute), 0, params)
		if !isStatus(err, 400) {
			t.Errorf("params %v: got %v, want 400", params, err)
		}
	}
	var v map[string]any
	err = c.Get(ctx, "/loki/api/v1/query_range", url.Values{"query": {`{job="good"}`}, "start": {"yesterday"}}, &v)
	if !isStatus(err, 400) {
		t.Errorf("bad start: got %v, want 400", err)
	}

	// Another tenant's data is invisible.
	other := p.client("other-tenant")
	got := queryAll(t, other, `{job="good"}`, now.Add(-time.Minute), now.Add(time.Minute))
	if len(got) != 0 {
		t.Errorf("another tenant sees %d entries", len(got))
	}
	lbls, err := other.Labels(ctx, now.Add(-time.Hour), now.Add(time.Minute))
	if err != nil || len(lbls) != 0 {
		t.Errorf("another tenant sees labels %v (%v)", lbls, err)
	}
	stillServing("all bad input")
}

// hugeSnappyHeader is a snappy block whose header claims a 2 GiB output.
func hugeSnappyHeader() []byte {
	b := binary.AppendUvarint(nil, 2<<30)
	return append(b, 0, 0, 0, 0)
}
