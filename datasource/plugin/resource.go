package plugin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"

	"github.com/logsift/logsift/datasource/client"
	"github.com/logsift/logsift/datasource/querymodel"
	"github.com/logsift/logsift/pkg/labels"
	"github.com/logsift/logsift/pkg/logql"
)

// Resource paths of CallResource, for the query editor.
const (
	resLabels     = "labels"
	resLabel      = "label" // label/<name>/values
	resWorkspaces = "workspaces"
	resCost       = "cost"
	resEstimate   = "estimate" // the frontend's name for cost
	resFormat     = "format"
	resContext    = "context"
)

// WorkspaceLabel is the stream label that names a workspace.
const WorkspaceLabel = "workspace"

// defaultLookback is the range of editor lookups that name none.
const defaultLookback = time.Hour

// httpError is an editor call that failed with a status to answer.
type httpError struct {
	code int
	msg  string
}

func (e *httpError) Error() string { return e.msg }

func badRequest(format string, args ...any) error {
	return &httpError{code: http.StatusBadRequest, msg: fmt.Sprintf(format, args...)}
}

// CallResource serves the query editor's lookups.
func (in *Instance) CallResource(ctx context.Context, req *backend.CallResourceRequest, sender backend.CallResourceResponseSender) error {
	body, err := in.resource(ctx, req)
	if err != nil {
		return sendError(sender, err)
	}
	return sender.Send(&backend.CallResourceResponse{
		Status:  http.StatusOK,
		Headers: map[string][]string{"Content-Type": {"application/json"}},
		Body:    body,
	})
}

func (in *Instance) resource(ctx context.Context, req *backend.CallResourceRequest) ([]byte, error) {
	if in.configErr != nil {
		return nil, &httpError{code: http.StatusBadRequest, msg: "datasource settings: " + in.configErr.Error()}
	}
	if req.Method != "" && req.Method != http.MethodGet && req.Method != http.MethodPost {
		return nil, &httpError{code: http.StatusMethodNotAllowed, msg: "use GET or POST"}
	}
	params, err := resourceParams(req)
	if err != nil {
		return nil, err
	}
	path := strings.Trim(req.Path, "/")
	switch {
	case path == resLabels:
		return in.labelsResource(ctx, params, "")
	case strings.HasPrefix(path, resLabel+"/") && strings.HasSuffix(path, "/values"):
		name := strings.TrimSuffix(strings.TrimPrefix(path, resLabel+"/"), "/values")
		if n, err := url.PathUnescape(name); err == nil {
			name = n
		}
		if !labels.ValidName(name) {
			return nil, badRequest("invalid label name %q", name)
		}
		return in.labelsResource(ctx, params, name)
	case path == resWorkspaces:
		return in.workspacesResource(ctx, params)
	case path == resCost, path == resEstimate:
		return in.costResource(ctx, params)
	case path == resFormat:
		return in.formatResource(ctx, params)
	case path == resContext:
		return in.contextResource(ctx, params)
	}
	return nil, &httpError{code: http.StatusNotFound, msg: fmt.Sprintf("unknown resource %q: use labels, label/<name>/values, workspaces, cost (or estimate), format or context", path)}
}

// resourceParams merges the URL parameters with a JSON object body, so
// that the editor may use either.
func resourceParams(req *backend.CallResourceRequest) (url.Values, error) {
	params := url.Values{}
	if u, err := url.Parse(req.URL); err == nil {
		params = u.Query()
	}
	if len(req.Body) > 0 {
		var body map[string]any
		if err := json.Unmarshal(req.Body, &body); err != nil {
			return nil, badRequest("the request body is not a JSON object: %v", err)
		}
		for k, v := range body {
			switch v := v.(type) {
			case string:
				params.Set(k, v)
			case float64:
				params.Set(k, strconv.FormatFloat(v, 'f', -1, 64))
			case bool:
				params.Set(k, strconv.FormatBool(v))
			case map[string]any, []any:
				b, _ := json.Marshal(v)
				params.Set(k, string(b))
			}
		}
	}
	return params, nil
}

func sendError(sender backend.CallResourceResponseSender, err error) error {
	code := http.StatusInternalServerError
	var he *httpError
	var se *client.StatusError
	var ce *client.ConnectError
	switch {
	case errors.As(err, &he):
		code = he.code
	case errors.As(err, &se):
		code = se.Code
		if code < 400 {
			code = http.StatusBadGateway
		}
		err = errors.New(strings.TrimSpace(se.Body))
	case errors.As(err, &ce):
		code = http.StatusBadGateway
	case errors.Is(err, context.DeadlineExceeded):
		code = http.StatusGatewayTimeout
	}
	b, _ := json.Marshal(map[string]string{"error": err.Error(), "message": err.Error()})
	return sender.Send(&backend.CallResourceResponse{
		Status:  code,
		Headers: map[string][]string{"Content-Type": {"application/json"}},
		Body:    b,
	})
}

