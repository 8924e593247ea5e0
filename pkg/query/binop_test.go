package query

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/logsift/logsift/pkg/labels"
	"github.com/logsift/logsift/pkg/store"
)

// promDocStreams rebuilds the series of the vector matching examples in
// Prometheus' documentation (which Loki's documentation follows) as log
// counts over [5m] at t=300s:
//
//	method_code:errors:rate5m{method="get", code="500"}  24
//	method_code:errors:rate5m{method="get", code="404"}  30
//	method_code:errors:rate5m{method="put", code="501"}  3
//	method_code:errors:rate5m{method="post", code="500"} 6
//	method_code:errors:rate5m{method="post", code="404"} 21
//	method:http_requests:rate5m{method="get"}  600
//	method:http_requests:rate5m{method="del"}  34
//	method:http_requests:rate5m{method="post"} 120
func promDocStreams() []testStream {
	var out []testStream
	add := func(n int, kv ...string) {
		s := testStream{labels: labels.New(kv...)}
		for i := 0; i < n; i++ {
			s.entries = append(s.entries, entry(1+float64(i)*0.4, fmt.Sprintf("request %d", i)))
		}
		out = append(out, s)
	}
	add(24, "job", "errors", "method", "get", "code", "500")
	add(30, "job", "errors", "method", "get", "code", "404")
	add(3, "job", "errors", "method", "put", "code", "501")
	add(6, "job", "errors", "method", "post", "code", "500")
	add(21, "job", "errors", "method", "post", "code", "404")
	add(600, "job", "requests", "method", "get")
	add(34, "job", "requests", "method", "del")
	add(120, "job", "requests", "method", "post")
	add(1, "job", "owners", "method", "get", "team", "a")
	add(1, "job", "owners", "method", "post", "team", "b")
	return out
}

const (
	errs   = `sum by (method, code) (count_over_time({job="errors"}[5m]))`
	reqs   = `sum by (method) (count_over_time({job="requests"}[5m]))`
	owners = `sum by (method, team) (count_over_time({job="owners"}[5m]))`
)

func TestVectorMatching(t *testing.T) {
	eng := newEngine(t, true, store.Options{}, promDocStreams()...)
	for _, c := range []struct{ q, want string }{
		// The documentation's one-to-one example.
		{`sum by (method, code) (count_over_time({job="errors", code="500"}[5m])) / ignoring(code) ` + reqs, `
{method="get"} 0.04
{method="post"} 0.05
`},
		// Its many-to-one example.
		{errs + ` / ignoring(code) group_left ` + reqs, `
{code="404", method="get"} 0.05
{code="404", method="post"} 0.175
{code="500", method="get"} 0.04
{code="500", method="post"} 0.05
`},
		{reqs + ` / ignoring(code) group_right ` + errs, `
{code="404", method="get"} 20
{code="404", method="post"} 5.71429
{code="500", method="get"} 25
{code="500", method="post"} 20
`},
		// group_left(team) copies the label from the "one" side.
		{errs + ` * on(method) group_left(team) ` + owners, `
{code="404", method="get", team="a"} 30
{code="404", method="post", team="b"} 21
{code="500", method="get", team="a"} 24
{code="500", method="post", team="b"} 6
`},
		{errs + ` - ` + errs, `
{code="404", method="get"} 0
{code="404", method="post"} 0
{code="500", method="get"} 0
{code="500", method="post"} 0
{code="501", method="put"} 0
`},
		{errs + ` / ` + reqs, ``},
		{`sum by (method) (` + errs + `) / on(method) ` + reqs, `
{method="get"} 0.09
{method="post"} 0.225
`},
		// Comparisons filter and keep the left value, or give 0/1.
		{errs + ` > 20`, `
{code="404", method="get"} 30
{code="404", method="post"} 21
{code="500", method="get"} 24
`},
		{errs + ` > bool 20`, `
{code="404", method="get"} 1
{code="404", method="post"} 1
{code="500", method="get"} 1
{code="500", method="post"} 0
{code="501", method="put"} 0
`},
		{errs + ` > ignoring(code) group_left ` + reqs + ` / 30`, `
{code="404", method="get"} 30
{code="404", method="post"} 21
{code="500", method="get"} 24
{code="500", method="post"} 6
`},
		{errs + ` == bool ignoring(code) group_left ` + reqs + ` / 25`, `
{code="404", method="get"} 0
{code="404", method="post"} 0
{code="500", method="get"} 1
{code="500", method="post"} 0
`},
		// Set operators.
		{errs + ` and on(method) ` + reqs, `
{code="404", method="get"} 30
{code="404", method="post"} 21
{code="500", method="get"} 24
{code="500", method="post"} 6
`},
		{errs + ` unless on(method) ` + reqs, `
{code="501", method="put"} 3
`},
		{reqs + ` or on(method) ` + errs, `
{code="501", method="put"} 3
{method="del"} 34
{method="get"} 600
{method="post"} 120
`},
		{reqs + ` or ` + errs, `
{code="404", method="get"} 30
{code="404", method="post"} 21
{code="500", method="get"} 24
{code="500", method="post"} 6
{code="501", method="put"} 3
{method="del"} 34
{method="get"} 600
{method="post"} 120
`},
		{errs + ` and ` + errs + ` > 20`, `
{code="404", method="get"} 30
{code="404", method="post"} 21
{code="500", method="get"} 24
`},
	} {
		checkVector(t, eng, c.q, 300, c.want)
	}
	for _, c := range []struct{ q, msg string }{
		{errs + ` / on(method) ` + errs, `found duplicate series for the match group {method="get"} on the right hand-side of the operation`},
		{reqs + ` / on(method) group_right ` + errs + ` * on(method) group_left ` + errs, `many-to-many matching not allowed`},
		{errs + ` / on(method) ` + reqs, `multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)`},
		{`label_replace(` + errs + `, "code", "", "code", ".*")`, `vector cannot contain metrics with the same labelset`},
	} {
		_, err := eng.Exec(context.Background(), Params{Tenant: "t", Query: c.q, End: at(300), Instant: true})
		var qe *Error
		if !errors.As(err, &qe) || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: error %v, want one with %q", c.q, err, c.msg)
		}
	}
}

