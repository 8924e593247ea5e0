package lokiapi

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/logsift/logsift/pkg/labels"
	"github.com/logsift/logsift/pkg/logql"
	"github.com/logsift/logsift/pkg/pipeline"
	"github.com/logsift/logsift/pkg/query"
	"github.com/logsift/logsift/pkg/store"
)

// Loki's defaults for the detected_* endpoints.
const (
	defaultDetectedLineLimit  = 1000
	defaultDetectedFieldLimit = 1000
)

// staticLabels are kept by detected_labels whatever their values look
// like, as Loki keeps them.
var staticLabels = map[string]bool{"cluster": true, "namespace": true, "instance": true, "pod": true}

type detectedLabel struct {
	Label       string `json:"label"`
	Cardinality int    `json:"cardinality"`
}

// detectedLabels serves /loki/api/v1/detected_labels: the stream labels
// of the range with their number of values, leaving out labels whose
// values are all numbers or UUIDs (identifiers, useless to group by), as
// Loki does. The cardinality is exact.
func (a *API) detectedLabels(w http.ResponseWriter, r *http.Request) {
	c, ok := a.begin(w, r)
	if !ok {
		return
	}
	rp, err := parseRange(r, a.now())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	var sels [][]*labels.Matcher
	if q := strings.TrimSpace(r.Form.Get("query")); q != "" && q != "{}" {
		if sels, err = selectors(q); err != nil {
			a.fail(w, r, err)
			return
		}
	} else {
		sels = [][]*labels.Matcher{nil}
	}
	values := map[string]map[string]struct{}{}
	a.visitUnique(c.tenant, sels, rp.start.UnixNano(), rp.end.UnixNano()+1, func(ss *store.StreamStats) {
		for _, l := range ss.Labels {
			vs := values[l.Name]
			if vs == nil {
				vs = map[string]struct{}{}
				values[l.Name] = vs
			}
			vs[l.Value] = struct{}{}
		}
	})
	out := []detectedLabel{}
	for name, vs := range values {
		if !staticLabels[name] && allIdentifiers(vs) {
			continue
		}
		out = append(out, detectedLabel{Label: name, Cardinality: len(vs)})
	}
	slices.SortFunc(out, func(x, y detectedLabel) int { return strings.Compare(x.Label, y.Label) })
	// detectedLabels is Loki's key, which Logs Drilldown reads; data
	// repeats it for Grafana's Loki datasource, which unwraps `data`.
	writeJSON(w, map[string]any{"detectedLabels": out, "data": out})
}

// allIdentifiers reports whether every value is a number or a UUID; a
// label with only 0 and 1 is a flag, not an identifier.
func allIdentifiers(vs map[string]struct{}) bool {
	if len(vs) <= 2 {
		flag := true
		for v := range vs {
			if v != "0" && v != "1" {
				flag = false
			}
		}
		if flag {
			return false
		}
	}
	for v := range vs {
		if _, err := strconv.ParseFloat(v, 64); err == nil {
			continue
		}
		if isUUID(v) {
			continue
		}
		return false
	}
	return true
}

// isUUID reports whether s is a UUID in one of the forms Loki accepts:
// 8-4-4-4-12 hex digits, optionally in braces or after "urn:uuid:", or 32
// hex digits.
func isUUID(s string) bool {
	switch {
	case len(s) == 45 && strings.EqualFold(s[:9], "urn:uuid:"):
		s = s[9:]
	case len(s) == 38 && s[0] == '{' && s[37] == '}':
		s = s[1:37]
	case len(s) == 32:
		return isHex(s)
	}
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return false
	}
	return isHex(s[:8]) && isHex(s[9:13]) && isHex(s[14:18]) && isHex(s[19:23]) && isHex(s[24:])
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')) {
			return false
		}
	}
	return true
}

// detectedField accumulates what the sampled lines say of one field.
type detectedField struct {
	Label       string   `json:"label"`
	Type        string   `json:"type"`
	Cardinality int      `json:"cardinality"`
	Parsers     []string `json:"parsers"`
	JSONPath    []string `json:"jsonPath,omitempty"`
	values      map[string]struct{}
}

// fieldSampler reads the most recent lines of a log query and detects
// their fields: structured metadata, and the keys of JSON and logfmt
// lines, each with a type inferred from its values.
type fieldSampler struct {
	fields  map[string]*detectedField
	logfmt  *pipeline.Worker
	sps     map[uint64]*pipeline.StreamPipeline
	only    string // when set, collect this field only
	scratch map[string]any
}

