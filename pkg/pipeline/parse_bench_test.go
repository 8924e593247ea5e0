package pipeline

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/logsift/logsift/pkg/corpus"
	"github.com/logsift/logsift/pkg/labels"
	"github.com/logsift/logsift/pkg/logql"
)

// corpusFile reads up to max bytes of whole lines from a corpus file, in
// place; it skips the benchmark when the corpus is absent.
func corpusFile(b *testing.B, name string, max int) [][]byte {
	b.Helper()
	data, err := os.ReadFile(filepath.Join(corpus.Require(b), filepath.FromSlash(name)))
	if err != nil {
		b.Skipf("corpus file %s not available: %v", name, err)
	}
	if len(data) > max {
		data = data[:max]
		data = data[:bytes.LastIndexByte(data, '\n')+1]
	}
	var lines [][]byte
	for l := range bytes.Lines(data) {
		if l = bytes.TrimRight(l, "\r\n"); len(l) > 0 {
			lines = append(lines, l)
		}
	}
	return lines
}

func logfmtLines(n int) [][]byte {
	r := rand.New(rand.NewPCG(1, 2))
	levels := []string{"info", "info", "info", "warn", "error", "debug"}
	out := make([][]byte, n)
	for i := range out {
		out[i] = fmt.Appendf(nil, `ts=2024-03-0%dT10:%02d:%02d.%03dZ level=%s caller=server.go:%d component=querier org_id=%d traceID=%016x msg="finished query" query="sum(rate({app=\"x\"}[5m]))" duration=%dms status=%d bytes=%dKB`,
			1+r.IntN(9), r.IntN(60), r.IntN(60), r.IntN(1000), levels[r.IntN(len(levels))], r.IntN(900), r.IntN(50), r.Uint64(),
			r.IntN(5000), []int{200, 200, 200, 400, 500}[r.IntN(5)], r.IntN(9000))
	}
	return out
}

type parseBench struct {
	name  string
	query string
	lines func(b *testing.B) [][]byte
}

func apacheAccess(b *testing.B) [][]byte {
	return corpusFile(b, "elastic-examples/apache_access_combined.log", 8<<20)
}

func zeekDNS(b *testing.B) [][]byte { return corpusFile(b, "zeek-wrccdc/json/dns.json", 8<<20) }
func zeekWeird(b *testing.B) [][]byte {
	return corpusFile(b, "zeek-wrccdc/json/weird.json", 8<<20)
}
func mongo(b *testing.B) [][]byte {
	lines := corpusFile(b, "beats-module-samples/mongodb/mongodb-debian-4.4.4-json.log", 1<<20)
	var out [][]byte
	for range 200 {
		out = append(out, lines...)
	}
	return out
}
func logfmtSynthetic(*testing.B) [][]byte { return logfmtLines(20000) }

var parseBenches = []parseBench{
	{"json_filter_dns", `{a="b"} | json | proto="tcp"`, zeekDNS},
	{"json_filter_weird", `{a="b"} | json | name="dns_unmatched_reply"`, zeekWeird},
	{"json_filter_mongo", `{a="b"} | json | s="E"`, mongo},
	{"json_kept_dns", `{a="b"} | json | proto="udp"`, zeekDNS},
	{"json_params_dns", `{a="b"} | json proto, q="query" | proto="tcp"`, zeekDNS},
	{"json_linefilter_first", `{a="b"} |= "tcp" | json | proto="tcp"`, zeekDNS},
	{"logfmt_filter", `{a="b"} | logfmt | level="error"`, logfmtSynthetic},
	{"logfmt_numeric", `{a="b"} | logfmt | status >= 500 and duration > 2s`, logfmtSynthetic},
	{"pattern_filter", "{a=\"b\"} | pattern `<ip> - - [<_>] \"<method> <path> <_>\" <status> <size> <_>` | status=\"404\"", apacheAccess},
	{"regexp_filter", "{a=\"b\"} | regexp `^(?P<ip>\\S+) \\S+ \\S+ \\[[^]]*\\] \"(?P<method>\\S+) (?P<path>\\S+)` | method=\"POST\"", apacheAccess},
	{"unpack", `{a="b"} | unpack`, func(*testing.B) [][]byte {
		return [][]byte{[]byte(`{"job":"123","pod":"someuid123","app":"foo","_entry":"10.1.0.88 - - [14/Dec/2020:22:56:24 +0000] \"GET /static/img/about/bob.jpg HTTP/1.1\""}`)}
	}},
	{"line_format", `{a="b"} | logfmt | line_format "{{.level}} {{.msg}} took {{.duration}}"`, logfmtSynthetic},
}

func BenchmarkParse(b *testing.B) {
	stream := labels.New("job", "zeek", "host", "sensor-1")
	for _, pb := range parseBenches {
		b.Run(pb.name, func(b *testing.B) {
			lines := pb.lines(b)
			p := compile(b, pb.query)
			sp := p.NewWorker().ForStream(stream)
			b.SetBytes(totalBytes(lines))
			b.ReportAllocs()
			kept := 0
			for b.Loop() {
				kept = 0
				for _, l := range lines {
					if _, _, ok := sp.Process(0, l, nil); ok {
						kept++
					}
				}
			}
			b.ReportMetric(float64(kept)/float64(len(lines)), "kept/line")
		})
	}
}

func BenchmarkSample(b *testing.B) {
	stream := labels.New("job", "zeek", "host", "sensor-1")
	for _, c := range []struct {
		name, query string
		by          []string
		lines       func(*testing.B) [][]byte
	}{
		{"json_count_by_proto", `count_over_time({a="b"} | json [1m])`, []string{"proto"}, zeekDNS},
		{"json_count_all_labels", `count_over_time({a="b"} | json | proto="tcp" [1m])`, nil, zeekDNS},
		{"json_unwrap_rtt", `sum_over_time({a="b"} | json | unwrap rtt | __error__="" [1m])`, []string{"qtype_name"}, zeekDNS},
		{"logfmt_rate_by_level", `rate({a="b"} | logfmt [1m])`, []string{"level"}, logfmtSynthetic},
		{"regexp_count_by_method", "count_over_time({a=\"b\"} | regexp `^(?P<ip>\\S+) \\S+ \\S+ \\[[^]]*\\] \"(?P<method>\\S+) (?P<path>\\S+)` [1m])", []string{"method"}, apacheAccess},
		{"regexp_count_by_host", "count_over_time({a=\"b\"} | regexp `^(?P<ip>\\S+) \\S+ \\S+ \\[[^]]*\\] \"(?P<method>\\S+) (?P<path>\\S+)` [1m])", []string{"host"}, apacheAccess},
		{"pattern_count_by_status", `count_over_time({a="b"} | pattern "<ip> - - [<_>] \"<method> <path> <_>\" <status> <size> <_>" [1m])`, []string{"status"}, apacheAccess},
	} {
		b.Run(c.name, func(b *testing.B) {
			lines := c.lines(b)
			expr, err := logql.ParseExpr(c.query)
			if err != nil {
				b.Fatal(err)
			}
			opts := SampleOptions{}
			if c.by != nil {
				opts.Grouping = &logql.Grouping{Labels: c.by}
			}
			x, err := NewSampleExtractorWith(expr.(*logql.RangeAggregationExpr), opts)
			if err != nil {
				b.Fatal(err)
			}
			sx := x.ForStream(stream)
			b.SetBytes(totalBytes(lines))
			b.ReportAllocs()
			for b.Loop() {
				for _, l := range lines {
					sx.Process(0, l, nil)
				}
			}
		})
	}
}
