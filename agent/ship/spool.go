package ship

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/VictoriaMetrics/metrics"
)

// Options configure a Spool. Zero values mean the defaults.
type Options struct {
	// Dir holds the spool's segment files. Required.
	Dir string
	// MaxBytes bounds the segment files on disk; Ship blocks while a new
	// chunk would not fit. Default 1 GiB.
	MaxBytes int64
	// SegmentBytes is the size at which a new segment file is started;
	// default 16 MiB. A segment is deleted once all its chunks are settled.
	SegmentBytes int64
	// SyncInterval is how long the writer gathers chunks before one fsync
	// makes them all durable (group commit); default 10ms.
	SyncInterval time.Duration
	// CommitInterval is how often settled segments are deleted, after
	// the commit hook has run; default 1s.
	CommitInterval time.Duration
	// DeadLetterDir receives chunks the server rejected for good, each with
	// a .reason file; default Dir/../dead-letter.
	DeadLetterDir string
	// DeadLetterMaxBytes bounds the dead-letter folder; rejected chunks
	// beyond it are dropped (and counted). Default 256 MiB.
	DeadLetterMaxBytes int64
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Metrics receives the spool's and outputs' metrics; nil means the
	// default set (what the agent's /metrics serves).
	Metrics *metrics.Set
}

