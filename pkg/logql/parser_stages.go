package logql

import "github.com/logsift/logsift/pkg/labels"

// stageKeywords start a pipeline stage after `|` unless a comparison
// follows, in which case they are label names: `| json` is the parser,
// `| json="x"` filters a label called json.
var stageKeywords = map[string]bool{
	"json": true, "logfmt": true, "regexp": true, "pattern": true, "unpack": true,
	"line_format": true, "label_format": true, "drop": true, "keep": true,
	"decolorize": true, "unwrap": true,
}

func isComparison(k tokenKind) bool {
	switch k {
	case tEq, tNeq, tRe, tNre, tCmpEq, tGt, tGte, tLt, tLte:
		return true
	}
	return false
}

// parsePipeline reads stages until a token that cannot continue a pipeline.
// In a range aggregation (rangeCtx) it also accepts `| unwrap`, after which
// only label filters may follow; they become the unwrap's post-filters.
func (p *parser) parsePipeline(rangeCtx bool) ([]Stage, *Unwrap) {
	var stages []Stage
	var unwrap *Unwrap
	for {
		t := p.peek()
		switch t.kind {
		case tPipeExact, tNeq, tPipeMatch, tNre, tPipePattern, tNotPattern:
			if unwrap != nil {
				p.fail(t.pos, "syntax error: only label filters are allowed after unwrap, found a line filter")
			}
			stages = append(stages, p.parseLineFilter())
		case tPipe:
			p.next()
			kw := p.peek()
			if kw.kind == tIdent && stageKeywords[kw.text] && !isComparison(p.peekAt(1).kind) {
				if kw.text == "unwrap" {
					if !rangeCtx {
						p.fail(kw.pos, "syntax error: unwrap is only allowed inside a range aggregation such as sum_over_time(...[5m])")
					}
					if unwrap != nil {
						p.fail(kw.pos, "syntax error: only one unwrap is allowed")
					}
					unwrap = p.parseUnwrap(t.pos)
					continue
				}
				if unwrap != nil {
					p.fail(kw.pos, "syntax error: only label filters are allowed after unwrap, found %s", kw.text)
				}
				stages = append(stages, p.parseStage(t.pos))
				continue
			}
			f := p.parseLabelFilterExpr()
			if unwrap != nil {
				unwrap.PostFilters = append(unwrap.PostFilters, f)
			} else {
				stages = append(stages, &LabelFilterStage{Filter: f, Start: Pos(t.pos)})
			}
		default:
			return stages, unwrap
		}
	}
}

func (p *parser) parseLineFilter() *LineFilter {
	t := p.next()
	var op LineFilterOp
	switch t.kind {
	case tPipeExact:
		op = LineContains
	case tNeq:
		op = LineNotContains
	case tPipeMatch:
		op = LineMatchRegexp
	case tNre:
		op = LineNotMatchRegexp
	case tPipePattern:
		op = LineMatchPattern
	case tNotPattern:
		op = LineNotPattern
	}
	lf := &LineFilter{Op: op, Start: Pos(t.pos)}
	lf.Values = append(lf.Values, p.parseLineFilterValue(op))
	for p.isKeyword("or") {
		p.next()
		lf.Values = append(lf.Values, p.parseLineFilterValue(op))
	}
	return lf
}

func (p *parser) parseLineFilterValue(op LineFilterOp) LineFilterValue {
	t := p.peek()
	if t.kind == tIdent && t.text == "ip" && p.peekAt(1).kind == tLParen {
		if op != LineContains && op != LineNotContains {
			p.fail(t.pos, "syntax error: ip() is only allowed with |= and != line filters")
		}
		return LineFilterValue{Value: p.parseIPArg(), IP: true}
	}
	if t.kind != tString {
		if op == LineContains || op == LineNotContains {
			p.unexpected("STRING or ip(...)")
		}
		p.unexpected("STRING")
	}
	p.next()
	switch op {
	case LineMatchRegexp, LineNotMatchRegexp:
		p.compileCheck(t)
	case LineMatchPattern, LineNotPattern:
		if _, err := ParsePattern(t.text); err != nil {
			p.fail(t.pos, "%s", err.Error())
		}
	}
	return LineFilterValue{Value: t.text}
}

// parseIPArg reads ip("...") and validates the address, range or CIDR.
func (p *parser) parseIPArg() string {
	p.next() // ip
	p.next() // (
	s := p.expect(tString, "STRING")
	if _, err := ParseIPRange(s.text); err != nil {
		p.fail(s.pos, "%s", err.Error())
	}
	p.expect(tRParen, ")")
	return s.text
}

