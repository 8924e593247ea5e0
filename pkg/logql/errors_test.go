package logql

import (
	"errors"
	"strings"
	"testing"
)

func TestParseErrors(t *testing.T) {
	cases := []struct {
		query     string
		line, col int
		msg       string // substring of the message
	}{
		{``, 1, 1, "unexpected end of input"},
		{`{`, 1, 2, "unexpected end of input, expecting label name"},
		{`{}`, 1, 1, "at least one regexp or equality matcher"},
		{`{a=""}`, 1, 1, "at least one regexp or equality matcher"},
		{`{a=~".*", b!="x"}`, 1, 1, "empty-compatible value"},
		{`{a="b"`, 1, 7, "unexpected end of input, expecting , or }"},
		{`{a=b}`, 1, 4, `unexpected IDENTIFIER "b", expecting STRING`},
		{`{a=="b"}`, 1, 3, "unexpected ==, expecting =, !=, =~ or !~"},
		{`{a="b" c="d"}`, 1, 8, `unexpected IDENTIFIER "c", expecting , or }`},
		{`{1="b"}`, 1, 2, "unexpected NUMBER, expecting label name"},
		{`{a=~"("}`, 1, 5, "invalid regular expression"},
		{`{a=~"a)|(b"}`, 1, 5, "invalid regular expression"},
		{`{a="b} |= "x"`, 1, 12, `unexpected IDENTIFIER "x", expecting , or }`},
		{`{a="b\q"}`, 1, 4, "invalid escape sequence"},
		{"{a=`b}", 1, 4, "unterminated raw string"},
		{"{a=\"b\nc\"}", 1, 4, "newline in string"},
		{`{a="b"} |= x`, 1, 12, `unexpected IDENTIFIER "x", expecting STRING or ip(...)`},
		{`{a="b"} |= "x" or`, 1, 18, "unexpected end of input, expecting STRING"},
		{`{a="b"} |~ "("`, 1, 12, "invalid regular expression"},
		{`{a="b"} |~ ip("1.2.3.4")`, 1, 12, "ip() is only allowed with |= and !="},
		{`{a="b"} |= ip("1.2.3")`, 1, 15, "invalid address"},
		{`{a="b"} |= ip("10.0.0.9-10.0.0.1")`, 1, 15, "start is after end"},
		{`{a="b"} |= ip("10.0.0.0/33")`, 1, 15, "invalid CIDR"},
		{`{a="b"} |> "<a><b>"`, 1, 12, "consecutive captures"},
		{`{a="b"} | pattern "no captures"`, 1, 19, "at least one named capture"},
		{`{a="b"} | pattern "<a> <a>"`, 1, 19, "duplicate capture"},
		{`{a="b"} | regexp "(a)"`, 1, 18, "at least one named group"},
		{`{a="b"} | regexp "(?P<x>"`, 1, 18, "invalid regular expression"},
		{`{a="b"} | json a="b..c"`, 1, 18, "invalid json expression"},
		{`{a="b"} | json a="x[y]"`, 1, 18, "invalid json expression"},
		{`{a="b"} | json a=`, 1, 18, "unexpected end of input, expecting STRING"},
		{`{a="b"} | logfmt --lenient`, 1, 18, "unknown logfmt flag --lenient"},
		{`{a="b"} | line_format`, 1, 22, "unexpected end of input, expecting STRING"},
		{`{a="b"} | label_format a=b, a="x"`, 1, 29, "multiple label name 'a'"},
		{`{a="b"} | label_format a`, 1, 25, "expecting ="},
		{`{a="b"} | drop`, 1, 15, "expecting label name"},
		{`{a="b"} | x`, 1, 12, "expecting a comparison operator"},
		{`{a="b"} | x >`, 1, 14, "unexpected end of input, expecting NUMBER, DURATION or BYTES"},
		{`{a="b"} | x > "s"`, 1, 15, "unexpected STRING, expecting NUMBER, DURATION or BYTES"},
		{`{a="b"} | x =~ 5`, 1, 16, "unexpected NUMBER, expecting STRING"},
		{`{a="b"} | x > -5MB`, 1, 16, "byte sizes cannot be negative"},
		{`{a="b"} | x > 5q`, 1, 15, "invalid number, duration or byte size"},
		{`{a="b"} | x="1" and`, 1, 20, "unexpected end of input, expecting label filter"},
		{`{a="b"} | (x="1"`, 1, 17, "unexpected end of input, expecting )"},
		{`{a="b"} | x = ip("300.0.0.1")`, 1, 18, "invalid address"},
		{`{a="b"} | unwrap x`, 1, 11, "unwrap is only allowed inside a range aggregation"},
		{`{a="b"}[5m]`, 1, 8, "only allowed inside a range aggregation"},
		{`{a="b"} + 1`, 1, 9, "a log query cannot be an operand"},
		{`1 + {a="b"}`, 1, 5, "a log query cannot be an operand"},
		{`{a="b"} |= "x" {`, 1, 16, "unexpected {, expecting end of input"},
		{`rate({a="b"})`, 1, 13, "expecting a range like [5m]"},
		{`rate({a="b"}[5])`, 1, 14, "unexpected NUMBER, expecting DURATION"},
		{`rate({a="b"}[0s])`, 1, 14, "range must be greater than zero"},
		{`rate({a="b"}[5m]`, 1, 17, "unexpected end of input, expecting )"},
		{`rate({a="b"}[5m]) offset 5m`, 1, 19, `unexpected IDENTIFIER "offset", expecting end of input`},
		{`rate({a="b"}[5m] offset)`, 1, 24, "expecting DURATION"},
		{`rate(1, {a="b"}[5m])`, 1, 6, "rate does not take a parameter"},
		{`rate`, 1, 5, "unexpected end of input, expecting ("},
		{`rate({a="b"}[5m]) by (a)`, 1, 19, "grouping not allowed for rate aggregation"},
		{`sum_over_time({a="b"} | unwrap x [5m]) by (a)`, 1, 40, "grouping not allowed for sum_over_time"},
		{`sum_over_time({a="b"}[5m])`, 1, 1, "invalid aggregation sum_over_time without unwrap"},
		{`quantile_over_time({a="b"} | unwrap x [5m])`, 1, 20, "unexpected {, expecting NUMBER (the quantile)"},
		{`count_over_time({a="b"} | unwrap x [5m])`, 1, 25, "invalid aggregation count_over_time with unwrap"},
		{`bytes_rate({a="b"} | unwrap x [5m])`, 1, 20, "invalid aggregation bytes_rate with unwrap"},
		{`sum_over_time({a="b"} | unwrap x |= "y" [5m])`, 1, 34, "only label filters are allowed after unwrap"},
		{`sum_over_time({a="b"} | unwrap x | json [5m])`, 1, 36, "only label filters are allowed after unwrap"},
		{`sum_over_time({a="b"} | unwrap x | unwrap y [5m])`, 1, 36, "only one unwrap"},
		{`sum_over_time({a="b"} | unwrap [5m])`, 1, 32, "expecting label name"},
		{`sum({a="b"})`, 1, 5, "needs a metric expression"},
		{`sum(rate({a="b"}[5m])`, 1, 22, "expecting )"},
		{`sum by (a (rate({a="b"}[5m]))`, 1, 11, "unexpected (, expecting , or )"},
		{`sum by (a) (rate({a="b"}[5m])) by (b)`, 1, 32, "unexpected IDENTIFIER \"by\""},
		{`topk(rate({a="b"}[5m]))`, 1, 6, "expecting NUMBER"},
		{`topk(0, rate({a="b"}[5m]))`, 1, 6, "must be greater than 0"},
		{`topk(1.5, rate({a="b"}[5m]))`, 1, 6, "not an integer"},
		{`sum(5, rate({a="b"}[5m]))`, 1, 5, "sum does not take a parameter"},
		{`sort by (a) (rate({a="b"}[5m]))`, 1, 6, "grouping not allowed for sort"},
		{`1 > 2`, 1, 3, "comparisons between scalars must use BOOL modifier"},
		{`1 + bool 2`, 1, 5, "bool modifier can only be used on comparison operators"},
		{`1 and 2`, 1, 3, "set operator \"and\" not allowed in binary scalar expression"},
		{`rate({a="b"}[1m]) and 1`, 1, 19, "set operator"},
		{`rate({a="b"}[1m]) + on(x) 1`, 1, 19, "vector matching only allowed between vectors"},
		{`rate({a="b"}[1m]) and on(x) group_left rate({a="c"}[1m])`, 1, 29, "no grouping allowed for \"and\""},
		{`rate({a="b"}[1m]) / on(x) group_left(x) rate({a="c"}[1m])`, 1, 27, "must not occur in ON and GROUP"},
		{`-rate({a="b"}[1m])`, 1, 1, "unary - is only allowed before a number"},
		{`1 +`, 1, 4, "unexpected end of input"},
		{`(1 + 2`, 1, 7, "expecting )"},
		{`foo(1)`, 1, 1, `unexpected IDENTIFIER "foo"`},
		{`vector()`, 1, 8, "expecting NUMBER"},
		{`label_replace(rate({a="b"}[1m]), "1dst", "", "src", "")`, 1, 34, "invalid destination label name"},
		{`label_replace(rate({a="b"}[1m]), "dst", "", "src", "(")`, 1, 52, "invalid regular expression"},
		{`label_replace(rate({a="b"}[1m]), "dst", "", "src")`, 1, 50, "expecting ,"},
		{`1e999`, 1, 1, "number out of range"},
		{`rate({a="b"}[99999999y])`, 1, 14, "duration out of range"},
		{`{a="b"} ! "x"`, 1, 9, "unexpected character '!'"},
		{"{a=\"b\"}\n  |= \"x\"\n  | json a=", 3, 12, "expecting STRING"},
		{"sum(\n  rate({a=\"b\"}[5m]\n)", 3, 2, "unexpected end of input, expecting )"},
		{`{a="b"} | x > 1 y`, 1, 17, `unexpected IDENTIFIER "y", expecting end of input`},
		{"{a=\"b\"} \xff", 1, 9, "invalid UTF-8"},
	}
	for _, c := range cases {
		_, err := ParseExpr(c.query)
		if err == nil {
			t.Errorf("ParseExpr(%q): no error", c.query)
			continue
		}
		var pe *ParseError
		if !errors.As(err, &pe) {
			t.Errorf("ParseExpr(%q): error %T is not a *ParseError", c.query, err)
			continue
		}
		if pe.Line != c.line || pe.Col != c.col || !strings.Contains(pe.Msg, c.msg) {
			t.Errorf("ParseExpr(%q):\n got line %d col %d: %s\nwant line %d col %d: ...%s...", c.query, pe.Line, pe.Col, pe.Msg, c.line, c.col, c.msg)
		}
		if !strings.HasPrefix(err.Error(), "parse error at line ") {
			t.Errorf("error text %q", err.Error())
		}
	}
}

