package logql

import (
	"strconv"
	"strings"
)

// The printer writes one canonical form: double-quoted strings, single
// spaces around operators, the range after the pipeline, grouping before
// the arguments of vector aggregations, and parentheses only where
// precedence needs them. Parsing the output yields the same tree.

func (e *LogSelectorExpr) String() string {
	var b strings.Builder
	e.write(&b)
	return b.String()
}

func (e *LogSelectorExpr) write(b *strings.Builder) {
	b.WriteByte('{')
	for i, m := range e.Matchers {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(m.String())
	}
	b.WriteByte('}')
	for _, s := range e.Stages {
		b.WriteByte(' ')
		b.WriteString(s.String())
	}
}

func (e *LogRangeExpr) String() string {
	var b strings.Builder
	e.Selector.write(&b)
	if e.Unwrap != nil {
		b.WriteByte(' ')
		b.WriteString(e.Unwrap.String())
	}
	if len(e.Selector.Stages) > 0 || e.Unwrap != nil {
		b.WriteByte(' ')
	}
	b.WriteByte('[')
	b.WriteString(FormatDuration(e.Interval))
	b.WriteByte(']')
	if e.Offset != 0 {
		b.WriteString(" offset ")
		b.WriteString(FormatDuration(e.Offset))
	}
	return b.String()
}

func (u *Unwrap) String() string {
	var b strings.Builder
	b.WriteString("| unwrap ")
	if u.Conversion != "" {
		b.WriteString(u.Conversion)
		b.WriteByte('(')
		b.WriteString(u.Label)
		b.WriteByte(')')
	} else {
		b.WriteString(u.Label)
	}
	for _, f := range u.PostFilters {
		b.WriteString(" | ")
		b.WriteString(f.String())
	}
	return b.String()
}

func (g *Grouping) String() string {
	var b strings.Builder
	if g.Without {
		b.WriteString("without (")
	} else {
		b.WriteString("by (")
	}
	b.WriteString(strings.Join(g.Labels, ", "))
	b.WriteByte(')')
	return b.String()
}

func (e *RangeAggregationExpr) String() string {
	var b strings.Builder
	b.WriteString(string(e.Op))
	b.WriteByte('(')
	if e.Param != nil {
		b.WriteString(formatNumber(*e.Param))
		b.WriteString(", ")
	}
	b.WriteString(e.Range.String())
	b.WriteByte(')')
	if e.Grouping != nil {
		b.WriteByte(' ')
		b.WriteString(e.Grouping.String())
	}
	return b.String()
}

func (e *VectorAggregationExpr) String() string {
	var b strings.Builder
	b.WriteString(string(e.Op))
	if e.Grouping != nil {
		b.WriteByte(' ')
		b.WriteString(e.Grouping.String())
		b.WriteByte(' ')
	}
	b.WriteByte('(')
	if e.Param != nil {
		b.WriteString(formatNumber(*e.Param))
		b.WriteString(", ")
	}
	b.WriteString(e.Expr.String())
	b.WriteByte(')')
	return b.String()
}

func (e *BinaryExpr) String() string {
	var b strings.Builder
	prec := e.Op.Precedence()
	rightAssoc := e.Op == OpPow
	writeOperand(&b, e.LHS, prec, rightAssoc)
	b.WriteByte(' ')
	b.WriteString(string(e.Op))
	if e.ReturnBool {
		b.WriteString(" bool")
	}
	if m := e.Matching; m != nil {
		if m.On {
			b.WriteString(" on (")
		} else {
			b.WriteString(" ignoring (")
		}
		b.WriteString(strings.Join(m.Labels, ", "))
		b.WriteByte(')')
		switch m.Card {
		case ManyToOne:
			b.WriteString(" group_left")
		case OneToMany:
			b.WriteString(" group_right")
		}
		// Always print the include list: a parenthesised right operand
		// would otherwise be read as one.
		if m.Card != OneToOne {
			b.WriteString(" (")
			b.WriteString(strings.Join(m.Include, ", "))
			b.WriteByte(')')
		}
	}
	b.WriteByte(' ')
	writeOperand(&b, e.RHS, prec, !rightAssoc)
	return b.String()
}

// writeOperand parenthesises a binary operand that binds looser than its
// parent, or equally on the side that associativity does not group.
func writeOperand(b *strings.Builder, e SampleExpr, parentPrec int, parenOnEqual bool) {
	if be, ok := e.(*BinaryExpr); ok {
		p := be.Op.Precedence()
		if p < parentPrec || p == parentPrec && parenOnEqual {
			b.WriteByte('(')
			b.WriteString(be.String())
			b.WriteByte(')')
			return
		}
	}
	b.WriteString(e.String())
}

