package logql

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"regexp/syntax"

	"github.com/logsift/logsift/pkg/labels"
)

// maxDepth bounds nesting so that hostile input cannot exhaust the stack.
const maxDepth = 512

// ParseExpr parses a LogQL query: a log query or a metric query.
func ParseExpr(input string) (expr Expr, err error) {
	p := newParser(input)
	defer p.catch(&err)
	e := p.parseExpr(0)
	p.expectEOF()
	return e, nil
}

// ParseLogSelector parses a log query: a stream selector with an optional
// pipeline. Metric queries are an error.
func ParseLogSelector(input string) (*LogSelectorExpr, error) {
	e, err := ParseExpr(input)
	if err != nil {
		return nil, err
	}
	sel, ok := e.(*LogSelectorExpr)
	if !ok {
		return nil, newParseError(input, 0, "expected a log query, got a metric query")
	}
	return sel, nil
}

// ParseSampleExpr parses a metric query. Log queries are an error.
func ParseSampleExpr(input string) (SampleExpr, error) {
	e, err := ParseExpr(input)
	if err != nil {
		return nil, err
	}
	se, ok := e.(SampleExpr)
	if !ok {
		return nil, newParseError(input, 0, "expected a metric query, got a log query")
	}
	return se, nil
}

// ParseMatchers parses a bare stream selector such as the match[] parameter
// of the series API: {app="x", env=~"prod|dev"}. Like every selector it
// needs a matcher that does not match the empty string.
func ParseMatchers(input string) (ms []*labels.Matcher, err error) {
	p := newParser(input)
	defer p.catch(&err)
	ms, _ = p.parseSelector()
	p.expectEOF()
	return ms, nil
}

type parser struct {
	input string
	toks  []token
	i     int
	depth int
}

func newParser(input string) *parser {
	return &parser{input: input, toks: lex(input)}
}

// The parser reports errors by panicking with a *ParseError, which the
// entry points turn into a returned error. Any other panic is a bug and is
// not swallowed.
func (p *parser) catch(errp *error) {
	if r := recover(); r != nil {
		pe, ok := r.(*ParseError)
		if !ok {
			panic(r)
		}
		*errp = pe
	}
}

func (p *parser) fail(pos int, format string, args ...any) {
	panic(newParseError(p.input, pos, fmt.Sprintf(format, args...)))
}

func (p *parser) peek() token { return p.toks[p.i] }

// peekAt looks n tokens ahead; past the end it returns the final token.
func (p *parser) peekAt(n int) token {
	if p.i+n < len(p.toks) {
		return p.toks[p.i+n]
	}
	return p.toks[len(p.toks)-1]
}

func (p *parser) next() token {
	t := p.toks[p.i]
	if t.kind == tError {
		p.fail(t.pos, "syntax error: %s", t.text)
	}
	if p.i < len(p.toks)-1 {
		p.i++
	}
	return t
}

// unexpected fails at the current token with "unexpected X, expecting Y".
func (p *parser) unexpected(expecting string) {
	t := p.peek()
	if t.kind == tError {
		p.fail(t.pos, "syntax error: %s", t.text)
	}
	if expecting == "" {
		p.fail(t.pos, "syntax error: unexpected %s", t.describe())
	}
	p.fail(t.pos, "syntax error: unexpected %s, expecting %s", t.describe(), expecting)
}

func (p *parser) expect(k tokenKind, expecting string) token {
	if p.peek().kind != k {
		p.unexpected(expecting)
	}
	return p.next()
}

func (p *parser) expectEOF() {
	if p.peek().kind != tEOF {
		p.unexpected("end of input")
	}
}

func (p *parser) isKeyword(word string) bool {
	t := p.peek()
	return t.kind == tIdent && t.text == word
}

func (p *parser) enter() {
	p.depth++
	if p.depth > maxDepth {
		p.fail(p.peek().pos, "query is nested too deeply (more than %d levels)", maxDepth)
	}
}

func (p *parser) leave() { p.depth-- }

