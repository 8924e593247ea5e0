package pipeline

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/logsift/logsift/pkg/labels"
	"github.com/logsift/logsift/pkg/logql"
)

// metadataSets are the structured metadata the memo tests give entries at
// random: none, a detected level (what most entries carry on a server
// that detects levels), names that collide with captures and stream
// labels, and a label only metadata has.
var metadataSets = []labels.Labels{
	nil,
	nil,
	labels.New("detected_level", "info"),
	labels.New("detected_level", "info"),
	labels.New("detected_level", "error"),
	labels.New("status", "from-metadata"),
	labels.New("level", "warn"),
	labels.New("detected_level", "info", "trace", "abc"),
	labels.New("method", "PUT", "path", "/m"),
}

// The series memo of keyed extractors (line filters, then a pattern) must
// give every entry the value and series the full path gives. Each case
// runs twice over the same random lines and metadata, once with the memo
// and once without, on streams whose labels collide with the captures or
// not, and under groupings by captures, by stream labels, by metadata,
// without, and none.
func TestSeriesMemoMatchesFullPath(t *testing.T) {
	queries := []string{
		`count_over_time({job="x"} | pattern "<ip> - - [<_>] \"<method> <path> <_>\" <status> <size> <_>" [1m])`,
		`bytes_over_time({job="x"} |= "GET" | pattern "<ip> - - [<_>] \"<method> <path> <_>\" <status> <_>" [1m])`,
		`rate({job="x"} != "POST" |~ "HTTP/1\\.[01]" | pattern "<_> \"<method> <path> <_>" [1m])`,
		`count_over_time({job="x"} | pattern "[<level>] <_>: <msg>" [1m])`,
		`count_over_time({job="x"} | pattern "<a>,<b>;<c>" [1m])`,
		`count_over_time({job="x"} | pattern "<_> msg=\"<method> <path> (<status>) <latency>\"" [1m])`,
		// regexp: lines drawn from the first pattern; an optional group
		// that does not take part sets "" as an empty one does.
		`count_over_time({job="x"} | regexp "^(?P<ip>\\S+) - - \\[[^]]*\\] \"(?P<method>[A-Z]*) (?P<path>\\S*)(?: (?P<proto>[^\"]*))?\" (?P<status>\\d*)" [1m])`,
		`bytes_rate({job="x"} |= "HTTP" | regexp "(?P<status>[0-9]{3}) (?P<size>[0-9]*)" [1m])`,
	}
	groupings := []*logql.Grouping{
		nil,
		{Labels: []string{"status"}},
		{Labels: []string{"method", "status"}},
		{Labels: []string{"path"}}, // high cardinality: past the memo's bound
		{Labels: []string{"host", "level"}},
		{Labels: []string{"status_extracted", "status"}},
		{Without: true, Labels: []string{"path", "ip"}},
		{Labels: []string{"detected_level", "status"}},
		{Without: true, Labels: []string{"detected_level"}},
	}
	streams := []labels.Labels{
		labels.New("job", "x", "host", "web-1"),
		labels.New("job", "x", "status", "stream-owned", "level", "info"),
	}
	for _, q := range queries {
		expr, err := logql.ParseExpr(q)
		if err != nil {
			t.Fatal(err)
		}
		ra := expr.(*logql.RangeAggregationExpr)
		lines := linesLike(t, ra, queries[0], 12000)
		for _, g := range groupings {
			memo, err := NewSampleExtractorWith(ra, SampleOptions{Grouping: g})
			if err != nil {
				t.Fatal(err)
			}
			full, err := NewSampleExtractorWith(ra, SampleOptions{Grouping: g})
			if err != nil {
				t.Fatal(err)
			}
			if !memo.keyed {
				t.Fatalf("%s by %v: not keyed; the memo would not be tested", q, g)
			}
			full.keyed = false
			series := 0 // distinct series per stream, summed
			for _, stream := range streams {
				mx, fx := memo.ForStream(stream), full.ForStream(stream)
				if fx.memo != nil {
					t.Fatal("the unkeyed extractor has a memo")
				}
				distinct := map[uint64]bool{}
				r := rand.New(rand.NewPCG(3, 4))
				for _, line := range lines {
					md := metadataSets[r.IntN(len(metadataSets))]
					mv, ml, mok := mx.Process(0, line, md)
					fv, fl, fok := fx.Process(0, line, md)
					if mok != fok || mv != fv {
						t.Fatalf("%s by %v on %q: memo (%v, %v), full path (%v, %v)", q, g, line, mv, mok, fv, fok)
					}
					if !fok {
						continue
					}
					if ml.Hash != fl.Hash || !ml.Labels.Equal(fl.Labels) || ml.Err != fl.Err {
						t.Fatalf("%s by %v on stream %s, line %q, metadata %s: memo series %s, full path %s", q, g, stream, line, md, ml.Labels, fl.Labels)
					}
					distinct[fl.Hash] = true
				}
				series += len(distinct)
			}
			// A grouping by labels no line has puts each stream's lines in
			// one series; any other must split some stream's lines.
			if want := onlyAbsent(q, g); !want && series <= len(streams) {
				t.Fatalf("%s by %v: each stream's lines fell in one series; the lines test nothing", q, g)
			}
		}
	}
}

