package frames

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/grafana/grafana-plugin-sdk-go/data"

	"github.com/logsift/logsift/datasource/client"
)

func testResult() *client.Result {
	app := client.Labels{{Name: "file", Value: "a.log"}, {Name: "job", Value: "app"}}
	db := client.Labels{{Name: "job", Value: "db"}, {Name: "level", Value: "warn"}}
	return &client.Result{
		Type: client.ResultStreams,
		Streams: []client.Stream{
			{Labels: app, Entries: []client.Entry{
				{Timestamp: 3000, Line: "c", Metadata: client.Labels{{Name: "detected_level", Value: "error"}, {Name: "line", Value: "3"}}, Parsed: client.Labels{{Name: "job", Value: "shadow"}}},
				{Timestamp: 1000, Line: "a", Metadata: client.Labels{{Name: "line", Value: "1"}}},
			}},
			{Labels: db, Entries: []client.Entry{
				{Timestamp: 2000, Line: "b"},
				{Timestamp: 2000, Line: "b"}, // a real duplicate: same time, same line
			}},
		},
		Stats: client.Stats{ExecTime: 0.5, BytesProcessed: 100},
	}
}

func TestLogsFrame(t *testing.T) {
	f := Logs(testResult(), LogsOptions{RefID: "A", Executed: "Expr: {job=~\".+\"}"})
	if f.Meta.Type != data.FrameTypeLogLines || f.Meta.PreferredVisualization != data.VisTypeLogs || f.Meta.ExecutedQueryString == "" || len(f.Meta.Stats) == 0 {
		t.Errorf("meta %+v", f.Meta)
	}
	names := []string{}
	for _, fl := range f.Fields {
		names = append(names, fl.Name)
	}
	if strings.Join(names, ",") != "timestamp,body,severity,id,labels,labelTypes" {
		t.Errorf("fields %v", names)
	}
	n, _ := f.RowLen()
	if n != 4 {
		t.Fatalf("rows %d", n)
	}
	// Newest first, the duplicates in their order.
	var bodies []string
	for i := 0; i < n; i++ {
		bodies = append(bodies, f.Fields[1].At(i).(string))
	}
	if strings.Join(bodies, "") != "cbba" {
		t.Errorf("order %v", bodies)
	}
	if ts := f.Fields[0].At(0).(time.Time); ts.UnixNano() != 3000 {
		t.Errorf("timestamp %v", ts)
	}
	// Severity from detected_level metadata, else the level label.
	if f.Fields[2].At(0) != "error" || f.Fields[2].At(1) != "warn" || f.Fields[2].At(3) != "" {
		t.Errorf("severity %v %v %v", f.Fields[2].At(0), f.Fields[2].At(1), f.Fields[2].At(3))
	}
	var lbls map[string]string
	if err := json.Unmarshal(f.Fields[4].At(0).(json.RawMessage), &lbls); err != nil {
		t.Fatal(err)
	}
	if lbls["job"] != "shadow" || lbls["file"] != "a.log" || lbls["line"] != "3" {
		t.Errorf("labels %v", lbls)
	}
	var types map[string]string
	if err := json.Unmarshal(f.Fields[5].At(0).(json.RawMessage), &types); err != nil {
		t.Fatal(err)
	}
	if types["file"] != "I" || types["line"] != "S" || types["detected_level"] != "S" || types["job"] != "P" {
		t.Errorf("label types %v", types)
	}
	ids := map[string]bool{}
	for i := 0; i < n; i++ {
		id := f.Fields[3].At(i).(string)
		if ids[id] {
			t.Errorf("duplicate id %s", id)
		}
		ids[id] = true
	}
	if id := f.Fields[3].At(2).(string); !strings.HasSuffix(id, "_1") || !strings.HasPrefix(id, "2000_") {
		t.Errorf("second duplicate's id %s", id)
	}
	// Stable: the same answer gives the same ids.
	g := Logs(testResult(), LogsOptions{})
	for i := 0; i < n; i++ {
		if f.Fields[3].At(i) != g.Fields[3].At(i) {
			t.Errorf("row %d: id %v then %v", i, f.Fields[3].At(i), g.Fields[3].At(i))
		}
	}
	fwd := Logs(testResult(), LogsOptions{Forward: true})
	if fwd.Fields[1].At(0) != "a" {
		t.Errorf("forward order starts with %v", fwd.Fields[1].At(0))
	}
}

func TestSeriesFrames(t *testing.T) {
	series := []client.Series{
		{Labels: client.Labels{{Name: "level", Value: "warn"}}, Points: []client.Point{{T: 1000, V: 1}, {T: 61000, V: math.NaN()}}},
		{Labels: client.Labels{{Name: "level", Value: "error"}}, Points: []client.Point{{T: 1000, V: 2}}},
	}
	fs := Matrix(series, &client.Stats{}, SeriesOptions{RefID: "A", LegendFormat: "lvl {{ level }} {{nope}}", Step: time.Minute})
	if len(fs) != 2 {
		t.Fatalf("%d frames", len(fs))
	}
	if fs[0].Fields[1].Labels["level"] != "error" || fs[0].Fields[1].Config.DisplayNameFromDS != "lvl error " {
		t.Errorf("first frame %+v %+v", fs[0].Fields[1].Labels, fs[0].Fields[1].Config)
	}
	if fs[0].Meta.Type != data.FrameTypeTimeSeriesMulti || fs[0].Fields[0].Config.Interval != 60000 {
		t.Errorf("meta %+v interval %+v", fs[0].Meta, fs[0].Fields[0].Config)
	}
	if len(fs[1].Meta.Stats) != 0 {
		t.Error("statistics repeated on every series")
	}
	vs := Vector(series, nil, SeriesOptions{Volume: true})
	if vs[0].Meta.Type != data.FrameTypeNumericMulti || vs[0].Fields[1].Config.DisplayNameFromDS != "error" {
		t.Errorf("vector %+v", vs[0])
	}
	empty := Matrix(nil, nil, SeriesOptions{RefID: "B"})
	if len(empty) != 1 || empty[0].Meta.Type != data.FrameTypeTimeSeriesMulti {
		t.Errorf("empty matrix %+v", empty)
	}
	if vol := Matrix([]client.Series{{Points: []client.Point{{T: 1, V: 1}}}}, nil, SeriesOptions{Volume: true}); vol[0].Fields[1].Config.DisplayNameFromDS != "unknown" {
		t.Errorf("volume without level: %+v", vol[0].Fields[1].Config)
	}
}

func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"plain", "quote\" back\\slash", "ctl\x00\x1f\t\n\r", "bad \xff utf8", "sep \u2028\u2029", "ünïcödé"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b := appendJSONString(nil, s)
		var got string
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("%q: invalid JSON %s: %v", s, b, err)
		}
		want := strings.ToValidUTF8(s, "\ufffd")
		if utf8.ValidString(s) {
			want = s
		} else {
			// encoding/json replaces each invalid byte on its own.
			var sb strings.Builder
			for i := 0; i < len(s); {
				r, size := utf8.DecodeRuneInString(s[i:])
				sb.WriteRune(r)
				i += size
			}
			want = sb.String()
		}
		if got != want {
			t.Fatalf("%q round-tripped to %q, want %q", s, got, want)
		}
	})
}
