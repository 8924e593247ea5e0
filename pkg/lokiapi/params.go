// Package lokiapi serves Loki's HTTP query API over logsift's store and
// query engine: queries, labels and series, tail, index statistics and
// volumes, patterns, detected labels and fields, format_query, buildinfo
// and Drilldown's limits, with Loki's parameter formats, response shapes,
// error conventions and per-tenant query limits, so that Grafana's Loki
// datasource, Grafana Logs Drilldown, logcli and other Loki clients work
// unchanged. docs/api.md is the reference.
package lokiapi

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/logsift/logsift/pkg/logql"
	"github.com/logsift/logsift/pkg/query"
)

// paramError is a client error: answered with 400 and its text.
type paramError struct{ msg string }

func (e *paramError) Error() string { return e.msg }

func badParam(format string, args ...any) error {
	return &paramError{msg: fmt.Sprintf(format, args...)}
}

// ParseTime reads a timestamp the way Loki does: a number with a '.' is
// float seconds; an integer of up to 10 digits is seconds, a longer one
// nanoseconds; anything else must be RFC3339 (with optional fraction).
// NaN and infinities are refused. v == "" gives def. Every HTTP API of the
// server reads times with it (pkg/search too), so they all agree.
func ParseTime(name, v string, def time.Time) (time.Time, error) {
	if v == "" {
		return def, nil
	}
	if strings.Contains(v, ".") {
		if f, err := strconv.ParseFloat(v, 64); err == nil && !math.IsInf(f, 0) && !math.IsNaN(f) {
			sec, frac := math.Modf(f)
			// Round to microseconds: float seconds carry no more.
			return time.Unix(int64(sec), int64(math.Round(frac*1e6))*1e3), nil
		}
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if len(strings.TrimPrefix(v, "-")) <= 10 {
			return time.Unix(n, 0), nil
		}
		return time.Unix(0, n), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	return time.Time{}, badParam("invalid %s %q: use Unix nanoseconds, Unix seconds (optionally with a fraction) or RFC3339", name, v)
}

// ParseDuration reads a step or `since`: a Prometheus duration (5m, 1h30m)
// or a number of seconds (float allowed). Negative, NaN and out-of-range
// values are refused.
func ParseDuration(name, v string) (time.Duration, error) {
	if f, err := strconv.ParseFloat(v, 64); err == nil {
		if !(f >= 0 && f <= float64(math.MaxInt64)/1e9) { // false for NaN too
			return 0, badParam("invalid %s %q: out of range", name, v)
		}
		return time.Duration(f * float64(time.Second)), nil
	}
	d, err := logql.ParseDuration(v)
	if err != nil {
		return 0, badParam("invalid %s %q: use seconds or a duration such as 1h30m: %v", name, v, err)
	}
	if d < 0 {
		return 0, badParam("invalid %s %q: negative", name, v)
	}
	return d, nil
}

// parseStep reads the step of a range query; Loki refuses zero and
// negative steps rather than taking a default.
func parseStep(v string) (time.Duration, error) {
	if strings.HasPrefix(strings.TrimSpace(v), "-") {
		return 0, badParam("zero or negative query resolution step widths are not accepted. Try a positive integer")
	}
	d, err := ParseDuration("step", v)
	if err != nil {
		return 0, err
	}
	if d <= 0 {
		return 0, badParam("zero or negative query resolution step widths are not accepted. Try a positive integer")
	}
	return d, nil
}

// rangeParams are the common parameters of range-style endpoints.
type rangeParams struct {
	start, end time.Time
}

// parseRange reads start/end/since with Loki's defaults: end is now, start
// is end minus `since` (default one hour).
func parseRange(r *http.Request, now time.Time) (rangeParams, error) {
	end, err := ParseTime("end", r.Form.Get("end"), now)
	if err != nil {
		return rangeParams{}, err
	}
	since := time.Hour
	if v := r.Form.Get("since"); v != "" {
		if since, err = ParseDuration("since", v); err != nil {
			return rangeParams{}, err
		}
	}
	start, err := ParseTime("start", r.Form.Get("start"), end.Add(-since))
	if err != nil {
		return rangeParams{}, err
	}
	if end.Before(start) {
		return rangeParams{}, badParam("end timestamp must not be before start time")
	}
	return rangeParams{start: start, end: end}, nil
}

func parseLimit(r *http.Request, def, max int) (int, error) {
	v := r.Form.Get("limit")
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		return 0, badParam("invalid limit %q: must be a positive integer", v)
	}
	if max > 0 && n > max {
		return 0, badParam("max entries limit per query exceeded, limit > max_entries_limit_per_query (%d > %d); lower the limit or raise query.max_entries_limit_per_query", n, max)
	}
	return n, nil
}

func parseDirection(r *http.Request) (query.Direction, error) {
	switch strings.ToLower(r.Form.Get("direction")) {
	case "", "backward":
		return query.Backward, nil
	case "forward":
		return query.Forward, nil
	}
	return 0, badParam("invalid direction %q: use forward or backward", r.Form.Get("direction"))
}
