package search

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/logsift/logsift/pkg/lokiapi"
	"github.com/logsift/logsift/pkg/query"
	"github.com/logsift/logsift/pkg/tenant"
)

// Path is the HTTP form of the service.
const Path = "/api/v1/search/stream"

// ContentType is what Path answers with: one JSON object per line.
const ContentType = "application/x-ndjson"

// HTTP serves GET (or POST, form-encoded) /api/v1/search/stream: the
// answer is NDJSON, a {"streams":[…]} line for each batch with entries
// (Loki's streams shape) followed by a {"progress":{…}} line for every
// batch, flushed at once, the last progress with "done":true. A request
// the client got wrong is answered before any line, with 400 and the
// reason as text, as query_range answers; an error once lines went out
// is a last {"error":"…"} line. docs/api.md has the details.
type HTTP struct {
	Service *Service
}

// Register adds the endpoint to mux.
func (h *HTTP) Register(mux *http.ServeMux) {
	mux.Handle(Path, h)
}

// ProgressJSON is the "progress" object of the NDJSON answer. Unix
// nanosecond times are strings, as Loki writes them, because JSON numbers
// lose precision past 2^53.
type ProgressJSON struct {
	SourcesTotal    int     `json:"sourcesTotal"`
	SourcesDone     int     `json:"sourcesDone"`
	SourcesSkipped  int     `json:"sourcesSkipped"`
	ChunksTotal     int64   `json:"chunksTotal"`
	ChunksDone      int64   `json:"chunksDone"`
	ChunksPruned    int64   `json:"chunksPruned"`
	ChunksDecoded   int64   `json:"chunksDecoded"`
	BlocksPruned    int64   `json:"blocksPruned"`
	CompressedBytes int64   `json:"compressedBytes"`
	BytesScanned    int64   `json:"bytesScanned"`
	LinesScanned    int64   `json:"linesScanned"`
	LinesMatched    int64   `json:"linesMatched"`
	EntriesSent     int64   `json:"entriesSent"`
	Start           int64   `json:"start,string"`
	End             int64   `json:"end,string"`
	CoveredFrom     int64   `json:"coveredFrom,string"`
	CoveredTo       int64   `json:"coveredTo,string"`
	ExecTime        float64 `json:"execTime"` // seconds
	LimitReached    bool    `json:"limitReached"`
	Done            bool    `json:"done"`
}

// NewProgressJSON converts the engine's progress.
func NewProgressJSON(p *query.Progress) ProgressJSON {
	st := &p.Stats
	return ProgressJSON{
		SourcesTotal:    p.SourcesTotal,
		SourcesDone:     p.SourcesDone,
		SourcesSkipped:  p.SourcesSkipped,
		ChunksTotal:     st.ChunksRef,
		ChunksDone:      p.ChunksDone,
		ChunksPruned:    st.ChunksPruned,
		ChunksDecoded:   st.ChunksDecoded,
		BlocksPruned:    st.BlocksPruned,
		CompressedBytes: st.CompressedBytes,
		BytesScanned:    st.DecompressedBytes + st.HeadChunkBytes,
		LinesScanned:    st.DecompressedLines + st.HeadChunkLines,
		LinesMatched:    st.PostFilterLines,
		EntriesSent:     st.EntriesReturned,
		Start:           p.Start,
		End:             p.End,
		CoveredFrom:     p.CoveredFrom,
		CoveredTo:       p.CoveredTo,
		ExecTime:        st.ExecTime.Seconds(),
		LimitReached:    p.LimitReached,
		Done:            p.Done,
	}
}

