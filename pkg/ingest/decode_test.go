package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/grafana/loki/pkg/push"
	"github.com/klauspost/compress/s2"

	"github.com/logsift/logsift/pkg/labels"
)

// lokiUnmarshal decodes msg with Loki's own generated code, the reference
// our decoder must agree with. A panic counts as an error.
func lokiUnmarshal(msg []byte) (req push.PushRequest, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	err = req.Unmarshal(msg)
	return req, err
}

// checkProtoAgainstLoki decodes msg with both decoders and fails when they
// disagree on anything both accept.
func checkProtoAgainstLoki(t *testing.T, msg []byte) {
	t.Helper()
	mine, err := DecodeProtoMessage(msg, 64<<20)
	ref, refErr := lokiUnmarshal(msg)
	var tl *TooLargeError
	if err != nil && refErr == nil && !errors.As(err, &tl) && !strings.Contains(err.Error(), "unsupported wire type") {
		t.Fatalf("we refuse what Loki accepts: %v", err)
	}
	if err != nil || refErr != nil {
		return
	}
	if len(mine.Streams) != len(ref.Streams) {
		t.Fatalf("%d streams, Loki has %d", len(mine.Streams), len(ref.Streams))
	}
	for i, s := range mine.Streams {
		rs := ref.Streams[i]
		if s.Labels != rs.Labels || len(s.Entries) != len(rs.Entries) {
			t.Fatalf("stream %d: %q with %d entries, Loki %q with %d", i, s.Labels, len(s.Entries), rs.Labels, len(rs.Entries))
		}
		bad := map[int]bool{}
		for _, p := range s.Problems {
			bad[p.Index] = true
		}
		for j, e := range s.Entries {
			re := rs.Entries[j]
			if string(e.Line) != re.Line {
				t.Fatalf("stream %d entry %d: line %q, Loki %q", i, j, e.Line, re.Line)
			}
			if !bad[j] && e.Timestamp != re.Timestamp.UnixNano() {
				t.Fatalf("stream %d entry %d: ts %d, Loki %d", i, j, e.Timestamp, re.Timestamp.UnixNano())
			}
			if len(e.Metadata) != len(re.StructuredMetadata) {
				t.Fatalf("stream %d entry %d: %d metadata, Loki %d", i, j, len(e.Metadata), len(re.StructuredMetadata))
			}
			for k, l := range e.Metadata {
				if l.Name != re.StructuredMetadata[k].Name || l.Value != re.StructuredMetadata[k].Value {
					t.Fatalf("stream %d entry %d: metadata %v, Loki %v", i, j, e.Metadata, re.StructuredMetadata)
				}
			}
		}
	}
}

func sampleProtoRequest() push.PushRequest {
	return push.PushRequest{Streams: []push.Stream{
		{Labels: `{job="api", host="web-1"}`, Hash: 42, Entries: []push.Entry{
			{Timestamp: time.Unix(1556000000, 5), Line: "imported"},
			{Timestamp: time.Unix(1700000000, 999999999), Line: "meta", StructuredMetadata: push.LabelsAdapter{{Name: "b", Value: "2"}, {Name: "a", Value: ""}}, Parsed: push.LabelsAdapter{{Name: "p", Value: "q"}}},
			{Timestamp: time.Unix(1700000001, 0), Line: ""},
		}},
		{Labels: `{job="db"}`, Entries: []push.Entry{{Timestamp: time.Unix(1, 0), Line: "\xff binary \x00 ok"}}},
		{Labels: `{job="empty"}`},
	}}
}

func TestDecodeProtoMatchesLoki(t *testing.T) {
	req := sampleProtoRequest()
	msg, err := req.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	checkProtoAgainstLoki(t, msg)
	got, err := DecodeProto(s2.EncodeSnappy(nil, msg), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Streams) != 3 || len(got.Streams[0].Entries) != 3 || got.Streams[0].Entries[1].Timestamp != 1700000000999999999 {
		t.Fatalf("decoded %+v", got)
	}
	if md := got.Streams[0].Entries[1].Metadata; len(md) != 2 || md[0].Name != "b" || cap(md) != 2 {
		t.Fatalf("metadata %v cap %d (must be capped so appends cannot clobber)", md, cap(md))
	}
}

