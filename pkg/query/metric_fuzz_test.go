package query

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/logsift/logsift/pkg/chunk"
	"github.com/logsift/logsift/pkg/labels"
	"github.com/logsift/logsift/pkg/logql"
	"github.com/logsift/logsift/pkg/store"
)

var fuzzData sharedStore

// fuzzEngine is a small store shared by the fuzz iterations of a process:
// two streams with logfmt, JSON and plain lines, metadata on some, part
// flushed and part in the heads. The streams carry different numbers: with
// equal data, topk and bottomk would choose between exact ties whose
// floating-point values differ in the last bit with the order in which
// workers merged their sums, and instant and range queries could then
// keep different series.
func fuzzEngine(t *testing.T) *Engine {
	return fuzzData.open(t, "logsift-metric-fuzz-", store.Options{Chunk: chunk.Options{BlockSize: 4 << 10}}, func(ctx context.Context, st *store.Store) error {
		for half := 0; half < 2; half++ {
			for s := 0; s < 2; s++ {
				ls := labels.New("job", "f", "s", fmt.Sprint(s))
				var es []chunk.Entry
				for i := half * 200; i < (half+1)*200; i++ {
					var line string
					switch i % 3 {
					case 0:
						line = fmt.Sprintf("level=%s n=%d d=%dms size=%dKB", []string{"info", "error"}[i%2], i*(s+2)%17, i%50, i%9)
					case 1:
						line = fmt.Sprintf(`{"level":"warn","n":%d}`, (i+s)%11)
					default:
						line = fmt.Sprintf("plain line %d", i)
					}
					e := chunk.Entry{Timestamp: at(float64(i * 3)).UnixNano(), Line: []byte(line)}
					if i%7 == 0 {
						e.Metadata = labels.New("trace", fmt.Sprint(i%3))
					}
					es = append(es, e)
				}
				if err := st.Append(ctx, "t", []store.Stream{{Labels: ls, Entries: es}}); err != nil {
					return err
				}
			}
			if half == 0 {
				if err := st.Flush(ctx); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// FuzzMetricQuery runs arbitrary queries: the engine must never panic,
// must fail only with errors the API can classify, must return well-formed
// results, and an instant query must agree with the last step of a range
// query that ends at the same time.
func FuzzMetricQuery(f *testing.F) {
	for _, q := range []string{
		`count_over_time({job="f"}[1m])`,
		`sum by (level) (rate({job="f"} | logfmt [2m] offset 30s))`,
		`quantile_over_time(0.9, {job="f"} | logfmt | unwrap n | __error__="" [5m]) by (s)`,
		`rate_counter({job="f"} | logfmt | unwrap duration(d) | __error__="" [90s])`,
		`topk(1, sum by (s) (bytes_over_time({job="f"}[1m]))) / on() group_left sum(bytes_rate({job="f"}[1m]))`,
		`label_replace(absent_over_time({job="f", s="9"}[1m]), "x", "$1", "s", "(.*)") or vector(2)`,
		`sort_desc(avg_over_time({job="f"} | json | unwrap n | __error__="" [3m]) by (level)) > bool 2`,
		`stddev(last_over_time({job="f"} | logfmt | unwrap bytes(size) | __error__="" [1m]) by (s, trace))`,
		`1 + 2 ^ 3 % 5`,
		`count_over_time({job="f"} |= "level=error" [30s]) and on(s) count_over_time({job="f"} |~ "plain" [30s])`,
	} {
		f.Add(q, uint8(30), uint16(600))
	}
	f.Fuzz(func(t *testing.T, q string, stepSec uint8, span uint16) {
		if len(q) > 2000 {
			return
		}
		expr, err := logql.ParseExpr(q)
		if err != nil {
			return
		}
		if _, ok := expr.(logql.SampleExpr); !ok {
			return
		}
		checkInstantMatchesRange(t, fuzzEngine(t), q, stepSec, span)
	})
}

// checkInstantMatchesRange runs q as a range query and as an instant query
// at the range's end and compares them.
func checkInstantMatchesRange(t *testing.T, eng *Engine, q string, stepSec uint8, span uint16) {
	step := time.Duration(max(int(stepSec), 1)) * time.Second
	end := at(float64(span % 1400))
	start := end.Add(-step * time.Duration(min(int(span)/int(max(stepSec, 1)), 50)))
	ctx := context.Background()
	rp := Params{Tenant: "t", Query: q, Start: start, End: end, Step: step, MaxMetricMemory: 64 << 20}
	rres, rerr := eng.Exec(ctx, rp)
	ip := Params{Tenant: "t", Query: q, End: end, Instant: true, MaxMetricMemory: 64 << 20}
	ires, ierr := eng.Exec(ctx, ip)
	for _, err := range []error{rerr, ierr} {
		if err == nil {
			continue
		}
		var qe *Error
		var pe *logql.ParseError
		if !errors.As(err, &qe) && !errors.As(err, &pe) {
			t.Fatalf("%s: error %T is not a query error: %v", q, err, err)
		}
	}
	if rerr != nil || ierr != nil {
		return
	}
	if rres.Type != ResultMatrix {
		t.Fatalf("%s: range result %s", q, rres.Type)
	}
	last := map[string]float64{}
	for i, s := range rres.Matrix {
		if i > 0 && labels.Compare(rres.Matrix[i-1].Labels, s.Labels) >= 0 {
			t.Fatalf("%s: series not sorted or not unique: %s", q, s.Labels)
		}
		if len(s.Points) == 0 {
			t.Fatalf("%s: empty series %s", q, s.Labels)
		}
		for k, p := range s.Points {
			if k > 0 && p.T <= s.Points[k-1].T {
				t.Fatalf("%s: points out of order in %s", q, s.Labels)
			}
		}
		if p := s.Points[len(s.Points)-1]; p.T == end.UnixMilli() {
			last[s.Labels.String()] = p.V
		}
	}
	got := map[string]float64{}
	switch ires.Type {
	case ResultScalar:
		got["{}"] = ires.Scalar.V
	case ResultVector:
		for _, s := range ires.Vector {
			got[s.Labels.String()] = s.V
		}
	default:
		t.Fatalf("%s: instant result %s", q, ires.Type)
	}
	if len(got) != len(last) {
		t.Fatalf("%s: instant has %d series, the range query's last step %d", q, len(got), len(last))
	}
	for k, v := range got {
		w, ok := last[k]
		if !ok || !(closeEnough(v, w) || math.IsNaN(v) && math.IsNaN(w)) {
			t.Fatalf("%s: instant %s = %v, range query's last step %v", q, k, v, w)
		}
	}
}

// genQuery builds a random metric query over the fuzz data.
func genQuery(r *rand.Rand, depth int) string {
	pick := func(xs ...string) string { return xs[r.IntN(len(xs))] }
	rng := func() string {
		s := pick("[30s]", "[1m]", "[2m]", "[45s]")
		if r.IntN(4) == 0 {
			s += pick(" offset 30s", " offset 2m")
		}
		return s
	}
	rangeAgg := func() string {
		sel := pick(`{job="f"}`, `{job="f", s="0"}`, `{job="f"} |= "level"`, `{job="f"} | logfmt | __error__=""`, `{job="f"} | json | __error__=""`)
		switch r.IntN(4) {
		case 0:
			return fmt.Sprintf("%s(%s%s)", pick("count_over_time", "rate", "bytes_over_time", "bytes_rate", "absent_over_time"), sel, rng())
		case 1:
			u := `{job="f"} | logfmt | unwrap ` + pick("n", "duration(d)", "bytes(size)") + ` | __error__=""`
			op := pick("sum_over_time", "rate", "rate_counter")
			return fmt.Sprintf("%s(%s%s)", op, u, rng())
		case 2:
			u := `{job="f"} | logfmt | unwrap n | __error__=""`
			op := pick("avg_over_time", "min_over_time", "max_over_time", "stdvar_over_time", "stddev_over_time", "first_over_time", "last_over_time")
			return fmt.Sprintf("%s(%s%s) by (%s)", op, u, rng(), pick("s", "level", "s, level", "trace"))
		default:
			return fmt.Sprintf("quantile_over_time(%s, {job=\"f\"} | logfmt | unwrap n | __error__=\"\"%s) by (%s)", pick("0.5", "0.9", "0", "1"), rng(), pick("s", "level"))
		}
	}
	if depth <= 0 {
		return rangeAgg()
	}
	switch r.IntN(7) {
	case 0:
		return rangeAgg()
	case 1:
		g := pick("", " by (s)", " by (level)", " without (level)", " by ()")
		op := pick("sum", "avg", "min", "max", "count", "stddev", "stdvar")
		return fmt.Sprintf("%s%s (%s)", op, g, genQuery(r, depth-1))
	case 2:
		return fmt.Sprintf("%s(%d, %s)", pick("topk", "bottomk"), 1+r.IntN(3), genQuery(r, depth-1))
	case 3:
		op := pick("+", "-", "*", "/", "%", "^", "==", "!=", ">", "<", ">=", "<=", "and", "or", "unless")
		m := pick("", " on(s)", " ignoring(level)", " on()", " on(s) group_left()", " ignoring(s) group_right(level)")
		if op == "and" || op == "or" || op == "unless" {
			m = pick("", " on(s)", " ignoring(level)")
		} else if strings.ContainsAny(op[:1], "=!<>") && r.IntN(2) == 0 {
			m = " bool" + m
		}
		return fmt.Sprintf("(%s) %s%s (%s)", genQuery(r, depth-1), op, m, genQuery(r, depth-1))
	case 4:
		return fmt.Sprintf("%s %s %s", genQuery(r, depth-1), pick("+", "*", ">", "<= bool", "/"), pick("2", "0", "-1.5"))
	case 5:
		return fmt.Sprintf(`label_replace(%s, "%s", "%s", "%s", "%s")`, genQuery(r, depth-1), pick("s", "x"), pick("$1", "v", ""), pick("s", "level", "none"), pick("(.*)", "0", "e.*"))
	}
	return fmt.Sprintf("vector(%d)", r.IntN(3))
}

// TestRandomQueries runs generated queries: no panics, only query errors,
// and instant results equal to the last step of range results.
func TestRandomQueries(t *testing.T) {
	eng := fuzzEngine(t)
	r := rand.New(rand.NewPCG(3, 4))
	n := 400
	if testing.Short() {
		n = 50
	}
	for i := 0; i < n; i++ {
		q := genQuery(r, 3)
		if _, err := logql.ParseExpr(q); err != nil {
			t.Fatalf("generated query does not parse: %s: %v", q, err)
		}
		checkInstantMatchesRange(t, eng, q, uint8(1+r.IntN(90)), uint16(r.IntN(1400)))
	}
}
