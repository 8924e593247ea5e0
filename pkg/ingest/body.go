package ingest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"sync"

	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zlib"
)

// Format is the body format of a push.
type Format uint8

// Push body formats.
const (
	FormatProtobuf Format = iota // snappy block-compressed logproto.PushRequest
	FormatJSON
)

func (f Format) String() string {
	if f == FormatJSON {
		return "json"
	}
	return "protobuf"
}

// errUnsupportedMedia maps to 415.
type errUnsupportedMedia struct{ msg string }

func (e *errUnsupportedMedia) Error() string { return e.msg }

// FormatOf returns the body format named by a Content-Type header. As in
// Loki, an empty header means protobuf.
func FormatOf(contentType string) (Format, error) {
	if strings.TrimSpace(contentType) == "" {
		return FormatProtobuf, nil
	}
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return 0, &errUnsupportedMedia{fmt.Sprintf("unreadable Content-Type %q: %v; use application/x-protobuf (snappy-compressed) or application/json", contentType, err)}
	}
	switch mt {
	case "application/x-protobuf", "application/protobuf", "application/vnd.google.protobuf":
		return FormatProtobuf, nil
	case "application/json":
		return FormatJSON, nil
	}
	return 0, &errUnsupportedMedia{fmt.Sprintf("unsupported Content-Type %q; use application/x-protobuf (snappy-compressed) or application/json", mt)}
}

// bufPool recycles buffers that do not outlive the request: compressed
// bodies and the protobuf bytes that snappy decodes from. Buffers that
// lines point into are never pooled.
var bufPool sync.Pool

func getBuf() []byte {
	if b, ok := bufPool.Get().(*[]byte); ok {
		return (*b)[:0]
	}
	return nil
}

func putBuf(b []byte) {
	if cap(b) == 0 || cap(b) > 64<<20 {
		return // one huge push should not pin its buffer forever
	}
	bufPool.Put(&b)
}

var gzipPool sync.Pool

// readAll reads r into buf (grown as needed) and fails with a
// *TooLargeError as soon as more than limit bytes arrive, so memory never
// exceeds limit+1 bytes however long the input runs. sizeHint, when
// positive, sizes the buffer up front.
func readAll(r io.Reader, buf []byte, limit, sizeHint int, what, hint string) ([]byte, error) {
	if sizeHint > 0 && cap(buf) < sizeHint+1 {
		buf = make([]byte, 0, min(sizeHint, limit)+1) // +1 to see EOF without growing
	}
	buf = buf[:0]
	for {
		if len(buf) == cap(buf) {
			n := max(2*cap(buf), 64<<10)
			n = min(n, limit+1)
			if n <= len(buf) {
				return buf, &TooLargeError{What: what, Size: -1, Limit: int64(limit), Hint: hint}
			}
			nb := make([]byte, len(buf), n)
			copy(nb, buf)
			buf = nb
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if len(buf) > limit {
			return buf, &TooLargeError{What: what, Size: -1, Limit: int64(limit), Hint: hint}
		}
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

// bodyReader reads a request body within the handler's bounds.
type bodyReader struct {
	maxBody, maxDecompressed int
}

// read returns the decoded body of r. own reports whether the result may be
// kept beyond the request (false: return it with putBuf when done).
// keep asks for a buffer that lines may point into (JSON, whose lines are
// unescaped in place); otherwise a pooled buffer is used where possible.
func (br bodyReader) read(r *http.Request, keep bool) (body []byte, pooled bool, err error) {
	if r.ContentLength > int64(br.maxBody) {
		return nil, false, &TooLargeError{What: "request body", Size: r.ContentLength, Limit: int64(br.maxBody), Hint: "ingest.max_body_bytes in the server configuration"}
	}
	hint := int(r.ContentLength)
	enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding")))
	if enc == "" || enc == "identity" {
		var buf []byte
		if !keep {
			buf = getBuf()
		}
		body, err = readAll(r.Body, buf, br.maxBody, hint, "request body", "ingest.max_body_bytes in the server configuration")
		if err != nil {
			if !keep {
				putBuf(body)
			}
			return nil, false, wrapReadErr(err)
		}
		return body, !keep, nil
	}

	// The compressed bytes are bounded by maxBody, the decompressed ones by
	// maxDecompressed: a small gzip bomb fails after maxDecompressed bytes.
	compressed := io.LimitReader(r.Body, int64(br.maxBody)+1)
	counted := &countingReader{r: compressed}
	var dec io.Reader
	switch enc {
	case "gzip", "x-gzip":
		zr, _ := gzipPool.Get().(*gzip.Reader)
		if zr == nil {
			zr = new(gzip.Reader)
		}
		defer gzipPool.Put(zr)
		if err := zr.Reset(bufio.NewReader(counted)); err != nil {
			return nil, false, fmt.Errorf("bad gzip body: %w", err)
		}
		dec = zr
	case "deflate":
		// HTTP's deflate is zlib-wrapped, but some clients send raw
		// deflate; the zlib header tells them apart.
		br := bufio.NewReader(counted)
		head, _ := br.Peek(2)
		if len(head) == 2 && head[0]&0x0f == 8 && (uint16(head[0])<<8|uint16(head[1]))%31 == 0 {
			zr, err := zlib.NewReader(br)
			if err != nil {
				return nil, false, fmt.Errorf("bad zlib body: %w", err)
			}
			defer zr.Close()
			dec = zr
		} else {
			fr := flate.NewReader(br)
			defer fr.Close()
			dec = fr
		}
	default:
		return nil, false, &errUnsupportedMedia{fmt.Sprintf("unsupported Content-Encoding %q; use gzip, deflate or none", enc)}
	}
	// The decompressed size is unknown, so the output goes into a pooled,
	// already grown buffer; a body that must outlive the request is then
	// copied once into an exactly sized one, which costs less than growing
	// a fresh buffer step by step.
	body, err = readAll(dec, getBuf(), br.maxDecompressed, 0, "decompressed request body", "ingest.max_decompressed_bytes in the server configuration")
	if counted.n > int64(br.maxBody) { // the decoder's error, if any, came from the cut
		err = &TooLargeError{What: "request body", Size: -1, Limit: int64(br.maxBody), Hint: "ingest.max_body_bytes in the server configuration"}
	}
	if err != nil {
		putBuf(body)
		var tl *TooLargeError
		if !errors.As(err, &tl) {
			err = fmt.Errorf("bad %s body: %w", enc, err)
		}
		return nil, false, err
	}
	if keep {
		owned := bytes.Clone(body)
		putBuf(body)
		return owned, false, nil
	}
	return body, true, nil
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

func wrapReadErr(err error) error {
	var tl *TooLargeError
	if errors.As(err, &tl) {
		return err
	}
	return fmt.Errorf("reading request body: %w", err)
}
