package logql

import (
	"fmt"
	"strings"
)

// ParseError is a syntax or validation error with the position it was found
// at. Line and Col are 1-based; Col counts bytes from the start of the line.
// Offset is the 0-based byte offset into the query.
type ParseError struct {
	Line, Col int
	Offset    int
	Msg       string
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("parse error at line %d, col %d: %s", e.Line, e.Col, e.Msg)
}

// newParseError locates offset in input.
func newParseError(input string, offset int, msg string) *ParseError {
	if offset < 0 {
		offset = 0
	}
	if offset > len(input) {
		offset = len(input)
	}
	before := input[:offset]
	line := 1 + strings.Count(before, "\n")
	col := offset + 1
	if nl := strings.LastIndexByte(before, '\n'); nl >= 0 {
		col = offset - nl
	}
	return &ParseError{Line: line, Col: col, Offset: offset, Msg: msg}
}
