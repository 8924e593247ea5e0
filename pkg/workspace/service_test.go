package workspace

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/logsift/logsift/pkg/events"
	"github.com/logsift/logsift/pkg/labels"
)

// fakeData records DeleteStreams calls.
type fakeData struct {
	mu    sync.Mutex
	calls []deleteCall
	n     int
	err   error
}

type deleteCall struct {
	tenant   string
	matchers []*labels.Matcher
}

func (f *fakeData) DeleteStreams(_ context.Context, tenant string, ms []*labels.Matcher) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, deleteCall{tenant, ms})
	return f.n, f.err
}

func (f *fakeData) Calls() []deleteCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// clock is a settable test clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

type fixture struct {
	dir  string
	svc  *Service
	data *fakeData
	bus  *events.Memory
	clk  *clock
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{dir: t.TempDir(), data: &fakeData{n: 3}, bus: events.NewMemory("test"),
		clk: &clock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}}
	f.open(t)
	t.Cleanup(func() { f.svc.Close() })
	return f
}

func (f *fixture) open(t *testing.T) {
	t.Helper()
	svc, err := Open(f.dir, Options{Bus: f.bus, Data: f.data, Now: f.clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	f.svc = svc
}

func (f *fixture) reopen(t *testing.T) {
	t.Helper()
	if err := f.svc.Close(); err != nil {
		t.Fatal(err)
	}
	f.open(t)
}

func mustCreate(t *testing.T, s *Service, tenant, name string) *Workspace {
	t.Helper()
	w, err := s.Create(context.Background(), tenant, CreateRequest{Name: name})
	if err != nil {
		t.Fatalf("create %s/%s: %v", tenant, name, err)
	}
	return w
}

func names(ws []Workspace) []string {
	var out []string
	for _, w := range ws {
		out = append(out, w.Name)
	}
	return out
}

func TestWorkspacesSurviveRestart(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	_, err := f.svc.Create(ctx, "t1", CreateRequest{Name: "case-4711", Description: "customer bundle", Labels: map[string]string{"team": "support"}})
	if err != nil {
		t.Fatal(err)
	}
	mustCreate(t, f.svc, "t1", "old-name")
	if _, err := f.svc.AddSource(ctx, "t1", "case-4711", Source{Kind: SourceTail, Path: "/var/log/**/*.log", Host: "web-1"}); err != nil {
		t.Fatal(err)
	}
	run, err := f.svc.StartRun(ctx, "t1", StartRunRequest{Workspace: "case-4711", Host: "laptop", Source: "bundle.zip", Files: 4, Bytes: 1000})
	if err != nil {
		t.Fatal(err)
	}
	f.clk.Advance(1500 * time.Millisecond)
	if _, err := f.svc.ReportProgress(ctx, "t1", run.ID, Counters{FilesDone: 2, BytesDone: 500, Lines: 40, Chunks: 1}, []string{"a.log: line 3: bad gzip"}); err != nil {
		t.Fatal(err)
	}
	f.clk.Advance(time.Second)
	if _, err := f.svc.FinishRun(ctx, "t1", run.ID, StatusCompleted, Counters{FilesDone: 4, BytesDone: 1000, Lines: 90, Chunks: 2}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Rename(ctx, "t1", "old-name", "new-name"); err != nil {
		t.Fatal(err)
	}

	f.reopen(t)

	ws, err := f.svc.List(ctx, "t1")
	if err != nil {
		t.Fatal(err)
	}
	if got := names(ws); !slices.Equal(got, []string{"case-4711", "new-name"}) {
		t.Fatalf("after restart: workspaces %v", got)
	}
	if ws[0].RunCount != 1 || ws[0].LastRun == nil || ws[0].LastRun.ID != run.ID || len(ws[0].Runs) != 0 {
		t.Fatalf("listing summary: count %d last %+v runs %d", ws[0].RunCount, ws[0].LastRun, len(ws[0].Runs))
	}
	w, err := f.svc.Get(ctx, "t1", "case-4711")
	if err != nil {
		t.Fatal(err)
	}
	if w.Description != "customer bundle" || w.Labels["team"] != "support" || w.Tenant != "t1" || !w.Created.Equal(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)) {
		t.Fatalf("workspace after restart: %+v", w)
	}
	if len(w.Sources) != 2 || w.Sources[0].Kind != SourceTail || w.Sources[0].Host != "web-1" ||
		w.Sources[1].Kind != SourceImport || w.Sources[1].Path != "bundle.zip" || w.Sources[1].Host != "laptop" {
		t.Fatalf("sources after restart: %+v", w.Sources)
	}
	if len(w.Runs) != 1 {
		t.Fatalf("runs after restart: %+v", w.Runs)
	}
	r := w.Runs[0]
	want := Counters{Files: 4, FilesDone: 4, Bytes: 1000, BytesDone: 1000, Lines: 90, Chunks: 2}
	if r.Status != StatusCompleted || r.Counters != want || r.ErrorCount != 1 || r.Errors[0] != "a.log: line 3: bad gzip" ||
		r.DurationMS != 2500 || r.Host != "laptop" || r.Finished.IsZero() {
		t.Fatalf("run after restart: %+v", r)
	}
	renamed, err := f.svc.Get(ctx, "t1", "new-name")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(renamed.Aliases, []string{"old-name"}) {
		t.Fatalf("aliases after restart: %v", renamed.Aliases)
	}
	if got := f.svc.Aliases("t1", "new-name"); !slices.Equal(got, []string{"new-name", "old-name"}) {
		t.Fatalf("Aliases: %v", got)
	}
	if _, err := f.svc.Get(ctx, "t1", "old-name"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("old name still found: %v", err)
	}
	// The run is reachable by ID after the restart.
	if got, err := f.svc.GetRun(ctx, "t1", run.ID); err != nil || got.Workspace != "case-4711" {
		t.Fatalf("GetRun after restart: %+v %v", got, err)
	}
}

func TestTenantsAreIsolated(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	mustCreate(t, f.svc, "t1", "shared-name")
	run, err := f.svc.StartRun(ctx, "t1", StartRunRequest{Workspace: "shared-name"})
	if err != nil {
		t.Fatal(err)
	}
	if ws, err := f.svc.List(ctx, "t2"); err != nil || len(ws) != 0 {
		t.Fatalf("t2 sees %v (%v)", names(ws), err)
	}
	if _, err := f.svc.Get(ctx, "t2", "shared-name"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("t2 gets t1's workspace: %v", err)
	}
	for name, fn := range map[string]func() error{
		"get":      func() error { _, err := f.svc.GetRun(ctx, "t2", run.ID); return err },
		"progress": func() error { _, err := f.svc.ReportProgress(ctx, "t2", run.ID, Counters{}, nil); return err },
		"finish":   func() error { _, err := f.svc.FinishRun(ctx, "t2", run.ID, StatusFailed, Counters{}, nil); return err },
		"cancel":   func() error { _, err := f.svc.CancelRun(ctx, "t2", run.ID); return err },
	} {
		if err := fn(); !errors.Is(err, ErrNotFound) {
			t.Errorf("t2 %s on t1's run: %v, want not found", name, err)
		}
	}
	// The same name in another tenant is another workspace.
	mustCreate(t, f.svc, "t2", "shared-name")
	if _, err := f.svc.Delete(ctx, "t2", "shared-name", "shared-name"); err != nil {
		t.Fatal(err)
	}
	if calls := f.data.Calls(); len(calls) != 1 || calls[0].tenant != "t2" {
		t.Fatalf("data deletion calls %+v", calls)
	}
	if _, err := f.svc.Get(ctx, "t1", "shared-name"); err != nil {
		t.Fatalf("t2's deletion touched t1: %v", err)
	}
	if r, err := f.svc.GetRun(ctx, "t1", run.ID); err != nil || r.Status != StatusRunning {
		t.Fatalf("t1's run after t2's deletion: %+v %v", r, err)
	}
}

func TestDeleteNeedsConfirmationAndDeletesData(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	mustCreate(t, f.svc, "t1", "doomed")
	for _, confirm := range []string{"", "Doomed", "other"} {
		if _, err := f.svc.Delete(ctx, "t1", "doomed", confirm); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "confirm") {
			t.Fatalf("confirm %q: %v", confirm, err)
		}
	}
	if len(f.data.Calls()) != 0 {
		t.Fatal("data deleted without confirmation")
	}
	if _, err := f.svc.Delete(ctx, "t1", "missing", "missing"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown workspace: %v", err)
	}

	sub, _ := f.bus.Subscribe(ctx, events.WorkspaceDeleted, events.ImportCancelled)
	defer sub.Close()
	run, err := f.svc.StartRun(ctx, "t1", StartRunRequest{Workspace: "doomed"})
	if err != nil {
		t.Fatal(err)
	}
	n, err := f.svc.Delete(ctx, "t1", "doomed", "doomed")
	if err != nil || n != 3 {
		t.Fatalf("delete: %d %v", n, err)
	}
	calls := f.data.Calls()
	if len(calls) != 1 || calls[0].tenant != "t1" || len(calls[0].matchers) != 1 {
		t.Fatalf("DeleteStreams calls %+v", calls)
	}
	m := calls[0].matchers[0]
	if m.Name != "workspace" || m.Type != labels.MatchEqual || m.Value != "doomed" {
		t.Fatalf("matcher %s", m)
	}
	if _, err := f.svc.Get(ctx, "t1", "doomed"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("metadata survives deletion: %v", err)
	}
	// The running import was cancelled so that its agent stops.
	if !f.svc.IsCancelled(run.ID) {
		t.Fatal("the deleted workspace's running import is not cancelled")
	}
	if _, err := f.svc.GetRun(ctx, "t1", run.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("run of a deleted workspace: %v", err)
	}
	if e := <-sub.C; e.Type != events.ImportCancelled || e.Import.RunID != run.ID {
		t.Fatalf("first event %+v", e)
	}
	if e := <-sub.C; e.Type != events.WorkspaceDeleted || e.Workspace.Name != "doomed" || e.Workspace.DeletedStreams != 3 {
		t.Fatalf("second event %+v %+v", e, e.Workspace)
	}
}

func TestDeleteCoversFormerNamesAndKeepsMetadataWhenDataDeletionFails(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	mustCreate(t, f.svc, "t1", "a")
	if _, err := f.svc.Rename(ctx, "t1", "a", "b"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Rename(ctx, "t1", "b", "c.v2"); err != nil {
		t.Fatal(err)
	}
	f.data.err = errors.New("disk on fire")
	if _, err := f.svc.Delete(ctx, "t1", "c.v2", "c.v2"); err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Fatalf("failed data deletion: %v", err)
	}
	if _, err := f.svc.Get(ctx, "t1", "c.v2"); err != nil {
		t.Fatalf("metadata gone although the data deletion failed: %v", err)
	}
	f.data.err = nil
	if _, err := f.svc.Delete(ctx, "t1", "c.v2", "c.v2"); err != nil {
		t.Fatal(err)
	}
	calls := f.data.Calls()
	m := calls[len(calls)-1].matchers[0]
	if m.Type != labels.MatchRegexp {
		t.Fatalf("matcher for a renamed workspace: %s", m)
	}
	for v, want := range map[string]bool{"a": true, "b": true, "c.v2": true, "cxv2": false, "c": false, "ab": false, "": false} {
		if m.Matches(v) != want {
			t.Errorf("matcher %s on %q: %v, want %v", m, v, !want, want)
		}
	}
	// Every name is free again.
	for _, n := range []string{"a", "b", "c.v2"} {
		mustCreate(t, f.svc, "t1", n)
	}
}

func TestDeleteWithoutDataDeleterIsRefused(t *testing.T) {
	svc, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	mustCreate(t, svc, "t", "w")
	if _, err := svc.Delete(context.Background(), "t", "w", "w"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("delete without a StreamDeleter: %v", err)
	}
	if _, err := svc.Get(context.Background(), "t", "w"); err != nil {
		t.Fatal(err)
	}
}

func TestNamesAndAliases(t *testing.T) {
	for name, ok := range map[string]bool{
		"case-4711": true, "a": true, "A.b_c-9": true, strings.Repeat("x", 128): true,
		"": false, strings.Repeat("x", 129): false, "-x": false, ".hidden": false, "..": false,
		"a b": false, "a/b": false, `a"b`: false, "ü": false, "a|b": false, "a\x00": false,
	} {
		if err := ValidateName(name); (err == nil) != ok {
			t.Errorf("ValidateName(%q) = %v", name, err)
		} else if err != nil && !errors.Is(err, ErrInvalid) {
			t.Errorf("ValidateName(%q) error is not ErrInvalid: %v", name, err)
		}
	}
	f := newFixture(t)
	ctx := context.Background()
	if _, err := f.svc.Create(ctx, "t", CreateRequest{Name: "bad name"}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("bad name: %v", err)
	}
	if _, err := f.svc.Create(ctx, "t", CreateRequest{Name: "ok", Labels: map[string]string{"1bad": "x"}}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("bad label name: %v", err)
	}
	if _, err := f.svc.Create(ctx, "t", CreateRequest{Name: "ok", Description: strings.Repeat("d", MaxDescriptionLength+1)}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("long description: %v", err)
	}
	mustCreate(t, f.svc, "t", "one")
	if _, err := f.svc.Create(ctx, "t", CreateRequest{Name: "one"}); !errors.Is(err, ErrExists) {
		t.Fatalf("duplicate: %v", err)
	}
	mustCreate(t, f.svc, "t", "two")
	if _, err := f.svc.Rename(ctx, "t", "one", "two"); !errors.Is(err, ErrExists) {
		t.Fatalf("rename onto another workspace: %v", err)
	}
	if _, err := f.svc.Rename(ctx, "t", "one", "uno"); err != nil {
		t.Fatal(err)
	}
	// The former name is taken: its data still belongs to "uno".
	if _, err := f.svc.Create(ctx, "t", CreateRequest{Name: "one"}); !errors.Is(err, ErrExists) || !strings.Contains(err.Error(), "former name") {
		t.Fatalf("create over an alias: %v", err)
	}
	if _, err := f.svc.Rename(ctx, "t", "two", "one"); !errors.Is(err, ErrExists) {
		t.Fatalf("rename onto another workspace's alias: %v", err)
	}
	// A run started under the former name lands in the renamed workspace.
	run, err := f.svc.StartRun(ctx, "t", StartRunRequest{Workspace: "one"})
	if err != nil || run.Workspace != "uno" {
		t.Fatalf("run under a former name: %+v %v", run, err)
	}
	// Renaming back takes the alias back.
	w, err := f.svc.Rename(ctx, "t", "uno", "one")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(w.Aliases, []string{"uno"}) || w.RunCount != 1 || w.Runs[0].Workspace != "one" {
		t.Fatalf("renamed back: aliases %v runs %+v", w.Aliases, w.Runs)
	}
	if r, err := f.svc.GetRun(ctx, "t", run.ID); err != nil || r.Workspace != "one" {
		t.Fatalf("run index after rename: %+v %v", r, err)
	}
	if got := f.svc.Aliases("t", "nope"); !slices.Equal(got, []string{"nope"}) {
		t.Fatalf("aliases of an unknown workspace: %v", got)
	}
	if _, err := f.svc.Rename(ctx, "t", "missing", "x"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("rename unknown: %v", err)
	}
}

func TestImportRunLifecycle(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	sub, _ := f.bus.Subscribe(ctx)
	defer sub.Close()
	next := func() *events.Event {
		t.Helper()
		select {
		case e := <-sub.C:
			return e
		default:
			t.Fatal("expected an event")
			return nil
		}
	}

	run, err := f.svc.StartRun(ctx, "t", StartRunRequest{Workspace: "case-1", Host: "h", Source: "/tmp/b.zip", Files: 10, Bytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if run.Status != StatusRunning || run.Workspace != "case-1" || !validRunID(run.ID) {
		t.Fatalf("started run %+v", run)
	}
	if e := next(); e.Type != events.WorkspaceCreated || e.Workspace.Name != "case-1" || e.Tenant != "t" {
		t.Fatalf("auto-created workspace event %+v", e)
	}
	if e := next(); e.Type != events.ImportStarted || e.Import.RunID != run.ID || e.Import.Files != 10 {
		t.Fatalf("started event %+v", e.Import)
	}

	r, err := f.svc.ReportProgress(ctx, "t", run.ID, Counters{FilesDone: 3, BytesDone: 300, Lines: 30}, nil)
	if err != nil || r.Counters.Files != 10 || r.Counters.FilesDone != 3 || r.Status != StatusRunning {
		t.Fatalf("progress: %+v %v", r, err)
	}
	if e := next(); e.Type != events.ImportProgress || e.Import.FilesDone != 3 || e.Import.BytesDone != 300 {
		t.Fatalf("progress event %+v", e.Import)
	}
	// Errors are kept up to the cap and all counted.
	many := make([]string, MaxRunErrors+20)
	for i := range many {
		many[i] = fmt.Sprintf("error %d %s", i, strings.Repeat("x", MaxErrorLength))
	}
	r, err = f.svc.ReportProgress(ctx, "t", run.ID, Counters{FilesDone: 4}, many)
	if err != nil || len(r.Errors) != MaxRunErrors || r.ErrorCount != int64(len(many)) || len(r.Errors[0]) > MaxErrorLength+len("…") {
		t.Fatalf("errors: kept %d counted %d err %v", len(r.Errors), r.ErrorCount, err)
	}
	next()
	if _, err := f.svc.ReportProgress(ctx, "t", run.ID, Counters{Lines: -1}, nil); !errors.Is(err, ErrInvalid) {
		t.Fatalf("negative counter: %v", err)
	}
	if _, err := f.svc.ReportProgress(ctx, "t", "../../etc", Counters{}, nil); !errors.Is(err, ErrInvalid) {
		t.Fatalf("hostile run ID: %v", err)
	}
	if _, err := f.svc.ReportProgress(ctx, "t", "0123456789ab-00000000", Counters{}, nil); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown run: %v", err)
	}

	// Cancel from the server side.
	if f.svc.IsCancelled(run.ID) {
		t.Fatal("cancelled before CancelRun")
	}
	r, err = f.svc.CancelRun(ctx, "t", run.ID)
	if err != nil || r.Status != StatusCancelled || r.CancelRequested.IsZero() || !r.Finished.IsZero() {
		t.Fatalf("cancel: %+v %v", r, err)
	}
	if !f.svc.IsCancelled(run.ID) {
		t.Fatal("IsCancelled is false after CancelRun")
	}
	if e := next(); e.Type != events.ImportCancelled || e.Import.RunID != run.ID {
		t.Fatalf("cancel event %+v", e)
	}
	if _, err := f.svc.CancelRun(ctx, "t", run.ID); err != nil {
		t.Fatalf("second cancel: %v", err)
	}
	// The cancellation survives a restart until the agent confirms.
	f.reopen(t)
	if !f.svc.IsCancelled(run.ID) {
		t.Fatal("cancellation lost in a restart")
	}
	// The agent's next report reads the status and stops.
	r, err = f.svc.ReportProgress(ctx, "t", run.ID, Counters{FilesDone: 5}, nil)
	if err != nil || r.Status != StatusCancelled || r.Counters.FilesDone != 5 {
		t.Fatalf("progress after cancel: %+v %v", r, err)
	}
	// It confirms; the run stays cancelled whatever it says.
	r, err = f.svc.FinishRun(ctx, "t", run.ID, StatusCompleted, Counters{FilesDone: 5, Lines: 77}, nil)
	if err != nil || r.Status != StatusCancelled || r.Finished.IsZero() || r.Counters.Lines != 77 {
		t.Fatalf("finish after cancel: %+v %v", r, err)
	}
	if f.svc.IsCancelled(run.ID) {
		t.Fatal("IsCancelled still true after the agent confirmed")
	}
	if _, err := f.svc.ReportProgress(ctx, "t", run.ID, Counters{}, nil); !errors.Is(err, ErrConflict) {
		t.Fatalf("progress after finish: %v", err)
	}

	// A failed run.
	run2, _ := f.svc.StartRun(ctx, "t", StartRunRequest{Workspace: "case-1"})
	if _, err := f.svc.FinishRun(ctx, "t", run2.ID, Status("done"), Counters{}, nil); !errors.Is(err, ErrInvalid) {
		t.Fatalf("unknown status: %v", err)
	}
	if _, err := f.svc.FinishRun(ctx, "t", run2.ID, StatusRunning, Counters{}, nil); !errors.Is(err, ErrInvalid) {
		t.Fatalf("finish as running: %v", err)
	}
	failSub, _ := f.bus.Subscribe(ctx, events.ImportFailed)
	defer failSub.Close()
	r, err = f.svc.FinishRun(ctx, "t", run2.ID, StatusFailed, Counters{}, []string{"archive truncated"})
	if err != nil || r.Status != StatusFailed {
		t.Fatalf("fail: %+v %v", r, err)
	}
	if e := <-failSub.C; e.Import.Error != "archive truncated" || e.Import.Status != "failed" {
		t.Fatalf("failed event %+v", e.Import)
	}
	if _, err := f.svc.FinishRun(ctx, "t", run2.ID, StatusFailed, Counters{}, nil); err != nil {
		t.Fatalf("finishing twice the same way: %v", err)
	}
	if _, err := f.svc.FinishRun(ctx, "t", run2.ID, StatusCompleted, Counters{}, nil); !errors.Is(err, ErrConflict) {
		t.Fatalf("finishing twice differently: %v", err)
	}
	if _, err := f.svc.CancelRun(ctx, "t", run2.ID); !errors.Is(err, ErrConflict) {
		t.Fatalf("cancel a finished run: %v", err)
	}

	runs, err := f.svc.ListRuns(ctx, "t", "case-1", 0)
	if err != nil || len(runs) != 2 || runs[0].ID != run2.ID || runs[1].ID != run.ID {
		var ids []string
		for _, r := range runs {
			ids = append(ids, r.ID)
		}
		t.Fatalf("runs newest first: got %v, want [%s %s] (%v)", ids, run2.ID, run.ID, err)
	}
	if runs, _ := f.svc.ListRuns(ctx, "t", "case-1", 1); len(runs) != 1 {
		t.Fatalf("limit: %d runs", len(runs))
	}
	w, _ := f.svc.Get(ctx, "t", "case-1")
	if len(w.Sources) != 1 || w.Sources[0].Path != "/tmp/b.zip" {
		t.Fatalf("import source: %+v", w.Sources)
	}
}

func TestSourcesAreDeduplicatedAndValidated(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	mustCreate(t, f.svc, "t", "w")
	src := Source{Kind: SourceTail, Path: "/var/log/*.log", Host: "a"}
	for i := 0; i < 3; i++ {
		if _, err := f.svc.AddSource(ctx, "t", "w", src); err != nil {
			t.Fatal(err)
		}
	}
	src.Host = "b"
	w, err := f.svc.AddSource(ctx, "t", "w", src)
	if err != nil || len(w.Sources) != 2 {
		t.Fatalf("sources %+v %v", w, err)
	}
	for _, bad := range []Source{{Kind: "ftp", Path: "x"}, {Kind: SourceTail}, {Kind: SourceImport, Path: strings.Repeat("p", MaxPathLength+1)}} {
		if _, err := f.svc.AddSource(ctx, "t", "w", bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("source %+v: %v", bad, err)
		}
	}
	if _, err := f.svc.AddSource(ctx, "t", "missing", Source{Kind: SourceTail, Path: "x"}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown workspace: %v", err)
	}
}

func TestSecondOpenOfTheSameFileFails(t *testing.T) {
	dir := t.TempDir()
	svc, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	if svc.Path() != filepath.Join(dir, "meta", "workspaces.db") {
		t.Fatalf("path %s", svc.Path())
	}
	if _, err := Open(dir, Options{}); err == nil {
		t.Fatal("a second Open of a locked metadata file succeeded")
	}
}

func TestBackupIsAReadableCopy(t *testing.T) {
	f := newFixture(t)
	mustCreate(t, f.svc, "t", "kept")
	var buf strings.Builder
	n, err := f.svc.Backup(&buf)
	if err != nil || n == 0 || int64(buf.Len()) != n {
		t.Fatalf("backup: %d bytes %v", n, err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "copy.db")
	if err := writeFile(path, buf.String()); err != nil {
		t.Fatal(err)
	}
	cp, err := OpenFile(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Close()
	if _, err := cp.Get(context.Background(), "t", "kept"); err != nil {
		t.Fatalf("workspace missing from the backup: %v", err)
	}
}

func writeFile(path, content string) error { return os.WriteFile(path, []byte(content), 0o600) }
