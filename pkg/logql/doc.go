// Package logql is the syntax of LogQL, Loki's query language: a hand-written
// lexer and recursive-descent parser producing a plain AST, a canonical
// printer (parse(print(x)) prints x again), and static analysis the query
// planner uses, such as the substrings every matching line must contain.
//
// The package only describes queries; it never runs them. Execution of the
// pipeline stages lives in package pipeline, planning in package query.
//
// Positions are byte offsets into the query text. A *ParseError reports them
// as a 1-based line and a 1-based column counted in bytes.
package logql
