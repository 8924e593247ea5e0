package frames

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/data"

	"github.com/logsift/logsift/datasource/client"
)

// byteSource hands out the fuzzer's bytes as small choices, zeros when
// they run out.
type byteSource struct {
	b []byte
	i int
}

func (s *byteSource) pick(n int) int {
	if s.i >= len(s.b) {
		return 0
	}
	s.i++
	return int(s.b[s.i-1]) % n
}

var (
	agreeNames  = []string{"a", "detected_level", "job", "level", "line", "msg", "q\"uote", "zz"}
	agreeValues = []string{"", "info", "error", "1", "two words", "new\nline", "bad \xff", "\u2028"}
	agreeLines  = []string{"x", "y", "level=info x", ""}
)

// labelsFrom picks a sorted set of distinct names, as the decoder gives.
func labelsFrom(s *byteSource) client.Labels {
	var ls client.Labels
	for _, name := range agreeNames {
		if s.pick(3) == 0 {
			ls = append(ls, client.Label{Name: name, Value: agreeValues[s.pick(len(agreeValues))]})
		}
	}
	return ls
}

// resultFrom builds a streams result with few distinct timestamps and
// lines, so that identical entries, shadowed labels and shared shapes
// are common. Streams may hold equal label sets, and entries may be out
// of order.
func resultFrom(s *byteSource) *client.Result {
	res := &client.Result{Type: client.ResultStreams, Stats: client.Stats{ExecTime: 0.25}}
	for range s.pick(5) {
		st := client.Stream{Labels: labelsFrom(s)}
		for range s.pick(12) {
			e := client.Entry{Timestamp: int64(s.pick(6)) * 1000, Line: agreeLines[s.pick(len(agreeLines))]}
			if s.pick(2) == 0 {
				e.Metadata = labelsFrom(s)
			}
			if s.pick(3) == 0 {
				e.Parsed = labelsFrom(s)
			}
			st.Entries = append(st.Entries, e)
		}
		if s.pick(4) != 0 {
			slices.SortStableFunc(st.Entries, func(a, b client.Entry) int { return int(b.Timestamp - a.Timestamp) })
		}
		res.Streams = append(res.Streams, st)
	}
	return res
}

// describeFrame prints every value of a frame, JSON fields as bytes.
func describeFrame(f *data.Frame) string {
	var b strings.Builder
	fmt.Fprintf(&b, "refId=%s meta=%+v\n", f.RefID, f.Meta)
	for _, fl := range f.Fields {
		fmt.Fprintf(&b, "%s:", fl.Name)
		for i := 0; i < fl.Len(); i++ {
			switch v := fl.At(i).(type) {
			case json.RawMessage:
				fmt.Fprintf(&b, " %s", v)
			case time.Time:
				fmt.Fprintf(&b, " %d", v.UnixNano())
			default:
				fmt.Fprintf(&b, " %q", v)
			}
		}
		b.WriteByte('\n')
	}
	return b.String()
}

func checkAgree(t *testing.T, seed []byte, forward, tail bool) {
	t.Helper()
	res := resultFrom(&byteSource{b: seed})
	o := LogsOptions{RefID: "A", Executed: "Expr: x", Forward: forward}
	if got, want := describeFrame(Logs(res, o)), describeFrame(refLogs(res, o)); got != want {
		t.Fatalf("Logs differs from the reference on %x forward=%v:\ngot:\n%s\nwant:\n%s", seed, forward, got, want)
	}
	// The builder on its own, in the answer's order (not time order),
	// and with the tail's label typing.
	b, rb := NewLogsBuilder(2), newRefBuilder(2)
	if tail {
		isStream := func(name string) bool { return name != "line" && name != "msg" }
		b.StreamLabelNames, rb.StreamLabelNames = isStream, isStream
	}
	for _, s := range res.Streams {
		h := StreamHash(s.Labels)
		for _, e := range s.Entries {
			b.Add(slices.Clone(s.Labels), h, e)
			rb.Add(s.Labels, h, e)
		}
	}
	if got, want := describeFrame(b.Frame("B", nil)), describeFrame(rb.Frame("B", nil)); got != want {
		t.Fatalf("builder differs from the reference on %x tail=%v:\ngot:\n%s\nwant:\n%s", seed, tail, got, want)
	}
}

func TestLogsMatchReference(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 2000; i++ {
		seed := make([]byte, r.IntN(400))
		for j := range seed {
			seed[j] = byte(r.Uint32())
		}
		checkAgree(t, seed, i%2 == 0, i%3 == 0)
	}
}

func FuzzLogsMatchReference(f *testing.F) {
	f.Add(bytes.Repeat([]byte{1, 0, 2, 0, 3}, 40), false, false)
	f.Add(bytes.Repeat([]byte{4, 11, 0, 0, 1, 7, 2}, 60), true, true)
	f.Fuzz(func(t *testing.T, seed []byte, forward, tail bool) {
		checkAgree(t, seed, forward, tail)
	})
}

// TestLogsLongRunOfOneTimestamp covers more identical timestamps than a
// run is searched for, in order and out of it.
func TestLogsLongRunOfOneTimestamp(t *testing.T) {
	var es []client.Entry
	for i := 0; i < 3*maxRun; i++ {
		es = append(es, client.Entry{Timestamp: 5, Line: agreeLines[i%3]})
	}
	es = append(es, client.Entry{Timestamp: 4, Line: "x"}, client.Entry{Timestamp: 5, Line: "x"})
	res := &client.Result{Streams: []client.Stream{{Labels: client.Labels{{Name: "job", Value: "a"}}, Entries: es}}}
	if got, want := describeFrame(Logs(res, LogsOptions{})), describeFrame(refLogs(res, LogsOptions{})); got != want {
		t.Fatalf("got:\n%s\nwant:\n%s", got, want)
	}
	b, rb := NewLogsBuilder(0), newRefBuilder(0)
	for _, e := range es {
		b.Add(res.Streams[0].Labels, 9, e)
		rb.Add(res.Streams[0].Labels, 9, e)
	}
	f := b.Frame("", nil)
	if got, want := describeFrame(f), describeFrame(rb.Frame("", nil)); got != want {
		t.Fatalf("builder got:\n%s\nwant:\n%s", got, want)
	}
	ids := map[any]bool{}
	for i := 0; i < f.Fields[3].Len(); i++ {
		if ids[f.Fields[3].At(i)] {
			t.Fatalf("duplicate id %v", f.Fields[3].At(i))
		}
		ids[f.Fields[3].At(i)] = true
	}
}

// TestFramesKeepTheirValues guards the reuse of the builder's slices:
// it is only sound while data.NewField copies the values it is given.
func TestFramesKeepTheirValues(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	var frames []*data.Frame
	var want []string
	for i := 0; i < 50; i++ {
		seed := make([]byte, 300)
		for j := range seed {
			seed[j] = byte(r.Uint32())
		}
		f := Logs(resultFrom(&byteSource{b: seed}), LogsOptions{Forward: i%2 == 0})
		frames, want = append(frames, f), append(want, describeFrame(f))
	}
	for i, f := range frames {
		if got := describeFrame(f); got != want[i] {
			t.Fatalf("frame %d changed after later frames were built:\nnow:\n%s\nwas:\n%s", i, got, want[i])
		}
	}
}
