package archive

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"context"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

var testTime = time.Date(2024, 6, 30, 12, 0, 0, 0, time.UTC)

type entry struct {
	name string
	data []byte
}

// walkBytes walks data as a top-level file and returns the members' text
// and the problems.
func walkBytes(t *testing.T, name string, data []byte, lim Limits) (map[string]string, []Problem) {
	t.Helper()
	got := map[string]string{}
	var problems []Problem
	src := Source{File: bytes.NewReader(data), Size: int64(len(data)), Name: name, ModTime: testTime}
	err := Walk(context.Background(), src, lim, func(m *Member) error {
		b, _ := io.ReadAll(m)
		got[m.Path] = string(b)
		return nil
	}, func(p Problem) { problems = append(problems, p) })
	if err != nil {
		t.Fatal(err)
	}
	return got, problems
}

func zipOf(t *testing.T, method uint16, files ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, f := range files {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: f.name, Method: method, Modified: testTime})
		if err != nil {
			t.Fatal(err)
		}
		w.Write(f.data)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func tarOf(t *testing.T, hdrs ...*tar.Header) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range hdrs {
		data := []byte(h.Linkname)
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(h.Uname)) // test convention: content rides in Uname
			data = []byte(h.Uname)
			h.Uname = ""
			h.Linkname = ""
		}
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		h.ModTime = testTime
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			tw.Write(data)
		}
	}
	tw.Close()
	return buf.Bytes()
}

func reg(name, data string) *tar.Header {
	return &tar.Header{Name: name, Typeflag: tar.TypeReg, Uname: data}
}

