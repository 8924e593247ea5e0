package build

import (
	"fmt"
	"testing"
	"time"

	"github.com/logsift/logsift/pkg/chunk"
	"github.com/logsift/logsift/pkg/labels"
)

func TestBuilderCutsDecodableChunks(t *testing.T) {
	var budget Budget
	b := New(labels.New("job", "a"), Options{TargetBytes: 100, MaxAge: time.Hour, Budget: &budget})
	if data, _, err := b.Cut(); data != nil || err != nil {
		t.Fatal("empty builder cut a chunk")
	}
	for i := 0; !b.Full(); i++ {
		b.Add(int64(1000+i), []byte(fmt.Sprintf("line %d", i)), nil)
	}
	if budget.Bytes() != int64(b.RawBytes()+b.Entries()*entryOverhead) || b.Due(time.Now()) {
		t.Fatalf("budget %d raw %d", budget.Bytes(), b.RawBytes())
	}
	n := b.Entries()
	data, meta, err := b.Cut()
	if err != nil {
		t.Fatal(err)
	}
	if budget.Bytes() != 0 || b.Entries() != 0 {
		t.Fatal("cut did not empty the builder")
	}
	c, err := chunk.Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Verify(); err != nil {
		t.Fatal(err)
	}
	if meta.Entries != n || !meta.Labels.Equal(labels.New("job", "a")) {
		t.Fatalf("meta %+v", meta)
	}
	var bb chunk.BlockBuffer
	ents, _ := c.ReadBlock(0, &bb)
	if string(ents[0].Line) != "line 0" || ents[0].Timestamp != 1000 {
		t.Fatalf("first entry %q@%d", ents[0].Line, ents[0].Timestamp)
	}
}

func TestSameEntriesGiveTheSameChunkID(t *testing.T) {
	build := func() chunk.ID {
		b := New(labels.New("job", "a"), Options{})
		for i := range 100 {
			b.Add(int64(i), []byte(fmt.Sprintf("l%d", i)), labels.New("k", "v"))
		}
		_, meta, err := b.Cut()
		if err != nil {
			t.Fatal(err)
		}
		return meta.ID
	}
	if build() != build() {
		t.Fatal("same entries, different chunk IDs: a resend would not deduplicate")
	}
}

func TestDueByAge(t *testing.T) {
	b := New(labels.New("job", "a"), Options{MaxAge: time.Minute})
	b.Add(1, []byte("x"), nil)
	if b.Due(time.Now()) || !b.Due(time.Now().Add(2*time.Minute)) {
		t.Fatal("age cut wrong")
	}
}
