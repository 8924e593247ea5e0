package archive

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"context"
	"io"
	"os"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// FuzzArchive walks arbitrary bytes as a file: it must end with problems
// reported, never a panic, and within its limits: what it hands out is
// bounded, and the spool directory is left empty.
func FuzzArchive(f *testing.F) {
	text := []byte("2024-01-01T10:00:00Z line\nsecond\n")
	zipped := zipOf(&testing.T{}, zip.Deflate, entry{"a.log", text}, entry{"../b.log", text})
	tarred := tarOf(&testing.T{}, reg("a.log", string(text)), &tar.Header{Name: "l", Typeflag: tar.TypeSymlink, Linkname: "/x"})
	var xzBuf bytes.Buffer
	xw, _ := xz.NewWriter(&xzBuf)
	xw.Write(text)
	xw.Close()
	zenc, _ := zstd.NewWriter(nil)
	bz2, _ := os.ReadFile("testdata/hello.log.bz2")
	for _, seed := range [][]byte{
		text, zipped, tarred, gz(&testing.T{}, tarred), xzBuf.Bytes(), zenc.EncodeAll(text, nil), bz2,
		zipOf(&testing.T{}, zip.Store, entry{"in.zip", zipped}),
		gz(&testing.T{}, gz(&testing.T{}, text)),
		{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0},
		[]byte("PK\x03\x04garbage"),
	} {
		f.Add(seed)
	}
	spool := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		lim := Limits{MaxMemberBytes: 4 << 20, MaxTotalBytes: 8 << 20, MaxSpoolBytes: 2 << 20, SpoolDir: spool, MaxXzDict: 16 << 20, MaxMembers: 1000}
		var handed int64
		src := Source{File: bytes.NewReader(data), Size: int64(len(data)), Name: "fuzz", ModTime: testTime}
		err := Walk(context.Background(), src, lim, func(m *Member) error {
			if m.Path == "" {
				t.Fatal("member without a path")
			}
			n, _ := io.Copy(io.Discard, m)
			handed += n
			return nil
		}, func(p Problem) {
			if p.Path == "" || p.Reason == "" {
				t.Fatalf("empty problem %+v", p)
			}
		})
		if err != nil {
			t.Fatalf("walk: %v", err)
		}
		if handed > lim.MaxTotalBytes+SniffLen+64<<10 {
			t.Fatalf("handed out %d bytes over a total limit of %d", handed, lim.MaxTotalBytes)
		}
		if left, _ := os.ReadDir(spool); len(left) != 0 {
			t.Fatalf("spool files left: %v", left)
		}
	})
}