func (p *parser) parseStage(pipePos int) Stage {
	kw := p.next()
	pos := Pos(pipePos)
	switch kw.text {
	case "json":
		return &JSONParser{Params: p.parseExtractions(true), Start: pos}
	case "logfmt":
		s := &LogfmtParser{Start: pos}
		for p.peek().kind == tFlag {
			f := p.next()
			switch f.text {
			case "strict":
				s.Strict = true
			case "keep-empty":
				s.KeepEmpty = true
			default:
				p.fail(f.pos, "syntax error: unknown logfmt flag --%s, expecting --strict or --keep-empty", f.text)
			}
		}
		s.Params = p.parseExtractions(false)
		return s
	case "regexp":
		t := p.expect(tString, "STRING")
		re := p.compileCheck(t)
		named := false
		for _, n := range re.SubexpNames() {
			if n == "" {
				continue
			}
			named = true
			if !labels.ValidName(n) {
				p.fail(t.pos, "invalid label name %q in regexp parser", n)
			}
		}
		if !named {
			p.fail(t.pos, "the regexp parser needs at least one named group such as (?P<name>...)")
		}
		return &RegexpParser{Regexp: t.text, Start: pos}
	case "pattern":
		t := p.expect(tString, "STRING")
		if err := validatePatternParser(t.text); err != nil {
			p.fail(t.pos, "%s", err.Error())
		}
		return &PatternParser{Pattern: t.text, Start: pos}
	case "unpack":
		return &UnpackParser{Start: pos}
	case "line_format":
		t := p.expect(tString, "STRING")
		return &LineFormat{Template: t.text, Start: pos}
	case "label_format":
		return p.parseLabelFormat(pos)
	case "drop":
		return &DropLabels{Labels: p.parseLabelSelectors(), Start: pos}
	case "keep":
		return &KeepLabels{Labels: p.parseLabelSelectors(), Start: pos}
	case "decolorize":
		return &Decolorize{Start: pos}
	}
	p.fail(kw.pos, "syntax error: unexpected %s", kw.describe())
	return nil
}

// parseExtractions reads the optional `label="expr", label` list of json
// and logfmt. For json the expressions must be valid paths.
func (p *parser) parseExtractions(json bool) []LabelExtraction {
	var params []LabelExtraction
	if p.peek().kind != tIdent {
		return nil
	}
	for {
		name := p.expect(tIdent, "label name")
		ex := LabelExtraction{Label: name.text, Expression: name.text}
		exprPos := name.pos
		if p.peek().kind == tEq {
			p.next()
			v := p.expect(tString, "STRING")
			ex.Expression = v.text
			exprPos = v.pos
		}
		if json {
			if _, err := ParseJSONPath(ex.Expression); err != nil {
				p.fail(exprPos, "%s", err.Error())
			}
		} else if ex.Expression == "" {
			p.fail(exprPos, "empty logfmt key for label %s", ex.Label)
		}
		params = append(params, ex)
		if p.peek().kind != tComma {
			return params
		}
		p.next()
	}
}

func (p *parser) parseLabelFormat(pos Pos) *LabelFormat {
	s := &LabelFormat{Start: pos}
	seen := map[string]bool{}
	for {
		dst := p.expect(tIdent, "label name")
		p.expect(tEq, "=")
		op := LabelFormatOp{Dst: dst.text}
		switch v := p.peek(); v.kind {
		case tIdent:
			op.Src = v.text
		case tString:
			op.Src = v.text
			op.Template = true
		default:
			p.unexpected("label name or STRING")
		}
		p.next()
		if seen[dst.text] {
			p.fail(dst.pos, "multiple label name '%s' not allowed in a single format operation", dst.text)
		}
		seen[dst.text] = true
		s.Ops = append(s.Ops, op)
		if p.peek().kind != tComma {
			return s
		}
		p.next()
	}
}

func (p *parser) parseLabelSelectors() []LabelSelector {
	var out []LabelSelector
	for {
		name := p.expect(tIdent, "label name")
		ls := LabelSelector{Name: name.text}
		var mt labels.MatchType
		matcher := true
		switch p.peek().kind {
		case tEq:
			mt = labels.MatchEqual
		case tNeq:
			mt = labels.MatchNotEqual
		case tRe:
			mt = labels.MatchRegexp
		case tNre:
			mt = labels.MatchNotRegexp
		default:
			matcher = false
		}
		if matcher {
			p.next()
			v := p.expect(tString, "STRING")
			ls.Matcher = p.newMatcher(mt, name.text, v)
		}
		out = append(out, ls)
		if p.peek().kind != tComma {
			return out
		}
		p.next()
	}
}

