// Package stream serves the event bus to clients as it happens: server-sent
// events over HTTP (/api/v1/events) and logsift.v1.EventService/Subscribe
// over gRPC, both read from a server-wide journal of recent events, with
// the same IDs and replay after a reconnect. The Grafana plugin uses them
// to show import progress live. Every client sees only its own tenant's
// events.
package stream

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/logsift/logsift/pkg/events"
	"github.com/logsift/logsift/pkg/tenant"
)

// Path is where the SSE handler is mounted.
const Path = "/api/v1/events"

// maxWorkspaceParam bounds the workspace filter; names are at most 128.
const maxWorkspaceParam = 128

// Options are shared by the SSE and gRPC endpoints.
type Options struct {
	// Journal feeds both streams (StartJournal on Bus). The SSE stream
	// needs it; without it, each gRPC stream reads a journal of its own
	// on Bus, from when it opens: live events only, no resume.
	Bus     events.Bus
	Journal *Journal
	Tenants tenant.Resolver
	// Aliases expands a workspace name to every name its data and events
	// may carry (workspace.Service.Aliases); nil uses the name alone.
	Aliases func(tenant, name string) []string
	// Heartbeat is the interval of SSE comment lines and gRPC position
	// messages that keep proxies from closing an idle stream and carry
	// the stream's position (default 15s).
	Heartbeat time.Duration
	Log       *slog.Logger
	// Done ends every open stream when it is closed. http.Server.Shutdown
	// and grpc.Server.GracefulStop wait for handlers to return, and a
	// stream otherwise returns only when its client goes: close Done
	// first (e.g. from http.Server.RegisterOnShutdown).
	Done <-chan struct{}
}

func (o *Options) heartbeat() time.Duration {
	if o.Heartbeat <= 0 {
		return 15 * time.Second
	}
	return o.Heartbeat
}

func (o *Options) log() *slog.Logger {
	if o.Log == nil {
		return slog.Default()
	}
	return o.Log
}

// filter builds the client's filter from its tenants and parameters.
func (o *Options) filter(tenants []string, types []string, workspace string) (*events.Filter, error) {
	ts, err := events.ParseTypes(strings.Join(types, ","))
	if err != nil {
		return nil, err
	}
	f := &events.Filter{Tenants: tenants, Types: ts}
	if workspace != "" {
		if len(workspace) > maxWorkspaceParam {
			return nil, fmt.Errorf("workspace parameter is longer than %d bytes", maxWorkspaceParam)
		}
		names := []string{workspace}
		if o.Aliases != nil {
			for _, t := range tenants {
				names = append(names, o.Aliases(t, workspace)...)
			}
		}
		f.Workspace = names
	}
	return f, nil
}

// SSE serves server-sent events from the journal. Parameters: types
// (comma-separated or repeated; "import.*" names a group), workspace and
// lastEventId (for clients that cannot set the Last-Event-ID header; the
// header wins). Each event is
//
//	id: <epoch>-<seq>
//	event: <type>
//	data: <event JSON, as events.Event.Marshal>
//
// with the journal's server-wide ID. A client that reconnects with the ID
// of the last event it got receives the retained events after it that
// pass its filter, then live ones. An ID the journal cannot resume from
// (another epoch: the server restarted or is another one; older than the
// journal holds; malformed) gets an "event: reset" before the live
// events, telling the client to re-read the state it follows.
//
// A comment line ": heartbeat" goes out every Heartbeat, with the ID the
// stream has read up to (so that a client whose filter passed nothing
// for a while still resumes where it was), and an "event: dropped" with
// {"dropped": n} when the stream lost events because the client read too
// slowly: the journal moved past them.
type SSE struct {
	Options
}

// NewSSE returns the SSE handler; mount it at Path. o.Journal must be
// set.
func NewSSE(o Options) *SSE { return &SSE{Options: o} }

// LastEventIDParam is the query parameter that stands in for the
// Last-Event-ID header.
const LastEventIDParam = "lastEventId"

// Reset is the data of an "event: reset".
type Reset struct {
	// Reason is "epoch" (the ID is of another journal: a restart or
	// another server), "expired" (older than the journal holds),
	// "ahead" (beyond the newest event) or "invalid" (not an event ID).
	Reason string `json:"reason"`
	// LastEventID is the ID the client sent.
	LastEventID string `json:"last_event_id"`
	// Missed, for "expired", is at most how many events (of all
	// tenants and types) the journal no longer holds after the ID;
	// otherwise unknown and 0.
	Missed  uint64 `json:"missed,omitempty"`
	Message string `json:"message"`
}

// resume finds where a stream that sent lastID starts: after lastID when
// the journal holds what follows it, else at the newest event with a
// reset to send.
func (j *Journal) resume(lastID string) (uint64, *Reset) {
	// One look at the journal: the position and its oldest event.
	j.mu.Lock()
	pos, first := j.next-1, j.next-uint64(j.count)
	j.mu.Unlock()
	if lastID == "" {
		return pos, nil
	}
	id, err := ParseID(lastID)
	if len(lastID) > 64 {
		// Echoed back in the reset; a long one need not be.
		lastID = lastID[:64] + "…"
	}
	switch {
	case err != nil:
		return pos, &Reset{Reason: "invalid", LastEventID: lastID, Message: err.Error() + "; events may be missing, re-read the state"}
	case id.Epoch != j.epoch:
		return pos, &Reset{Reason: "epoch", LastEventID: lastID, Message: "the event ID is from another server run; events may be missing, re-read the state"}
	case id.Seq > pos:
		return pos, &Reset{Reason: "ahead", LastEventID: lastID, Message: "the event ID is beyond the newest event; events may be missing, re-read the state"}
	}
	if id.Seq+1 < first {
		missed := first - (id.Seq + 1)
		return pos, &Reset{Reason: "expired", LastEventID: lastID, Missed: missed,
			Message: fmt.Sprintf("the server no longer holds up to %d events after this ID; re-read the state", missed)}
	}
	return id.Seq, nil
}

