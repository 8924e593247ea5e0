//go:build unix

// Package tail follows log files matched by globs (with "**"): it finds
// them with fsnotify and a periodic rescan, reads new lines with a small
// pool of workers, builds chunks per file and hands them to a Sink, and
// keeps, per file, the position of the last line the server acknowledged.
// Rotation by rename and by copytruncate, truncation, deletion and inode
// reuse are recognised by device, inode and a fingerprint of the first
// bytes; a rotated file is read to its end before it is let go.
//
// docs/agent.md explains the design and why the agent uses its own reader
// rather than github.com/nxadm/tail.
package tail

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/fsnotify/fsnotify"

	"github.com/logsift/logsift/agent/build"
	"github.com/logsift/logsift/agent/glob"
	"github.com/logsift/logsift/pkg/labels"
	"github.com/logsift/logsift/pkg/levels"
	"github.com/logsift/logsift/pkg/servicename"
)

// Sink takes built chunks. ShipTagged returns once the chunk is queued
// (blocking while the queue is full); ack runs once the chunk is delivered.
// The tag is handed back through Tailer.Claim after a restart.
type Sink interface {
	ShipTagged(ctx context.Context, chunk, tag []byte, ack func()) error
}

// Group is a set of globs whose files share static labels.
type Group struct {
	Include []string // absolute globs; "**" matches any number of directories
	Exclude []string // absolute globs of files to leave alone
	Labels  labels.Labels
}

// Options configure a Tailer. Zero values mean the defaults.
type Options struct {
	Groups []Group
	// PositionsFile stores the acknowledged positions. Required.
	PositionsFile string
	// PollInterval is how often tracked files are checked with stat, the
	// safety net under fsnotify; default 1s. Files without new data for
	// ten intervals are checked every fifth interval.
	PollInterval time.Duration
	// RescanInterval is how often the globs are walked again for files
	// fsnotify did not report; default 10s.
	RescanInterval time.Duration
	// IdleTimeout closes a file that had nothing new for this long (it is
	// reopened when it grows); default 1m.
	IdleTimeout time.Duration
	// DrainTimeout is how long a rotated or deleted file stays open after
	// its last new data; default 5s.
	DrainTimeout time.Duration
	// MaxOpenFiles bounds open descriptors; idle files are closed first
	// when it is reached. Default 512.
	MaxOpenFiles int
	// Workers read files with new data; default GOMAXPROCS.
	Workers int
	// MaxLineBytes truncates longer lines (the rest up to the newline is
	// dropped and counted); default 256 KiB, Loki's default line limit.
	MaxLineBytes int
	// ReadBufferBytes is each worker's read size; default 256 KiB.
	ReadBufferBytes int
	// StartAtEnd starts files that have no position, found by the first
	// scan of an agent without a positions file, at their end instead of
	// their start. Files appearing later are always read from their start.
	StartAtEnd bool
	// PositionsRetention forgets positions of files not seen for this
	// long; default 24h.
	PositionsRetention time.Duration
	// Build tunes chunk building; Build.Budget is set by the tailer.
	Build build.Options
	// NoLevels leaves lines without the detected_level structured metadata
	// that they otherwise get from pkg/levels, the detection the server
	// applies to pushed lines (Loki's discover_log_levels). The server
	// stores agent chunks as sent, so it cannot add it later.
	NoLevels bool
	// ServiceNameLabels are the labels whose value, the first one a
	// file's stream has, becomes its service_name label, else Loki's
	// "unknown_service" (Loki's discover_service_name); nil means Loki's
	// list (servicename.DefaultLabels).
	ServiceNameLabels []string
	// NoServiceName leaves streams without a service_name label.
	NoServiceName bool
	// BufferBytes bounds the memory of lines held in builders across all
	// files; above it a file's chunk is cut early. Default 8 MiB.
	BufferBytes int64
	// ShutdownTimeout bounds shipping the last chunks when Run ends;
	// default 5s.
	ShutdownTimeout time.Duration
	Logger          *slog.Logger
	Metrics         *metrics.Set
}

func (o *Options) setDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.PollInterval, time.Second)
	def(&o.RescanInterval, 10*time.Second)
	def(&o.IdleTimeout, time.Minute)
	def(&o.DrainTimeout, 5*time.Second)
	def(&o.PositionsRetention, 24*time.Hour)
	def(&o.ShutdownTimeout, 5*time.Second)
	if o.MaxOpenFiles <= 0 {
		o.MaxOpenFiles = 512
	}
	if o.Workers <= 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	if o.MaxLineBytes <= 0 {
		o.MaxLineBytes = 256 << 10
	}
	if o.ReadBufferBytes <= 0 {
		o.ReadBufferBytes = 256 << 10
	}
	if o.BufferBytes <= 0 {
		o.BufferBytes = 8 << 20
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Metrics == nil {
		o.Metrics = metrics.GetDefaultSet()
	}
	if o.ServiceNameLabels == nil {
		o.ServiceNameLabels = servicename.DefaultLabels
	}
	if o.NoServiceName {
		o.ServiceNameLabels = nil
	}
}

type group struct {
	include, exclude []*glob.Pattern
	labels           labels.Labels
}

func (g *group) matches(path string) bool {
	for _, p := range g.exclude {
		if p.Match(path) {
			return false
		}
	}
	for _, p := range g.include {
		if p.Match(path) {
			return true
		}
	}
	return false
}

// Tailer follows the files of its groups.
type Tailer struct {
	opts   Options
	sink   Sink
	log    *slog.Logger
	m      *tailMetrics
	groups []*group
	budget build.Budget

	// mu guards the file tables and the work queue. Lock order: mu, then
	// posMu.
	mu       sync.Mutex
	cond     *sync.Cond
	files    map[*file]struct{}
	byPath   map[string]*file // the live (not rotated) file at a path
	byID     map[fileID]*file // every open-tracked file by identity
	queue    []*file
	open     int
	stopping bool
	streams  map[uint64]*streamClock
	watched  map[string]bool
	paths    map[string]*pathMetrics

	// discoverMu serialises discovery (scan, fsnotify and rotation
	// handling all create files).
	discoverMu sync.Mutex

	// posMu guards entries and every entry's fields.
	posMu   sync.Mutex
	entries map[uint64]*entry
	dirty   bool
	saveMu  sync.Mutex

	initial  bool // no positions file existed at start
	rescanCh chan struct{}
	polls    int // owned by the tick goroutine
	// encodeQ feeds the encoders: chunks are encoded and shipped on other
	// cores while the workers read on.
	encodeQ chan encodeJob
	shipCtx context.Context
}

