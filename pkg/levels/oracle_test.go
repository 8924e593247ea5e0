package levels

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/logsift/logsift/pkg/corpus"
)

// The implementations of FromLine and DetectRecord before they became one
// pass over the line: kept as the oracles that the faster ones must agree
// with on every input (TestFromLineMatchesOracle, the Fuzz*MatchesOracle
// targets).

// oracleFromLine is the former FromLine.
func oracleFromLine(line []byte) string {
	p := line
	if len(p) > scanPrefix {
		p = p[:scanPrefix]
	}
	if l, ok := oracleFields(p); ok {
		return l
	}
	if l, ok := oracleWords(p); ok {
		return l
	}
	return Unknown
}

// oracleFields looks for `level=x`, `"level":"x"` and their variants. It
// stops only at '=' and ':' and looks back for the key, so ordinary text
// costs one byte comparison per byte.
func oracleFields(p []byte) (string, bool) {
	for i := 0; i < len(p); i++ {
		if p[i] != '=' && p[i] != ':' {
			continue
		}
		k := i
		for k > 0 && p[k-1] == ' ' {
			k--
		}
		if k > 0 && p[k-1] == '"' {
			k--
		}
		start := k
		for start > 0 && k-start < 10 && isWordByte(p[start-1]) {
			start--
		}
		if start > 0 && isWordByte(p[start-1]) {
			continue // the key is longer than any level key
		}
		if !isLevelKey(p[start:k]) {
			continue
		}
		j := i + 1
		for j < len(p) && (p[j] == ' ' || p[j] == '\t' || p[j] == '"' || p[j] == '\'') {
			j++
		}
		e := j
		for e < len(p) && isLetter(p[e]) {
			e++
		}
		if e-j == 0 || e-j > 16 {
			continue
		}
		var buf [16]byte
		low := buf[:e-j]
		for n, c := range p[j:e] {
			low[n] = c | 0x20
		}
		if l, ok := normalizeLower(low); ok {
			return l, true
		}
	}
	return "", false
}

// oracleWords finds the first whole word that names a level. Single letters
// are not words here: "I" and "a" occur in ordinary text. Words must be all
// upper or all lower case, or capitalised, as loggers print them.
func oracleWords(p []byte) (string, bool) {
	for i := 0; i < len(p); {
		if !isLetter(p[i]) {
			i++
			continue
		}
		j := i
		for j < len(p) && isLetter(p[j]) {
			j++
		}
		w := p[i:j]
		if len(w) < 3 || len(w) > 8 || !startsLikeALevel(w[0]) {
			i = j
			continue
		}
		boundaryBefore := i == 0 || !isWordByte(p[i-1])
		boundaryAfter := j == len(p) || !isWordByte(p[j])
		if boundaryBefore && boundaryAfter && casedLikeALevel(w) {
			var buf [8]byte
			low := buf[:len(w)]
			for k, c := range w {
				low[k] = c | 0x20
			}
			if l, ok := wordLevel(low); ok {
				return l, true
			}
		}
		i = j
	}
	return "", false
}

// TestFromLineMatchesOracle runs both implementations over every line of
// the corpus's logs.
func TestFromLineMatchesOracle(t *testing.T) {
	root := corpus.Require(t)
	files, err := corpus.Files(root, ".")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, f := range files {
		if !strings.HasSuffix(f, ".log") && !strings.HasSuffix(f, ".json") {
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range corpus.Lines(data) {
			n++
			if got, want := FromLine(l), oracleFromLine(l); got != want {
				t.Fatalf("%s: %q: %s, the former implementation %s", f, l, got, want)
			}
			if got, want := DetectRecord(nil, nil, l, Hints{}), oraclePlainRecord(l); got != want {
				t.Fatalf("%s: %q: DetectRecord %s, the former implementation %s", f, l, got, want)
			}
		}
	}
	if n < 100000 {
		t.Fatalf("only %d corpus lines compared", n)
	}
}

func FuzzFromLineMatchesOracle(f *testing.F) {
	for _, s := range []string{"level=info", `{"level":"x"}`, "ERROR", "lvl:", "level=", "severity", `x level="WARN" ERROR`, "Error level=debug", "a.ERROR_b", "ts=1 msg=\"info: x\""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		if got, want := FromLine(line), oracleFromLine(line); got != want {
			t.Fatalf("%q: %s, the former implementation %s", line, got, want)
		}
	})
}