func TestDecodeProtoUnknownFieldsAndProblems(t *testing.T) {
	var b []byte
	field := func(num, wt int, payload ...byte) []byte {
		out := binaryUvarint(uint64(num<<3 | wt))
		if wt == wireBytes {
			out = append(out, binaryUvarint(uint64(len(payload)))...)
		}
		return append(out, payload...)
	}
	ts := append(field(fieldTimestampSeconds, wireVarint, binaryUvarint(1700000000)...), field(99, wireFixed32, 1, 2, 3, 4)...)
	entry := append(field(fieldEntryTimestamp, wireBytes, ts...), field(fieldEntryLine, wireBytes, 'h', 'i')...)
	entry = append(entry, field(77, wireFixed64, 1, 2, 3, 4, 5, 6, 7, 8)...)
	noTS := field(fieldEntryLine, wireBytes, 'x')
	stream := append(field(fieldStreamLabels, wireBytes, []byte(`{a="b"}`)...), field(fieldStreamEntries, wireBytes, entry...)...)
	stream = append(stream, field(fieldStreamEntries, wireBytes, noTS...)...)
	stream = append(stream, field(50, wireVarint, 0x96, 0x01)...)
	b = append(field(fieldPushStreams, wireBytes, stream...), field(2, wireBytes, []byte("loki")...)...)
	checkProtoAgainstLoki(t, b)
	req, err := DecodeProtoMessage(b, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	s := req.Streams[0]
	if len(s.Entries) != 2 || string(s.Entries[0].Line) != "hi" || s.Entries[0].Timestamp != 1700000000*1e9 {
		t.Fatalf("entries %+v", s.Entries)
	}
	if len(s.Problems) != 1 || s.Problems[0].Index != 1 || s.Problems[0].Reason != ReasonInvalidTimestamp || !strings.Contains(s.Problems[0].Message, "no timestamp") {
		t.Fatalf("problems %+v", s.Problems)
	}
	// Groups are refused, truncation too.
	for _, bad := range [][]byte{{0x0b}, {0x0a, 0x05, 0x01}, {0x08}, {0x00}, {0x0a}} {
		if _, err := DecodeProtoMessage(bad, 1<<20); err == nil {
			t.Errorf("accepted %x", bad)
		}
	}
}

func TestDecodeProtoTimestamps(t *testing.T) {
	cases := []struct {
		sec, nanos int64
		want       int64
		problem    string
	}{
		{1, 0, 1e9, ""},
		{0, 1, 1, ""},
		{9223372036, 854775807, 9223372036854775807, ""},
		{9223372036, 854775808, 0, "beyond 2262"},
		{9223372037, 0, 0, "beyond 2262"},
		{-1, 0, 0, "not after 1970"},
		{0, 0, 0, "not after 1970"},
		{5, -1, 0, "outside [0, 1e9)"},
		{5, 1e9, 0, "outside [0, 1e9)"},
	}
	for _, c := range cases {
		got, msg := unixNanos(c.sec, c.nanos)
		if got != c.want || !strings.Contains(msg, c.problem) || (c.problem == "") != (msg == "") {
			t.Errorf("unixNanos(%d, %d) = %d %q, want %d %q", c.sec, c.nanos, got, msg, c.want, c.problem)
		}
	}
}

func TestDecodeProtoBudget(t *testing.T) {
	// 100k empty entries are 200 KB on the wire but 5.6 MB decoded.
	var stream []byte
	for i := 0; i < 100000; i++ {
		stream = append(stream, byte(fieldStreamEntries<<3|wireBytes), 0)
	}
	msg := append([]byte{byte(fieldPushStreams<<3 | wireBytes)}, binaryUvarint(uint64(len(stream)))...)
	msg = append(msg, stream...)
	_, err := DecodeProtoMessage(msg, 1<<20)
	var tl *TooLargeError
	if !errors.As(err, &tl) {
		t.Fatalf("got %v, want *TooLargeError", err)
	}
	if _, err := DecodeProtoMessage(msg, 16<<20); err != nil {
		t.Fatalf("within budget: %v", err)
	}
}

func TestDecodeJSONStrings(t *testing.T) {
	cases := map[string]string{
		`"plain"`:                    "plain",
		`""`:                         "",
		`"a\"b\\c\/d\b\f\n\r\t"`:     "a\"b\\c/d\b\f\n\r\t",
		`"\u00e9\u20ac\uD83D\uDE00"`: "é€😀",
		`"lone \ud800 surrogate"`:    "lone \uFFFD surrogate",
		`"\ud800\u0041"`:             "\uFFFDA",
		"\"raw \xff bytes kept\"":    "raw \xff bytes kept",
	}
	for in, want := range cases {
		body := `{"streams":[{"stream":{"a":"b"},"values":[["1",` + in + `]]}]}`
		req, err := DecodeJSON([]byte(body), 1<<20)
		if err != nil {
			t.Errorf("%s: %v", in, err)
			continue
		}
		if got := string(req.Streams[0].Entries[0].Line); got != want {
			t.Errorf("%s: got %q, want %q", in, got, want)
		}
	}
	for _, bad := range []string{`"ctrl ` + "\x01" + `"`, `"bad \x escape"`, `"\u12"`, `"\u12G4"`, `"unterminated`, `"trailing \`} {
		body := `{"streams":[{"stream":{"a":"b"},"values":[["1",` + bad + `]]}]}`
		if _, err := DecodeJSON([]byte(body), 1<<20); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestDecodeJSONShapes(t *testing.T) {
	ok := []string{
		`{}`,
		`{"streams":null}`,
		`{"streams":[]}`,
		` {"streams" : [ { "stream" : null , "values" : null } ] } `,
		`{"streams":[{"stream":{"a":"b"},"values":[["1","x",null]]}]}`,
		`{"other":{"deep":[1,-2.5e+10,0.1,true,false,null,"s",{}]},"streams":[]}`,
	}
	for _, in := range ok {
		if _, err := DecodeJSON([]byte(in), 1<<20); err != nil {
			t.Errorf("%s: %v", in, err)
		}
	}
	bad := []string{``, `[]`, `{"streams":{}}`, `{"streams":[1]}`, `{"streams":[],"streams":[]}`,
		`{"streams":[{"values":[],"values":[]}]}`, `{"streams":[{"stream":{},"stream":{}}]}`,
		`{"x":01}`, `{"x":-}`, `{"x":1.}`, `{"x":1e}`, `{"x":nul}`, `{"x":1,}`, `{,}`, `{"a" 1}`}
	for _, in := range bad {
		if _, err := DecodeJSON([]byte(in), 1<<20); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
}

func TestDecodeJSONBudget(t *testing.T) {
	body := `{"streams":[{"stream":{"a":"b"},"values":[` + strings.Repeat(`["1",""],`, 50000) + `["1",""]]}]}`
	_, err := DecodeJSON([]byte(body), 1<<20)
	var tl *TooLargeError
	if !errors.As(err, &tl) {
		t.Fatalf("got %v, want *TooLargeError", err)
	}
}

func TestParseJSONLabels(t *testing.T) {
	raw := []byte(`{"job":"a\"b","host":"h"}`)
	ls, err := ParseJSONLabels(raw, 10)
	if err != nil {
		t.Fatal(err)
	}
	if !ls.Equal(labels.New("job", `a"b`, "host", "h")) {
		t.Fatalf("got %v", ls)
	}
	if string(raw) != `{"job":"a\"b","host":"h"}` {
		t.Fatalf("input modified: %s", raw)
	}
	_, err = ParseJSONLabels([]byte(`{"a":"1","b":"2","c":"3"}`), 2)
	var tm *tooManyLabelsError
	if !errors.As(err, &tm) || tm.count != 3 {
		t.Fatalf("got %v, want too many labels", err)
	}
}

func TestCountTextLabels(t *testing.T) {
	cases := map[string]int{
		`{}`:                        0,
		`{a="b"}`:                   1,
		`{a="b", c="d=e"}`:          2,
		`{a="x\"=y", b="\\", c=""}`: 3,
	}
	for in, want := range cases {
		if got := countTextLabels(in); got != want {
			t.Errorf("countTextLabels(%s) = %d, want %d", in, got, want)
		}
	}
}

func TestLabelCache(t *testing.T) {
	c := newLabelCache(64 << 10)
	buf := []byte(`{a="b"}`)
	ls, err := c.resolve(bytesToString(buf), false, 10)
	if err != nil || !ls.Equal(labels.New("a", "b")) {
		t.Fatalf("%v %v", ls, err)
	}
	// The cached set and key must not share the request's memory.
	copy(buf, `{x="y"}`)
	ls2, err := c.resolve(`{a="b"}`, false, 10)
	if err != nil || !ls2.Equal(labels.New("a", "b")) || &ls2[0] != &ls[0] {
		t.Fatalf("cache miss or corrupted: %v %v", ls2, err)
	}
	// Text and JSON keys do not collide.
	if _, err := c.resolve(`{a="b"}`, true, 10); err == nil {
		t.Fatal("JSON parse of Loki text succeeded")
	}
	// Memory stays bounded however many distinct streams arrive.
	for i := 0; i < 10000; i++ {
		if _, err := c.resolve(fmt.Sprintf(`{n="%d"}`, i), false, 10); err != nil {
			t.Fatal(err)
		}
	}
	if c.curBytes > 32<<10 || len(c.cur)+len(c.prev) > 2*(32<<10)/64 {
		t.Fatalf("cache holds %d bytes in %d+%d entries", c.curBytes, len(c.cur), len(c.prev))
	}
	// A hit in the old generation moves to the current one.
	recent := fmt.Sprintf(`{n="%d"}`, 9999)
	if _, ok := c.cur[cacheKey{text: recent}]; !ok {
		t.Fatal("most recent entry is not in the current generation")
	}
}

// fuzzSeedsProto are bodies (snappy-compressed) the fuzzers start from.
func fuzzSeedsProto(f *testing.F) [][]byte {
	req := sampleProtoRequest()
	msg, err := req.Marshal()
	if err != nil {
		f.Fatal(err)
	}
	return [][]byte{msg, {}, {0x0a, 0x00}, {0x0a, 0x02, 0x12, 0x00}}
}

func FuzzDecodeProto(f *testing.F) {
	for _, msg := range fuzzSeedsProto(f) {
		f.Add(s2.EncodeSnappy(nil, msg))
	}
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x0f, 0x00})
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := DecodeProto(body, 1<<20)
		if err != nil {
			if req != nil {
				t.Fatal("request and error")
			}
			return
		}
		msg, err := DecodeSnappy(body, 1<<20)
		if err != nil {
			t.Fatalf("DecodeProto succeeded but DecodeSnappy fails: %v", err)
		}
		checkProtoAgainstLoki(t, msg)
	})
}

