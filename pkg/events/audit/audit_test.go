package audit

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/logsift/logsift/pkg/events"
)

func readLines(t *testing.T, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("%s: line %q is not JSON: %v", path, sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

func TestAuditRecordsChangesOfItsOwnOrigin(t *testing.T) {
	dataDir := t.TempDir()
	bus := events.NewMemory("me")
	defer bus.Close()
	l, err := Start(context.Background(), bus, dataDir, Options{Origin: "me"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := events.WithActor(context.Background(), "10.0.0.7")
	publish := func(e *events.Event) {
		if e.Actor == "" {
			e.Actor = events.ActorFromContext(ctx)
		}
		if err := bus.Publish(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	publish(&events.Event{Type: events.WorkspaceCreated, Tenant: "t1", Workspace: &events.Workspace{Name: "case-1"}})
	publish(&events.Event{Type: events.ImportProgress, Tenant: "t1", Import: &events.Import{Workspace: "case-1", RunID: "r"}})
	publish(&events.Event{Type: events.SearchRequested, Tenant: "t1", Search: &events.Search{QueryID: "q"}})
	publish(&events.Event{Type: events.WorkspaceDeleted, Tenant: "t1", Origin: "someone-else", Workspace: &events.Workspace{Name: "x"}})
	publish(&events.Event{Type: events.ImportCancelled, Tenant: "t1", Import: &events.Import{Workspace: "case-1", RunID: "r", Error: "cancel requested"}})
	publish(&events.Event{Type: events.WorkspaceRenamed, Tenant: "t1", Workspace: &events.Workspace{Name: "case-2", OldName: "case-1"}})
	path := filepath.Join(dataDir, Dir, current)
	waitForLines(t, path, 3)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	lines := readLines(t, path)
	var got []string
	for _, m := range lines {
		got = append(got, fmt.Sprint(m["type"]))
		if m["tenant"] != "t1" || m["actor"] != "10.0.0.7" || m["origin"] != "me" || m["time"] == nil {
			t.Errorf("record %v", m)
		}
	}
	if strings.Join(got, ",") != "workspace.created,import.cancelled,workspace.renamed" {
		t.Fatalf("audited %v", got)
	}
}

// waitForLines waits until the subscriber goroutine has written n records
// (a safety deadline, not a speed assertion).
func waitForLines(t *testing.T, path string, n int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for len(readLines(t, path)) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%s: fewer than %d records arrived", path, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestAuditRotatesBySizeAndKeepsMaxFiles(t *testing.T) {
	dir := t.TempDir()
	var tick atomic.Int64
	now := func() time.Time { return time.Unix(1700000000+tick.Add(1), 0) }
	l, err := Open(dir, Options{MaxSize: 300, MaxFiles: 2, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 40; i++ {
		e := &events.Event{Type: events.WorkspaceCreated, Tenant: "t", Time: time.Unix(1, 0).UTC(), Workspace: &events.Workspace{Name: fmt.Sprintf("ws-%02d", i)}}
		if err := l.Write(e); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	rotated, err := l.Rotated()
	if err != nil {
		t.Fatal(err)
	}
	if len(rotated) != 2 {
		t.Fatalf("rotated files %v, want the newest 2", rotated)
	}
	// The kept files hold the newest records, in order, each under the size.
	var names []string
	for _, f := range append(rotated, current) {
		fi, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() > 300 {
			t.Fatalf("%s is %d bytes, over MaxSize", f, fi.Size())
		}
		for _, m := range readLines(t, filepath.Join(dir, f)) {
			names = append(names, m["workspace"].(map[string]any)["name"].(string))
		}
	}
	if len(names) == 0 || names[len(names)-1] != "ws-39" {
		t.Fatalf("newest record missing: %v", names)
	}
	for i := 1; i < len(names); i++ {
		if names[i] <= names[i-1] {
			t.Fatalf("records out of order or duplicated: %v", names)
		}
	}
	// Reopening appends to the current file.
	l2, err := Open(dir, Options{MaxSize: 300, MaxFiles: 2, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	before := len(readLines(t, filepath.Join(dir, current)))
	if err := l2.Write(map[string]string{"type": "test"}); err != nil {
		t.Fatal(err)
	}
	l2.Close()
	if after := len(readLines(t, filepath.Join(dir, current))); after != before+1 && after != 1 {
		t.Fatalf("reopen: %d lines before, %d after", before, after)
	}
	if err := l2.Write(map[string]string{}); err == nil {
		t.Fatal("write after close succeeded")
	}
}