// binaryOp returns the binary operator at the current token, if any.
func (p *parser) binaryOp() (BinaryOp, bool) {
	t := p.peek()
	switch t.kind {
	case tAdd:
		return OpAdd, true
	case tSub:
		return OpSub, true
	case tMul:
		return OpMul, true
	case tDiv:
		return OpDiv, true
	case tMod:
		return OpMod, true
	case tPow:
		return OpPow, true
	case tCmpEq:
		return OpEq, true
	case tNeq:
		return OpNeq, true
	case tGt:
		return OpGt, true
	case tGte:
		return OpGte, true
	case tLt:
		return OpLt, true
	case tLte:
		return OpLte, true
	case tIdent:
		switch t.text {
		case "and":
			return OpAnd, true
		case "or":
			return OpOr, true
		case "unless":
			return OpUnless, true
		}
	}
	return "", false
}

// parseExpr is precedence climbing over the binary operators.
func (p *parser) parseExpr(minPrec int) Expr {
	p.enter()
	defer p.leave()
	lhs := p.parseUnary()
	for {
		op, ok := p.binaryOp()
		if !ok || op.Precedence() < minPrec {
			return lhs
		}
		opTok := p.next()
		if _, isLog := lhs.(*LogSelectorExpr); isLog {
			p.fail(opTok.pos, "syntax error: unexpected %s: a log query cannot be an operand of a binary operation", op)
		}
		be := &BinaryExpr{Op: op, Start: lhs.Pos()}
		if p.isKeyword("bool") {
			t := p.next()
			if !op.IsComparison() {
				p.fail(t.pos, "bool modifier can only be used on comparison operators")
			}
			be.ReturnBool = true
		}
		if p.isKeyword("on") || p.isKeyword("ignoring") {
			be.Matching = p.parseVectorMatching(op)
		}
		nextMin := op.Precedence() + 1
		if op == OpPow {
			nextMin = op.Precedence() // right-associative
		}
		rhsPos := p.peek().pos
		rhs := p.parseExpr(nextMin)
		rs, ok := rhs.(SampleExpr)
		if !ok {
			p.fail(rhsPos, "syntax error: a log query cannot be an operand of a binary operation")
		}
		be.LHS = lhs.(SampleExpr)
		be.RHS = rs
		p.validateBinary(be, opTok.pos)
		lhs = be
	}
}

func (p *parser) parseVectorMatching(op BinaryOp) *VectorMatching {
	t := p.next()
	m := &VectorMatching{On: t.text == "on"}
	m.Labels = p.parseLabelList()
	if p.isKeyword("group_left") || p.isKeyword("group_right") {
		g := p.next()
		if op.IsSetOperator() {
			p.fail(g.pos, "no grouping allowed for %q operation", op)
		}
		m.Card = ManyToOne
		if g.text == "group_right" {
			m.Card = OneToMany
		}
		if p.peek().kind == tLParen {
			m.Include = p.parseLabelList()
		}
		if m.On {
			for _, inc := range m.Include {
				for _, on := range m.Labels {
					if inc == on {
						p.fail(g.pos, "label %q must not occur in ON and GROUP clause at once", inc)
					}
				}
			}
		}
	}
	return m
}

// isScalar reports whether e evaluates to a scalar: a number literal or
// arithmetic on scalars.
func isScalar(e SampleExpr) bool {
	switch e := e.(type) {
	case *LiteralExpr:
		return true
	case *BinaryExpr:
		return isScalar(e.LHS) && isScalar(e.RHS)
	}
	return false
}

func (p *parser) validateBinary(be *BinaryExpr, opPos int) {
	ls, rs := isScalar(be.LHS), isScalar(be.RHS)
	if be.Op.IsSetOperator() && (ls || rs) {
		p.fail(opPos, "set operator %q not allowed in binary scalar expression", be.Op)
	}
	if be.Op.IsComparison() && ls && rs && !be.ReturnBool {
		p.fail(opPos, "comparisons between scalars must use BOOL modifier")
	}
	if be.Matching != nil && (ls || rs) {
		p.fail(opPos, "vector matching only allowed between vectors")
	}
}

// parseUnary handles a sign, which LogQL only allows on number literals.
func (p *parser) parseUnary() Expr {
	t := p.peek()
	if t.kind == tSub || t.kind == tAdd {
		p.next()
		n := p.peek()
		if n.kind != tNumber {
			p.fail(t.pos, "syntax error: unary %s is only allowed before a number", t.kind)
		}
		p.next()
		v := n.num
		if t.kind == tSub {
			v = -v
		}
		return &LiteralExpr{Value: v, Start: Pos(t.pos)}
	}
	return p.parsePrimary()
}

var rangeOps = map[string]RangeOp{}
var vectorOps = map[string]VectorOp{}

