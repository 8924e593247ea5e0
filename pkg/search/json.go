package search

import (
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/logsift/logsift/pkg/labels"
	"github.com/logsift/logsift/pkg/query"
)

// Loki's flag with which a client asks for structured metadata and parsed
// labels as a third element of each value instead of merged into the
// stream labels; Grafana sends it.
const (
	encodingFlagsHeader = "X-Loki-Response-Encoding-Flags"
	categorizeLabels    = "categorize-labels"
)

func wantsCategorized(r *http.Request) bool {
	for _, v := range r.Header.Values(encodingFlagsHeader) {
		for _, f := range strings.Split(v, ",") {
			if strings.TrimSpace(f) == categorizeLabels {
				return true
			}
		}
	}
	return false
}

// appendStreams writes streams in Loki's shape:
// [{"stream":{labels},"values":[["<ns>","<line>"(,{categorized})?],…]},…].
// It is written by hand, as query_range's answer is, because a batch of
// thousands of lines through reflection costs more than finding them.
func appendStreams(b []byte, streams []query.StreamResult, categorized bool) []byte {
	if !categorized {
		streams = splitByMetadata(streams)
	}
	b = append(b, '[')
	for i, s := range streams {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"stream":`...)
		b = appendLabels(b, s.Labels)
		b = append(b, `,"values":[`...)
		for j, e := range s.Entries {
			if j > 0 {
				b = append(b, ',')
			}
			b = append(b, `["`...)
			b = strconv.AppendInt(b, e.Timestamp, 10)
			b = append(b, `",`...)
			b = appendString(b, e.Line)
			if categorized && (len(e.Metadata) > 0 || len(e.Parsed) > 0) {
				b = append(b, `,{`...)
				if len(e.Metadata) > 0 {
					b = append(b, `"structuredMetadata":`...)
					b = appendLabels(b, e.Metadata)
				}
				if len(e.Parsed) > 0 {
					if len(e.Metadata) > 0 {
						b = append(b, ',')
					}
					b = append(b, `"parsed":`...)
					b = appendLabels(b, e.Parsed)
				}
				b = append(b, '}')
			}
			b = append(b, ']')
		}
		b = append(b, "]}"...)
	}
	return append(b, ']')
}

// splitByMetadata does what Loki does for clients that do not ask for
// categorized labels: structured metadata and parsed labels join the
// stream labels, so entries with different ones land in different
// streams. The pipeline already renamed colliding names (_extracted).
func splitByMetadata(streams []query.StreamResult) []query.StreamResult {
	var out []query.StreamResult
	for _, s := range streams {
		idx := map[string]int{}
		for _, e := range s.Entries {
			ls := s.Labels
			if len(e.Metadata) > 0 || len(e.Parsed) > 0 {
				ls = append(append(s.Labels.Copy(), e.Metadata...), e.Parsed...).Sort()
			}
			key := ls.String()
			i, ok := idx[key]
			if !ok {
				i = len(out)
				idx[key] = i
				out = append(out, query.StreamResult{Labels: ls})
			}
			e.Metadata, e.Parsed = nil, nil
			out[i].Entries = append(out[i].Entries, e)
		}
	}
	return out
}

func appendLabels(b []byte, ls labels.Labels) []byte {
	b = append(b, '{')
	for i, l := range ls {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, []byte(l.Name))
		b = append(b, ':')
		b = appendString(b, []byte(l.Value))
	}
	return append(b, '}')
}

const hexDigits = "0123456789abcdef"

// appendString writes s as a JSON string; invalid UTF-8 becomes U+FFFD,
// as encoding/json writes it.
func appendString(b []byte, s []byte) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"':
				b = append(b, `\"`...)
			case '\\':
				b = append(b, `\\`...)
			case '\n':
				b = append(b, `\n`...)
			case '\r':
				b = append(b, `\r`...)
			case '\t':
				b = append(b, `\t`...)
			default:
				b = append(b, `\u00`...)
				b = append(b, hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i++
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			// Valid JSON, but not valid JavaScript before ES2019.
			b = append(b, s[start:i]...)
			b = append(b, `\u202`...)
			b = append(b, hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
