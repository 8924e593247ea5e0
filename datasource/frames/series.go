package frames

import (
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/data"

	"github.com/logsift/logsift/datasource/client"
)

// Field names of metric frames, as Grafana's Loki datasource names them.
const (
	FieldTime  = "Time"
	FieldValue = "Value"
)

// SeriesOptions shape the frames of a metric result.
type SeriesOptions struct {
	RefID    string
	Executed string
	// LegendFormat names each series: {{label}} is replaced by the
	// series' value of the label.
	LegendFormat string
	// Step is the step of a range query, shown to Grafana as the
	// interval of the time field (bar widths, null filling).
	Step time.Duration
	// Volume marks the logs volume histogram: series without a level
	// are named "unknown".
	Volume bool
}

// Matrix turns a range query's series into time series frames, one per
// series (dataplane timeseries-multi).
func Matrix(series []client.Series, st *client.Stats, o SeriesOptions) data.Frames {
	series = sortedSeries(series)
	meta := metricMeta(data.FrameTypeTimeSeriesMulti, data.FrameTypeVersion{0, 1}, o.Executed, st)
	if len(series) == 0 {
		return data.Frames{emptyMetric(o.RefID, meta)}
	}
	out := make(data.Frames, 0, len(series))
	for i, s := range series {
		times := make([]time.Time, len(s.Points))
		values := make([]float64, len(s.Points))
		for j, p := range s.Points {
			times[j] = time.UnixMilli(p.T).UTC()
			values[j] = p.V
		}
		tf := data.NewField(FieldTime, nil, times)
		if o.Step > 0 {
			tf.Config = &data.FieldConfig{Interval: float64(o.Step.Milliseconds())}
		}
		vf := data.NewField(FieldValue, labelsOf(s.Labels), values)
		if name := displayName(s.Labels, o); name != "" {
			vf.Config = &data.FieldConfig{DisplayNameFromDS: name}
		}
		f := data.NewFrame("", tf, vf)
		f.RefID = o.RefID
		f.Meta = meta
		if i > 0 {
			// Statistics belong to the query, not to each series.
			f.Meta = metricMeta(data.FrameTypeTimeSeriesMulti, data.FrameTypeVersion{0, 1}, o.Executed, nil)
		}
		out = append(out, f)
	}
	return out
}

// Vector turns an instant query's samples into numeric frames, one per
// series (dataplane numeric-multi), each with its time as well.
func Vector(series []client.Series, st *client.Stats, o SeriesOptions) data.Frames {
	series = sortedSeries(series)
	meta := metricMeta(data.FrameTypeNumericMulti, data.FrameTypeVersion{0, 1}, o.Executed, st)
	if len(series) == 0 {
		return data.Frames{emptyMetric(o.RefID, meta)}
	}
	out := make(data.Frames, 0, len(series))
	for i, s := range series {
		var times []time.Time
		var values []float64
		for _, p := range s.Points {
			times = append(times, time.UnixMilli(p.T).UTC())
			values = append(values, p.V)
		}
		vf := data.NewField(FieldValue, labelsOf(s.Labels), values)
		if name := displayName(s.Labels, o); name != "" {
			vf.Config = &data.FieldConfig{DisplayNameFromDS: name}
		}
		f := data.NewFrame("", data.NewField(FieldTime, nil, times), vf)
		f.RefID = o.RefID
		f.Meta = meta
		if i > 0 {
			f.Meta = metricMeta(data.FrameTypeNumericMulti, data.FrameTypeVersion{0, 1}, o.Executed, nil)
		}
		out = append(out, f)
	}
	return out
}

// Scalar turns a scalar result into one numeric frame.
func Scalar(p *client.Point, st *client.Stats, o SeriesOptions) data.Frames {
	if p == nil {
		return Vector(nil, st, o)
	}
	return Vector([]client.Series{{Points: []client.Point{*p}}}, st, o)
}

func emptyMetric(refID string, meta *data.FrameMeta) *data.Frame {
	f := data.NewFrame("", data.NewField(FieldTime, nil, []time.Time{}), data.NewField(FieldValue, nil, []float64{}))
	f.RefID = refID
	f.Meta = meta
	return f
}

func metricMeta(typ data.FrameType, v data.FrameTypeVersion, executed string, st *client.Stats) *data.FrameMeta {
	m := &data.FrameMeta{Type: typ, TypeVersion: v, ExecutedQueryString: executed}
	if st != nil {
		m.Stats = StatsMeta(*st)
	}
	return m
}

// sortedSeries orders series by their labels, so that frames come out
// in the same order on every run.
func sortedSeries(in []client.Series) []client.Series {
	out := slices.Clone(in)
	slices.SortStableFunc(out, func(a, b client.Series) int { return compareLabels(a.Labels, b.Labels) })
	return out
}

func compareLabels(a, b client.Labels) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		if c := strings.Compare(a[i].Name, b[i].Name); c != 0 {
			return c
		}
		if c := strings.Compare(a[i].Value, b[i].Value); c != 0 {
			return c
		}
	}
	return len(a) - len(b)
}

func labelsOf(ls client.Labels) data.Labels {
	if len(ls) == 0 {
		return nil
	}
	return data.Labels(ls.Map())
}

var legendVar = regexp.MustCompile(`\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}`)

// displayName renders the legend of a series; "" leaves naming to Grafana.
func displayName(ls client.Labels, o SeriesOptions) string {
	if o.Volume {
		lvl := ""
		for _, name := range LevelLabels {
			if lvl = ls.Get(name); lvl != "" {
				break
			}
		}
		if lvl == "" {
			lvl = "unknown"
		}
		return lvl
	}
	if o.LegendFormat == "" {
		return ""
	}
	return legendVar.ReplaceAllStringFunc(o.LegendFormat, func(m string) string {
		return ls.Get(legendVar.FindStringSubmatch(m)[1])
	})
}

// StatsMeta is the server's statistics as Grafana's query inspector
// lists them.
func StatsMeta(st client.Stats) []data.QueryStat {
	stat := func(name, unit string, v float64) data.QueryStat {
		return data.QueryStat{FieldConfig: data.FieldConfig{DisplayName: name, Unit: unit}, Value: v}
	}
	perSec := 0.0
	if st.ExecTime > 0 {
		perSec = float64(st.BytesProcessed) / st.ExecTime
	}
	return []data.QueryStat{
		stat("Summary: exec time", "s", st.ExecTime),
		stat("Summary: total bytes processed", "decbytes", float64(st.BytesProcessed)),
		stat("Summary: bytes processed per second", "Bps", perSec),
		stat("Summary: total lines processed", "", float64(st.LinesProcessed)),
		stat("Summary: lines matched", "", float64(st.PostFilterLines)),
		stat("Summary: total entries returned", "", float64(st.EntriesReturned)),
		stat("Store: total chunks ref", "", float64(st.ChunksRef)),
		stat("Store: total chunks downloaded", "", float64(st.ChunksDownloaded)),
		stat("Store: compressed bytes", "decbytes", float64(st.CompressedBytes)),
		stat("logsift: chunks skipped by filters", "", float64(st.ChunksPruned)),
		stat("logsift: blocks skipped by filters", "", float64(st.BlocksPruned)),
		stat("logsift: streams", "", float64(st.Streams)),
	}
}