// onlyAbsent reports whether grouping g keeps none of the captures of q's
// pattern (by labels that are not captures, such as host or level on a
// pattern without them).
func onlyAbsent(q string, g *logql.Grouping) bool {
	if g == nil || g.Without {
		return false
	}
	for _, n := range g.Labels {
		if strings.Contains(q, "<"+strings.TrimSuffix(n, "_extracted")+">") {
			return false
		}
	}
	return true
}

// An entry's structured metadata is part of the memo's key: the same line
// with and without a metadata label the grouping keeps falls in two
// series, in either order.
func TestSeriesMemoKeysMetadata(t *testing.T) {
	expr, err := logql.ParseExpr(`count_over_time({job="x"} | pattern "<method> <path>" [1m])`)
	if err != nil {
		t.Fatal(err)
	}
	x, err := NewSampleExtractorWith(expr.(*logql.RangeAggregationExpr), SampleOptions{Grouping: &logql.Grouping{Labels: []string{"method", "trace"}}})
	if err != nil {
		t.Fatal(err)
	}
	sx := x.ForStream(labels.New("job", "x"))
	line := []byte("GET /x")
	_, plain, _ := sx.Process(0, line, nil)
	_, withMeta, _ := sx.Process(0, line, labels.New("trace", "abc"))
	_, again, _ := sx.Process(0, line, nil)
	if got := withMeta.Labels.Get("trace"); got != "abc" {
		t.Fatalf("metadata label lost: %s", withMeta.Labels)
	}
	if plain.Labels.Get("trace") != "" || again.Labels.Get("trace") != "" || plain.Labels.Get("method") != "GET" {
		t.Fatalf("plain entries: %s then %s", plain.Labels, again.Labels)
	}
	_, other, _ := sx.Process(0, line, labels.New("trace", "abd"))
	if got := other.Labels.Get("trace"); got != "abd" {
		t.Fatalf("second metadata value: %s", other.Labels)
	}
}

