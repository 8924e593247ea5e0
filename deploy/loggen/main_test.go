package main

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestBundleHoldsEverySampleFile(t *testing.T) {
	out := filepath.Join(t.TempDir(), "b", "sample-bundle.tar.gz")
	if err := writeBundle(out, time.Now(), 50); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	seen := map[string]int{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		seen[h.Name] = strings.Count(string(b), "\n")
	}
	for _, p := range bundlePaths {
		if seen[p] < 50 {
			t.Errorf("%s: %d lines, want at least 50", p, seen[p])
		}
	}
	if _, err := os.Stat(out + ".tmp"); !os.IsNotExist(err) {
		t.Errorf("temporary file left behind: %v", err)
	}
}

func TestLiveRotates(t *testing.T) {
	p := filepath.Join(t.TempDir(), "app.log")
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	if err := live(ctx, p, 200, 4096); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("live ended with %v", err)
	}
	// The live file may have just been rotated (and be empty); it exists.
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("after a rotation the log is not recreated: %v", err)
	}
	b, err := os.ReadFile(p + ".1")
	if err != nil {
		t.Fatalf("no rotated file: %v", err)
	}
	if len(b) < 4096 {
		t.Errorf("rotated file holds %d bytes; rotation happens past 4096", len(b))
	}
	for i, l := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		if !strings.Contains(l, " level=") || !strings.Contains(l, " service=") {
			t.Fatalf("line %d of the rotated file has no level or service: %q", i+1, l)
		}
	}
}
