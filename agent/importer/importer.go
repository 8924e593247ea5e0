// Package importer is the logic of `logsift-agent import` and `explain`: it
// reads folders, files and archives as streams (package archive), detects
// each file's timestamps, records and levels (package detect), cuts each
// file's records into chunks deterministically from the start of the file,
// and ships them through a ship.Shipper, returning only once the server has
// acknowledged every chunk. Fully acknowledged files are recorded in a state
// file so that an interrupted import resumes where it stopped, and
// re-importing the same files yields the same chunk IDs, which the server
// stores once.
package importer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/logsift/logsift/agent/archive"
	"github.com/logsift/logsift/agent/detect"
	"github.com/logsift/logsift/agent/ship"
	"github.com/logsift/logsift/pkg/chunk"
	"github.com/logsift/logsift/pkg/labels"
	"github.com/logsift/logsift/pkg/servicename"
)

// Options configure one import.
type Options struct {
	// Paths are the files, folders and archives to import.
	Paths []string
	// Workspace names the workspace; it becomes the workspace label.
	Workspace string
	// Host, when set, is the host label of every stream; otherwise a host
	// is taken from syslog lines where one host wrote the file.
	Host string
	// Labels are added to every stream. Keep them few and low-cardinality.
	// A "host" label acts as Host; workspace, file and source are the
	// importer's own.
	Labels map[string]string
	// StateDir holds the resume state (<workspace>.json); empty disables
	// resuming.
	StateDir string
	// Progress receives a progress bar (when it is a terminal) or a plain
	// progress line every few seconds, and one line per problem; nil for
	// none.
	Progress io.Writer
	// Overrides correct detection per path glob.
	Overrides detect.Overrides
	// NoLevels leaves entries without the detected_level structured
	// metadata that they otherwise get as Loki's discover_log_levels gives
	// it (the agent's discover_log_levels: false).
	NoLevels bool
	// ServiceNameLabels are the labels whose value, the first one a stream
	// has, becomes its service_name label, as Loki's discover_service_name
	// does; nil means Loki's list (servicename.DefaultLabels). A stream
	// with none of them (the usual case: imported streams carry workspace,
	// file, source and host) is named after the workspace, because the
	// workspace is the service a support engineer investigates; Loki's
	// "unknown_service" would lump every workspace together in Drilldown.
	ServiceNameLabels []string
	// NoServiceName leaves streams without a service_name label (the
	// agent's discover_service_name: []).
	NoServiceName bool
	// Limits bound archive reading (zip bombs, nesting, spooling).
	Limits archive.Limits

	// Workers is how many top-level files are read and parsed at once,
	// and how many chunks are encoded at once; 0 means GOMAXPROCS.
	Workers int
	// ChunkBytes is the raw size (line bytes) at which a file's records
	// are cut into a chunk; 0 means DefaultChunkBytes.
	ChunkBytes int
	// Chunk tunes the chunk encoder (block size, codec).
	Chunk chunk.Options
	// Logger receives problems and the summary as structured logs; nil
	// means slog.Default().
	Logger *slog.Logger
}

// DefaultChunkBytes is the default raw size of a chunk cut from a file.
const DefaultChunkBytes = 2 << 20

// Summary tells what an import did.
type Summary struct {
	Files    int // files and archive members imported (fully or in part)
	Skipped  int // files and members skipped (binary, hostile, override, limits)
	Failed   int // files and members that failed partway (corrupt, unreadable)
	Resumed  int // files left out because an earlier run imported them fully
	Bytes    int64
	Lines    int64
	Entries  int64
	Chunks   int
	Duration time.Duration
	Problems []Problem
}

// Problem is a file or member that was skipped or failed, and why.
type Problem struct {
	File   string
	Reason string
	Failed bool // failed partway, as opposed to skipped
}

func (p Problem) String() string { return p.File + ": " + p.Reason }

// Reserved stream labels, set by the importer itself.
const (
	LabelWorkspace = "workspace"
	LabelFile      = "file"
	LabelSource    = "source"
	LabelHost      = "host"
)

// Run imports opts.Paths into the workspace through sink and returns once
// every chunk is acknowledged (or ctx ends). Problems with single files
// do not stop the import; they are listed in the summary.
func Run(ctx context.Context, opts Options, sink ship.Shipper) (*Summary, error) {
	i, err := Prepare(opts, sink)
	if err != nil {
		return nil, err
	}
	return i.Run(ctx)
}

