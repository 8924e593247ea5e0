// Package archive reads log files, compressed files and archives as streams
// of text members: zip, tar, gzip, bzip2, xz and zstd, nested in any order
// up to a depth limit, told apart by their first bytes rather than their
// names. Nothing is extracted to disk: members are handed to the caller as
// readers, one at a time, in archive order. Hostile input (zip bombs, path
// traversal, links and devices, corrupt members, binary files, archives
// nested too deep) is reported as a Problem and skipped, and the walk goes
// on with the next member.
package archive

import (
	"archive/tar"
	"archive/zip"
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"time"

	"golang.org/x/text/encoding/unicode"
	"golang.org/x/text/transform"
)

// Limits bound what reading one top-level file may cost. Zero fields take
// the defaults below.
type Limits struct {
	// MaxDepth bounds nesting: each archive (zip, tar, or a compressed tar
	// taken together) and each compression layer around something other
	// than a tar is one level. Default 4.
	MaxDepth int `yaml:"max_depth" json:"max_depth"`
	// MaxMemberBytes bounds the expanded size of one member. Default 64 GiB.
	MaxMemberBytes int64 `yaml:"max_member_bytes" json:"max_member_bytes"`
	// MaxTotalBytes bounds the expanded bytes read from one top-level file.
	// Default 1 TiB.
	MaxTotalBytes int64 `yaml:"max_total_bytes" json:"max_total_bytes"`
	// MaxRatio bounds expanded/compressed bytes of each compression layer
	// and each zip member, once past 1 MiB of output. Real logs compress
	// 5-50x; a zip bomb expands 1000x. Default 200.
	MaxRatio float64 `yaml:"max_ratio" json:"max_ratio"`
	// MaxMembers bounds the members of one archive. Default 1,000,000.
	MaxMembers int `yaml:"max_members" json:"max_members"`
	// MaxSpoolBytes bounds a zip nested in another archive, which must be
	// copied aside to be read (zip needs random access). Up to 8 MiB it is
	// held in memory, above that in a temporary file in SpoolDir that is
	// removed after use. A larger nested zip is reported and skipped.
	// Default 1 GiB.
	MaxSpoolBytes int64 `yaml:"max_spool_bytes" json:"max_spool_bytes"`
	// SpoolDir is where nested zips are spooled; empty means os.TempDir().
	SpoolDir string `yaml:"spool_dir" json:"spool_dir"`
	// MaxXzDict bounds the dictionary an xz stream may ask for, which the
	// decoder allocates up front. Default 256 MiB (xz -9 uses 64 MiB).
	MaxXzDict int64 `yaml:"max_xz_dict" json:"max_xz_dict"`
}

// Defaults for zero Limits fields.
const (
	DefaultMaxDepth       = 4
	DefaultMaxMemberBytes = 64 << 30
	DefaultMaxTotalBytes  = 1 << 40
	DefaultMaxRatio       = 200
	DefaultMaxMembers     = 1_000_000
	DefaultMaxSpoolBytes  = 1 << 30
	DefaultMaxXzDict      = 256 << 20

	memSpoolBytes = 8 << 20 // nested zips up to this size are spooled in memory
	ratioFloor    = 1 << 20 // ratio checks start after this much output
)

// WithDefaults returns l with zero fields set to the defaults.
func (l Limits) WithDefaults() Limits {
	if l.MaxDepth <= 0 {
		l.MaxDepth = DefaultMaxDepth
	}
	if l.MaxMemberBytes <= 0 {
		l.MaxMemberBytes = DefaultMaxMemberBytes
	}
	if l.MaxTotalBytes <= 0 {
		l.MaxTotalBytes = DefaultMaxTotalBytes
	}
	if l.MaxRatio <= 0 {
		l.MaxRatio = DefaultMaxRatio
	}
	if l.MaxMembers <= 0 {
		l.MaxMembers = DefaultMaxMembers
	}
	if l.MaxSpoolBytes <= 0 {
		l.MaxSpoolBytes = DefaultMaxSpoolBytes
	}
	if l.MaxXzDict <= 0 {
		l.MaxXzDict = DefaultMaxXzDict
	}
	return l
}

// File is a top-level file: read as a stream, and at random when it is a
// zip.
type File interface {
	io.Reader
	io.ReaderAt
}

// Source is one top-level file to walk.
type Source struct {
	File    File
	Size    int64
	Name    string    // its path as the user sees it (in the bundle)
	Prefix  string    // prepended to member paths when it is an archive ("" for none)
	ModTime time.Time // its modification time
}

