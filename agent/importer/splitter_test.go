package importer

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/logsift/logsift/agent/detect"
)

func TestSplitter(t *testing.T) {
	long := strings.Repeat("x", 40)
	input := "a\r\n\n" + long + "\n" + strings.Repeat("y", 16) + "\nb"
	want := []string{"a\r|false", "|false", strings.Repeat("x", 16) + "|false", strings.Repeat("x", 16) + "|true", strings.Repeat("x", 8) + "|true", strings.Repeat("y", 16) + "|false", "b|false"}
	// One byte per read exercises every boundary.
	for _, r := range []io.Reader{strings.NewReader(input), iotest.OneByteReader(strings.NewReader(input))} {
		s := newSplitter(r, 16, nil)
		s.buf = make([]byte, 7)
		var got []string
		for {
			l, frag, err := s.next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, fmt.Sprintf("%s|%v", l, frag))
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("got  %q\nwant %q", got, want)
		}
		if s.readErr() != nil {
			t.Error(s.readErr())
		}
	}
}

// TestLongLines checks that a line longer than the record bound arrives
// whole, in pieces that each keep the line's number.
func TestLongLines(t *testing.T) {
	long := strings.Repeat("0123456789", 250_000) // 2.5 MB, over the 1 MiB record bound
	text := "2024-01-01T10:00:00Z first\n2024-01-01T10:00:01Z " + long + "\n2024-01-01T10:00:02Z last\n"
	s := newSplitter(strings.NewReader(text), detect.DefaultMaxRecordBytes, nil)
	sample, _ := s.sample(detect.SampleLines, detect.SampleBytes)
	p := detect.Detect(sample, detect.FileInfo{}, detect.Settings{})
	var pieces [][]byte
	var lines []int
	a := detect.NewAssembler(p, func(r *detect.Record) error {
		pieces = append(pieces, bytes.Clone(r.Text))
		lines = append(lines, r.Line)
		return nil
	})
	for _, l := range sample {
		a.Line(l)
	}
	if err := s.feed(a); err != nil {
		t.Fatal(err)
	}
	a.Close()
	// Pieces of one line join without a separator, lines with '\n'.
	var whole []byte
	for i, pc := range pieces {
		if i > 0 && lines[i] != lines[i-1] {
			whole = append(whole, '\n')
		}
		whole = append(whole, pc...)
	}
	if got := string(whole); got != strings.TrimSuffix(text, "\n") {
		t.Errorf("text changed: %d bytes, want %d", len(got), len(text)-1)
	}
	if len(pieces) != 5 || fmt.Sprint(lines) != "[1 2 2 2 3]" {
		t.Errorf("%d pieces on lines %v", len(pieces), lines)
	}
}
