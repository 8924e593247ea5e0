package render

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/data"
)

// Fixture is what the panels page needs to draw one dashboard: the
// panels as the dashboard holds them, the request Grafana would send for
// each, and the answer it got. It is written to
// tests/browser/panels/data/<uid>.json.
type Fixture struct {
	// Command regenerates the fixture.
	Command   string    `json:"command"`
	Generated time.Time `json:"generated"`
	UID       string    `json:"uid"`
	Title     string    `json:"title"`
	Layout    Layout    `json:"layout"`
	Time      Range     `json:"time"`
	// TimeZone is the zone the page draws times in.
	TimeZone  string          `json:"timeZone"`
	Variables []FixtureVar    `json:"variables"`
	Panels    []FixturePanel  `json:"panels"`
	Notes     []string        `json:"notes,omitempty"`
	Sources   []FixtureSource `json:"datasources"`
}

// Range is an absolute time range in Unix milliseconds, with the relative
// text the time picker shows.
type Range struct {
	From    int64  `json:"from"`
	To      int64  `json:"to"`
	RawFrom string `json:"rawFrom"`
	RawTo   string `json:"rawTo"`
}

// NewRange is r in milliseconds.
func NewRange(r TimeRange) Range {
	return Range{From: r.From.UnixMilli(), To: r.To.UnixMilli(), RawFrom: r.RawFrom, RawTo: r.RawTo}
}

// FixtureVar is a template variable and the value the panels were asked
// with.
type FixtureVar struct {
	Variable
	All    bool     `json:"all"`
	Values []string `json:"values"`
}

// FixtureSource is a datasource the panels use, as Grafana's frontend
// knows it.
type FixtureSource struct {
	UID      string          `json:"uid"`
	Type     string          `json:"type"`
	Name     string          `json:"name"`
	JSONData json.RawMessage `json:"jsonData"`
}

// FixturePanel is one panel, its request and the answer.
type FixturePanel struct {
	Panel json.RawMessage `json:"panel"`
	// Request and Response are nil for a row.
	Request  *Request                   `json:"request,omitempty"`
	Response *backend.QueryDataResponse `json:"response,omitempty"`
	Notes    []string                   `json:"notes,omitempty"`
}

// Request is what Grafana's frontend sends to /api/ds/query for a panel.
type Request struct {
	Range         Range             `json:"range"`
	IntervalMs    int64             `json:"intervalMs"`
	MaxDataPoints int64             `json:"maxDataPoints"`
	Queries       []json.RawMessage `json:"queries"`
}

// QueryModel is a target as Grafana's frontend sends it: the panel's
// query JSON with the variables written in, the datasource reference, the
// interval and the number of data points.
func QueryModel(t Target, expr string, intervalMs, maxDataPoints int64) (json.RawMessage, error) {
	var m map[string]any
	if err := json.Unmarshal(t.Raw, &m); err != nil {
		return nil, fmt.Errorf("query %s: %w", t.RefID, err)
	}
	m["expr"] = expr
	m["intervalMs"] = intervalMs
	m["maxDataPoints"] = maxDataPoints
	return json.Marshal(m)
}

// DataRequest is the QueryDataRequest Grafana's server makes of the
// frontend's request for the plugin backend.
func DataRequest(pluginID string, r Request) (*backend.QueryDataRequest, error) {
	req := &backend.QueryDataRequest{PluginContext: backend.PluginContext{PluginID: pluginID}}
	for _, q := range r.Queries {
		var head struct {
			RefID string `json:"refId"`
		}
		if err := json.Unmarshal(q, &head); err != nil {
			return nil, err
		}
		req.Queries = append(req.Queries, backend.DataQuery{
			RefID:         head.RefID,
			JSON:          q,
			TimeRange:     backend.TimeRange{From: time.UnixMilli(r.Range.From), To: time.UnixMilli(r.Range.To)},
			Interval:      time.Duration(r.IntervalMs) * time.Millisecond,
			MaxDataPoints: r.MaxDataPoints,
		})
	}
	return req, nil
}

