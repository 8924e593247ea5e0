package frames

import (
	"slices"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/data"

	"github.com/logsift/logsift/datasource/client"
)

// TableValuePrefix starts the value column of a table frame; the query's
// refId follows ("Value #A"), as in Grafana's Prometheus datasource, so
// that a dashboard's organize transformation can name each query's column
// and the merge transformation can join queries on their labels.
const TableValuePrefix = FieldValue + " #"

// Table turns a metric result into one table frame (the query's "table"
// format): a Time column, one string column per label name (the union over
// the series, sorted; "" where a series lacks the label) and the values in
// "Value #<refId>", one row per sample: one per series for an instant
// query. Grafana's Prometheus datasource answers the same shape for table
// panels; the numeric frames of Vector, one per series, show in a table as
// a single column of numbers without their labels.
func Table(series []client.Series, st *client.Stats, o SeriesOptions) data.Frames {
	series = sortedSeries(series)
	var names []string
	for _, s := range series {
		for _, l := range s.Labels {
			if !slices.Contains(names, l.Name) {
				names = append(names, l.Name)
			}
		}
	}
	slices.Sort(names)
	times := make([]time.Time, 0, len(series))
	values := make([]float64, 0, len(series))
	cols := make([][]string, len(names))
	for _, s := range series {
		for _, p := range s.Points {
			times = append(times, time.UnixMilli(p.T).UTC())
			values = append(values, p.V)
			for i, n := range names {
				cols[i] = append(cols[i], s.Labels.Get(n))
			}
		}
	}
	fields := make([]*data.Field, 0, len(names)+2)
	fields = append(fields, data.NewField(FieldTime, nil, times))
	for i, n := range names {
		if cols[i] == nil {
			cols[i] = []string{}
		}
		fields = append(fields, data.NewField(n, nil, cols[i]))
	}
	fields = append(fields, data.NewField(TableValuePrefix+o.RefID, nil, values))
	f := data.NewFrame("", fields...)
	f.RefID = o.RefID
	f.Meta = &data.FrameMeta{ExecutedQueryString: o.Executed, PreferredVisualization: data.VisTypeTable}
	if st != nil {
		f.Meta.Stats = StatsMeta(*st)
	}
	return data.Frames{f}
}
