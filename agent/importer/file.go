package importer

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"strconv"
	"sync"

	"github.com/logsift/logsift/agent/archive"
	"github.com/logsift/logsift/agent/detect"
	"github.com/logsift/logsift/pkg/chunk"
	"github.com/logsift/logsift/pkg/labels"
	"github.com/logsift/logsift/pkg/levels"
	"github.com/logsift/logsift/pkg/servicename"
)

// readMember imports one text file: it samples the first lines, detects,
// then streams every line through the record assembler into batches that
// the encoders turn into chunks.
func (imp *importer) readMember(ctx context.Context, s source, m *archive.Member, enc *encoders) error {
	settings, err := imp.opts.Overrides.For(m.Path)
	if err != nil {
		return err // validated up front, so this is a bug
	}
	if settings.Skip {
		imp.problem(Problem{File: m.Path, Reason: "skipped by detection rule " + fmt.Sprint(settings.Matched)})
		return nil
	}
	key := imp.stateKey(s, m, settings)
	if imp.state.isDone(key) {
		imp.mu.Lock()
		imp.resumed++
		imp.mu.Unlock()
		return nil
	}

	sp := newSplitter(m, detect.DefaultMaxRecordBytes, imp)
	defer sp.release()
	sample, _ := sp.sample(detect.SampleLines, detect.SampleBytes)
	prof := detect.Detect(sample, detect.FileInfo{Path: m.Path, ModTime: m.ModTime}, settings)

	host := imp.opts.Host
	if host == "" {
		host = prof.Host
	}
	lbls := append(imp.base.Copy(), labels.Label{Name: LabelFile, Value: m.Path})
	if host != "" {
		lbls = append(lbls, labels.Label{Name: LabelHost, Value: host})
	}
	lbls = servicename.Add(lbls.Sort(), imp.opts.ServiceNameLabels, imp.opts.Workspace)

	job := &fileJob{imp: imp, key: key, path: m.Path, labels: lbls, enc: enc}
	if !imp.opts.NoLevels && prof.Levels { // not level_field: none
		job.prof = prof
		// A level-like stream label decides every record's level; look
		// at the labels once, not per record.
		job.streamLevel, _ = levels.FromLabels(lbls, nil)
	}
	imp.mu.Lock()
	imp.files++
	imp.mu.Unlock()

	asm := detect.NewAssembler(prof, job.add)
	for _, l := range sample {
		if err := asm.Line(l); err != nil {
			return job.abort(ctx, err)
		}
	}
	if err := sp.feed(asm); err != nil {
		return job.abort(ctx, err)
	}
	if err := asm.Close(); err != nil {
		return job.abort(ctx, err)
	}
	if err := sp.readErr(); err != nil {
		// Cut short (corrupt data, a limit, cancellation): ship what was
		// read, but never record the file as done, so a re-run redoes it.
		// The archive walker reports the error.
		if cerr := ctx.Err(); cerr != nil {
			return job.abort(ctx, cerr)
		}
		job.markIncomplete()
	}
	return job.finish(ctx)
}

// stateKey identifies a file for resuming: its top-level file (path, size,
// modification time), its path inside, its declared size, and everything
// that changes its chunks (labels, detection overrides, chunk size, level
// and service name discovery).
func (imp *importer) stateKey(s source, m *archive.Member, st detect.Settings) string {
	h := sha256.New()
	loc := ""
	if st.Location != nil {
		loc = st.Location.String()
	}
	fmt.Fprintf(h, "%s\x00%d\x00%d\x00%s\x00%d\x00%s\x00%s\x00%s\x00%d\x00%s\x00%s\x00%d\x00%t\x00%q",
		s.abs, s.size, s.mtime.UnixNano(), m.Path, m.Size, imp.base.String(), imp.opts.Host,
		st.Timestamp, st.Year, loc, st.Multiline+"\x00"+st.LevelField, imp.chunkRaw,
		imp.opts.NoLevels, imp.opts.ServiceNameLabels)
	return hex.EncodeToString(h.Sum(nil))
}

// fileJob gathers one file's records into batches and tracks its chunks
// until all are acknowledged.
type fileJob struct {
	imp    *importer
	enc    *encoders
	key    string
	path   string
	labels labels.Labels
	prof   *detect.Profile // nil: no level detection
	// streamLevel is the level a level-like stream label gives every
	// record ("" for none).
	streamLevel string
	cur         *batch

	mu          sync.Mutex
	outstanding int  // batches handed to the encoders and not yet acknowledged
	finished    bool // all records are batched
	failed      bool
	entries     int64
	chunks      int
}

func (j *fileJob) add(r *detect.Record) error {
	b := j.cur
	if b == nil {
		b = getBatch(j)
		j.cur = b
	}
	level := j.streamLevel
	if j.prof != nil && level == "" {
		level = j.prof.Level(nil, r.Text)
	}
	b.add(r, level)
	if b.raw >= j.imp.chunkRaw {
		return j.send()
	}
	return nil
}

