package importer

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/logsift/logsift/agent/archive"
	"github.com/logsift/logsift/agent/detect"
	"github.com/logsift/logsift/pkg/chunk"
)

const appLog = `2024-03-01 10:00:00,000 INFO starting
2024-03-01 10:00:01,500 ERROR request failed
java.lang.IllegalStateException: boom
	at com.example.Handler.handle(Handler.java:42)
	at com.example.Server.run(Server.java:7)
2024-03-01 10:00:02,000 WARN retrying
`

const syslogText = `Mar  1 10:00:00 web-1 sshd[100]: Accepted publickey for ops
Mar  1 10:00:05 web-1 sudo: ops : TTY=pts/0 ; COMMAND=/bin/true
Mar  1 10:00:09 web-1 sshd[100]: error: connection reset
`

// smallBundle writes a folder with plain, compressed and archived logs.
func smallBundle(t *testing.T, dir string) {
	t.Helper()
	writeFile(t, filepath.Join(dir, "app/app.log"), []byte(appLog))
	writeFile(t, filepath.Join(dir, "var/log/syslog.1.gz"), gzipBytes(t, []byte(syslogText)))
	inner := zipBytes(t, []packFile{{name: "logs/app.log", data: []byte(appLog)}}, zip.Deflate)
	writeFile(t, filepath.Join(dir, "archive/old.tar.gz"), gzipBytes(t, tarBytes(t, []packFile{
		{name: "var/log/syslog", data: []byte(syslogText)},
		{name: "nested/inner.zip", data: inner},
	})))
}

func TestImportSmallBundle(t *testing.T) {
	dir := t.TempDir()
	smallBundle(t, dir)
	sink := newFakeShipper(t)
	var prog bytes.Buffer
	sum, err := Run(context.Background(), Options{Paths: []string{dir}, Workspace: "case-4711", Labels: map[string]string{"team": "support"}, Progress: &prog}, sink)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Files != 4 || sum.Skipped+sum.Failed != 0 || sum.Lines != 2*6+2*3 || sum.Entries != 2*3+2*3 {
		t.Errorf("summary %+v", sum)
	}
	files := sink.byFile()
	wantFiles := []string{"app/app.log", "archive/old.tar.gz/nested/inner.zip/logs/app.log", "archive/old.tar.gz/var/log/syslog", "var/log/syslog.1.gz"}
	var gotFiles []string
	for f := range files {
		gotFiles = append(gotFiles, f)
	}
	sort.Strings(gotFiles)
	if fmt.Sprint(gotFiles) != fmt.Sprint(wantFiles) {
		t.Fatalf("files %v, want %v", gotFiles, wantFiles)
	}
	for key, s := range sink.streams {
		if s.labels.Get(LabelWorkspace) != "case-4711" || s.labels.Get(LabelSource) != "import" || s.labels.Get("team") != "support" {
			t.Errorf("stream %s lacks labels", key)
		}
		if s.labels.Get("service_name") != "case-4711" {
			t.Errorf("stream %s: service_name %q, want the workspace", key, s.labels.Get("service_name"))
		}
		isSyslog := strings.Contains(s.labels.Get(LabelFile), "syslog")
		if isSyslog != (s.labels.Get(LabelHost) == "web-1") {
			t.Errorf("stream %s: host label %q", key, s.labels.Get(LabelHost))
		}
	}
	app := files["app/app.log"]
	if len(app) != 3 {
		t.Fatalf("app.log: %d entries", len(app))
	}
	e := app[1]
	if lineNo(e) != 2 || e.Metadata.Get("detected_level") != "error" || !strings.HasSuffix(string(e.Line), "Server.java:7)") ||
		time.Unix(0, e.Timestamp).UTC().Format(time.RFC3339Nano) != "2024-03-01T10:00:01.5Z" {
		t.Errorf("app.log entry 2: line %d level %q ts %d %q", lineNo(e), e.Metadata.Get("detected_level"), e.Timestamp, e.Line)
	}
	if lineNo(app[2]) != 6 || app[2].Metadata.Get("detected_level") != "warn" {
		t.Errorf("app.log entry 3: %v", app[2].Metadata)
	}
	sys := files["archive/old.tar.gz/var/log/syslog"]
	if got := time.Unix(0, sys[0].Timestamp).UTC().Format(time.RFC3339); got != "2024-03-01T10:00:00Z" {
		t.Errorf("syslog year from the member time: %s", got)
	}
	// Every entry has a level, "unknown" where none is found, as the
	// server gives pushed lines.
	if sys[2].Metadata.Get("detected_level") != "error" || sys[0].Metadata.Get("detected_level") != "unknown" {
		t.Errorf("syslog levels: %v %v", sys[0].Metadata, sys[2].Metadata)
	}
	var out bytes.Buffer
	if err := sum.WriteSummary(&out); err != nil || !strings.Contains(out.String(), "imported 4 files") {
		t.Errorf("summary text %q", out.String())
	}
}

