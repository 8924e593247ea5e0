// Package audit keeps the audit log: one JSON line per change someone made
// (workspaces created, renamed and deleted; import runs started, finished,
// failed and cancelled), written from the event bus to files under
// <data>/audit/ that rotate by size.
package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/logsift/logsift/pkg/events"
)

// Types are the events the audit log records. Progress, searches and
// cache activity are not changes and stay out.
var Types = []events.Type{
	events.WorkspaceCreated, events.WorkspaceRenamed, events.WorkspaceDeleted,
	events.ImportStarted, events.ImportCompleted, events.ImportFailed, events.ImportCancelled,
}

// Dir is the audit directory, relative to the data directory.
const Dir = "audit"

// current is the file being written; rotated files are
// audit-<UTC time>.log and sort in time order by name.
const current = "audit.log"

// Options configure the audit log; zero values take the defaults.
type Options struct {
	// MaxSize is the size at which the current file is rotated (default
	// 64 MiB).
	MaxSize int64
	// MaxFiles is how many rotated files are kept (default 10).
	MaxFiles int
	// Origin, when set, records only the events this process published.
	// On a shared NATS bus every process would otherwise write every
	// other process's events too.
	Origin string
	Log    *slog.Logger
	// Now is the clock for rotated file names (tests set it).
	Now func() time.Time
}

// Log is an audit log being written.
type Log struct {
	dir  string
	opts Options

	mu   sync.Mutex
	f    *os.File
	size int64

	sub  *events.Subscription
	done chan struct{}
}

// Open opens the audit log in dir (created if missing), appending to the
// current file.
func Open(dir string, opts Options) (*Log, error) {
	if opts.MaxSize <= 0 {
		opts.MaxSize = 64 << 20
	}
	if opts.MaxFiles <= 0 {
		opts.MaxFiles = 10
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("audit directory: %w", err)
	}
	l := &Log{dir: dir, opts: opts}
	if err := l.openCurrent(); err != nil {
		return nil, err
	}
	return l, nil
}

func (l *Log) openCurrent() error {
	f, err := os.OpenFile(filepath.Join(l.dir, current), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return fmt.Errorf("open audit log: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("open audit log: %w", err)
	}
	l.f, l.size = f, st.Size()
	return nil
}

// Start opens the audit log under dataDir/audit and records the bus's
// audited events until ctx ends or Close is called.
func Start(ctx context.Context, bus events.Bus, dataDir string, opts Options) (*Log, error) {
	l, err := Open(filepath.Join(dataDir, Dir), opts)
	if err != nil {
		return nil, err
	}
	sub, err := bus.Subscribe(ctx, Types...)
	if err != nil {
		l.f.Close()
		return nil, fmt.Errorf("audit log: %w", err)
	}
	l.sub, l.done = sub, make(chan struct{})
	go l.run()
	return l, nil
}

func (l *Log) run() {
	defer close(l.done)
	var reported int64
	for e := range l.sub.C {
		if l.opts.Origin != "" && e.Origin != l.opts.Origin {
			continue
		}
		// A lost audit record is worth a record of its own.
		if d := l.sub.Dropped(); d > reported {
			l.writeRecord(map[string]any{"type": "audit.dropped", "time": time.Now().UTC(), "dropped": d - reported})
			reported = d
		}
		l.writeRecord(e)
	}
}

func (l *Log) writeRecord(v any) {
	if err := l.Write(v); err != nil {
		l.opts.Log.Error("audit log write", "err", err)
	}
}

// Write appends one record (an events.Event or any JSON value) as a line
// and syncs it to disk: audited changes are rare and each one matters.
func (l *Log) Write(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode audit record: %w", err)
	}
	b = append(b, '\n')
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return errors.New("audit log is closed")
	}
	if l.size > 0 && l.size+int64(len(b)) > l.opts.MaxSize {
		if err := l.rotate(); err != nil {
			return err
		}
	}
	n, err := l.f.Write(b)
	l.size += int64(n)
	if err != nil {
		return fmt.Errorf("write audit log: %w", err)
	}
	if err := l.f.Sync(); err != nil {
		return fmt.Errorf("sync audit log: %w", err)
	}
	return nil
}

// rotate renames the current file to audit-<time>.log, starts a new one
// and removes the oldest rotated files beyond MaxFiles.
func (l *Log) rotate() error {
	if err := l.f.Close(); err != nil {
		return fmt.Errorf("close audit log: %w", err)
	}
	l.f = nil
	name := "audit-" + l.opts.Now().UTC().Format("20060102T150405.000000000") + ".log"
	if err := os.Rename(filepath.Join(l.dir, current), filepath.Join(l.dir, name)); err != nil {
		// Keep writing to the current file rather than stop auditing.
		return errors.Join(fmt.Errorf("rotate audit log: %w", err), l.openCurrent())
	}
	if err := l.openCurrent(); err != nil {
		return err
	}
	rotated, err := l.Rotated()
	if err != nil {
		return err
	}
	for len(rotated) > l.opts.MaxFiles {
		if err := os.Remove(filepath.Join(l.dir, rotated[0])); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove old audit log: %w", err)
		}
		rotated = rotated[1:]
	}
	return nil
}

// Rotated lists the rotated files, oldest first.
func (l *Log) Rotated() ([]string, error) {
	ents, err := os.ReadDir(l.dir)
	if err != nil {
		return nil, fmt.Errorf("list audit logs: %w", err)
	}
	var out []string
	for _, e := range ents {
		if n := e.Name(); strings.HasPrefix(n, "audit-") && strings.HasSuffix(n, ".log") {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out, nil
}

// Close stops recording, waits for the records in flight and closes the
// file.
func (l *Log) Close() error {
	if l.sub != nil {
		l.sub.Close()
		<-l.done
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}
