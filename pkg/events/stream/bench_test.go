package stream

import (
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/logsift/logsift/pkg/events"
)

func progressEvent() *events.Event {
	return &events.Event{Type: events.ImportProgress, Tenant: "acme", Origin: "host/1234",
		Import: &events.Import{Workspace: "case-4711", RunID: "01JD3S2Q9V7ZKX4M", Host: "laptop", Status: "running",
			Files: 120, FilesDone: 37, Bytes: 1 << 30, BytesDone: 300 << 20, Lines: 2_500_000, Chunks: 410}}
}

// BenchmarkJournalAppend is the journal's cost per event on the bus: encode
// once, keep, evict the oldest (the ring is full at the default bound).
func BenchmarkJournalAppend(b *testing.B) {
	j := newJournal(JournalOptions{Epoch: "e"})
	e := progressEvent()
	for range DefaultJournalEvents {
		j.append(e, 0)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		j.append(e, 0)
	}
	st := j.Stats()
	b.ReportMetric(float64(st.Bytes)/float64(st.Events), "journal-B/event")
}

// BenchmarkJournalReplay is a reconnecting stream's cost per retained
// event: read it from the ring in batches and filter it (half pass).
func BenchmarkJournalReplay(b *testing.B) {
	j := newJournal(JournalOptions{Epoch: "e"})
	mine, other := progressEvent(), progressEvent()
	other.Tenant = "other"
	for i := range DefaultJournalEvents {
		if i%2 == 0 {
			j.append(mine, 0)
		} else {
			j.append(other, 0)
		}
	}
	f := &events.Filter{Tenants: []string{"acme"}, Types: []events.Type{events.ImportProgress}, Workspace: []string{"case-4711"}}
	buf := make([]entry, 0, readBatch)
	first := j.Stats().First
	b.ReportAllocs()
	b.ResetTimer()
	n := 0
	for b.Loop() {
		after := first - 1
		for {
			batch, _, _ := j.read(after, buf)
			if len(batch) == 0 {
				break
			}
			for i := range batch {
				after = batch[i].seq
				if f.Match(batch[i].key) {
					n++
				}
			}
		}
	}
	b.ReportMetric(float64(DefaultJournalEvents), "events/op")
	if n == 0 {
		b.Fatal("nothing matched")
	}
}

// BenchmarkGRPCEntryToProto is what a gRPC stream pays per event it sends
// on top of reading the journal: decode the journal's JSON, convert, and
// encode the message as Send does.
func BenchmarkGRPCEntryToProto(b *testing.B) {
	j := newJournal(JournalOptions{Epoch: "e"})
	j.append(progressEvent(), 0)
	batch, _, _ := j.read(0, make([]entry, 0, 1))
	if len(batch) != 1 {
		b.Fatal("no entry")
	}
	b.ReportAllocs()
	for b.Loop() {
		pe, err := entryToProto(&batch[0], j.epoch)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := proto.Marshal(pe); err != nil {
			b.Fatal(err)
		}
	}
}
