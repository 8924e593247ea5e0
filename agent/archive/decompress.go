package archive

import (
	"archive/zip"
	"bufio"
	"compress/bzip2"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// decompress reads a compressed stream's content as whatever it holds.
func (w *walker) decompress(kind Kind, r io.Reader, head []byte, name, prefix string, mtime time.Time, depth int, chain string) error {
	in := &countingReader{r: r}
	var dec io.Reader
	var closer func()
	switch kind {
	case KindGzip:
		zr, err := gzip.NewReader(in)
		if err != nil {
			w.fail(name, "corrupt gzip header: %v", err)
			return nil
		}
		mtime = plausibleTime(zr.ModTime, mtime)
		dec, closer = zr, func() { zr.Close() }
	case KindBzip2:
		dec = bzip2.NewReader(in)
	case KindXz:
		if dict, ok := xzDictSize(head); ok && dict > w.lim.MaxXzDict {
			w.skip(name, "xz stream asks for a %d MiB dictionary, over the limit of %d MiB; skipped", dict>>20, w.lim.MaxXzDict>>20)
			return nil
		}
		xr, err := xz.NewReader(in)
		if err != nil {
			w.fail(name, "corrupt xz header: %v", err)
			return nil
		}
		dec = xr
	case KindZstd:
		zr, err := zstd.NewReader(in, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(128<<20), zstd.WithDecoderMaxMemory(uint64(w.lim.MaxMemberBytes)))
		if err != nil {
			w.fail(name, "corrupt zstd stream: %v", err)
			return nil
		}
		dec, closer = zr, zr.Close
	}
	if closer != nil {
		defer closer()
	}
	rr := &ratioReader{r: dec, in: in, max: w.lim.MaxRatio, kind: kind.String()}
	return w.stream(rr, nil, 0, name, prefix, -1, mtime, depth, via(chain, kind.String()), true)
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// ratioReader fails a decompression whose output outgrows its input by
// more than max once past ratioFloor bytes: the signature of a bomb.
type ratioReader struct {
	r       io.Reader
	in      *countingReader // compressed bytes consumed so far, or
	fixedIn int64           // the compressed size a zip header declares
	out     int64
	max     float64
	kind    string
}

func (rr *ratioReader) Read(p []byte) (int, error) {
	n, err := rr.r.Read(p)
	rr.out += int64(n)
	if rr.out > ratioFloor {
		in := rr.fixedIn
		if rr.in != nil {
			in = max(rr.in.n, 1)
		}
		if float64(rr.out) > rr.max*float64(in) {
			what := "member"
			if rr.kind != "" {
				what = rr.kind + " data"
			}
			return n, fmt.Errorf("%w: %s expands %d bytes into more than %d (ratio over %.0f): likely a decompression bomb", ErrLimit, what, in, rr.out, rr.max)
		}
	}
	return n, err
}

// xzDictSize reads the LZMA2 dictionary size from the first block header
// of an xz stream, if the header is in head. The decoder allocates the
// dictionary before reading any data, so a hostile header could ask for
// 4 GiB; later blocks are not checked (their headers are not at a known
// offset).
func xzDictSize(head []byte) (int64, bool) {
	const streamHeader = 12
	if len(head) < streamHeader+2 {
		return 0, false
	}
	b := head[streamHeader:]
	size := (int(b[0]) + 1) * 4
	if b[0] == 0 || len(b) < size {
		return 0, false
	}
	flags := b[1]
	i := 2
	skipVarint := func() bool {
		for k := 0; k < 9; k++ {
			if i >= size {
				return false
			}
			c := b[i]
			i++
			if c&0x80 == 0 {
				return true
			}
		}
		return false
	}
	if flags&0x40 != 0 && !skipVarint() {
		return 0, false
	}
	if flags&0x80 != 0 && !skipVarint() {
		return 0, false
	}
	nfilters := int(flags&3) + 1
	for f := 0; f < nfilters; f++ {
		if i >= size {
			return 0, false
		}
		id := b[i]
		i++
		if i >= size {
			return 0, false
		}
		propLen := int(b[i])
		i++
		if id == 0x21 && propLen == 1 && i < size {
			code := int64(b[i] & 0x3f)
			if code > 40 {
				return 1 << 32, true
			}
			if code == 40 {
				return 1<<32 - 1, true
			}
			return (2 | (code & 1)) << (code/2 + 11), true
		}
		i += propLen
	}
	return 0, false
}

// registerZipCodecs makes a zip reader use the faster deflate decoder and
// read members compressed with bzip2 (method 12) and zstd (method 93).
func registerZipCodecs(zr *zip.Reader) {
	// The member's compressed bytes come from ReadAt calls on the file;
	// a large buffer keeps them from being 4 KiB system calls.
	zr.RegisterDecompressor(zip.Deflate, func(r io.Reader) io.ReadCloser { return flate.NewReader(bufio.NewReaderSize(r, 128<<10)) })
	zr.RegisterDecompressor(12, func(r io.Reader) io.ReadCloser { return io.NopCloser(bzip2.NewReader(r)) })
	zr.RegisterDecompressor(93, func(r io.Reader) io.ReadCloser {
		d, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(128<<20))
		if err != nil {
			return io.NopCloser(errReader{err})
		}
		return d.IOReadCloser()
	})
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// SafePath cleans an archive member name into a relative slash path. It
// returns a reason instead when the name is absolute, climbs out of the
// archive with "..", or is empty. Nothing is ever written to disk, so such
// names could do no harm here; they are skipped all the same, because an
// archive that holds them was made to attack an extractor.
func SafePath(name string) (string, string) {
	n := strings.ReplaceAll(name, "\\", "/")
	switch {
	case n == "":
		return "", "empty member name"
	case strings.HasPrefix(n, "/"):
		return "", "absolute path in member name"
	case len(n) >= 2 && n[1] == ':' && ((n[0]|0x20) >= 'a' && (n[0]|0x20) <= 'z'):
		return "", "absolute (drive letter) path in member name"
	}
	for _, part := range strings.Split(n, "/") {
		if part == ".." {
			return "", "path escapes the archive (\"..\" in member name)"
		}
	}
	clean := path.Clean(n)
	if clean == "." {
		return "", "empty member name"
	}
	return printable(clean), ""
}

// printable makes a member name safe to print and to use as a label
// value: invalid UTF-8 and control characters are replaced.
func printable(s string) string {
	ok := utf8.ValidString(s)
	for i := 0; ok && i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			ok = false
		}
	}
	if ok {
		return s
	}
	var b strings.Builder
	for _, r := range strings.ToValidUTF8(s, "\uFFFD") {
		if r < 0x20 || r == 0x7f {
			fmt.Fprintf(&b, "\\x%02x", r)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

func createSpool(dir string) (*os.File, error) {
	return os.CreateTemp(dir, "logsift-nested-*.zip")
}

func removeSpool(f *os.File) { os.Remove(f.Name()) }