func (o *Options) setDefaults() {
	if o.MaxBytes <= 0 {
		o.MaxBytes = 1 << 30
	}
	if o.SegmentBytes <= 0 {
		o.SegmentBytes = 16 << 20
	}
	if o.SyncInterval <= 0 {
		o.SyncInterval = 10 * time.Millisecond
	}
	if o.CommitInterval <= 0 {
		o.CommitInterval = time.Second
	}
	if o.DeadLetterDir == "" {
		o.DeadLetterDir = filepath.Join(filepath.Dir(filepath.Clean(o.Dir)), "dead-letter")
	}
	if o.DeadLetterMaxBytes <= 0 {
		o.DeadLetterMaxBytes = 256 << 20
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Metrics == nil {
		o.Metrics = metrics.GetDefaultSet()
	}
}

// Segment file layout: an 8-byte header (magic, version, 3 reserved bytes),
// then records: payload length (u32 LE), CRC32C of the payload (u32 LE),
// payload = uvarint tag length, tag, chunk bytes. A torn record at the end
// of the last segment (a crash mid-write) is cut off on open.
const (
	segMagic      = "LSPL"
	segVersion    = 1
	segHeaderLen  = 8
	recHeaderLen  = 8
	maxRecordSize = 1 << 30
	segSuffix     = ".seg"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ErrClosed is returned by Ship after Close.
var ErrClosed = errors.New("ship: spool is closed")

// Spool is the agent's durable queue of chunks: a Shipper whose chunks an
// Output delivers. Create it with Open, let owners of recovered chunks
// claim them with Recover, then Start it.
type Spool struct {
	opts Options
	log  *slog.Logger
	m    *spoolMetrics

	mu       sync.Mutex
	segs     []*segment // by number; the last may be active
	active   *segment
	nextSeg  uint64
	nextID   uint64
	used     int64     // bytes of all segment files
	live     int       // records not settled, including unsynced ones
	unsynced []*record // written, not yet fsynced
	newSegs  bool      // a segment was created since the last directory sync
	pending  []*record // durable, waiting for the output, by id
	pause    time.Time // the output sends nothing before this
	closed   bool
	dropping bool          // Drop was called: nothing more is handed to the output
	spaceCh  chan struct{} // closed and replaced when space is freed
	availCh  chan struct{} // closed and replaced when pending gains records
	idleCh   chan struct{} // closed and replaced when live drops
	syncReq  chan struct{}
	hook     func() error
	deadUsed int64

	stop   chan struct{}
	bg     sync.WaitGroup
	cancel context.CancelFunc
	lock   *os.File // flock on Dir/LOCK
}

type segment struct {
	n    uint64
	path string
	f    *os.File
	size int64
	live int
}

type record struct {
	id        uint64
	seg       *segment
	off       int64 // of the chunk bytes in the segment
	size      int   // chunk bytes
	tag       []byte
	ack       func()
	durable   chan struct{}
	spooled   time.Time
	attempts  int
	recovered bool // found in the spool at Open
}

// Open opens (or creates) the spool in opts.Dir. Chunks left in it by an
// earlier run are queued for sending again, in their original order.
func Open(opts Options) (*Spool, error) {
	if opts.Dir == "" {
		return nil, errors.New("ship: spool directory not set")
	}
	opts.setDefaults()
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("create spool directory: %w", err)
	}
	s := &Spool{
		opts:    opts,
		log:     opts.Logger,
		nextSeg: 1,
		spaceCh: make(chan struct{}),
		availCh: make(chan struct{}),
		idleCh:  make(chan struct{}),
		syncReq: make(chan struct{}, 1),
		stop:    make(chan struct{}),
	}
	lock, err := lockDir(opts.Dir)
	if err != nil {
		return nil, err
	}
	s.lock = lock
	s.m = newSpoolMetrics(opts.Metrics, s)
	if err := s.recover(); err != nil {
		s.closeFiles()
		return nil, err
	}
	s.deadUsed = dirSize(opts.DeadLetterDir)
	s.bg.Add(2)
	go s.syncLoop()
	go s.commitLoop()
	return s, nil
}

// recover reads every segment, queues its records and removes leftovers.
func (s *Spool) recover() error {
	ents, err := os.ReadDir(s.opts.Dir)
	if err != nil {
		return fmt.Errorf("read spool directory: %w", err)
	}
	var nums []uint64
	for _, e := range ents {
		name := e.Name()
		if strings.HasSuffix(name, ".tmp") {
			_ = os.Remove(filepath.Join(s.opts.Dir, name))
			continue
		}
		if !strings.HasSuffix(name, segSuffix) {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSuffix(name, segSuffix), 10, 64)
		if err != nil {
			continue
		}
		nums = append(nums, n)
	}
	slices.Sort(nums)
	recovered := 0
	for i, n := range nums {
		seg, recs, err := s.readSegment(n, i == len(nums)-1)
		if err != nil {
			return err
		}
		s.nextSeg = n + 1
		if seg == nil {
			continue
		}
		s.segs = append(s.segs, seg)
		s.used += seg.size
		for _, r := range recs {
			r.id = s.nextID
			s.nextID++
			s.pending = append(s.pending, r)
			s.live++
			seg.live++
		}
		recovered += len(recs)
	}
	if recovered > 0 {
		s.log.Info("spool: resending chunks left by the previous run", "chunks", recovered, "bytes", s.used)
	}
	return nil
}

// readSegment validates one segment and returns its records. A damaged
// tail is cut off; damage elsewhere is logged and what follows it skipped,
// since a record's length can no longer be trusted.
func (s *Spool) readSegment(n uint64, last bool) (*segment, []*record, error) {
	path := filepath.Join(s.opts.Dir, segName(n))
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("open spool segment: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("stat spool segment: %w", err)
	}
	seg := &segment{n: n, path: path, f: f, size: st.Size()}
	br := bufio.NewReaderSize(f, 256<<10)
	var hdr [segHeaderLen]byte
	if _, err := io.ReadFull(br, hdr[:]); err != nil || string(hdr[:4]) != segMagic || hdr[4] != segVersion {
		// A segment created but never written (crash right after create)
		// or not ours: nothing in it can be trusted.
		s.log.Warn("spool: removing segment without a valid header", "path", path)
		f.Close()
		_ = os.Remove(path)
		return nil, nil, nil
	}
	var recs []*record
	off := int64(segHeaderLen)
	var rh [recHeaderLen]byte
	payload := make([]byte, 0, 64<<10)
	for {
		if _, err := io.ReadFull(br, rh[:]); err != nil {
			if err != io.EOF {
				s.cutSegment(seg, off, last, "torn record header")
			}
			break
		}
		size := binary.LittleEndian.Uint32(rh[:])
		sum := binary.LittleEndian.Uint32(rh[4:])
		if size == 0 || size > maxRecordSize || off+recHeaderLen+int64(size) > seg.size {
			s.cutSegment(seg, off, last, "record length past the end")
			break
		}
		if cap(payload) < int(size) {
			payload = make([]byte, size)
		}
		payload = payload[:size]
		if _, err := io.ReadFull(br, payload); err != nil {
			s.cutSegment(seg, off, last, "torn record")
			break
		}
		if crc32.Checksum(payload, castagnoli) != sum {
			s.cutSegment(seg, off, last, "record checksum mismatch")
			break
		}
		tagLen, w := binary.Uvarint(payload)
		if w <= 0 || tagLen > uint64(len(payload)-w) {
			s.cutSegment(seg, off, last, "bad tag length")
			break
		}
		tag := slices.Clone(payload[w : w+int(tagLen)])
		body := off + recHeaderLen + int64(w) + int64(tagLen)
		recs = append(recs, &record{
			seg: seg, off: body, size: int(off + recHeaderLen + int64(size) - body),
			tag: tag, durable: closedChan, spooled: time.Now(), recovered: true,
		})
		off += recHeaderLen + int64(size)
	}
	if len(recs) == 0 {
		f.Close()
		_ = os.Remove(path)
		return nil, nil, nil
	}
	return seg, recs, nil
}

func (s *Spool) cutSegment(seg *segment, off int64, last bool, why string) {
	if !last {
		s.log.Error("spool: segment is damaged before its end; the chunks after the damage are lost", "path", seg.path, "offset", off, "reason", why)
		return
	}
	if err := seg.f.Truncate(off); err != nil {
		s.log.Warn("spool: cutting torn tail", "path", seg.path, "err", err)
		return
	}
	seg.size = off
}

var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

func segName(n uint64) string { return fmt.Sprintf("%016d%s", n, segSuffix) }

// Recover lets the owner of each chunk left by an earlier run claim it by
// its tag: claim returns the ack callback for that chunk (nil for none).
// It must be called before Start; chunks are offered in spool order.
// Syncing and committing run from Open on, so Ship works before Start;
// only sending waits for Start.
func (s *Spool) Recover(claim func(tag []byte) (ack func())) {
	s.mu.Lock()
	recs := slices.Clone(s.pending)
	s.mu.Unlock()
	for _, r := range recs {
		if r.recovered && len(r.tag) > 0 {
			r.ack = claim(r.tag)
		}
	}
}

// SetCommitHook installs fn to run before settled segments are deleted.
// The tailer saves its positions there: once a chunk's file is gone from
// the spool, the positions file must already say its lines were delivered.
// A failing hook keeps the segments for the next try.
func (s *Spool) SetCommitHook(fn func() error) {
	s.mu.Lock()
	s.hook = fn
	s.mu.Unlock()
}

// Start begins sending through out (nil: keep everything in the spool).
func (s *Spool) Start(out Output) {
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	if out != nil {
		s.bg.Add(1)
		go func() {
			defer s.bg.Done()
			out.run(ctx, s)
		}()
	}
}

// Ship puts chunk in the spool and returns once it is durable there.
func (s *Spool) Ship(ctx context.Context, chunk []byte, ack func()) error {
	r, err := s.enqueue(ctx, chunk, nil, ack)
	if err != nil {
		return err
	}
	select {
	case <-r.durable:
		return nil
	case <-ctx.Done():
		// The chunk is queued and will still be sent and acknowledged.
		return ctx.Err()
	}
}

// ShipTagged puts chunk in the spool with an opaque tag, which Recover hands
// back after a restart, and returns without waiting for the fsync: the
// chunk is sent only once durable, and one lost in a crash before that was
// never sent, so its lines are simply read again. It blocks while the spool
// is full.
func (s *Spool) ShipTagged(ctx context.Context, chunk, tag []byte, ack func()) error {
	_, err := s.enqueue(ctx, chunk, tag, ack)
	return err
}

func (s *Spool) enqueue(ctx context.Context, chunk, tag []byte, ack func()) (*record, error) {
	if len(chunk) == 0 {
		return nil, errors.New("ship: empty chunk")
	}
	payloadLen := binary.PutUvarint(make([]byte, binary.MaxVarintLen64), uint64(len(tag))) + len(tag) + len(chunk)
	if payloadLen > maxRecordSize {
		return nil, fmt.Errorf("ship: chunk of %d bytes is too large for the spool", len(chunk))
	}
	need := int64(recHeaderLen + payloadLen)
	s.mu.Lock()
	var waitStart time.Time
	for !s.closed && s.live > 0 && s.used+need+segHeaderLen > s.opts.MaxBytes {
		// Full: wait for acknowledgements to free a segment. With nothing
		// live, go ahead even over the limit so one huge chunk cannot
		// block forever.
		if waitStart.IsZero() {
			waitStart = time.Now()
			s.m.fullWaits.Inc()
		}
		ch := s.spaceCh
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			s.m.fullSeconds.Add(time.Since(waitStart).Seconds())
			return nil, ctx.Err()
		}
		s.mu.Lock()
	}
	if !waitStart.IsZero() {
		s.m.fullSeconds.Add(time.Since(waitStart).Seconds())
	}
	if s.closed {
		s.mu.Unlock()
		return nil, ErrClosed
	}
	defer s.mu.Unlock()
	if s.active == nil || (s.active.size+need > s.opts.SegmentBytes && s.active.size > segHeaderLen) {
		if err := s.rollLocked(); err != nil {
			return nil, err
		}
	}
	seg := s.active
	buf := make([]byte, recHeaderLen, need)
	buf = binary.AppendUvarint(buf, uint64(len(tag)))
	buf = append(buf, tag...)
	body := int64(len(buf))
	buf = append(buf, chunk...)
	binary.LittleEndian.PutUint32(buf, uint32(len(buf)-recHeaderLen))
	binary.LittleEndian.PutUint32(buf[4:], crc32.Checksum(buf[recHeaderLen:], castagnoli))
	if _, err := seg.f.WriteAt(buf, seg.size); err != nil {
		_ = seg.f.Truncate(seg.size)
		return nil, fmt.Errorf("ship: write spool segment: %w", err)
	}
	r := &record{
		id: s.nextID, seg: seg, off: seg.size + body, size: len(chunk),
		tag: slices.Clone(tag), ack: ack, durable: make(chan struct{}), spooled: time.Now(),
	}
	s.nextID++
	seg.size += int64(len(buf))
	seg.live++
	s.used += int64(len(buf))
	s.live++
	s.unsynced = append(s.unsynced, r)
	s.m.spooled.Inc()
	s.m.spooledBytes.Add(len(chunk))
	select {
	case s.syncReq <- struct{}{}:
	default:
	}
	return r, nil
}

