package client

import (
	"fmt"
	"math"
	"strings"
	"testing"
)

const streamsBody = `{"status":"success","data":{"resultType":"streams","result":[
 {"stream":{"job":"app","file":"a.log"},"values":[
   ["1700000000000000002","level=warn msg=\"three\"",{"structuredMetadata":{"detected_level":"warn","line":"3"},"parsed":{"msg":"three"}}],
   ["1700000000000000001","two"]]}],
 "stats":{"summary":{"execTime":0.25,"totalBytesProcessed":76,"totalLinesProcessed":4,"totalPostFilterLines":2,"totalEntriesReturned":2},
  "querier":{"store":{"totalChunksRef":3,"totalChunksDownloaded":2,"chunk":{"compressedBytes":40,"decompressedBytes":70}}},
  "ingester":{"store":{"chunk":{"headChunkBytes":6}}},"logsift":{"chunksPruned":1,"blocksPruned":4,"streams":1}},
 "encodingFlags":["categorize-labels"]}}`

func TestDecodeStreams(t *testing.T) {
	res, err := DecodeQueryResponse([]byte(streamsBody))
	if err != nil {
		t.Fatal(err)
	}
	if res.Type != ResultStreams || len(res.Streams) != 1 {
		t.Fatalf("got %+v", res)
	}
	s := res.Streams[0]
	if s.Labels.String() != `{file="a.log", job="app"}` {
		t.Errorf("labels %s", s.Labels)
	}
	if len(s.Entries) != 2 {
		t.Fatalf("entries %d", len(s.Entries))
	}
	e := s.Entries[0]
	if e.Timestamp != 1700000000000000002 || e.Line != `level=warn msg="three"` {
		t.Errorf("entry %+v", e)
	}
	if e.Metadata.Get("line") != "3" || e.Metadata.Get("detected_level") != "warn" || e.Parsed.Get("msg") != "three" {
		t.Errorf("categorized labels %+v %+v", e.Metadata, e.Parsed)
	}
	if s.Entries[1].Metadata != nil {
		t.Errorf("two-element value got metadata %v", s.Entries[1].Metadata)
	}
	want := Stats{ExecTime: 0.25, BytesProcessed: 76, LinesProcessed: 4, PostFilterLines: 2, EntriesReturned: 2,
		ChunksRef: 3, ChunksDownloaded: 2, CompressedBytes: 40, DecompressedBytes: 70, HeadChunkBytes: 6,
		ChunksPruned: 1, BlocksPruned: 4, Streams: 1}
	if res.Stats != want {
		t.Errorf("stats %+v, want %+v", res.Stats, want)
	}
}

