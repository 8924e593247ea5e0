package lokiapi

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/logsift/logsift/pkg/chunk"
	"github.com/logsift/logsift/pkg/labels"
	"github.com/logsift/logsift/pkg/patterns"
	"github.com/logsift/logsift/pkg/query"
	"github.com/logsift/logsift/pkg/store"
)

// TestPatternSamplingScalesCounts mines a range larger than the line
// budget: half the chunks are read, and the counts of each step are
// scaled back to the lines the step holds.
func TestPatternSamplingScalesCounts(t *testing.T) {
	st, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close(context.Background())
	ctx := context.Background()
	t0 := time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC)
	const steps, perStep = 20, 100
	for k := range steps {
		var batch []store.Stream
		for _, pod := range []string{"a", "b"} {
			var es []chunk.Entry
			for i := range perStep {
				line := fmt.Sprintf("user u%d logged in from 10.0.0.%d", i, i)
				if i%4 == 3 {
					line = fmt.Sprintf("cache miss for key k%d", i)
				}
				ts := t0.Add(time.Duration(k)*time.Minute + time.Duration(i)*500*time.Millisecond)
				es = append(es, chunk.Entry{Timestamp: ts.UnixNano(), Line: []byte(line), Metadata: labels.New("detected_level", "info")})
			}
			batch = append(batch, store.Stream{Labels: labels.New("app", "x", "pod", pod), Entries: es})
		}
		if err := st.Append(ctx, "t", batch); err != nil {
			t.Fatal(err)
		}
		if err := st.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	a := &API{Engine: &query.Engine{Store: st}, Store: st}
	from := t0.UnixNano()
	m := &patternMiner{
		api: a, from: from, through: t0.Add(steps * time.Minute).UnixNano(), step: int64(time.Minute),
		budget: steps * perStep, // half of the lines
		miner:  patterns.New(patterns.Options{}),
		counts: map[patternKey]map[int64]float64{},
	}
	res, err := m.run(ctx, "t", []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "app", "x")})
	if err != nil {
		t.Fatal(err)
	}
	var read float64
	for _, n := range m.read {
		read += n
	}
	if read > steps*perStep*1.1 || read < steps*perStep*0.9 {
		t.Fatalf("read %v of %d lines, budget %d", read, 2*steps*perStep, steps*perStep)
	}
	want := map[string]float64{
		"user <_> logged in from <_>": 2 * steps * perStep * 3 / 4,
		"cache miss for key <_>":      2 * steps * perStep / 4,
	}
	if len(res) != 2 {
		t.Fatalf("patterns: %+v", res)
	}
	for _, p := range res {
		var total float64
		for _, s := range p.Samples {
			total += s[1]
		}
		if w := want[p.Pattern]; math.Abs(total-w) > w*0.05 || p.Level != "info" {
			t.Errorf("%q (%s): %v lines after scaling, want about %v", p.Pattern, p.Level, total, w)
		}
		if len(p.Samples) != steps {
			t.Errorf("%q: %d steps with samples, want %d", p.Pattern, len(p.Samples), steps)
		}
	}
}

// BenchmarkPatternsAtBudget mines a range that holds the line budget:
// 100,000 lines in ten streams, stored in chunks.
func BenchmarkPatternsAtBudget(b *testing.B) {
	st, err := store.Open(b.TempDir(), store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close(context.Background())
	ctx := context.Background()
	t0 := time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC)
	shapes := []string{
		"level=info msg=\"request done\" path=/api/v%d/items status=%d duration=%dms",
		"connection from 10.0.%d.%d refused after %d retries",
		"user u%d updated profile field %d in %dms",
		"GC pause %dms heap %dMB goroutines %d",
	}
	for s := range 10 {
		var es []chunk.Entry
		for i := range patternLineBudget / 10 {
			line := fmt.Sprintf(shapes[(i+s)%len(shapes)], i%7, i%500, i%97)
			es = append(es, chunk.Entry{Timestamp: t0.Add(time.Duration(i) * 30 * time.Millisecond).UnixNano(), Line: []byte(line)})
		}
		if err := st.Append(ctx, "t", []store.Stream{{Labels: labels.New("app", "bench", "pod", fmt.Sprint(s)), Entries: es}}); err != nil {
			b.Fatal(err)
		}
	}
	if err := st.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	a := &API{Engine: &query.Engine{Store: st}, Store: st}
	ms := []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "app", "bench")}
	b.ResetTimer()
	for range b.N {
		m := &patternMiner{
			api: a, from: t0.UnixNano(), through: t0.Add(time.Hour).UnixNano(), step: int64(time.Minute),
			budget: patternLineBudget, miner: patterns.New(patterns.Options{}), counts: map[patternKey]map[int64]float64{},
		}
		res, err := m.run(ctx, "t", ms)
		if err != nil || len(res) == 0 {
			b.Fatalf("%v %d", err, len(res))
		}
	}
	b.ReportMetric(float64(patternLineBudget*b.N)/b.Elapsed().Seconds(), "lines/s")
}
