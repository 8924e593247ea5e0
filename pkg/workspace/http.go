package workspace

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/logsift/logsift/pkg/events"
	"github.com/logsift/logsift/pkg/tenant"
)

// HTTP serves the workspace JSON API under /api/v1/workspaces (see
// docs/workspaces.md). Every error is {"error": "..."} with a status code
// that says whose fault it is.
type HTTP struct {
	Service *Service
	Tenants tenant.Resolver
	Log     *slog.Logger
}

// maxBodyBytes bounds request bodies; the largest legitimate one is a
// progress report with its errors.
const maxBodyBytes = 4 << 20

// Register mounts the routes on mux.
func (h *HTTP) Register(mux *http.ServeMux) {
	if h.Log == nil {
		h.Log = slog.Default()
	}
	mux.HandleFunc("/api/v1/workspaces", h.route(map[string]handlerFunc{"GET": h.list, "POST": h.create}))
	mux.HandleFunc("/api/v1/workspaces/{name}", h.route(map[string]handlerFunc{"GET": h.get, "PATCH": h.update, "DELETE": h.delete}))
	mux.HandleFunc("/api/v1/workspaces/{name}/sources", h.route(map[string]handlerFunc{"GET": h.sources, "POST": h.addSource}))
	mux.HandleFunc("/api/v1/workspaces/{name}/runs", h.route(map[string]handlerFunc{"GET": h.listRuns, "POST": h.startRun}))
	mux.HandleFunc("/api/v1/workspaces/{name}/runs/{id}", h.route(map[string]handlerFunc{"GET": h.getRun}))
	mux.HandleFunc("/api/v1/workspaces/{name}/runs/{id}/progress", h.route(map[string]handlerFunc{"POST": h.progress}))
	mux.HandleFunc("/api/v1/workspaces/{name}/runs/{id}/finish", h.route(map[string]handlerFunc{"POST": h.finish}))
	mux.HandleFunc("/api/v1/workspaces/{name}/runs/{id}/cancel", h.route(map[string]handlerFunc{"POST": h.cancel}))
	// Anything else under the prefix gets a JSON 404 rather than the mux's
	// plain text.
	mux.HandleFunc("/api/v1/workspaces/", func(w http.ResponseWriter, r *http.Request) {
		writeJSONError(w, http.StatusNotFound, fmt.Sprintf("no such workspace API path %q", r.URL.Path))
	})
}

type handlerFunc func(w http.ResponseWriter, r *http.Request, tenant string) (int, any, error)

// route resolves the tenant, dispatches on the method and writes the
// answer or the error.
func (h *HTTP) route(methods map[string]handlerFunc) http.HandlerFunc {
	allowed := make([]string, 0, len(methods))
	for m := range methods {
		allowed = append(allowed, m)
	}
	slices.Sort(allowed)
	allow := strings.Join(allowed, ", ")
	return func(w http.ResponseWriter, r *http.Request) {
		fn, ok := methods[r.Method]
		if !ok {
			w.Header().Set("Allow", allow)
			writeJSONError(w, http.StatusMethodNotAllowed, fmt.Sprintf("method %s not allowed; use %s", r.Method, allow))
			return
		}
		id, err := h.Tenants.Single(r)
		if err != nil {
			code := http.StatusBadRequest
			if errors.Is(err, tenant.ErrNoOrgID) {
				code = http.StatusUnauthorized
			}
			writeJSONError(w, code, err.Error())
			return
		}
		ctx := tenant.WithID(r.Context(), id)
		if events.ActorFromContext(ctx) == "" { // the auth guard names the token
			ctx = events.WithActor(ctx, clientAddr(r))
		}
		r = r.WithContext(ctx)
		code, body, err := fn(w, r, id)
		if err != nil {
			code = statusOf(err)
			if code == http.StatusInternalServerError {
				h.Log.Error("workspace API", "method", r.Method, "path", r.URL.Path, "tenant", id, "err", err)
			}
			writeJSONError(w, code, err.Error())
			return
		}
		writeJSON(w, code, body)
	}
}

func clientAddr(r *http.Request) string {
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return host
	}
	return r.RemoteAddr
}

func statusOf(err error) int {
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, ErrInvalid):
		return http.StatusBadRequest
	case errors.Is(err, ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, ErrExists), errors.Is(err, ErrConflict):
		return http.StatusConflict
	case errors.Is(err, ErrUnavailable):
		return http.StatusNotImplemented
	}
	return http.StatusInternalServerError
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	_ = enc.Encode(v)
}

func writeJSONError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}

// decode reads a JSON body strictly: unknown fields are refused so that a
// misspelt field is an error rather than silently ignored.
func decode(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
		if errors.Is(err, io.EOF) {
			return errorf(ErrInvalid, "request body is empty; send a JSON object")
		}
		return errorf(ErrInvalid, "request body: %v", err)
	}
	if dec.More() {
		return errorf(ErrInvalid, "request body: more than one JSON value")
	}
	return nil
}

func (h *HTTP) list(_ http.ResponseWriter, r *http.Request, t string) (int, any, error) {
	ws, err := h.Service.List(r.Context(), t)
	if ws == nil {
		ws = []Workspace{}
	}
	return http.StatusOK, map[string]any{"workspaces": ws}, err
}

func (h *HTTP) create(w http.ResponseWriter, r *http.Request, t string) (int, any, error) {
	var req CreateRequest
	if err := decode(w, r, &req); err != nil {
		return 0, nil, err
	}
	ws, err := h.Service.Create(r.Context(), t, req)
	if err != nil {
		return 0, nil, err
	}
	w.Header().Set("Location", "/api/v1/workspaces/"+ws.Name)
	return http.StatusCreated, ws, nil
}

