package plugin

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/data"

	"github.com/logsift/logsift/datasource/client"
	"github.com/logsift/logsift/datasource/querymodel"
)

// pathImports is the Grafana Live channel of import progress:
// ds/<datasource uid>/imports/<key>, with the query ({refId, workspace,
// from}) as the subscription data.
const pathImports = "imports"

// Import progress tuning.
var (
	// importsFlushEvery batches the updates of many runs into one frame.
	importsFlushEvery = 100 * time.Millisecond
	// importsIdleTimeout ends a connection that sent nothing, not even
	// the server's heartbeat (every 15 s), for this long; a reconnect
	// follows.
	importsIdleTimeout = 45 * time.Second
	// Reconnect backoff: doubled after each failed attempt, with jitter;
	// reset once a connection has delivered its backfill.
	importsBackoffMin = 250 * time.Millisecond
	importsBackoffMax = 15 * time.Second
	// importsLookback is how far back the backfill of a channel reaches
	// when the subscription names no start: runs updated since then, and
	// every run still running.
	importsLookback = time.Hour
)

const (
	// importsRunsPerWorkspace bounds the runs read of one workspace,
	// newest first.
	importsRunsPerWorkspace = 100
	// importsParallel bounds the workspaces whose runs are read at once.
	importsParallel = 4
	// maxImportsWorkspace is the server's bound on a workspace name.
	maxImportsWorkspace = 128
)

// importEventTypes are what an imports channel subscribes to.
var importEventTypes = []string{"import.*"}

// isImportsChannel reports whether a channel path is an imports channel.
func isImportsChannel(path string) bool {
	kind, _, _ := strings.Cut(path, "/")
	return kind == pathImports
}

// importsQuery is what an imports channel or query asks for: the runs
// of one workspace (or all) that are running or were updated in
// [Since, Until].
type importsQuery struct {
	RefID     string
	Workspace string
	Since     time.Time
	// Until is zero for a channel: it follows the present.
	Until time.Time
}

func validImportsWorkspace(ws string) error {
	if len(ws) > maxImportsWorkspace {
		return fmt.Errorf("workspace %q is longer than %d bytes", ws[:32]+"...", maxImportsWorkspace)
	}
	for _, r := range ws {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("workspace %q has a control character", ws)
		}
	}
	return nil
}

// importsChannelQuery reads the subscription data of an imports channel.
func (in *Instance) importsChannelQuery(raw json.RawMessage) (importsQuery, error) {
	if in.configErr != nil {
		return importsQuery{}, fmt.Errorf("datasource settings: %w", in.configErr)
	}
	var sd StreamData
	if len(raw) > 0 && string(raw) != "null" {
		if err := json.Unmarshal(raw, &sd); err != nil {
			return importsQuery{}, fmt.Errorf("the channel data is not an import progress query: %w", err)
		}
	}
	ws := strings.TrimSpace(sd.Workspace)
	if err := validImportsWorkspace(ws); err != nil {
		return importsQuery{}, err
	}
	q := importsQuery{RefID: sd.RefID, Workspace: ws, Since: time.Now().Add(-importsLookback)}
	if q.RefID == "" {
		q.RefID = "A"
	}
	if sd.From > 0 {
		q.Since = time.UnixMilli(sd.From)
	}
	return q, nil
}

// importRow is one state of one run: a row of an imports frame.
type importRow struct {
	Time       time.Time
	RunID      string
	Workspace  string
	Host       string
	Status     string
	FilesDone  int64
	Files      int64
	BytesDone  int64
	Bytes      int64
	Lines      int64
	Chunks     int64
	DurationMS int64
	Error      string
	// stage orders the states of a run: running, cancel requested,
	// finished. A run never goes back a stage.
	stage int
}

const (
	stageRunning = iota
	stageCancelRequested
	stageFinished
)

// cancelRequests are the errors of the import.cancelled event a
// cancellation from the server publishes before the agent confirms it
// (docs/events.md).
var cancelRequests = []string{"cancel requested", "workspace deleted"}

// rowOfEvent is the state an import event reports.
func rowOfEvent(e client.ImportEvent) importRow {
	u := e.Import
	r := importRow{Time: e.Time, RunID: u.RunID, Workspace: u.Workspace, Host: u.Host, Status: u.Status,
		FilesDone: u.FilesDone, Files: u.Files, BytesDone: u.BytesDone, Bytes: u.Bytes, Lines: u.Lines, Chunks: u.Chunks,
		DurationMS: u.DurationMS, Error: u.Error}
	switch e.Type {
	case "import.completed", "import.failed":
		r.stage = stageFinished
	case "import.cancelled":
		r.stage = stageFinished
		if slices.Contains(cancelRequests, u.Error) {
			r.stage = stageCancelRequested
		}
	}
	if r.Status == "" {
		r.Status = strings.TrimPrefix(e.Type, "import.")
		if r.Status == "started" || r.Status == "progress" {
			r.Status = "running"
		}
	}
	return r
}