func (h *HTTP) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		http.Error(w, "method not allowed: use GET or POST", http.StatusMethodNotAllowed)
		return
	}
	if err := r.ParseForm(); err != nil {
		http.Error(w, "invalid form: "+err.Error(), http.StatusBadRequest)
		return
	}
	ids, err := h.Service.Tenants.Multi(r)
	if err != nil {
		code := http.StatusBadRequest
		if errors.Is(err, tenant.ErrNoOrgID) {
			code = http.StatusUnauthorized
		}
		http.Error(w, err.Error(), code)
		return
	}
	req, err := h.request(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	categorized := lokiapi.WantsCategorized(r)
	rc := http.NewResponseController(w)
	started := false
	buf := make([]byte, 0, 64<<10)
	err = h.Service.Run(r.Context(), ids, req, func(b *query.Batch) error {
		if !started {
			started = true
			hd := w.Header()
			hd.Set("Content-Type", ContentType)
			hd.Set("Cache-Control", "no-store")
			hd.Set("X-Content-Type-Options", "nosniff")
			// Reverse proxies that buffer (nginx) would hold the batches.
			hd.Set("X-Accel-Buffering", "no")
			if categorized {
				hd.Set(lokiapi.EncodingFlagsHeader, lokiapi.CategorizeLabels)
			}
			w.WriteHeader(http.StatusOK)
		}
		buf = buf[:0]
		if len(b.Streams) > 0 {
			buf = append(buf, `{"streams":`...)
			buf = lokiapi.AppendStreams(buf, b.Streams, categorized)
			buf = append(buf, "}\n"...)
		}
		p, err := json.Marshal(struct {
			Progress ProgressJSON `json:"progress"`
		}{NewProgressJSON(&b.Progress)})
		if err != nil {
			return err
		}
		buf = append(append(buf, p...), '\n')
		if _, err := w.Write(buf); err != nil {
			return clientGone(err)
		}
		// Without a flush the batch would wait in the server's buffer for
		// the next one, which is what this endpoint is for avoiding.
		if err := rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
			return clientGone(err)
		}
		return nil
	})
	if err == nil {
		return
	}
	kind := Classify(err)
	if !started {
		code := http.StatusInternalServerError
		switch kind {
		case KindBadRequest:
			code = http.StatusBadRequest
		case KindTimeout:
			code = http.StatusGatewayTimeout
		case KindCanceled:
			code = 499 // client closed request, as nginx and Loki say
		}
		http.Error(w, message(err), code)
		return
	}
	if kind == KindCanceled {
		return // nobody is listening
	}
	line, _ := json.Marshal(map[string]string{"error": message(err)})
	_, _ = w.Write(append(line, '\n'))
	_ = rc.Flush()
}

// request reads the parameters: query, start, end, since, limit and
// direction, as query_range reads them.
func (h *HTTP) request(r *http.Request) (Request, error) {
	req := Request{Query: r.Form.Get("query")}
	var err error
	end := h.Service.now()
	if end, err = parseTime("end", r.Form.Get("end"), end); err != nil {
		return req, err
	}
	since := time.Hour
	if v := r.Form.Get("since"); v != "" {
		if since, err = parseDuration("since", v); err != nil {
			return req, err
		}
	}
	start, err := parseTime("start", r.Form.Get("start"), end.Add(-since))
	if err != nil {
		return req, err
	}
	req.Start, req.End = start, end
	if v := r.Form.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			return req, badRequest("invalid limit %q: must be a positive integer", v)
		}
		req.Limit = n
	}
	switch strings.ToLower(r.Form.Get("direction")) {
	case "", "backward":
		req.Direction = query.Backward
	case "forward":
		req.Direction = query.Forward
	default:
		return req, badRequest("invalid direction %q: use forward or backward", r.Form.Get("direction"))
	}
	return req, nil
}

// parseTime and parseDuration read times as the Loki API does
// (lokiapi.ParseTime, ParseDuration), answering 400 with its message.
func parseTime(name, v string, def time.Time) (time.Time, error) {
	t, err := lokiapi.ParseTime(name, v, def)
	if err != nil {
		return t, badRequest("%v", err)
	}
	return t, nil
}

func parseDuration(name, v string) (time.Duration, error) {
	d, err := lokiapi.ParseDuration(name, v)
	if err != nil {
		return d, badRequest("%v", err)
	}
	return d, nil
}