type encodeJob struct {
	d    *build.Detached
	tag  []byte
	ack  func()
	path string
}

// New prepares a tailer; Run starts it. Chunks left in the spool by an
// earlier run are claimed with Claim between New and Run.
func New(opts Options, sink Sink) (*Tailer, error) {
	opts.setDefaults()
	if opts.PositionsFile == "" {
		return nil, errors.New("tail: positions file not set")
	}
	t := &Tailer{
		opts:     opts,
		sink:     sink,
		log:      opts.Logger,
		files:    map[*file]struct{}{},
		byPath:   map[string]*file{},
		byID:     map[fileID]*file{},
		streams:  map[uint64]*streamClock{},
		watched:  map[string]bool{},
		paths:    map[string]*pathMetrics{},
		entries:  map[uint64]*entry{},
		rescanCh: make(chan struct{}, 1),
		shipCtx:  context.Background(),
	}
	t.cond = sync.NewCond(&t.mu)
	t.opts.Build.Budget = &t.budget
	t.m = newTailMetrics(opts.Metrics, t)
	for i, g := range opts.Groups {
		cg := &group{labels: g.Labels}
		for _, p := range g.Include {
			cp, err := glob.Compile(p)
			if err != nil {
				return nil, fmt.Errorf("tail: group %d: %w", i, err)
			}
			cg.include = append(cg.include, cp)
		}
		for _, p := range g.Exclude {
			cp, err := glob.Compile(p)
			if err != nil {
				return nil, fmt.Errorf("tail: group %d exclude: %w", i, err)
			}
			cg.exclude = append(cg.exclude, cp)
		}
		t.groups = append(t.groups, cg)
	}
	ps, err := loadPositions(opts.PositionsFile)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(opts.PositionsFile); errors.Is(err, os.ErrNotExist) {
		t.initial = true
	}
	for _, p := range ps {
		t.entries[p.ID] = &entry{position: p}
	}
	return t, nil
}

// Claim takes back a chunk found in the spool at startup and returns its
// ack callback, so that reading resumes after it and its acknowledgement
// moves the position.
func (t *Tailer) Claim(tag []byte) func() {
	tg, err := decodeTag(tag)
	if err != nil {
		t.log.Warn("tail: spooled chunk with an unreadable tag; it is still sent, its file position is not tracked", "err", err)
		return nil
	}
	t.posMu.Lock()
	defer t.posMu.Unlock()
	e := t.entries[tg.ID]
	if e == nil {
		// Spooled before the positions file ever named this file: the
		// spool is the only record of it.
		p := tg.position
		p.Offset = tg.start
		e = &entry{position: p}
		t.entries[p.ID] = e
	}
	// Chunks of one file are encoded in parallel and may have reached the
	// spool out of order: keep them in file order, numbered in that order.
	pc := pendingChunk{end: tg.end, tailLen: tg.TailLen, tail: tg.Tail}
	i := len(e.pending)
	for i > 0 && e.pending[i-1].end > pc.end {
		i--
	}
	e.pending = slices.Insert(e.pending, i, pc)
	// Claims come before any chunk is cut, so numbering starts at 0.
	for k := range e.pending {
		e.pending[k].n = uint64(k)
	}
	e.nextChunk = uint64(len(e.pending))
	// Acks find their chunk by end offset, which the renumbering keeps.
	end := tg.end
	return func() { t.ackedEnd(e, end) }
}

// ackedEnd acknowledges the claimed chunk of e that ends at end.
func (t *Tailer) ackedEnd(e *entry, end int64) {
	t.posMu.Lock()
	n, found := uint64(0), false
	for _, p := range e.pending {
		if p.end == end && !p.acked {
			n, found = p.n, true
			break
		}
	}
	t.posMu.Unlock()
	if found {
		t.acked(e, n)
	}
}

// acked marks chunk n of e acknowledged and moves the position over every
// acknowledged chunk at the front: a later chunk acknowledged first waits
// for the ones before it.
func (t *Tailer) acked(e *entry, n uint64) {
	t.posMu.Lock()
	defer t.posMu.Unlock()
	if len(e.pending) == 0 || n < e.pending[0].n {
		return
	}
	i := int(n - e.pending[0].n)
	if i >= len(e.pending) {
		return
	}
	e.pending[i].acked = true
	k := 0
	for k < len(e.pending) && e.pending[k].acked {
		p := e.pending[k]
		e.Offset, e.TailLen, e.Tail = p.end, p.tailLen, p.tail
		k++
	}
	if k > 0 {
		e.pending = append(e.pending[:0], e.pending[k:]...)
		t.dirty = true
	}
}

// SavePositions writes the positions file if anything changed. The spool
// calls it before deleting delivered chunks.
func (t *Tailer) SavePositions() error {
	t.saveMu.Lock()
	defer t.saveMu.Unlock()
	now := time.Now()
	t.posMu.Lock()
	if !t.dirty {
		t.posMu.Unlock()
		return nil
	}
	t.dirty = false
	ps := make([]position, 0, len(t.entries))
	cutoff := now.Add(-t.opts.PositionsRetention).Unix()
	for id, e := range t.entries {
		if e.file != nil {
			e.Seen = now.Unix()
		}
		if len(e.pending) == 0 && e.file == nil && (e.retired || e.Seen < cutoff) {
			delete(t.entries, id)
			continue
		}
		ps = append(ps, e.position)
	}
	t.posMu.Unlock()
	if err := savePositions(t.opts.PositionsFile, ps); err != nil {
		t.posMu.Lock()
		t.dirty = true
		t.posMu.Unlock()
		return err
	}
	return nil
}

// streamClock hands out timestamps for one stream: the read time, but
// strictly increasing, so that two equal lines never share a timestamp
// (the query path treats equal timestamp, line and metadata as one entry).
type streamClock struct {
	mu   sync.Mutex
	last int64
	refs int
}

func (c *streamClock) reserve(n int, now int64) int64 {
	c.mu.Lock()
	start := max(now, c.last+1)
	c.last = start + int64(n) - 1
	c.mu.Unlock()
	return start
}