// rowOfRun is a run's state as the workspace API tells it.
func rowOfRun(run client.ImportRun) importRow {
	c := run.Counters
	r := importRow{Time: run.Updated, RunID: run.ID, Workspace: run.Workspace, Host: run.Host, Status: run.Status,
		FilesDone: c.FilesDone, Files: c.Files, BytesDone: c.BytesDone, Bytes: c.Bytes, Lines: c.Lines, Chunks: c.Chunks,
		DurationMS: run.DurationMS}
	switch {
	case !run.Finished.IsZero():
		r.stage = stageFinished
		if run.Status == "failed" && len(run.Errors) > 0 {
			r.Error = run.Errors[len(run.Errors)-1]
		}
	case run.Status == "cancelled":
		r.stage = stageCancelRequested
		r.Error = cancelRequests[0]
	}
	return r
}

// follows reports whether r is a later state of the run than prev: not
// an earlier stage, no counter lower (agents report absolute counters,
// which only grow), and something changed. A stale event that arrives
// after a backfill already read a later state is not.
func (r *importRow) follows(prev *importRow) bool {
	if r.stage < prev.stage || r.FilesDone < prev.FilesDone || r.BytesDone < prev.BytesDone ||
		r.Lines < prev.Lines || r.Chunks < prev.Chunks {
		return false
	}
	return r.stage > prev.stage || r.FilesDone > prev.FilesDone || r.BytesDone > prev.BytesDone ||
		r.Lines > prev.Lines || r.Chunks > prev.Chunks || r.Files != prev.Files || r.Bytes != prev.Bytes ||
		r.Status != prev.Status
}

// percent is how far the run is, 0 to 100: by bytes when the total is
// known, else by files. A completed run is at 100.
func (r *importRow) percent() float64 {
	switch {
	case r.Status == "completed":
		return 100
	case r.Bytes > 0:
		return min(100, 100*float64(r.BytesDone)/float64(r.Bytes))
	case r.Files > 0:
		return min(100, 100*float64(r.FilesDone)/float64(r.Files))
	}
	return 0
}

// throughput is the run's average rate since it started, bytes per
// second.
func (r *importRow) throughput() float64 {
	if r.DurationMS <= 0 {
		return 0
	}
	return float64(r.BytesDone) / (float64(r.DurationMS) / 1000)
}

// importsFrame is the frame of rows, oldest first: one row per state of
// a run. Its schema is the same for every frame of a channel.
func importsFrame(refID string, rows []importRow) *data.Frame {
	n := len(rows)
	var (
		times                                                  = make([]time.Time, n)
		ids, workspaces, hosts, statuses, errs                 = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		filesDone, files, bytesDone, bytesTotal, lines, chunks = make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
		durations                                              = make([]int64, n)
		percents, rates                                        = make([]float64, n), make([]float64, n)
	)
	for i := range rows {
		r := &rows[i]
		times[i], ids[i], workspaces[i], hosts[i], statuses[i], errs[i] = r.Time, r.RunID, r.Workspace, r.Host, r.Status, r.Error
		filesDone[i], files[i], bytesDone[i], bytesTotal[i], lines[i], chunks[i] = r.FilesDone, r.Files, r.BytesDone, r.Bytes, r.Lines, r.Chunks
		durations[i], percents[i], rates[i] = r.DurationMS, r.percent(), r.throughput()
	}
	unit := func(f *data.Field, u string) *data.Field {
		f.Config = &data.FieldConfig{Unit: u}
		return f
	}
	pct := unit(data.NewField("percent", nil, percents), "percent")
	lo, hi := data.ConfFloat64(0), data.ConfFloat64(100)
	pct.Config.Min, pct.Config.Max = &lo, &hi
	f := data.NewFrame("imports",
		data.NewField("time", nil, times),
		data.NewField("run_id", nil, ids),
		data.NewField("workspace", nil, workspaces),
		data.NewField("host", nil, hosts),
		data.NewField("status", nil, statuses),
		unit(data.NewField("files_done", nil, filesDone), "none"),
		unit(data.NewField("files_total", nil, files), "none"),
		unit(data.NewField("bytes_done", nil, bytesDone), "bytes"),
		unit(data.NewField("bytes_total", nil, bytesTotal), "bytes"),
		unit(data.NewField("lines", nil, lines), "short"),
		unit(data.NewField("chunks", nil, chunks), "short"),
		pct,
		unit(data.NewField("throughput", nil, rates), "Bps"),
		unit(data.NewField("duration", nil, durations), "ms"),
		data.NewField("error", nil, errs),
	)
	f.RefID = refID
	f.Meta = &data.FrameMeta{PreferredVisualization: data.VisTypeTable}
	return f
}