func (h *HTTP) get(_ http.ResponseWriter, r *http.Request, t string) (int, any, error) {
	ws, err := h.Service.Get(r.Context(), t, r.PathValue("name"))
	return http.StatusOK, ws, err
}

func (h *HTTP) update(w http.ResponseWriter, r *http.Request, t string) (int, any, error) {
	var u Update
	if err := decode(w, r, &u); err != nil {
		return 0, nil, err
	}
	ws, err := h.Service.Update(r.Context(), t, r.PathValue("name"), u)
	return http.StatusOK, ws, err
}

func (h *HTTP) delete(_ http.ResponseWriter, r *http.Request, t string) (int, any, error) {
	name := r.PathValue("name")
	q := r.URL.Query()
	if !q.Has("confirm") {
		return 0, nil, errorf(ErrInvalid, "deleting workspace %q deletes its data: add ?confirm=%s to confirm", name, name)
	}
	n, err := h.Service.Delete(r.Context(), t, name, q.Get("confirm"))
	return http.StatusOK, map[string]any{"deleted": name, "deleted_streams": n}, err
}

func (h *HTTP) sources(_ http.ResponseWriter, r *http.Request, t string) (int, any, error) {
	ws, err := h.Service.Get(r.Context(), t, r.PathValue("name"))
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, map[string]any{"sources": ws.Sources}, nil
}

func (h *HTTP) addSource(w http.ResponseWriter, r *http.Request, t string) (int, any, error) {
	var src struct {
		Kind SourceKind `json:"kind"`
		Path string     `json:"path"`
		Host string     `json:"host"`
	}
	if err := decode(w, r, &src); err != nil {
		return 0, nil, err
	}
	ws, err := h.Service.AddSource(r.Context(), t, r.PathValue("name"), Source{Kind: src.Kind, Path: src.Path, Host: src.Host})
	return http.StatusOK, ws, err
}

func (h *HTTP) listRuns(_ http.ResponseWriter, r *http.Request, t string) (int, any, error) {
	limit := 0
	if s := r.URL.Query().Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return 0, nil, errorf(ErrInvalid, "limit %q: want a non-negative integer", truncate(s, 32))
		}
		limit = n
	}
	runs, err := h.Service.ListRuns(r.Context(), t, r.PathValue("name"), limit)
	return http.StatusOK, map[string]any{"runs": runs}, err
}

func (h *HTTP) startRun(w http.ResponseWriter, r *http.Request, t string) (int, any, error) {
	var body struct {
		Host   string `json:"host"`
		Source string `json:"source"`
		Files  int64  `json:"files"`
		Bytes  int64  `json:"bytes"`
	}
	if err := decode(w, r, &body); err != nil {
		return 0, nil, err
	}
	run, err := h.Service.StartRun(r.Context(), t, StartRunRequest{Workspace: r.PathValue("name"),
		Host: body.Host, Source: body.Source, Files: body.Files, Bytes: body.Bytes})
	if err != nil {
		return 0, nil, err
	}
	w.Header().Set("Location", "/api/v1/workspaces/"+run.Workspace+"/runs/"+run.ID)
	return http.StatusCreated, run, nil
}

// runOf loads the run named in the path and checks that it belongs to the
// workspace named in the path (under its name or a former one).
func (h *HTTP) runOf(r *http.Request, t string) (*Run, error) {
	name, id := r.PathValue("name"), r.PathValue("id")
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	run, err := h.Service.GetRun(r.Context(), t, id)
	if err != nil {
		return nil, err
	}
	if run.Workspace != name && !slices.Contains(h.Service.Aliases(t, run.Workspace), name) {
		return nil, errorf(ErrNotFound, "import run %q not found in workspace %q", id, name)
	}
	return run, nil
}

func (h *HTTP) getRun(_ http.ResponseWriter, r *http.Request, t string) (int, any, error) {
	run, err := h.runOf(r, t)
	return http.StatusOK, run, err
}

type reportBody struct {
	Status   Status   `json:"status,omitempty"`
	Counters Counters `json:"counters"`
	Errors   []string `json:"errors,omitempty"`
}

func (h *HTTP) progress(w http.ResponseWriter, r *http.Request, t string) (int, any, error) {
	var body reportBody
	if err := decode(w, r, &body); err != nil {
		return 0, nil, err
	}
	if body.Status != "" {
		return 0, nil, errorf(ErrInvalid, "a progress report has no status; POST .../finish to end a run")
	}
	run, err := h.runOf(r, t)
	if err != nil {
		return 0, nil, err
	}
	run, err = h.Service.ReportProgress(r.Context(), t, run.ID, body.Counters, body.Errors)
	return http.StatusOK, run, err
}

func (h *HTTP) finish(w http.ResponseWriter, r *http.Request, t string) (int, any, error) {
	var body reportBody
	if err := decode(w, r, &body); err != nil {
		return 0, nil, err
	}
	run, err := h.runOf(r, t)
	if err != nil {
		return 0, nil, err
	}
	run, err = h.Service.FinishRun(r.Context(), t, run.ID, body.Status, body.Counters, body.Errors)
	return http.StatusOK, run, err
}

func (h *HTTP) cancel(_ http.ResponseWriter, r *http.Request, t string) (int, any, error) {
	run, err := h.runOf(r, t)
	if err != nil {
		return 0, nil, err
	}
	run, err = h.Service.CancelRun(r.Context(), t, run.ID)
	return http.StatusOK, run, err
}