// Import is a prepared import: options checked and sources listed, so
// that its totals are known (and can be announced to the server) before
// anything is read. Progress and Problems may be called from any goroutine
// while Run runs.
type Import struct {
	imp  *importer
	srcs []source
	ran  atomic.Bool
}

// Prepare checks the options and lists the sources, expanding folders.
func Prepare(opts Options, sink ship.Shipper) (*Import, error) {
	imp, err := newImport(opts, sink)
	if err != nil {
		return nil, err
	}
	srcs, err := listSources(opts.Paths, imp.problem)
	if err != nil {
		return nil, err
	}
	for _, s := range srcs {
		imp.prog.totalBytes += s.size
	}
	imp.prog.totalFiles = len(srcs)
	return &Import{imp: imp, srcs: srcs}, nil
}

// Planned returns the number of top-level files (folders expanded) and
// their total size on disk.
func (i *Import) Planned() (files int, bytes int64) {
	return i.imp.prog.totalFiles, i.imp.prog.totalBytes
}

// Run imports the prepared sources and returns once every chunk is
// acknowledged (or ctx ends: then with context.Cause(ctx) as error). It
// runs once.
func (i *Import) Run(ctx context.Context) (*Summary, error) {
	if !i.ran.CompareAndSwap(false, true) {
		return nil, errors.New("import: Run called twice")
	}
	imp := i.imp
	start := time.Now()
	imp.prog.start(imp.opts.Progress)
	err := imp.run(ctx, i.srcs)
	imp.prog.stop()
	sum := imp.summary(time.Since(start))
	if serr := imp.state.save(); serr != nil && err == nil {
		err = serr
	}
	imp.logSummary(sum, err)
	return sum, err
}

// Progress is a snapshot of an import's counters, all absolute.
type Progress struct {
	Files     int64 // top-level files (folders expanded)
	FilesDone int64 // top-level files read to their end
	Bytes     int64 // their size on disk
	BytesDone int64 // bytes read from them (compressed bytes for archives), at most Bytes
	Lines     int64 // lines read
	Entries   int64 // entries (records) shipped
	Chunks    int64 // chunks acknowledged by the server
	Problems  int   // files and members skipped or failed so far
}

// Progress returns the counters now.
func (i *Import) Progress() Progress {
	imp := i.imp
	imp.mu.Lock()
	problems := len(imp.problems)
	imp.mu.Unlock()
	total := imp.prog.totalBytes
	return Progress{
		Files:     int64(imp.prog.totalFiles),
		FilesDone: imp.prog.filesDone.Load(),
		Bytes:     total,
		BytesDone: min(imp.prog.readBytes.Load(), total),
		Lines:     imp.lines.Load(),
		Entries:   imp.entries.Load(),
		Chunks:    imp.prog.acked.Load(),
		Problems:  problems,
	}
}

// Problems returns the problems reported so far, from the from-th on, in
// the order they were found.
func (i *Import) Problems(from int) []Problem {
	imp := i.imp
	imp.mu.Lock()
	defer imp.mu.Unlock()
	if from < 0 || from >= len(imp.problems) {
		return nil
	}
	return append([]Problem(nil), imp.problems[from:]...)
}

// Note prints a line on the progress output (above the bar on a
// terminal), for what the caller of an import has to say about it.
func (i *Import) Note(format string, args ...any) {
	i.imp.prog.printLine(fmt.Sprintf(format, args...))
}

type importer struct {
	opts     Options
	sink     ship.Shipper
	log      *slog.Logger
	base     labels.Labels // workspace, source and user labels
	state    *state
	prog     *progress
	workers  int
	chunkRaw int

	mu       sync.Mutex
	problems []Problem
	files    int
	resumed  int

	lines, entries, bytes atomic.Int64
	chunks                atomic.Int64
}