func (h *SSE) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", "GET")
		writeJSONError(w, http.StatusMethodNotAllowed, "use GET")
		return
	}
	tenants, err := h.Tenants.Multi(r)
	if err != nil {
		code := http.StatusBadRequest
		if errors.Is(err, tenant.ErrNoOrgID) {
			code = http.StatusUnauthorized
		}
		writeJSONError(w, code, err.Error())
		return
	}
	q := r.URL.Query()
	f, err := h.filter(tenants, q["types"], q.Get("workspace"))
	if err != nil {
		writeJSONError(w, http.StatusBadRequest, err.Error())
		return
	}
	j := h.Journal
	if j == nil {
		h.log().Error("event stream: no journal configured")
		writeJSONError(w, http.StatusServiceUnavailable, "event stream unavailable: no journal")
		return
	}
	select {
	case <-j.Done():
		writeJSONError(w, http.StatusServiceUnavailable, "event stream unavailable: the event bus closed")
		return
	default:
	}
	// The browser's EventSource sends the header on a reconnect, with the
	// newest ID, while a lastEventId in its URL stays what it was when
	// the page made it: the header wins.
	lastID := r.Header.Get("Last-Event-ID")
	if lastID == "" {
		lastID = q.Get(LastEventIDParam)
	}
	// The position is taken before the headers go out: every event
	// published after the client has them is after it.
	cursor, reset := j.resume(lastID)

	rc := http.NewResponseController(w)
	// A server-wide write timeout would cut every stream; this one has
	// none of its own.
	_ = rc.SetWriteDeadline(time.Time{})
	hdr := w.Header()
	hdr.Set("Content-Type", "text/event-stream; charset=utf-8")
	hdr.Set("Cache-Control", "no-cache")
	hdr.Set("X-Accel-Buffering", "no") // nginx would otherwise buffer the stream
	w.WriteHeader(http.StatusOK)
	id := ID{Epoch: j.epoch, Seq: cursor}
	// The first bytes tell the client the stream is open, and where it
	// is: a client that reconnects before any event resumes from here.
	buf := fmt.Appendf(nil, "retry: 3000\nid: %s\n: connected\n\n", id)
	if reset != nil {
		data, _ := json.Marshal(reset)
		buf = fmt.Appendf(buf, "id: %s\nevent: reset\ndata: %s\n\n", id, data)
	}
	if _, err := w.Write(buf); err != nil {
		return
	}
	if err := rc.Flush(); err != nil {
		h.log().Error("event stream: the response writer cannot flush; SSE needs it (wrap writers with Unwrap)", "err", err)
		return
	}
	// However the stream ends, the client sees the connection close.
	_ = (&reader{j: j, f: f, out: &sseSink{w: w, rc: rc, epoch: j.epoch, sentID: cursor}, done: h.Done, cursor: cursor}).run(r.Context(), h.heartbeat())
}

// sseSink writes a reader's stream as SSE frames.
type sseSink struct {
	w     http.ResponseWriter
	rc    *http.ResponseController
	epoch string
	// sentID is the last ID the client got; reported the last dropped
	// total it got.
	sentID, reported uint64
	buf              []byte
}

func (s *sseSink) event(e *entry, dropped uint64) error {
	s.appendDropped(dropped)
	s.buf = append(s.buf, "id: "...)
	s.buf = append(s.buf, s.epoch...)
	s.buf = append(s.buf, '-')
	s.buf = strconv.AppendUint(s.buf, e.seq, 10)
	s.buf = append(s.buf, "\nevent: "...)
	s.buf = append(s.buf, e.typ...)
	// JSON has no raw newlines, so the payload is one data line.
	s.buf = append(s.buf, "\ndata: "...)
	s.buf = append(s.buf, e.data...)
	s.buf = append(s.buf, "\n\n"...)
	s.sentID = e.seq
	return nil
}

// appendDropped queues the report that the stream has lost dropped
// events so far, when that grew.
func (s *sseSink) appendDropped(dropped uint64) {
	if dropped > s.reported {
		s.buf = fmt.Appendf(s.buf, "event: dropped\ndata: {\"dropped\":%d}\n\n", dropped)
		s.reported = dropped
	}
}

func (s *sseSink) flush(_, dropped uint64) error {
	s.appendDropped(dropped)
	if len(s.buf) == 0 {
		return nil
	}
	return s.write()
}

// heartbeat writes the heartbeat comment, after the ID the stream has
// read up to when it moved past events the client did not want.
func (s *sseSink) heartbeat(pos uint64) error {
	if pos != s.sentID {
		s.buf = fmt.Appendf(s.buf, "id: %s\n", ID{Epoch: s.epoch, Seq: pos})
		s.sentID = pos
	}
	s.buf = append(s.buf, ": heartbeat\n\n"...)
	return s.write()
}

func (s *sseSink) write() error {
	_, err := s.w.Write(s.buf)
	s.buf = s.buf[:0]
	if err != nil {
		return err
	}
	return s.rc.Flush()
}

func writeJSONError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}
