package query

import (
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/logsift/logsift/pkg/chunk"
	"github.com/logsift/logsift/pkg/labels"
	"github.com/logsift/logsift/pkg/store"
)

// TestSkippedMetadataChangesNothing runs metric queries with the scan
// leaving unneeded structured metadata undecoded and with it decoding
// everything, and wants the same answers. The data is made to catch a
// wrong skip: every entry has detected_level, some carry a status label
// that collides with the pattern's capture (the metadata's value then
// wins the grouping), resends make duplicates across overlapping chunks
// whose hashes cover the metadata, an entry's twin with other metadata is
// not a duplicate, and runs of equal timestamps cross 4 KiB blocks.
func TestSkippedMetadataChangesNothing(t *testing.T) {
	st, err := store.Open(t.TempDir(), store.Options{TargetChunkSize: 16 << 10, Chunk: chunk.Options{BlockSize: chunk.MinBlockSize}})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close(context.Background())
	r := rand.New(rand.NewPCG(41, 42))
	streams := []labels.Labels{labels.New("job", "m", "host", "a"), labels.New("job", "m", "host", "b")}
	pushOverlapping(t, st, r, streams, 150, 40, func(sec float64) []chunk.Entry {
		line := fmt.Sprintf("GET /p/%d %d took=%dms", r.IntN(50), 200+r.IntN(3), r.IntN(9))
		md := []string{"detected_level", []string{"info", "warn"}[r.IntN(2)]}
		switch r.IntN(25) {
		case 0:
			md = append(md, "status", "from-metadata")
		case 1:
			md = append(md, "trace", fmt.Sprint(r.IntN(4)))
		}
		es := []chunk.Entry{entry(sec, line, md...)}
		switch r.IntN(10) {
		case 0: // a run of one timestamp, long enough to cross blocks
			for range 30 + r.IntN(60) {
				es = append(es, entry(sec, line+" again", md...))
			}
		case 1: // the same line and time, other metadata: not a duplicate
			es = append(es, entry(sec, line, "detected_level", "error"))
		}
		return es
	}, nil)
	eng := &Engine{Store: st}
	const pat = `pattern "<method> <path> <status> <_>"`
	for _, c := range []struct {
		query string
		skips bool // whether some block's metadata must go undecoded
	}{
		// Blocks that hold a status label are decoded, the others not.
		{`sum by (status) (count_over_time({job="m"} | ` + pat + ` [5m]))`, true},
		{`sum by (path) (count_over_time({job="m"} | ` + pat + ` [5m]))`, true},
		{`sum by (status_extracted) (count_over_time({job="m"} | ` + pat + ` [5m]))`, true},
		{`sum by (host, method) (count_over_time({job="m"} |= "GET" | ` + pat + ` [5m]))`, true},
		{`sum by (host) (count_over_time({job="m"} |= "again" [5m]))`, true},
		{`sum by (detected_level) (count_over_time({job="m"} |= "/p/1" [5m]))`, false}, // in every block
		{`sum by (trace) (bytes_over_time({job="m"} |~ "took=[0-4]" [5m]))`, true},
		{`sum(count_over_time({job="m"} | regexp "took=(?P<took>\\d)" [5m]))`, true},
		{`sum by (status) (count_over_time({job="m"} | logfmt [5m]))`, false}, // logfmt reads every label
		{`count_over_time({job="m"} |= "again" [5m])`, false},                 // every label is kept
	} {
		t.Run(c.query, func(t *testing.T) {
			run := func(skip bool) *Result {
				defer func(old bool) { skipUnneededMetadata = old }(skipUnneededMetadata)
				skipUnneededMetadata = skip
				return rangeQuery(t, eng, c.query, 0, 3300, 5*time.Minute)
			}
			full, skipped := run(false), run(true)
			if full.Stats.MetadataSkipped != 0 {
				t.Fatalf("skipped %d blocks' metadata with skipping off", full.Stats.MetadataSkipped)
			}
			if got := skipped.Stats.MetadataSkipped > 0; got != c.skips {
				t.Fatalf("skipped the metadata of %d blocks; want skipping: %v", skipped.Stats.MetadataSkipped, c.skips)
			}
			if len(full.Matrix) == 0 {
				t.Fatal("no series")
			}
			if !reflect.DeepEqual(full.Matrix, skipped.Matrix) {
				t.Fatalf("answers differ:\nfull:    %v\nskipped: %v", full.Matrix, skipped.Matrix)
			}

			if full.Stats.Duplicates != skipped.Stats.Duplicates {
				t.Fatalf("duplicates: %d decoding all, %d skipping", full.Stats.Duplicates, skipped.Stats.Duplicates)
			}
		})
	}
}

// TestSkippedMetadataRunAcrossBlocks puts a pair of identical entries (a
// duplicate: same time, line and metadata) on each side of every block
// boundary of a chunk whose blocks otherwise hold distinct timestamps, so
// nothing inside a block makes the scan decode its metadata. The pair's
// first entry is hashed at the end of its block: if it were hashed
// without the metadata the scan skipped, and the second with it, the
// duplicate would be counted twice.
func TestSkippedMetadataRunAcrossBlocks(t *testing.T) {
	opts := chunk.Options{BlockSize: chunk.MinBlockSize}
	lbls := labels.New("job", "x")
	mk := func(i int) chunk.Entry {
		return entry(float64(i), fmt.Sprintf("GET /p/%04d ok", i), "detected_level", "info")
	}
	var ents []chunk.Entry
	for i := range 600 {
		ents = append(ents, mk(i))
	}
	// Every entry has the same size, so the blocks hold k entries each
	// whatever the entries are.
	_, meta, err := chunk.Encode(lbls, slices.Clone(ents), opts)
	if err != nil {
		t.Fatal(err)
	}
	k := meta.Blocks[0].Entries
	pairs := 0
	for b := k; b < len(ents); b += k {
		ents[b] = ents[b-1]
		pairs++
	}
	_, meta, err = chunk.Encode(lbls, slices.Clone(ents), opts)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i < len(meta.Blocks); i++ {
		if meta.Blocks[i].MinTime != meta.Blocks[i-1].MaxTime {
			t.Fatalf("block %d does not start with the pair that ends block %d", i, i-1)
		}
	}
	eng := newEngine(t, true, store.Options{TargetChunkSize: 1 << 20, Chunk: opts}, testStream{lbls, ents})
	const q = `sum by (method) (count_over_time({job="x"} | pattern "<method> <path> <_>" [1h]))`
	for _, skip := range []bool{false, true} {
		func() {
			defer func(old bool) { skipUnneededMetadata = old }(skipUnneededMetadata)
			skipUnneededMetadata = skip
			res := instantQuery(t, eng, q, 3599)
			if skip && res.Stats.MetadataSkipped == 0 {
				t.Fatal("no block's metadata was skipped")
			}
			if len(res.Vector) != 1 || res.Vector[0].V != float64(len(ents)-pairs) || res.Stats.Duplicates != int64(pairs) {
				t.Fatalf("skip=%v: %v, %d duplicates; want %d entries once each, %d duplicates", skip, res.Vector, res.Stats.Duplicates, len(ents)-pairs, pairs)
			}
		}()
	}
}