func newImport(opts Options, sink ship.Shipper) (*importer, error) {
	if opts.Workspace == "" {
		return nil, errors.New("import: a workspace name is required")
	}
	if sink == nil {
		return nil, errors.New("import: no shipper")
	}
	if err := opts.Overrides.Validate(); err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	base := labels.Labels{{Name: LabelWorkspace, Value: opts.Workspace}, {Name: LabelSource, Value: "import"}}
	for k, v := range opts.Labels {
		switch k {
		case LabelWorkspace, LabelFile, LabelSource:
			return nil, fmt.Errorf("import: label %q is set by the importer", k)
		case LabelHost:
			if opts.Host == "" {
				opts.Host = v
			}
			continue
		}
		if !labels.ValidName(k) {
			return nil, fmt.Errorf("import: invalid label name %q", k)
		}
		base = append(base, labels.Label{Name: k, Value: v})
	}
	base = base.Sort()
	if err := base.Validate(); err != nil {
		return nil, fmt.Errorf("import: labels: %w", err)
	}
	if opts.ServiceNameLabels == nil {
		opts.ServiceNameLabels = servicename.DefaultLabels
	}
	if opts.NoServiceName {
		opts.ServiceNameLabels = nil
	}
	imp := &importer{opts: opts, sink: sink, base: base, workers: opts.Workers, chunkRaw: opts.ChunkBytes}
	if imp.workers <= 0 {
		imp.workers = runtime.GOMAXPROCS(0)
	}
	if imp.chunkRaw <= 0 {
		imp.chunkRaw = DefaultChunkBytes
	}
	imp.log = opts.Logger
	if imp.log == nil {
		imp.log = slog.Default()
	}
	st, err := loadState(opts.StateDir, opts.Workspace)
	if err != nil {
		return nil, err
	}
	imp.state = st
	imp.prog = &progress{imp: imp, w: opts.Progress}
	return imp, nil
}

// source is one top-level file to read.
type source struct {
	abs    string // absolute path on disk
	name   string // path shown and used as the file label
	prefix string // prefix of its member paths when it is an archive
	size   int64
	mtime  time.Time
}

// listSources expands folders into their regular files (sorted, so that
// runs are repeatable), skipping symlinks and special files.
func listSources(paths []string, problem func(Problem)) ([]source, error) {
	if len(paths) == 0 {
		return nil, errors.New("import: no paths given")
	}
	var out []source
	for _, p := range paths {
		abs, err := filepath.Abs(p)
		if err != nil {
			return nil, fmt.Errorf("import: %s: %w", p, err)
		}
		fi, err := os.Stat(abs)
		if err != nil {
			return nil, fmt.Errorf("import: %w", err)
		}
		if !fi.IsDir() {
			if !fi.Mode().IsRegular() {
				return nil, fmt.Errorf("import: %s is not a regular file or folder", p)
			}
			out = append(out, source{abs: abs, name: strings.ToValidUTF8(filepath.Base(abs), "\uFFFD"), size: fi.Size(), mtime: fi.ModTime()})
			continue
		}
		err = filepath.WalkDir(abs, func(path string, d fs.DirEntry, err error) error {
			rel, _ := filepath.Rel(abs, path)
			// File names on disk need not be UTF-8; labels must be.
			rel = strings.ToValidUTF8(filepath.ToSlash(rel), "\uFFFD")
			if err != nil {
				problem(Problem{File: rel, Reason: fmt.Sprintf("unreadable: %v", err), Failed: true})
				if d != nil && d.IsDir() {
					return fs.SkipDir
				}
				return nil
			}
			switch t := d.Type(); {
			case t.IsDir():
				return nil
			case t&fs.ModeSymlink != 0:
				problem(Problem{File: rel, Reason: "symbolic link; skipped (links are not followed out of the imported folder)"})
				return nil
			case !t.IsRegular():
				problem(Problem{File: rel, Reason: "not a regular file; skipped"})
				return nil
			}
			fi, err := d.Info()
			if err != nil {
				problem(Problem{File: rel, Reason: fmt.Sprintf("unreadable: %v", err), Failed: true})
				return nil
			}
			out = append(out, source{abs: path, name: rel, prefix: rel, size: fi.Size(), mtime: fi.ModTime()})
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("import: %s: %w", p, err)
		}
	}
	return out, nil
}

func (imp *importer) problem(p Problem) {
	imp.mu.Lock()
	imp.problems = append(imp.problems, p)
	imp.mu.Unlock()
	imp.prog.printProblem(p)
	imp.log.Warn("import: file not imported", "file", p.File, "reason", p.Reason, "failed", p.Failed)
}

// run reads the sources on a pool of workers, encodes and ships on
// another, then waits for every acknowledgement.
func (imp *importer) run(ctx context.Context, srcs []source) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	enc := newEncoders(ctx, imp, cancel)
	next := make(chan source)
	var wg sync.WaitGroup
	for range min(imp.workers, max(len(srcs), 1)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for s := range next {
				if err := imp.readSource(ctx, s, enc); err != nil {
					cancel(err)
				}
			}
		}()
	}