// Run follows files until ctx ends, then ships what is buffered and
// closes the files. Partial last lines are left for the next run.
func (t *Tailer) Run(ctx context.Context) error {
	shipCtx, cancelShip := context.WithCancel(context.Background())
	defer cancelShip()
	t.shipCtx = shipCtx
	t.encodeQ = make(chan encodeJob, t.opts.Workers)
	var encoders sync.WaitGroup
	for range max(runtime.GOMAXPROCS(0), 1) {
		encoders.Add(1)
		go func() {
			defer encoders.Done()
			t.encoder()
		}()
	}
	watcher, err := fsnotify.NewWatcher()
	if err != nil {
		t.log.Warn("tail: fsnotify unavailable; relying on polling", "err", err)
		watcher = nil
	}
	t.scan(watcher, true)
	t.locateUnmatched()

	var wg sync.WaitGroup
	for range t.opts.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t.worker()
		}()
	}
	bgCtx, stopBG := context.WithCancel(ctx)
	var bg sync.WaitGroup
	if watcher != nil {
		bg.Add(1)
		go func() {
			defer bg.Done()
			t.watch(bgCtx, watcher)
		}()
	}
	bg.Add(1)
	go func() {
		defer bg.Done()
		t.tick(bgCtx, watcher)
	}()

	<-ctx.Done()
	stopBG()
	bg.Wait()
	if watcher != nil {
		watcher.Close()
	}
	t.mu.Lock()
	t.stopping = true
	t.cond.Broadcast()
	t.mu.Unlock()
	wg.Wait()
	// Shipping the last chunks may wait for spool space; not forever.
	timer := time.AfterFunc(t.opts.ShutdownTimeout, cancelShip)
	defer timer.Stop()
	t.shutdown()
	close(t.encodeQ)
	encoders.Wait()
	return nil
}

// encoder encodes detached chunks and ships them.
func (t *Tailer) encoder() {
	for job := range t.encodeQ {
		data, _, err := job.d.Encode()
		if err != nil {
			// Only invalid labels or an over-long line get here, which
			// config validation and MaxLineBytes rule out. The lines are
			// lost; say so and move on rather than stall the file.
			t.log.Error("tail: building a chunk failed; its lines are dropped", "path", job.path, "err", err)
			job.ack()
			continue
		}
		if err := t.sink.ShipTagged(t.shipCtx, data, job.tag, job.ack); err != nil {
			// Shutting down: the lines are read again next run, since the
			// position never moved past them.
			t.log.Debug("tail: chunk not queued", "path", job.path, "err", err)
		}
	}
}

// shutdown ships every builder's lines and closes the files.
func (t *Tailer) shutdown() {
	t.mu.Lock()
	files := make([]*file, 0, len(t.files))
	for f := range t.files {
		files = append(files, f)
	}
	t.mu.Unlock()
	for _, f := range files {
		t.cut(f)
		t.closeFD(f)
	}
}

func (t *Tailer) worker() {
	buf := make([]byte, t.opts.ReadBufferBytes)
	for {
		t.mu.Lock()
		for len(t.queue) == 0 && !t.stopping {
			t.cond.Wait()
		}
		if t.stopping {
			t.mu.Unlock()
			return
		}
		f := t.queue[0]
		t.queue[0] = nil
		t.queue = t.queue[1:]
		f.queued = false
		f.busy = true
		t.mu.Unlock()

		t.service(f, buf)

		t.mu.Lock()
		f.busy = false
		if f.again && !f.gone {
			f.again = false
			t.pushLocked(f)
		}
		t.mu.Unlock()
	}
}

func (t *Tailer) push(f *file) {
	t.mu.Lock()
	t.pushLocked(f)
	t.mu.Unlock()
}

func (t *Tailer) pushLocked(f *file) {
	if f.gone {
		return
	}
	if f.busy {
		f.again = true
		return
	}
	if f.queued {
		return
	}
	f.queued = true
	t.queue = append(t.queue, f)
	t.cond.Signal()
}

// tick runs the periodic work: polling, due chunks, idle files, rescans
// and a periodic save of the positions.
func (t *Tailer) tick(ctx context.Context, watcher *fsnotify.Watcher) {
	poll := time.NewTicker(t.opts.PollInterval)
	defer poll.Stop()
	// Spread rescans of many agents started together.
	rescan := time.NewTicker(t.opts.RescanInterval + time.Duration(rand.Int64N(int64(t.opts.RescanInterval)/10+1)))
	defer rescan.Stop()
	save := time.NewTicker(10 * time.Second)
	defer save.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-poll.C:
			t.poll(now)
		case <-rescan.C:
			t.scan(watcher, false)
		case <-t.rescanCh:
			t.scan(watcher, false)
		case <-save.C:
			if err := t.SavePositions(); err != nil {
				t.log.Error("tail: saving positions failed", "err", err)
			}
		}
	}
}

func (t *Tailer) requestRescan() {
	select {
	case t.rescanCh <- struct{}{}:
	default:
	}
}

// poll checks every tracked file: new data, rotation, deletion, chunks due
// by age, idle files to close.
func (t *Tailer) poll(now time.Time) {
	t.mu.Lock()
	files := make([]*file, 0, len(t.files))
	for f := range t.files {
		files = append(files, f)
	}
	t.mu.Unlock()
	// Files quiet for a while are checked every fifth poll only: fsnotify
	// reports their writes and renames anyway, and a thousand idle files
	// should not cost a thousand stat calls a second.
	t.polls++
	full := t.polls%5 == 0
	for _, f := range files {
		if !full && now.Sub(f.lastActive()) > 10*t.opts.PollInterval && f.bufferedSince.Load() == 0 {
			continue
		}
		t.check(f, now)
	}
}