func TestVectorAggregations(t *testing.T) {
	eng := newEngine(t, true, store.Options{}, promDocStreams()...)
	for _, c := range []struct{ q, want string }{
		{`sum(` + errs + `)`, "{} 84\n"},
		{`sum by (method) (` + errs + `)`, "{method=\"get\"} 54\n{method=\"post\"} 27\n{method=\"put\"} 3\n"},
		{`sum without (code) (` + errs + `)`, "{method=\"get\"} 54\n{method=\"post\"} 27\n{method=\"put\"} 3\n"},
		{`avg by (code) (` + errs + `)`, "{code=\"404\"} 25.5\n{code=\"500\"} 15\n{code=\"501\"} 3\n"},
		{`min by (code) (` + errs + `)`, "{code=\"404\"} 21\n{code=\"500\"} 6\n{code=\"501\"} 3\n"},
		{`max by (code) (` + errs + `)`, "{code=\"404\"} 30\n{code=\"500\"} 24\n{code=\"501\"} 3\n"},
		{`count by (method) (` + errs + `)`, "{method=\"get\"} 2\n{method=\"post\"} 2\n{method=\"put\"} 1\n"},
		{`count(` + errs + `)`, "{} 5\n"},
		{`stdvar(` + errs + `)`, "{} 110.16\n"},
		{`stddev(` + errs + `)`, "{} 10.4957\n"},
		{`stddev by (method) (` + errs + `)`, "{method=\"get\"} 3\n{method=\"post\"} 7.5\n{method=\"put\"} 0\n"},
		{`topk(2, ` + errs + `)`, "{code=\"404\", method=\"get\"} 30\n{code=\"500\", method=\"get\"} 24\n"},
		{`bottomk by (method) (1, ` + errs + `)`, "{code=\"500\", method=\"get\"} 24\n{code=\"500\", method=\"post\"} 6\n{code=\"501\", method=\"put\"} 3\n"},
		{`topk by (code) (1, ` + errs + `)`, "{code=\"404\", method=\"get\"} 30\n{code=\"500\", method=\"get\"} 24\n{code=\"501\", method=\"put\"} 3\n"},
		{`topk(10, ` + reqs + `)`, "{method=\"del\"} 34\n{method=\"get\"} 600\n{method=\"post\"} 120\n"},
		// sort and sort_desc order an instant vector by value.
		{`sort(` + errs + `)`, "{code=\"501\", method=\"put\"} 3\n{code=\"500\", method=\"post\"} 6\n{code=\"404\", method=\"post\"} 21\n{code=\"500\", method=\"get\"} 24\n{code=\"404\", method=\"get\"} 30\n"},
		{`sort_desc(` + errs + `)`, "{code=\"404\", method=\"get\"} 30\n{code=\"500\", method=\"get\"} 24\n{code=\"404\", method=\"post\"} 21\n{code=\"500\", method=\"post\"} 6\n{code=\"501\", method=\"put\"} 3\n"},
		// Not pushed down: the sum runs over the series of the range
		// aggregation.
		{`sum by (method) (count_over_time({job="errors"}[5m]) > 10)`, "{method=\"get\"} 54\n{method=\"post\"} 21\n"},
		{`max(avg_over_time({job="errors"} | label_format v="{{.code}}" | unwrap v [5m]) by (method))`, "{} 501\n"},
		// label_replace.
		{`label_replace(` + reqs + `, "foo", "$1-x", "method", "(g.*)")`, "{foo=\"get-x\", method=\"get\"} 600\n{method=\"del\"} 34\n{method=\"post\"} 120\n"},
		{`label_replace(` + reqs + `, "short", "${m}", "method", "(?P<m>.).*")`, "{method=\"del\", short=\"d\"} 34\n{method=\"get\", short=\"g\"} 600\n{method=\"post\", short=\"p\"} 120\n"},
		{`label_replace(` + reqs + `, "foo", "$1", "method", "e")`, "{method=\"del\"} 34\n{method=\"get\"} 600\n{method=\"post\"} 120\n"},
		{`label_replace(` + reqs + `, "method", "", "method", "get")`, "{} 600\n{method=\"del\"} 34\n{method=\"post\"} 120\n"},
		{`label_replace(` + reqs + `, "x", "y", "nolabel", "")`, "{method=\"del\", x=\"y\"} 34\n{method=\"get\", x=\"y\"} 600\n{method=\"post\", x=\"y\"} 120\n"},
	} {
		checkVector(t, eng, c.q, 300, c.want)
	}
}