// timeRange reads start and end: Unix milliseconds (13 digits or fewer),
// Unix nanoseconds (more digits), or RFC3339. The default is the last
// hour.
func timeRange(p url.Values) (time.Time, time.Time, error) {
	end := time.Now()
	if v := p.Get("end"); v != "" {
		t, err := parseTime(v)
		if err != nil {
			return time.Time{}, time.Time{}, badRequest("invalid end %q: %v", v, err)
		}
		end = t
	}
	start := end.Add(-defaultLookback)
	if v := p.Get("start"); v != "" {
		t, err := parseTime(v)
		if err != nil {
			return time.Time{}, time.Time{}, badRequest("invalid start %q: %v", v, err)
		}
		start = t
	}
	if end.Before(start) {
		return time.Time{}, time.Time{}, badRequest("end is before start")
	}
	return start, end, nil
}

// parseTime reads one timestamp of an editor call.
func parseTime(v string) (time.Time, error) {
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if len(strings.TrimPrefix(v, "-")) <= 13 {
			return time.UnixMilli(n), nil
		}
		return time.Unix(0, n), nil
	}
	if f, err := strconv.ParseFloat(v, 64); err == nil && !math.IsNaN(f) && math.Abs(f) < 1e16 {
		return time.UnixMilli(int64(f)), nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, errors.New("use Unix milliseconds, Unix nanoseconds or RFC3339")
	}
	return t, nil
}

// scopeSelector is the stream selector of an editor lookup: the
// selectors of the current query (its pipeline dropped) with the
// workspace added. An empty result means all streams.
func scopeSelector(query, workspace string) (string, error) {
	query = strings.TrimSpace(query)
	var ms []*labels.Matcher
	if query != "" && query != "{}" {
		e, err := logql.ParseExpr(query)
		if err != nil {
			// A half-typed query still narrows by its selector.
			if m, merr := logql.ParseMatchers(selectorPrefix(query)); merr == nil {
				ms = m
			} else {
				return "", badRequest("cannot read the selector of %q: %v", query, err)
			}
		} else if sels := logql.LogSelectors(e); len(sels) > 0 {
			ms = sels[0].Matchers
		}
	}
	if workspace != "" {
		ms = append(ms, labels.MustNewMatcher(labels.MatchEqual, WorkspaceLabel, workspace))
	}
	if len(ms) == 0 {
		return "", nil
	}
	sel := &logql.LogSelectorExpr{Matchers: ms}
	return sel.String(), nil
}

// selectorPrefix cuts a query after its first closing brace.
func selectorPrefix(q string) string {
	start := strings.IndexByte(q, '{')
	end := strings.IndexByte(q, '}')
	if start < 0 || end < start {
		return q
	}
	return q[start : end+1]
}

func (in *Instance) labelsResource(ctx context.Context, p url.Values, name string) ([]byte, error) {
	start, end, err := timeRange(p)
	if err != nil {
		return nil, err
	}
	sel, err := scopeSelector(p.Get("query"), p.Get("workspace"))
	if err != nil {
		return nil, err
	}
	var out []string
	if name == "" {
		out, err = in.client.Labels(ctx, start, end, sel)
	} else {
		out, err = in.client.LabelValues(ctx, name, start, end, sel)
	}
	if err != nil {
		return nil, err
	}
	return json.Marshal(map[string]any{"data": out})
}

// costResource estimates what a query would read, from the server's
// index statistics: no chunk is read to answer it.
func (in *Instance) costResource(ctx context.Context, p url.Values) ([]byte, error) {
	start, end, err := timeRange(p)
	if err != nil {
		return nil, err
	}
	expr := strings.TrimSpace(firstOf(p, "expr", "query"))
	if expr == "" {
		return nil, badRequest("expr is required")
	}
	expr = querymodel.Interpolate(expr, querymodel.Vars{Interval: time.Minute, Range: end.Sub(start), Step: time.Minute, From: start, To: end, Type: querymodel.TypeRange})
	if ws := p.Get("workspace"); ws != "" {
		e, err := logql.ParseExpr(expr)
		if err != nil {
			return nil, badRequest("cannot scope %q to workspace %q: %v", expr, ws, err)
		}
		querymodel.ScopeWorkspace(e, ws)
		expr = e.String()
	}
	st, err := in.client.IndexStats(ctx, expr, start, end)
	if err != nil {
		return nil, err
	}
	return json.Marshal(map[string]any{
		"streams":    st.Streams,
		"chunks":     st.Chunks,
		"entries":    st.Entries,
		"bytes":      st.Bytes,
		"bytesHuman": humanBytes(st.Bytes),
		"summary": fmt.Sprintf("at most %s in %d lines, %d chunks, %d streams (line filters may skip most chunks)",
			humanBytes(st.Bytes), st.Entries, st.Chunks, st.Streams),
	})
}

func (in *Instance) formatResource(ctx context.Context, p url.Values) ([]byte, error) {
	expr := strings.TrimSpace(firstOf(p, "expr", "query"))
	if expr == "" {
		return nil, badRequest("expr is required")
	}
	out, err := in.client.FormatQuery(ctx, expr)
	if err != nil {
		return nil, err
	}
	return json.Marshal(map[string]string{"expr": out})
}

func firstOf(p url.Values, names ...string) string {
	for _, n := range names {
		if v := p.Get(n); v != "" {
			return v
		}
	}
	return ""
}

// humanBytes writes a byte count for people: 1.5 GiB, 730 B.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatInt(n, 10) + " B"
	}
	v := float64(n)
	i := -1
	for v >= unit && i < 5 {
		v /= unit
		i++
	}
	return strconv.FormatFloat(v, 'f', 1, 64) + " " + string("KMGTPE"[i]) + "iB"
}
