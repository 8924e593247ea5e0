package stream

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/logsift/logsift/pkg/events"
)

// appendSearch appends an event of tenant tn whose encoding grows with
// queryLen.
func appendSearch(j *Journal, tn string, queryLen int) {
	j.append(&events.Event{Type: events.SearchCompleted, Tenant: tn, Search: &events.Search{QueryID: "q", Query: strings.Repeat("x", queryLen)}}, 0)
}

// retained reads every retained sequence through read, as a stream does.
func retained(t *testing.T, j *Journal) []uint64 {
	t.Helper()
	var out []uint64
	buf := make([]entry, 0, 3) // small batches cross the ring's wrap
	var after uint64
	for {
		b, skipped, _ := j.read(after, buf)
		if skipped > 0 {
			after += skipped
		}
		if len(b) == 0 {
			return out
		}
		for _, e := range b {
			out = append(out, e.seq)
			after = e.seq
		}
	}
}

func TestJournalCountBound(t *testing.T) {
	j := newJournal(JournalOptions{MaxEvents: 5, Epoch: "e"})
	for i := 0; i < 12; i++ {
		appendSearch(j, "t", 10)
	}
	st := j.Stats()
	if st.Events != 5 || st.First != 8 || st.Last != 12 {
		t.Fatalf("stats %+v", st)
	}
	if got := fmt.Sprint(retained(t, j)); got != "[8 9 10 11 12]" {
		t.Fatalf("retained %s", got)
	}
}

func TestJournalByteBound(t *testing.T) {
	probe := newJournal(JournalOptions{Epoch: "e"})
	appendSearch(probe, "t", 1000)
	size := probe.Stats().Bytes
	if size <= 1000 {
		t.Fatalf("an event of more than 1000 bytes counts %d", size)
	}
	j := newJournal(JournalOptions{MaxBytes: 3*size + size/2, Epoch: "e"})
	for i := 0; i < 10; i++ {
		appendSearch(j, "t", 1000)
		if st := j.Stats(); st.Bytes > 3*size+size/2 {
			t.Fatalf("after %d events the journal holds %d bytes, bound %d", i+1, st.Bytes, 3*size+size/2)
		}
	}
	if st := j.Stats(); st.Events != 3 || st.First != 8 {
		t.Fatalf("stats %+v, want the 3 newest", st)
	}
	// An event larger than the bound is kept, alone, until the next.
	appendSearch(j, "t", 10*int(size))
	if st := j.Stats(); st.Events != 1 || st.Last != 11 {
		t.Fatalf("after an oversized event: %+v", st)
	}
	appendSearch(j, "t", 1000)
	if st := j.Stats(); st.Events != 1 || st.First != 12 {
		t.Fatalf("after the oversized event: %+v", st)
	}
}

// TestJournalMatchesAModel appends events of random sizes under both
// bounds and checks, after each, that the journal holds exactly the
// newest events that fit, readable in order across the ring's growth
// and wrap.
func TestJournalMatchesAModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := 0; round < 20; round++ {
		maxEvents := 1 + rng.IntN(40)
		maxBytes := int64(300 + rng.IntN(5000))
		j := newJournal(JournalOptions{MaxEvents: maxEvents, MaxBytes: maxBytes, Epoch: "e"})
		type kept struct {
			seq  uint64
			size int64
		}
		var model []kept
		var bytes int64
		for i := 1; i <= 300; i++ {
			appendSearch(j, "t", rng.IntN(2000))
			size := j.ring[(j.head+j.count-1)%len(j.ring)].size
			for len(model) > 0 && (len(model) >= maxEvents || bytes+size > maxBytes) {
				bytes -= model[0].size
				model = model[1:]
			}
			model = append(model, kept{uint64(i), size})
			bytes += size
			st := j.Stats()
			if st.Events != len(model) || st.Bytes != bytes || st.First != model[0].seq || st.Last != uint64(i) {
				t.Fatalf("round %d event %d: stats %+v, model %d events %d bytes from %d", round, i, st, len(model), bytes, model[0].seq)
			}
			got := retained(t, j)
			if len(got) != len(model) {
				t.Fatalf("round %d event %d: read %v", round, i, got)
			}
			for k := range got {
				if got[k] != model[k].seq {
					t.Fatalf("round %d event %d: read %v", round, i, got)
				}
			}
		}
	}
}

func TestParseID(t *testing.T) {
	for _, s := range []string{"e-0", "mgx1k2a7rz4q-1532", "0-18446744073709551615", strings.Repeat("z", 32) + "-1"} {
		id, err := ParseID(s)
		if err != nil || id.String() != s {
			t.Errorf("ParseID(%q) = %v, %v", s, id, err)
		}
	}
	for _, s := range []string{"", "-", "e-", "-1", "e1", "E-1", "e-01", "e-+1", "e- 1", "e-1-2", "e-18446744073709551616",
		strings.Repeat("z", 33) + "-1", "é-1", "e-1\x00"} {
		if id, err := ParseID(s); err == nil || !errors.Is(err, errBadID) {
			t.Errorf("ParseID(%q) = %v, %v; want an error", s, id, err)
		}
	}
	e := NewEpoch()
	if !validEpoch(e) || e == NewEpoch() {
		t.Fatalf("epoch %q", e)
	}
}

// FuzzParseID checks that ParseID accepts exactly the IDs String writes,
// and that resuming from any text neither panics nor starts anywhere but
// within the journal.
func FuzzParseID(f *testing.F) {
	for _, s := range []string{"e-0", "e-5", "e-9", "x-3", "mgx1k2a7rz4q-1532", "e-01", "e--1", "garbage", "e-18446744073709551615"} {
		f.Add(s)
	}
	j := newJournal(JournalOptions{MaxEvents: 4, Epoch: "e"})
	for i := 0; i < 8; i++ {
		appendSearch(j, "t", 1)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := ParseID(s)
		if err != nil {
			if !errors.Is(err, errBadID) {
				t.Fatalf("error %v does not wrap errBadID", err)
			}
		} else {
			if id.String() != s || !validEpoch(id.Epoch) {
				t.Fatalf("ParseID(%q) = %+v, which writes %q", s, id, id.String())
			}
			if back, err := ParseID(id.String()); err != nil || back != id {
				t.Fatalf("round trip of %q: %+v %v", s, back, err)
			}
		}
		cursor, reset := j.resume(s)
		switch {
		case reset != nil:
			if cursor != 8 || reset.Reason == "" {
				t.Fatalf("resume(%q) = %d %+v", s, cursor, reset)
			}
		case s == "":
			if cursor != 8 {
				t.Fatalf("resume of nothing at %d", cursor)
			}
		default:
			if err != nil || id.Epoch != "e" || cursor != id.Seq || cursor < 4 || cursor > 8 {
				t.Fatalf("resume(%q) = %d without a reset", s, cursor)
			}
		}
	})
}