// rollLocked starts a new active segment.
func (s *Spool) rollLocked() error {
	path := filepath.Join(s.opts.Dir, segName(s.nextSeg))
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("ship: create spool segment: %w", err)
	}
	hdr := []byte{segMagic[0], segMagic[1], segMagic[2], segMagic[3], segVersion, 0, 0, 0}
	if _, err := f.Write(hdr); err != nil {
		f.Close()
		_ = os.Remove(path)
		return fmt.Errorf("ship: write spool segment: %w", err)
	}
	seg := &segment{n: s.nextSeg, path: path, f: f, size: segHeaderLen}
	s.nextSeg++
	s.segs = append(s.segs, seg)
	s.active = seg
	s.used += segHeaderLen
	s.newSegs = true
	return nil
}

// syncLoop is the group commit: it waits SyncInterval after the first
// unsynced write, fsyncs every segment written since, and hands the
// records to the output.
func (s *Spool) syncLoop() {
	defer s.bg.Done()
	for {
		select {
		case <-s.syncReq:
		case <-s.stop:
			s.syncOnce()
			return
		}
		select {
		case <-time.After(s.opts.SyncInterval):
		case <-s.stop:
		}
		for !s.syncOnce() {
			// fsync failed: the data may or may not be on disk. Keep the
			// records unsent and try again; the log says why.
			select {
			case <-time.After(time.Second):
			case <-s.stop:
				return
			}
		}
	}
}