// check stats one file's path and queues it for the worker when there is
// anything to do.
func (t *Tailer) check(f *file, now time.Time) {
	t.mu.Lock()
	path, id, rotated, deleted, hasFD := f.path, f.id, f.rotated, f.deleted, f.fd != nil
	t.mu.Unlock()
	work := false
	if since := f.bufferedSince.Load(); since != 0 && now.UnixNano()-since >= int64(t.builderAge()) {
		work = true
	}
	offset := f.offset.Load()
	if rotated || deleted {
		// Draining: the worker reads to the end and lets go after
		// DrainTimeout without new data.
		t.push(f)
		return
	}
	fi, err := os.Stat(path)
	switch {
	case err != nil && errors.Is(err, fs.ErrNotExist):
		if !hasFD {
			// Closed while idle and gone from its path: renamed (drain it
			// where it went) or deleted.
			if p := t.locate(id, filepath.Dir(path)); p != "" {
				t.mu.Lock()
				if !f.rotated && !f.deleted {
					f.rotated = true
					f.path = p
					f.touch()
					if t.byPath[path] == f {
						delete(t.byPath, path)
					}
					t.m.rotations.Inc()
				}
				t.mu.Unlock()
				t.push(f)
				return
			}
		}
		t.mu.Lock()
		if !f.rotated && !f.deleted {
			// Renamed away (still linked) or deleted: either way the
			// descriptor is drained and the path is free for a new file.
			renamed := false
			if f.fd != nil {
				if st, err := f.fd.Stat(); err == nil && linkCount(st) > 0 {
					renamed = true
				}
			}
			if renamed {
				f.rotated = true
				t.m.rotations.Inc()
			} else {
				f.deleted = true
				t.m.deleted.Inc()
			}
			f.touch() // the drain timeout counts from here
			if t.byPath[path] == f {
				delete(t.byPath, path)
			}
		}
		t.mu.Unlock()
		work = true
	case err != nil:
		t.m.readErrors.Inc()
	case idOf(fi) != id:
		t.rotate(f, path)
		if g := t.groupFor(path); g != nil {
			t.discover(path, g, false)
		}
		work = true
	default:
		size := fi.Size()
		f.pm.lag.Set(float64(max(size-offset, 0)))
		if size != offset {
			work = true
		}
		if hasFD && f.bufferedSince.Load() == 0 && now.Sub(f.lastActive()) >= t.opts.IdleTimeout {
			f.closeIdle.Store(true)
			work = true
		}
	}
	if work {
		t.push(f)
	}
}

func (t *Tailer) builderAge() time.Duration {
	if t.opts.Build.MaxAge > 0 {
		return t.opts.Build.MaxAge
	}
	return build.DefaultMaxAge
}

// rotate handles a path that now names another file: the old file is
// drained through its descriptor, or found again in its directory if it
// was closed. The caller discovers the new file.
func (t *Tailer) rotate(f *file, path string) {
	t.mu.Lock()
	if f.rotated || f.deleted {
		t.mu.Unlock()
		return
	}
	f.rotated = true
	f.touch() // the drain timeout counts from here
	if t.byPath[path] == f {
		delete(t.byPath, path)
	}
	hasFD, id := f.fd != nil, f.id
	t.mu.Unlock()
	t.m.rotations.Inc()
	if !hasFD {
		// Closed while idle: find where the rename took it.
		if p := t.locate(id, filepath.Dir(path)); p != "" {
			t.mu.Lock()
			f.path = p
			t.mu.Unlock()
		} else {
			t.mu.Lock()
			f.deleted = true
			t.mu.Unlock()
		}
	}
	t.push(f)
}

// locate finds the file with identity id in dir (a rotated file).
func (t *Tailer) locate(id fileID, dir string) string {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return ""
	}
	for _, de := range ents {
		if !de.Type().IsRegular() {
			continue
		}
		p := filepath.Join(dir, de.Name())
		fi, err := os.Stat(p)
		if err == nil && idOf(fi) == id {
			return p
		}
	}
	return ""
}

func (t *Tailer) groupFor(path string) *group {
	for _, g := range t.groups {
		if g.matches(path) {
			return g
		}
	}
	return nil
}

// scan walks every pattern's directory tree, discovers matching files and
// watches the directories that can hold them.
func (t *Tailer) scan(watcher *fsnotify.Watcher, initial bool) {
	t.m.rescans.Inc()
	seen := map[string]bool{}
	for _, g := range t.groups {
		for _, p := range g.include {
			_ = filepath.WalkDir(p.Root(), func(path string, d fs.DirEntry, err error) error {
				if err != nil {
					return nil // unreadable or vanished: next scan
				}
				if d.IsDir() {
					if !p.MayContain(path) {
						return filepath.SkipDir
					}
					t.watchDir(watcher, path)
					return nil
				}
				if seen[path] || !p.Match(path) {
					return nil
				}
				seen[path] = true
				if gg := t.groupFor(path); gg != nil {
					t.discover(path, gg, initial)
				}
				return nil
			})
		}
	}
}

func (t *Tailer) watchDir(watcher *fsnotify.Watcher, dir string) {
	if watcher == nil {
		return
	}
	t.mu.Lock()
	done := t.watched[dir]
	t.mu.Unlock()
	if done {
		return
	}
	if err := watcher.Add(dir); err != nil {
		// Out of inotify watches, most likely: polling and rescans still
		// find everything, only later.
		t.m.watchErrors.Inc()
		t.log.Debug("tail: cannot watch directory", "dir", dir, "err", err)
		return
	}
	t.mu.Lock()
	t.watched[dir] = true
	t.mu.Unlock()
}

// watch turns fsnotify events into work.
func (t *Tailer) watch(ctx context.Context, w *fsnotify.Watcher) {
	for {
		select {
		case <-ctx.Done():
			return
		case err, ok := <-w.Errors:
			if !ok {
				return
			}
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				t.m.overflows.Inc()
			}
			// A lost event may hide a new or rotated file: rescan.
			t.requestRescan()
		case ev, ok := <-w.Events:
			if !ok {
				return
			}
			t.event(w, ev)
		}
	}
}

func (t *Tailer) event(w *fsnotify.Watcher, ev fsnotify.Event) {
	path := ev.Name
	t.mu.Lock()
	f := t.byPath[path]
	t.mu.Unlock()
	switch {
	case ev.Has(fsnotify.Write):
		if f != nil {
			t.push(f)
		}
	case ev.Has(fsnotify.Create):
		fi, err := os.Stat(path)
		if err != nil {
			return
		}
		if fi.IsDir() {
			t.mu.Lock()
			known := t.watched[path]
			t.mu.Unlock()
			if !known {
				t.requestRescan()
			}
			return
		}
		if f != nil {
			t.check(f, time.Now())
			return
		}
		if g := t.groupFor(path); g != nil {
			t.discover(path, g, false)
		}
	case ev.Has(fsnotify.Remove), ev.Has(fsnotify.Rename):
		if f != nil {
			t.check(f, time.Now())
		}
		t.mu.Lock()
		if t.watched[path] {
			delete(t.watched, path)
		}
		t.mu.Unlock()
	}
}