// importRuns reads the state of the runs q asks for: those of its
// workspace (or of every workspace) that are running, or were updated in
// [q.Since, q.Until], oldest update first. The workspace API is the
// source; it has no list of runs across workspaces, so without a
// workspace every workspace with runs is read (a workspace with one run
// from the listing alone).
func (in *Instance) importRuns(ctx context.Context, q importsQuery) ([]importRow, error) {
	var runs []client.ImportRun
	if q.Workspace != "" {
		rs, err := in.client.ImportRuns(ctx, q.Workspace, importsRunsPerWorkspace)
		switch {
		case err == nil:
			runs = rs
		case client.IsStatus(err, http.StatusNotFound) && isJSONError(err):
			// No such workspace yet: its first import will create it.
		case client.IsStatus(err, http.StatusNotFound):
			return nil, errNoWorkspaceAPI
		default:
			return nil, err
		}
	} else {
		wss, err := in.client.WorkspaceRunSummaries(ctx)
		if client.IsStatus(err, http.StatusNotFound) {
			return nil, errNoWorkspaceAPI
		}
		if err != nil {
			return nil, err
		}
		if runs, err = in.runsOf(ctx, wss); err != nil {
			return nil, err
		}
	}
	rows := make([]importRow, 0, len(runs))
	for _, run := range runs {
		active := run.Finished.IsZero() && (run.Status == "running" || run.Status == "cancelled")
		if q.Until.IsZero() || !run.Started.After(q.Until) {
			if active || (!run.Updated.Before(q.Since) && (q.Until.IsZero() || !run.Updated.After(q.Until))) {
				rows = append(rows, rowOfRun(run))
			}
		}
	}
	slices.SortStableFunc(rows, func(a, b importRow) int {
		return cmp.Or(a.Time.Compare(b.Time), strings.Compare(a.RunID, b.RunID))
	})
	return rows, nil
}

// errNoWorkspaceAPI is a server without logsift's workspace registry.
var errNoWorkspaceAPI = errors.New("the server has no workspace registry (/api/v1/workspaces answers 404): import progress needs a logsift server")

// isJSONError tells logsift's JSON errors ({"error": ...}) from a plain
// 404 page.
func isJSONError(err error) bool {
	var se *client.StatusError
	return errors.As(err, &se) && strings.HasPrefix(strings.TrimSpace(se.Body), "{")
}

// runsOf reads the runs of the listed workspaces, a few at a time.
func (in *Instance) runsOf(ctx context.Context, wss []client.WorkspaceRuns) ([]client.ImportRun, error) {
	var (
		mu   sync.Mutex
		out  []client.ImportRun
		errs []error
		wg   sync.WaitGroup
	)
	sem := make(chan struct{}, importsParallel)
	for _, w := range wss {
		switch {
		case w.RunCount == 0:
			continue
		case w.RunCount == 1 && w.LastRun != nil:
			mu.Lock()
			out = append(out, *w.LastRun)
			mu.Unlock()
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func(name string) {
			defer func() { <-sem; wg.Done() }()
			rs, err := in.client.ImportRuns(ctx, name, importsRunsPerWorkspace)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				out = append(out, rs...)
			case client.IsStatus(err, http.StatusNotFound):
				// Deleted since the listing.
			default:
				errs = append(errs, fmt.Errorf("runs of workspace %q: %w", name, err))
			}
		}(w.Name)
	}
	wg.Wait()
	if len(errs) > 0 {
		return nil, errs[0]
	}
	return out, nil
}

// importsData answers an imports query of QueryData: the runs' current
// state, one row per run, so that a panel refreshed without Grafana Live
// shows the same table.
func (in *Instance) importsData(ctx context.Context, r querymodel.Request) (data.Frames, error) {
	if err := validImportsWorkspace(r.Workspace); err != nil {
		return nil, err
	}
	rows, err := in.importRuns(ctx, importsQuery{RefID: r.RefID, Workspace: r.Workspace, Since: r.Start, Until: r.End})
	if err != nil {
		return nil, err
	}
	f := importsFrame(r.RefID, rows)
	what := "all workspaces"
	if r.Workspace != "" {
		what = "workspace " + r.Workspace
	}
	f.Meta.ExecutedQueryString = "Import runs of " + what + ": running, or updated in the time range"
	return data.Frames{f}, nil
}