func (s *Spool) syncOnce() bool {
	s.mu.Lock()
	recs := s.unsynced
	s.unsynced = nil
	newSegs := s.newSegs
	s.newSegs = false
	s.mu.Unlock()
	if len(recs) == 0 && !newSegs {
		return true
	}
	var segs []*segment
	for _, r := range recs {
		if len(segs) == 0 || segs[len(segs)-1] != r.seg {
			segs = append(segs, r.seg)
		}
	}
	var err error
	for _, seg := range segs {
		if e := seg.f.Sync(); e != nil && err == nil {
			err = fmt.Errorf("fsync %s: %w", seg.path, e)
		}
	}
	if err == nil && newSegs {
		err = syncDir(s.opts.Dir)
	}
	if err != nil {
		s.log.Error("spool: fsync failed; chunks wait and are retried", "err", err)
		s.mu.Lock()
		s.unsynced = append(recs, s.unsynced...)
		s.newSegs = s.newSegs || newSegs
		s.mu.Unlock()
		return false
	}
	s.m.fsyncs.Inc()
	s.mu.Lock()
	for _, r := range recs {
		close(r.durable)
	}
	s.pending = append(s.pending, recs...)
	s.notifyLocked(&s.availCh)
	s.mu.Unlock()
	return true
}

func (s *Spool) notifyLocked(ch *chan struct{}) {
	close(*ch)
	*ch = make(chan struct{})
}

