package logql

// Walk calls fn for node and, while fn returns true, for its descendants in
// source order: expressions, log ranges, unwraps, pipeline stages and label
// filters.
func Walk(node Node, fn func(Node) bool) {
	if node == nil || !fn(node) {
		return
	}
	switch n := node.(type) {
	case *LogSelectorExpr:
		for _, s := range n.Stages {
			Walk(s, fn)
		}
	case *LabelFilterStage:
		Walk(n.Filter, fn)
	case *LabelFilterBinary:
		Walk(n.Left, fn)
		Walk(n.Right, fn)
	case *RangeAggregationExpr:
		Walk(n.Range, fn)
	case *LogRangeExpr:
		Walk(n.Selector, fn)
		if n.Unwrap != nil {
			Walk(n.Unwrap, fn)
		}
	case *Unwrap:
		for _, f := range n.PostFilters {
			Walk(f, fn)
		}
	case *VectorAggregationExpr:
		Walk(n.Expr, fn)
	case *BinaryExpr:
		Walk(n.LHS, fn)
		Walk(n.RHS, fn)
	case *LabelReplaceExpr:
		Walk(n.Expr, fn)
	}
}

// LogSelectors returns every log selector of a query in source order: the
// query itself for a log query, the selector of each range aggregation for
// a metric query.
func LogSelectors(e Expr) []*LogSelectorExpr {
	var out []*LogSelectorExpr
	Walk(e, func(n Node) bool {
		if s, ok := n.(*LogSelectorExpr); ok {
			out = append(out, s)
			return false
		}
		return true
	})
	return out
}
