package logql

import (
	"math/rand/v2"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// clausesString renders clauses for comparison: clauses joined by " & ",
// needles by "|", folded needles prefixed with "i:".
func clausesString(cs []Clause) string {
	parts := make([]string, len(cs))
	for i, c := range cs {
		ns := make([]string, len(c))
		for j, n := range c {
			ns[j] = string(n.Text)
			if n.Fold {
				ns[j] = "i:" + ns[j]
			}
		}
		slices.Sort(ns)
		parts[i] = strings.Join(ns, "|")
	}
	return strings.Join(parts, " & ")
}

func TestRequiredNeedles(t *testing.T) {
	cases := []struct{ query, want string }{
		{`{a="b"}`, ``},
		{`{a="b"} |= "error"`, `error`},
		{`{a="b"} |= "error" |= "timeout"`, `error & timeout`},
		{`{a="b"} |= "error" or "fail"`, `error|fail`},
		{`{a="b"} |= "error" or ""`, ``},
		{`{a="b"} |= "ab"`, ``}, // shorter than minLen
		{`{a="b"} != "error" !~ "fail" !> "<_> x <_>"`, ``},
		{`{a="b"} |= ip("10.0.0.0/8")`, ``},
		{`{a="b"} |= "abc" or ip("10.0.0.0/8")`, ``},
		{`{a="b"} |~ "error"`, `error`},
		{`{a="b"} |~ "(?i)error"`, `i:error`},
		{`{a="b"} |~ "(?i)123"`, `123`},
		{`{a="b"} |~ "connection (refused|reset)"`, `connection refused|connection reset`},
		{`{a="b"} |~ "error.*timeout"`, `error & timeout`},
		{`{a="b"} |~ "error|warn|fatal"`, `error|fatal|warn`},
		{`{a="b"} |~ "colou?r"`, `color|colour`},
		{`{a="b"} |~ "[Ee]rror"`, `i:error`},
		{`{a="b"} |~ "user=\\w+ failed"`, `user= &  failed`},
		{`{a="b"} |~ "^GET /api"`, `GET /api`},
		{`{a="b"} |~ "\\bERROR\\b"`, `ERROR`},
		{`{a="b"} |~ "(foo|bar)baz"`, `barbaz|foobaz`},
		{`{a="b"} |~ "(foo.*|bar)baz"`, `bar|foo & baz`},
		{`{a="b"} |~ "(abc|x)"`, ``},
		{`{a="b"} |~ "(abc|\\d+)"`, ``},
		{`{a="b"} |~ "(abc\\d+|def\\s)"`, "abc|def\t|def\n|def\f|def\r|def "},
		{`{a="b"} |~ ".*"`, ``},
		{`{a="b"} |~ "(error)+"`, `error`},
		{`{a="b"} |~ "(error){2,3}"`, `errorerror`},
		{`{a="b"} |~ "(error)*x"`, ``},
		{`{a="b"} |~ "(?i)Foo(?-i)Bar"`, `i:foobar`},
		{`{a="b"} |~ "a\\x{FFFD}bcd"`, `bcd`},
		{`{a="b"} |~ "abc" or "def"`, `abc|def`},
		{`{a="b"} |~ "abc" or ".*"`, ``},
		{`{a="b"} |~ "abc.*xyz" or "defg"`, `abc|defg`},
		{`{a="b"} |> "<_> GET <_> 200 <_>"`, ` GET  &  200 `},
		{`{a="b"} |> "<_> GET <_>" or "<_> POST <_>"`, ` GET | POST `},
		{`{a="b"} | json | x="1" |= "later"`, `later`},
		{`{a="b"} |= "first" | line_format "{{.x}}" |= "second"`, `first`},
		{`{a="b"} |= "first" | decolorize |= "second"`, `first`},
		{`{a="b"} |= "first" | unpack |= "second"`, `first`},
		{`{a="b"} |= "dup" |= "dup"`, `dup`},
	}
	for _, c := range cases {
		sel, err := ParseLogSelector(c.query)
		if err != nil {
			t.Fatalf("%s: %v", c.query, err)
		}
		if got := clausesString(RequiredNeedles(sel, 3)); got != c.want {
			t.Errorf("RequiredNeedles(%s) = %q, want %q", c.query, got, c.want)
		}
	}
	// Metric queries: the selector inside.
	e := mustParse(t, `sum(rate({a="b"} |= "boom" [5m]))`)
	if got := clausesString(RequiredNeedles(LogSelectors(e)[0], 3)); got != "boom" {
		t.Errorf("metric query needles %q", got)
	}
	// minLen 1 keeps short needles.
	sel, _ := ParseLogSelector(`{a="b"} |= "ab" |~ "x"`)
	if got := clausesString(RequiredNeedles(sel, 1)); got != "ab & x" {
		t.Errorf("minLen 1: %q", got)
	}
}

// foldEqual reports whether two runes are equal under simple case folding.
func foldEqual(a, b rune) bool {
	if a == b {
		return true
	}
	for f := unicode.SimpleFold(a); f != a; f = unicode.SimpleFold(f) {
		if f == b {
			return true
		}
	}
	return false
}

// containsNeedle is the reference meaning of a needle: byte containment,
// or rune-wise fold equality at some rune boundary of the line.
func containsNeedle(line string, n Needle) bool {
	if !n.Fold {
		return strings.Contains(line, string(n.Text))
	}
	needle := []rune(string(n.Text))
	for i := 0; i <= len(line); {
		j, k := i, 0
		for k < len(needle) && j < len(line) {
			r, w := utf8.DecodeRuneInString(line[j:])
			if !foldEqual(r, needle[k]) {
				break
			}
			j += w
			k++
		}
		if k == len(needle) {
			return true
		}
		if i == len(line) {
			break
		}
		_, w := utf8.DecodeRuneInString(line[i:])
		i += w
	}
	return false
}

// checkSound fails when a line matched by the line filter regexp re lacks
// every needle of some clause.
func checkSound(t testing.TB, re string, line string) {
	t.Helper()
	compiled, err := regexp.Compile("(?s)" + re)
	if err != nil || !compiled.MatchString(line) {
		return
	}
	cs, err := RegexpNeedles(re, 1)
	if err != nil {
		t.Fatalf("RegexpNeedles(%q): %v", re, err)
	}
	for _, c := range cs {
		ok := false
		for _, n := range c {
			if containsNeedle(line, n) {
				ok = true
				break
			}
		}
		if !ok {
			t.Fatalf("unsound: %q matches %q but contains no needle of %q (all: %s)", re, line, clausesString([]Clause{c}), clausesString(cs))
		}
	}
}

// The alphabet mixes ASCII letters with the non-ASCII members of their fold
// orbits (KELVIN SIGN, LONG S), other fold pairs, U+FFFD, an invalid byte
// and regexp metacharacters' literal forms.
var soundAlphabet = []string{"a", "b", "c", "A", "B", "k", "K", "\u212a", "s", "S", "\u017f", "é", "É", " ", "\n", "\ufffd", "\xff", ".", "1"}

type reGen struct{ r *rand.Rand }

// gen returns a random regexp and a random string that it is likely to
// match.
func (g reGen) gen(depth int) (string, string) {
	pick := func() string { return soundAlphabet[g.r.IntN(len(soundAlphabet))] }
	lit := func() (string, string) {
		s := pick()
		switch s {
		case ".":
			return `\.`, s
		case "\xff":
			return `\x{FFFD}`, s // matches an invalid byte
		}
		return regexp.QuoteMeta(s), s
	}
	if depth <= 0 {
		return lit()
	}
	switch g.r.IntN(14) {
	case 0, 1, 2:
		return lit()
	case 3:
		var re, s strings.Builder
		for range 1 + g.r.IntN(4) {
			a, b := g.gen(depth - 1)
			re.WriteString(a)
			s.WriteString(b)
		}
		return re.String(), s.String()
	case 4:
		a, sa := g.gen(depth - 1)
		b, sb := g.gen(depth - 1)
		if g.r.IntN(2) == 0 {
			return "(?:" + a + "|" + b + ")", sa
		}
		return "(" + a + "|" + b + ")", sb
	case 5:
		a, s := g.gen(depth - 1)
		return "(?:" + a + ")*", strings.Repeat(s, g.r.IntN(3))
	case 6:
		a, s := g.gen(depth - 1)
		return "(?:" + a + ")+", strings.Repeat(s, 1+g.r.IntN(2))
	case 7:
		a, s := g.gen(depth - 1)
		if g.r.IntN(2) == 0 {
			s = ""
		}
		return "(?:" + a + ")?", s
	case 8:
		a, s := g.gen(depth - 1)
		return "(?i:" + a + ")", randomCase(g.r, s)
	case 9:
		return ".", pick()
	case 10:
		set := []string{pick(), pick(), pick()}
		var b strings.Builder
		b.WriteString("[")
		for _, s := range set {
			if s == "\xff" || s == "\n" {
				s = "x"
			}
			b.WriteString(regexp.QuoteMeta(s))
		}
		b.WriteString("]")
		return b.String(), set[g.r.IntN(len(set))]
	case 11:
		return []string{"^", "$", `\b`, `\B`, `\A`, `\z`}[g.r.IntN(6)], ""
	case 12:
		a, s := g.gen(depth - 1)
		n := 1 + g.r.IntN(2)
		return "(?:" + a + "){" + string(rune('0'+n)) + ",3}", strings.Repeat(s, n)
	default:
		return `\w`, "a"
	}
}

// randomCase swaps runes for random members of their fold orbit.
func randomCase(r *rand.Rand, s string) string {
	var b strings.Builder
	for _, c := range s {
		orbit := []rune{c}
		for f := unicode.SimpleFold(c); f != c; f = unicode.SimpleFold(f) {
			orbit = append(orbit, f)
		}
		b.WriteRune(orbit[r.IntN(len(orbit))])
	}
	return b.String()
}

func TestRegexpNeedlesSound(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	g := reGen{r: r}
	matched := 0
	for range 30000 {
		re, sample := g.gen(4)
		var pre, post strings.Builder
		for range r.IntN(4) {
			pre.WriteString(soundAlphabet[r.IntN(len(soundAlphabet))])
		}
		for range r.IntN(4) {
			post.WriteString(soundAlphabet[r.IntN(len(soundAlphabet))])
		}
		line := pre.String() + sample + post.String()
		if regexp.MustCompile("(?s)" + re).MatchString(line) {
			matched++
		}
		checkSound(t, re, line)
		checkSound(t, re, randomCase(r, line))
	}
	if matched < 10000 {
		t.Fatalf("generator too weak: only %d matching lines", matched)
	}
}

func TestRegexpNeedlesFindsLiterals(t *testing.T) {
	// Soundness alone is satisfied by returning nothing; check that the
	// analysis does find what it should on typical filters.
	for re, want := range map[string]string{
		`Failed password for (invalid user )?\S+ from`: `Failed password for  &  from`,
		`(?i)exception`:             `i:exception`,
		`status=(500|502|503)`:      `status=500|status=502|status=503`,
		`GET /api/v[12]/users`:      `GET /api/v1/users|GET /api/v2/users`,
		`\d+\.\d+\.\d+\.\d+`:        ``,
		`took \d+ms`:                `took  & ms`,
		`(?s)begin.*end`:            `begin & end`,
		`[a-z]+@example\.com`:       `@example.com`,
		`(?i)(error|warning): disk`: `i:error: disk|i:warning: disk`,
	} {
		cs, err := RegexpNeedles(re, 2)
		if err != nil {
			t.Fatal(err)
		}
		if got := clausesString(cs); got != want {
			t.Errorf("RegexpNeedles(%q) = %q, want %q", re, got, want)
		}
	}
	if _, err := RegexpNeedles("(", 3); err == nil {
		t.Fatal("bad regexp accepted")
	}
}