func (j *fileJob) send() error {
	b := j.cur
	j.cur = nil
	if b == nil {
		return nil
	}
	if len(b.recs) == 0 {
		putBatch(b)
		return nil
	}
	j.mu.Lock()
	j.outstanding++
	j.entries += int64(len(b.recs))
	j.chunks++
	j.mu.Unlock()
	return j.enc.submit(b)
}

// finish sends the last batch and records the file as done once every
// chunk is acknowledged.
func (j *fileJob) finish(ctx context.Context) error {
	if err := j.send(); err != nil {
		return j.abort(ctx, err)
	}
	j.mu.Lock()
	j.finished = true
	done := j.outstanding == 0 && !j.failed
	j.mu.Unlock()
	if done {
		j.imp.state.markDone(j.key, j.path)
	}
	return nil
}

func (j *fileJob) abort(ctx context.Context, err error) error {
	if b := j.cur; b != nil {
		j.cur = nil
		putBatch(b)
	}
	j.mu.Lock()
	j.failed = true
	j.mu.Unlock()
	if cerr := ctx.Err(); cerr != nil {
		return cerr
	}
	return err
}

// markIncomplete keeps the file from being recorded as done.
func (j *fileJob) markIncomplete() {
	j.mu.Lock()
	j.failed = true
	j.mu.Unlock()
}

// acked is called once per acknowledged chunk of the file.
func (j *fileJob) acked() {
	j.mu.Lock()
	j.outstanding--
	done := j.outstanding == 0 && j.finished && !j.failed
	j.mu.Unlock()
	if done {
		j.imp.state.markDone(j.key, j.path)
	}
}

// fail marks the file as not fully imported (a chunk could not be built).
func (j *fileJob) fail(reason string) {
	j.mu.Lock()
	j.failed = true
	j.outstanding--
	j.mu.Unlock()
	j.imp.problem(Problem{File: j.path, Reason: reason, Failed: true})
}

// record is a batched record: its text lives in the batch's arena.
type record struct {
	ts      int64
	off, n  int
	line    int
	level   string
	ownTime bool
}

// batch is the records of one future chunk. Batches are pooled: their
// arenas reach the chunk size once and are reused.
type batch struct {
	job     *fileJob
	recs    []record
	arena   []byte
	raw     int
	entries []chunk.Entry
	md      []labels.Label
	digits  []byte
}

// freeBatches keeps a few emptied batches for reuse; a channel rather than
// a sync.Pool, which a garbage collection would empty of the large arenas
// that are the point of reusing.
var freeBatches = make(chan *batch, 16)

func getBatch(j *fileJob) *batch {
	var b *batch
	select {
	case b = <-freeBatches:
	default:
		b = new(batch)
	}
	if want := j.imp.chunkRaw + 64<<10; cap(b.arena) < want {
		b.arena = make([]byte, 0, want)
	}
	b.job = j
	return b
}

func putBatch(b *batch) {
	b.job = nil
	b.recs, b.arena, b.raw = b.recs[:0], b.arena[:0], 0
	clear(b.entries)
	b.entries = b.entries[:0]
	clear(b.md)
	b.md, b.digits = b.md[:0], b.digits[:0]
	if cap(b.arena) > 64<<20 {
		return // grown by a huge record; let it go
	}
	select {
	case freeBatches <- b:
	default:
	}
}

func (b *batch) add(r *detect.Record, level string) {
	off := len(b.arena)
	b.arena = append(b.arena, r.Text...)
	b.recs = append(b.recs, record{ts: r.Time, off: off, n: len(r.Text), line: r.Line, level: level, ownTime: r.OwnTime})
	b.raw += len(r.Text)
}

// build turns the batch into chunk entries: lines point into the arena,
// and the metadata's line numbers share one string.
func (b *batch) build() []chunk.Entry {
	n := len(b.recs)
	b.digits = b.digits[:0]
	ends := make([]int, n)
	for i := range b.recs {
		b.digits = strconv.AppendInt(b.digits, int64(b.recs[i].line), 10)
		ends[i] = len(b.digits)
	}
	digits := string(b.digits)
	if cap(b.md) < 2*n {
		b.md = make([]labels.Label, 2*n)
	}
	md := b.md[:2*n]
	if cap(b.entries) < n {
		b.entries = make([]chunk.Entry, n)
	}
	ents := b.entries[:n]
	start := 0
	for i := range b.recs {
		r := &b.recs[i]
		k := 0
		m := md[2*i : 2*i : 2*i+2]
		if r.level != "" {
			m = append(m, labels.Label{Name: levels.Label, Value: r.level})
			k++
		}
		m = append(m, labels.Label{Name: "line", Value: digits[start:ends[i]]})
		start = ends[i]
		ents[i] = chunk.Entry{Timestamp: r.ts, Line: b.arena[r.off : r.off+r.n : r.off+r.n], Metadata: m}
	}
	b.entries = ents
	return ents
}