func TestReimportIsIdempotent(t *testing.T) {
	dir := t.TempDir()
	smallBundle(t, dir)
	state := t.TempDir()
	opts := Options{Paths: []string{dir}, Workspace: "ws", ChunkBytes: 64}
	a, b := newFakeShipper(t), newFakeShipper(t)
	if _, err := Run(context.Background(), opts, a); err != nil {
		t.Fatal(err)
	}
	if _, err := Run(context.Background(), opts, b); err != nil {
		t.Fatal(err)
	}
	if ia, ib := a.sortedIDs(), b.sortedIDs(); len(ia) < 8 || fmt.Sprint(ia) != fmt.Sprint(ib) {
		t.Errorf("chunk IDs differ between runs: %d vs %d", len(ia), len(ib))
	}
	// With a state directory the second run ships nothing at all.
	opts.StateDir = state
	if _, err := Run(context.Background(), opts, newFakeShipper(t)); err != nil {
		t.Fatal(err)
	}
	c := newFakeShipper(t)
	sum, err := Run(context.Background(), opts, c)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Resumed != 4 || sum.Files != 0 || c.chunks != 0 {
		t.Errorf("re-run with state: %+v, %d chunks", sum, c.chunks)
	}
	// A different label set is a different import.
	opts.Labels = map[string]string{"env": "prod"}
	sum, _ = Run(context.Background(), opts, newFakeShipper(t))
	if sum.Resumed != 0 || sum.Files != 4 {
		t.Errorf("changed labels still resumed: %+v", sum)
	}
}

func TestResumeAfterInterruption(t *testing.T) {
	dir := t.TempDir()
	for i := 0; i < 12; i++ {
		var b strings.Builder
		for j := 0; j < 400; j++ {
			fmt.Fprintf(&b, "2024-03-01 10:%02d:%02d,000 INFO file %d line %d\n", j/60%60, j%60, i, j)
		}
		writeFile(t, filepath.Join(dir, fmt.Sprintf("f%02d.log", i)), []byte(b.String()))
	}
	state := t.TempDir()
	opts := Options{Paths: []string{dir}, Workspace: "ws", StateDir: state, ChunkBytes: 4 << 10, Workers: 2}

	full := newFakeShipper(t)
	if _, err := Run(context.Background(), Options{Paths: opts.Paths, Workspace: "ws", ChunkBytes: opts.ChunkBytes}, full); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	first := newFakeShipper(t)
	first.onShip = func(n int) error {
		if n == 40 {
			cancel()
			return context.Canceled
		}
		return nil
	}
	if _, err := Run(ctx, opts, first); !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted run: %v", err)
	}
	first.Flush(context.Background()) // let the acknowledgements land

	second := newFakeShipper(t)
	sum, err := Run(context.Background(), opts, second)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Resumed == 0 || sum.Resumed == 12 {
		t.Errorf("resumed %d of 12 files", sum.Resumed)
	}
	union := first.entrySet()
	for k := range second.entrySet() {
		union[k] = true
	}
	want := full.entrySet()
	if len(union) != len(want) {
		t.Errorf("union of the two runs has %d entries, one full import %d", len(union), len(want))
	}
	for k := range want {
		if !union[k] {
			t.Fatalf("entry missing after resume: %.100s", k)
		}
	}
}

// treeOf lists every path under dir with its size.
func treeOf(t *testing.T, dir string) map[string]int64 {
	out := map[string]int64{}
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil {
			fi, _ := d.Info()
			out[p] = fi.Size()
		}
		return nil
	})
	return out
}