func (p *parser) parseUnwrap(pipePos int) *Unwrap {
	p.next() // unwrap
	u := &Unwrap{Start: Pos(pipePos)}
	name := p.expect(tIdent, "label name")
	switch name.text {
	case "duration", "duration_seconds", "bytes":
		if p.peek().kind == tLParen {
			p.next()
			u.Conversion = name.text
			name = p.expect(tIdent, "label name")
			p.expect(tRParen, ")")
		}
	}
	u.Label = name.text
	return u
}

// parseLabelFilterExpr reads predicates joined by and, or, a comma or
// plain juxtaposition, grouping left to right with equal precedence as Loki
// documents.
func (p *parser) parseLabelFilterExpr() LabelFilter {
	p.enter()
	defer p.leave()
	left := p.parseLabelFilterPrimary()
	for {
		t := p.peek()
		or := false
		switch {
		case t.kind == tIdent && (t.text == "and" || t.text == "or"):
			or = t.text == "or"
			p.next()
		case t.kind == tComma:
			p.next()
		case t.kind == tLParen || p.startsLabelFilter(0):
			// Juxtaposition means and.
		default:
			return left
		}
		right := p.parseLabelFilterPrimary()
		left = &LabelFilterBinary{Or: or, Left: left, Right: right, Start: left.Pos()}
	}
}

// startsLabelFilter reports whether the token n ahead begins a predicate:
// a name followed by a comparison, or a parenthesis.
func (p *parser) startsLabelFilter(n int) bool {
	t := p.peekAt(n)
	if t.kind == tLParen {
		return true
	}
	return t.kind == tIdent && isComparison(p.peekAt(n+1).kind)
}

func (p *parser) parseLabelFilterPrimary() LabelFilter {
	if p.peek().kind == tLParen {
		p.enter()
		defer p.leave()
		p.next()
		f := p.parseLabelFilterExpr()
		p.expect(tRParen, ")")
		return f
	}
	name := p.expect(tIdent, "label filter")
	opTok := p.peek()
	if !isComparison(opTok.kind) {
		p.unexpected("a comparison operator")
	}
	p.next()
	pos := Pos(name.pos)
	v := p.peek()
	switch opTok.kind {
	case tRe, tNre:
		p.expect(tString, "STRING")
		mt := labels.MatchRegexp
		if opTok.kind == tNre {
			mt = labels.MatchNotRegexp
		}
		return &StringLabelFilter{Matcher: p.newMatcher(mt, name.text, v), Start: pos}
	case tEq, tNeq:
		if v.kind == tString {
			p.next()
			mt := labels.MatchEqual
			if opTok.kind == tNeq {
				mt = labels.MatchNotEqual
			}
			return &StringLabelFilter{Matcher: p.newMatcher(mt, name.text, v), Start: pos}
		}
		if v.kind == tIdent && v.text == "ip" && p.peekAt(1).kind == tLParen {
			return &IPLabelFilter{Name: name.text, Negated: opTok.kind == tNeq, Pattern: p.parseIPArg(), Start: pos}
		}
	}
	var op CmpOp
	switch opTok.kind {
	case tEq, tCmpEq:
		op = CmpEq
	case tNeq:
		op = CmpNeq
	case tGt:
		op = CmpGt
	case tGte:
		op = CmpGte
	case tLt:
		op = CmpLt
	case tLte:
		op = CmpLte
	}
	neg := false
	if v.kind == tSub || v.kind == tAdd {
		p.next()
		neg = v.kind == tSub
		v = p.peek()
	}
	switch v.kind {
	case tNumber:
		p.next()
		n := v.num
		if neg {
			n = -n
		}
		return &NumberLabelFilter{Name: name.text, Op: op, Value: n, Start: pos}
	case tDuration:
		p.next()
		d := v.dur
		if neg {
			d = -d
		}
		return &DurationLabelFilter{Name: name.text, Op: op, Value: d, Start: pos}
	case tBytes:
		if neg {
			p.fail(v.pos, "syntax error: byte sizes cannot be negative")
		}
		p.next()
		return &BytesLabelFilter{Name: name.text, Op: op, Value: v.bytes, Start: pos}
	}
	if opTok.kind == tEq || opTok.kind == tNeq {
		p.unexpected("STRING, NUMBER, DURATION, BYTES or ip(...)")
	}
	p.unexpected("NUMBER, DURATION or BYTES")
	return nil
}
