package logql

import (
	"time"

	"github.com/logsift/logsift/pkg/labels"
)

// Pos is a byte offset into the query text.
type Pos int

// Node is any part of a parsed query: expressions, pipeline stages, label
// filters and unwrap clauses. String prints the node in canonical LogQL.
type Node interface {
	Pos() Pos
	String() string
}

// Expr is a whole query or a sub-expression of one: either a
// *LogSelectorExpr (a log query) or a SampleExpr (a metric query).
type Expr interface {
	Node
	isExpr()
}

// SampleExpr is a metric expression: *RangeAggregationExpr,
// *VectorAggregationExpr, *BinaryExpr, *LiteralExpr, *VectorExpr or
// *LabelReplaceExpr.
type SampleExpr interface {
	Expr
	isSampleExpr()
}

// LogSelectorExpr is a log query: a stream selector and its pipeline.
// Parenthesised log queries parse to the same node.
type LogSelectorExpr struct {
	// Matchers select the streams, in the order written. At least one
	// of them does not match the empty string.
	Matchers []*labels.Matcher
	// Stages run on every entry of the selected streams, left to right.
	Stages []Stage
	Start  Pos
}

// RangeOp names a range aggregation.
type RangeOp string

// The range aggregations of LogQL.
const (
	RangeRate        RangeOp = "rate"
	RangeRateCounter RangeOp = "rate_counter"
	RangeCount       RangeOp = "count_over_time"
	RangeBytesRate   RangeOp = "bytes_rate"
	RangeBytes       RangeOp = "bytes_over_time"
	RangeAbsent      RangeOp = "absent_over_time"
	RangeSum         RangeOp = "sum_over_time"
	RangeAvg         RangeOp = "avg_over_time"
	RangeMin         RangeOp = "min_over_time"
	RangeMax         RangeOp = "max_over_time"
	RangeStdvar      RangeOp = "stdvar_over_time"
	RangeStddev      RangeOp = "stddev_over_time"
	RangeQuantile    RangeOp = "quantile_over_time"
	RangeFirst       RangeOp = "first_over_time"
	RangeLast        RangeOp = "last_over_time"
)

// RangeAggregationExpr applies a function to the entries (or unwrapped
// values) of each stream over a sliding window: rate({app="x"}[5m]).
type RangeAggregationExpr struct {
	Op RangeOp
	// Param is the φ of quantile_over_time; nil for every other op.
	Param *float64
	Range *LogRangeExpr
	// Grouping is the optional by/without clause after the parentheses;
	// only unwrapped aggregations other than sum, rate, rate_counter and
	// absent allow one.
	Grouping *Grouping
	Start    Pos
}

// LogRangeExpr is a log query over a window: {app="x"} |= "y" [5m] offset 1h.
// It only appears inside a RangeAggregationExpr.
type LogRangeExpr struct {
	Selector *LogSelectorExpr
	// Unwrap names the label whose value becomes the sample; nil when the
	// aggregation counts entries or bytes.
	Unwrap   *Unwrap
	Interval time.Duration // the [range], > 0
	Offset   time.Duration // offset modifier, >= 0
	Start    Pos
}

// Unwrap is `| unwrap [conv(]label[)]` with the label filters that follow it.
type Unwrap struct {
	Label string
	// Conversion is "" (parse as float), "duration", "duration_seconds"
	// (both: Go duration to seconds) or "bytes" (byte size to bytes).
	Conversion string
	// PostFilters are `| filter` stages after unwrap, typically to drop
	// conversion errors: | __error__="".
	PostFilters []LabelFilter
	Start       Pos
}

// Grouping is a by (...) or without (...) clause. Labels is nil for by ().
type Grouping struct {
	Without bool
	Labels  []string
}

// VectorOp names a vector aggregation.
type VectorOp string

// The vector aggregations of LogQL.
const (
	VectorSum        VectorOp = "sum"
	VectorAvg        VectorOp = "avg"
	VectorMin        VectorOp = "min"
	VectorMax        VectorOp = "max"
	VectorCount      VectorOp = "count"
	VectorStddev     VectorOp = "stddev"
	VectorStdvar     VectorOp = "stdvar"
	VectorTopK       VectorOp = "topk"
	VectorBottomK    VectorOp = "bottomk"
	VectorSort       VectorOp = "sort"
	VectorSortDesc   VectorOp = "sort_desc"
	VectorApproxTopK VectorOp = "approx_topk"
)

