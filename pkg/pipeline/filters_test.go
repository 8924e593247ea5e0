package pipeline

import (
	"os"
	"testing"
	"time"

	"github.com/logsift/logsift/pkg/labels"
)

func TestMain(m *testing.M) {
	// Template date functions use the server's zone, as Loki does; pin it
	// so that the expected outputs hold everywhere.
	time.Local = time.UTC
	os.Exit(m.Run())
}

func TestLabelFilters(t *testing.T) {
	runGolden(t, []goldenCase{
		{query: `{a="b"} | logfmt | level="error"`, line: `level=error`, want: map[string]string{"level": "error"}},
		{query: `{a="b"} | logfmt | level="error"`, line: `level=info`, drop: true},
		{query: `{a="b"} | logfmt | level=~"err.*|warn"`, line: `level=warn`, want: map[string]string{"level": "warn"}},
		{query: `{a="b"} | logfmt | level!~"err.*"`, line: `level=errors`, drop: true},
		{name: "missing is empty", query: `{a="b"} | missing=""`, stream: job, line: `x`, want: job},
		{name: "missing is not non-empty", query: `{a="b"} | missing!=""`, line: `x`, drop: true},
		{name: "stream label", query: `{a="b"} | job="varlogs"`, stream: job, line: `x`, want: job},
		{query: `{a="b"} | logfmt | status >= 500`, line: `status=503`, want: map[string]string{"status": "503"}},
		{query: `{a="b"} | logfmt | status >= 500`, line: `status=200`, drop: true},
		{name: "number missing drops", query: `{a="b"} | logfmt | status != 0`, line: `msg=hello`, drop: true},
		{name: "number bad value", query: `{a="b"} | logfmt | status > 5`, line: `status=abc`,
			want: map[string]string{"status": "abc", ErrorLabel: ErrLabelFilter, ErrorDetailsLabel: `strconv.ParseFloat: parsing "abc": invalid syntax`}},
		{name: "number bad value dropped by error filter", query: `{a="b"} | logfmt | status > 5 | __error__=""`, line: `status=abc`, drop: true},
		{name: "conversion filters pass errors through", query: `{a="b"} | json | status > 5`, line: `oops`,
			want: map[string]string{ErrorLabel: ErrJSON, ErrorDetailsLabel: `unexpected character 'o', expected a json object at offset 0`}},
		{query: `{a="b"} | logfmt | n == 1.5`, line: `n=1.50`, want: map[string]string{"n": "1.50"}},
		{query: `{a="b"} | logfmt | n = -2`, line: `n=-2`, want: map[string]string{"n": "-2"}},
		{query: `{a="b"} | logfmt | latency > 250ms`, line: `latency=1.5s`, want: map[string]string{"latency": "1.5s"}},
		{query: `{a="b"} | logfmt | latency > 250ms`, line: `latency=100ms`, drop: true},
		{query: `{a="b"} | logfmt | latency <= 1h30m`, line: `latency=90m`, want: map[string]string{"latency": "90m"}},
		{name: "duration needs unit", query: `{a="b"} | logfmt | latency > 1s`, line: `latency=5`,
			want: map[string]string{"latency": "5", ErrorLabel: ErrLabelFilter, ErrorDetailsLabel: `time: missing unit in duration "5"`}},
		{query: `{a="b"} | logfmt | size > 20KB`, line: `size=1MiB`, want: map[string]string{"size": "1MiB"}},
		{query: `{a="b"} | logfmt | size > 20KB`, line: `size=3k`, drop: true},
		{query: `{a="b"} | logfmt | size == 20KB`, line: `size="20 kb"`, want: map[string]string{"size": "20 kb"}},
		{query: `{a="b"} | logfmt | size == 1024B`, line: `size=1024`, want: map[string]string{"size": "1024"}},
		{name: "bytes bad value", query: `{a="b"} | logfmt | size > 1KB`, line: `size=lots`,
			want: map[string]string{"size": "lots", ErrorLabel: ErrLabelFilter, ErrorDetailsLabel: `invalid byte size "lots": strconv.ParseFloat: parsing "": invalid syntax`}},
		{query: `{a="b"} | logfmt | addr = ip("10.0.0.0/8")`, line: `addr=10.1.2.3`, want: map[string]string{"addr": "10.1.2.3"}},
		{query: `{a="b"} | logfmt | addr = ip("10.0.0.0/8")`, line: `addr=11.1.2.3`, drop: true},
		{query: `{a="b"} | logfmt | addr != ip("10.0.0.0/8")`, line: `addr=11.1.2.3`, want: map[string]string{"addr": "11.1.2.3"}},
		{query: `{a="b"} | logfmt | addr = ip("192.168.0.1-192.168.0.9")`, line: `addr=192.168.0.5:80`, want: map[string]string{"addr": "192.168.0.5:80"}},
		{name: "ip missing drops", query: `{a="b"} | logfmt | addr != ip("10.0.0.0/8")`, line: `x=1`, drop: true},
		{name: "or", query: `{a="b"} | logfmt | level="error" or status >= 500`, line: `level=info status=502`, want: map[string]string{"level": "info", "status": "502"}},
		{name: "and comma", query: `{a="b"} | logfmt | level="error", status >= 500`, line: `level=error status=404`, drop: true},
		{name: "parens", query: `{a="b"} | logfmt | level="debug" or (level="error" and status >= 500)`, line: `level=error status=500`,
			want: map[string]string{"level": "error", "status": "500"}},
	})
}

