package logql

import (
	"errors"
	"reflect"
	"testing"
	"unicode/utf8"
)

// FuzzParseExpr checks that parsing never panics, that errors carry a
// position inside the query, and that whatever parses prints to a query
// that parses again and prints the same.
func FuzzParseExpr(f *testing.F) {
	for _, c := range canonical {
		f.Add(c.in)
	}
	for _, q := range []string{
		`{a="b"} |= "x" or "y" |~ "(?i)z" |> "<_> w <_>" != ip("10.0.0.0/8")`,
		`{a="b"} | json | logfmt --strict | regexp "(?P<x>.)" | pattern "<a> <_>" | unpack | decolorize`,
		`{a="b"} | x > 1 and y < 5s or z == 1KiB, w = ip("::1") | line_format "{{.x}}" | label_format a=b | drop c | keep d`,
		`sum by (a) (quantile_over_time(0.5, {a="b"} | unwrap bytes(x) | __error__="" [5m] offset 1h) by (a)) / on (a) group_left () topk(1, vector(1))`,
		`label_replace(sum(rate({a="b"}[1m])), "d", "$1", "s", "(.*)") > bool 1 unless -1 ^ 2`,
		`{a="b"`, `rate(`, `{a="b"} | `, `1 +`, "{a=`x", `{a="\xff"}`,
	} {
		f.Add(q)
	}
	f.Fuzz(func(t *testing.T, q string) {
		e, err := ParseExpr(q)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %T is not a *ParseError: %v", err, err)
			}
			if pe.Offset < 0 || pe.Offset > len(q) || pe.Line < 1 || pe.Col < 1 {
				t.Fatalf("bad position %+v for %q", pe, q)
			}
			return
		}
		s := e.String()
		e2, err := ParseExpr(s)
		if err != nil {
			t.Fatalf("printed form of %q does not parse: %q: %v", q, s, err)
		}
		if s2 := e2.String(); s2 != s {
			t.Fatalf("printing is not stable for %q:\n%q\n%q", q, s, s2)
		}
		zeroPositions(reflect.ValueOf(e))
		zeroPositions(reflect.ValueOf(e2))
		if !reflect.DeepEqual(e, e2) {
			t.Fatalf("parse(print(x)) != x for %q (printed %q)", q, s)
		}
		for _, sel := range LogSelectors(e) {
			RequiredNeedles(sel, 3)
		}
	})
}

// FuzzRegexpNeedles checks the soundness of the regexp analysis on
// arbitrary regexps and lines.
func FuzzRegexpNeedles(f *testing.F) {
	for _, s := range [][2]string{
		{"error", "an error here"},
		{"(?i)kelvin", "\u212aELVIN"},
		{"(?i)ss", "\u017f\u017f"},
		{"a\\x{FFFD}b", "a\xffb"},
		{"(foo|bar)+baz", "xxbarfoobaz"},
		{"colou?r[0-9]", "colour7"},
		{"^$", ""},
		{"\\bword\\b", "a word."},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, re, line string) {
		if len(re) > 200 || !utf8.ValidString(re) {
			return
		}
		checkSound(t, re, line)
	})
}
