package pipeline

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/logsift/logsift/pkg/corpus"
)

// corpusLines loads real logs from the shared corpus (read in place, never
// copied): Apache access and sshd auth logs. Without the corpus it
// generates look-alike lines so that the benchmarks still run.
func corpusLines(b *testing.B) [][]byte {
	b.Helper()
	root, _ := corpus.Dir()
	var lines [][]byte
	for _, name := range []string{
		"elastic-examples/apache_access_combined.log",
		"elastic-examples/auth.log",
	} {
		data, err := os.ReadFile(filepath.Join(root, name))
		if err != nil {
			continue
		}
		for l := range bytes.Lines(data) {
			lines = append(lines, bytes.TrimRight(l, "\r\n"))
		}
	}
	if len(lines) == 0 {
		b.Logf("corpus not found under %s: using generated lines", root)
		lines = syntheticLines(20000)
	}
	return lines
}

func syntheticLines(n int) [][]byte {
	r := rand.New(rand.NewPCG(7, 7))
	agents := []string{"Mozilla/5.0 (X11; Linux x86_64)", "Googlebot/2.1", "curl/7.68.0"}
	paths := []string{"/index.html", "/images/logo.png", "/blog/post.php", "/api/v1/users"}
	out := make([][]byte, n)
	for i := range out {
		if i%3 == 0 {
			out[i] = fmt.Appendf(nil, "Dec %2d 10:%02d:%02d ip-172-31-1-2 sshd[%d]: Failed password for invalid user admin from %d.%d.%d.%d port %d ssh2",
				1+r.IntN(28), r.IntN(60), r.IntN(60), r.IntN(30000), r.IntN(256), r.IntN(256), r.IntN(256), r.IntN(256), r.IntN(65536))
			continue
		}
		out[i] = fmt.Appendf(nil, `%d.%d.%d.%d - - [17/May/2015:10:05:%02d +0000] "GET %s HTTP/1.1" %d %d "-" "%s"`,
			r.IntN(256), r.IntN(256), r.IntN(256), r.IntN(256), r.IntN(60), paths[r.IntN(len(paths))],
			[]int{200, 304, 404}[r.IntN(3)], r.IntN(100000), agents[r.IntN(len(agents))])
	}
	return out
}

func totalBytes(lines [][]byte) int64 {
	var n int64
	for _, l := range lines {
		n += int64(len(l))
	}
	return n
}

var benchQueries = []struct{ name, query string }{
	{"contains_rare", `{a="b"} |= "Failed password for root"`},
	{"contains_common", `{a="b"} |= "GET"`},
	{"contains_absent", `{a="b"} |= "xyzzy-not-there"`},
	{"not_contains", `{a="b"} != "GET"`},
	{"contains_or", `{a="b"} |= "Invalid user" or "Failed password" or "error"`},
	{"fold_literal", `{a="b"} |~ "(?i)failed password"`},
	{"fold_absent", `{a="b"} |~ "(?i)xyzzy"`},
	{"regexp_literal", `{a="b"} |~ "Mozilla"`},
	{"regexp_dotstar", `{a="b"} |~ ".*Googlebot.*"`},
	{"regexp_alternation", `{a="b"} |~ "error|denied|Invalid user"`},
	{"regexp_prefiltered", `{a="b"} |~ "Failed password for .* from [0-9.]+ port \\d+"`},
	{"regexp_no_literal", `{a="b"} |~ "[0-9]{3} [0-9]{5,}"`},
	{"pattern", `{a="b"} |> "<_> \"GET <_> HTTP/1.1\" 200 <_>"`},
	{"ip_cidr", `{a="b"} |= ip("66.249.0.0/16")`},
	{"chain", `{a="b"} |= "GET" != "bot" |~ "(?i)\\.php"`},
}

func BenchmarkLineFilter(b *testing.B) {
	lines := corpusLines(b)
	size := totalBytes(lines)
	for _, q := range benchQueries {
		b.Run(q.name, func(b *testing.B) {
			p := compile(b, q.query)
			b.SetBytes(size)
			b.ReportAllocs()
			kept := 0
			for b.Loop() {
				kept = 0
				for _, l := range lines {
					if p.MatchLine(l) {
						kept++
					}
				}
			}
			b.ReportMetric(float64(kept), "kept")
		})
	}
}

// BenchmarkGoRegexp is the baseline: the same regexps on Go's regexp with
// no simplification or prefilter.
func BenchmarkGoRegexp(b *testing.B) {
	lines := corpusLines(b)
	size := totalBytes(lines)
	for _, c := range []struct{ name, re string }{
		{"fold_literal", `(?i)failed password`},
		{"regexp_literal", `Mozilla`},
		{"regexp_dotstar", `.*Googlebot.*`},
		{"regexp_alternation", `error|denied|Invalid user`},
		{"regexp_prefiltered", `Failed password for .* from [0-9.]+ port \d+`},
		{"regexp_no_literal", `[0-9]{3} [0-9]{5,}`},
		{"pattern_as_regexp", `(?s)\A.+"GET .+ HTTP/1\.1" 200 .+\z`},
	} {
		b.Run(c.name, func(b *testing.B) {
			re := regexp.MustCompile("(?s)" + c.re)
			b.SetBytes(size)
			for b.Loop() {
				for _, l := range lines {
					re.Match(l)
				}
			}
		})
	}
}