// TestLabelFilterPrecedence checks the equivalences Loki documents: and/or
// group left to right; comma, space and pipe mean and.
func TestLabelFilterPrecedence(t *testing.T) {
	groups := [][]string{
		{
			`{a="b"} | logfmt | duration >= 20ms or size == 20KB and method!~"2.."`,
			`{a="b"} | logfmt | duration >= 20ms or size == 20KB | method!~"2.."`,
			`{a="b"} | logfmt | duration >= 20ms or size == 20KB , method!~"2.."`,
			`{a="b"} | logfmt | duration >= 20ms or size == 20KB  method!~"2.."`,
		},
		{
			`{a="b"} | logfmt | duration >= 20ms or method="GET" and size <= 20KB`,
			`{a="b"} | logfmt | ((duration >= 20ms or method="GET") and size <= 20KB)`,
		},
	}
	var lines []string
	for _, d := range []string{"10ms", "30ms"} {
		for _, s := range []string{"20KB", "1MB"} {
			for _, m := range []string{"GET", "200"} {
				lines = append(lines, "duration="+d+" size="+s+" method="+m)
			}
		}
	}
	for _, g := range groups {
		var first []bool
		for i, q := range g {
			p := compile(t, q)
			var got []bool
			for _, l := range lines {
				_, _, keep := p.ForStream(nil).Process(0, []byte(l), nil)
				got = append(got, keep)
			}
			if i == 0 {
				first = got
				continue
			}
			for j := range got {
				if got[j] != first[j] {
					t.Errorf("%s and %s disagree on %q", g[0], q, lines[j])
				}
			}
		}
	}
	// The documented alternative with the and first really differs.
	p := compile(t, `{a="b"} | logfmt | duration >= 20ms or (method="GET" and size <= 20KB)`)
	if _, _, keep := p.ForStream(nil).Process(0, []byte("duration=30ms size=1MB method=200"), nil); !keep {
		t.Error("or with parenthesised and should keep a slow request")
	}
	p = compile(t, `{a="b"} | logfmt | duration >= 20ms or method="GET" and size <= 20KB`)
	if _, _, keep := p.ForStream(nil).Process(0, []byte("duration=30ms size=1MB method=200"), nil); keep {
		t.Error("left-to-right grouping should drop a slow large request")
	}
}