func TestImportHostileBundle(t *testing.T) {
	parent := t.TempDir()
	bundleDir := filepath.Join(parent, "case")
	spool := filepath.Join(parent, "spool")
	os.MkdirAll(spool, 0o755)
	good := "2024-03-01T10:00:00Z good line\n"

	var zbuf bytes.Buffer
	zw := zip.NewWriter(&zbuf)
	for _, m := range []struct{ name, data string }{
		{"logs/good.log", good},
		{"../../etc/passwd", "root:x:0:0::/root:/bin/sh\n"},
		{"/abs/path/evil.log", good},
		{"../outside.log", good},
		{"bin/blob.dat", "\x00\x01\x02\x03binary\x00"},
		{"logs/also-good.log", good},
	} {
		w, _ := zw.Create(m.name)
		w.Write([]byte(m.data))
	}
	link := &zip.FileHeader{Name: "logs/link.log"}
	link.SetMode(fs.ModeSymlink | 0o777)
	w, _ := zw.CreateHeader(link)
	w.Write([]byte("../../../../etc/shadow"))
	// A nested zip spooled from inside the tar below.
	zw.Close()

	var tbuf bytes.Buffer
	tw := tar.NewWriter(&tbuf)
	for _, h := range []*tar.Header{
		{Name: "bundle.zip", Typeflag: tar.TypeReg, Size: int64(zbuf.Len()), Mode: 0o644},
		{Name: "etc/shadow-link", Typeflag: tar.TypeSymlink, Linkname: "/etc/shadow"},
		{Name: "../../tmp/pwned", Typeflag: tar.TypeReg, Size: int64(len(good)), Mode: 0o644},
		{Name: "dev/sda", Typeflag: tar.TypeBlock},
	} {
		tw.WriteHeader(h)
		switch h.Name {
		case "bundle.zip":
			tw.Write(zbuf.Bytes())
		case "../../tmp/pwned":
			tw.Write([]byte(good))
		}
	}
	tw.Close()
	writeFile(t, filepath.Join(bundleDir, "support.tar.gz"), gzipBytes(t, tbuf.Bytes()))
	var bomb bytes.Buffer
	gw, _ := gzip.NewWriterLevel(&bomb, gzip.BestCompression)
	gw.Write(bytes.Repeat([]byte(strings.Repeat("z", 4095)+"\n"), 16<<10)) // 64 MiB
	gw.Close()
	writeFile(t, filepath.Join(bundleDir, "bomb.log.gz"), bomb.Bytes())
	writeFile(t, filepath.Join(bundleDir, "fine.log"), []byte(good))

	before := treeOf(t, parent)
	sink := newFakeShipper(t)
	var prog bytes.Buffer
	sum, err := Run(context.Background(), Options{Paths: []string{bundleDir}, Workspace: "hostile", Progress: &prog, Limits: archive.Limits{SpoolDir: spool}}, sink)
	if err != nil {
		t.Fatal(err)
	}
	files := sink.byFile()
	for _, f := range []string{"fine.log", "support.tar.gz/bundle.zip/logs/good.log", "support.tar.gz/bundle.zip/logs/also-good.log"} {
		if len(files[f]) != 1 || string(files[f][0].Line) != strings.TrimSuffix(good, "\n") {
			t.Errorf("good file %s not imported: %v", f, files[f])
		}
	}
	want := map[string]string{
		"support.tar.gz/bundle.zip/../../etc/passwd":   "escapes the archive",
		"support.tar.gz/bundle.zip//abs/path/evil.log": "absolute path",
		"support.tar.gz/bundle.zip/../outside.log":     "escapes the archive",
		"support.tar.gz/bundle.zip/bin/blob.dat":       "binary file",
		"support.tar.gz/bundle.zip/logs/link.log":      "symbolic link",
		"support.tar.gz/etc/shadow-link":               "symbolic link",
		"support.tar.gz/../../tmp/pwned":               "escapes the archive",
		"support.tar.gz/dev/sda":                       "device",
		"bomb.log.gz":                                  "decompression bomb",
	}
	seen := map[string]bool{}
	for _, p := range sum.Problems {
		frag, ok := want[p.File]
		if !ok || !strings.Contains(p.Reason, frag) {
			t.Errorf("problem %s (want %q)", p, frag)
		}
		seen[p.File] = true
		if !strings.Contains(prog.String(), p.File+": "+p.Reason) {
			t.Errorf("problem %s not printed", p)
		}
	}
	for f := range want {
		if !seen[f] {
			t.Errorf("no problem reported for %s", f)
		}
	}
	if sum.Failed != 1 || sum.Skipped != len(want)-1 {
		t.Errorf("skipped %d failed %d", sum.Skipped, sum.Failed)
	}
	// Nothing was written anywhere: the watched tree is unchanged and the
	// spool is empty.
	after := treeOf(t, parent)
	if fmt.Sprint(before) != fmt.Sprint(after) {
		t.Errorf("files changed under %s:\nbefore %v\nafter  %v", parent, before, after)
	}
	if _, err := os.Stat(filepath.Join(parent, "etc")); err == nil {
		t.Error("a traversal member was written")
	}
}