// subscribeImports admits a subscription to an imports channel and gives
// it the runs' current state as its initial data: Grafana Live shares a
// channel between its subscribers, and one that joins a running stream
// would otherwise see only the updates from then on.
func (in *Instance) subscribeImports(ctx context.Context, req *backend.SubscribeStreamRequest) (*backend.SubscribeStreamResponse, error) {
	q, err := in.importsChannelQuery(req.Data)
	if err != nil {
		in.log.Warn("refused import progress subscription", "path", req.Path, "error", err)
		return &backend.SubscribeStreamResponse{Status: backend.SubscribeStreamStatusNotFound}, nil
	}
	rows, err := in.importRuns(ctx, q)
	if err != nil {
		in.log.Warn("import progress: the backfill for a new subscriber failed", "path", req.Path, "error", in.describeImportsError(err))
		var se *client.StatusError
		switch {
		case errors.As(err, &se) && (se.Code == http.StatusUnauthorized || se.Code == http.StatusForbidden):
			return &backend.SubscribeStreamResponse{Status: backend.SubscribeStreamStatusPermissionDenied}, nil
		case errors.Is(err, errNoWorkspaceAPI):
			return &backend.SubscribeStreamResponse{Status: backend.SubscribeStreamStatusNotFound}, nil
		}
		// The server may be away for a moment: the stream retries.
		return &backend.SubscribeStreamResponse{Status: backend.SubscribeStreamStatusOK}, nil
	}
	initial, err := backend.NewInitialFrame(importsFrame(q.RefID, latestPerRun(rows)), data.IncludeAll)
	if err != nil {
		return nil, fmt.Errorf("import progress initial data: %w", err)
	}
	return &backend.SubscribeStreamResponse{Status: backend.SubscribeStreamStatusOK, InitialData: initial}, nil
}

// latestPerRun keeps the newest row of each run, in the order of the
// rows.
func latestPerRun(rows []importRow) []importRow {
	last := map[string]int{}
	for i, r := range rows {
		last[r.RunID] = i
	}
	out := make([]importRow, 0, len(last))
	for i, r := range rows {
		if last[r.RunID] == i {
			out = append(out, r)
		}
	}
	return out
}

// runImports runs an imports channel while Grafana has subscribers.
func (in *Instance) runImports(ctx context.Context, req *backend.RunStreamRequest, sender frameSender) error {
	q, err := in.importsChannelQuery(req.Data)
	if err != nil {
		return err
	}
	in.wg.Add(1)
	defer in.wg.Done()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(in.ctx, cancel)
	defer stop()
	s := &importsStream{in: in, q: q, sender: sender, sent: map[string]importRow{}}
	return s.run(ctx)
}

// importsStream follows the server's import events: a backfill of the
// runs' state when it connects, then one row per update, batched into
// frames; reconnects that lose no run's latest state and repeat no
// state.
//
// The first connection reads the runs' state after its subscription is
// in place. A reconnection resumes from the last event id it saw: the
// server replays what the plugin missed, so every update arrives. When
// the server cannot (it restarted, or the events fell out of its journal)
// it says so with a reset event, and the plugin reads the runs' state
// again: then updates of a run that came and went while disconnected are
// not replayed one by one; the row after the reconnect holds the
// counters they led to. An event the server reports dropped is caught up
// the same way.
type importsStream struct {
	in     *Instance
	q      importsQuery
	sender frameSender

	// lastID is the id of the last event (or position) the server sent,
	// "" before the first connection.
	lastID string
	// sent is the newest state sent of each run.
	sent       map[string]importRow
	pending    []importRow
	schemaSent bool
}

