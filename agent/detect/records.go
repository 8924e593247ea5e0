package detect

import (
	"bytes"
	"fmt"
)

// Record is one log record: one or more lines of a file.
type Record struct {
	Line    int    // 1-based number of its first line in the file
	Lines   int    // physical lines it spans
	Text    []byte // its lines joined with '\n', without line terminators
	Time    int64  // Unix nanoseconds
	OwnTime bool   // the record carried its timestamp; else it was inherited
	Cut     bool   // cut short at the record size or line bound
}

// Record bounds: a runaway "record" (a file of indented lines, a binary
// blob that passed as text) is cut rather than held whole.
const (
	DefaultMaxRecordBytes = 1 << 20
	DefaultMaxRecordLines = 10000
	// maxPendingBytes bounds the records held at the start of a file while
	// waiting for its first timestamp.
	maxPendingBytes = 8 << 20
)

// Assembler groups a file's lines into records and gives each a time.
// Records are passed to emit in file order; a record's Text is valid only
// during the call.
type Assembler struct {
	MaxBytes int // record size bound; 0 means DefaultMaxRecordBytes
	MaxLines int // record line bound; 0 means DefaultMaxRecordLines

	p    *Profile
	pr   *Parser
	emit func(*Record) error

	lineNo int
	cur    Record
	buf    []byte
	open   bool

	lastTs int64
	haveTs bool

	// Records before the file's first timestamp wait here for it.
	pending    []Record
	pendingBuf []byte

	inGo        bool // inside a Go panic or goroutine dump
	prevPartial bool // Docker: the previous line's log value had no newline
	prevMyTime  bool // MySQL: the previous line was "# Time:"

	// Counters for explain.
	Starts, Continuations int
}

// NewAssembler returns an assembler for the file p describes.
func NewAssembler(p *Profile, emit func(*Record) error) *Assembler {
	return &Assembler{p: p, pr: NewParser(p), emit: emit}
}

// Line adds the file's next line (without its terminator; a trailing '\r'
// is dropped). A line longer than the record bound is passed on in pieces
// of that size, each a record of its own.
func (a *Assembler) Line(b []byte) error {
	if n := len(b); n > 0 && b[n-1] == '\r' {
		b = b[:n-1]
	}
	if maxBytes, _ := a.bounds(); len(b) > maxBytes {
		if err := a.Line(b[:maxBytes]); err != nil {
			return err
		}
		for b = b[maxBytes:]; len(b) > 0; b = b[min(len(b), maxBytes):] {
			if err := a.Fragment(b[:min(len(b), maxBytes)]); err != nil {
				return err
			}
		}
		return nil
	}
	a.lineNo++
	start, ts, hasTs := a.classify(b)
	if !a.open {
		start = true
	}
	maxBytes, maxLines := a.bounds()
	if !start && (len(a.buf)+1+len(b) > maxBytes || a.cur.Lines >= maxLines) {
		a.cur.Cut = true
		start = true
	}
	if start {
		a.Starts++
		if err := a.close(); err != nil {
			return err
		}
		a.begin(b, ts, hasTs)
		return nil
	}
	a.Continuations++
	a.buf = append(a.buf, '\n')
	a.buf = append(a.buf, b...)
	a.cur.Lines++
	if hasTs && !a.cur.OwnTime {
		a.cur.Time, a.cur.OwnTime = ts, true
	}
	return nil
}

// Fragment adds a further piece of the current physical line, for lines
// too long to pass whole; it always starts a new record on the same line
// number.
func (a *Assembler) Fragment(b []byte) error {
	a.cur.Cut = true
	if err := a.close(); err != nil {
		return err
	}
	a.Starts++
	a.begin(b, 0, false)
	return nil
}

func (a *Assembler) bounds() (int, int) {
	mb, ml := a.MaxBytes, a.MaxLines
	if mb <= 0 {
		mb = DefaultMaxRecordBytes
	}
	if ml <= 0 {
		ml = DefaultMaxRecordLines
	}
	return mb, ml
}