// Member is one text file found in a source: the source itself, the
// content of a compressed file, or an archive member. Its Read returns
// decompressed, UTF-8 (or legacy 8-bit) text. It is valid only during the
// visit call.
type Member struct {
	Path    string    // path in the bundle; archive members by their member path
	Size    int64     // expanded size when a container declares it, else -1
	ModTime time.Time // from the container's header, else the source's
	Via     string    // the containers it came through, e.g. "tar.gz > zip"; "" for a plain file
	Depth   int

	r *memberReader
}

// Read reads the member's content.
func (m *Member) Read(p []byte) (int, error) { return m.r.Read(p) }

// Problem is something in a source that was not (fully) read.
type Problem struct {
	Path   string
	Reason string
	// Failed is set when reading failed partway (corrupt data, a limit
	// reached after part of the member was read); unset when the member
	// was skipped before any of it was read.
	Failed bool
}

func (p Problem) String() string { return p.Path + ": " + p.Reason }

// ErrLimit is wrapped by the read errors of members that hit a Limits bound.
var ErrLimit = errors.New("limit exceeded")

// Walk reads src and calls visit for each text member in archive order.
// Problems go to report and the walk goes on. Walk returns early only with
// the error of visit or of the context.
func Walk(ctx context.Context, src Source, lim Limits, visit func(*Member) error, report func(Problem)) error {
	w := &walker{ctx: ctx, lim: lim.WithDefaults(), visit: visit, report: report}
	if w.report == nil {
		w.report = func(Problem) {}
	}
	sr := io.NewSectionReader(src.File, 0, src.Size)
	return w.stream(sr, src.File, src.Size, src.Name, src.Prefix, -1, src.ModTime, 0, "", false)
}

type walker struct {
	ctx    context.Context
	lim    Limits
	visit  func(*Member) error
	report func(Problem)
	total  int64 // expanded bytes handed out
	full   bool  // MaxTotalBytes reached
}

func (w *walker) skip(path, format string, args ...any) {
	w.report(Problem{Path: path, Reason: fmt.Sprintf(format, args...)})
}

func (w *walker) fail(path, format string, args ...any) {
	w.report(Problem{Path: path, Reason: fmt.Sprintf(format, args...), Failed: true})
}

func via(chain, kind string) string {
	if chain == "" {
		return kind
	}
	return chain + " > " + kind
}

func joinPath(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "/" + name
}

// stream classifies r by its first bytes and reads it as what it is.
// ra, when not nil, gives random access to the same bytes (zip needs it).
// underCompression tells a tar that the compression layer around it
// already counted as its nesting level.
func (w *walker) stream(r io.Reader, ra io.ReaderAt, raSize int64, name, prefix string, size int64, mtime time.Time, depth int, chain string, underCompression bool) error {
	if err := w.ctx.Err(); err != nil {
		return err
	}
	br := bufio.NewReaderSize(r, 64<<10)
	head, err := br.Peek(SniffLen)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, bufio.ErrBufferFull) {
		if cerr := w.ctx.Err(); cerr != nil {
			return cerr
		}
		w.fail(name, "read failed at its start: %v", err)
		return nil
	}
	kind, what := Sniff(head)
	switch {
	case kind.compressed():
		if depth+1 > w.lim.MaxDepth {
			w.skip(name, "%s data nested %d levels deep, over the limit of %d; skipped", kind, depth+1, w.lim.MaxDepth)
			return nil
		}
		return w.decompress(kind, br, head, name, prefix, mtime, depth+1, chain)
	case kind == KindTar:
		d := depth
		if !underCompression {
			d++
		}
		if d > w.lim.MaxDepth {
			w.skip(name, "tar archive nested %d levels deep, over the limit of %d; skipped", d, w.lim.MaxDepth)
			return nil
		}
		return w.tar(br, name, prefix, mtime, d, via(chain, "tar"))
	case kind == KindZip:
		if depth+1 > w.lim.MaxDepth {
			w.skip(name, "zip archive nested %d levels deep, over the limit of %d; skipped", depth+1, w.lim.MaxDepth)
			return nil
		}
		if ra == nil {
			sp, n, cleanup, err := w.spool(br, size, name)
			if err != nil {
				return err
			}
			if sp == nil {
				return nil
			}
			defer cleanup()
			ra, raSize = sp, n
		}
		return w.zip(ra, raSize, name, prefix, mtime, depth+1, via(chain, "zip"))
	case kind == KindUnsupported:
		w.skip(name, "%s archives are not supported; skipped", what)
		return nil
	case kind == KindBinary:
		w.skip(name, "binary file (NUL or control bytes in the first %d KiB); skipped", SniffLen>>10)
		return nil
	}

	var content io.Reader = br
	switch {
	case kind == KindUTF16:
		content = transform.NewReader(br, unicode.UTF16(unicode.LittleEndian, unicode.UseBOM).NewDecoder())
	case len(head) >= 3 && head[0] == 0xef && head[1] == 0xbb && head[2] == 0xbf:
		_, _ = br.Discard(3) // UTF-8 byte order mark
	}
	if w.full {
		w.skip(name, "total expanded size limit of %d bytes reached; skipped", w.lim.MaxTotalBytes)
		return nil
	}
	m := &Member{Path: name, Size: size, ModTime: mtime, Via: chain, Depth: depth,
		r: &memberReader{w: w, r: content}}
	if err := w.visit(m); err != nil {
		return err
	}
	if m.r.err != nil {
		if cerr := w.ctx.Err(); cerr != nil {
			return cerr
		}
		w.fail(name, "read failed after %d bytes: %v", m.r.n, m.r.err)
	}
	return nil
}