// commitLoop deletes segments whose chunks are all settled, after the
// commit hook has recorded what that means for the chunks' owners.
func (s *Spool) commitLoop() {
	defer s.bg.Done()
	t := time.NewTicker(s.opts.CommitInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			s.commit()
		case <-s.stop:
			s.commit()
			return
		}
	}
}

func (s *Spool) commit() {
	s.mu.Lock()
	if s.active != nil && s.active.live == 0 && s.active.size > segHeaderLen {
		// Everything in the active segment is settled: retire it now rather
		// than when it fills, so a restart does not resend settled chunks.
		s.active = nil
	}
	var del []*segment
	for _, seg := range s.segs {
		if seg.live == 0 && seg != s.active {
			del = append(del, seg)
		}
	}
	hook := s.hook
	s.mu.Unlock()
	if len(del) == 0 {
		return
	}
	if hook != nil {
		if err := hook(); err != nil {
			s.log.Error("spool: commit hook failed; settled segments are kept until it succeeds", "err", err)
			return
		}
	}
	for _, seg := range del {
		seg.f.Close()
		if err := os.Remove(seg.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			s.log.Warn("spool: removing settled segment", "path", seg.path, "err", err)
		}
	}
	s.mu.Lock()
	s.segs = slices.DeleteFunc(s.segs, func(seg *segment) bool { return slices.Contains(del, seg) })
	for _, seg := range del {
		s.used -= seg.size
	}
	s.notifyLocked(&s.spaceCh)
	s.mu.Unlock()
}

// Flush waits until every chunk in the spool is settled or ctx ends.
func (s *Spool) Flush(ctx context.Context) error {
	for {
		s.mu.Lock()
		live, ch := s.live, s.idleCh
		s.mu.Unlock()
		if live == 0 {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("flush: %d chunks not yet acknowledged: %w", live, ctx.Err())
		}
	}
}

