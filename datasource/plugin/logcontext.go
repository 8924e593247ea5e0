package plugin

import (
	"context"
	"encoding/json"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/data"

	"github.com/logsift/logsift/datasource/client"
	"github.com/logsift/logsift/datasource/frames"
	"github.com/logsift/logsift/pkg/labels"
	"github.com/logsift/logsift/pkg/logql"
)

// LineLabel is the structured metadata in which the agent keeps an
// entry's line number in its file.
const LineLabel = "line"

// Bounds of a context request.
const (
	defaultContextLines = 10
	maxContextLines     = 1000
)

// contextWindows are the time windows around the hit a context lookup
// tries, narrowest first: an imported file's lines may lie days apart.
var contextWindows = []time.Duration{time.Hour, 24 * time.Hour, 30 * 24 * time.Hour}

// contextRequest is a log context lookup.
type contextRequest struct {
	ts        int64             // the hit's timestamp, ns
	labels    map[string]string // the hit's labels: stream labels, maybe more
	types     map[string]string // label types, when the frontend sends them
	line      int64             // the hit's line number; 0 when unknown
	body      string            // the hit's text, to leave it out by time
	before    int
	after     int
	workspace string
}

func parseContextRequest(p url.Values) (contextRequest, error) {
	var r contextRequest
	tsv := p.Get("ts")
	if tsv == "" {
		return r, badRequest("ts (the line's timestamp) is required")
	}
	if n, err := strconv.ParseInt(tsv, 10, 64); err == nil && len(tsv) > 13 {
		r.ts = n
	} else {
		t, err := parseTime(tsv)
		if err != nil {
			return r, badRequest("invalid ts %q: %v", tsv, err)
		}
		r.ts = t.UnixNano()
	}
	lv := strings.TrimSpace(p.Get("labels"))
	switch {
	case lv == "":
		return r, badRequest("labels (the line's labels, a JSON object or a selector) is required")
	case strings.HasPrefix(lv, "{\""):
		if err := json.Unmarshal([]byte(lv), &r.labels); err != nil {
			return r, badRequest("labels is not a JSON object of strings: %v", err)
		}
	default:
		ms, err := logql.ParseMatchers(lv)
		if err != nil {
			return r, badRequest("invalid labels %q: %v", lv, err)
		}
		r.labels = map[string]string{}
		for _, m := range ms {
			if m.Type == labels.MatchEqual {
				r.labels[m.Name] = m.Value
			}
		}
	}
	if tv := strings.TrimSpace(p.Get("labelTypes")); tv != "" {
		if err := json.Unmarshal([]byte(tv), &r.types); err != nil {
			return r, badRequest("labelTypes is not a JSON object of strings: %v", err)
		}
	}
	lineV := p.Get(LineLabel)
	if lineV == "" {
		lineV = r.labels[LineLabel]
	}
	if lineV != "" {
		n, err := strconv.ParseInt(lineV, 10, 64)
		if err != nil || n <= 0 {
			return r, badRequest("invalid line %q: a positive line number", lineV)
		}
		r.line = n
	}
	r.body = p.Get("body")
	var err error
	if r.before, err = contextCount(p, "before"); err != nil {
		return r, err
	}
	if r.after, err = contextCount(p, "after"); err != nil {
		return r, err
	}
	r.workspace = p.Get("workspace")
	return r, nil
}

