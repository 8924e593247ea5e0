package patterns

import (
	"fmt"
	"strings"
	"testing"
)

func mine(opts Options, lines ...string) *Miner {
	m := New(opts)
	for _, l := range lines {
		m.Add([]byte(l))
	}
	return m
}

func patternsOf(m *Miner) map[string]int64 {
	out := map[string]int64{}
	for _, c := range m.Clusters() {
		out[c.Pattern()] += c.Lines()
	}
	return out
}

func TestSimilarLinesShareAPattern(t *testing.T) {
	var lines []string
	for i := range 50 {
		lines = append(lines, fmt.Sprintf("level=info ts=2024-06-01T12:00:%02dZ msg=\"request done\" path=/api/users/%d duration=%dms", i%60, i, i*3))
		lines = append(lines, fmt.Sprintf("connection from 10.0.0.%d refused by peer", i))
		if i%5 == 0 {
			lines = append(lines, fmt.Sprintf("GET /index.html user=%s status=200", []string{"alice", "bob", "carol", "dave", "erin", "frank"}[i%6]))
		}
	}
	got := patternsOf(mine(Options{}, lines...))
	want := map[string]int64{
		`level=info ts=<_> msg="request done" path=<_> duration=<_>`: 50,
		`connection from <_> refused by peer`:                        50,
		`GET /index.html user=<_> status=<_>`:                        10,
	}
	if len(got) != len(want) {
		t.Fatalf("got %d patterns, want %d: %v", len(got), len(want), got)
	}
	for p, n := range want {
		if got[p] != n {
			t.Errorf("pattern %q: %d lines, want %d (all: %v)", p, got[p], n, got)
		}
	}
}

func TestDifferentShapesStayApart(t *testing.T) {
	got := patternsOf(mine(Options{},
		"user alice logged in from the web",
		"user bob logged in from the web",
		"user logged in",
		"user logged out",
		"disk almost full on /var",
		"cache miss for key alpha",
	))
	// One word of seven differs: the lines join. One of three differs:
	// "logged in" and "logged out" are different events and stay apart,
	// as do lines of another length or first word.
	want := map[string]int64{
		"user <_> logged in from the web": 2,
		"user logged in":                  1,
		"user logged out":                 1,
		"disk almost full on /var":        1,
		"cache miss for key alpha":        1,
	}
	if len(got) != len(want) {
		t.Fatalf("patterns %v, want %v", got, want)
	}
	for p, n := range want {
		if got[p] != n {
			t.Fatalf("patterns %v, want %v", got, want)
		}
	}
}

func TestPlaceholderRunsJoin(t *testing.T) {
	got := patternsOf(mine(Options{}, "a 1 2 3 b", "a 4 5 6 b"))
	if got["a <_> b"] != 2 {
		t.Fatalf("placeholders not joined: %v", got)
	}
	// A masked key is impossible: keys stay literal, values vary.
	got = patternsOf(mine(Options{}, "x1=5 done"))
	if _, ok := got["x1=<_> done"]; !ok {
		t.Fatalf("key masked: %v", got)
	}
}

func TestBoundsHold(t *testing.T) {
	m := New(Options{MaxClusters: 5, MaxTokens: 4, MaxLineBytes: 20})
	for i := range 100 {
		m.Add([]byte(fmt.Sprintf("shape%c alpha beta gamma delta epsilon zeta eta theta", 'a'+rune(i%26))))
	}
	if len(m.Clusters()) != 5 {
		t.Fatalf("%d clusters, bound is 5", len(m.Clusters()))
	}
	if m.Dropped() == 0 {
		t.Fatal("no line was dropped past the bound")
	}
	var total int64
	for _, c := range m.Clusters() {
		total += c.Lines()
		if n := len(c.tokens); n > 4 {
			t.Fatalf("cluster with %d tokens, bound is 4", n)
		}
	}
	if total+m.Dropped() != 100 {
		t.Fatalf("%d lines clustered + %d dropped != 100", total, m.Dropped())
	}
	if m.Add([]byte("   \t ")) != nil {
		t.Fatal("a blank line made a cluster")
	}
}

// literalsInOrder reports whether the literal parts of a pattern occur in
// the line in order, which is what Loki's pattern matching needs.
func literalsInOrder(pattern, line string) bool {
	for _, lit := range strings.Split(pattern, Placeholder) {
		i := strings.Index(line, lit)
		if i < 0 {
			return false
		}
		line = line[i+len(lit):]
	}
	return true
}

func checkPattern(t *testing.T, p, line string) {
	t.Helper()
	if strings.Contains(p, Placeholder+Placeholder) {
		t.Fatalf("pattern %q has adjacent placeholders, which Loki's pattern syntax rejects", p)
	}
	if !literalsInOrder(p, line) {
		t.Fatalf("pattern %q does not match its own line %q", p, line)
	}
}

func TestSingleLinePatternMatchesItsLine(t *testing.T) {
	for _, l := range []string{
		"plain words only",
		"  leading and trailing spaces  ",
		`ts=1 level=warn msg="a b" x=<y> z==3 =5`,
		"id:1234 at 0x7f00 <html>",
		"\xff\xfe broken utf8 7",
		"a\tb\t\tc 1",
	} {
		m := New(Options{})
		c := m.Add([]byte(l))
		if c == nil {
			t.Fatalf("%q made no cluster", l)
		}
		checkPattern(t, c.Pattern(), l)
	}
}

func FuzzMiner(f *testing.F) {
	f.Add("level=info msg=hello 42", "level=info msg=bye 43")
	f.Add("a==b =c d=", "<_> <x> 1<2")
	f.Add("", " \t ")
	f.Add("\xff=\xfe 1", "k=v k=v k=v k=v")
	f.Fuzz(func(t *testing.T, a, b string) {
		m := New(Options{MaxTokens: 8, MaxLineBytes: 64})
		for _, l := range []string{a, b, a} {
			c := m.Add([]byte(l))
			if c == nil {
				continue
			}
			p := c.Pattern()
			if strings.Contains(p, Placeholder+Placeholder) {
				t.Fatalf("pattern %q has adjacent placeholders", p)
			}
			if c.Lines() == 1 {
				line := l
				if len(line) > 64 {
					line = line[:64]
				}
				if !literalsInOrder(p, line) {
					t.Fatalf("pattern %q does not match its only line %q", p, line)
				}
			}
		}
	})
}