func init() {
	for _, op := range []RangeOp{RangeRate, RangeRateCounter, RangeCount, RangeBytesRate, RangeBytes,
		RangeAbsent, RangeSum, RangeAvg, RangeMin, RangeMax, RangeStdvar, RangeStddev, RangeQuantile,
		RangeFirst, RangeLast} {
		rangeOps[string(op)] = op
	}
	for _, op := range []VectorOp{VectorSum, VectorAvg, VectorMin, VectorMax, VectorCount, VectorStddev,
		VectorStdvar, VectorTopK, VectorBottomK, VectorSort, VectorSortDesc, VectorApproxTopK} {
		vectorOps[string(op)] = op
	}
}

func (p *parser) parsePrimary() Expr {
	t := p.peek()
	switch t.kind {
	case tLBrace:
		ms, start := p.parseSelector()
		sel := &LogSelectorExpr{Matchers: ms, Start: Pos(start)}
		sel.Stages, _ = p.parsePipeline(false)
		if p.peek().kind == tLBracket {
			p.fail(p.peek().pos, "syntax error: a log range like [5m] is only allowed inside a range aggregation such as count_over_time")
		}
		return sel
	case tLParen:
		p.next()
		e := p.parseExpr(0)
		p.expect(tRParen, ")")
		if _, ok := e.(*LogSelectorExpr); ok && p.peek().kind == tLBracket {
			p.fail(p.peek().pos, "syntax error: a log range like [5m] is only allowed inside a range aggregation such as count_over_time")
		}
		return e
	case tNumber:
		p.next()
		return &LiteralExpr{Value: t.num, Start: Pos(t.pos)}
	case tIdent:
		next := p.peekAt(1)
		if op, ok := rangeOps[t.text]; ok && next.kind == tLParen {
			return p.parseRangeAggregation(op)
		}
		if op, ok := vectorOps[t.text]; ok && (next.kind == tLParen || next.kind == tIdent && (next.text == "by" || next.text == "without")) {
			return p.parseVectorAggregation(op)
		}
		switch {
		case t.text == "vector" && next.kind == tLParen:
			p.next()
			p.next()
			v := p.parseSignedNumber("NUMBER")
			p.expect(tRParen, ")")
			return &VectorExpr{Value: v, Start: Pos(t.pos)}
		case t.text == "label_replace" && next.kind == tLParen:
			return p.parseLabelReplace()
		}
		if _, ok := rangeOps[t.text]; ok {
			p.i++
			p.unexpected("(")
		}
		if _, ok := vectorOps[t.text]; ok {
			p.i++
			p.unexpected("( or by/without")
		}
	}
	p.unexpected("{, (, a number or a function")
	return nil
}

func (p *parser) parseSignedNumber(expecting string) float64 {
	neg := false
	if t := p.peek(); t.kind == tSub || t.kind == tAdd {
		p.next()
		neg = t.kind == tSub
	}
	n := p.expect(tNumber, expecting)
	if neg {
		return -n.num
	}
	return n.num
}

// parseSelector parses {name op "value", ...} and checks that it selects
// something: at least one matcher must reject the empty string.
func (p *parser) parseSelector() ([]*labels.Matcher, int) {
	open := p.expect(tLBrace, "{")
	var ms []*labels.Matcher
	for p.peek().kind != tRBrace {
		name := p.expect(tIdent, "label name")
		opTok := p.peek()
		var mt labels.MatchType
		switch opTok.kind {
		case tEq:
			mt = labels.MatchEqual
		case tNeq:
			mt = labels.MatchNotEqual
		case tRe:
			mt = labels.MatchRegexp
		case tNre:
			mt = labels.MatchNotRegexp
		default:
			p.unexpected("=, !=, =~ or !~")
		}
		p.next()
		val := p.expect(tString, "STRING")
		ms = append(ms, p.newMatcher(mt, name.text, val))
		if p.peek().kind == tComma {
			p.next()
			continue
		}
		if p.peek().kind != tRBrace {
			p.unexpected(", or }")
		}
	}
	p.next()
	nonEmpty := false
	for _, m := range ms {
		if !m.MatchesEmpty() {
			nonEmpty = true
			break
		}
	}
	if !nonEmpty {
		p.fail(open.pos, `queries require at least one regexp or equality matcher that does not have an empty-compatible value. For instance, app=~".*" does not meet this requirement, but app=~".+" will meet it`)
	}
	return ms, open.pos
}

