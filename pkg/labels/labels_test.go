package labels

import (
	"strings"
	"testing"
)

func TestParseRoundTrip(t *testing.T) {
	cases := map[string]string{
		`{}`:                                  `{}`,
		`{job="varlogs"}`:                     `{job="varlogs"}`,
		`{ job = "a" , host="b" }`:            `{host="b", job="a"}`,
		`{a="x\"y\\z", b="\u00e9\n"}`:         `{a="x\"y\\z", b="é\n"}`,
		`{trailing="comma",}`:                 `{trailing="comma"}`,
		`{_under="1", Mixed9="2"}`:            `{Mixed9="2", _under="1"}`,
		`{filename="/var/log/a b.log", x=""}`: `{filename="/var/log/a b.log", x=""}`,
	}
	for in, want := range cases {
		ls, err := Parse(in)
		if err != nil {
			t.Fatalf("Parse(%q): %v", in, err)
		}
		if got := ls.String(); got != want {
			t.Errorf("Parse(%q).String() = %q, want %q", in, got, want)
		}
		again, err := Parse(ls.String())
		if err != nil || !again.Equal(ls) {
			t.Errorf("round trip of %q: %v %v", in, again, err)
		}
		if err := ls.Validate(); err != nil {
			t.Errorf("Validate(%q): %v", in, err)
		}
	}
}

func TestParseErrors(t *testing.T) {
	cases := map[string]string{
		``:                 "expected '{'",
		`job="a"`:          "expected '{'",
		`{job="a"`:         "expected '}'",
		`{job=a}`:          "double-quoted",
		`{9job="a"}`:       "label name",
		`{job="a}`:         "unterminated",
		`{a="1", a="2"}`:   "duplicate",
		`{a="1"} trailing`: "unexpected text",
		`{a="\q"}`:         "bad escape",
		`{a:"1"}`:          "expected '='",
	}
	for in, want := range cases {
		_, err := Parse(in)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Parse(%q) = %v, want error containing %q", in, err, want)
		}
	}
}

func TestHashDistinguishesBoundaries(t *testing.T) {
	a := New("a", "bc")
	b := New("ab", "c")
	if a.Hash() == b.Hash() {
		t.Fatal("hash collides on a shifted boundary")
	}
	if New("x", "1", "y", "2").Hash() != New("y", "2", "x", "1").Hash() {
		t.Fatal("hash depends on argument order")
	}
}

func TestValidate(t *testing.T) {
	if err := (Labels{{"b", "1"}, {"a", "2"}}).Validate(); err == nil {
		t.Error("unsorted set accepted")
	}
	if err := (Labels{{"a", "\xff"}}).Validate(); err == nil {
		t.Error("invalid UTF-8 accepted")
	}
	if err := (Labels{{"a-b", "1"}}).Validate(); err == nil {
		t.Error("invalid name accepted")
	}
}

func TestSortDropsDuplicates(t *testing.T) {
	ls := Labels{{"b", "1"}, {"a", "2"}, {"b", "3"}}.Sort()
	if ls.String() != `{a="2", b="1"}` {
		t.Fatalf("got %s", ls)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{`{}`, `{a="b"}`, `{a="b", c="\"d\""}`, `{a=`, `{"}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ls, err := Parse(s)
		if err != nil {
			return
		}
		again, err := Parse(ls.String())
		if err != nil {
			t.Fatalf("reparse of %q (from %q): %v", ls.String(), s, err)
		}
		if !again.Equal(ls) {
			t.Fatalf("round trip changed %v to %v", ls, again)
		}
	})
}

func TestMatcherRegexpIsAnchoredAndValidated(t *testing.T) {
	if _, err := NewMatcher(MatchRegexp, "a", "a)|(b"); err == nil {
		t.Fatal(`"a)|(b" accepted: wrapped in anchors it would match "axyz"`)
	}
	m := MustNewMatcher(MatchRegexp, "job", "api|web")
	for v, want := range map[string]bool{"api": true, "web": true, "api2": false, "xapi": false, "": false} {
		if m.Matches(v) != want {
			t.Errorf("job=~\"api|web\" on %q = %v", v, !want)
		}
	}
	if !MustNewMatcher(MatchNotRegexp, "x", ".+").Matches("") {
		t.Error(`x!~".+" must match a missing label`)
	}
}
