package pipeline

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/logsift/logsift/pkg/labels"
	"github.com/logsift/logsift/pkg/logql"
)

// A pattern stage that stops after the last capture a grouping needs must
// give every line the same group as the full parse does. Lines are
// generated to match, to stop early at every literal, and to lack them.
func TestPatternProjectionKeepsGroups(t *testing.T) {
	patterns := []string{
		`<ip> - - [<_>] "<method> <path> <_>" <status> <size> <_>`,
		`<_> msg="<method> <path> (<status>) <latency>"`,
		`<a>,<b>;<c>`,
		`[<level>] <_>: <msg>`,
	}
	r := rand.New(rand.NewPCG(7, 8))
	pieces := []string{"1.2.3.4", " - - [", "10/Oct/2024", "] \"", "GET", " ", "/x", "HTTP/1.1", "\" ", "200", "512", "-",
		"msg=\"", "(", ")", ",", ";", "[", "]", ": ", "warn", "x", ""}
	stream := labels.New("job", "x")
	for _, pat := range patterns {
		names := []string{}
		p, err := logql.ParsePattern(pat)
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, p.Names()...)
		for _, by := range names {
			q := fmt.Sprintf("count_over_time({job=\"x\"} | pattern %q [1m])", pat)
			expr, err := logql.ParseExpr(q)
			if err != nil {
				t.Fatal(err)
			}
			ra := expr.(*logql.RangeAggregationExpr)
			full, err := NewSampleExtractorWith(ra, SampleOptions{})
			if err != nil {
				t.Fatal(err)
			}
			proj, err := NewSampleExtractorWith(ra, SampleOptions{Grouping: &logql.Grouping{Labels: []string{by}}})
			if err != nil {
				t.Fatal(err)
			}
			fx, px := full.ForStream(stream), proj.ForStream(stream)
			for i := 0; i < 2000; i++ {
				var line []byte
				for n := r.IntN(14); n >= 0; n-- {
					line = append(line, pieces[r.IntN(len(pieces))]...)
				}
				_, fl, fok := fx.Process(0, line, nil)
				_, pl, pok := px.Process(0, line, nil)
				if fok != pok {
					t.Fatalf("%s by %s on %q: kept %v, projected %v", pat, by, line, fok, pok)
				}
				if !fok {
					continue
				}
				want := fl.Labels.Get(by)
				if got := pl.Labels.Get(by); got != want || len(pl.Labels) > 1 {
					t.Fatalf("%s by %s on %q: projected group %s, full parse has %s=%q", pat, by, line, pl.Labels, by, want)
				}
			}
		}
	}
}