// newMatcher builds a label matcher, checking a regexp on its own first:
// wrapped in the anchors, a value such as `a)|(b` would compile.
func (p *parser) newMatcher(t labels.MatchType, name string, val token) *labels.Matcher {
	if t == labels.MatchRegexp || t == labels.MatchNotRegexp {
		if _, err := syntax.Parse(val.text, syntax.Perl); err != nil {
			p.fail(val.pos, "invalid regular expression %q: %s", val.text, regexpErrorText(err))
		}
	}
	m, err := labels.NewMatcher(t, name, val.text)
	if err != nil {
		p.fail(val.pos, "%s", err.Error())
	}
	return m
}

func regexpErrorText(err error) string {
	var se *syntax.Error
	if errors.As(err, &se) {
		return se.Code.String() + ": `" + truncate(se.Expr, 64) + "`"
	}
	return err.Error()
}

// compileCheck validates a line filter or parser regexp the way the
// pipeline will compile it.
func (p *parser) compileCheck(val token) *regexp.Regexp {
	re, err := regexp.Compile(val.text)
	if err != nil {
		p.fail(val.pos, "invalid regular expression %q: %s", truncate(val.text, 128), regexpErrorText(err))
	}
	return re
}

func (p *parser) parseLabelList() []string {
	p.expect(tLParen, "(")
	var names []string
	for p.peek().kind != tRParen {
		names = append(names, p.expect(tIdent, "label name").text)
		if p.peek().kind == tComma {
			p.next()
			continue
		}
		if p.peek().kind != tRParen {
			p.unexpected(", or )")
		}
	}
	p.next()
	return names
}

func (p *parser) parseGrouping() *Grouping {
	t := p.next() // by or without
	return &Grouping{Without: t.text == "without", Labels: p.parseLabelList()}
}

func (p *parser) parseRangeAggregation(op RangeOp) Expr {
	p.enter()
	defer p.leave()
	start := p.next()
	p.next() // (
	e := &RangeAggregationExpr{Op: op, Start: Pos(start.pos)}
	if op == RangeQuantile {
		v := p.parseSignedNumber("NUMBER (the quantile)")
		e.Param = &v
		p.expect(tComma, ",")
	} else if t := p.peek(); t.kind == tNumber {
		p.fail(t.pos, "syntax error: %s does not take a parameter", op)
	}
	e.Range = p.parseLogRange()
	p.expect(tRParen, ")")
	if p.isKeyword("by") || p.isKeyword("without") {
		g := p.peek()
		e.Grouping = p.parseGrouping()
		switch op {
		case RangeAvg, RangeStddev, RangeStdvar, RangeQuantile, RangeMax, RangeMin, RangeFirst, RangeLast:
		default:
			p.fail(g.pos, "grouping not allowed for %s aggregation", op)
		}
	}
	p.validateUnwrap(e, start.pos)
	return e
}

func (p *parser) validateUnwrap(e *RangeAggregationExpr, pos int) {
	unwrapped := e.Range.Unwrap != nil
	switch e.Op {
	case RangeRate, RangeAbsent:
		// Both forms are valid.
	case RangeCount, RangeBytes, RangeBytesRate:
		if unwrapped {
			p.fail(int(e.Range.Unwrap.Start), "invalid aggregation %s with unwrap", e.Op)
		}
	default:
		if !unwrapped {
			p.fail(pos, "invalid aggregation %s without unwrap", e.Op)
		}
	}
}

// partialRange collects a log range while parentheses are unwound.
type partialRange struct {
	sel      *LogSelectorExpr
	unwrap   *Unwrap
	hasRange bool
	r        *LogRangeExpr
}

func (p *parser) parseLogRange() *LogRangeExpr {
	start := p.peek().pos
	pr := p.parsePartialRange()
	if !pr.hasRange {
		p.unexpected("a range like [5m]")
	}
	pr.r.Selector = pr.sel
	pr.r.Unwrap = pr.unwrap
	pr.r.Start = Pos(start)
	return pr.r
}

