package workspace

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/logsift/logsift/pkg/events"
	"github.com/logsift/logsift/pkg/labels"
)

// StreamDeleter removes a tenant's stored streams that match every
// matcher and reports how many it removed; the store implements it.
type StreamDeleter interface {
	DeleteStreams(ctx context.Context, tenant string, matchers []*labels.Matcher) (deleted int, err error)
}

// Options configure a Service. Every field may be left zero.
type Options struct {
	// Bus receives workspace and import events; nil publishes none.
	Bus events.Bus
	// Data deletes a workspace's streams when the workspace is deleted;
	// without it Delete refuses (ErrUnavailable), since deleting only the
	// metadata would leave data nobody can find by workspace any more.
	Data StreamDeleter
	Log  *slog.Logger
	// Now is the clock (tests set it).
	Now func() time.Time
}

// FileName is the metadata file, relative to the data directory.
const FileName = "meta/workspaces.db"

// Bucket layout of the bbolt file:
//
//	tenants/<tenant>/ws/<name>             JSON record (Workspace without runs)
//	tenants/<tenant>/runs/<name>/<run id>  JSON Run; run IDs sort by start time
//	tenants/<tenant>/aliases/<old name>    current name
//	runs/<run id>                          tenant NUL workspace (run lookup by ID)
var (
	bucketTenants  = []byte("tenants")
	bucketRunIndex = []byte("runs")
	bucketMeta     = []byte("meta")
	keyWS          = []byte("ws")
	keyRuns        = []byte("runs")
	keyAliases     = []byte("aliases")
)

const schemaVersion = "1"

// Service manages workspaces and import runs on one bbolt file. It is safe
// for concurrent use; bbolt serialises writers.
type Service struct {
	db   *bolt.DB
	path string
	opts Options
	log  *slog.Logger

	mu sync.Mutex
	// cancelled holds the IDs of runs cancelled and not yet finished, so
	// that IsCancelled, asked for every chunk an agent sends, needs no
	// database read. Deleted workspaces' runs stay in it until restart.
	cancelled map[string]bool
	// deleting blocks new runs of a workspace while its data is deleted.
	deleting map[string]bool
	// lastRunMS is the time stamp of the newest run ID handed out.
	lastRunMS int64
}

// Open opens (or creates) the metadata file under dataDir.
func Open(dataDir string, opts Options) (*Service, error) {
	return OpenFile(filepath.Join(dataDir, FileName), opts)
}

// OpenFile opens (or creates) the metadata file at path.
func OpenFile(path string, opts Options) (*Service, error) {
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("workspace metadata directory: %w", err)
	}
	// The timeout turns a second process on the same file into an error
	// instead of a hang (bbolt holds an exclusive file lock).
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("open workspace metadata %s: %w", path, err)
	}
	s := &Service{db: db, path: path, opts: opts, log: opts.Log.With("component", "workspace"),
		cancelled: map[string]bool{}, deleting: map[string]bool{}}
	if err := s.init(); err != nil {
		db.Close()
		return nil, fmt.Errorf("workspace metadata %s: %w", path, err)
	}
	return s, nil
}

func (s *Service) init() error {
	return s.db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketTenants, bucketRunIndex, bucketMeta} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bucketMeta)
		switch v := meta.Get([]byte("version")); {
		case v == nil:
			if err := meta.Put([]byte("version"), []byte(schemaVersion)); err != nil {
				return err
			}
		case string(v) != schemaVersion:
			return fmt.Errorf("metadata schema version %q, this server reads %q", v, schemaVersion)
		}
		// Runs cancelled before a restart whose agent has not confirmed yet,
		// and the newest run ID's time stamp, so that new IDs sort after it.
		if k, _ := tx.Bucket(bucketRunIndex).Cursor().Last(); k != nil {
			if ms, err := strconv.ParseInt(strings.SplitN(string(k), "-", 2)[0], 16, 64); err == nil {
				s.lastRunMS = ms
			}
		}
		return tx.Bucket(bucketTenants).ForEachBucket(func(tk []byte) error {
			runs := tx.Bucket(bucketTenants).Bucket(tk).Bucket(keyRuns)
			if runs == nil {
				return nil
			}
			return runs.ForEachBucket(func(wk []byte) error {
				return runs.Bucket(wk).ForEach(func(_, v []byte) error {
					var r Run
					if err := json.Unmarshal(v, &r); err != nil {
						return fmt.Errorf("run record of workspace %q: %w", wk, err)
					}
					if r.Status == StatusCancelled && r.Finished.IsZero() {
						s.cancelled[r.ID] = true
					}
					return nil
				})
			})
		})
	})
}