func TestImportValidation(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "a.log"), []byte("x\n"))
	sink := newFakeShipper(t)
	for _, opts := range []Options{
		{Paths: []string{dir}},
		{Paths: []string{dir}, Workspace: "w", Labels: map[string]string{"file": "x"}},
		{Paths: []string{dir}, Workspace: "w", Labels: map[string]string{"bad-name": "x"}},
		{Paths: []string{dir}, Workspace: "w", Overrides: detect.Overrides{Rules: []detect.Rule{{Multiline: "("}}}},
		{Paths: []string{filepath.Join(dir, "missing")}, Workspace: "w"},
		{Workspace: "w"},
	} {
		if _, err := Run(context.Background(), opts, sink); err == nil {
			t.Errorf("options %+v: no error", opts)
		}
	}
}

func TestOverrideSkipAndHost(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "a.log"), []byte(appLog))
	writeFile(t, filepath.Join(dir, "skip/me.log"), []byte(appLog))
	sink := newFakeShipper(t)
	sum, err := Run(context.Background(), Options{Paths: []string{dir}, Workspace: "w", Host: "db-7",
		Overrides: detect.Overrides{Rules: []detect.Rule{{Match: "skip/**", Skip: true}}}}, sink)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Files != 1 || sum.Skipped != 1 || !strings.Contains(sum.Problems[0].Reason, "detection rule") {
		t.Errorf("summary %+v", sum)
	}
	for _, s := range sink.streams {
		if s.labels.Get(LabelHost) != "db-7" {
			t.Errorf("host override not applied: %s", s.labels)
		}
	}
}

func TestExplain(t *testing.T) {
	dir := t.TempDir()
	smallBundle(t, dir)
	writeFile(t, filepath.Join(dir, "blob.bin"), []byte("\x00\x01\x02binary"))
	var out bytes.Buffer
	if err := Explain(&out, []string{dir}, detect.Overrides{Rules: []detect.Rule{{Match: "*.gz", Year: 2020}}}); err != nil {
		t.Fatal(err)
	}
	s := out.String()
	for _, want := range []string{
		"== app/app.log", "iso8601", "records:    start at a line with a timestamp",
		"first multi-line record (line 2)", "== archive/old.tar.gz/nested/inner.zip/logs/app.log",
		"text via gzip > tar > zip", "== var/log/syslog.1.gz", "syslog", "year:       2020 (override)",
		"host:       web-1", "== blob.bin", "binary file",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("explain output lacks %q:\n%s", want, s)
		}
	}
}

// TestImportChunkCodec: the importer builds its chunks with the codec it is
// given (the agent's chunks.codec), zstd by default, with the same entries.
func TestImportChunkCodec(t *testing.T) {
	dir := t.TempDir()
	smallBundle(t, dir)
	lines := map[chunk.Codec]int{}
	for _, codec := range []chunk.Codec{0, chunk.CodecLZ4} {
		sink := newFakeShipper(t)
		if _, err := Run(context.Background(), Options{Paths: []string{dir}, Workspace: "w", Chunk: chunk.Options{Codec: codec}}, sink); err != nil {
			t.Fatal(err)
		}
		want := cmp.Or(codec, chunk.DefaultCodec)
		if len(sink.codecs) != 1 || sink.codecs[want] == 0 {
			t.Fatalf("codec %v: chunks by codec %v", codec, sink.codecs)
		}
		for _, s := range sink.streams {
			lines[want] += len(s.entries)
		}
	}
	if lines[chunk.CodecZstd] == 0 || lines[chunk.CodecZstd] != lines[chunk.CodecLZ4] {
		t.Fatalf("entries by codec %v", lines)
	}
}