// VectorAggregationExpr aggregates the series of its argument:
// sum by (app) (rate(...)), topk(5, ...).
type VectorAggregationExpr struct {
	Op       VectorOp
	Grouping *Grouping // nil: aggregate everything into one series
	// Param is k of topk, bottomk and approx_topk (a positive integer);
	// nil for the other ops.
	Param *float64
	Expr  SampleExpr
	Start Pos
}

// BinaryOp is an arithmetic, comparison or set operator.
type BinaryOp string

// The binary operators, by precedence from highest: ^; * / %; + -;
// comparisons; and unless; or.
const (
	OpPow    BinaryOp = "^"
	OpMul    BinaryOp = "*"
	OpDiv    BinaryOp = "/"
	OpMod    BinaryOp = "%"
	OpAdd    BinaryOp = "+"
	OpSub    BinaryOp = "-"
	OpEq     BinaryOp = "=="
	OpNeq    BinaryOp = "!="
	OpGt     BinaryOp = ">"
	OpGte    BinaryOp = ">="
	OpLt     BinaryOp = "<"
	OpLte    BinaryOp = "<="
	OpAnd    BinaryOp = "and"
	OpUnless BinaryOp = "unless"
	OpOr     BinaryOp = "or"
)

// Precedence is the binding strength of op, 1 (or) to 6 (^).
func (op BinaryOp) Precedence() int {
	switch op {
	case OpOr:
		return 1
	case OpAnd, OpUnless:
		return 2
	case OpEq, OpNeq, OpGt, OpGte, OpLt, OpLte:
		return 3
	case OpAdd, OpSub:
		return 4
	case OpMul, OpDiv, OpMod:
		return 5
	case OpPow:
		return 6
	}
	return 0
}

// IsComparison reports whether op is == != > >= < <=.
func (op BinaryOp) IsComparison() bool { return op.Precedence() == 3 }

// IsSetOperator reports whether op is and, or or unless.
func (op BinaryOp) IsSetOperator() bool { return op == OpAnd || op == OpOr || op == OpUnless }

// BinaryExpr is LHS op RHS with its modifiers.
type BinaryExpr struct {
	Op       BinaryOp
	LHS, RHS SampleExpr
	// ReturnBool is the bool modifier of a comparison: 0/1 instead of
	// filtering.
	ReturnBool bool
	// Matching is the on/ignoring clause; nil matches on all labels.
	Matching *VectorMatching
	Start    Pos
}

// Cardinality is the many-to-one side of a vector match.
type Cardinality int

// group_left makes the left side "many", group_right the right side.
const (
	OneToOne Cardinality = iota
	ManyToOne
	OneToMany
)

// VectorMatching is on(...)/ignoring(...) with an optional
// group_left(...)/group_right(...).
type VectorMatching struct {
	On      bool     // on (true) or ignoring (false)
	Labels  []string // the on/ignoring labels; nil for on ()
	Card    Cardinality
	Include []string // extra labels copied from the "one" side
}

// LiteralExpr is a number: 1, -0.5, 1e3.
type LiteralExpr struct {
	Value float64
	Start Pos
}

// VectorExpr is vector(s): a single series without labels.
type VectorExpr struct {
	Value float64
	Start Pos
}

// LabelReplaceExpr is label_replace(expr, dst, replacement, src, regex).
type LabelReplaceExpr struct {
	Expr        SampleExpr
	Dst         string
	Replacement string
	Src         string
	Regex       string // anchored at both ends when applied
	Start       Pos
}

func (e *LogSelectorExpr) Pos() Pos       { return e.Start }
func (e *RangeAggregationExpr) Pos() Pos  { return e.Start }
func (e *LogRangeExpr) Pos() Pos          { return e.Start }
func (e *Unwrap) Pos() Pos                { return e.Start }
func (e *VectorAggregationExpr) Pos() Pos { return e.Start }
func (e *BinaryExpr) Pos() Pos            { return e.Start }
func (e *LiteralExpr) Pos() Pos           { return e.Start }
func (e *VectorExpr) Pos() Pos            { return e.Start }
func (e *LabelReplaceExpr) Pos() Pos      { return e.Start }

