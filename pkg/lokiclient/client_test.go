package lokiclient

import (
	"encoding/json"
	"math"
	"testing"
)

func TestMatrix(t *testing.T) {
	var r QueryResponse
	body := `{"status":"success","data":{"resultType":"matrix","result":[
		{"metric":{"status":"200"},"values":[[1700000000.5,"3"],[1700000060,"NaN"]]},
		{"metric":{},"values":[]}],"stats":{}}}`
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		t.Fatal(err)
	}
	m, err := r.Matrix()
	if err != nil {
		t.Fatal(err)
	}
	if len(m) != 2 || m[0].Labels["status"] != "200" || len(m[0].Points) != 2 || len(m[1].Points) != 0 {
		t.Fatalf("%+v", m)
	}
	p := m[0].Points[0]
	if f, err := p.Float(); p.T != 1700000000.5 || p.Value != "3" || err != nil || f != 3 {
		t.Fatalf("first point %+v", p)
	}
	if f, err := m[0].Points[1].Float(); err != nil || !math.IsNaN(f) {
		t.Fatalf("NaN point: %v, %v", f, err)
	}
	if _, err := r.Streams(); err == nil {
		t.Fatal("Streams decoded a matrix")
	}
	for _, bad := range []string{
		`{"data":{"resultType":"streams","result":[]}}`,
		`{"data":{"resultType":"matrix","result":[{"metric":{},"values":[["x","1"]]}]}}`,
		`{"data":{"resultType":"matrix","result":[{"metric":{},"values":[[1,2]]}]}}`,
	} {
		var r QueryResponse
		if err := json.Unmarshal([]byte(bad), &r); err != nil {
			t.Fatal(err)
		}
		if _, err := r.Matrix(); err == nil {
			t.Errorf("Matrix accepted %s", bad)
		}
	}
}