func (e *LiteralExpr) String() string { return formatNumber(e.Value) }

func (e *VectorExpr) String() string { return "vector(" + formatNumber(e.Value) + ")" }

func (e *LabelReplaceExpr) String() string {
	var b strings.Builder
	b.WriteString("label_replace(")
	b.WriteString(e.Expr.String())
	for _, s := range []string{e.Dst, e.Replacement, e.Src, e.Regex} {
		b.WriteString(", ")
		b.WriteString(strconv.Quote(s))
	}
	b.WriteByte(')')
	return b.String()
}

func (s *LineFilter) String() string {
	var b strings.Builder
	b.WriteString(string(s.Op))
	for i, v := range s.Values {
		if i > 0 {
			b.WriteString(" or")
		}
		b.WriteByte(' ')
		if v.IP {
			b.WriteString("ip(")
			b.WriteString(strconv.Quote(v.Value))
			b.WriteByte(')')
		} else {
			b.WriteString(strconv.Quote(v.Value))
		}
	}
	return b.String()
}

func writeExtractions(b *strings.Builder, params []LabelExtraction) {
	for i, p := range params {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte(' ')
		b.WriteString(p.Label)
		if p.Expression != p.Label {
			b.WriteByte('=')
			b.WriteString(strconv.Quote(p.Expression))
		}
	}
}

func (s *JSONParser) String() string {
	var b strings.Builder
	b.WriteString("| json")
	writeExtractions(&b, s.Params)
	return b.String()
}

func (s *LogfmtParser) String() string {
	var b strings.Builder
	b.WriteString("| logfmt")
	if s.Strict {
		b.WriteString(" --strict")
	}
	if s.KeepEmpty {
		b.WriteString(" --keep-empty")
	}
	writeExtractions(&b, s.Params)
	return b.String()
}

func (s *RegexpParser) String() string  { return "| regexp " + strconv.Quote(s.Regexp) }
func (s *PatternParser) String() string { return "| pattern " + strconv.Quote(s.Pattern) }
func (s *UnpackParser) String() string  { return "| unpack" }
func (s *LineFormat) String() string    { return "| line_format " + strconv.Quote(s.Template) }
func (s *Decolorize) String() string    { return "| decolorize" }

func (s *LabelFilterStage) String() string { return "| " + s.Filter.String() }

func (s *LabelFormat) String() string {
	var b strings.Builder
	b.WriteString("| label_format")
	for i, op := range s.Ops {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte(' ')
		b.WriteString(op.Dst)
		b.WriteByte('=')
		if op.Template {
			b.WriteString(strconv.Quote(op.Src))
		} else {
			b.WriteString(op.Src)
		}
	}
	return b.String()
}

func writeLabelSelectors(b *strings.Builder, ls []LabelSelector) {
	for i, l := range ls {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte(' ')
		if l.Matcher != nil {
			b.WriteString(l.Matcher.String())
		} else {
			b.WriteString(l.Name)
		}
	}
}

func (s *DropLabels) String() string {
	var b strings.Builder
	b.WriteString("| drop")
	writeLabelSelectors(&b, s.Labels)
	return b.String()
}

func (s *KeepLabels) String() string {
	var b strings.Builder
	b.WriteString("| keep")
	writeLabelSelectors(&b, s.Labels)
	return b.String()
}

func (f *LabelFilterBinary) String() string {
	var b strings.Builder
	// Left to right with equal precedence: only a binary right operand
	// needs parentheses.
	b.WriteString(f.Left.String())
	if f.Or {
		b.WriteString(" or ")
	} else {
		b.WriteString(" and ")
	}
	if _, ok := f.Right.(*LabelFilterBinary); ok {
		b.WriteByte('(')
		b.WriteString(f.Right.String())
		b.WriteByte(')')
	} else {
		b.WriteString(f.Right.String())
	}
	return b.String()
}

func (f *StringLabelFilter) String() string { return f.Matcher.String() }

func (f *NumberLabelFilter) String() string {
	return f.Name + " " + string(f.Op) + " " + formatNumber(f.Value)
}

func (f *DurationLabelFilter) String() string {
	return f.Name + " " + string(f.Op) + " " + FormatDuration(f.Value)
}

func (f *BytesLabelFilter) String() string {
	return f.Name + " " + string(f.Op) + " " + FormatBytes(f.Value)
}

func (f *IPLabelFilter) String() string {
	op := " = "
	if f.Negated {
		op = " != "
	}
	return f.Name + op + "ip(" + strconv.Quote(f.Pattern) + ")"
}