func newFieldSampler(only string) *fieldSampler {
	pl, err := pipeline.New([]logql.Stage{&logql.LogfmtParser{}})
	if err != nil {
		panic("lokiapi: logfmt pipeline: " + err.Error()) // a constant pipeline
	}
	return &fieldSampler{fields: map[string]*detectedField{}, logfmt: pl.NewWorker(), sps: map[uint64]*pipeline.StreamPipeline{}, only: only}
}

func (fs *fieldSampler) add(name, value, parser string, path []string, stream labels.Labels) {
	if value == "" || name == "" {
		return
	}
	if parser != "" && stream.Has(name) {
		name += "_extracted" // as the parsers rename it
	}
	if fs.only != "" && name != fs.only {
		return
	}
	f := fs.fields[name]
	if f == nil {
		f = &detectedField{Label: name, values: map[string]struct{}{}}
		if parser != "" {
			f.Parsers = []string{}
		}
		fs.fields[name] = f
	}
	if parser != "" {
		if f.Parsers == nil {
			f.Parsers = []string{}
		}
		if !slices.Contains(f.Parsers, parser) {
			f.Parsers = append(f.Parsers, parser)
		}
	}
	if f.JSONPath == nil && len(path) > 0 {
		f.JSONPath = slices.Clone(path)
	}
	if _, seen := f.values[value]; !seen {
		f.values[value] = struct{}{}
		f.Type = widenType(f.Type, valueType(value))
	}
}

// entry detects the fields of one sampled entry.
func (fs *fieldSampler) entry(stream labels.Labels, e query.Entry) {
	for _, l := range e.Metadata {
		fs.add(l.Name, l.Value, "", nil, stream)
	}
	line := bytes.TrimSpace(e.Line)
	if len(line) > 0 && line[0] == '{' {
		fs.json(line, stream)
		return
	}
	h := stream.Hash()
	sp := fs.sps[h]
	if sp == nil {
		sp = fs.logfmt.ForStream(labels.Labels{})
		fs.sps[h] = sp
	}
	if _, lr, ok := sp.Process(0, line, nil); ok && lr.Err == "" {
		for _, l := range lr.Parsed {
			fs.add(l.Name, l.Value, "logfmt", nil, stream)
		}
	}
}

// json adds the fields of a JSON object line: nested keys flatten with
// '_' as the json parser names them, with the path to the value kept for
// `| json name="path"`; arrays are skipped, as the parser skips them.
func (fs *fieldSampler) json(line []byte, stream labels.Labels) {
	clear(fs.scratch)
	d := json.NewDecoder(bytes.NewReader(line))
	d.UseNumber()
	if err := d.Decode(&fs.scratch); err != nil {
		return
	}
	var walk func(obj map[string]any, path []string)
	walk = func(obj map[string]any, path []string) {
		for k, v := range obj {
			p := append(path, k)
			switch v := v.(type) {
			case map[string]any:
				if len(p) < 16 {
					walk(v, p)
				}
			case string:
				fs.add(flatName(p), v, "json", p, stream)
			case json.Number:
				fs.add(flatName(p), v.String(), "json", p, stream)
			case bool:
				fs.add(flatName(p), strconv.FormatBool(v), "json", p, stream)
			}
		}
	}
	walk(fs.scratch, nil)
}

// flatName joins a JSON path into the label name the json parser gives
// it: parts joined with '_', characters other than letters, digits and
// '_' replaced by '_', a leading digit prefixed with '_'.
func flatName(path []string) string {
	var b strings.Builder
	for i, p := range path {
		if i > 0 {
			b.WriteByte('_')
		}
		b.WriteString(strings.TrimSpace(p))
	}
	s := []byte(b.String())
	if len(s) == 0 {
		return ""
	}
	out := make([]byte, 0, len(s)+1)
	if s[0] >= '0' && s[0] <= '9' {
		out = append(out, '_')
	}
	for _, r := range string(s) {
		if r < 0x80 && (r == '_' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9')) {
			out = append(out, byte(r))
		} else {
			out = append(out, '_')
		}
	}
	return string(out)
}

// valueType infers a field type the way Loki does, trying in order int,
// float, boolean, duration and bytes.
func valueType(v string) string {
	if _, err := strconv.ParseInt(v, 10, 64); err == nil {
		return "int"
	}
	if _, err := strconv.ParseFloat(v, 64); err == nil {
		return "float"
	}
	if _, err := strconv.ParseBool(v); err == nil {
		return "boolean"
	}
	if _, err := time.ParseDuration(v); err == nil {
		return "duration"
	}
	if _, err := logql.ParseBytes(v); err == nil {
		return "bytes"
	}
	return "string"
}

