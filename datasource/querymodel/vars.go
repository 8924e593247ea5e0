package querymodel

import (
	"errors"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/logsift/logsift/pkg/logql"
)

// Vars are the values of Grafana's built-in variables for one query.
type Vars struct {
	Interval time.Duration // $__interval
	Range    time.Duration // $__range
	Step     time.Duration // $__auto of a range query
	From, To time.Time     // $__from, $__to
	Type     string        // TypeInstant makes $__auto the whole range
}

// Interpolate replaces Grafana's built-in variables, in both the $name
// and the ${name} spelling, as Grafana's Loki datasource does:
// $__interval and $__auto as LogQL durations, $__interval_ms and
// $__range_ms in milliseconds, $__range_s in whole seconds, $__range as
// whole seconds with an "s", $__from and $__to in Unix milliseconds.
// $__auto is the step of a range query and the whole range of an instant
// query. Other variables are left for the server to reject.
func Interpolate(expr string, v Vars) string {
	if !strings.Contains(expr, "$") {
		return expr
	}
	rangeS := int64(math.Round(v.Range.Seconds()))
	auto := logql.FormatDuration(max(v.Step, time.Millisecond))
	if v.Type == TypeInstant {
		auto = strconv.FormatInt(rangeS, 10) + "s"
	}
	vals := [][2]string{
		// Longer names first: the replacer tries them in this order.
		{"__interval_ms", strconv.FormatInt(v.Interval.Milliseconds(), 10)},
		{"__interval", logql.FormatDuration(max(v.Interval, time.Millisecond))},
		{"__range_ms", strconv.FormatInt(v.Range.Milliseconds(), 10)},
		{"__range_s", strconv.FormatInt(rangeS, 10)},
		{"__range", strconv.FormatInt(rangeS, 10) + "s"},
		{"__auto", auto},
		{"__from", strconv.FormatInt(v.From.UnixMilli(), 10)},
		{"__to", strconv.FormatInt(v.To.UnixMilli(), 10)},
	}
	pairs := make([]string, 0, 4*len(vals))
	for _, kv := range vals {
		pairs = append(pairs, "${"+kv[0]+"}", kv[1])
	}
	for _, kv := range vals {
		pairs = append(pairs, "$"+kv[0], kv[1])
	}
	return strings.NewReplacer(pairs...).Replace(expr)
}

// ParseDuration reads a step: a LogQL duration ("30s", "1m30s", "1d") or
// a number of seconds ("15", "0.5").
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, errors.New("empty duration")
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		if math.IsNaN(f) || f < 0 || f > float64(math.MaxInt64)/1e9 {
			return 0, errors.New("duration out of range")
		}
		return time.Duration(f * float64(time.Second)), nil
	}
	return logql.ParseDuration(s)
}

// niceIntervals are the intervals roundInterval picks from.
var niceIntervals = []time.Duration{
	time.Millisecond, 2 * time.Millisecond, 5 * time.Millisecond, 10 * time.Millisecond,
	20 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond,
	500 * time.Millisecond, time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second,
	15 * time.Second, 20 * time.Second, 30 * time.Second, time.Minute, 2 * time.Minute,
	5 * time.Minute, 10 * time.Minute, 15 * time.Minute, 20 * time.Minute, 30 * time.Minute,
	time.Hour, 2 * time.Hour, 3 * time.Hour, 6 * time.Hour, 12 * time.Hour, 24 * time.Hour,
	7 * 24 * time.Hour, 30 * 24 * time.Hour, 365 * 24 * time.Hour,
}

// roundInterval picks the nice interval nearest to d, as Grafana rounds
// the interval it derives from the time range and the panel's width.
func roundInterval(d time.Duration) time.Duration {
	if d <= niceIntervals[0] {
		return niceIntervals[0]
	}
	for i := 1; i < len(niceIntervals); i++ {
		lo, hi := niceIntervals[i-1], niceIntervals[i]
		if d <= hi {
			// Geometric midpoint: 7s rounds to 5s, 8s to 10s.
			if float64(d) < math.Sqrt(float64(lo)*float64(hi)) {
				return lo
			}
			return hi
		}
	}
	return niceIntervals[len(niceIntervals)-1]
}

// UnresolvedVariable returns the first template variable of expr outside
// its string literals ($name, ${name} or [[name]]), or "". LogQL has no
// use for these characters outside strings, so one that is left there is
// a variable nobody replaced.
func UnresolvedVariable(expr string) string {
	for i := 0; i < len(expr); i++ {
		switch c := expr[i]; c {
		case '"', '`':
			// Skip the string literal; a backslash escapes within "".
			for i++; i < len(expr) && expr[i] != c; i++ {
				if c == '"' && expr[i] == '\\' {
					i++
				}
			}
		case '$':
			j := i + 1
			if j < len(expr) && expr[j] == '{' {
				if k := strings.IndexByte(expr[j:], '}'); k > 0 {
					return expr[i : j+k+1]
				}
				return expr[i:]
			}
			for j < len(expr) && (expr[j] == '_' || expr[j] >= 'a' && expr[j] <= 'z' || expr[j] >= 'A' && expr[j] <= 'Z' || expr[j] >= '0' && expr[j] <= '9') {
				j++
			}
			if j > i+1 {
				return expr[i:j]
			}
		case '[':
			// In "[[[v]]]" the first bracket is a range's.
			run := 1
			for i+run < len(expr) && expr[i+run] == '[' {
				run++
			}
			if run >= 2 {
				at := i + run - 2
				if k := strings.Index(expr[at:], "]]"); k > 2 {
					return expr[at : at+k+2]
				}
			}
			i += run - 1
		}
	}
	return ""
}
