package render

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/backend/gtime"
	"github.com/grafana/grafana-plugin-sdk-go/data"
)

// PromQuery is a Prometheus panel query as Grafana's Prometheus
// datasource runs it (pkg/promlib/models in Grafana): the built-in
// variables written in, the step, and the range aligned to it.
type PromQuery struct {
	RefID      string
	Expr       string
	Legend     string
	Instant    bool
	Step       time.Duration
	Start, End time.Time
}

// NewPromQuery resolves a Prometheus target for a panel whose frontend
// interval is interval (already at least the scrape interval), over r,
// with maxDataPoints points, scraped every scrape (the datasource's
// timeInterval).
func NewPromQuery(t Target, r TimeRange, interval time.Duration, maxDataPoints int64, scrape time.Duration) PromQuery {
	// The step: the range over the data points, rounded, at least the
	// frontend's interval and at least range/11000 (Prometheus' limit).
	step := gtime.RoundInterval(r.To.Sub(r.From) / time.Duration(maxDataPoints))
	if step < interval {
		step = interval
	}
	if safe := gtime.RoundInterval(r.To.Sub(r.From) / 11000); step < safe {
		step = safe
	}
	rate := max(interval+scrape, 4*scrape)
	rangeMs := r.To.Sub(r.From).Milliseconds()
	rangeS := int64(math.Round(float64(rangeMs) / 1000))
	expr := strings.NewReplacer(
		"$__interval_ms", strconv.FormatInt(step.Milliseconds(), 10),
		"${__interval_ms}", strconv.FormatInt(step.Milliseconds(), 10),
		"$__interval", gtime.FormatInterval(step),
		"${__interval}", gtime.FormatInterval(step),
		"$__range_ms", strconv.FormatInt(rangeMs, 10),
		"${__range_ms}", strconv.FormatInt(rangeMs, 10),
		"$__range_s", strconv.FormatInt(rangeS, 10),
		"${__range_s}", strconv.FormatInt(rangeS, 10),
		"$__range", strconv.FormatInt(rangeS, 10)+"s",
		"${__range}", strconv.FormatInt(rangeS, 10)+"s",
		"$__rate_interval_ms", strconv.FormatInt(rate.Milliseconds(), 10),
		"${__rate_interval_ms}", strconv.FormatInt(rate.Milliseconds(), 10),
		"$__rate_interval", rate.String(),
		"${__rate_interval}", rate.String(),
	).Replace(t.Expr)
	instant := t.Instant && (t.Range == nil || !*t.Range)
	return PromQuery{
		RefID: t.RefID, Expr: expr, Legend: t.Legend, Instant: instant, Step: step,
		Start: align(r.From, step), End: align(r.To, step),
	}
}

// align rounds t down to a multiple of step, as Grafana does so that
// Prometheus can cache.
func align(t time.Time, step time.Duration) time.Time {
	return time.Unix(0, t.UnixNano()/step.Nanoseconds()*step.Nanoseconds()).UTC()
}

