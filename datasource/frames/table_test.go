package frames

import (
	"testing"
	"time"

	"github.com/logsift/logsift/datasource/client"
)

func TestTableJoinsLabelsIntoColumns(t *testing.T) {
	series := []client.Series{
		{Labels: client.Labels{{Name: "workspace", Value: "b"}}, Points: []client.Point{{T: 1000, V: 2}}},
		{Labels: client.Labels{{Name: "file", Value: "x.log"}, {Name: "workspace", Value: "a"}}, Points: []client.Point{{T: 1000, V: 5}}},
	}
	fs := Table(series, &client.Stats{}, SeriesOptions{RefID: "B", Executed: "Expr: q"})
	if len(fs) != 1 {
		t.Fatalf("%d frames, want one table", len(fs))
	}
	f := fs[0]
	var names []string
	for _, fl := range f.Fields {
		names = append(names, fl.Name)
	}
	if want := []string{"Time", "file", "workspace", "Value #B"}; !equal(names, want) {
		t.Fatalf("columns %v, want %v", names, want)
	}
	if n, _ := f.RowLen(); n != 2 {
		t.Fatalf("%d rows, want 2", n)
	}
	// Rows in label order: {file="x.log", workspace="a"} sorts before {workspace="b"}.
	row := func(i int) []any {
		var out []any
		for _, fl := range f.Fields {
			out = append(out, fl.At(i))
		}
		return out
	}
	if r := row(0); r[1] != "x.log" || r[2] != "a" || r[3] != 5.0 || !r[0].(time.Time).Equal(time.UnixMilli(1000)) {
		t.Errorf("row 0 %v", r)
	}
	if r := row(1); r[1] != "" || r[2] != "b" || r[3] != 2.0 {
		t.Errorf("row 1 %v", r)
	}
	if f.RefID != "B" || f.Meta == nil || f.Meta.ExecutedQueryString != "Expr: q" {
		t.Errorf("frame meta %+v refId %q", f.Meta, f.RefID)
	}
	// No series: a table with no rows, still with the value column.
	empty := Table(nil, nil, SeriesOptions{RefID: "A"})[0]
	if n, _ := empty.RowLen(); n != 0 || len(empty.Fields) != 2 || empty.Fields[1].Name != "Value #A" {
		t.Errorf("empty table %v", empty.Fields)
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