func TestDecodeMetric(t *testing.T) {
	body := `{"status":"success","data":{"resultType":"matrix","result":[
	  {"metric":{"level":"error"},"values":[[1700000000,"1"],[1700000060.5,"NaN"],[1700000120.123,"+Inf"]]}]}}`
	res, err := DecodeQueryResponse([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	ps := res.Series[0].Points
	if len(ps) != 3 || ps[0] != (Point{T: 1700000000000, V: 1}) || ps[1].T != 1700000060500 || !math.IsNaN(ps[1].V) ||
		ps[2].T != 1700000120123 || !math.IsInf(ps[2].V, 1) {
		t.Errorf("points %+v", ps)
	}

	body = `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1700000000.001,"42.5"]}]}}`
	res, err = DecodeQueryResponse([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Series) != 1 || res.Series[0].Points[0] != (Point{T: 1700000000001, V: 42.5}) {
		t.Errorf("vector %+v", res.Series)
	}

	body = `{"status":"success","data":{"resultType":"scalar","result":[1700000000,"7"]}}`
	res, err = DecodeQueryResponse([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if res.Scalar == nil || *res.Scalar != (Point{T: 1700000000000, V: 7}) {
		t.Errorf("scalar %+v", res.Scalar)
	}
}

func TestDecodersAgree(t *testing.T) {
	for _, body := range []string{streamsBody,
		`{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"level":"error"},"values":[[1700000000,"1"],[1700000060.5,"NaN"]]}]}}`,
		`{"data":{"resultType":"streams","result":[{"stream":{"b":"1","a":"\u00e9\ud83d\ude00","a":"x"},"values":[["1","\ud800 \u00ff"]]}]}}`,
		"{\"data\":{\"resultType\":\"streams\",\"result\":[{\"stream\":{\"a\":\"\xff\xfe\"},\"values\":[[\"1\",\"bad \xc3 utf8\"]]}]}}",
		// Statistics as encoding/json reads them into structs: keys of
		// any case, null changing nothing, repeated blocks merged.
		`{"data":{"resultType":"streams","result":[],"stats":{"SUMMARY":{"exectime":1e-3,"totalBytesProcessed":-0,"x":[{}]},"querier":null,
		 "ingester":{"store":{"chunk":{"headChunkBytes":null}}},"logsift":{"streams":9223372036854775807}}}}`,
		`{"data":{"stats":{"summary":{"execTime":2}},"resultType":"matrix","result":[],"stats":{"logsift":{"chunksPruned":3}}}}`,
	} {
		fast, err := DecodeQueryResponse([]byte(body))
		if err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		ref, err := decodeQueryStd([]byte(body))
		if err != nil {
			t.Fatal(err)
		}
		if got, want := describe(fast), describe(ref); got != want {
			t.Errorf("decoders disagree:\nfast %s\nstd  %s", got, want)
		}
	}
}

// TestStringsAtEveryOffset puts each kind of byte a string scan must
// notice at every position of the eight-byte steps it takes: both
// decoders must accept the same lines and read them alike.
func TestStringsAtEveryOffset(t *testing.T) {
	for _, mark := range []string{`\"`, `\\`, `\n`, `\u00e9`, `\ud83d\ude00`, `\ud800`, "\xc3\xa9", "\xff", "\x01", "\x7f", "\u2028", `"`} {
		for at := 0; at < 20; at++ {
			for _, tail := range []string{"", "abcdefghijklmnopq"} {
				line := strings.Repeat("x", at) + mark + tail
				body := `{"data":{"resultType":"streams","result":[{"stream":{"k":"` + line + `"},"values":[["17","` + line + `"]]}]}}`
				fast, ferr := DecodeQueryResponse([]byte(body))
				ref, rerr := decodeQueryStd([]byte(body))
				if (ferr == nil) != (rerr == nil) {
					t.Fatalf("%q: fast %v, encoding/json %v", body, ferr, rerr)
				}
				if ferr == nil && describe(fast) != describe(ref) {
					t.Fatalf("%q:\nfast %s\nstd  %s", body, describe(fast), describe(ref))
				}
			}
		}
	}
}

func TestTimestamps(t *testing.T) {
	for ts, want := range map[string]int64{"0": 0, "17": 17, "1795677131894045241": 1795677131894045241,
		"9223372036854775807": 9223372036854775807, "0017": 17, "+5": 5, "-5": -5} {
		res, err := DecodeQueryResponse([]byte(`{"data":{"resultType":"streams","result":[{"stream":{},"values":[["` + ts + `","l"]]}]}}`))
		if err != nil || res.Streams[0].Entries[0].Timestamp != want {
			t.Errorf("%s: %+v %v, want %d", ts, res, err, want)
		}
	}
	for _, ts := range []string{"", "9223372036854775808", "99999999999999999999", "1e9", "12a", " 1"} {
		if _, err := DecodeQueryResponse([]byte(`{"data":{"resultType":"streams","result":[{"stream":{},"values":[["` + ts + `","l"]]}]}}`)); err == nil {
			t.Errorf("%q: no error", ts)
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	for _, body := range []string{
		``, `{`, `[]`,
		`{"status":"error","error":"boom"}`,
		`{"data":{"resultType":"bogus","result":[]}}`,
		`{"data":{"resultType":"streams","result":[{"stream":{},"values":[["x","line"]]}]}}`,
		`{"data":{"resultType":"streams","result":[{"stream":{},"values":[["1"]]}]}}`,
		`{"data":{"resultType":"streams","result":[{"stream":{},"values":[["1","a",{},4]]}]}}`,
		`{"data":{"resultType":"matrix","result":[{"metric":{},"values":[[1,"x"]]}]}}`,
		`{"data":{"resultType":"matrix","result":[{"metric":{},"values":[["1","2"]]}]}}`,
		`{"data":{"resultType":"vector","result":[{"metric":{}}]}}`,
		`{"data":{"resultType":"streams","result":[],"stats":{"summary":{"totalBytesProcessed":1.5}}}}`,
		`{"data":{"resultType":"streams","result":[],"stats":{"summary":{"totalBytesProcessed":1e3}}}}`,
		`{"data":{"resultType":"streams","result":[],"stats":{"summary":{"totalBytesProcessed":9223372036854775808}}}}`,
		`{"data":{"resultType":"streams","result":[],"stats":{"summary":{"execTime":1e400}}}}`,
		`{"data":{"resultType":"streams","result":[],"stats":{"summary":{"execTime":"1"}}}}`,
		`{"data":{"resultType":"streams","result":[],"stats":{"summary":[]}}}`,
		`{"data":{"resultType":"streams","result":[],"stats":5}}`,
	} {
		if _, err := DecodeQueryResponse([]byte(body)); err == nil {
			t.Errorf("%q: no error", body)
		}
	}
}

func TestParseSecondsAsMillis(t *testing.T) {
	for in, want := range map[string]int64{
		"1700000000": 1700000000000, "1700000000.1": 1700000000100, "1700000000.123456": 1700000000123,
		"-0.5": -500, "0": 0, "1e3": 1000000,
	} {
		got, err := parseSecondsAsMillis(in)
		if err != nil || got != want {
			t.Errorf("%s: got %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "x", "1.x", "NaN", "1e300", "99999999999"} {
		if _, err := parseSecondsAsMillis(in); err == nil {
			t.Errorf("%q: no error", in)
		}
	}
}

func TestDecodeTailMessage(t *testing.T) {
	m, err := DecodeTailMessage([]byte(`{"streams":[{"stream":{"job":"a","detected_level":"info"},"values":[["5","x"],["6","y"]]}],
		"dropped_entries":[{"labels":{"__dropped_entries__":"3"},"timestamp":"7"},{"labels":{"job":"a"},"timestamp":"8"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Streams) != 1 || len(m.Streams[0].Entries) != 2 || m.Streams[0].Entries[1].Line != "y" {
		t.Errorf("streams %+v", m.Streams)
	}
	if m.Dropped != 4 {
		t.Errorf("dropped %d, want 4 (a count of 3 and one Loki-style element)", m.Dropped)
	}
	if _, err := DecodeTailMessage([]byte(`{"streams":[{"values":[[1,2]]}]}`)); err == nil {
		t.Error("bad value decoded")
	}
}

func TestNewValidatesURL(t *testing.T) {
	for _, u := range []string{"", "  ", "localhost:3100", "ftp://x", "http://", "://"} {
		if _, err := New(Config{URL: u}); err == nil {
			t.Errorf("%q: no error", u)
		}
	}
	c, err := New(Config{URL: " https://logs.example.com/prefix/ "})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.endpoint("/loki/api/v1/labels", nil); got != "https://logs.example.com/prefix/loki/api/v1/labels" {
		t.Errorf("endpoint %s", got)
	}
	if !strings.HasPrefix(c.URL(), "https://logs.example.com") {
		t.Errorf("URL %s", c.URL())
	}
}

func FuzzDecodeQueryResponse(f *testing.F) {
	f.Add([]byte(streamsBody))
	f.Add([]byte(`{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"a":"b"},"values":[[1700000000.5,"1"]]}]}}`))
	f.Add([]byte(`{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"NaN"]}]}}`))
	f.Add([]byte(`{"status":"success","data":{"resultType":"scalar","result":[1,"2"]}}`))
	f.Add([]byte(`{"data":{"resultType":"streams","result":[{"stream":{"b":"1","a":"\u00e9\ud83d\ude00","a":"x"},"values":[["1","\ud800 \xff"]]}]}}`))
	// Long strings, so that escapes and non-ASCII bytes fall inside and
	// across the eight-byte steps of the string scan.
	f.Add([]byte(`{"data":{"resultType":"streams","result":[{"stream":{"host":"api-1.example.com"},"values":[["1795677131894045241","ts=2026-11-26 level=info msg=\"request served\" path=/api/v1/ördérs \u00e9\t"]]}]}}`))
	f.Add([]byte("{\"data\":{\"resultType\":\"streams\",\"result\":[{\"stream\":{},\"values\":[[\"9223372036854775807\",\"0123456789abcdef\xff\xfe0123456789\\\\x\"]]}]}}"))
	f.Fuzz(func(t *testing.T, b []byte) {
		res, err := DecodeQueryResponse(b)
		if err != nil {
			return
		}
		for _, s := range res.Streams {
			for i := 1; i < len(s.Labels); i++ {
				if s.Labels[i-1].Name >= s.Labels[i].Name {
					t.Fatalf("labels not sorted: %v", s.Labels)
				}
			}
		}
		// What the fast decoder accepts, encoding/json reads the same.
		ref, err := decodeQueryStd(b)
		if err != nil {
			t.Fatalf("fast decoder accepted what encoding/json refuses (%v): %q", err, b)
		}
		if got, want := describe(res), describe(ref); got != want {
			t.Fatalf("decoders disagree on %q:\nfast %s\nstd  %s", b, got, want)
		}
	})
}

func FuzzDecodeTailMessage(f *testing.F) {
	f.Add([]byte(`{"streams":[{"stream":{"job":"a"},"values":[["5","x"]]}],"dropped_entries":[{"labels":{"__dropped_entries__":"3"}}]}`))
	f.Add([]byte(`{"streams":[]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeTailMessage(b)
		if err != nil {
			return
		}
		if m.Dropped < 0 {
			t.Fatalf("negative dropped count %d", m.Dropped)
		}
	})
}

func FuzzParseSecondsAsMillis(f *testing.F) {
	for _, s := range []string{"1700000000.123", "-1.5", "1e3", "0.0001", "12."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ms, err := parseSecondsAsMillis(s)
		if err != nil {
			return
		}
		if ms > 9e12 || ms < -9e12 {
			t.Fatalf("%q gave %d ms, beyond the accepted range", s, ms)
		}
	})
}

// describe prints a result with its scalar, for comparisons.
func describe(r *Result) string {
	sc := "nil"
	if r.Scalar != nil {
		sc = fmt.Sprintf("%+v", *r.Scalar)
	}
	c := *r
	c.Scalar = nil
	return fmt.Sprintf("%+v scalar=%s", c, sc)
}