// Run asks Prometheus at base for the query and frames the answer. A
// query Prometheus refuses is a DataResponse with the error, as Grafana
// shows it on the panel.
func (q PromQuery) Run(ctx context.Context, base string) (backend.DataResponse, error) {
	form := url.Values{"query": {q.Expr}}
	path := "/api/v1/query_range"
	if q.Instant {
		path = "/api/v1/query"
		form.Set("time", promTime(q.End))
	} else {
		form.Set("start", promTime(q.Start))
		form.Set("end", promTime(q.End))
		form.Set("step", strconv.FormatFloat(q.Step.Seconds(), 'f', -1, 64))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+path, strings.NewReader(form.Encode()))
	if err != nil {
		return backend.DataResponse{}, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return backend.DataResponse{}, fmt.Errorf("ask prometheus for %s: %w", q.Expr, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return backend.DataResponse{}, fmt.Errorf("read prometheus' answer to %s: %w", q.Expr, err)
	}
	return q.Frames(resp.StatusCode, body)
}

func promTime(t time.Time) string {
	return strconv.FormatFloat(float64(t.UnixMilli())/1000, 'f', 3, 64)
}

// Frames turns Prometheus' JSON answer into the frames Grafana's
// Prometheus datasource makes of it (its converter with dataplane frames,
// Grafana's default): one frame per series with a Time and a Value field,
// the series' labels on the Value field, the metric name as the field's
// name when the series has one, and the legend format written into
// displayNameFromDS. An answer without series is one empty frame that
// carries the executed query.
func (q PromQuery) Frames(status int, body []byte) (backend.DataResponse, error) {
	var ans struct {
		Status    string `json:"status"`
		ErrorType string `json:"errorType"`
		Error     string `json:"error"`
		Data      struct {
			ResultType string `json:"resultType"`
			Result     []struct {
				Metric map[string]string `json:"metric"`
				Values [][2]any          `json:"values"`
				Value  *[2]any           `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &ans); err != nil {
		return backend.DataResponse{}, fmt.Errorf("decode prometheus' answer to %s (HTTP %d): %w", q.Expr, status, err)
	}
	if ans.Status != "success" {
		return backend.ErrDataResponse(backend.Status(status), fmt.Sprintf("%s: %s", ans.ErrorType, ans.Error)), nil
	}
	meta := &data.FrameMeta{
		Type:                data.FrameTypeTimeSeriesMulti,
		TypeVersion:         data.FrameTypeVersion{0, 1},
		Custom:              map[string]string{"resultType": ans.Data.ResultType},
		ExecutedQueryString: "Expr: " + q.Expr + "\nStep: " + q.Step.String(),
	}
	if q.Instant {
		meta.Type = data.FrameTypeNumericMulti
	}
	res := backend.DataResponse{Status: backend.StatusOK}
	for _, s := range ans.Data.Result {
		points := s.Values
		if s.Value != nil {
			points = [][2]any{*s.Value}
		}
		times := make([]time.Time, 0, len(points))
		values := make([]float64, 0, len(points))
		for _, p := range points {
			ts, ok := p[0].(float64)
			str, ok2 := p[1].(string)
			if !ok || !ok2 {
				return backend.DataResponse{}, fmt.Errorf("prometheus' answer to %s has a point %v", q.Expr, p)
			}
			v, err := strconv.ParseFloat(str, 64)
			if err != nil {
				return backend.DataResponse{}, fmt.Errorf("value %q in prometheus' answer to %s: %w", str, q.Expr, err)
			}
			times = append(times, time.UnixMilli(int64(math.Round(ts*1000))).UTC())
			values = append(values, v)
		}
		labels := data.Labels{}
		for k, v := range s.Metric {
			labels[k] = v
		}
		name := data.TimeSeriesValueFieldName
		if n, ok := labels["__name__"]; ok {
			name = n
		}
		tf := data.NewField(data.TimeSeriesTimeFieldName, nil, times)
		tf.Config = &data.FieldConfig{Interval: float64(q.Step.Milliseconds())}
		vf := data.NewField(name, labels, values)
		if legend := q.legend(labels); legend != "" {
			vf.Config = &data.FieldConfig{DisplayNameFromDS: legend}
		}
		f := data.NewFrame("", tf, vf)
		f.RefID = q.RefID
		f.Meta = meta
		res.Frames = append(res.Frames, f)
	}
	if len(res.Frames) == 0 {
		f := data.NewFrame("")
		f.RefID = q.RefID
		f.Meta = meta
		res.Frames = data.Frames{f}
	}
	return res, nil
}

var legendRe = regexp.MustCompile(`\{\{\s*(.+?)\s*\}\}`)

// legend is the series' name as Grafana's Prometheus datasource writes it
// (promlib getName): the legend format with {{label}} replaced, or the
// series' labels when there is none; "" leaves Grafana to name it.
func (q PromQuery) legend(labels data.Labels) string {
	if q.Legend == "__auto" {
		if len(labels) > 0 {
			return ""
		}
	} else if q.Legend != "" {
		return legendRe.ReplaceAllStringFunc(q.Legend, func(m string) string {
			return labels[legendRe.FindStringSubmatch(m)[1]]
		})
	}
	name, rest := labels["__name__"], []string{}
	for k, v := range labels {
		if k != "__name__" {
			rest = append(rest, fmt.Sprintf("%s=%q", k, v))
		}
	}
	sort.Strings(rest)
	switch {
	case len(rest) == 0 && name != "":
		return name
	case len(rest) == 0:
		return q.Expr
	}
	return name + "{" + strings.Join(rest, ", ") + "}"
}