feed:
	for _, s := range srcs {
		select {
		case next <- s:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	enc.close()
	if err := context.Cause(ctx); err != nil {
		return err
	}
	if err := imp.sink.Flush(ctx); err != nil {
		return fmt.Errorf("import: waiting for acknowledgements: %w", err)
	}
	// Every chunk is acknowledged; acks of the last files may still be
	// recording them as done.
	enc.waitAcks()
	return nil
}

// readSource walks one top-level file.
func (imp *importer) readSource(ctx context.Context, s source, enc *encoders) error {
	f, err := os.Open(s.abs)
	if err != nil {
		imp.problem(Problem{File: s.name, Reason: fmt.Sprintf("cannot open: %v", err), Failed: true})
		return nil
	}
	defer f.Close()
	cf := &countingFile{f: f, n: &imp.prog.readBytes}
	src := archive.Source{File: cf, Size: s.size, Name: s.name, Prefix: s.prefix, ModTime: s.mtime}
	err = archive.Walk(ctx, src, imp.opts.Limits, func(m *archive.Member) error {
		return imp.readMember(ctx, s, m, enc)
	}, func(p archive.Problem) {
		imp.problem(Problem{File: p.Path, Reason: p.Reason, Failed: p.Failed})
	})
	imp.prog.filesDone.Add(1)
	if err != nil && ctx.Err() == nil {
		return err
	}
	return nil
}

// countingFile counts the bytes read from a top-level file for progress
// (compressed bytes for archives, whose size is the known total).
type countingFile struct {
	f *os.File
	n *atomic.Int64
}

func (c *countingFile) Read(p []byte) (int, error) {
	n, err := c.f.Read(p)
	c.n.Add(int64(n))
	return n, err
}

func (c *countingFile) ReadAt(p []byte, off int64) (int, error) {
	n, err := c.f.ReadAt(p, off)
	c.n.Add(int64(n))
	return n, err
}

func (imp *importer) summary(d time.Duration) *Summary {
	imp.mu.Lock()
	defer imp.mu.Unlock()
	s := &Summary{
		Files:    imp.files,
		Resumed:  imp.resumed,
		Bytes:    imp.bytes.Load(),
		Lines:    imp.lines.Load(),
		Entries:  imp.entries.Load(),
		Chunks:   int(imp.chunks.Load()),
		Duration: d,
		Problems: append([]Problem(nil), imp.problems...),
	}
	sort.SliceStable(s.Problems, func(i, j int) bool { return s.Problems[i].File < s.Problems[j].File })
	for _, p := range s.Problems {
		if p.Failed {
			s.Failed++
		} else {
			s.Skipped++
		}
	}
	return s
}

func (imp *importer) logSummary(s *Summary, err error) {
	imp.log.Info("import finished", "workspace", imp.opts.Workspace, "files", s.Files, "skipped", s.Skipped,
		"failed", s.Failed, "resumed", s.Resumed, "bytes", s.Bytes, "lines", s.Lines, "entries", s.Entries,
		"chunks", s.Chunks, "duration", s.Duration.Round(time.Millisecond), "err", err)
}

// WriteSummary prints a summary for people.
func (s *Summary) WriteSummary(w io.Writer) error {
	rate := 0.0
	if s.Duration > 0 {
		rate = float64(s.Bytes) / s.Duration.Seconds()
	}
	_, err := fmt.Fprintf(w, "imported %d files: %s, %d lines, %d entries in %d chunks, in %s (%s/s)\n",
		s.Files, humanBytes(s.Bytes), s.Lines, s.Entries, s.Chunks, s.Duration.Round(time.Millisecond), humanBytes(int64(rate)))
	if err != nil {
		return err
	}
	if s.Resumed > 0 {
		fmt.Fprintf(w, "%d files were already imported by an earlier run and left out\n", s.Resumed)
	}
	if s.Skipped+s.Failed > 0 {
		fmt.Fprintf(w, "%d skipped, %d failed:\n", s.Skipped, s.Failed)
		for _, p := range s.Problems {
			tag := "skipped"
			if p.Failed {
				tag = "failed "
			}
			fmt.Fprintf(w, "  %s %s: %s\n", tag, p.File, p.Reason)
		}
	}
	return nil
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