// discover starts following the file at path unless it is followed
// already, resuming from its position when it has one.
func (t *Tailer) discover(path string, g *group, initial bool) {
	t.discoverMu.Lock()
	defer t.discoverMu.Unlock()
	fi, err := os.Stat(path)
	if err != nil || !fi.Mode().IsRegular() {
		return
	}
	id := idOf(fi)
	t.mu.Lock()
	if f := t.byID[id]; f != nil {
		// Followed already, maybe under its name before a rename.
		t.mu.Unlock()
		return
	}
	old := t.byPath[path]
	t.mu.Unlock()
	if old != nil {
		// The path names a new file and the old one was not seen to go.
		t.rotate(old, path)
	}

	fd, err := os.Open(path)
	if err != nil {
		t.m.readErrors.Inc()
		t.log.Debug("tail: cannot open file", "path", path, "err", err)
		return
	}
	fi, err = fd.Stat()
	if err != nil || idOf(fi) != id {
		fd.Close()
		return // replaced between stat and open: the next scan sees it
	}
	e, off := t.match(fd, path, id, fi.Size(), initial)
	f := t.newFile(e, path, id, g.labels, fd, off)
	t.log.Debug("tail: following file", "path", path, "offset", off)
	t.push(f)
}

// match finds the position of the file open as fd. A known entry with the
// same identity whose fingerprint and remembered bytes still agree gives
// the resume offset; one whose fingerprint agrees but whose content does
// not (truncated or rewritten while the agent was away) is retired, and
// the remainder of its content is looked for in a copy next to it.
func (t *Tailer) match(fd *os.File, path string, id fileID, size int64, initial bool) (*entry, int64) {
	t.posMu.Lock()
	var cands []*entry
	for _, e := range t.entries {
		if e.id() == id && e.file == nil && !e.retired {
			cands = append(cands, e)
		}
	}
	t.posMu.Unlock()
	buf := make([]byte, fpMax)
	for _, e := range cands {
		t.posMu.Lock()
		fpLen, fp := e.FPLen, e.FP
		off, tailLen, tail := e.resume()
		acked, ackedTailLen, ackedTail := e.Offset, e.TailLen, e.Tail
		t.posMu.Unlock()
		if int64(fpLen) <= size && headMatches(fd, fpLen, fp, buf) {
			if off <= size && tailAt(fd, off, tailLen, tail, buf) {
				return e, off
			}
			if acked <= size && off != acked && tailAt(fd, acked, ackedTailLen, ackedTail, buf) {
				// Should not happen (the spool's chunks end in bytes the
				// file no longer has), but the acknowledged position is safe.
				return e, acked
			}
		}
		// Same inode, other content: truncated (maybe by copytruncate,
		// then the rest is in a copy) or deleted and the inode reused.
		t.m.truncations.Inc()
		t.posMu.Lock()
		e.retired = true
		t.dirty = true
		t.posMu.Unlock()
		t.drainCopy(e, filepath.Dir(path), id, off, tailLen, tail)
	}
	start := int64(0)
	if initial && t.initial && t.opts.StartAtEnd {
		start = size
	}
	e := &entry{position: position{ID: newID(), Path: path, Dev: id.dev, Ino: id.ino, Offset: start, Seen: time.Now().Unix()}}
	t.posMu.Lock()
	t.entries[e.ID] = e
	t.dirty = true
	t.posMu.Unlock()
	return e, start
}

var newline = []byte{'\n'}

// tailAt reports whether the n bytes before off hash to want; with n == 0
// there is nothing to compare.
func tailAt(fd *os.File, off int64, n int, want uint64, buf []byte) bool {
	if n == 0 {
		return true
	}
	if int64(n) > off {
		return false
	}
	h, ok := rangeHash(fd, off-int64(n), n, buf)
	return ok && h == want
}

func newID() uint64 {
	for {
		if id := rand.Uint64(); id != 0 {
			return id
		}
	}
}

// findCopy looks in dir for a copy of entry e's content that reaches past
// off: same fingerprint, same bytes before off, another inode. That is
// what copytruncate leaves next to the file it truncated.
func (t *Tailer) findCopy(e *entry, dir string, not fileID, off int64, tailLen int, tail uint64) (*os.File, string) {
	t.posMu.Lock()
	fpLen, fp := e.FPLen, e.FP
	t.posMu.Unlock()
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, ""
	}
	buf := make([]byte, fpMax)
	for _, de := range ents {
		if !de.Type().IsRegular() {
			continue
		}
		p := filepath.Join(dir, de.Name())
		fi, err := os.Stat(p)
		if err != nil || fi.Size() < off || idOf(fi) == not {
			continue
		}
		t.mu.Lock()
		_, followed := t.byID[idOf(fi)]
		t.mu.Unlock()
		if followed {
			continue
		}
		fd, err := os.Open(p)
		if err != nil {
			continue
		}
		if headMatches(fd, fpLen, fp, buf) && tailAt(fd, off, tailLen, tail, buf) {
			return fd, p
		}
		fd.Close()
	}
	return nil, ""
}

// drainCopy follows the copy of a truncated entry's content, if there is
// one, from off to its end, as part of the entry's stream.
func (t *Tailer) drainCopy(e *entry, dir string, not fileID, off int64, tailLen int, tail uint64) bool {
	fd, p := t.findCopy(e, dir, not, off, tailLen, tail)
	if fd == nil {
		return false
	}
	fi, err := fd.Stat()
	if err != nil {
		fd.Close()
		return false
	}
	t.m.copyRotations.Inc()
	cid := idOf(fi)
	t.posMu.Lock()
	e.Dev, e.Ino = cid.dev, cid.ino
	e.retired = false
	e.TailLen, e.Tail = tailLen, tail
	t.dirty = true
	lbls := t.groupLabels(e.Path)
	t.posMu.Unlock()
	f := t.newFile(e, p, cid, lbls, fd, off)
	t.mu.Lock()
	f.rotated = true
	if t.byPath[p] == f {
		delete(t.byPath, p)
	}
	t.mu.Unlock()
	t.log.Info("tail: reading the rest of a truncated file from its copy", "path", e.Path, "copy", p, "offset", off)
	t.push(f)
	return true
}

func (t *Tailer) groupLabels(path string) labels.Labels {
	if g := t.groupFor(path); g != nil {
		return g.labels
	}
	return nil
}

