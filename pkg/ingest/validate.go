package ingest

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/logsift/logsift/pkg/chunk"
	"github.com/logsift/logsift/pkg/labels"
	"github.com/logsift/logsift/pkg/store"
)

// Reason says why lines were discarded; its String is the value of the
// reason label of the discarded metrics, Loki's name where Loki has one.
type Reason uint8

// Discard reasons.
const (
	ReasonRateLimited Reason = iota
	ReasonLineTooLong
	ReasonInvalidLabels
	ReasonMissingLabels
	ReasonMaxLabelNames
	ReasonLabelNameTooLong
	ReasonLabelValueTooLong
	ReasonDuplicateLabelNames
	ReasonTooFarInFuture
	ReasonMetadataTooLarge
	ReasonMetadataTooMany
	ReasonInvalidMetadata
	ReasonInvalidTimestamp
	ReasonInvalidEntry
	ReasonTooManyStreams
	ReasonStreamLimit
	ReasonStoreError
	numReasons
)

var reasonNames = [numReasons]string{
	ReasonRateLimited:         "rate_limited",
	ReasonLineTooLong:         "line_too_long",
	ReasonInvalidLabels:       "invalid_labels",
	ReasonMissingLabels:       "missing_labels",
	ReasonMaxLabelNames:       "max_label_names_per_series",
	ReasonLabelNameTooLong:    "label_name_too_long",
	ReasonLabelValueTooLong:   "label_value_too_long",
	ReasonDuplicateLabelNames: "duplicate_label_names",
	ReasonTooFarInFuture:      "too_far_in_future",
	ReasonMetadataTooLarge:    "structured_metadata_too_large",
	ReasonMetadataTooMany:     "structured_metadata_too_many",
	ReasonInvalidMetadata:     "invalid_structured_metadata",
	ReasonInvalidTimestamp:    "invalid_timestamp",
	ReasonInvalidEntry:        "invalid_entry",
	ReasonTooManyStreams:      "too_many_streams",
	ReasonStreamLimit:         "stream_limit",
	ReasonStoreError:          "store_error",
}

func (r Reason) String() string {
	if r < numReasons {
		return reasonNames[r]
	}
	return fmt.Sprintf("Reason(%d)", uint8(r))
}

// Report is what validation dropped from a push.
type Report struct {
	maxMessages int
	// Messages explain the first drops, one line each.
	Messages []string
	// Omitted counts drops beyond Messages.
	Omitted int
	// Lines and Bytes count dropped entries and their line plus metadata
	// bytes per reason.
	Lines, Bytes [numReasons]int
	// TotalLines and TotalBytes count every entry of the push.
	TotalLines, TotalBytes int
}

// wantMessage reports whether the next drop still gets its own message, so
// that a push of a million bad lines formats ten messages, not a million.
func (r *Report) wantMessage() bool {
	if len(r.Messages) < r.maxMessages {
		return true
	}
	r.Omitted++
	return false
}

func (r *Report) drop(reason Reason, lines, bytes int) {
	r.Lines[reason] += lines
	r.Bytes[reason] += bytes
}

// DroppedLines is the number of entries dropped for any reason.
func (r *Report) DroppedLines() int {
	n := 0
	for _, l := range r.Lines {
		n += l
	}
	return n
}

// String joins the messages for a response body.
func (r *Report) String() string {
	var b strings.Builder
	for _, m := range r.Messages {
		b.WriteString(m)
		b.WriteByte('\n')
	}
	if r.Omitted > 0 {
		fmt.Fprintf(&b, "... and %d more problems not listed\n", r.Omitted)
	}
	dropped := r.DroppedLines()
	fmt.Fprintf(&b, "%d of %d entries were rejected; the other %d were stored", dropped, r.TotalLines, r.TotalLines-dropped)
	return b.String()
}

// validator applies one tenant's Limits to a decoded push.
type validator struct {
	limits *Limits
	now    time.Time
	cache  *labelCache
	rep    *Report
}

func entryBytes(e *chunk.Entry) int {
	n := len(e.Line)
	for _, l := range e.Metadata {
		n += len(l.Name) + len(l.Value)
	}
	return n
}

func streamBytes(s *PushStream) int {
	n := 0
	for i := range s.Entries {
		n += entryBytes(&s.Entries[i])
	}
	return n
}