// parsePartialRange accepts the forms Loki does: {sel} pipeline [5m],
// {sel} [5m] pipeline, and either wrapped in parentheses, the range inside
// or outside them.
func (p *parser) parsePartialRange() partialRange {
	p.enter()
	defer p.leave()
	if p.peek().kind == tLParen {
		p.next()
		pr := p.parsePartialRange()
		p.expect(tRParen, ")")
		if !pr.hasRange && p.peek().kind == tLBracket {
			pr.r = p.parseRangeAndOffset()
			pr.hasRange = true
		}
		return pr
	}
	if p.peek().kind != tLBrace {
		p.unexpected("{ or (")
	}
	ms, start := p.parseSelector()
	pr := partialRange{sel: &LogSelectorExpr{Matchers: ms, Start: Pos(start)}}
	pr.sel.Stages, pr.unwrap = p.parsePipeline(true)
	if p.peek().kind == tLBracket {
		pr.r = p.parseRangeAndOffset()
		pr.hasRange = true
		if len(pr.sel.Stages) == 0 && pr.unwrap == nil {
			pr.sel.Stages, pr.unwrap = p.parsePipeline(true)
		}
	}
	return pr
}

func (p *parser) parseRangeAndOffset() *LogRangeExpr {
	p.next() // [
	d := p.expect(tDuration, "DURATION")
	if d.dur <= 0 {
		p.fail(d.pos, "range must be greater than zero")
	}
	p.expect(tRBracket, "]")
	r := &LogRangeExpr{Interval: d.dur}
	if p.isKeyword("offset") {
		p.next()
		r.Offset = p.expect(tDuration, "DURATION").dur
	}
	return r
}

func (p *parser) parseVectorAggregation(op VectorOp) Expr {
	p.enter()
	defer p.leave()
	start := p.next()
	e := &VectorAggregationExpr{Op: op, Start: Pos(start.pos)}
	var groupPos int
	if p.isKeyword("by") || p.isKeyword("without") {
		groupPos = p.peek().pos
		e.Grouping = p.parseGrouping()
	}
	p.expect(tLParen, "(")
	switch op {
	case VectorTopK, VectorBottomK, VectorApproxTopK:
		t := p.peek()
		v := p.parseSignedNumber("NUMBER (the number of series)")
		if v != math.Trunc(v) || v > math.MaxInt32 {
			p.fail(t.pos, "invalid parameter for %s: %s is not an integer", op, formatNumber(v))
		}
		if v <= 0 {
			p.fail(t.pos, "invalid parameter for %s: must be greater than 0", op)
		}
		e.Param = &v
		p.expect(tComma, ",")
	default:
		if t := p.peek(); t.kind == tNumber && p.peekAt(1).kind == tComma {
			p.fail(t.pos, "syntax error: %s does not take a parameter", op)
		}
	}
	argPos := p.peek().pos
	arg := p.parseExpr(0)
	se, ok := arg.(SampleExpr)
	if !ok {
		p.fail(argPos, "syntax error: %s needs a metric expression, not a log query; use a range aggregation such as count_over_time(...[5m])", op)
	}
	e.Expr = se
	p.expect(tRParen, ")")
	if p.isKeyword("by") || p.isKeyword("without") {
		if e.Grouping != nil {
			p.unexpected(")")
		}
		groupPos = p.peek().pos
		e.Grouping = p.parseGrouping()
	}
	if e.Grouping != nil && (op == VectorSort || op == VectorSortDesc || op == VectorApproxTopK) {
		p.fail(groupPos, "grouping not allowed for %s", op)
	}
	return e
}

func (p *parser) parseLabelReplace() Expr {
	p.enter()
	defer p.leave()
	start := p.next()
	p.next() // (
	argPos := p.peek().pos
	arg := p.parseExpr(0)
	se, ok := arg.(SampleExpr)
	if !ok {
		p.fail(argPos, "syntax error: label_replace needs a metric expression, not a log query")
	}
	e := &LabelReplaceExpr{Expr: se, Start: Pos(start.pos)}
	var args [4]token
	for i := range args {
		p.expect(tComma, ",")
		args[i] = p.expect(tString, "STRING")
	}
	p.expect(tRParen, ")")
	e.Dst, e.Replacement, e.Src, e.Regex = args[0].text, args[1].text, args[2].text, args[3].text
	if !labels.ValidName(e.Dst) {
		p.fail(args[0].pos, "invalid destination label name in label_replace(): %q", e.Dst)
	}
	if !labels.ValidName(e.Src) {
		p.fail(args[2].pos, "invalid source label name in label_replace(): %q", e.Src)
	}
	if _, err := syntax.Parse(e.Regex, syntax.Perl); err != nil {
		p.fail(args[3].pos, "invalid regular expression in label_replace(): %s", regexpErrorText(err))
	}
	return e
}