// splitter cuts a member's stream into lines. A line longer than max is
// handed out in pieces of max bytes, all but the first flagged as
// fragments. Lines and bytes are added to the importer's counters once per
// block read.
type splitter struct {
	r        io.Reader
	buf      []byte
	start    int
	end      int
	carry    []byte
	reset    bool // carry was handed out; clear it on the next call
	max      int
	fragNext bool // the next piece continues a cut line
	err      error
	zero     int // reads that returned nothing

	pending     []byte
	pendingFrag bool
	hasPending  bool

	lines, bytes int64 // not yet added to the counters
	imp          *importer
}

// readBufs recycles the splitters' read buffers: an import of many small
// files would otherwise allocate one per file.
var readBufs = sync.Pool{New: func() any { b := make([]byte, 256<<10); return &b }}

func newSplitter(r io.Reader, max int, imp *importer) *splitter {
	return &splitter{r: r, buf: *readBufs.Get().(*[]byte), max: max, imp: imp}
}

// release returns the read buffer; the splitter must not be used after.
func (s *splitter) release() {
	b := s.buf[:cap(s.buf)]
	s.buf = nil
	if len(b) == 256<<10 {
		readBufs.Put(&b)
	}
}

// next returns the next line or piece of a line, valid until the next call.
func (s *splitter) next() ([]byte, bool, error) {
	if s.hasPending {
		s.hasPending = false
		return s.pending, s.pendingFrag, nil
	}
	if s.reset {
		s.carry, s.reset = s.carry[:0], false
	}
	for {
		if s.start < s.end {
			seg := s.buf[s.start:s.end]
			i := bytes.IndexByte(seg, '\n')
			if i >= 0 && len(s.carry)+i <= s.max {
				l := seg[:i]
				if len(s.carry) > 0 {
					s.carry = append(s.carry, l...)
					l, s.reset = s.carry, true
				}
				s.start += i + 1
				frag := s.fragNext
				s.fragNext = false
				if frag && len(l) == 0 {
					continue // the cut fell just before the newline
				}
				if !frag {
					s.lines++
				}
				return l, frag, nil
			}
			take := len(seg)
			if i >= 0 {
				take = i
			}
			take = min(take, s.max-len(s.carry))
			s.carry = append(s.carry, seg[:take]...)
			s.start += take
			if len(s.carry) >= s.max {
				frag := s.fragNext
				s.fragNext, s.reset = true, true
				if !frag {
					s.lines++
				}
				return s.carry, frag, nil
			}
			continue
		}
		if s.err != nil {
			s.flushCounts()
			if len(s.carry) > 0 {
				frag := s.fragNext
				s.fragNext, s.reset = false, true
				if !frag {
					s.lines++
					s.flushCounts()
				}
				return s.carry, frag, nil
			}
			// A read error ends the member like EOF; readMember checks
			// readErr, and the archive walker reports it.
			return nil, false, io.EOF
		}
		s.flushCounts()
		n, err := s.r.Read(s.buf)
		s.start, s.end = 0, n
		s.bytes += int64(n)
		if err != nil {
			s.err = err
		} else if n == 0 {
			if s.zero++; s.zero > 100 {
				s.err = io.ErrNoProgress
			}
		}
	}
}

// readErr is the error that ended the stream, or nil at a clean end.
func (s *splitter) readErr() error {
	if s.err == io.EOF {
		return nil
	}
	return s.err
}

func (s *splitter) flushCounts() {
	if s.imp != nil && (s.lines != 0 || s.bytes != 0) {
		s.imp.lines.Add(s.lines)
		s.imp.bytes.Add(s.bytes)
	}
	s.lines, s.bytes = 0, 0
}

// sample reads up to n lines or maxBytes, copied, for detection. It stops
// at a fragment, which the next call of next returns again.
func (s *splitter) sample(n, maxBytes int) ([][]byte, error) {
	var out [][]byte
	total := 0
	for len(out) < n && total < maxBytes {
		l, frag, err := s.next()
		if err != nil {
			return out, err
		}
		if frag {
			s.pending = append(s.pending[:0], l...)
			s.pendingFrag, s.hasPending = true, true
			return out, nil
		}
		out = append(out, bytes.Clone(l))
		total += len(l)
	}
	return out, nil
}

// feed passes every remaining line to the assembler.
func (s *splitter) feed(a *detect.Assembler) error {
	for {
		l, frag, err := s.next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if frag {
			err = a.Fragment(l)
		} else {
			err = a.Line(l)
		}
		if err != nil {
			return err
		}
	}
}