func (*LogSelectorExpr) isExpr()       {}
func (*RangeAggregationExpr) isExpr()  {}
func (*VectorAggregationExpr) isExpr() {}
func (*BinaryExpr) isExpr()            {}
func (*LiteralExpr) isExpr()           {}
func (*VectorExpr) isExpr()            {}
func (*LabelReplaceExpr) isExpr()      {}

func (*RangeAggregationExpr) isSampleExpr()  {}
func (*VectorAggregationExpr) isSampleExpr() {}
func (*BinaryExpr) isSampleExpr()            {}
func (*LiteralExpr) isSampleExpr()           {}
func (*VectorExpr) isSampleExpr()            {}
func (*LabelReplaceExpr) isSampleExpr()      {}

// Stage is one step of a log pipeline: *LineFilter, *JSONParser,
// *LogfmtParser, *RegexpParser, *PatternParser, *UnpackParser,
// *LabelFilterStage, *LineFormat, *LabelFormat, *DropLabels, *KeepLabels or
// *Decolorize. Unwrap is not a stage; it lives in LogRangeExpr.
type Stage interface {
	Node
	isStage()
}

// LineFilterOp is the operator of a line filter.
type LineFilterOp string

// The line filter operators.
const (
	LineContains       LineFilterOp = "|="
	LineNotContains    LineFilterOp = "!="
	LineMatchRegexp    LineFilterOp = "|~"
	LineNotMatchRegexp LineFilterOp = "!~"
	LineMatchPattern   LineFilterOp = "|>"
	LineNotPattern     LineFilterOp = "!>"
)

// Negated reports whether the operator keeps lines that do not match.
func (op LineFilterOp) Negated() bool {
	return op == LineNotContains || op == LineNotMatchRegexp || op == LineNotPattern
}

// LineFilter is `op value [or value...]`. With a positive operator a line
// passes when it matches any value; with a negated one when it matches none.
type LineFilter struct {
	Op     LineFilterOp
	Values []LineFilterValue
	Start  Pos
}

// LineFilterValue is one operand of a line filter: a substring (|= !=), an
// unanchored RE2 regexp in which . also matches newlines (|~ !~), a pattern
// (|> !>), or, with IP set, an ip("...") address, range or CIDR (|= != only).
type LineFilterValue struct {
	Value string
	IP    bool
}

// LabelExtraction is one `label="expression"` parameter of json or logfmt.
// The short form `label` means Expression == Label.
type LabelExtraction struct {
	Label      string
	Expression string
}

// JSONParser is `| json` with optional extraction parameters.
type JSONParser struct {
	Params []LabelExtraction
	Start  Pos
}

// LogfmtParser is `| logfmt [--strict] [--keep-empty]` with optional
// extraction parameters.
type LogfmtParser struct {
	Strict    bool
	KeepEmpty bool
	Params    []LabelExtraction
	Start     Pos
}

// RegexpParser is `| regexp "re"`; the regexp has at least one named group.
type RegexpParser struct {
	Regexp string
	Start  Pos
}

// PatternParser is `| pattern "<a> - <_>"`; see ParsePattern.
type PatternParser struct {
	Pattern string
	Start   Pos
}

// UnpackParser is `| unpack`.
type UnpackParser struct{ Start Pos }

// LabelFilterStage is `| <label filter expression>`.
type LabelFilterStage struct {
	Filter LabelFilter
	Start  Pos
}

// LineFormat is `| line_format "template"` (Go text/template).
type LineFormat struct {
	Template string
	Start    Pos
}

// LabelFormatOp is one `dst=src` (rename) or `dst="template"` operation.
type LabelFormatOp struct {
	Dst string
	// Src is the source label of a rename, or the template text when
	// Template is set.
	Src      string
	Template bool
}

// LabelFormat is `| label_format a=b, c="{{.x}}"`; each Dst appears once.
type LabelFormat struct {
	Ops   []LabelFormatOp
	Start Pos
}

// LabelSelector names labels for drop and keep: a bare name, or a matcher
// (name="v", name=~"re", ...) that applies only when the value matches.
type LabelSelector struct {
	Name    string
	Matcher *labels.Matcher // nil for a bare name
}

// DropLabels is `| drop a, b="v"`.
type DropLabels struct {
	Labels []LabelSelector
	Start  Pos
}

// KeepLabels is `| keep a, b="v"`.
type KeepLabels struct {
	Labels []LabelSelector
	Start  Pos
}