func (s *importsStream) run(ctx context.Context) error {
	backoff := importsBackoffMin
	for {
		connected, err := s.session(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if permanentImportsError(err) {
			return errors.New(s.in.describeImportsError(err))
		}
		if connected {
			backoff = importsBackoffMin
		}
		s.in.log.Warn("import progress stream disconnected; reconnecting", "workspace", s.q.Workspace, "error", err, "in", backoff)
		if !waitBackoff(ctx, backoff) {
			return nil
		}
		backoff = min(2*backoff, importsBackoffMax)
	}
}

// permanentImportsError is an answer that a retry would only repeat: a
// refused token or tenant, a bad request, a server without the API.
func permanentImportsError(err error) bool {
	var se *client.StatusError
	if errors.As(err, &se) {
		return se.Code/100 == 4 && se.Code != http.StatusRequestTimeout && se.Code != http.StatusTooManyRequests
	}
	return errors.Is(err, client.ErrNoEventStream) || errors.Is(err, errNoWorkspaceAPI)
}

// describeImportsError says what a failed call means and what to change.
func (in *Instance) describeImportsError(err error) string {
	var se *client.StatusError
	if errors.As(err, &se) {
		return "import progress: " + in.diagnose(in.client.URL(), "the import progress stream", err)
	}
	return "import progress: " + err.Error()
}

// session runs one connection to the event stream until it fails or ctx
// ends. It reports whether the connection delivered its backfill.
func (s *importsStream) session(ctx context.Context) (bool, error) {
	// Subscribe first, read the state second: an update between the two
	// is in both, and follows keeps it once. A resumed stream replays
	// what was missed instead, or opens with a reset.
	resumed := s.lastID != ""
	es, err := s.in.client.Events(ctx, client.EventsRequest{Types: importEventTypes, Workspace: s.q.Workspace, LastEventID: s.lastID})
	if err != nil {
		return false, err
	}
	defer es.Close()
	defer func() {
		if id := es.LastEventID(); id != "" {
			s.lastID = id
		}
	}()
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	msgs := make(chan client.SSEMessage, 64)
	errc := make(chan error, 1)
	go func() {
		for {
			m, err := es.Next()
			if err != nil {
				errc <- err
				return
			}
			select {
			case msgs <- m:
			case <-sctx.Done():
				return
			}
		}
	}()
	if !resumed {
		if err := s.backfill(ctx); err != nil {
			return false, err
		}
	}
	// The first frame goes out even without a run, so that a subscriber
	// has the schema (and a table with no row) at once.
	if err := s.flush(!s.schemaSent); err != nil {
		return true, err
	}

	flush := time.NewTicker(importsFlushEvery)
	defer flush.Stop()
	idle := time.NewTimer(importsIdleTimeout)
	defer idle.Stop()
	for {
		select {
		case <-ctx.Done():
			_ = s.flush(false)
			return true, nil
		case m := <-msgs:
			idle.Reset(importsIdleTimeout)
			switch {
			case m.IsComment():
			case m.Event == client.EventReset:
				s.in.log.Warn("import progress: the server could not replay what was missed; reading the runs' state", "data", string(m.Data))
				if err := s.backfill(ctx); err != nil {
					return true, err
				}
			case m.Event == client.EventDropped:
				// The server lost events because the plugin read too
				// slowly: the runs' state makes up for them.
				s.in.log.Warn("import progress: the server dropped events; reading the runs' state", "data", string(m.Data))
				if err := s.backfill(ctx); err != nil {
					return true, err
				}
			case strings.HasPrefix(m.Event, "import."):
				e, err := client.DecodeImportEvent(m.Data)
				if err != nil {
					s.in.log.Warn("import progress: skipped an event", "error", err)
					continue
				}
				s.accept(rowOfEvent(e))
			}
		case <-flush.C:
			if err := s.flush(false); err != nil {
				return true, err
			}
		case <-idle.C:
			_ = s.flush(false)
			return true, fmt.Errorf("nothing from the server for %v, not even a heartbeat", importsIdleTimeout)
		case err := <-errc:
			if ferr := s.flush(false); ferr != nil {
				return true, ferr
			}
			return true, fmt.Errorf("the event stream ended: %w", err)
		}
	}
}

// backfill queues the runs' current state.
func (s *importsStream) backfill(ctx context.Context) error {
	rows, err := s.in.importRuns(ctx, s.q)
	if err != nil {
		return err
	}
	for _, r := range rows {
		s.accept(r)
	}
	return nil
}

// accept queues a state of a run unless the run is already past it.
func (s *importsStream) accept(r importRow) {
	if prev, ok := s.sent[r.RunID]; ok && !r.follows(&prev) {
		return
	}
	s.sent[r.RunID] = r
	s.pending = append(s.pending, r)
}

// flush sends the queued rows as one frame (with none queued, only when
// force is set); the first frame carries the schema, the rest only data.
func (s *importsStream) flush(force bool) error {
	if len(s.pending) == 0 && !force {
		return nil
	}
	include := data.IncludeDataOnly
	if !s.schemaSent {
		include = data.IncludeAll
	}
	if err := s.sender.SendFrame(importsFrame(s.q.RefID, s.pending), include); err != nil {
		return err
	}
	s.schemaSent = true
	s.pending = s.pending[:0]
	return nil
}