func contextCount(p url.Values, name string) (int, error) {
	v := p.Get(name)
	if v == "" {
		return defaultContextLines, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > maxContextLines {
		return 0, badRequest("invalid %s %q: use 0 to %d", name, v, maxContextLines)
	}
	return n, nil
}

// contextResource returns the lines around a hit in the same stream (the
// same file): by the agent's line numbers when the entries carry them,
// else by time.
func (in *Instance) contextResource(ctx context.Context, p url.Values) ([]byte, error) {
	r, err := parseContextRequest(p)
	if err != nil {
		return nil, err
	}
	sel, err := in.streamSelector(ctx, r)
	if err != nil {
		return nil, err
	}
	var before, after []row
	method := "line"
	if r.line > 0 {
		before, after, err = in.contextByLine(ctx, r, sel)
	} else {
		method = "timestamp"
		before, after, err = in.contextByTime(ctx, r, sel)
	}
	if err != nil {
		return nil, err
	}
	bf, err := data.FrameToJSON(rowsFrame(before, "before"), data.IncludeAll)
	if err != nil {
		return nil, err
	}
	af, err := data.FrameToJSON(rowsFrame(after, "after"), data.IncludeAll)
	if err != nil {
		return nil, err
	}
	return json.Marshal(map[string]any{
		"before":   json.RawMessage(bf),
		"after":    json.RawMessage(af),
		"method":   method,
		"selector": sel,
	})
}

// streamSelector is the selector of the hit's stream: its stream labels,
// told apart from metadata and parsed labels by the label types when the
// frontend sends them, else by asking the server which names are stream
// labels.
func (in *Instance) streamSelector(ctx context.Context, r contextRequest) (string, error) {
	var keep func(string) bool
	if len(r.types) > 0 {
		keep = func(n string) bool { return r.types[n] == frames.TypeIndexed }
	} else {
		t := time.Unix(0, r.ts)
		names, err := in.client.Labels(ctx, t.Add(-time.Hour), t.Add(time.Hour), "")
		if err != nil {
			return "", err
		}
		keep = func(n string) bool { return slices.Contains(names, n) }
	}
	var ms []*labels.Matcher
	for name, v := range r.labels {
		if name != LineLabel && labels.ValidName(name) && keep(name) {
			ms = append(ms, labels.MustNewMatcher(labels.MatchEqual, name, v))
		}
	}
	if r.workspace != "" && r.labels[WorkspaceLabel] == "" {
		ms = append(ms, labels.MustNewMatcher(labels.MatchEqual, WorkspaceLabel, r.workspace))
	}
	if len(ms) == 0 {
		return "", badRequest("none of the labels is a stream label: cannot tell which stream the line belongs to")
	}
	slices.SortFunc(ms, func(a, b *labels.Matcher) int { return strings.Compare(a.Name, b.Name) })
	return (&logql.LogSelectorExpr{Matchers: ms}).String(), nil
}

// row is one context line.
type row struct {
	stream client.Labels
	e      client.Entry
	line   int64
}

func rowsFrame(rows []row, name string) *data.Frame {
	b := frames.NewLogsBuilder(len(rows))
	for _, r := range rows {
		b.Add(r.stream, frames.StreamHash(r.stream), r.e)
	}
	f := b.Frame(name, frames.LogsMeta("", nil))
	f.Name = name
	return f
}

// contextByLine asks for the line numbers around the hit, widening the
// time window until it has them all or the window is as wide as it gets.
// Lines are returned in file order.
func (in *Instance) contextByLine(ctx context.Context, r contextRequest, sel string) ([]row, []row, error) {
	lo := max(r.line-int64(r.before), 1)
	hi := r.line + int64(r.after)
	q := sel + " | " + LineLabel + " >= " + strconv.FormatInt(lo, 10) + " | " + LineLabel + " <= " + strconv.FormatInt(hi, 10)
	want := int(hi - lo + 1)
	var rows []row
	for _, w := range contextWindows {
		t := time.Unix(0, r.ts)
		res, err := in.client.QueryRange(ctx, client.RangeQuery{Query: q, Start: t.Add(-w), End: t.Add(w), Limit: 4 * want, Direction: "forward"})
		if err != nil {
			return nil, nil, err
		}
		rows = rows[:0]
		seen := map[int64]bool{}
		for _, s := range res.Streams {
			for _, e := range s.Entries {
				n, err := strconv.ParseInt(e.Metadata.Get(LineLabel), 10, 64)
				if err != nil || seen[n] {
					continue // the same file imported twice shows once
				}
				seen[n] = true
				rows = append(rows, row{stream: s.Labels, e: e, line: n})
			}
		}
		if len(rows) >= want {
			break
		}
	}
	slices.SortFunc(rows, func(a, b row) int { return cmp64(a.line, b.line) })
	var before, after []row
	for _, rw := range rows {
		switch {
		case rw.line < r.line:
			before = append(before, rw)
		case rw.line > r.line:
			after = append(after, rw)
		}
	}
	return before, after, nil
}

// contextByTime takes the entries just before and just after the hit's
// timestamp. Entries at the hit's own timestamp count as after it, except
// the hit itself.
func (in *Instance) contextByTime(ctx context.Context, r contextRequest, sel string) ([]row, []row, error) {
	t := time.Unix(0, r.ts)
	var before, after []row
	for _, w := range contextWindows {
		before = before[:0]
		if r.before == 0 {
			break
		}
		res, err := in.client.QueryRange(ctx, client.RangeQuery{Query: sel, Start: t.Add(-w), End: t, Limit: r.before, Direction: "backward"})
		if err != nil {
			return nil, nil, err
		}
		before = flatten(res, before)
		if len(before) >= r.before {
			break
		}
	}
	for _, w := range contextWindows {
		after = after[:0]
		if r.after == 0 {
			break
		}
		// One more than asked: the hit itself comes back too.
		res, err := in.client.QueryRange(ctx, client.RangeQuery{Query: sel, Start: t, End: t.Add(w), Limit: r.after + 1, Direction: "forward"})
		if err != nil {
			return nil, nil, err
		}
		after = flatten(res, after)
		for i, rw := range after {
			if rw.e.Timestamp == r.ts && (r.body == "" || rw.e.Line == r.body) {
				after = slices.Delete(after, i, i+1)
				break
			}
		}
		if len(after) >= r.after {
			after = after[:r.after]
			break
		}
	}
	slices.SortStableFunc(before, func(a, b row) int { return cmp64(a.e.Timestamp, b.e.Timestamp) })
	slices.SortStableFunc(after, func(a, b row) int { return cmp64(a.e.Timestamp, b.e.Timestamp) })
	return before, after, nil
}

func flatten(res *client.Result, dst []row) []row {
	for _, s := range res.Streams {
		for _, e := range s.Entries {
			dst = append(dst, row{stream: s.Labels, e: e})
		}
	}
	return dst
}

func cmp64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