// Decolorize is `| decolorize`: strip ANSI colour sequences from the line.
type Decolorize struct{ Start Pos }

func (s *LineFilter) Pos() Pos       { return s.Start }
func (s *JSONParser) Pos() Pos       { return s.Start }
func (s *LogfmtParser) Pos() Pos     { return s.Start }
func (s *RegexpParser) Pos() Pos     { return s.Start }
func (s *PatternParser) Pos() Pos    { return s.Start }
func (s *UnpackParser) Pos() Pos     { return s.Start }
func (s *LabelFilterStage) Pos() Pos { return s.Start }
func (s *LineFormat) Pos() Pos       { return s.Start }
func (s *LabelFormat) Pos() Pos      { return s.Start }
func (s *DropLabels) Pos() Pos       { return s.Start }
func (s *KeepLabels) Pos() Pos       { return s.Start }
func (s *Decolorize) Pos() Pos       { return s.Start }

func (*LineFilter) isStage()       {}
func (*JSONParser) isStage()       {}
func (*LogfmtParser) isStage()     {}
func (*RegexpParser) isStage()     {}
func (*PatternParser) isStage()    {}
func (*UnpackParser) isStage()     {}
func (*LabelFilterStage) isStage() {}
func (*LineFormat) isStage()       {}
func (*LabelFormat) isStage()      {}
func (*DropLabels) isStage()       {}
func (*KeepLabels) isStage()       {}
func (*Decolorize) isStage()       {}

// LabelFilter is a predicate over labels: *LabelFilterBinary,
// *StringLabelFilter, *NumberLabelFilter, *DurationLabelFilter,
// *BytesLabelFilter or *IPLabelFilter.
type LabelFilter interface {
	Node
	isLabelFilter()
}

// CmpOp is the comparison of a numeric label filter.
type CmpOp string

// The comparisons of number, duration and bytes label filters. `=` in the
// query means ==.
const (
	CmpEq  CmpOp = "=="
	CmpNeq CmpOp = "!="
	CmpGt  CmpOp = ">"
	CmpGte CmpOp = ">="
	CmpLt  CmpOp = "<"
	CmpLte CmpOp = "<="
)

// LabelFilterBinary joins two predicates with "and" (also written as a
// comma or a space) or "or". As Loki documents, and/or have equal
// precedence and group left to right: a or b and c is (a or b) and c.
type LabelFilterBinary struct {
	Or          bool // "or"; false means "and"
	Left, Right LabelFilter
	Start       Pos
}

// StringLabelFilter compares a label with = != =~ !~ like a stream matcher.
type StringLabelFilter struct {
	Matcher *labels.Matcher
	Start   Pos
}

// NumberLabelFilter converts the label to a float and compares it.
type NumberLabelFilter struct {
	Name  string
	Op    CmpOp
	Value float64
	Start Pos
}

// DurationLabelFilter converts the label from a Go duration and compares it.
type DurationLabelFilter struct {
	Name  string
	Op    CmpOp
	Value time.Duration
	Start Pos
}

// BytesLabelFilter converts the label from a byte size and compares it.
type BytesLabelFilter struct {
	Name  string
	Op    CmpOp
	Value uint64
	Start Pos
}

// IPLabelFilter is `label = ip("...")` or `label != ip("...")`; Pattern is
// an address, an a-b range or a CIDR (see ParseIPRange).
type IPLabelFilter struct {
	Name    string
	Negated bool
	Pattern string
	Start   Pos
}

func (f *LabelFilterBinary) Pos() Pos   { return f.Start }
func (f *StringLabelFilter) Pos() Pos   { return f.Start }
func (f *NumberLabelFilter) Pos() Pos   { return f.Start }
func (f *DurationLabelFilter) Pos() Pos { return f.Start }
func (f *BytesLabelFilter) Pos() Pos    { return f.Start }
func (f *IPLabelFilter) Pos() Pos       { return f.Start }

func (*LabelFilterBinary) isLabelFilter()   {}
func (*StringLabelFilter) isLabelFilter()   {}
func (*NumberLabelFilter) isLabelFilter()   {}
func (*DurationLabelFilter) isLabelFilter() {}
func (*BytesLabelFilter) isLabelFilter()    {}
func (*IPLabelFilter) isLabelFilter()       {}