func TestDropKeep(t *testing.T) {
	line1 := `{"app": "some-api-service", "level": "info", "method": "GET", "path": "/", "host": "grafana.net", "status": "200"}`
	line2 := `{"app": "other-service", "level": "info", "method": "GET", "path": "/", "host": "grafana.net", "status": "200"}`
	runGolden(t, []goldenCase{
		{name: "doc drop", query: `{a="b"} | json | drop level, method="GET"`, stream: job,
			line: `{"level": "info", "method": "GET", "path": "/", "host": "grafana.net", "status": "200"}`,
			want: with(job, "host", "grafana.net", "path", "/", "status", "200")},
		{name: "drop matcher not matching", query: `{a="b"} | json | drop method="POST"`, line: `{"method": "GET"}`,
			want: map[string]string{"method": "GET"}},
		{name: "doc drop regex 1", query: `{a="b"} | json | drop level, path, app=~"some-api.*"`, stream: job, line: line1,
			want: with(job, "host", "grafana.net", "method", "GET", "status", "200")},
		{name: "doc drop regex 2", query: `{a="b"} | json | drop level, path, app=~"some-api.*"`, stream: job, line: line2,
			want: with(job, "app", "other-service", "host", "grafana.net", "method", "GET", "status", "200")},
		{name: "drop stream label", query: `{a="b"} | drop job`, stream: job, line: `x`, want: map[string]string{}},
		{name: "drop error by value", query: `{a="b"} | json | drop __error__="JSONParserErr"`, line: `x`,
			want: map[string]string{ErrorDetailsLabel: `unexpected character 'x', expected a json object at offset 0`}},
		{name: "doc keep 1", query: `{a="b"} | json | keep level, method="GET"`, stream: job,
			line: `{"level": "info", "method": "GET", "path": "/", "host": "grafana.net", "status": "200"}`,
			want: map[string]string{"level": "info", "method": "GET"}},
		{name: "doc keep 2", query: `{a="b"} | json | keep level, method="GET"`, stream: job,
			line: `{"level": "info", "method": "POST", "path": "/", "host": "grafana.net", "status": "200"}`,
			want: map[string]string{"level": "info"}},
		{name: "doc keep regex 1", query: `{a="b"} | json | keep level, tenant, app=~"some-api.*"`, stream: job, line: line1,
			want: map[string]string{"app": "some-api-service", "level": "info"}},
		{name: "doc keep regex 2", query: `{a="b"} | json | keep level, tenant, app=~"some-api.*"`, stream: job, line: line2,
			want: map[string]string{"level": "info"}},
		{name: "keep never drops errors", query: `{a="b"} | json | keep level`, stream: job, line: `x`,
			want: map[string]string{ErrorLabel: ErrJSON, ErrorDetailsLabel: `unexpected character 'x', expected a json object at offset 0`}},
	})
}

func TestDecolorize(t *testing.T) {
	runGolden(t, []goldenCase{
		{query: `{a="b"} | decolorize`, line: "\x1b[31mred\x1b[0m text \x1b[1;32mgreen\x1b[m", out: "red text green", want: map[string]string{}},
		{query: `{a="b"} | decolorize`, line: "\x1b]0;title\x07after", out: "after", want: map[string]string{}},
		{query: `{a="b"} | decolorize`, line: "\u009b31mx", out: "x", want: map[string]string{}},
		{query: `{a="b"} | decolorize`, line: "plain", want: map[string]string{}},
		{query: `{a="b"} | decolorize | logfmt`, line: "\x1b[33mlevel=warn\x1b[0m", out: "level=warn", want: map[string]string{"level": "warn"}},
	})
}

func TestStructuredMetadata(t *testing.T) {
	md := map[string]string{"trace_id": "abc", "job": "m"}
	runGolden(t, []goldenCase{
		{name: "filter", query: `{a="b"} | trace_id="abc"`, stream: job, md: md, line: `x`,
			want: with(job, "trace_id", "abc", "job_extracted", "m")},
		{name: "filter drops", query: `{a="b"} | trace_id="zzz"`, md: md, line: `x`, drop: true},
		{name: "line_format", query: `{a="b"} | line_format "{{.trace_id}}/{{.job}}/{{.job_extracted}}"`, stream: job, md: md, line: `x`,
			out: "abc/varlogs/m", want: with(job, "trace_id", "abc", "job_extracted", "m")},
		{name: "label_format", query: `{a="b"} | label_format t="{{.trace_id}}!"`, md: md, line: `x`,
			want: map[string]string{"trace_id": "abc", "job": "m", "t": "abc!"}},
		{name: "drop", query: `{a="b"} | drop trace_id`, md: md, line: `x`, want: map[string]string{"job": "m"}},
		{name: "keep", query: `{a="b"} | keep trace_id`, stream: job, md: md, line: `x`, want: map[string]string{"trace_id": "abc"}},
	})
}