// Close closes the metadata file.
func (s *Service) Close() error { return s.db.Close() }

// Path is the metadata file's path.
func (s *Service) Path() string { return s.path }

// Backup writes a consistent copy of the metadata file to w while the
// server runs (a bbolt read transaction), for backups that cannot stop
// the server.
func (s *Service) Backup(w io.Writer) (int64, error) {
	var n int64
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		n, err = tx.WriteTo(w)
		return err
	})
	if err != nil {
		return n, fmt.Errorf("back up workspace metadata: %w", err)
	}
	return n, nil
}

// tenantBuckets returns the tenant's buckets, creating them when create is
// set (in a write transaction); tb is nil for a tenant without workspaces.
type tenantBuckets struct {
	ws, runs, aliases *bolt.Bucket
}

func tenantOf(tx *bolt.Tx, tenant string, create bool) (*tenantBuckets, error) {
	root := tx.Bucket(bucketTenants)
	tb := root.Bucket([]byte(tenant))
	if tb == nil {
		if !create {
			return nil, nil
		}
		var err error
		if tb, err = root.CreateBucket([]byte(tenant)); err != nil {
			return nil, err
		}
	}
	out := &tenantBuckets{ws: tb.Bucket(keyWS), runs: tb.Bucket(keyRuns), aliases: tb.Bucket(keyAliases)}
	if create {
		var err error
		for _, p := range []struct {
			b   **bolt.Bucket
			key []byte
		}{{&out.ws, keyWS}, {&out.runs, keyRuns}, {&out.aliases, keyAliases}} {
			if *p.b == nil {
				if *p.b, err = tb.CreateBucket(p.key); err != nil {
					return nil, err
				}
			}
		}
	}
	if out.ws == nil || out.runs == nil || out.aliases == nil {
		return nil, nil
	}
	return out, nil
}

func getRecord(tb *tenantBuckets, name string) (*Workspace, error) {
	if tb == nil {
		return nil, nil
	}
	v := tb.ws.Get([]byte(name))
	if v == nil {
		return nil, nil
	}
	var w Workspace
	if err := json.Unmarshal(v, &w); err != nil {
		return nil, fmt.Errorf("workspace record %q: %w", name, err)
	}
	return &w, nil
}

func putRecord(tb *tenantBuckets, w *Workspace) error {
	rec := *w
	rec.Runs, rec.LastRun, rec.RunCount = nil, nil, 0
	b, err := json.Marshal(&rec)
	if err != nil {
		return err
	}
	return tb.ws.Put([]byte(w.Name), b)
}

func putRun(tb *tenantBuckets, r *Run) error {
	rb, err := tb.runs.CreateBucketIfNotExists([]byte(r.Workspace))
	if err != nil {
		return err
	}
	rec := *r
	rec.DurationMS = 0
	b, err := json.Marshal(&rec)
	if err != nil {
		return err
	}
	return rb.Put([]byte(r.ID), b)
}

func decodeRun(v []byte) (*Run, error) {
	var r Run
	if err := json.Unmarshal(v, &r); err != nil {
		return nil, fmt.Errorf("run record: %w", err)
	}
	return &r, nil
}

// fill computes the derived fields of a run for a reader.
func (r *Run) fill(now time.Time) {
	end := r.Finished
	if end.IsZero() {
		end = now
		if r.Status != StatusRunning && r.Status != StatusCancelled {
			end = r.Updated
		}
	}
	if d := end.Sub(r.Started); d > 0 {
		r.DurationMS = d.Milliseconds()
	}
}

