package main

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/logsift/logsift/pkg/chunk"
	"github.com/logsift/logsift/pkg/corpus"
	"github.com/logsift/logsift/pkg/labels"
	"github.com/logsift/logsift/pkg/lokiclient"
	"github.com/logsift/logsift/pkg/sampledata"
)

// pushedFile is one file pushed as one stream, with the timestamps given.
type pushedFile struct {
	labels labels.Labels
	lines  [][]byte
	ts     []int64
}

// pushFiles sends files through the protobuf+snappy push API in batches,
// as a Loki client would.
func pushFiles(t *testing.T, c *lokiclient.Client, files []pushedFile) {
	t.Helper()
	const batch = 1000
	for _, f := range files {
		for i := 0; i < len(f.lines); i += batch {
			j := min(i+batch, len(f.lines))
			s := lokiclient.Stream{Labels: f.labels}
			for k := i; k < j; k++ {
				s.Entries = append(s.Entries, chunk.Entry{Timestamp: f.ts[k], Line: f.lines[k]})
			}
			if err := c.Push(context.Background(), []lokiclient.Stream{s}); err != nil {
				t.Fatalf("push %s: %v", f.labels, err)
			}
		}
	}
}

// checkReadBack reads every stream back and compares it line by line, then
// checks line filters and time ranges against brute force over the input.
func checkReadBack(t *testing.T, c *lokiclient.Client, files []pushedFile, base time.Time) {
	t.Helper()
	end := base.Add(24 * time.Hour)
	for _, f := range files {
		sel := fmt.Sprintf("{job=%q, file=%q}", f.labels.Get("job"), f.labels.Get("file"))
		got := queryAll(t, c, sel, base, end)
		if len(got) != len(f.lines) {
			t.Errorf("%s: read back %d lines, pushed %d", sel, len(got), len(f.lines))
			continue
		}
		for i := range got {
			if got[i].Line != asJSONString(f.lines[i]) || got[i].Timestamp != f.ts[i] {
				t.Errorf("%s: line %d = %d %q, pushed %d %q", sel, i, got[i].Timestamp, got[i].Line, f.ts[i], f.lines[i])
				break
			}
		}
	}
	r := rand.New(rand.NewPCG(7, 7))
	// Line filters: substrings taken from the data (often cutting words in
	// half), counted by brute force over every pushed line.
	for n := 0; n < 40; n++ {
		f := files[r.IntN(len(files))]
		line := f.lines[r.IntN(len(f.lines))]
		if len(line) < 8 {
			continue
		}
		a := r.IntN(len(line) - 6)
		needle := string(line[a : a+3+r.IntN(min(12, len(line)-a-3))])
		if !isPrintableASCII(needle) {
			continue
		}
		want := 0
		for _, g := range files {
			for _, l := range g.lines {
				if bytes.Contains(l, []byte(needle)) {
					want++
				}
			}
		}
		q := fmt.Sprintf("{job=%q} |= %q", f.labels.Get("job"), needle)
		if got := len(queryAll(t, c, q, base, end)); got != want {
			t.Errorf("%s: %d lines, brute force finds %d", q, got, want)
		}
	}
	// A case-insensitive regexp.
	want := 0
	re := regexp.MustCompile(`(?i)error`)
	for _, g := range files {
		for _, l := range g.lines {
			if re.Match(l) {
				want++
			}
		}
	}
	q := fmt.Sprintf(`{job=%q} |~ "(?i)error"`, files[0].labels.Get("job"))
	if got := len(queryAll(t, c, q, base, end)); got != want {
		t.Errorf("%s: %d lines, brute force finds %d", q, got, want)
	}
	// Time ranges: a slice of one stream's timestamps.
	f := files[len(files)/2]
	lo, hi := f.ts[len(f.ts)/4], f.ts[len(f.ts)/2]
	want = 0
	for _, ts := range f.ts {
		if ts >= lo && ts < hi {
			want++
		}
	}
	sel := fmt.Sprintf("{job=%q, file=%q}", f.labels.Get("job"), f.labels.Get("file"))
	if got := len(queryAll(t, c, sel, time.Unix(0, lo), time.Unix(0, hi))); got != want {
		t.Errorf("%s over [%d, %d): %d lines, want %d", sel, lo, hi, got, want)
	}
}

// asJSONString is what a line becomes in a JSON answer: each byte that is
// not part of valid UTF-8 turns into U+FFFD, as encoding/json does.
func asJSONString(b []byte) string {
	var out []rune
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		out = append(out, r) // RuneError for an invalid byte, with n == 1
		b = b[n:]
	}
	return string(out)
}

func isPrintableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e || s[i] == '\\' {
			return false
		}
	}
	return true
}

// TestLoghubRoundTrip pushes every file of the Loghub corpus and reads back
// exactly what was pushed, before and after a restart.
func TestLoghubRoundTrip(t *testing.T) {
	root := corpus.Require(t)
	paths, err := corpus.Files(root, "loghub")
	if err != nil {
		t.Fatal(err)
	}
	base := time.Date(2016, 9, 28, 4, 30, 0, 0, time.UTC)
	var files []pushedFile
	for fi, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(root, p)
		f := pushedFile{labels: labels.New("job", "loghub", "file", rel), lines: corpus.Lines(data)}
		if len(f.lines) == 0 {
			continue
		}
		// Timestamps spread over a day, one file starting a little after
		// the other, so that streams interleave in time.
		for i := range f.lines {
			f.ts = append(f.ts, base.Add(time.Duration(fi)*time.Minute+time.Duration(i)*time.Second).UnixNano())
		}
		files = append(files, f)
	}
	p := startServer(t, t.TempDir())
	c := p.client("loghub-tenant")
	pushFiles(t, c, files)
	checkReadBack(t, c, files, base)
	// After a clean restart everything comes back from disk.
	p.stop()
	p = startServer(t, p.dataDir)
	checkReadBack(t, p.client("loghub-tenant"), files, base)
	// Another tenant sees none of it.
	resp, err := p.client("someone-else").QueryRange(context.Background(), `{job="loghub"}`, base, base.Add(24*time.Hour), 100, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s, _ := resp.Streams(); len(s) != 0 {
		t.Fatalf("another tenant sees %d streams", len(s))
	}
}

// TestShippedSamplesRoundTrip always runs: the generated samples go through
// the same push and read-back checks as the corpus.
func TestShippedSamplesRoundTrip(t *testing.T) {
	base := time.Date(2025, 1, 2, 3, 0, 0, 0, time.UTC)
	var files []pushedFile
	for _, s := range sampledata.Generate(sampledata.Options{Seed: 3, End: base.Add(time.Hour), Span: time.Hour, Lines: 3000}) {
		f := pushedFile{labels: labels.New("job", "samples", "file", s.Labels.Get("job"))}
		for _, e := range s.Entries {
			f.lines = append(f.lines, e.Line)
			f.ts = append(f.ts, e.Timestamp)
		}
		files = append(files, f)
	}
	p := startServer(t, t.TempDir())
	pushFiles(t, p.client(""), files)
	checkReadBack(t, p.client(""), files, base)
}