func TestParseErrorFormat(t *testing.T) {
	_, err := ParseExpr(`{app="foo"} |= bar`)
	want := `parse error at line 1, col 16: syntax error: unexpected IDENTIFIER "bar", expecting STRING or ip(...)`
	if err == nil || err.Error() != want {
		t.Fatalf("got %v\nwant %s", err, want)
	}
	var pe *ParseError
	if !errors.As(err, &pe) || pe.Offset != 15 {
		t.Fatalf("offset %+v", pe)
	}
}

func TestDeepNesting(t *testing.T) {
	q := strings.Repeat("(", 100000) + "1" + strings.Repeat(")", 100000)
	if _, err := ParseExpr(q); err == nil || !strings.Contains(err.Error(), "nested too deeply") {
		t.Fatalf("deep nesting: %v", err)
	}
	q = `{a="b"} | ` + strings.Repeat("(", 100000) + `x="1"` + strings.Repeat(")", 100000)
	if _, err := ParseExpr(q); err == nil || !strings.Contains(err.Error(), "nested too deeply") {
		t.Fatalf("deep label filter nesting: %v", err)
	}
	// Long flat chains are fine.
	q = "1" + strings.Repeat(" + 1", 10000)
	if _, err := ParseExpr(q); err != nil {
		t.Fatal(err)
	}
}