// List returns the tenant's workspaces by name, each with its run count
// and newest run but without the run history.
func (s *Service) List(_ context.Context, tenant string) ([]Workspace, error) {
	var out []Workspace
	now := s.opts.Now()
	err := s.db.View(func(tx *bolt.Tx) error {
		tb, err := tenantOf(tx, tenant, false)
		if err != nil || tb == nil {
			return err
		}
		return tb.ws.ForEach(func(k, v []byte) error {
			var w Workspace
			if err := json.Unmarshal(v, &w); err != nil {
				return fmt.Errorf("workspace record %q: %w", k, err)
			}
			if rb := tb.runs.Bucket(k); rb != nil {
				w.RunCount = rb.Stats().KeyN
				if _, last := rb.Cursor().Last(); last != nil {
					r, err := decodeRun(last)
					if err != nil {
						return err
					}
					r.fill(now)
					w.LastRun = r
				}
			}
			out = append(out, w)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list workspaces: %w", err)
	}
	return out, nil
}

// Get returns a workspace with its runs, newest first.
func (s *Service) Get(_ context.Context, tenant, name string) (*Workspace, error) {
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	var w *Workspace
	now := s.opts.Now()
	err := s.db.View(func(tx *bolt.Tx) error {
		tb, err := tenantOf(tx, tenant, false)
		if err != nil {
			return err
		}
		if w, err = getRecord(tb, name); err != nil || w == nil {
			return err
		}
		rb := tb.runs.Bucket([]byte(name))
		if rb == nil {
			return nil
		}
		c := rb.Cursor()
		for k, v := c.Last(); k != nil; k, v = c.Prev() {
			r, err := decodeRun(v)
			if err != nil {
				return err
			}
			r.fill(now)
			w.Runs = append(w.Runs, *r)
		}
		w.RunCount = len(w.Runs)
		if len(w.Runs) > 0 {
			last := w.Runs[0]
			w.LastRun = &last
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("get workspace %q: %w", name, err)
	}
	if w == nil {
		return nil, errorf(ErrNotFound, "workspace %q not found", name)
	}
	return w, nil
}

// CreateRequest describes a new workspace.
type CreateRequest struct {
	Name        string            `json:"name"`
	Description string            `json:"description,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
}

// Create makes a workspace. A name in use, as a workspace or as the alias
// of a renamed one, is refused with ErrExists.
func (s *Service) Create(ctx context.Context, tenant string, req CreateRequest) (*Workspace, error) {
	if err := ValidateName(req.Name); err != nil {
		return nil, err
	}
	if err := validateDescription(req.Description); err != nil {
		return nil, err
	}
	if err := validateLabels(req.Labels); err != nil {
		return nil, err
	}
	if err := s.checkNotDeleting(tenant, req.Name); err != nil {
		return nil, err
	}
	w := &Workspace{Name: req.Name, Tenant: tenant, Created: s.opts.Now().UTC(), Description: req.Description,
		Labels: req.Labels, Sources: []Source{}}
	err := s.db.Update(func(tx *bolt.Tx) error {
		tb, err := tenantOf(tx, tenant, true)
		if err != nil {
			return err
		}
		if err := checkNameFree(tb, req.Name, ""); err != nil {
			return err
		}
		return putRecord(tb, w)
	})
	if err != nil {
		return nil, wrap("create workspace", req.Name, err)
	}
	s.publish(ctx, &events.Event{Type: events.WorkspaceCreated, Tenant: tenant, Workspace: &events.Workspace{Name: w.Name}})
	return w, nil
}

// checkNameFree refuses a name that a workspace or an alias uses; self is
// the workspace being renamed, whose own aliases it may take back.
func checkNameFree(tb *tenantBuckets, name, self string) error {
	if tb.ws.Get([]byte(name)) != nil {
		return errorf(ErrExists, "workspace %q already exists", name)
	}
	if owner := tb.aliases.Get([]byte(name)); owner != nil && string(owner) != self {
		return errorf(ErrExists, "%q is a former name of workspace %q, whose data is still stored under it; pick another name", name, owner)
	}
	return nil
}

// wrap adds context to storage errors and keeps the readable messages of
// the package's own errors as they are.
func wrap(op, name string, err error) error {
	if _, ok := err.(*kindError); ok {
		return err
	}
	return fmt.Errorf("%s %q: %w", op, name, err)
}

// Update is a change to a workspace; nil fields stay as they are.
type Update struct {
	Name        *string            `json:"name,omitempty"`
	Description *string            `json:"description,omitempty"`
	Labels      *map[string]string `json:"labels,omitempty"`
}

// Rename gives a workspace a new name. Stored entries keep their
// workspace label, so the old name becomes an alias: queries for the new
// name must include the data under Aliases(tenant, newName).
func (s *Service) Rename(ctx context.Context, tenant, name, newName string) (*Workspace, error) {
	return s.Update(ctx, tenant, name, Update{Name: &newName})
}

// Update changes a workspace's name, description or labels.
func (s *Service) Update(ctx context.Context, tenant, name string, u Update) (*Workspace, error) {
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	renaming := u.Name != nil && *u.Name != name
	if renaming {
		if err := ValidateName(*u.Name); err != nil {
			return nil, err
		}
		if err := s.checkNotDeleting(tenant, name); err != nil {
			return nil, err
		}
	}
	if u.Description != nil {
		if err := validateDescription(*u.Description); err != nil {
			return nil, err
		}
	}
	if u.Labels != nil {
		if err := validateLabels(*u.Labels); err != nil {
			return nil, err
		}
	}
	var w *Workspace
	err := s.db.Update(func(tx *bolt.Tx) error {
		tb, err := tenantOf(tx, tenant, false)
		if err != nil {
			return err
		}
		if w, err = getRecord(tb, name); err != nil {
			return err
		}
		if w == nil {
			return errorf(ErrNotFound, "workspace %q not found", name)
		}
		if u.Description != nil {
			w.Description = *u.Description
		}
		if u.Labels != nil {
			w.Labels = *u.Labels
		}
		if !renaming {
			return putRecord(tb, w)
		}
		return renameInTx(tx, tb, w, *u.Name)
	})
	if err != nil {
		return nil, wrap("update workspace", name, err)
	}
	if renaming {
		s.publish(ctx, &events.Event{Type: events.WorkspaceRenamed, Tenant: tenant, Workspace: &events.Workspace{Name: w.Name, OldName: name}})
	}
	return s.Get(ctx, tenant, w.Name)
}

func renameInTx(tx *bolt.Tx, tb *tenantBuckets, w *Workspace, newName string) error {
	old := w.Name
	if err := checkNameFree(tb, newName, old); err != nil {
		return err
	}
	aliases := slices.DeleteFunc(append(w.Aliases, old), func(a string) bool { return a == newName })
	slices.Sort(aliases)
	w.Aliases = slices.Compact(aliases)
	w.Name = newName
	if err := tb.ws.Delete([]byte(old)); err != nil {
		return err
	}
	if err := putRecord(tb, w); err != nil {
		return err
	}
	if err := tb.aliases.Delete([]byte(newName)); err != nil {
		return err
	}
	for _, a := range w.Aliases {
		if err := tb.aliases.Put([]byte(a), []byte(newName)); err != nil {
			return err
		}
	}
	// bbolt cannot rename a bucket: move the runs one by one.
	src := tb.runs.Bucket([]byte(old))
	if src == nil {
		return nil
	}
	index := tx.Bucket(bucketRunIndex)
	var runs []*Run
	if err := src.ForEach(func(_, v []byte) error {
		r, err := decodeRun(v)
		if err != nil {
			return err
		}
		runs = append(runs, r)
		return nil
	}); err != nil {
		return err
	}
	if err := tb.runs.DeleteBucket([]byte(old)); err != nil {
		return err
	}
	for _, r := range runs {
		r.Workspace = newName
		if err := putRun(tb, r); err != nil {
			return err
		}
		if err := index.Put([]byte(r.ID), runIndexValue(w.Tenant, newName)); err != nil {
			return err
		}
	}
	return nil
}

// Aliases returns the names whose stored data belongs to the workspace:
// its name first, then its former names. The query layer expands
// {workspace="new"} to workspace=~"new|old" with them. An unknown
// workspace has only its own name.
func (s *Service) Aliases(tenant, name string) []string {
	out := []string{name}
	_ = s.db.View(func(tx *bolt.Tx) error {
		tb, err := tenantOf(tx, tenant, false)
		if err != nil {
			return err
		}
		w, err := getRecord(tb, name)
		if err != nil || w == nil {
			return err
		}
		out = append(out, w.Aliases...)
		return nil
	})
	return out
}

// Matcher selects the stored streams of a workspace: workspace="name", or
// workspace=~"name|alias..." when it has former names.
func Matcher(names []string) (*labels.Matcher, error) {
	if len(names) == 1 {
		return labels.NewMatcher(labels.MatchEqual, Label, names[0])
	}
	quoted := make([]string, len(names))
	for i, n := range names {
		quoted[i] = regexp.QuoteMeta(n)
	}
	return labels.NewMatcher(labels.MatchRegexp, Label, strings.Join(quoted, "|"))
}

// Delete removes a workspace: its stored data first, through the
// StreamDeleter (all its names), then its metadata. confirm must repeat
// the name. Its running imports are cancelled first so that their agents
// stop sending; data that still arrives afterwards forms new streams.
func (s *Service) Delete(ctx context.Context, tenant, name, confirm string) (deletedStreams int, err error) {
	if err := ValidateName(name); err != nil {
		return 0, err
	}
	if confirm != name {
		return 0, errorf(ErrInvalid, "deleting workspace %q deletes its data: confirm by repeating its name (confirm=%s)", name, name)
	}
	if s.opts.Data == nil {
		return 0, errorf(ErrUnavailable, "this server cannot delete stored data, so it does not delete workspaces")
	}
	key := tenant + "\x00" + name
	s.mu.Lock()
	if s.deleting[key] {
		s.mu.Unlock()
		return 0, errorf(ErrConflict, "workspace %q is being deleted", name)
	}
	s.deleting[key] = true
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.deleting, key)
		s.mu.Unlock()
	}()

	// 1. Cancel running imports and learn the names the data is under.
	var names []string
	var cancelled []*Run
	now := s.opts.Now().UTC()
	err = s.db.Update(func(tx *bolt.Tx) error {
		tb, err := tenantOf(tx, tenant, false)
		if err != nil {
			return err
		}
		w, err := getRecord(tb, name)
		if err != nil {
			return err
		}
		if w == nil {
			return errorf(ErrNotFound, "workspace %q not found", name)
		}
		names = append([]string{name}, w.Aliases...)
		rb := tb.runs.Bucket([]byte(name))
		if rb == nil {
			return nil
		}
		return rb.ForEach(func(_, v []byte) error {
			r, err := decodeRun(v)
			if err != nil {
				return err
			}
			if r.Status != StatusRunning {
				return nil
			}
			r.Status, r.CancelRequested, r.Updated = StatusCancelled, now, now
			cancelled = append(cancelled, r)
			return putRun(tb, r)
		})
	})
	if err != nil {
		return 0, wrap("delete workspace", name, err)
	}
	s.mu.Lock()
	for _, r := range cancelled {
		s.cancelled[r.ID] = true
	}
	s.mu.Unlock()
	for _, r := range cancelled {
		s.publishRun(ctx, tenant, events.ImportCancelled, r, "workspace deleted")
	}

	// 2. The data.
	m, err := Matcher(names)
	if err != nil {
		return 0, fmt.Errorf("delete workspace %q: %w", name, err)
	}
	deletedStreams, err = s.opts.Data.DeleteStreams(ctx, tenant, []*labels.Matcher{m})
	if err != nil {
		return deletedStreams, fmt.Errorf("delete the data of workspace %q (metadata kept, try again): %w", name, err)
	}

	// 3. The metadata.
	err = s.db.Update(func(tx *bolt.Tx) error {
		tb, err := tenantOf(tx, tenant, false)
		if err != nil || tb == nil {
			return err
		}
		w, err := getRecord(tb, name)
		if err != nil || w == nil {
			return err
		}
		if rb := tb.runs.Bucket([]byte(name)); rb != nil {
			index := tx.Bucket(bucketRunIndex)
			if err := rb.ForEach(func(k, _ []byte) error { return index.Delete(k) }); err != nil {
				return err
			}
			if err := tb.runs.DeleteBucket([]byte(name)); err != nil {
				return err
			}
		}
		for _, a := range w.Aliases {
			if err := tb.aliases.Delete([]byte(a)); err != nil {
				return err
			}
		}
		return tb.ws.Delete([]byte(name))
	})
	if err != nil {
		return deletedStreams, fmt.Errorf("delete workspace %q metadata (its data is deleted): %w", name, err)
	}
	s.publish(ctx, &events.Event{Type: events.WorkspaceDeleted, Tenant: tenant,
		Workspace: &events.Workspace{Name: name, DeletedStreams: deletedStreams}})
	return deletedStreams, nil
}

func (s *Service) checkNotDeleting(tenant, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.deleting[tenant+"\x00"+name] {
		return errorf(ErrConflict, "workspace %q is being deleted", name)
	}
	return nil
}

// AddSource records a source of the workspace; adding the same kind, path
// and host again changes nothing.
func (s *Service) AddSource(_ context.Context, tenant, name string, src Source) (*Workspace, error) {
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	if err := validateSource(src); err != nil {
		return nil, err
	}
	src.Added = s.opts.Now().UTC()
	var w *Workspace
	err := s.db.Update(func(tx *bolt.Tx) error {
		tb, err := tenantOf(tx, tenant, false)
		if err != nil {
			return err
		}
		if w, err = getRecord(tb, name); err != nil {
			return err
		}
		if w == nil {
			return errorf(ErrNotFound, "workspace %q not found", name)
		}
		if added, err := addSource(w, src); err != nil || !added {
			return err
		}
		return putRecord(tb, w)
	})
	if err != nil {
		return nil, wrap("add source to workspace", name, err)
	}
	return w, nil
}

func addSource(w *Workspace, src Source) (bool, error) {
	for _, have := range w.Sources {
		if have.Kind == src.Kind && have.Path == src.Path && have.Host == src.Host {
			return false, nil
		}
	}
	if len(w.Sources) >= MaxSources {
		return false, errorf(ErrInvalid, "workspace %q has %d sources, the limit", w.Name, MaxSources)
	}
	w.Sources = append(w.Sources, src)
	return true, nil
}

// StartRunRequest describes an import run an agent begins.
type StartRunRequest struct {
	Workspace string `json:"workspace"`
	Host      string `json:"host,omitempty"`
	// Source is the archive or directory imported; it becomes an import
	// source of the workspace.
	Source string `json:"source,omitempty"`
	Files  int64  `json:"files,omitempty"`
	Bytes  int64  `json:"bytes,omitempty"`
}

// StartRun registers a running import and returns it with its ID. The
// workspace is created when it does not exist, so that
// `logsift-agent import x.zip --workspace case-1` needs no preparation; a
// former name resolves to the workspace that has it as an alias.
func (s *Service) StartRun(ctx context.Context, tenant string, req StartRunRequest) (*Run, error) {
	if err := ValidateName(req.Workspace); err != nil {
		return nil, err
	}
	if err := validateHost(req.Host); err != nil {
		return nil, err
	}
	if len(req.Source) > MaxPathLength {
		return nil, errorf(ErrInvalid, "source path is longer than %d bytes", MaxPathLength)
	}
	if err := (Counters{Files: req.Files, Bytes: req.Bytes}).validate(); err != nil {
		return nil, err
	}
	if err := s.checkNotDeleting(tenant, req.Workspace); err != nil {
		return nil, err
	}
	now := s.opts.Now().UTC()
	run := &Run{ID: s.newRunID(now), Host: req.Host, Source: req.Source, Status: StatusRunning, Started: now, Updated: now,
		Counters: Counters{Files: req.Files, Bytes: req.Bytes}}
	created := false
	err := s.db.Update(func(tx *bolt.Tx) error {
		tb, err := tenantOf(tx, tenant, true)
		if err != nil {
			return err
		}
		name := req.Workspace
		if owner := tb.aliases.Get([]byte(name)); owner != nil {
			name = string(owner)
		}
		w, err := getRecord(tb, name)
		if err != nil {
			return err
		}
		if w == nil {
			w = &Workspace{Name: name, Tenant: tenant, Created: now, Sources: []Source{}}
			created = true
		}
		if req.Source != "" {
			if _, err := addSource(w, Source{Kind: SourceImport, Path: req.Source, Host: req.Host, Added: now}); err != nil {
				return err
			}
		}
		if err := putRecord(tb, w); err != nil {
			return err
		}
		run.Workspace = name
		if err := putRun(tb, run); err != nil {
			return err
		}
		return tx.Bucket(bucketRunIndex).Put([]byte(run.ID), runIndexValue(tenant, name))
	})
	if err != nil {
		return nil, wrap("start import run in workspace", req.Workspace, err)
	}
	if created {
		s.publish(ctx, &events.Event{Type: events.WorkspaceCreated, Tenant: tenant, Workspace: &events.Workspace{Name: run.Workspace}})
	}
	s.publishRun(ctx, tenant, events.ImportStarted, run, "")
	return run, nil
}

func runIndexValue(tenant, workspace string) []byte {
	return []byte(tenant + "\x00" + workspace)
}

// newRunID makes IDs that sort by start time (bbolt keeps keys sorted, so
// a workspace's runs list in order): 12 hex digits of milliseconds, a dash
// and 8 random hex digits. Two runs in the same millisecond get
// consecutive stamps, so that the order holds within a process.
func (s *Service) newRunID(now time.Time) string {
	s.mu.Lock()
	ms := max(now.UnixMilli(), s.lastRunMS+1)
	s.lastRunMS = ms
	s.mu.Unlock()
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%012x-%s", uint64(ms)&(1<<48-1), hex.EncodeToString(b[:]))
}

// validRunID keeps hostile IDs away from the database and the logs.
func validRunID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c == '-') {
			return false
		}
	}
	return true
}

// updateRun loads a run of the tenant, lets fn change it and stores it.
func (s *Service) updateRun(tenant, runID string, fn func(r *Run) error) (*Run, error) {
	if !validRunID(runID) {
		return nil, errorf(ErrInvalid, "invalid run ID %q", truncate(runID, 64))
	}
	var run *Run
	err := s.db.Update(func(tx *bolt.Tx) error {
		r, tb, err := loadRun(tx, tenant, runID)
		if err != nil {
			return err
		}
		if err := fn(r); err != nil {
			return err
		}
		run = r
		return putRun(tb, r)
	})
	if err != nil {
		return nil, wrap("import run", runID, err)
	}
	run.fill(s.opts.Now())
	return run, nil
}

func loadRun(tx *bolt.Tx, tenant, runID string) (*Run, *tenantBuckets, error) {
	notFound := errorf(ErrNotFound, "import run %q not found", runID)
	v := tx.Bucket(bucketRunIndex).Get([]byte(runID))
	t, ws, ok := strings.Cut(string(v), "\x00")
	if v == nil || !ok || t != tenant {
		// Another tenant's run is "not found" too: its existence is not
		// this tenant's business.
		return nil, nil, notFound
	}
	tb, err := tenantOf(tx, tenant, false)
	if err != nil {
		return nil, nil, err
	}
	if tb == nil {
		return nil, nil, notFound
	}
	rb := tb.runs.Bucket([]byte(ws))
	if rb == nil {
		return nil, nil, notFound
	}
	rv := rb.Get([]byte(runID))
	if rv == nil {
		return nil, nil, notFound
	}
	r, err := decodeRun(rv)
	if err != nil {
		return nil, nil, err
	}
	return r, tb, nil
}

func (r *Run) addErrors(errs []string) {
	r.ErrorCount += int64(len(errs))
	errs = cleanErrors(errs)
	if room := MaxRunErrors - len(r.Errors); room > 0 {
		r.Errors = append(r.Errors, errs[:min(room, len(errs))]...)
	}
}

// ReportProgress records an agent's counters and new errors. It answers
// with the run, whose Status tells the agent whether to go on: a
// cancelled run keeps taking reports (so that its counters are right) and
// the agent stops when it reads StatusCancelled. A finished run refuses
// reports with ErrConflict.
func (s *Service) ReportProgress(ctx context.Context, tenant, runID string, c Counters, errs []string) (*Run, error) {
	if err := c.validate(); err != nil {
		return nil, err
	}
	now := s.opts.Now().UTC()
	run, err := s.updateRun(tenant, runID, func(r *Run) error {
		if !r.Finished.IsZero() {
			return errorf(ErrConflict, "import run %s is %s; it takes no more progress reports", r.ID, r.Status)
		}
		r.Counters = mergeCounters(r.Counters, c)
		r.Updated = now
		r.addErrors(errs)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if run.Status == StatusRunning {
		s.publishRun(ctx, tenant, events.ImportProgress, run, "")
	}
	return run, nil
}

// mergeCounters takes the reported counters, keeping the known totals
// when a report leaves them out (zero).
func mergeCounters(have, got Counters) Counters {
	if got.Files == 0 {
		got.Files = have.Files
	}
	if got.Bytes == 0 {
		got.Bytes = have.Bytes
	}
	return got
}

// FinishRun records the end of a run: completed, failed or cancelled. A
// run cancelled from the server stays cancelled whatever the agent
// reports. Finishing a finished run again with the same status changes
// nothing; with another status it is ErrConflict.
func (s *Service) FinishRun(ctx context.Context, tenant, runID string, status Status, c Counters, errs []string) (*Run, error) {
	if status != StatusCompleted && status != StatusFailed && status != StatusCancelled {
		return nil, errorf(ErrInvalid, "a run finishes as %q, %q or %q, not %q", StatusCompleted, StatusFailed, StatusCancelled, truncate(string(status), 32))
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	now := s.opts.Now().UTC()
	changed := false
	run, err := s.updateRun(tenant, runID, func(r *Run) error {
		if !r.Finished.IsZero() {
			if r.Status == status {
				return nil
			}
			return errorf(ErrConflict, "import run %s already finished as %s", r.ID, r.Status)
		}
		if r.Status == StatusRunning {
			r.Status = status
		}
		r.Counters = mergeCounters(r.Counters, c)
		r.addErrors(errs)
		r.Finished, r.Updated = now, now
		changed = true
		return nil
	})
	if err != nil {
		return nil, err
	}
	if !changed {
		return run, nil
	}
	s.mu.Lock()
	delete(s.cancelled, run.ID)
	s.mu.Unlock()
	switch run.Status {
	case StatusCompleted:
		s.publishRun(ctx, tenant, events.ImportCompleted, run, "")
	case StatusFailed:
		msg := "import failed"
		if len(run.Errors) > 0 {
			msg = run.Errors[len(run.Errors)-1]
		}
		s.publishRun(ctx, tenant, events.ImportFailed, run, msg)
	case StatusCancelled:
		s.publishRun(ctx, tenant, events.ImportCancelled, run, "")
	}
	return run, nil
}

// CancelRun marks a running import cancelled. The agent learns it from
// its next progress report, by polling the run, or through IsCancelled on
// its chunk stream, stops, and confirms with FinishRun. Cancelling a
// cancelled run changes nothing; a finished one is ErrConflict.
func (s *Service) CancelRun(ctx context.Context, tenant, runID string) (*Run, error) {
	now := s.opts.Now().UTC()
	changed := false
	run, err := s.updateRun(tenant, runID, func(r *Run) error {
		switch r.Status {
		case StatusCancelled:
			return nil
		case StatusRunning:
			r.Status, r.CancelRequested, r.Updated = StatusCancelled, now, now
			changed = true
			return nil
		}
		return errorf(ErrConflict, "import run %s already finished as %s", r.ID, r.Status)
	})
	if err != nil {
		return nil, err
	}
	if changed {
		s.mu.Lock()
		s.cancelled[run.ID] = true
		s.mu.Unlock()
		s.publishRun(ctx, tenant, events.ImportCancelled, run, "cancel requested")
	}
	return run, nil
}

// GetRun returns one run of the tenant.
func (s *Service) GetRun(_ context.Context, tenant, runID string) (*Run, error) {
	if !validRunID(runID) {
		return nil, errorf(ErrInvalid, "invalid run ID %q", truncate(runID, 64))
	}
	var run *Run
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		run, _, err = loadRun(tx, tenant, runID)
		return err
	})
	if err != nil {
		return nil, wrap("import run", runID, err)
	}
	run.fill(s.opts.Now())
	return run, nil
}

// IsCancelled reports whether the run was cancelled and its agent has not
// yet confirmed. It reads memory only, so the chunk stream may ask it for
// every chunk.
func (s *Service) IsCancelled(runID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cancelled[runID]
}

// ListRuns returns a workspace's runs, newest first, at most limit (0: all).
func (s *Service) ListRuns(ctx context.Context, tenant, name string, limit int) ([]Run, error) {
	w, err := s.Get(ctx, tenant, name)
	if err != nil {
		return nil, err
	}
	if limit > 0 && len(w.Runs) > limit {
		w.Runs = w.Runs[:limit]
	}
	if w.Runs == nil {
		w.Runs = []Run{}
	}
	return w.Runs, nil
}

func (s *Service) publish(ctx context.Context, e *events.Event) {
	if s.opts.Bus == nil {
		return
	}
	if e.Actor == "" {
		e.Actor = events.ActorFromContext(ctx)
	}
	if err := s.opts.Bus.Publish(ctx, e); err != nil {
		s.log.Debug("publish event", "type", e.Type, "err", err)
	}
}

func (s *Service) publishRun(ctx context.Context, tenant string, t events.Type, r *Run, msg string) {
	r.fill(s.opts.Now())
	s.publish(ctx, &events.Event{Type: t, Tenant: tenant, Import: &events.Import{
		Workspace: r.Workspace, RunID: r.ID, Host: r.Host, Status: string(r.Status),
		Files: int(r.Counters.Files), FilesDone: int(r.Counters.FilesDone),
		Bytes: r.Counters.Bytes, BytesDone: r.Counters.BytesDone,
		Lines: r.Counters.Lines, Chunks: int(r.Counters.Chunks),
		Error: msg, DurationMS: r.DurationMS,
	}})
}