// locateUnmatched looks for the files of known entries that the first
// scan did not find under a matching path: files rotated away while the
// agent was down still have lines after their position.
func (t *Tailer) locateUnmatched() {
	t.posMu.Lock()
	var es []*entry
	for _, e := range t.entries {
		if e.file == nil && !e.retired {
			es = append(es, e)
		}
	}
	t.posMu.Unlock()
	buf := make([]byte, fpMax)
	for _, e := range es {
		t.posMu.Lock()
		id, dir, fpLen, fp := e.id(), filepath.Dir(e.Path), e.FPLen, e.FP
		off, tailLen, tail := e.resume()
		t.posMu.Unlock()
		p := t.locate(id, dir)
		if p == "" {
			continue
		}
		fd, err := os.Open(p)
		if err != nil {
			continue
		}
		fi, err := fd.Stat()
		if err != nil || idOf(fi) != id {
			fd.Close()
			continue
		}
		if !headMatches(fd, fpLen, fp, buf) || !tailAt(fd, off, tailLen, tail, buf) || fi.Size() <= off {
			fd.Close()
			continue
		}
		t.mu.Lock()
		_, followed := t.byID[id]
		t.mu.Unlock()
		if followed {
			fd.Close()
			continue
		}
		f := t.newFile(e, p, id, t.groupLabels(e.Path), fd, off)
		t.mu.Lock()
		f.rotated = true
		if t.byPath[p] == f {
			delete(t.byPath, p)
		}
		t.mu.Unlock()
		t.log.Info("tail: draining a file rotated while the agent was down", "path", e.Path, "now", p, "offset", off)
		t.push(f)
	}
}

// newFile registers a followed file reading from off.
func (t *Tailer) newFile(e *entry, path string, id fileID, static labels.Labels, fd *os.File, off int64) *file {
	lbls := make(labels.Labels, 0, len(static)+1)
	lbls = append(lbls, static...)
	lbls = append(lbls, labels.Label{Name: "filename", Value: e.Path})
	lbls = servicename.Add(lbls.Sort(), t.opts.ServiceNameLabels, servicename.Unknown)
	f := &file{
		ent:        e,
		id:         id,
		path:       path,
		labels:     lbls,
		fd:         fd,
		readOff:    off,
		lineStart:  off,
		chunkStart: off,
	}
	f.offset.Store(off)
	f.touch()
	f.builder = build.New(lbls, t.opts.Build)
	f.streamLevel, _ = levels.FromLabels(lbls, nil)
	// The fingerprint covers the first bytes; read them now so it keeps
	// growing as the file does, whatever the start offset.
	head := make([]byte, fpMax)
	n, _ := fd.ReadAt(head, 0)
	f.head = head[:n]
	if n >= fpMax {
		f.headDone = true
	}
	t.posMu.Lock()
	e.file = f
	if len(f.head) > e.FPLen {
		e.FPLen, e.FP = len(f.head), hashBytes(f.head)
		t.dirty = true
	}
	t.posMu.Unlock()
	if f.headDone {
		f.head = nil
	}
	// Bytes before off for truncation checks.
	if off > 0 {
		k := int(min(off, tailMax))
		b := make([]byte, k)
		if m, _ := fd.ReadAt(b, off-int64(k)); m == k {
			f.win = b
		}
	}
	t.mu.Lock()
	f.stream = t.streams[lbls.Hash()]
	if f.stream == nil {
		f.stream = &streamClock{}
		t.streams[lbls.Hash()] = f.stream
	}
	f.stream.refs++
	f.pm = t.pathMetricsLocked(e.Path)
	t.files[f] = struct{}{}
	t.byID[id] = f
	t.byPath[path] = f
	if t.open >= t.opts.MaxOpenFiles {
		t.closeLRULocked(t.opts.MaxOpenFiles - 1)
	}
	if t.open >= t.opts.MaxOpenFiles && !f.rotated {
		// At the limit (a first scan of thousands of files): let go of the
		// descriptor now; the worker reopens the file by path when a slot
		// is free and checks that it is still the same file.
		f.fd.Close()
		f.fd = nil
	} else {
		t.open++
	}
	t.mu.Unlock()
	return f
}

// closeLRULocked closes idle files, least recently active first, until at
// most limit are open or none is idle.
func (t *Tailer) closeLRULocked(limit int) {
	for t.open > limit {
		var lru *file
		for f := range t.files {
			if f.fd == nil || f.busy || f.queued || f.rotated || f.deleted {
				continue
			}
			if lru == nil || f.lastActive().Before(lru.lastActive()) {
				lru = f
			}
		}
		if lru == nil {
			return // everything open is busy; over the limit until they settle
		}
		lru.fd.Close()
		lru.fd = nil
		t.open--
		t.m.lruCloses.Inc()
	}
}

// closeFD closes a file's descriptor; the caller owns the file (a worker,
// or shutdown after the workers stopped).
func (t *Tailer) closeFD(f *file) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if f.fd != nil {
		f.fd.Close()
		f.fd = nil
		t.open--
	}
}

type reopenResult int

const (
	reopened reopenResult = iota
	reopenLimit
	reopenGone
)

// reopen opens a file closed while idle, checking that its path still
// names it. A file over the open limit waits for the next poll.
func (t *Tailer) reopen(f *file) reopenResult {
	t.mu.Lock()
	if t.open >= t.opts.MaxOpenFiles {
		t.closeLRULocked(t.opts.MaxOpenFiles - 1)
		if t.open >= t.opts.MaxOpenFiles {
			t.mu.Unlock()
			return reopenLimit
		}
	}
	path := f.path
	t.open++ // reserve the slot before opening, so racing workers cannot overshoot
	t.mu.Unlock()
	fd, err := os.Open(path)
	var fi os.FileInfo
	if err == nil {
		fi, err = fd.Stat()
	}
	if err != nil || idOf(fi) != f.id {
		if fd != nil {
			fd.Close()
		}
		t.mu.Lock()
		t.open--
		t.mu.Unlock()
		return reopenGone // the poll sees the rotation
	}
	t.mu.Lock()
	f.fd = fd
	t.mu.Unlock()
	return reopened
}