func gz(t *testing.T, b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

func TestFormats(t *testing.T) {
	text := "2024-01-01T10:00:00Z hello\n2024-01-01T10:00:01Z world\n"
	bz2, err := os.ReadFile("testdata/hello.log.bz2")
	if err != nil {
		t.Fatal(err)
	}
	var xzBuf bytes.Buffer
	xw, _ := xz.NewWriter(&xzBuf)
	xw.Write([]byte(text))
	xw.Close()
	zenc, _ := zstd.NewWriter(nil)
	zst := zenc.EncodeAll([]byte(text), nil)
	utf16 := []byte{0xff, 0xfe}
	for _, r := range "héllo\nwörld\n" {
		utf16 = append(utf16, byte(r), byte(r>>8))
	}
	cases := []struct {
		name string
		data []byte
		want map[string]string
		via  string
	}{
		{"plain.log", []byte(text), map[string]string{"plain.log": text}, ""},
		{"bom.log", append([]byte{0xef, 0xbb, 0xbf}, text...), map[string]string{"bom.log": text}, ""},
		{"utf16.log", utf16, map[string]string{"utf16.log": "héllo\nwörld\n"}, ""},
		{"x.log.gz", gz(t, []byte(text)), map[string]string{"x.log.gz": text}, "gzip"},
		{"x.log.bz2", bz2, map[string]string{"x.log.bz2": "2024-01-01T10:00:00Z first line of a bzip2 file\n2024-01-01T10:00:01Z second line\n"}, "bzip2"},
		{"x.log.xz", xzBuf.Bytes(), map[string]string{"x.log.xz": text}, "xz"},
		{"x.log.zst", zst, map[string]string{"x.log.zst": text}, "zstd"},
		{"renamed.txt", gz(t, []byte(text)), map[string]string{"renamed.txt": text}, "gzip"}, // magic bytes, not names
		{"b.zip", zipOf(t, zip.Deflate, entry{"a/one.log", []byte(text)}, entry{"two.log", []byte("x\n")}), map[string]string{"a/one.log": text, "two.log": "x\n"}, "zip"},
		{"b.tar.gz", gz(t, tarOf(t, reg("var/log/syslog", text), &tar.Header{Name: "var/log/", Typeflag: tar.TypeDir})), map[string]string{"var/log/syslog": text}, "gzip > tar"},
		{"empty.log", nil, map[string]string{"empty.log": ""}, ""},
	}
	for _, c := range cases {
		got, problems := walkBytes(t, c.name, c.data, Limits{})
		if len(problems) > 0 {
			t.Errorf("%s: problems %v", c.name, problems)
		}
		if len(got) != len(c.want) {
			t.Errorf("%s: members %v, want %v", c.name, keys(got), keys(c.want))
		}
		for k, v := range c.want {
			if got[k] != v {
				t.Errorf("%s: member %q = %q, want %q", c.name, k, got[k], v)
			}
		}
	}
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// deflateRaw compresses b as zip's deflate method does.
func deflateRaw(b []byte) []byte {
	var buf bytes.Buffer
	w, _ := flate.NewWriter(&buf, flate.BestCompression)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

// rawZipMember writes a member whose header may lie about its sizes.
func rawZipMember(t *testing.T, zw *zip.Writer, name string, content []byte, declared uint64) {
	t.Helper()
	comp := deflateRaw(content)
	w, err := zw.CreateRaw(&zip.FileHeader{Name: name, Method: zip.Deflate, CRC32: crc32.ChecksumIEEE(content),
		CompressedSize64: uint64(len(comp)), UncompressedSize64: declared, Modified: testTime})
	if err != nil {
		t.Fatal(err)
	}
	w.Write(comp)
}

func TestHostileArchives(t *testing.T) {
	good := "2024-01-01T10:00:00Z good line\n"
	bombText := bytes.Repeat([]byte(strings.Repeat("a", 999)+"\n"), 32<<10) // 32 MiB of text

	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	add := func(h *zip.FileHeader, data []byte) {
		w, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(data)
	}
	add(&zip.FileHeader{Name: "good/first.log", Method: zip.Deflate}, []byte(good))
	add(&zip.FileHeader{Name: "../../etc/passwd", Method: zip.Deflate}, []byte("root:x:0:0\n"))
	add(&zip.FileHeader{Name: "/abs/path.log", Method: zip.Deflate}, []byte(good))
	add(&zip.FileHeader{Name: `C:\windows\evil.log`, Method: zip.Deflate}, []byte(good))
	link := &zip.FileHeader{Name: "link.log", Method: zip.Store}
	link.SetMode(fs.ModeSymlink | 0o777)
	add(link, []byte("/etc/shadow"))
	add(&zip.FileHeader{Name: "bomb.log", Method: zip.Deflate}, bombText)                                                       // honest sizes, huge ratio
	rawZipMember(t, zw, "liar.log", bombText[:4<<20], 100)                                                                      // declares 100 bytes
	rawZipMember(t, zw, "huge.log", []byte(good), 1<<50)                                                                        // declares a petabyte
	add(&zip.FileHeader{Name: "bin/tool", Method: zip.Deflate}, append([]byte("\x7fELF\x02\x01\x01\x00"), make([]byte, 64)...)) // binary
	add(&zip.FileHeader{Name: "x.7z", Method: zip.Store}, []byte{'7', 'z', 0xbc, 0xaf, 0x27, 0x1c, 0, 4})
	add(&zip.FileHeader{Name: "good/last.log", Method: zip.Deflate}, []byte(good))
	zw.Close()

	got, problems := walkBytes(t, "bundle.zip", buf.Bytes(), Limits{})
	if got["good/first.log"] != good || got["good/last.log"] != good {
		t.Errorf("good members not read: %v", keys(got))
	}
	want := map[string]string{
		"../../etc/passwd":    "escapes the archive",
		"/abs/path.log":       "absolute path",
		`C:\windows\evil.log`: "drive letter",
		"link.log":            "symbolic link",
		"bomb.log":            "zip bomb",
		"liar.log":            "read failed",
		"huge.log":            "over the member limit",
		"bin/tool":            "binary file",
		"x.7z":                "7-Zip archives are not supported",
	}
	checkProblems(t, problems, want)
	if s, ok := got["liar.log"]; ok && len(s) > 100 {
		t.Errorf("liar.log yielded %d bytes past its declared 100", len(s))
	}
}

func checkProblems(t *testing.T, problems []Problem, want map[string]string) {
	t.Helper()
	seen := map[string]bool{}
	for _, p := range problems {
		frag, ok := want[p.Path]
		if !ok {
			t.Errorf("unexpected problem %s", p)
			continue
		}
		if !strings.Contains(p.Reason, frag) {
			t.Errorf("problem %s: reason lacks %q", p, frag)
		}
		seen[p.Path] = true
	}
	for path := range want {
		if !seen[path] {
			t.Errorf("no problem reported for %s", path)
		}
	}
}

func TestHostileTar(t *testing.T) {
	good := "2024-01-01T10:00:00Z good line\n"
	data := tarOf(t,
		reg("a.log", good),
		reg("../escape.log", good),
		&tar.Header{Name: "sym.log", Typeflag: tar.TypeSymlink, Linkname: "/etc/passwd"},
		&tar.Header{Name: "hard.log", Typeflag: tar.TypeLink, Linkname: "a.log"},
		&tar.Header{Name: "dev/null", Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 3},
		&tar.Header{Name: "fifo", Typeflag: tar.TypeFifo},
		reg("b.log", good),
	)
	got, problems := walkBytes(t, "x.tar", data, Limits{})
	if got["a.log"] != good || got["b.log"] != good || len(got) != 2 {
		t.Errorf("members %v", keys(got))
	}
	checkProblems(t, problems, map[string]string{
		"../escape.log": "escapes the archive",
		"sym.log":       "symbolic link",
		"hard.log":      "hard link",
		"dev/null":      "device or FIFO",
		"fifo":          "device or FIFO",
	})
}

func TestGzipBomb(t *testing.T) {
	var buf bytes.Buffer
	w, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	w.Write(bytes.Repeat([]byte(strings.Repeat("a", 999)+"\n"), 64<<10)) // 64 MiB of text
	w.Close()
	bomb := buf.Bytes()
	if r := float64(64<<20) / float64(len(bomb)); r < 400 {
		t.Fatalf("test bomb expands only %.0fx", r)
	}
	n := 0
	var problems []Problem
	src := Source{File: bytes.NewReader(bomb), Size: int64(len(bomb)), Name: "bomb.log.gz"}
	err := Walk(context.Background(), src, Limits{}, func(m *Member) error {
		k, _ := io.Copy(io.Discard, m)
		n += int(k)
		return nil
	}, func(p Problem) { problems = append(problems, p) })
	if err != nil {
		t.Fatal(err)
	}
	if n > 32<<20 {
		t.Errorf("read %d bytes of the bomb before stopping", n)
	}
	checkProblems(t, problems, map[string]string{"bomb.log.gz": "decompression bomb"})
}

func TestCorruptMembers(t *testing.T) {
	good := "2024-01-01T10:00:00Z good line\n"
	bad := bytes.Repeat([]byte("2024-01-01T10:00:00Z some text that compresses\n"), 2000)
	data := zipOf(t, zip.Deflate, entry{"one.log", []byte(good)}, entry{"bad.log", bad}, entry{"three.log", []byte(good)})
	// Flip bytes in the middle of bad.log's compressed data.
	zr, _ := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	off, _ := zr.File[1].DataOffset()
	for i := int64(10); i < 40; i++ {
		data[off+i] ^= 0x55
	}
	got, problems := walkBytes(t, "b.zip", data, Limits{})
	if got["one.log"] != good || got["three.log"] != good {
		t.Errorf("good members lost: %v", keys(got))
	}
	checkProblems(t, problems, map[string]string{"bad.log": "read failed"})

	// A truncated tar.gz: the members before the cut are read, the rest is
	// reported.
	var files []*tar.Header
	for i := 0; i < 50; i++ {
		files = append(files, reg("m"+string(rune('a'+i%26))+string(rune('a'+i/26))+".log", string(bad)))
	}
	tgz := gz(t, tarOf(t, files...))
	got, problems = walkBytes(t, "cut.tar.gz", tgz[:len(tgz)/2], Limits{})
	if len(got) == 0 || len(got) >= 50 {
		t.Errorf("%d members read from half an archive", len(got))
	}
	if len(problems) == 0 {
		t.Error("truncation not reported")
	}
	for _, p := range problems {
		if !p.Failed {
			t.Errorf("truncation reported as a skip: %s", p)
		}
	}
}

func TestNesting(t *testing.T) {
	good := "2024-01-01T10:00:00Z deep line\n"
	inner := zipOf(t, zip.Deflate, entry{"deep.log", []byte(good)})
	for i := 0; i < 4; i++ { // five zips in all
		inner = zipOf(t, zip.Deflate, entry{"level.zip", inner}, entry{"shallow.log", []byte(good)})
	}
	got, problems := walkBytes(t, "nest.zip", inner, Limits{})
	if got["shallow.log"] != good || got["level.zip/level.zip/level.zip/shallow.log"] != good {
		t.Errorf("members %v", keys(got))
	}
	checkProblems(t, problems, map[string]string{"level.zip/level.zip/level.zip/level.zip": "over the limit of 4"})

	// Deeper limits read it all.
	got, problems = walkBytes(t, "nest.zip", inner, Limits{MaxDepth: 5})
	if len(problems) != 0 || got["level.zip/level.zip/level.zip/level.zip/deep.log"] != good {
		t.Errorf("depth 5: %v %v", keys(got), problems)
	}

	// gzip inside gzip inside ... counts each layer.
	b := []byte(good)
	for i := 0; i < 6; i++ {
		b = gz(t, b)
	}
	_, problems = walkBytes(t, "x.log.gz", b, Limits{})
	checkProblems(t, problems, map[string]string{"x.log.gz": "nested 5 levels deep"})
}

func TestNestedZipSpool(t *testing.T) {
	var sb strings.Builder
	for i := 0; sb.Len() < 12<<20; i++ {
		fmt.Fprintf(&sb, "2024-01-01T10:00:00Z request %d from 10.%d.%d.%d took %d ms\n", i*7919%100003, i%256, i*31%256, i*17%256, i*13%997)
	}
	text := sb.String()
	inner := zipOf(t, zip.Deflate, entry{"app.log", []byte(text)})
	stored := zipOf(t, zip.Store, entry{"inner.zip", inner})
	tgz := gz(t, tarOf(t, reg("inner.zip", string(inner))))
	spoolDir := t.TempDir()

	// A stored zip inside a zip is read in place, a zip inside a tar.gz
	// is spooled to SpoolDir, which is empty again afterwards.
	for name, data := range map[string][]byte{"stored.zip": stored, "b.tar.gz": tgz} {
		got, problems := walkBytes(t, name, data, Limits{SpoolDir: spoolDir})
		if len(problems) != 0 || got["inner.zip/app.log"] != text {
			t.Errorf("%s: %d members, problems %v", name, len(got), problems)
		}
		left, _ := os.ReadDir(spoolDir)
		if len(left) != 0 {
			t.Errorf("%s: spool files left: %v", name, left)
		}
	}
	// Over the spool limit: reported and skipped.
	_, problems := walkBytes(t, "b.tar.gz", tgz, Limits{SpoolDir: spoolDir, MaxSpoolBytes: 1 << 20})
	checkProblems(t, problems, map[string]string{"inner.zip": "over the spool limit"})
}

func TestLimits(t *testing.T) {
	var files []entry
	for i := 0; i < 5; i++ {
		files = append(files, entry{string(rune('a'+i)) + ".log", bytes.Repeat([]byte("line of text\n"), 1000)})
	}
	data := zipOf(t, zip.Deflate, files...)
	got, problems := walkBytes(t, "b.zip", data, Limits{MaxMembers: 3})
	if len(got) != 3 || len(problems) != 1 || !strings.Contains(problems[0].Reason, "over the limit of 3") {
		t.Errorf("max members: %v %v", keys(got), problems)
	}
	got, problems = walkBytes(t, "b.zip", data, Limits{MaxTotalBytes: 20000})
	if len(got) != 2 || len(problems) == 0 || !strings.Contains(problems[0].Reason, "total expanded size limit") {
		t.Errorf("max total: %v %v", keys(got), problems)
	}
	_, problems = walkBytes(t, "b.zip", data, Limits{MaxMemberBytes: 5000})
	if len(problems) != 5 || !strings.Contains(problems[0].Reason, "member limit") {
		t.Errorf("max member: %v", problems)
	}
}

func TestCancel(t *testing.T) {
	data := zipOf(t, zip.Deflate, entry{"a.log", []byte("x\n")}, entry{"b.log", []byte("y\n")})
	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	err := Walk(ctx, Source{File: bytes.NewReader(data), Size: int64(len(data)), Name: "b.zip"}, Limits{}, func(m *Member) error {
		n++
		cancel()
		io.Copy(io.Discard, m)
		return nil
	}, nil)
	if err != context.Canceled || n != 1 {
		t.Errorf("err %v after %d members", err, n)
	}
}

func TestSafePath(t *testing.T) {
	for name, want := range map[string]string{
		"a/b.log":     "a/b.log",
		"./a//b.log":  "a/b.log",
		`dir\file`:    "dir/file",
		"a/../b":      "",
		"../x":        "",
		"/etc/passwd": "",
		"c:/x":        "",
		"":            "",
		"bad\x00name": `bad\x00name`,
	} {
		got, reason := SafePath(name)
		if got != want || (want == "") != (reason != "") {
			t.Errorf("SafePath(%q) = %q, %q", name, got, reason)
		}
	}
}

func TestSniff(t *testing.T) {
	if k, _ := Sniff([]byte("plain text\n")); k != KindText {
		t.Errorf("text: %v", k)
	}
	if k, _ := Sniff([]byte("Rar!\x1a\x07\x00")); k != KindUnsupported {
		t.Errorf("rar: %v", k)
	}
	if k, _ := Sniff(append([]byte("abc"), 0, 1, 2)); k != KindBinary {
		t.Errorf("binary: %v", k)
	}
	big5 := []byte{0xa7, 0x41, 0xa6, 0x6e, '\n', 0xa7, 0x41, '\n'}
	if k, _ := Sniff(big5); k != KindText {
		t.Errorf("legacy encoding read as %v", k)
	}
	if _, err := os.Stat(filepath.Join("testdata", "hello.log.bz2")); err != nil {
		t.Fatal(err)
	}
}
