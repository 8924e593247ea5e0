package lokiapi

import (
	"net/http"

	"github.com/logsift/logsift/pkg/query"
)

// The streams shape of Loki's answers, for logsift's own endpoints that
// answer with it too (the streaming search in pkg/search), so that both
// write the same bytes for the same entries.

// EncodingFlagsHeader carries Loki's encoding flags on requests and answers.
const EncodingFlagsHeader = "X-Loki-Response-Encoding-Flags"

// CategorizeLabels is the flag with which a client asks for structured
// metadata and parsed labels apart from the stream labels.
const CategorizeLabels = categorizeLabels

// WantsCategorized reports whether the request asked for CategorizeLabels.
func WantsCategorized(r *http.Request) bool { return wantsCategorized(r) }

// AppendStreams appends streams as the "result" of a Loki streams answer.
func AppendStreams(b []byte, streams []query.StreamResult, categorized bool) []byte {
	return appendStreams(b, streams, categorized)
}
