package query

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/logsift/logsift/pkg/chunk"
	"github.com/logsift/logsift/pkg/labels"
	"github.com/logsift/logsift/pkg/pipeline"
	"github.com/logsift/logsift/pkg/store"
)

// t0 is the base time of the hand-made datasets.
var t0 = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

func at(sec float64) time.Time { return t0.Add(time.Duration(sec * float64(time.Second))) }

// ms is the Point.T of a step at sec seconds after t0.
func ms(sec float64) int64 { return at(sec).UnixMilli() }

type testStream struct {
	labels  labels.Labels
	entries []chunk.Entry
}

func entry(sec float64, line string, md ...string) chunk.Entry {
	e := chunk.Entry{Timestamp: at(sec).UnixNano(), Line: []byte(line)}
	if len(md) > 0 {
		e.Metadata = labels.New(md...)
	}
	return e
}

// newEngine stores the streams; flushed, they are read back from chunks,
// otherwise from the heads.
func newEngine(t testing.TB, flush bool, opts store.Options, streams ...testStream) *Engine {
	t.Helper()
	st, err := store.Open(t.TempDir(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close(context.Background()) })
	ctx := context.Background()
	for _, s := range streams {
		if err := st.Append(ctx, "t", []store.Stream{{Labels: s.labels, Entries: s.entries}}); err != nil {
			t.Fatal(err)
		}
	}
	if flush {
		if err := st.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	return &Engine{Store: st}
}

func rangeQuery(t testing.TB, eng *Engine, q string, start, end float64, step time.Duration) *Result {
	t.Helper()
	res, err := eng.Exec(context.Background(), Params{Tenant: "t", Query: q, Start: at(start), End: at(end), Step: step})
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	if res.Type != ResultMatrix {
		t.Fatalf("%s: result type %s, want matrix", q, res.Type)
	}
	return res
}

func instantQuery(t testing.TB, eng *Engine, q string, sec float64) *Result {
	t.Helper()
	res, err := eng.Exec(context.Background(), Params{Tenant: "t", Query: q, Start: at(sec - 3600), End: at(sec), Instant: true})
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return res
}

// fmtMatrix prints a matrix compactly for comparisons: one line per
// series, {labels} then t=v pairs with t in seconds after t0.
func fmtMatrix(m []Series) string {
	var b strings.Builder
	for _, s := range m {
		b.WriteString(s.Labels.String())
		for _, p := range s.Points {
			fmt.Fprintf(&b, " %g=%s", float64(p.T-t0.UnixMilli())/1000, fmtValue(p.V))
		}
		b.WriteByte('\n')
	}
	return b.String()
}

func fmtVector(v []Sample) string {
	var b strings.Builder
	for _, s := range v {
		fmt.Fprintf(&b, "%s %s\n", s.Labels, fmtValue(s.V))
	}
	return b.String()
}

// fmtValue rounds to 6 significant digits, so that expectations worked out
// by hand compare exactly.
func fmtValue(v float64) string { return fmt.Sprintf("%.6g", v) }

func checkMatrix(t *testing.T, eng *Engine, q string, start, end float64, step time.Duration, want string) {
	t.Helper()
	got := fmtMatrix(rangeQuery(t, eng, q, start, end, step).Matrix)
	if got != strings.TrimLeft(want, "\n") {
		t.Errorf("%s\n got:\n%s want:\n%s", q, got, strings.TrimLeft(want, "\n"))
	}
}

func checkVector(t *testing.T, eng *Engine, q string, sec float64, want string) {
	t.Helper()
	res := instantQuery(t, eng, q, sec)
	if res.Type != ResultVector {
		t.Fatalf("%s: result type %s, want vector", q, res.Type)
	}
	got := fmtVector(res.Vector)
	if got != strings.TrimLeft(want, "\n") {
		t.Errorf("%s\n got:\n%s want:\n%s", q, got, strings.TrimLeft(want, "\n"))
	}
	for _, s := range res.Vector {
		if s.T != ms(sec) {
			t.Errorf("%s: sample time %d, want %d", q, s.T, ms(sec))
		}
	}
}

// edgeStreams has entries on and around window edges.
func edgeStreams() []testStream {
	app := testStream{labels: labels.New("job", "app", "host", "a")}
	for _, s := range []float64{0, 30, 59, 60, 61, 120, 150, 180, 181} {
		app.entries = append(app.entries, entry(s, fmt.Sprintf("line at %g", s)))
	}
	return []testStream{app}
}

// TestWindowEdges pins Loki's windows: (t-range, t], so an entry exactly
// at t-range belongs to the previous window and one exactly at t to this
// one.
func TestWindowEdges(t *testing.T) {
	for _, flush := range []bool{false, true} {
		eng := newEngine(t, flush, store.Options{}, edgeStreams()...)
		t.Run(fmt.Sprint("flush=", flush), func(t *testing.T) {
			// (0,60] = 30 59 60; (60,120] = 61 120; (120,180] = 150 180.
			checkMatrix(t, eng, `count_over_time({job="app"}[1m])`, 60, 180, time.Minute, `
{host="a", job="app"} 60=3 120=2 180=2
`)
			// offset 1m: (-60,0] = 0; (0,60] = 3; (60,120] = 2.
			checkMatrix(t, eng, `count_over_time({job="app"}[1m] offset 1m)`, 60, 180, time.Minute, `
{host="a", job="app"} 60=1 120=3 180=2
`)
			// Overlapping windows, range 2m at step 1m.
			checkMatrix(t, eng, `count_over_time({job="app"}[2m])`, 60, 240, time.Minute, `
{host="a", job="app"} 60=4 120=5 180=4 240=3
`)
			// Range not a multiple of step: [90s] at 60s steps,
			// (-30,60] (30,120] (90,180] (150,240].
			checkMatrix(t, eng, `count_over_time({job="app"}[90s])`, 60, 240, time.Minute, `
{host="a", job="app"} 60=4 120=4 180=3 240=2
`)
			// Steps start where start is, not aligned: 65, 125, 185.
			checkMatrix(t, eng, `count_over_time({job="app"}[1m])`, 65, 190, time.Minute, `
{host="a", job="app"} 65=4 125=1 185=3
`)
			// Gaps between windows (step > range): (50,60] (110,120] (170,180].
			checkMatrix(t, eng, `count_over_time({job="app"}[10s])`, 60, 180, time.Minute, `
{host="a", job="app"} 60=2 120=1 180=1
`)
			// rate is the count per second of the range.
			checkMatrix(t, eng, `rate({job="app"}[1m])`, 60, 120, time.Minute, `
{host="a", job="app"} 60=0.05 120=0.0333333
`)
			// A step without entries has no point.
			checkMatrix(t, eng, `count_over_time({job="app"}[10s])`, 60, 300, time.Minute, `
{host="a", job="app"} 60=2 120=1 180=1
`)
			checkVector(t, eng, `count_over_time({job="app"}[1m])`, 60, `
{host="a", job="app"} 3
`)
			checkVector(t, eng, `count_over_time({job="app"}[1m])`, 60.5, `
{host="a", job="app"} 3
`)
			checkVector(t, eng, `bytes_over_time({job="app"}[1m])`, 60, `
{host="a", job="app"} 30
`)
			checkVector(t, eng, `bytes_rate({job="app"}[1m])`, 60, `
{host="a", job="app"} 0.5
`)
		})
	}
}

// unwrapStream has values worked out by hand below.
func unwrapStreams() []testStream {
	svc := testStream{labels: labels.New("job", "svc", "host", "a")}
	for _, e := range []struct{ s, v float64 }{{10, 1}, {20, 5}, {30, 3}, {60, 2}, {70, 4}, {100, 10}, {120, 6}} {
		svc.entries = append(svc.entries, entry(e.s, fmt.Sprintf("level=info latency=%gs size=%gKB n=%g", e.v, e.v, e.v)))
	}
	ctr := testStream{labels: labels.New("job", "ctr")}
	for _, e := range []struct{ s, v float64 }{{10, 10}, {30, 20}, {50, 5}, {60, 15}, {90, 25}, {115, 40}} {
		ctr.entries = append(ctr.entries, entry(e.s, fmt.Sprintf("total=%g", e.v)))
	}
	return []testStream{svc, ctr}
}

// TestRangeFunctions checks every range aggregation on two windows,
// (0,60] with values 1 5 3 2 and (60,120] with 4 10 6.
func TestRangeFunctions(t *testing.T) {
	for _, flush := range []bool{false, true} {
		eng := newEngine(t, flush, store.Options{}, unwrapStreams()...)
		t.Run(fmt.Sprint("flush=", flush), func(t *testing.T) {
			sel := `{job="svc"} | logfmt | keep host, job, level, n`
			byLatency := `{job="svc"} | logfmt | keep host, job, level, latency`
			bySize := `{job="svc"} | logfmt | keep host, job, level, size`
			for _, c := range []struct{ q, want string }{
				{`sum_over_time(` + sel + ` | unwrap n [1m])`, "11 20"},
				{`avg_over_time(` + sel + ` | unwrap n [1m])`, "2.75 6.66667"},
				{`min_over_time(` + sel + ` | unwrap n [1m])`, "1 4"},
				{`max_over_time(` + sel + ` | unwrap n [1m])`, "5 10"},
				{`first_over_time(` + sel + ` | unwrap n [1m])`, "1 4"},
				{`last_over_time(` + sel + ` | unwrap n [1m])`, "2 6"},
				{`stdvar_over_time(` + sel + ` | unwrap n [1m])`, "2.1875 6.22222"},
				{`stddev_over_time(` + sel + ` | unwrap n [1m])`, "1.47902 2.49444"},
				{`quantile_over_time(0.5, ` + sel + ` | unwrap n [1m])`, "2.5 6"},
				{`quantile_over_time(0.99, ` + sel + ` | unwrap n [1m])`, "4.94 9.92"},
				{`quantile_over_time(0, ` + sel + ` | unwrap n [1m])`, "1 4"},
				{`rate(` + sel + ` | unwrap n [1m])`, "0.183333 0.333333"},
				{`count_over_time({job="svc"} | logfmt | level="info" | keep job [1m])`, "4 3"},
				{`sum_over_time(` + byLatency + ` | unwrap duration(latency) [1m])`, "11 20"},
				{`sum_over_time(` + byLatency + ` | unwrap duration_seconds(latency) [1m])`, "11 20"},
				{`sum_over_time(` + bySize + ` | unwrap bytes(size) [1m])`, "11000 20000"},
			} {
				res := rangeQuery(t, eng, c.q, 60, 120, time.Minute)
				if len(res.Matrix) != 1 {
					t.Errorf("%s: %d series:\n%s", c.q, len(res.Matrix), fmtMatrix(res.Matrix))
					continue
				}
				var got []string
				for _, p := range res.Matrix[0].Points {
					got = append(got, fmtValue(p.V))
				}
				if strings.Join(got, " ") != c.want {
					t.Errorf("%s = %s, want %s", c.q, strings.Join(got, " "), c.want)
				}
			}
			// The unwrapped label leaves the series; other parsed labels
			// stay.
			checkMatrix(t, eng, `sum_over_time({job="svc"} | logfmt | unwrap n [1m])`, 60, 60, time.Minute, `
{host="a", job="svc", latency="1s", level="info", size="1KB"} 60=1
{host="a", job="svc", latency="2s", level="info", size="2KB"} 60=2
{host="a", job="svc", latency="3s", level="info", size="3KB"} 60=3
{host="a", job="svc", latency="5s", level="info", size="5KB"} 60=5
`)
			checkMatrix(t, eng, `max_over_time({job="svc"} | logfmt | unwrap n [1m]) by (level)`, 60, 120, time.Minute, `
{level="info"} 60=5 120=10
`)
			checkMatrix(t, eng, `max_over_time({job="svc"} | logfmt | unwrap n [1m]) without (latency, size)`, 60, 120, time.Minute, `
{host="a", job="svc", level="info"} 60=5 120=10
`)
			// Counter: (0,60] holds 10 20 5 15, a reset at 50: increase
			// 5+20 = 25 over 50s sampled, extrapolated 10s to the start
			// (within 1.1 intervals, above the zero point at 20s) and 0s
			// to the end: 25*60/50 = 30, per second of 60s: 0.5.
			// (60,120] holds 25 40: increase 15 over 25s, first sample
			// 30s from the start (over 1.1*25): half an interval, 12.5s;
			// 5s to the end: 15*42.5/25 = 25.5, /60 = 0.425.
			checkMatrix(t, eng, `rate_counter({job="ctr"} | logfmt | unwrap total [1m])`, 60, 120, time.Minute, `
{job="ctr"} 60=0.5 120=0.425
`)
		})
	}
}

func TestAbsentOverTime(t *testing.T) {
	eng := newEngine(t, true, store.Options{}, edgeStreams()...)
	// Entries at 0 30 59 60 61 120 150 180 181: [10s] windows at 60..300
	// hold data at 60, 120 and 180 only.
	checkMatrix(t, eng, `absent_over_time({job="app"}[10s])`, 60, 300, time.Minute, `
{job="app"} 240=1 300=1
`)
	checkMatrix(t, eng, `absent_over_time({job="nope", env="x", host=~"a.*"}[1m])`, 60, 120, time.Minute, `
{env="x", job="nope"} 60=1 120=1
`)
	checkMatrix(t, eng, `absent_over_time({job="app", job="app"}[1m])`, 600, 600, time.Minute, `
{} 600=1
`)
	checkVector(t, eng, `absent_over_time({job="app"} |= "nothing" [1m])`, 60, `
{job="app"} 1
`)
	checkVector(t, eng, `absent_over_time({job="app"}[1m])`, 60, "")
}

func TestDefaultStepAndLimits(t *testing.T) {
	eng := newEngine(t, false, store.Options{}, edgeStreams()...)
	// 1000s / 250 = 4s steps: 251 evaluations from 0 to 1000.
	res := rangeQuery(t, eng, `vector(1)`, 0, 1000, 0)
	if len(res.Matrix) != 1 || len(res.Matrix[0].Points) != 251 || res.Matrix[0].Points[1].T-res.Matrix[0].Points[0].T != 4000 {
		t.Fatalf("default step: %d points", len(res.Matrix[0].Points))
	}
	// Short ranges step by at least one second.
	res = rangeQuery(t, eng, `vector(1)`, 0, 10, 0)
	if n := len(res.Matrix[0].Points); n != 11 {
		t.Fatalf("short range: %d points, want 11", n)
	}
	ctx := context.Background()
	for _, p := range []Params{
		{Query: `vector(1)`, Start: at(0), End: at(20000), Step: time.Second},
		{Query: `vector(1)`, Start: at(10), End: at(0), Step: time.Second},
		{Query: `vector(1)`, Start: at(0), End: at(10), Step: -time.Second},
	} {
		p.Tenant = "t"
		_, err := eng.Exec(ctx, p)
		var qe *Error
		if !errors.As(err, &qe) {
			t.Errorf("%+v: error %v, want a query error", p, err)
		}
	}
	// Series limit, with the remedy in the message.
	many := testStream{labels: labels.New("job", "many")}
	for i := 0; i < 30; i++ {
		many.entries = append(many.entries, entry(float64(i), fmt.Sprintf("id=%d", i)))
	}
	eng = newEngine(t, true, store.Options{}, many)
	for _, q := range []string{`count_over_time({job="many"} | logfmt [1m])`, `count_over_time({job="many"} | logfmt [1m]) > 0`} {
		_, err := eng.Exec(ctx, Params{Tenant: "t", Query: q, End: at(60), Instant: true, MaxSeries: 10})
		var sl *SeriesLimitError
		if !errors.As(err, &sl) || sl.Limit != 10 || !strings.Contains(err.Error(), "maximum number of series (10)") {
			t.Errorf("%s: error %v, want the series limit", q, err)
		}
	}
	// absent_over_time has one series whatever it scans.
	res, err := eng.Exec(ctx, Params{Tenant: "t", Query: `absent_over_time({job="many"} | logfmt [1m])`, End: at(60), Instant: true, MaxSeries: 10})
	if err != nil || len(res.Vector) != 0 {
		t.Fatalf("absent under the limit: %v %+v", err, res)
	}
	res, err = eng.Exec(ctx, Params{Tenant: "t", Query: `sum(count_over_time({job="many"} | logfmt [1m]))`, End: at(60), Instant: true, MaxSeries: 10})
	if err != nil || len(res.Vector) != 1 || res.Vector[0].V != 29 {
		t.Fatalf("sum under the limit: %v %+v", err, res)
	}
	_, err = eng.Exec(ctx, Params{Tenant: "t", Query: `count_over_time({job="many"} | logfmt [1m])`, Start: at(0), End: at(3600), Step: time.Second, MaxMetricMemory: 8 << 10})
	if err == nil || !strings.Contains(err.Error(), "metric query needs more than") {
		t.Errorf("memory limit: %v", err)
	}
}

func TestScalarsAndVectors(t *testing.T) {
	eng := newEngine(t, false, store.Options{}, edgeStreams()...)
	res := instantQuery(t, eng, `1 + 2 * 3`, 60)
	if res.Type != ResultScalar || res.Scalar.V != 7 || res.Scalar.T != ms(60) {
		t.Fatalf("1 + 2 * 3: %+v", res)
	}
	res = instantQuery(t, eng, `2 ^ 3 ^ 2`, 60) // right-associative: 2^9
	if res.Type != ResultScalar || res.Scalar.V != 512 {
		t.Fatalf("2 ^ 3 ^ 2: %+v", res)
	}
	res = instantQuery(t, eng, `1 > bool 2`, 60)
	if res.Type != ResultScalar || res.Scalar.V != 0 {
		t.Fatalf("1 > bool 2: %+v", res)
	}
	checkVector(t, eng, `vector(3)`, 60, `
{} 3
`)
	checkVector(t, eng, `vector(1) / 0`, 60, `
{} +Inf
`)
	checkVector(t, eng, `vector(0) / 0`, 60, `
{} NaN
`)
	checkVector(t, eng, `vector(-1) / 0`, 60, `
{} -Inf
`)
	checkVector(t, eng, `vector(7) % 4`, 60, `
{} 3
`)
	checkMatrix(t, eng, `1 + 1`, 0, 120, time.Minute, `
{} 0=2 60=2 120=2
`)
	// Scalar and vector operands, either side.
	checkVector(t, eng, `count_over_time({job="app"}[1m]) * 2`, 60, `
{host="a", job="app"} 6
`)
	checkVector(t, eng, `10 - count_over_time({job="app"}[1m])`, 60, `
{host="a", job="app"} 7
`)
	checkVector(t, eng, `count_over_time({job="app"}[1m]) > 2`, 60, `
{host="a", job="app"} 3
`)
	checkVector(t, eng, `count_over_time({job="app"}[1m]) > 5`, 60, "")
	checkVector(t, eng, `count_over_time({job="app"}[1m]) > bool 5`, 60, `
{host="a", job="app"} 0
`)
	// A comparison keeps the vector's value with the scalar on the left.
	checkVector(t, eng, `5 > count_over_time({job="app"}[1m])`, 60, `
{host="a", job="app"} 3
`)
	checkMatrix(t, eng, `count_over_time({job="app"}[1m]) >= 3`, 60, 180, time.Minute, `
{host="a", job="app"} 60=3
`)
	checkMatrix(t, eng, `sum(count_over_time({job="app"}[1m])) or vector(0)`, 60, 300, time.Minute, `
{} 60=3 120=2 180=2 240=1 300=0
`)
}

func TestPipelineErrorsFailTheQuery(t *testing.T) {
	for _, flush := range []bool{false, true} {
		eng := newEngine(t, flush, store.Options{}, unwrapStreams()...)
		ctx := context.Background()
		_, err := eng.Exec(ctx, Params{Tenant: "t", Query: `sum_over_time({job="svc"} | logfmt | unwrap level [1m])`, End: at(60), Instant: true})
		var pe *pipeline.PipelineError
		var qe *Error
		if !errors.As(err, &pe) || !errors.As(err, &qe) || pe.Err != pipeline.ErrSampleExtraction {
			t.Fatalf("flush=%v: error %v, want a pipeline error", flush, err)
		}
		if !strings.Contains(err.Error(), `__error__=""`) {
			t.Errorf("the message should say how to skip errors: %v", err)
		}
		// Filtered errors are fine, and so are errors outside every window.
		for _, q := range []string{
			`sum_over_time({job="svc"} | logfmt | unwrap level | __error__="" [1m])`,
			`count_over_time({job="svc"} | json | __error__="" [1m])`,
		} {
			res, err := eng.Exec(ctx, Params{Tenant: "t", Query: q, End: at(60), Instant: true})
			if err != nil || len(res.Vector) != 0 {
				t.Fatalf("%s: %v %+v", q, err, res)
			}
		}
		res, err := eng.Exec(ctx, Params{Tenant: "t", Query: `count_over_time({job="svc"} | json [1s])`, End: at(5), Instant: true})
		if err != nil || len(res.Vector) != 0 {
			t.Fatalf("an empty window: %v %+v", err, res)
		}
		// A sum pushed down does not parse what nobody reads, as in Loki.
		res, err = eng.Exec(ctx, Params{Tenant: "t", Query: `sum(count_over_time({job="svc"} | json [1m]))`, End: at(60), Instant: true})
		if err != nil || len(res.Vector) != 1 || res.Vector[0].V != 4 {
			t.Fatalf("pushed-down sum: %v %+v", err, res)
		}
		_, err = eng.Exec(ctx, Params{Tenant: "t", Query: `count_over_time({job="svc"} | json [1m])`, End: at(60), Instant: true})
		if !errors.As(err, &pe) || pe.Err != pipeline.ErrJSON {
			t.Fatalf("flush=%v: json on logfmt lines: %v", flush, err)
		}
	}
}

// TestCountWithoutDecompressing checks the fast path: with no pipeline,
// counts come from chunk and block headers and timestamps, and no line is
// decompressed.
func TestCountWithoutDecompressing(t *testing.T) {
	var streams []testStream
	want := map[string][]int{}
	for s := 0; s < 3; s++ {
		ts := testStream{labels: labels.New("job", "x", "s", fmt.Sprint(s))}
		for i := 0; i < 20000; i++ {
			sec := float64(i)*0.5 + float64(s)*0.1
			ts.entries = append(ts.entries, entry(sec, fmt.Sprintf("entry %d of stream %d with some padding to fill blocks %x", i, s, i*7919)))
		}
		streams = append(streams, ts)
	}
	eng := newEngine(t, true, store.Options{TargetChunkSize: 256 << 10, Chunk: chunk.Options{BlockSize: 16 << 10}}, streams...)
	// Brute force: steps every 7 minutes from 5m to 10000s, [3m] windows.
	for _, ts := range streams {
		var counts []int
		for t := 300.0; t <= 10000; t += 420 {
			n := 0
			for _, e := range ts.entries {
				sec := float64(e.Timestamp-t0.UnixNano()) / 1e9
				if sec > t-180 && sec <= t {
					n++
				}
			}
			counts = append(counts, n)
		}
		want[ts.labels.String()] = counts
	}
	for _, q := range []string{`count_over_time({job="x"}[3m])`, `sum by (s) (count_over_time({job="x"}[3m]))`, `sum(count_over_time({job="x"}[3m]))`} {
		res := rangeQuery(t, eng, q, 300, 10000, 7*time.Minute)
		if res.Stats.DecompressedBytes != 0 || res.Stats.DecompressedLines != 0 {
			t.Errorf("%s decompressed %d lines (%d bytes); want none", q, res.Stats.DecompressedLines, res.Stats.DecompressedBytes)
		}
		if res.Stats.ChunksRef == 0 {
			t.Errorf("%s: no chunks referenced", q)
		}
		for _, s := range res.Matrix {
			var w []int
			if s.Labels.Has("s") {
				w = want[labels.New("job", "x", "s", s.Labels.Get("s")).String()]
			} else {
				for k := range want[`{job="x", s="0"}`] {
					w = append(w, want[`{job="x", s="0"}`][k]+want[`{job="x", s="1"}`][k]+want[`{job="x", s="2"}`][k])
				}
			}
			if len(s.Points) != len(w) {
				t.Fatalf("%s %s: %d points, want %d", q, s.Labels, len(s.Points), len(w))
			}
			for k, p := range s.Points {
				if p.V != float64(w[k]) {
					t.Fatalf("%s %s step %d: %v, want %d", q, s.Labels, k, p.V, w[k])
				}
			}
		}
	}
	// Only headers and timestamp sections were read: a small share of the
	// stored bytes.
	var stored int64
	for _, sd := range eng.Store.Select("t", nil, 0, math.MaxInt64) {
		for _, c := range sd.Chunks {
			stored += int64(c.Size)
		}
	}
	if res := rangeQuery(t, eng, `sum(count_over_time({job="x"}[3m]))`, 300, 10000, 7*time.Minute); res.Stats.CompressedBytes <= 0 || res.Stats.CompressedBytes*4 > stored {
		t.Errorf("count read %d of %d stored bytes; want under a quarter", res.Stats.CompressedBytes, stored)
	}
	// A long window takes whole chunks from the index alone.
	res := instantQuery(t, eng, `sum(count_over_time({job="x"}[1d]))`, 20000)
	if res.Vector[0].V != 60000 || res.Stats.ChunksDecoded != 0 {
		t.Errorf("whole chunks: %v with %d chunks decoded", res.Vector[0].V, res.Stats.ChunksDecoded)
	}
	res = instantQuery(t, eng, `sum(bytes_over_time({job="x"}[1d]))`, 20000)
	var size int
	for _, s := range streams {
		for _, e := range s.entries {
			size += len(e.Line)
		}
	}
	if res.Vector[0].V != float64(size) || res.Stats.ChunksDecoded != 0 {
		t.Errorf("bytes of whole chunks: %v want %d, %d chunks decoded", res.Vector[0].V, size, res.Stats.ChunksDecoded)
	}
}

// TestStructuredMetadataInSeries: structured metadata becomes series
// labels unless the query sums it away; blocks without metadata still
// take the fast path.
func TestStructuredMetadataInSeries(t *testing.T) {
	s := testStream{labels: labels.New("job", "md")}
	for i := 0; i < 600; i++ {
		if i >= 300 && i < 320 {
			s.entries = append(s.entries, entry(float64(i+1), fmt.Sprintf("line %d padded to spread the entries over several blocks", i), "level", "error"))
		} else {
			s.entries = append(s.entries, entry(float64(i+1), fmt.Sprintf("line %d padded to spread the entries over several blocks", i)))
		}
	}
	for _, flush := range []bool{false, true} {
		eng := newEngine(t, flush, store.Options{Chunk: chunk.Options{BlockSize: 4 << 10}}, s)
		checkVector(t, eng, `count_over_time({job="md"}[10m])`, 600, `
{job="md"} 580
{job="md", level="error"} 20
`)
		checkVector(t, eng, `sum by (level) (count_over_time({job="md"}[10m]))`, 600, `
{} 580
{level="error"} 20
`)
		res := instantQuery(t, eng, `sum(count_over_time({job="md"}[10m]))`, 600)
		if len(res.Vector) != 1 || res.Vector[0].V != 600 || res.Stats.DecompressedLines != 0 {
			t.Errorf("flush=%v: sum: %s with %d lines decompressed", flush, fmtVector(res.Vector), res.Stats.DecompressedLines)
		}
		// Grouped by metadata, a count still decompresses no line: the
		// blocks with metadata are read for their metadata sections alone.
		res = instantQuery(t, eng, `count_over_time({job="md"}[10m])`, 600)
		if res.Stats.DecompressedLines != 0 || res.Stats.DecompressedBytes != 0 {
			t.Errorf("flush=%v: a count grouped by metadata decompressed %d lines (%d bytes)", flush, res.Stats.DecompressedLines, res.Stats.DecompressedBytes)
		}
	}
}

func TestDuplicatesInMetricQueries(t *testing.T) {
	st, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close(context.Background())
	ctx := context.Background()
	ls := labels.New("job", "dup")
	es := []chunk.Entry{entry(10, "same"), entry(10, "other"), entry(11, "same"), entry(20, "x")}
	for i := 0; i < 3; i++ { // a client resending after lost acknowledgements
		if err := st.Append(ctx, "t", []store.Stream{{Labels: ls, Entries: es}}); err != nil {
			t.Fatal(err)
		}
		if i == 1 {
			if err := st.Flush(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	eng := &Engine{Store: st}
	// With a pipeline, duplicates go as in log queries.
	res := instantQuery(t, eng, `count_over_time({job="dup"} |= "" [1m])`, 60)
	if len(res.Vector) != 1 || res.Vector[0].V != 4 || res.Stats.Duplicates != 8 {
		t.Errorf("pipeline: %s, %d duplicates; want 4 and 8", fmtVector(res.Vector), res.Stats.Duplicates)
	}
	res = instantQuery(t, eng, `sum_over_time({job="dup"} | label_format n="1" | unwrap n [1m])`, 60)
	if len(res.Vector) != 1 || res.Vector[0].V != 4 {
		t.Errorf("unwrap: %s", fmtVector(res.Vector))
	}
	// The fast path counts what is stored.
	res = instantQuery(t, eng, `count_over_time({job="dup"}[1m])`, 60)
	if len(res.Vector) != 1 || res.Vector[0].V != 12 {
		t.Errorf("fast path: %s, want every stored entry (12)", fmtVector(res.Vector))
	}
}

func TestMetricQueryErrors(t *testing.T) {
	eng := newEngine(t, false, store.Options{}, edgeStreams()...)
	for _, q := range []string{
		`count_over_time({job="app"}[1m]) / on() count_over_time({job="app"} | regexp "line at (?P<sec>\\d+)" [1m])`,
		`label_replace(count_over_time({job="app"} | label_format host="b" [1m]) or count_over_time({job="app"}[1m]), "host", "", "host", ".*")`,
	} {
		_, err := eng.Exec(context.Background(), Params{Tenant: "t", Query: q, End: at(60), Instant: true})
		var qe *Error
		if !errors.As(err, &qe) {
			t.Errorf("%s: %v, want a query error", q, err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := eng.Exec(ctx, Params{Tenant: "t", Query: `count_over_time({job="app"}[1m])`, End: at(60), Instant: true}); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled: %v", err)
	}
}

func TestNaNAndInfFormatting(t *testing.T) {
	if fmtValue(math.Inf(1)) != "+Inf" || fmtValue(math.NaN()) != "NaN" {
		t.Fatal("fmtValue")
	}
}

// TestCountDamagedTimestampSections: a count that reads timestamp sections
// alone (no block checksum covers them by themselves) still refuses damaged
// ones with an error naming the chunk, never a wrong number.
func TestCountDamagedTimestampSections(t *testing.T) {
	dir := t.TempDir()
	st, err := store.Open(dir, store.Options{Chunk: chunk.Options{BlockSize: 16 << 10}})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close(context.Background())
	var es []chunk.Entry
	for i := 0; i < 20000; i++ {
		es = append(es, entry(float64(i)*0.5, fmt.Sprintf("entry %d with some padding to fill blocks %x", i, i*7919)))
	}
	ctx := context.Background()
	if err := st.Append(ctx, "t", []store.Stream{{Labels: labels.New("job", "x"), Entries: es}}); err != nil {
		t.Fatal(err)
	}
	if err := st.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	eng := &Engine{Store: st}
	if res := rangeQuery(t, eng, `sum(count_over_time({job="x"}[3m]))`, 300, 10000, 7*time.Minute); len(res.Matrix) != 1 {
		t.Fatalf("before damage: %d series", len(res.Matrix))
	}

	// Flip every byte of every timestamp section in the segment files.
	damaged := 0
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !strings.HasSuffix(path, ".seg") {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		// A segment is "LSSEG001" and then chunks back to back
		// (docs/formats/store.md).
		for pos := len("LSSEG001"); pos < len(b); {
			c, n, err := chunk.DecodeFirst(b[pos:])
			if err != nil {
				return fmt.Errorf("%s at %d: %w", path, pos, err)
			}
			for i := range c.Meta().Blocks {
				off, size, _ := c.TimestampSection(i)
				for k := pos + off; k < pos+off+size; k++ {
					b[k] ^= 0x5a
				}
				damaged++
			}
			pos += n
		}
		return os.WriteFile(path, b, 0o644)
	})
	if err != nil || damaged == 0 {
		t.Fatalf("damaging sections: %v (%d damaged)", err, damaged)
	}
	for _, q := range []string{`sum(count_over_time({job="x"}[3m]))`, `sum(count_over_time({job="x"} |= "entry" [3m]))`} {
		_, err := eng.Exec(ctx, Params{Tenant: "t", Query: q, Start: at(300), End: at(10000), Step: 7 * time.Minute})
		if err == nil || !strings.Contains(err.Error(), "chunk") {
			t.Errorf("%s over damaged sections: err %v, want an error naming the chunk", q, err)
		}
	}
}