// Drop stops sending and discards every chunk the output has not taken
// yet, then waits until ctx ends for the answers to the chunks already in
// flight, whose acks run as usual; chunks requeued meanwhile (a broken
// stream, a retry) are discarded too. A cancelled import uses it: what
// the server stored stays, what it has not seen is not sent, and the
// spool does not resend it on the next run. It returns how many chunks
// were discarded; chunks still in flight when ctx ends stay in the spool.
func (s *Spool) Drop(ctx context.Context) (int, error) {
	s.mu.Lock()
	s.dropping = true
	s.mu.Unlock()
	dropped := 0
	for {
		s.mu.Lock()
		recs := s.pending
		s.pending = nil
		for _, r := range recs {
			r.seg.live--
			s.live--
		}
		if len(recs) > 0 {
			s.notifyLocked(&s.idleCh)
		}
		live, idle, avail := s.live, s.idleCh, s.availCh
		s.mu.Unlock()
		dropped += len(recs)
		s.m.dropped.Add(len(recs))
		if live == 0 {
			return dropped, nil
		}
		// Unsynced chunks become pending (avail) once durable; in-flight
		// ones are settled (idle) or requeued (avail).
		select {
		case <-idle:
		case <-avail:
		case <-ctx.Done():
			return dropped, fmt.Errorf("drop: %d chunks in flight not answered: %w", live, ctx.Err())
		}
	}
}

// Close stops the output, makes written chunks durable, deletes settled
// segments and closes the files. Unsettled chunks stay for the next run.
func (s *Spool) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.notifyLocked(&s.spaceCh)
	s.mu.Unlock()
	if s.cancel != nil {
		s.cancel()
	}
	close(s.stop)
	s.bg.Wait()
	s.closeFiles()
	return nil
}

func (s *Spool) closeFiles() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, seg := range s.segs {
		seg.f.Close()
	}
	if s.lock != nil {
		s.lock.Close() // releases the flock
		s.lock = nil
	}
}

// lockDir takes an exclusive flock on dir/LOCK: two processes appending to
// one spool would interleave their records.
func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, "LOCK"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock spool: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("spool %s is in use by another process (another agent or import on the same data_dir?): %w", dir, err)
	}
	return f, nil
}

// Stats is a snapshot of the spool.
type Stats struct {
	Chunks int   // not yet settled
	Bytes  int64 // segment files on disk
}

// Stats returns the spool's current size.
func (s *Spool) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Stats{Chunks: s.live, Bytes: s.used}
}