// memberReader counts a member's bytes against the limits.
type memberReader struct {
	w   *walker
	r   io.Reader
	n   int64
	err error
}

func (m *memberReader) Read(p []byte) (int, error) {
	if m.err != nil {
		return 0, m.err
	}
	if err := m.w.ctx.Err(); err != nil {
		m.err = err
		return 0, err
	}
	n, err := m.r.Read(p)
	m.n += int64(n)
	m.w.total += int64(n)
	lim := &m.w.lim
	switch {
	case m.n > lim.MaxMemberBytes:
		err = fmt.Errorf("%w: expands beyond the member limit of %d bytes", ErrLimit, lim.MaxMemberBytes)
	case m.w.total > lim.MaxTotalBytes:
		m.w.full = true
		err = fmt.Errorf("%w: the total expanded size limit of %d bytes was reached", ErrLimit, lim.MaxTotalBytes)
	}
	if err != nil && err != io.EOF {
		m.err = err
	}
	return n, err
}

func (w *walker) tar(r io.Reader, name, prefix string, mtime time.Time, depth int, chain string) error {
	tr := tar.NewReader(r)
	for n := 0; ; n++ {
		if err := w.ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil && !errors.Is(err, tar.ErrInsecurePath) {
			if cerr := w.ctx.Err(); cerr != nil {
				return cerr
			}
			if n == 0 {
				w.fail(name, "corrupt tar archive: %v", err)
			} else {
				w.fail(name, "corrupt or truncated tar archive after %d members; the rest is unreadable: %v", n, err)
			}
			return nil
		}
		if n >= w.lim.MaxMembers {
			w.skip(name, "more than %d members; the rest skipped", w.lim.MaxMembers)
			return nil
		}
		if w.full {
			w.skip(name, "total expanded size limit of %d bytes reached; the rest skipped", w.lim.MaxTotalBytes)
			return nil
		}
		clean, bad := SafePath(hdr.Name)
		if bad != "" {
			w.skip(joinPath(prefix, printable(hdr.Name)), "%s; skipped", bad)
			continue
		}
		path := joinPath(prefix, clean)
		switch hdr.Typeflag {
		case tar.TypeReg, '\x00', tar.TypeGNUSparse:
		case tar.TypeDir:
			continue
		case tar.TypeSymlink:
			w.skip(path, "symbolic link (to %q); skipped", printable(hdr.Linkname))
			continue
		case tar.TypeLink:
			w.skip(path, "hard link (to %q); skipped", printable(hdr.Linkname))
			continue
		case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
			w.skip(path, "device or FIFO; skipped")
			continue
		default:
			w.skip(path, "tar entry of type %q is not a regular file; skipped", hdr.Typeflag)
			continue
		}
		if hdr.Size > w.lim.MaxMemberBytes {
			w.skip(path, "declares %d bytes, over the member limit of %d; skipped", hdr.Size, w.lim.MaxMemberBytes)
			continue
		}
		if err := w.stream(tr, nil, 0, path, path, hdr.Size, plausibleTime(hdr.ModTime, mtime), depth, chain, false); err != nil {
			return err
		}
	}
}