func TestCategories(t *testing.T) {
	p := compile(t, `{a="b"} | logfmt | label_format renamed=host`)
	sp := p.ForStream(labels.New("job", "j", "host", "h1"))
	_, res, keep := sp.Process(0, []byte(`level=info job=x`), labels.New("trace", "t1"))
	if !keep {
		t.Fatal("dropped")
	}
	checkResult(t, res)
	for _, c := range []struct {
		got, want labels.Labels
	}{
		{res.Stream, labels.New("job", "j", "renamed", "h1")},
		{res.StructuredMetadata, labels.New("trace", "t1")},
		{res.Parsed, labels.New("job_extracted", "x", "level", "info")},
	} {
		if !c.got.Equal(c.want) {
			t.Errorf("got %s, want %s", c.got, c.want)
		}
	}
	// A template label_format on a stream label replaces it with a parsed
	// one; metadata wins over the stream, parsed over metadata.
	p = compile(t, `{a="b"} | label_format job="{{.job}}-x" | logfmt`)
	_, res, _ = p.ForStream(labels.New("job", "j")).Process(0, []byte(`trace=p`), labels.New("trace", "m"))
	checkResult(t, res)
	if want := labels.New("job", "j-x", "trace", "p"); !res.Parsed.Equal(want) || len(res.Stream) != 0 || len(res.StructuredMetadata) != 0 {
		t.Errorf("got stream %s metadata %s parsed %s, want parsed %s", res.Stream, res.StructuredMetadata, res.Parsed, want)
	}
}

func TestResultsCachedWithoutAllocs(t *testing.T) {
	// text/template allocates on every execution, so no line_format here.
	p := compile(t, `{a="b"} |= "level" | logfmt | level="error" | drop took`)
	sp := p.NewWorker().ForStream(labels.New("app", "x"))
	line := []byte(`level=error msg="disk full" took=12ms`)
	_, r1, _ := sp.Process(0, line, nil)
	if want := labels.New("app", "x", "level", "error", "msg", "disk full"); !r1.Labels.Equal(want) {
		t.Fatalf("labels %s, want %s", r1.Labels, want)
	}
	_, r2, _ := sp.Process(1, []byte(`level=error msg="disk full" took=12ms`), nil)
	if r1 != r2 {
		t.Error("identical label sets should share one result")
	}
	allocs := testing.AllocsPerRun(100, func() {
		if _, _, keep := sp.Process(2, line, nil); !keep {
			t.Fatal("dropped")
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per entry on the cached path, want 0", allocs)
	}
	// Interleaving streams of one worker keeps them apart.
	w := p.NewWorker()
	a, b := w.ForStream(labels.New("s", "a")), w.ForStream(labels.New("s", "b"))
	_, ra, _ := a.Process(0, line, nil)
	_, rb, _ := b.Process(0, line, nil)
	_, ra2, _ := a.Process(0, line, nil)
	if ra.Labels.Get("s") != "a" || rb.Labels.Get("s") != "b" || ra != ra2 {
		t.Errorf("interleaved streams mixed up: %s %s %s", ra, rb, ra2)
	}
}

// TestConcurrentWorkers shares one compiled pipeline between goroutines,
// each with its own Worker (run with -race).
func TestConcurrentWorkers(t *testing.T) {
	p := compile(t, `{a="b"} | json | line_format "{{.msg | upper}} {{.n}}" | label_format m="{{.msg}}" | n > 1`)
	done := make(chan string, 4)
	for g := range 4 {
		go func() {
			w := p.NewWorker()
			sp := w.ForStream(labels.New("g", string(rune('a'+g))))
			out := ""
			for i := range 200 {
				line := []byte(`{"msg":"hello","n":` + string(rune('0'+i%10)) + `}`)
				if o, res, keep := sp.Process(int64(i), line, nil); keep {
					if res.Labels.Get("m") != "hello" {
						out = "bad labels " + res.Labels.String()
						break
					}
					out = string(o)
				}
			}
			done <- out
		}()
	}
	for range 4 {
		if got := <-done; got != "HELLO 9" {
			t.Errorf("worker ended with %q", got)
		}
	}
}
