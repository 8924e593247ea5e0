package plugin

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"testing"
)

// pagingServer holds n entries, three per timestamp, and answers range
// queries with the server's limit and direction semantics; it refuses a
// limit above pageLimit, as the server does by default.
func pagingServer(t *testing.T, n int) *fakeServer {
	f := newFakeServer(t)
	f.handle("/loki/api/v1/query_range", func(w http.ResponseWriter, r *http.Request) {
		start, _ := parseInt(r.Form.Get("start"))
		end, _ := parseInt(r.Form.Get("end"))
		limit, _ := parseInt(r.Form.Get("limit"))
		if limit > pageLimit {
			http.Error(w, "max entries limit per query exceeded", http.StatusBadRequest)
			return
		}
		var vals [][2]string
		for i := 0; i < n; i++ {
			ts := qFrom.UnixNano() + int64(i/3)*1e6
			if ts >= start && ts < end {
				vals = append(vals, [2]string{itoa(ts), fmt.Sprintf("line %05d", i)})
			}
		}
		if r.Form.Get("direction") != "forward" {
			slices.Reverse(vals)
		}
		vals = vals[:min(int64(len(vals)), limit)]
		b, _ := json.Marshal(map[string]any{"status": "success", "data": map[string]any{"resultType": "streams",
			"result": []any{map[string]any{"stream": map[string]string{"job": "app"}, "values": vals}},
			"stats":  map[string]any{"summary": map[string]any{"totalLinesProcessed": len(vals)}}}})
		_, _ = w.Write(b)
	})
	return f
}

func TestQueryPagesPastServerLimit(t *testing.T) {
	f := pagingServer(t, 12001)
	in := testInstance(t, f.srv.URL)
	for _, dir := range []string{"backward", "forward"} {
		dr := runQuery(t, in, nil, dataQuery("A", `{"expr":"{job=\"app\"}","maxLines":11000,"direction":"`+dir+`"}`))
		if dr.Error != nil {
			t.Fatalf("%s: %v", dir, dr.Error)
		}
		fr := dr.Frames[0]
		n, _ := fr.RowLen()
		if n != 11000 {
			t.Fatalf("%s: %d rows", dir, n)
		}
		seen := map[string]bool{}
		for i := 0; i < n; i++ {
			b := fr.Fields[1].At(i).(string)
			if seen[b] {
				t.Fatalf("%s: %s twice", dir, b)
			}
			seen[b] = true
		}
		first, lastRow := fr.Fields[1].At(0).(string), fr.Fields[1].At(n-1).(string)
		if dir == "forward" && (first != "line 00000" || lastRow != "line 10999") {
			t.Errorf("forward: %s .. %s", first, lastRow)
		}
		if dir == "backward" && (!seen["line 12000"] || !seen["line 01001"] || seen["line 01000"]) {
			t.Errorf("backward: %s .. %s", first, lastRow)
		}
	}
	// All of it, when the limit is above the data.
	dr := runQuery(t, in, nil, dataQuery("A", `{"expr":"{job=\"app\"}","maxLines":50000}`))
	if n, _ := dr.Frames[0].RowLen(); n != 12001 {
		t.Errorf("%d rows of 12001", n)
	}
	if got := dr.Frames[0].Meta.Stats[3].Value; got < 12001 {
		t.Errorf("lines processed over the pages: %v", got)
	}
}