// forget drops a drained file: its chunk is cut, its descriptor closed and
// its entry kept (for the position) without a reader.
func (t *Tailer) forget(f *file) {
	t.cut(f)
	t.closeFD(f)
	t.mu.Lock()
	f.gone = true
	delete(t.files, f)
	if t.byID[f.id] == f {
		delete(t.byID, f.id)
	}
	if t.byPath[f.path] == f {
		delete(t.byPath, f.path)
	}
	f.stream.refs--
	if f.stream.refs == 0 {
		delete(t.streams, f.labels.Hash())
	}
	t.releasePathMetricsLocked(f.ent.Path)
	t.mu.Unlock()
	t.posMu.Lock()
	if f.ent.file == f {
		f.ent.file = nil
	}
	t.dirty = true
	t.posMu.Unlock()
}

// Stats is a snapshot for tests and the agent's status.
type Stats struct {
	Files, Open int
}

// Stats returns the number of followed and open files.
func (t *Tailer) Stats() Stats {
	t.mu.Lock()
	defer t.mu.Unlock()
	return Stats{Files: len(t.files), Open: t.open}
}

// file is a followed file. Fields under "worker" belong to the one worker
// servicing it (busy); the rest are guarded by Tailer.mu.
type file struct {
	ent    *entry
	labels labels.Labels
	stream *streamClock
	pm     *pathMetrics

	// guarded by Tailer.mu
	id                        fileID
	path                      string
	fd                        *os.File
	rotated, deleted          bool
	queued, busy, again, gone bool

	// read by the poller
	offset        atomic.Int64 // == readOff
	bufferedSince atomic.Int64 // unix ns of the builder's first entry, 0 if empty
	active        atomic.Int64 // unix ns of the last new data
	closeIdle     atomic.Bool

	// worker
	readOff   int64  // next byte to read
	lineStart int64  // start of the line being assembled (== readOff when partial is empty)
	partial   []byte // bytes of an unfinished line, at most MaxLineBytes
	overlong  bool   // the unfinished line exceeded MaxLineBytes: drop to its newline
	head      []byte // first bytes for the fingerprint, until fpMax
	headDone  bool
	win       []byte // up to tailMax bytes before readOff
	builder   *build.Builder
	// streamLevel is the level a level-like label of the stream gives
	// every line ("" for none).
	streamLevel string
	chunkStart  int64
	eof         bool
}

func (f *file) touch()                { f.active.Store(time.Now().UnixNano()) }
func (f *file) lastActive() time.Time { return time.Unix(0, f.active.Load()) }

// service is a worker's turn on one file: handle truncation, read new
// lines up to a fair share, cut chunks, and let go of drained or idle
// files.
func (t *Tailer) service(f *file, buf []byte) {
	t.mu.Lock()
	hasFD, rotated, deleted := f.fd != nil, f.rotated, f.deleted
	t.mu.Unlock()
	if f.closeIdle.Swap(false) && hasFD && !rotated && !deleted && f.builder.Entries() == 0 {
		if time.Since(f.lastActive()) >= t.opts.IdleTimeout {
			t.closeFD(f)
			return
		}
	}
	if !hasFD {
		if deleted {
			t.forget(f) // nothing left to read it by
			return
		}
		switch t.reopen(f) {
		case reopenLimit:
			return // the poll brings it back when a slot is free
		case reopenGone:
			if rotated {
				t.forget(f)
			}
			return
		}
	}
	fi, err := f.fd.Stat()
	if err != nil {
		t.m.readErrors.Inc()
		return
	}
	if fi.Size() < f.readOff || !t.intact(f, buf) {
		if t.truncated(f) {
			return // f is now the copy or gone; the new file is queued
		}
	}

	const quantum = 8 << 20 // bytes per turn, so one busy file cannot starve the rest
	read := 0
	f.eof = false
	for read < quantum {
		n, err := f.fd.ReadAt(buf, f.readOff)
		if n > 0 {
			t.consume(f, buf[:n])
			read += n
		}
		if err == io.EOF || (err == nil && n < len(buf)) {
			f.eof = true
			break
		}
		if err != nil {
			t.m.readErrors.Inc()
			t.log.Warn("tail: read failed", "path", f.path, "err", err)
			break
		}
	}
	if read > 0 {
		f.touch()
	}
	if f.builder.Full() || f.builder.Due(time.Now()) || (t.budget.Bytes() > t.opts.BufferBytes && f.builder.Entries() > 0) {
		t.cut(f)
	}
	if !f.eof {
		t.push(f)
		return
	}
	if (rotated || deleted) && time.Since(f.lastActive()) >= t.opts.DrainTimeout {
		// Drained: what is left of an unfinished last line will never be
		// finished now.
		t.flushPartial(f)
		t.forget(f)
	}
}

// intact checks that the bytes before the read offset are still the ones
// read there; a file truncated and rewritten past our offset between two
// looks fails this even though its size did not shrink.
func (t *Tailer) intact(f *file, buf []byte) bool {
	if len(f.win) == 0 {
		return true
	}
	n := len(f.win)
	b := buf[:n]
	m, _ := f.fd.ReadAt(b, f.readOff-int64(n))
	return m == n && string(b) == string(f.win)
}

// truncated handles a file whose content before the read offset is gone.
// With copytruncate the rest of the old content is in a copy next to it:
// the copy is read from the offset as this entry's continuation and the
// truncated file is followed anew. It reports whether f stopped being the
// reader of its path.
func (t *Tailer) truncated(f *file) bool {
	t.m.truncations.Inc()
	t.mu.Lock()
	path := f.path
	rotated := f.rotated || f.deleted
	t.mu.Unlock()
	if rotated {
		// A rotated file being drained was truncated: nothing sensible is
		// left to read.
		t.flushPartial(f)
		t.forget(f)
		return true
	}
	// Look for a copy holding what we did not read yet. The unfinished
	// line continues there too, so the copy is read from readOff.
	fd, cp := t.findCopy(f.ent, filepath.Dir(path), f.id, f.readOff, len(f.win), hashBytes(f.win))
	g := t.groupFor(path)
	if fd != nil {
		t.m.copyRotations.Inc()
		t.log.Info("tail: file truncated after being copied; reading the rest from the copy", "path", path, "copy", cp, "offset", f.readOff)
		fi, err := fd.Stat()
		if err == nil {
			cid := idOf(fi)
			t.mu.Lock()
			old := f.fd
			f.fd = fd
			delete(t.byID, f.id)
			if t.byPath[path] == f {
				delete(t.byPath, path)
			}
			f.id = cid
			f.path = cp
			f.rotated = true
			f.touch()
			t.byID[cid] = f
			t.mu.Unlock()
			old.Close()
			t.posMu.Lock()
			f.ent.Dev, f.ent.Ino = cid.dev, cid.ino
			t.dirty = true
			t.posMu.Unlock()
			if g != nil {
				t.discover(path, g, false)
			}
			t.push(f)
			return true
		}
		fd.Close()
	}
	// No copy: lines written between our last read and the truncation
	// are gone with it. Start a new generation of the file from 0.
	t.flushPartial(f)
	t.cut(f)
	t.posMu.Lock()
	f.ent.retired = true
	t.dirty = true
	t.posMu.Unlock()
	t.forget(f)
	if g != nil {
		t.discover(path, g, false)
	}
	return true
}