// Line filters alone: an entry with metadata gets the series the full
// path gives it, through a memo keyed by the metadata alone.
func TestSeriesMemoLineFiltersWithMetadata(t *testing.T) {
	lines := [][]byte{[]byte("GET /a"), []byte("POST /b"), []byte("GET /c level=x"), []byte("")}
	for _, q := range []string{
		`count_over_time({job="x"} |= "GET" [1m])`,
		`bytes_over_time({job="x"} != "POST" |~ "/[ab]" [1m])`,
	} {
		expr, err := logql.ParseExpr(q)
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range []*logql.Grouping{nil, {Labels: []string{"detected_level"}}, {Labels: []string{"host"}}, {Without: true, Labels: []string{"trace"}}} {
			x, err := NewSampleExtractorWith(expr.(*logql.RangeAggregationExpr), SampleOptions{Grouping: g})
			if err != nil {
				t.Fatal(err)
			}
			for _, stream := range []labels.Labels{labels.New("job", "x", "host", "h"), labels.New("job", "x", "level", "info")} {
				mx, fx := x.ForStream(stream), x.ForStream(stream)
				if mx.memo == nil || mx.memo.parser != nil {
					t.Fatalf("%s: line filters alone should get a memo without a parser", q)
				}
				fx.memo = nil
				r := rand.New(rand.NewPCG(5, 6))
				withMeta := 0
				for range 3000 {
					line, md := lines[r.IntN(len(lines))], metadataSets[r.IntN(len(metadataSets))]
					mv, ml, mok := mx.Process(0, line, md)
					fv, fl, fok := fx.Process(0, line, md)
					if mok != fok || mv != fv {
						t.Fatalf("%s by %v on %q %s: memo (%v, %v), full path (%v, %v)", q, g, line, md, mv, mok, fv, fok)
					}
					if !fok {
						continue
					}
					if ml.Hash != fl.Hash || !ml.Labels.Equal(fl.Labels) {
						t.Fatalf("%s by %v on %q %s: memo series %s, full path %s", q, g, line, md, ml.Labels, fl.Labels)
					}
					if len(md) > 0 {
						withMeta++
					}
				}
				if withMeta == 0 {
					t.Fatal("no kept entry had metadata; the memo was not tested")
				}
			}
		}
	}
}

// linesLike renders the pattern of ra (of shape's when ra has none) with
// random captures (drawn from
// pieces that hold its literals' bytes, so that literals also turn up
// early) and random damage: a literal left out, the line cut short.
func linesLike(t *testing.T, ra *logql.RangeAggregationExpr, shape string, n int) [][]byte {
	var pat string
	for _, st := range ra.Range.Selector.Stages {
		if p, ok := st.(*logql.PatternParser); ok {
			pat = p.Pattern
		}
	}
	if pat == "" {
		expr, err := logql.ParseExpr(shape)
		if err != nil {
			t.Fatal(err)
		}
		return linesLike(t, expr.(*logql.RangeAggregationExpr), "", n)
	}
	p, err := logql.ParsePattern(pat)
	if err != nil {
		t.Fatal(err)
	}
	pieces := []string{"1.2.3.4", "GET", "POST", "/x", "/api/%d", "HTTP/1.1", "HTTP/2.0", "200", "404", "500", "512",
		"-", "warn", "info", "a b", "x]y", "q\"r", "(", ")", ",", ";", "\xff", ""}
	r := rand.New(rand.NewPCG(11, 12))
	lines := make([][]byte, n)
	for i := range lines {
		var line []byte
		for _, part := range p.Parts {
			switch {
			case !part.Capture:
				if r.IntN(20) > 0 {
					line = append(line, part.Text...)
				}
			default:
				piece := pieces[r.IntN(len(pieces))]
				if piece == "/api/%d" {
					piece = fmt.Sprintf(piece, r.IntN(6000))
				}
				line = append(line, piece...)
			}
		}
		if r.IntN(10) == 0 {
			line = line[:r.IntN(len(line)+1)]
		}
		lines[i] = line
	}
	return lines
}

// literal.index must find what bytes.Index finds: the rare-byte search and
// the word compare are only faster ways to the leftmost occurrence.
func FuzzLiteralIndex(f *testing.F) {
	f.Add("] \"", `1.2.3.4 - - [10/Oct/2024:13:55:36 +0000] "GET / HTTP/1.1" 200`)
	f.Add(" - - [", "a - - - - [b")
	f.Add("\" ", "\"\"\" x")
	f.Add("ab", "aab")
	f.Add("a longer literal than eight", "here is a longer literal than eight bytes")
	f.Add("x", "")
	f.Add("[]", "]][[[]")
	f.Add("[]", strings.Repeat("[", 300)+"[]") // hits that fail: bytes.Index takes over
	f.Add("a[b", strings.Repeat("x[", 100)+"a[b")
	f.Fuzz(func(t *testing.T, lit, s string) {
		if lit == "" {
			return
		}
		l := newLiteral(lit)
		if got, want := l.index([]byte(s)), strings.Index(s, lit); got != want {
			t.Fatalf("index of %q in %q: %d, want %d", lit, s, got, want)
		}
	})
}