func (w *walker) zip(ra io.ReaderAt, size int64, name, prefix string, mtime time.Time, depth int, chain string) error {
	zr, err := zip.NewReader(ra, size)
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) {
		w.fail(name, "corrupt zip archive: %v", err)
		return nil
	}
	registerZipCodecs(zr)
	files := zr.File
	if len(files) > w.lim.MaxMembers {
		w.skip(name, "%d members, over the limit of %d; only the first %d are read", len(files), w.lim.MaxMembers, w.lim.MaxMembers)
		files = files[:w.lim.MaxMembers]
	}
	for _, f := range files {
		if err := w.ctx.Err(); err != nil {
			return err
		}
		if w.full {
			w.skip(name, "total expanded size limit of %d bytes reached; the rest skipped", w.lim.MaxTotalBytes)
			return nil
		}
		clean, bad := SafePath(f.Name)
		if bad != "" {
			w.skip(joinPath(prefix, printable(f.Name)), "%s; skipped", bad)
			continue
		}
		path := joinPath(prefix, clean)
		mode := f.Mode()
		switch {
		case mode.IsDir():
			continue
		case mode&fs.ModeSymlink != 0:
			w.skip(path, "symbolic link; skipped")
			continue
		case !mode.IsRegular():
			w.skip(path, "not a regular file (mode %v); skipped", mode)
			continue
		case f.Flags&1 != 0:
			w.skip(path, "encrypted; skipped")
			continue
		}
		usize, csize := f.UncompressedSize64, f.CompressedSize64
		if usize > uint64(w.lim.MaxMemberBytes) {
			w.skip(path, "declares %d bytes, over the member limit of %d; skipped", usize, w.lim.MaxMemberBytes)
			continue
		}
		if usize > ratioFloor && float64(usize) > w.lim.MaxRatio*float64(max(csize, 1)) {
			w.skip(path, "declares %d bytes from %d compressed (ratio %.0f, limit %.0f): likely a zip bomb; skipped", usize, csize, float64(usize)/float64(max(csize, 1)), w.lim.MaxRatio)
			continue
		}
		rc, err := f.Open()
		if err != nil {
			if errors.Is(err, zip.ErrAlgorithm) {
				w.skip(path, "compression method %d is not supported; skipped", f.Method)
			} else {
				w.fail(path, "cannot open: %v", err)
			}
			continue
		}
		var sub io.ReaderAt
		var subSize int64
		if f.Method == zip.Store {
			if off, err := f.DataOffset(); err == nil && off >= 0 && off+int64(csize) <= size {
				sub, subSize = io.NewSectionReader(ra, off, int64(csize)), int64(csize)
			}
		}
		content := &ratioReader{r: rc, fixedIn: int64(max(csize, 1)), max: w.lim.MaxRatio}
		err = w.stream(content, sub, subSize, path, path, int64(usize), plausibleTime(f.Modified, mtime), depth, chain, false)
		rc.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// spool copies a nested zip aside for random access: into memory when
// small, else into a temporary file. It returns nil (after reporting)
// when the zip is too large or cannot be copied.
func (w *walker) spool(r io.Reader, size int64, name string) (io.ReaderAt, int64, func(), error) {
	limit := w.lim.MaxSpoolBytes
	if size > limit {
		w.skip(name, "nested zip of %d bytes is over the spool limit of %d (a zip inside another archive must be copied aside to be read); skipped", size, limit)
		return nil, 0, nil, nil
	}
	if size >= 0 && size <= memSpoolBytes {
		buf, err := io.ReadAll(io.LimitReader(r, size+1))
		if err != nil {
			return w.spoolErr(name, err)
		}
		return readerAt(buf), int64(len(buf)), func() {}, nil
	}
	f, err := createSpool(w.lim.SpoolDir)
	if err != nil {
		w.fail(name, "cannot spool nested zip: %v", err)
		return nil, 0, nil, nil
	}
	cleanup := func() { f.Close(); removeSpool(f) }
	n, err := io.Copy(f, io.LimitReader(r, limit+1))
	if err != nil {
		cleanup()
		return w.spoolErr(name, err)
	}
	if n > limit {
		cleanup()
		w.skip(name, "nested zip is over the spool limit of %d bytes (a zip inside another archive must be copied aside to be read); skipped", limit)
		return nil, 0, nil, nil
	}
	return f, n, cleanup, nil
}

func (w *walker) spoolErr(name string, err error) (io.ReaderAt, int64, func(), error) {
	if cerr := w.ctx.Err(); cerr != nil {
		return nil, 0, nil, cerr
	}
	w.fail(name, "reading nested zip failed: %v", err)
	return nil, 0, nil, nil
}

// plausibleTime returns a member's time, or its container's when the
// member's is missing or implausible (reproducible tars carry 1970, zips
// without a date carry 1980): the time decides the year of year-less
// timestamps and the time of lines with none.
func plausibleTime(t, outer time.Time) time.Time {
	if t.Before(time.Date(1990, 1, 1, 0, 0, 0, 0, time.UTC)) {
		return outer
	}
	return t
}

type readerAt []byte

func (b readerAt) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off > int64(len(b)) {
		return 0, io.EOF
	}
	n := copy(p, b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}