// validate turns a decoded push into the streams to append, dropping and
// reporting what breaks the limits. Entries are filtered in place.
func (v *validator) validate(req *PushRequest) []store.Stream {
	out := make([]store.Stream, 0, len(req.Streams))
	lim := v.limits
	for si := range req.Streams {
		s := &req.Streams[si]
		n, b := len(s.Entries), streamBytes(s)
		v.rep.TotalLines += n
		v.rep.TotalBytes += b
		if lim.MaxStreamsPerPush > 0 && si >= lim.MaxStreamsPerPush {
			v.rep.drop(ReasonTooManyStreams, n, b)
			if si == lim.MaxStreamsPerPush && v.rep.wantMessage() {
				v.rep.Messages = append(v.rep.Messages, fmt.Sprintf("push has %d streams, more than the limit of %d; the streams after the first %d were rejected (limits.max_streams_per_push)", len(req.Streams), lim.MaxStreamsPerPush, lim.MaxStreamsPerPush))
			}
			continue
		}
		ls, reason, msg := v.streamLabels(s)
		if msg != "" {
			v.rep.drop(reason, n, b)
			if v.rep.wantMessage() {
				v.rep.Messages = append(v.rep.Messages, msg)
			}
			continue
		}
		if kept := v.entries(s, ls); len(kept) > 0 {
			out = append(out, store.Stream{Labels: ls, Entries: kept})
		}
	}
	return out
}

// streamLabels resolves and checks a stream's labels; a non-empty message
// means the whole stream is dropped for reason.
func (v *validator) streamLabels(s *PushStream) (labels.Labels, Reason, string) {
	lim := v.limits
	if s.Labels == "" {
		return nil, ReasonMissingLabels, "stream without labels: at least one label pair is required per stream"
	}
	ls, err := v.cache.resolve(s.Labels, s.LabelsJSON, lim.MaxLabelNamesPerSeries)
	if err != nil {
		switch e := err.(type) {
		case *tooManyLabelsError:
			return nil, ReasonMaxLabelNames, fmt.Sprintf("stream '%s' has %d or more label names; limit %d (limits.max_label_names_per_series)", shorten(s.Labels), e.count, lim.MaxLabelNamesPerSeries)
		case *duplicateLabelError:
			return nil, ReasonDuplicateLabelNames, fmt.Sprintf("stream '%s' has duplicate label name: '%s'", shorten(s.Labels), e.name)
		}
		if !s.LabelsJSON {
			return nil, ReasonInvalidLabels, fmt.Sprintf("error parsing stream labels: %v", err) // Parse's error quotes the text
		}
		return nil, ReasonInvalidLabels, fmt.Sprintf("error parsing labels '%s': %v", shorten(s.Labels), err)
	}
	if len(ls) == 0 {
		return nil, ReasonMissingLabels, fmt.Sprintf("stream with labels '%s' has none: at least one label pair is required per stream", shorten(s.Labels))
	}
	if lim.MaxLabelNamesPerSeries > 0 && len(ls) > lim.MaxLabelNamesPerSeries {
		return nil, ReasonMaxLabelNames, fmt.Sprintf("stream '%s' has %d label names; limit %d (limits.max_label_names_per_series)", shorten(s.Labels), len(ls), lim.MaxLabelNamesPerSeries)
	}
	for i, l := range ls {
		switch {
		case lim.MaxLabelNameLength > 0 && len(l.Name) > lim.MaxLabelNameLength:
			return nil, ReasonLabelNameTooLong, fmt.Sprintf("stream '%s' has label name too long: '%s' is %d bytes, limit %d (limits.max_label_name_length)", shorten(s.Labels), shorten(l.Name), len(l.Name), lim.MaxLabelNameLength)
		case lim.MaxLabelValueLength > 0 && len(l.Value) > lim.MaxLabelValueLength:
			return nil, ReasonLabelValueTooLong, fmt.Sprintf("stream '%s' has label value too long: %s='%s' is %d bytes, limit %d (limits.max_label_value_length)", shorten(s.Labels), l.Name, shorten(l.Value), len(l.Value), lim.MaxLabelValueLength)
		case !labels.ValidName(l.Name):
			return nil, ReasonInvalidLabels, fmt.Sprintf("stream '%s' has invalid label name %q: names match [a-zA-Z_][a-zA-Z0-9_]*", shorten(s.Labels), shorten(l.Name))
		case !utf8.ValidString(l.Value):
			return nil, ReasonInvalidLabels, fmt.Sprintf("stream '%s' has a value of label %s that is not valid UTF-8", shorten(s.Labels), l.Name)
		case i > 0 && ls[i-1].Name == l.Name:
			return nil, ReasonDuplicateLabelNames, fmt.Sprintf("stream '%s' has duplicate label name: '%s'", shorten(s.Labels), l.Name)
		}
	}
	return ls, 0, ""
}

