package importer

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestStateFile(t *testing.T) {
	dir := t.TempDir()
	s, err := loadState(dir, "case/4711 ü")
	if err != nil {
		t.Fatal(err)
	}
	s.markDone("k1", "a.log")
	if err := s.save(); err != nil {
		t.Fatal(err)
	}
	name := filepath.Base(s.path)
	if !strings.HasPrefix(name, "case_4711__-") || !strings.HasSuffix(name, ".json") {
		t.Errorf("state file name %q", name)
	}
	again, err := loadState(dir, "case/4711 ü")
	if err != nil || !again.isDone("k1") || again.isDone("k2") {
		t.Errorf("reloaded state: %v %+v", err, again.file)
	}
	if other, _ := loadState(dir, "case_4711 ü"); other.path == s.path {
		t.Error("two workspaces share a state file")
	}
	// A damaged state costs a full re-import, not a failure.
	os.WriteFile(s.path, []byte("{not json"), 0o600)
	damaged, err := loadState(dir, "case/4711 ü")
	if err != nil || damaged.isDone("k1") {
		t.Errorf("damaged state: %v", err)
	}
}

func TestPlainProgress(t *testing.T) {
	var buf bytes.Buffer
	imp := &importer{}
	p := &progress{imp: imp, w: &buf, totalBytes: 4 << 20, totalFiles: 3}
	imp.prog = p
	p.start(&buf)
	p.readBytes.Store(1 << 20)
	p.filesDone.Store(1)
	imp.lines.Store(12345)
	p.render()
	p.printProblem(Problem{File: "x.bin", Reason: "binary file"})
	p.stop()
	out := buf.String()
	for _, want := range []string{"files 1/3", "1.0 MiB of 4.0 MiB read (25%)", "12k lines", "ETA", "skipped x.bin: binary file"} {
		if !strings.Contains(out, want) {
			t.Errorf("progress output lacks %q: %q", want, out)
		}
	}
}
