package logql

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// JSONPathPart is one step of a json extraction expression: a field name or
// an array index.
type JSONPathPart struct {
	Key     string
	Index   int
	IsIndex bool
}

// ParseJSONPath parses the expression of `| json label="expr"`: field
// access (a.b, a["b c"]) and array access (list[0]) in any combination,
// such as request.headers["User-Agent"] or servers[0].
func ParseJSONPath(s string) ([]JSONPathPart, error) {
	if s == "" {
		return nil, errors.New("empty json expression")
	}
	var parts []JSONPathPart
	i := 0
	expectField := true // at the start or after '.'
	for i < len(s) {
		switch c := s[i]; {
		case c == '[':
			j := i + 1
			if j < len(s) && s[j] == '"' {
				end := j + 1
				for end < len(s) && s[end] != '"' {
					if s[end] == '\\' {
						end++
					}
					end++
				}
				if end >= len(s) {
					return nil, fmt.Errorf("invalid json expression %q: unterminated string", s)
				}
				key, err := strconv.Unquote(s[j : end+1])
				if err != nil {
					return nil, fmt.Errorf("invalid json expression %q: bad string", s)
				}
				if end+1 >= len(s) || s[end+1] != ']' {
					return nil, fmt.Errorf("invalid json expression %q: expected ]", s)
				}
				parts = append(parts, JSONPathPart{Key: key})
				i = end + 2
			} else {
				end := strings.IndexByte(s[j:], ']')
				if end < 0 {
					return nil, fmt.Errorf("invalid json expression %q: expected ]", s)
				}
				n, err := strconv.Atoi(s[j : j+end])
				if err != nil || n < 0 {
					return nil, fmt.Errorf("invalid json expression %q: array index must be a non-negative integer", s)
				}
				parts = append(parts, JSONPathPart{Index: n, IsIndex: true})
				i = j + end + 1
			}
			expectField = false
		case c == '.':
			if expectField {
				return nil, fmt.Errorf("invalid json expression %q: unexpected .", s)
			}
			expectField = true
			i++
		default:
			if !expectField {
				return nil, fmt.Errorf("invalid json expression %q: expected . or [ at offset %d", s, i)
			}
			j := i
			for j < len(s) && s[j] != '.' && s[j] != '[' && s[j] != ']' && s[j] != '"' && s[j] != ' ' {
				j++
			}
			if j == i {
				return nil, fmt.Errorf("invalid json expression %q: unexpected %q", s, c)
			}
			parts = append(parts, JSONPathPart{Key: s[i:j]})
			i = j
			expectField = false
		}
	}
	if expectField {
		return nil, fmt.Errorf("invalid json expression %q: ends with .", s)
	}
	return parts, nil
}