// TrimLogs keeps the first keep rows of each log-lines frame in the order
// the logs panel shows them (sortOrder "Ascending" or "Descending" by
// time): a panel shows a screenful of the up to 1,000 lines a query
// answers, and the fixture need not hold the rest. It returns a note for
// each frame it cut.
func TrimLogs(frames data.Frames, keep int, sortOrder string) (data.Frames, []string, error) {
	var notes []string
	out := make(data.Frames, len(frames))
	for i, f := range frames {
		out[i] = f
		if f.Meta == nil || f.Meta.Type != data.FrameTypeLogLines || f.Rows() <= keep {
			continue
		}
		tf := -1
		for j, fld := range f.Fields {
			if fld.Type() == data.FieldTypeTime {
				tf = j
				break
			}
		}
		if tf < 0 {
			return nil, nil, fmt.Errorf("log-lines frame %s has no time field", f.RefID)
		}
		rows := make([]int, f.Rows())
		for r := range rows {
			rows[r] = r
		}
		asc := sortOrder == "Ascending"
		sort.SliceStable(rows, func(a, b int) bool {
			ta, _ := f.Fields[tf].ConcreteAt(rows[a])
			tb, _ := f.Fields[tf].ConcreteAt(rows[b])
			if asc {
				return ta.(time.Time).Before(tb.(time.Time))
			}
			return ta.(time.Time).After(tb.(time.Time))
		})
		cut := f.EmptyCopy()
		for _, r := range rows[:keep] {
			cut.AppendRow(f.RowCopy(r)...)
		}
		out[i] = cut
		notes = append(notes, fmt.Sprintf("query %s answered %d lines; the fixture keeps the first %d in the panel's order (%s)", f.RefID, f.Rows(), keep, sortOrder))
	}
	return out, notes, nil
}

// Drift lists how the panels in a fixture differ from the dashboard's:
// any change but a panel's description means the fixture, and the
// pictures drawn from it, are out of date.
func Drift(f Fixture, d Dashboard) ([]string, error) {
	var out []string
	if f.UID != d.UID {
		out = append(out, fmt.Sprintf("fixture is for %s, dashboard is %s", f.UID, d.UID))
	}
	if len(f.Panels) != len(d.Panels) {
		out = append(out, fmt.Sprintf("%s: fixture has %d panels, the dashboard %d", d.UID, len(f.Panels), len(d.Panels)))
		return out, nil
	}
	for i, p := range d.Panels {
		a, err := panelForDrift(f.Panels[i].Panel)
		if err != nil {
			return nil, fmt.Errorf("fixture panel %d of %s: %w", i, d.UID, err)
		}
		b, err := panelForDrift(p.Raw)
		if err != nil {
			return nil, fmt.Errorf("panel %d of %s: %w", p.ID, d.UID, err)
		}
		if !reflect.DeepEqual(a, b) {
			out = append(out, fmt.Sprintf("%s: panel %d %q differs from the fixture's", d.UID, p.ID, p.Title))
		}
	}
	return out, nil
}

func panelForDrift(raw json.RawMessage) (map[string]any, error) {
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	delete(m, "description")
	return m, nil
}

// Encode writes the fixture as indented JSON with each panel on one line:
// the frames' value arrays would take a line per value if indented.
func (f Fixture) Encode() ([]byte, error) {
	panels := f.Panels
	f.Panels = nil
	if f.Variables == nil {
		f.Variables = []FixtureVar{}
	}
	head, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return nil, err
	}
	var list bytes.Buffer
	list.WriteString("[\n")
	for i, p := range panels {
		b, err := json.Marshal(p)
		if err != nil {
			return nil, fmt.Errorf("panel %d: %w", i, err)
		}
		list.WriteString("    ")
		list.Write(b)
		if i < len(panels)-1 {
			list.WriteByte(',')
		}
		list.WriteByte('\n')
	}
	list.WriteString("  ]")
	const empty = `"panels": null`
	if bytes.Count(head, []byte(empty)) != 1 {
		return nil, fmt.Errorf("encode the fixture: no single %s to fill", empty)
	}
	out := bytes.Replace(head, []byte(empty), append([]byte(`"panels": `), list.Bytes()...), 1)
	return append(out, '\n'), nil
}