func (a *Assembler) begin(b []byte, ts int64, hasTs bool) {
	a.buf = append(a.buf[:0], b...)
	a.cur = Record{Line: a.lineNo, Lines: 1, Time: ts, OwnTime: hasTs}
	a.open = true
}

// classify decides whether line b starts a record and reads its timestamp
// when that matters.
func (a *Assembler) classify(b []byte) (start bool, ts int64, hasTs bool) {
	p := a.p
	switch p.Mode {
	case ModeSingle:
		ts, hasTs = a.pr.Parse(b)
		return true, ts, hasTs
	case ModeRegexp:
		start = p.startRE.Match(b)
		if start || !a.cur.OwnTime {
			ts, hasTs = a.pr.Parse(b)
		}
		return start, ts, hasTs
	case ModeMySQLSlow:
		return a.classifyMySQL(b)
	case ModeDocker:
		start = !a.prevPartial
		a.prevPartial = dockerPartial(b)
		if start {
			ts, hasTs = a.pr.Parse(b)
		}
		return start, ts, hasTs
	}

	if isBlank(b) {
		return false, 0, false
	}
	if p.IndentCont && isIndented(b) {
		return false, 0, false
	}
	if p.JSONMessage && jsonMessageContinues(b) {
		return false, 0, false
	}
	if p.Mode == ModeTimestamp {
		ts, hasTs = a.pr.Parse(b)
		if hasTs || goPanicStart(b) {
			return true, ts, hasTs
		}
		return false, 0, false
	}
	// ModePattern.
	if javaFrame(b) {
		return false, 0, false
	}
	if a.inGo && goTraceLine(b) {
		return false, 0, false
	}
	a.inGo = goPanicStart(b)
	ts, hasTs = a.pr.Parse(b)
	return true, ts, hasTs
}

func (a *Assembler) classifyMySQL(b []byte) (start bool, ts int64, hasTs bool) {
	var st stamp
	switch {
	case bytes.HasPrefix(b, []byte("# Time: ")):
		start = true
		if isoFormat.at(b, 8, &st) >= 0 {
			a.pr.st = st
			ts, hasTs = a.pr.resolve()
		}
		a.prevMyTime = true
		return start, ts, hasTs
	case bytes.HasPrefix(b, []byte("# User@Host: ")):
		start = !a.prevMyTime
	case bytes.HasPrefix(b, []byte("SET timestamp=")) && !a.cur.OwnTime:
		if epochFormat.at(b, 14, &st) >= 0 {
			ts, hasTs = st.unixNano, true
		}
	}
	a.prevMyTime = false
	return start, ts, hasTs
}

// close finishes the current record: it gets its own time, else the
// previous record's, else it waits for the file's first timestamp.
func (a *Assembler) close() error {
	if !a.open {
		return nil
	}
	a.open = false
	r := &a.cur
	r.Text = a.buf
	if r.OwnTime {
		if err := a.flushPending(r.Time); err != nil {
			return err
		}
		a.lastTs, a.haveTs = r.Time, true
		return a.emit(r)
	}
	if a.haveTs {
		r.Time = a.lastTs
		return a.emit(r)
	}
	// No timestamp yet in this file: hold the record.
	off := len(a.pendingBuf)
	a.pendingBuf = append(a.pendingBuf, r.Text...)
	pr := *r
	pr.Text = a.pendingBuf[off:len(a.pendingBuf):len(a.pendingBuf)]
	a.pending = append(a.pending, pr)
	if len(a.pendingBuf) > maxPendingBytes {
		return a.flushPending(a.fallbackTime())
	}
	return nil
}

// fallbackTime is the time of records in a file that shows none: its
// modification time.
func (a *Assembler) fallbackTime() int64 {
	if !a.p.YearRef.IsZero() {
		return a.p.YearRef.UnixNano()
	}
	return 0
}

func (a *Assembler) flushPending(ts int64) error {
	for i := range a.pending {
		r := &a.pending[i]
		r.Time = ts
		if err := a.emit(r); err != nil {
			return err
		}
	}
	a.pending = a.pending[:0]
	a.pendingBuf = a.pendingBuf[:0]
	return nil
}