// BenchmarkFromLineCorpus measures both implementations per line of real
// logs of different shapes.
func BenchmarkFromLineCorpus(b *testing.B) {
	root := corpus.Require(b)
	for _, rel := range []string{"zeek-wrccdc/tsv/dns.log", "elastic-examples/apache_access_combined.log", "loghub/HDFS/HDFS_2k.log", "elastic-examples/auth.log"} {
		data, err := os.ReadFile(filepath.Join(root, rel))
		if err != nil {
			b.Fatal(err)
		}
		lines := corpus.Lines(data)
		for _, impl := range []struct {
			name string
			fn   func([]byte) string
		}{{"now", FromLine}, {"former", oracleFromLine}} {
			b.Run(filepath.Base(rel)+"/"+impl.name, func(b *testing.B) {
				b.SetBytes(int64(len(data)))
				for i := 0; i < b.N; i++ {
					for _, l := range lines {
						impl.fn(l)
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(lines)), "ns/line")
			})
		}
	}
}

// oracleMarkers (the former fromMarkers) finds what Loki's detection does not know: MongoDB's level
// letter, and level words that are not Loki's. Words that are also plain
// English (notice, alert, information, severe) count only in upper case,
// capitalised, or set off like a level field: "[notice]", "<alert>",
// "notice:".
func oracleMarkers(p []byte) (string, bool) {
	if len(p) > scanPrefix {
		p = p[:scanPrefix]
	}
	if l, ok := mongoLevel(p); ok {
		return l, true
	}
	n := len(p)
	for i := 0; i < n; {
		if class[p[i]]&cLetter == 0 {
			i++
			continue
		}
		j := i + 1
		for j < n && class[p[j]]&cLetter != 0 {
			j++
		}
		for j < n && isDigit(p[j]) { // DEBUG1..DEBUG5
			j++
		}
		start := i
		i = j
		if wl := j - start; wl < 3 || wl > 11 || class[p[start]]&cMarker == 0 {
			continue
		}
		if (start > 0 && class[p[start-1]]&cWord != 0) || (j < n && class[p[j]]&cWord != 0) {
			continue
		}
		w := p[start:j]
		var prev, next byte = ' ', ' '
		if start > 0 {
			prev = p[start-1]
		}
		if j < n {
			next = p[j]
		}
		if string(w) == "LOG" && next == ':' { // PostgreSQL's LOG severity
			return Info, true
		}
		delimited := prev == '[' || prev == '<' || next == ']' || next == '>' || next == ':'
		if l, ok := markerWord(w, delimited); ok {
			return l, true
		}
	}
	return "", false
}

// oraclePlainRecord is the former DetectRecord for a record without
// labels or hints: Detect's pass, then the markers' pass.
func oraclePlainRecord(record []byte) string {
	first := record
	if i := bytes.IndexByte(first, '\n'); i >= 0 {
		first = first[:i]
	}
	if l := oracleFromLine(first); l != Unknown {
		return l
	}
	if l, ok := oracleMarkers(first); ok {
		return l
	}
	return Unknown
}

func FuzzDetectRecordMatchesOracle(f *testing.F) {
	for _, s := range []string{"[notice] x", "LOG: x", "DEBUG1 x", "AB12NOTICE", "SEVERE x level=info", `{"s":"W","m":"ALERT"}`, "x Notice: y"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, rec []byte) {
		if got, want := DetectRecord(nil, nil, rec, Hints{}), oraclePlainRecord(rec); got != want {
			t.Fatalf("%q: %s, the former implementation %s", rec, got, want)
		}
	})
}