// next returns the oldest durable chunk waiting to be sent, blocking
// until there is one and any pause has passed.
func (s *Spool) next(ctx context.Context) (*record, error) {
	for {
		s.mu.Lock()
		wait := time.Until(s.pause)
		if wait <= 0 && len(s.pending) > 0 && !s.dropping {
			r := s.pending[0]
			s.pending[0] = nil
			s.pending = s.pending[1:]
			s.mu.Unlock()
			return r, nil
		}
		ch := s.availCh
		s.mu.Unlock()
		if wait > 0 {
			if !sleep(ctx, wait) {
				return nil, ctx.Err()
			}
			continue
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// nextBatch returns the oldest waiting chunk, blocking for it, plus those
// behind it that are already waiting, up to maxRecs and maxBytes.
func (s *Spool) nextBatch(ctx context.Context, maxRecs, maxBytes int) ([]*record, error) {
	first, err := s.next(ctx)
	if err != nil {
		return nil, err
	}
	out := []*record{first}
	size := first.size
	s.mu.Lock()
	for len(out) < maxRecs && len(s.pending) > 0 && size+s.pending[0].size <= maxBytes {
		r := s.pending[0]
		s.pending[0] = nil
		s.pending = s.pending[1:]
		out = append(out, r)
		size += r.size
	}
	s.mu.Unlock()
	return out, nil
}

// read returns a chunk's bytes from its segment.
func (s *Spool) read(r *record) ([]byte, error) {
	buf := make([]byte, r.size)
	if _, err := r.seg.f.ReadAt(buf, r.off); err != nil {
		return nil, fmt.Errorf("read spooled chunk: %w", err)
	}
	return buf, nil
}

// requeue puts chunks back to be sent again, in their original order.
func (s *Spool) requeue(rs ...*record) {
	if len(rs) == 0 {
		return
	}
	s.mu.Lock()
	for _, r := range rs {
		i, _ := slices.BinarySearchFunc(s.pending, r.id, func(p *record, id uint64) int {
			switch {
			case p.id < id:
				return -1
			case p.id > id:
				return 1
			}
			return 0
		})
		s.pending = slices.Insert(s.pending, i, r)
	}
	s.notifyLocked(&s.availCh)
	s.mu.Unlock()
}

// retryAfter requeues a chunk the server asked to resend and pauses all
// sending for after (at least the backoff for its attempt count).
func (s *Spool) retryAfter(r *record, after time.Duration, bo Backoff) {
	r.attempts++
	after = max(after, bo.delay(r.attempts-1))
	s.m.retried.Inc()
	s.mu.Lock()
	if until := time.Now().Add(after); until.After(s.pause) {
		s.pause = until
	}
	s.mu.Unlock()
	s.requeue(r)
}

// pausedFor is how long sending is paused from now.
func (s *Spool) pausedFor() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return time.Until(s.pause)
}

// settle marks a chunk delivered (stored or duplicate): its ack runs and
// its segment can go once all its chunks are settled.
func (s *Spool) settle(r *record, duplicate bool) {
	if duplicate {
		s.m.duplicates.Inc()
	} else {
		s.m.acked.Inc()
	}
	s.m.ackLatency.UpdateDuration(r.spooled)
	if r.ack != nil {
		r.ack()
	}
	s.release(r)
}

func (s *Spool) release(r *record) {
	s.mu.Lock()
	r.seg.live--
	s.live--
	s.notifyLocked(&s.idleCh)
	s.mu.Unlock()
}

// deadLetter stores a chunk the server refused for good, with the reason,
// and settles it: resending would only be refused again. Its ack runs too,
// so that its owner moves on; the metrics and the folder say what was
// refused.
func (s *Spool) deadLetter(r *record, data []byte, reason string) {
	s.m.rejected.Inc()
	s.log.Error("chunk rejected by the server; moved to the dead-letter folder", "reason", reason, "bytes", r.size, "dir", s.opts.DeadLetterDir)
	if data == nil {
		data, _ = s.read(r)
	}
	if err := s.writeDeadLetter(r, data, reason); err != nil {
		s.m.deadDropped.Inc()
		s.log.Error("chunk rejected by the server could not be kept", "err", err)
	}
	if r.ack != nil {
		r.ack()
	}
	s.release(r)
}

func (s *Spool) writeDeadLetter(r *record, data []byte, reason string) error {
	s.mu.Lock()
	full := s.deadUsed+int64(len(data)) > s.opts.DeadLetterMaxBytes
	if !full {
		s.deadUsed += int64(len(data) + len(reason))
	}
	s.mu.Unlock()
	if full {
		return fmt.Errorf("dead-letter folder %s is over its limit of %d bytes", s.opts.DeadLetterDir, s.opts.DeadLetterMaxBytes)
	}
	if err := os.MkdirAll(s.opts.DeadLetterDir, 0o755); err != nil {
		return err
	}
	base := filepath.Join(s.opts.DeadLetterDir, fmt.Sprintf("%d-%d", time.Now().UnixNano(), r.id))
	if err := writeFileSync(base+".chunk", data); err != nil {
		return err
	}
	return writeFileSync(base+".reason", []byte(reason+"\n"))
}

func writeFileSync(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func dirSize(dir string) int64 {
	var n int64
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if info, err := e.Info(); err == nil {
			n += info.Size()
		}
	}
	return n
}
