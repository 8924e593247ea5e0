package chunk

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/logsift/logsift/pkg/corpus"
	"github.com/logsift/logsift/pkg/labels"
)

// corpusStream is one corpus file read as a stream of entries, one per line.
type corpusStream struct {
	family string
	path   string
	lines  [][]byte
	raw    int
}

// corpusFamily groups the corpus files that are log data (not licences,
// READMEs or Loghub's derived CSVs) by the system that wrote them.
func corpusFamily(rel string) string {
	switch {
	case strings.Contains(rel, "apache_access"):
		return "apache-access"
	case strings.HasSuffix(rel, "auth.log"):
		return "auth-syslog"
	case strings.Contains(rel, "kafkaServer-gc"):
		return "jvm-gc"
	case strings.Contains(rel, "/kafka/") && strings.Contains(rel, ".log"):
		return "kafka-log4j"
	case strings.Contains(rel, "nginxplus"):
		return "nginx-json"
	case strings.HasPrefix(rel, "zeek-wrccdc/json/"):
		return "zeek-json"
	case strings.HasPrefix(rel, "zeek-wrccdc/tsv/"):
		return "zeek-tsv"
	case strings.HasPrefix(rel, "loghub/") && strings.HasSuffix(rel, "_2k.log"):
		return "loghub"
	case strings.HasPrefix(rel, "beats-module-samples/") && strings.HasSuffix(rel, ".log"),
		strings.HasPrefix(rel, "fixtures-fluent-bit/tail/") && strings.HasSuffix(rel, ".log"):
		return "small-samples"
	}
	return ""
}

// loadCorpus reads every log file of the corpus, splitting lines on \n and
// dropping a trailing \r. maxBytes > 0 truncates each file.
func loadCorpus(tb testing.TB, maxBytes int) []*corpusStream {
	tb.Helper()
	root := corpus.Require(tb)
	var out []*corpusStream
	err := filepath.Walk(root, func(path string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() || info.Size() == 0 {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		fam := corpusFamily(filepath.ToSlash(rel))
		if fam == "" {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if maxBytes > 0 && len(b) > maxBytes {
			b = b[:maxBytes]
		}
		s := &corpusStream{family: fam, path: filepath.ToSlash(rel)}
		for _, l := range bytes.Split(b, []byte("\n")) {
			l = bytes.TrimSuffix(l, []byte("\r"))
			if len(l) == 0 {
				continue
			}
			s.lines = append(s.lines, l)
			s.raw += len(l)
		}
		if len(s.lines) > 0 {
			out = append(out, s)
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].path < out[j].path })
	return out
}

// entriesOf turns lines into entries one millisecond apart.
func entriesOf(lines [][]byte, start int64) []Entry {
	ents := make([]Entry, len(lines))
	for i, l := range lines {
		ents[i] = Entry{Timestamp: start + int64(i)*1e6, Line: l}
	}
	return ents
}

// splitBytes cuts lines into consecutive groups of about size raw bytes, the
// way a store cuts a stream into chunks.
func splitBytes(lines [][]byte, size int) [][][]byte {
	var out [][][]byte
	start, n := 0, 0
	for i, l := range lines {
		n += len(l)
		if n >= size {
			out = append(out, lines[start:i+1])
			start, n = i+1, 0
		}
	}
	if start < len(lines) {
		out = append(out, lines[start:])
	}
	return out
}

var (
	genMethods = []string{"GET", "GET", "GET", "POST", "PUT", "DELETE", "HEAD"}
	genPaths   = []string{"/", "/index.html", "/api/v1/users", "/api/v1/orders", "/static/app.js", "/static/style.css",
		"/images/logo.png", "/login", "/logout", "/search", "/healthz", "/metrics", "/wp-login.php", "/favicon.ico"}
	genAgents = []string{
		"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0",
		"curl/8.5.0", "Googlebot/2.1 (+http://www.google.com/bot.html)", "python-requests/2.31.0",
		"Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
	}
	genStatus = []int{200, 200, 200, 200, 301, 304, 404, 500, 503}
	genMonths = []string{"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"}
)

// genAccessLog makes Apache-combined-like lines: the stand-in for the corpus
// in benchmarks when the corpus is absent.
func genAccessLog(rng *rand.Rand, n int) [][]byte {
	lines := make([][]byte, n)
	sec := 0
	for i := range lines {
		sec += rng.IntN(3)
		lines[i] = fmt.Appendf(nil, "%d.%d.%d.%d - - [%02d/%s/2024:%02d:%02d:%02d +0000] \"%s %s?id=%d HTTP/1.1\" %d %d \"https://example.com%s\" \"%s\"",
			10+rng.IntN(200), rng.IntN(256), rng.IntN(256), 1+rng.IntN(254),
			1+sec/86400%28, genMonths[sec/86400/28%12], sec/3600%24, sec/60%60, sec%60,
			genMethods[rng.IntN(len(genMethods))], genPaths[rng.IntN(len(genPaths))], rng.IntN(100000),
			genStatus[rng.IntN(len(genStatus))], rng.IntN(50000),
			genPaths[rng.IntN(len(genPaths))], genAgents[rng.IntN(len(genAgents))])
	}
	return lines
}

// genNasty makes lines that stress the filter's edge cases: mixed case,
// UTF-8 including the Kelvin sign and long s, invalid UTF-8, binary bytes,
// multi-line entries, very short lines.
func genNasty(rng *rand.Rand, n int) [][]byte {
	pieces := []string{"Kelvin", "\u212Aelvin", "ſtatus", "STATUS", "Straße", "straSSe", "ǅemal", "ΣΊΣΥΦΟΣ", "σίσυφος",
		"café", "CAFÉ", "İstanbul", "ıi", "error", "ERROR", "Err", "\xff\xfe\x00", "\x00\x01\x02", "k", "s", "KS", "\n\tat ", "a\nb",
		"ab", "c", "x", "日本語のログ", "😀", "\u00b5s", "\u03bcs", "timeout=30s"}
	lines := make([][]byte, n)
	for i := range lines {
		var b []byte
		for range rng.IntN(8) {
			switch rng.IntN(4) {
			case 0:
				b = append(b, pieces[rng.IntN(len(pieces))]...)
			case 1:
				for range 1 + rng.IntN(6) {
					b = append(b, byte('a'+rng.IntN(26))-byte(32*rng.IntN(2)))
				}
			case 2:
				b = append(b, byte(rng.IntN(256)))
			default:
				b = append(b, ' ')
			}
		}
		lines[i] = b
	}
	return lines
}

var testLabels = labels.New("job", "test", "host", "web-1")