// Close flushes the last record. Records of a file with no timestamp at
// all get the file's modification time.
func (a *Assembler) Close() error {
	if err := a.close(); err != nil {
		return err
	}
	return a.flushPending(a.fallbackTime())
}

// LineNo is the number of lines added so far.
func (a *Assembler) LineNo() int { return a.lineNo }

// String describes the assembler's counts, for debugging.
func (a *Assembler) String() string {
	return fmt.Sprintf("%d lines, %d records (%d continuation lines)", a.lineNo, a.Starts, a.Continuations)
}

// javaFrame reports whether an unindented line belongs to a Java stack
// trace that an earlier line started.
func javaFrame(b []byte) bool {
	t := bytes.TrimLeft(b, " \t")
	switch {
	case bytes.HasPrefix(t, []byte("at ")):
		rest := t[3:]
		return bytes.IndexByte(rest, '(') > 0 && bytes.IndexByte(rest, '.') > 0 && bytes.IndexByte(rest[:bytes.IndexByte(rest, '(')], ' ') < 0
	case bytes.HasPrefix(t, []byte("Caused by: ")), bytes.HasPrefix(t, []byte("Suppressed: ")):
		return true
	case bytes.HasPrefix(t, []byte("... ")):
		return bytes.HasSuffix(t, []byte(" more")) || bytes.Contains(t, []byte("common frames omitted"))
	}
	return false
}

// goPanicStart reports whether a line opens a Go panic or goroutine dump.
func goPanicStart(b []byte) bool {
	return bytes.HasPrefix(b, []byte("panic: ")) || bytes.HasPrefix(b, []byte("fatal error: ")) ||
		(bytes.HasPrefix(b, []byte("goroutine ")) && len(b) > 10 && isDigit(b[10]) && bytes.HasSuffix(b, []byte("]:")))
}

// goTraceLine reports whether a line continues a Go trace: a goroutine
// header, a frame "pkg.fn(args)", "created by ...", or the runtime's other
// trace lines.
func goTraceLine(b []byte) bool {
	for _, p := range [][]byte{[]byte("goroutine "), []byte("created by "), []byte("[signal "), []byte("runtime stack:"), []byte("exit status "), []byte("panic("), []byte("[recovered]")} {
		if bytes.HasPrefix(b, p) {
			return true
		}
	}
	if len(b) == 0 || !(isLetter(b[0]) || b[0] == '_' || b[0] == '(') {
		return false
	}
	open := bytes.IndexByte(b, '(')
	if open <= 0 || bytes.IndexByte(b[:open], ' ') >= 0 {
		return false
	}
	t := bytes.TrimRight(b, " ")
	return len(t) > 0 && t[len(t)-1] == ')' || bytes.HasSuffix(t, []byte("...)"))
}

// jsonMessageContinues reports whether a JSON line's message is a stack
// frame logged as its own JSON record (" at com.x.Y.z(Y.java:1)",
// "Caused by: ...").
func jsonMessageContinues(b []byte) bool {
	for _, k := range [...]string{"message", "msg", "log"} {
		v := jsonString(b, k)
		if v == nil {
			continue
		}
		t := v
		for {
			switch {
			case len(t) > 0 && (t[0] == ' ' || t[0] == '\t'):
				t = t[1:]
				continue
			case len(t) > 1 && t[0] == '\\' && t[1] == 't':
				t = t[2:]
				continue
			}
			break
		}
		indented := len(t) < len(v)
		return indented && (bytes.HasPrefix(t, []byte("at ")) || bytes.HasPrefix(t, []byte("... "))) ||
			bytes.HasPrefix(t, []byte("Caused by: ")) || bytes.HasPrefix(t, []byte("Suppressed: "))
	}
	return false
}

// dockerPartial reports whether a Docker json-file line holds a partial
// line: its "log" value does not end with an escaped newline.
func dockerPartial(b []byte) bool {
	v := jsonString(b, "log")
	return v != nil && !bytes.HasSuffix(v, []byte(`\n`))
}