// widenType combines the types of two values of a field: equal types
// stay, int and float make float, anything else is a string. Loki keeps
// the type of the first value; widening keeps unwrap from failing on a
// field that is a number only sometimes.
func widenType(have, v string) string {
	switch {
	case have == "" || have == v:
		return v
	case (have == "int" && v == "float") || (have == "float" && v == "int"):
		return "float"
	}
	return "string"
}

// sample runs the log query of a detected_* request for its most recent
// lines and feeds them to fs.
func (a *API) sampleFields(ctx context.Context, c *call, r *http.Request, fs *fieldSampler) error {
	rp, err := parseRange(r, a.now())
	if err != nil {
		return err
	}
	if err := c.limits.checkLength(rp.end.Sub(rp.start)); err != nil {
		return err
	}
	q := strings.TrimSpace(r.Form.Get("query"))
	if q == "" || q == "{}" {
		return badParam("query parameter is required: a log query such as {service_name=\"api\"}")
	}
	expr, err := logql.ParseExpr(q)
	if err != nil {
		return err
	}
	if _, ok := expr.(*logql.LogSelectorExpr); !ok {
		return badParam("detected fields need a log query, not a metric query: %s", q)
	}
	lineLimit := defaultDetectedLineLimit
	if v := r.Form.Get("line_limit"); v != "" {
		if lineLimit, err = strconv.Atoi(v); err != nil || lineLimit <= 0 {
			return badParam("invalid line_limit %q: must be a positive integer", v)
		}
	}
	if m := c.limits.MaxEntriesPerQuery; m > 0 && lineLimit > m {
		lineLimit = m // a sample, not an answer: clamp rather than refuse
	}
	p := query.Params{Tenant: c.tenant, Query: q, Start: rp.start, End: rp.end.Add(1), Limit: lineLimit, Direction: query.Backward}
	if c.limits.MaxQueryBytesRead > 0 {
		if err := c.limits.checkBytes(a.estimateBytes(c.tenant, expr, p)); err != nil {
			return err
		}
	}
	res, err := a.Engine.Exec(ctx, p)
	if err != nil {
		return err
	}
	for _, s := range res.Streams {
		for _, e := range s.Entries {
			fs.entry(s.Labels, e)
		}
	}
	return nil
}

// detectedFields serves /loki/api/v1/detected_fields.
func (a *API) detectedFields(w http.ResponseWriter, r *http.Request) {
	c, ok := a.begin(w, r)
	if !ok {
		return
	}
	fieldLimit, err := parseLimit(r, defaultDetectedFieldLimit, 0)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	ctx, cancel := c.withTimeout(r.Context())
	defer cancel()
	fs := newFieldSampler("")
	if err := a.sampleFields(ctx, &c, r, fs); err != nil {
		a.fail(w, r, err)
		return
	}
	out := make([]*detectedField, 0, len(fs.fields))
	for _, f := range fs.fields {
		f.Cardinality = len(f.values)
		out = append(out, f)
	}
	slices.SortFunc(out, func(x, y *detectedField) int { return strings.Compare(x.Label, y.Label) })
	if len(out) > fieldLimit {
		out = out[:fieldLimit]
	}
	// fields and fieldLimit are Loki's keys, which Logs Drilldown reads;
	// data repeats the fields for Grafana's Loki datasource.
	writeJSON(w, map[string]any{"fields": out, "fieldLimit": fieldLimit, "limit": fieldLimit, "data": out})
}

// detectedFieldValues serves /loki/api/v1/detected_field/<name>/values:
// the distinct values of one field in the sampled lines, sorted.
func (a *API) detectedFieldValues(w http.ResponseWriter, r *http.Request) {
	c, ok := a.begin(w, r)
	if !ok {
		return
	}
	name := r.PathValue("name")
	if !labels.ValidName(name) {
		a.fail(w, r, badParam("invalid field name %q", name))
		return
	}
	limit, err := parseLimit(r, defaultDetectedFieldLimit, 0)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	ctx, cancel := c.withTimeout(r.Context())
	defer cancel()
	fs := newFieldSampler(name)
	if err := a.sampleFields(ctx, &c, r, fs); err != nil {
		a.fail(w, r, err)
		return
	}
	values := []string{}
	if f := fs.fields[name]; f != nil {
		for v := range f.values {
			values = append(values, v)
		}
	}
	slices.Sort(values)
	if len(values) > limit {
		values = values[:limit]
	}
	// values is Loki's key; data repeats it for Grafana's Loki datasource.
	writeJSON(w, map[string]any{"values": values, "limit": limit, "data": values})
}