// entries drops the stream's invalid entries in place and returns the rest.
func (v *validator) entries(s *PushStream, ls labels.Labels) []chunk.Entry {
	lim := v.limits
	var maxTime int64 = 1<<63 - 1
	if lim.CreationGracePeriod > 0 {
		maxTime = v.now.Add(lim.CreationGracePeriod).UnixNano()
	}
	kept := s.Entries[:0]
	problems := s.Problems
	for i := range s.Entries {
		e := s.Entries[i]
		if len(problems) > 0 && problems[0].Index == i {
			p := problems[0]
			for len(problems) > 0 && problems[0].Index == i {
				problems = problems[1:]
			}
			v.rep.drop(p.Reason, 1, entryBytes(&e))
			if v.rep.wantMessage() {
				v.rep.Messages = append(v.rep.Messages, fmt.Sprintf("entry %d for stream '%s': %s", i, ls, p.Message))
			}
			continue
		}
		if e.Timestamp > maxTime {
			v.rep.drop(ReasonTooFarInFuture, 1, entryBytes(&e))
			if v.rep.wantMessage() {
				v.rep.Messages = append(v.rep.Messages, fmt.Sprintf("entry for stream '%s' has timestamp too new: %s is more than %s after the server's clock (limits.creation_grace_period)", ls, time.Unix(0, e.Timestamp).UTC().Format(time.RFC3339Nano), lim.CreationGracePeriod))
			}
			continue
		}
		if lim.MaxLineSize > 0 && len(e.Line) > lim.MaxLineSize {
			if lim.MaxLineSizeTruncate {
				e.Line = e.Line[:lim.MaxLineSize:lim.MaxLineSize]
			} else {
				v.rep.drop(ReasonLineTooLong, 1, entryBytes(&e))
				if v.rep.wantMessage() {
					v.rep.Messages = append(v.rep.Messages, fmt.Sprintf("max entry size '%d' bytes exceeded for stream '%s' while adding an entry with length '%d' bytes (raise limits.max_line_size or set limits.max_line_size_truncate)", lim.MaxLineSize, ls, len(e.Line)))
				}
				continue
			}
		}
		if len(e.Metadata) > 0 {
			if reason, msg := v.metadata(&e, ls); msg != "" {
				v.rep.drop(reason, 1, entryBytes(&e))
				if v.rep.wantMessage() {
					v.rep.Messages = append(v.rep.Messages, msg)
				}
				continue
			}
		}
		kept = append(kept, e)
	}
	return kept
}

// metadata checks an entry's structured metadata and sorts it by name, the
// form chunk.Entry requires.
func (v *validator) metadata(e *chunk.Entry, ls labels.Labels) (Reason, string) {
	lim := v.limits
	md := e.Metadata
	if lim.MaxStructuredMetadataEntries > 0 && len(md) > lim.MaxStructuredMetadataEntries {
		return ReasonMetadataTooMany, fmt.Sprintf("stream '%s' has too many structured metadata labels: '%d', limit: '%d' (limits.max_structured_metadata_entries_count)", ls, len(md), lim.MaxStructuredMetadataEntries)
	}
	size := 0
	for _, l := range md {
		size += len(l.Name) + len(l.Value)
	}
	if lim.MaxStructuredMetadataSize > 0 && size > lim.MaxStructuredMetadataSize {
		return ReasonMetadataTooLarge, fmt.Sprintf("stream '%s' has structured metadata too large: '%d' bytes, limit: '%d' (limits.max_structured_metadata_size)", ls, size, lim.MaxStructuredMetadataSize)
	}
	// Insertion sort: entries carry a handful of pairs, and sort.Slice
	// would allocate for every entry.
	for i := 1; i < len(md); i++ {
		for j := i; j > 0 && md[j].Name < md[j-1].Name; j-- {
			md[j], md[j-1] = md[j-1], md[j]
		}
	}
	for i, l := range md {
		switch {
		case !labels.ValidName(l.Name):
			return ReasonInvalidMetadata, fmt.Sprintf("stream '%s' has an entry with invalid structured metadata name %q: names match [a-zA-Z_][a-zA-Z0-9_]*", ls, shorten(l.Name))
		case !utf8.ValidString(l.Value):
			return ReasonInvalidMetadata, fmt.Sprintf("stream '%s' has an entry whose structured metadata %s is not valid UTF-8", ls, l.Name)
		case i > 0 && md[i-1].Name == l.Name:
			return ReasonInvalidMetadata, fmt.Sprintf("stream '%s' has an entry with structured metadata %s given twice", ls, l.Name)
		}
	}
	return 0, ""
}

// shorten keeps messages readable when the offending text is huge (a
// thousand labels, a megabyte value) and printable when it is not UTF-8.
func shorten(s string) string { return shortenTo(s, 256) }

func shortenTo(s string, max int) string {
	if len(s) <= max {
		return strings.ToValidUTF8(s, "\uFFFD")
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return fmt.Sprintf("%s... (%d bytes)", strings.ToValidUTF8(s[:cut], "\uFFFD"), len(s))
}