// FuzzDecodeProtoMessage fuzzes the protobuf layer directly, where random
// mutations are far more likely to reach deep code than through snappy.
func FuzzDecodeProtoMessage(f *testing.F) {
	for _, msg := range fuzzSeedsProto(f) {
		f.Add(msg)
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		checkProtoAgainstLoki(t, msg)
	})
}

func FuzzDecodeJSON(f *testing.F) {
	f.Add([]byte(jsonPush))
	f.Add([]byte(`{"streams":[{"stream":{"a":"b"},"values":[["1","x",{"k":"v"}],["2","\u00e9\ud800"]]}]}`))
	f.Add([]byte(`{"streams":[{"stream":null,"values":null}],"x":[1,2.5e-3,true,false,null]}`))
	f.Add([]byte(`{"streams":[{"stream":{"a":"b"},"values":[[1,2,3,4]]}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		valid := json.Valid(body)
		orig := append([]byte(nil), body...)
		req, err := DecodeJSON(body, 1<<20)
		if err != nil {
			return
		}
		if !valid {
			t.Fatalf("accepted what encoding/json calls invalid: %q", orig)
		}
		// Lines and labels must agree with encoding/json's reading.
		var doc struct {
			Streams []struct {
				Stream json.RawMessage   `json:"stream"`
				Values []json.RawMessage `json:"values"`
			} `json:"streams"`
		}
		if json.Unmarshal(orig, &doc) != nil {
			return // a shape encoding/json's struct mapping refuses
		}
		if len(doc.Streams) != len(req.Streams) {
			t.Fatalf("%d streams, encoding/json %d", len(req.Streams), len(doc.Streams))
		}
		for i, s := range req.Streams {
			if len(s.Entries) != len(doc.Streams[i].Values) {
				t.Fatalf("stream %d: %d entries, encoding/json %d", i, len(s.Entries), len(doc.Streams[i].Values))
			}
			for j, raw := range doc.Streams[i].Values {
				var tuple []any
				if json.Unmarshal(raw, &tuple) != nil || len(tuple) < 2 {
					continue
				}
				line, ok := tuple[1].(string)
				if ok && utf8.Valid(s.Entries[j].Line) && line != string(s.Entries[j].Line) {
					t.Fatalf("stream %d entry %d: line %q, encoding/json %q", i, j, s.Entries[j].Line, line)
				}
			}
			if s.Labels != "" {
				ls, err := ParseJSONLabels([]byte(s.Labels), 0)
				var m map[string]any
				if json.Unmarshal([]byte(s.Labels), &m) != nil {
					t.Fatalf("labels %q are not a JSON object", s.Labels)
				}
				if err == nil {
					for _, l := range ls {
						if !utf8.ValidString(l.Name) {
							continue // encoding/json replaces bad bytes; validation refuses the name
						}
						if v, ok := m[l.Name].(string); !ok || (utf8.ValidString(l.Value) && v != l.Value) {
							t.Fatalf("label %s=%q, encoding/json %q", l.Name, l.Value, m[l.Name])
						}
					}
				}
			}
		}
	})
}

func FuzzParseJSONLabels(f *testing.F) {
	f.Add([]byte(`{"job":"api","host":"web-1"}`), 32)
	f.Add([]byte(`{"a":"\u00e9\"","a":"dup"}`), 32)
	f.Add([]byte(`{"a":"1","b":"2","c":"3"}`), 2)
	f.Add([]byte(`{"a":1}`), 0)
	f.Fuzz(func(t *testing.T, raw []byte, maxLabels int) {
		orig := string(raw)
		ls, err := ParseJSONLabels(raw, maxLabels)
		if string(raw) != orig {
			t.Fatal("input modified")
		}
		if err != nil {
			return
		}
		if maxLabels > 0 && len(ls) > maxLabels {
			t.Fatalf("%d labels, limit %d", len(ls), maxLabels)
		}
		var m map[string]string
		if json.Unmarshal(raw, &m) != nil {
			t.Fatalf("encoding/json refuses %q", raw)
		}
		for i, l := range ls {
			if i > 0 && ls[i-1].Name >= l.Name {
				t.Fatalf("not sorted and unique: %v", ls)
			}
			if !utf8.ValidString(l.Name) {
				continue // encoding/json replaces bad bytes; validation refuses the name
			}
			if v, ok := m[l.Name]; !ok || (utf8.ValidString(l.Value) && v != l.Value) {
				t.Fatalf("%s=%q, encoding/json %q", l.Name, l.Value, v)
			}
		}
	})
}

func TestSkipPlain(t *testing.T) {
	// Every special byte at every offset of strings of every length up to
	// 24, among plain bytes from both halves of the byte range.
	for n := 0; n <= 24; n++ {
		for _, filler := range []byte{'a', 0x7f, 0x80, 0xff, 0x21, 0x5d} {
			plain := bytes.Repeat([]byte{filler}, n)
			if got := skipPlain(plain, 0); got != n {
				t.Fatalf("len %d filler %#x: %d", n, filler, got)
			}
			for pos := 0; pos < n; pos++ {
				for c := 0; c < 256; c++ {
					if !needsWork[c] {
						continue
					}
					b := bytes.Clone(plain)
					b[pos] = byte(c)
					for start := 0; start <= pos; start++ {
						if got := skipPlain(b, start); got != pos {
							t.Fatalf("%q from %d: %d, want %d", b, start, got, pos)
						}
					}
				}
			}
		}
	}
}