// consume splits data (read at f.readOff) into lines and adds them to the
// builder, cutting chunks as they fill.
func (t *Tailer) consume(f *file, data []byte) {
	base := f.readOff
	if !f.headDone && base == int64(len(f.head)) {
		f.head = append(f.head, data[:min(len(data), fpMax-len(f.head))]...)
		t.posMu.Lock()
		f.ent.FPLen, f.ent.FP = len(f.head), hashBytes(f.head)
		t.dirty = true
		t.posMu.Unlock()
		if len(f.head) >= fpMax {
			f.headDone, f.head = true, nil
		}
	}
	lines := bytes.Count(data, newline)
	if lines > 0 {
		if f.builder.Entries() == 0 {
			f.bufferedSince.Store(time.Now().UnixNano())
		}
		f.builder.Grow(len(data))
	}
	ts := f.stream.reserve(lines, time.Now().UnixNano())
	pos := 0
	for {
		j := bytes.IndexByte(data[pos:], '\n')
		if j < 0 {
			break
		}
		seg := data[pos : pos+j]
		var line []byte
		if len(f.partial) > 0 || f.overlong {
			f.partial = t.appendBounded(f, f.partial, seg)
			line = f.partial
		} else if len(seg) > t.opts.MaxLineBytes {
			t.m.linesTruncated.Inc()
			line = seg[:t.opts.MaxLineBytes]
		} else {
			line = seg
		}
		if n := len(line); n > 0 && line[n-1] == '\r' {
			line = line[:n-1]
		}
		if f.builder.Entries() == 0 {
			f.bufferedSince.Store(time.Now().UnixNano())
		}
		f.builder.Add(ts, line, t.metadata(f, line))
		ts++
		f.pm.lines.Inc()
		t.m.lines.Inc()
		f.partial = f.partial[:0]
		f.overlong = false
		pos += j + 1
		f.lineStart = base + int64(pos)
		if f.builder.Full() {
			t.cut(f)
		}
	}
	if rest := data[pos:]; len(rest) > 0 {
		f.partial = t.appendBounded(f, f.partial, rest)
	}
	if cap(f.partial) > 4*t.opts.MaxLineBytes || (len(f.partial) == 0 && cap(f.partial) > 64<<10) {
		f.partial = nil // do not keep a long line's buffer around
	}
	f.readOff = base + int64(len(data))
	f.offset.Store(f.readOff)
	f.pm.bytes.Add(len(data))
	t.m.bytes.Add(len(data))
	// Remember the bytes before readOff.
	if len(data) >= tailMax {
		f.win = append(f.win[:0], data[len(data)-tailMax:]...)
	} else {
		f.win = append(f.win, data...)
		if len(f.win) > tailMax {
			f.win = append(f.win[:0], f.win[len(f.win)-tailMax:]...)
		}
	}
}

// metadata is a line's structured metadata: its detected_level, in a
// shared set (no allocation per line), as the server's push path would
// add it (levels.Detect, with the stream's labels looked at once per
// file).
func (t *Tailer) metadata(f *file, line []byte) labels.Labels {
	if t.opts.NoLevels {
		return nil
	}
	if f.streamLevel != "" {
		return levels.Metadata(f.streamLevel)
	}
	return levels.Metadata(levels.FromLine(line))
}

// appendBounded adds seg to an unfinished line, keeping at most
// MaxLineBytes of it.
func (t *Tailer) appendBounded(f *file, dst, seg []byte) []byte {
	room := t.opts.MaxLineBytes - len(dst)
	if len(seg) > room {
		if !f.overlong {
			f.overlong = true
			t.m.linesTruncated.Inc()
		}
		seg = seg[:max(room, 0)]
	}
	return append(dst, seg...)
}

// flushPartial turns an unfinished last line into an entry: used when the
// file will not be read further (drained after rotation, truncated).
func (t *Tailer) flushPartial(f *file) {
	if len(f.partial) == 0 {
		return
	}
	if f.builder.Entries() == 0 {
		f.bufferedSince.Store(time.Now().UnixNano())
	}
	f.builder.Add(f.stream.reserve(1, time.Now().UnixNano()), f.partial, t.metadata(f, f.partial))
	f.pm.lines.Inc()
	t.m.lines.Inc()
	f.partial = f.partial[:0]
	f.overlong = false
	f.lineStart = f.readOff
}

// cut encodes the builder's lines and ships them tagged with the file
// range they cover; the position moves when the chunk is acknowledged.
func (t *Tailer) cut(f *file) {
	d := f.builder.Detach()
	if d == nil {
		return
	}
	f.bufferedSince.Store(0)
	end := f.lineStart
	tailLen, tail := t.tailBefore(f, end)
	e := f.ent
	t.posMu.Lock()
	n := e.nextChunk
	e.nextChunk++
	e.pending = append(e.pending, pendingChunk{n: n, end: end, tailLen: tailLen, tail: tail})
	tag := encodeTag(e, f.chunkStart, end, tailLen, tail)
	t.posMu.Unlock()
	f.chunkStart = end
	t.encodeQ <- encodeJob{d: d, tag: tag, ack: func() { t.acked(e, n) }, path: f.path}
}

// tailBefore hashes the bytes before end: from the window when end is the
// read offset, else from the file.
func (t *Tailer) tailBefore(f *file, end int64) (int, uint64) {
	if end == f.readOff && int64(len(f.win)) == min(end, tailMax) {
		return len(f.win), hashBytes(f.win)
	}
	t.mu.Lock()
	fd := f.fd
	t.mu.Unlock()
	n := int(min(end, tailMax))
	if fd == nil || n == 0 {
		return 0, hashBytes(nil)
	}
	b := make([]byte, n)
	if m, _ := fd.ReadAt(b, end-int64(n)); m != n {
		return 0, hashBytes(nil)
	}
	return n, hashBytes(b)
}