// TestTopkPerStep: in a range query topk picks per step, so a series
// appears only at the steps where it ranks.
func TestTopkPerStep(t *testing.T) {
	a := testStream{labels: labels.New("job", "t", "s", "a")}
	b := testStream{labels: labels.New("job", "t", "s", "b")}
	for i := 0; i < 10; i++ {
		a.entries = append(a.entries, entry(float64(i)+1, "x"))
	}
	for i := 0; i < 5; i++ {
		b.entries = append(b.entries, entry(float64(i)+61, "x"))
	}
	eng := newEngine(t, false, store.Options{}, a, b)
	checkMatrix(t, eng, `topk(1, count_over_time({job="t"}[1m]))`, 60, 180, time.Minute, `
{job="t", s="a"} 60=10
{job="t", s="b"} 120=5
`)
	checkMatrix(t, eng, `sort_desc(count_over_time({job="t"}[1m]))`, 60, 120, time.Minute, `
{job="t", s="a"} 60=10
{job="t", s="b"} 120=5
`)
	checkMatrix(t, eng, `count_over_time({job="t"}[2m]) / on() group_left sum(count_over_time({job="t"}[2m]))`, 60, 120, time.Minute, `
{job="t", s="a"} 60=1 120=0.666667
{job="t", s="b"} 120=0.333333
`)
}

// TestLokiDocExamples runs the examples of Loki's LogQL reference on data
// whose answers follow from what the documentation says they compute.
func TestLokiDocExamples(t *testing.T) {
	foo := testStream{labels: labels.New("app", "foo", "region", "eu")}
	bar := testStream{labels: labels.New("app", "bar", "region", "us")}
	for i := 0; i < 60; i++ {
		level := "info"
		switch {
		case i%6 == 0:
			level = "error"
		case i%4 == 0:
			level = "warn"
		}
		foo.entries = append(foo.entries, entry(float64(i)+0.5, fmt.Sprintf("level=%s GET /x", level)))
		if i%3 == 0 {
			bar.entries = append(bar.entries, entry(float64(i)+0.5, "level=info POST /y"))
		}
	}
	// foo in (0,60]: 60 lines, 10 errors (i%6==0), 10 warns (i%4==0, not %6).
	eng := newEngine(t, true, store.Options{}, foo, bar)
	res := instantQuery(t, eng, `1 + 1`, 60)
	if res.Type != ResultScalar || res.Scalar.V != 2 {
		t.Fatalf("health check: %+v", res)
	}
	for _, c := range []struct{ q, want string }{
		{`sum(rate({app="foo"}[1m])) * 2`, "{} 2\n"},
		{`sum(rate({app="foo"} |= "warn" [1m])) / sum(rate({app="foo"} |= "error" [1m]))`, "{} 1\n"},
		// "the intersection of these queries, effectively rate({app="bar"})"
		{`rate({app=~"foo|bar"}[1m]) and rate({app="bar"}[1m])`, "{app=\"bar\", region=\"us\"} 0.333333\n"},
		{`rate({app="bar"}[1m])`, "{app=\"bar\", region=\"us\"} 0.333333\n"},
		{`count_over_time({app="foo"}[1m]) > 10`, "{app=\"foo\", region=\"eu\"} 60\n"},
		{`sum(count_over_time({app="foo"}[1m])) > bool 100`, "{} 0\n"},
		{`sum(count_over_time({app=~"foo|bar"}[1m])) by (region)`, "{region=\"eu\"} 60\n{region=\"us\"} 20\n"},
		{`avg(rate(({app=~"foo|bar"} |= "GET")[10s])) by (region)`, "{region=\"eu\"} 1\n"},
		{`topk(1, sum(rate({app=~"foo|bar"}[1m])) by (app))`, "{app=\"foo\"} 1\n"},
		{`sum by (level) (count_over_time({app="foo"} | logfmt [1m]))`, "{level=\"error\"} 10\n{level=\"info\"} 40\n{level=\"warn\"} 10\n"},
		{`rate(({app="foo"} |= "level=error" != "POST")[10s])`, "{app=\"foo\", region=\"eu\"} 0.1\n"},
	} {
		checkVector(t, eng, c.q, 60, c.want)
	}
}
