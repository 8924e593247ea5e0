package importer

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/logsift/logsift/agent/archive"
	"github.com/logsift/logsift/agent/detect"
)

// Explain prints, for every file and archive member under paths, what
// detection decided (timestamp format, zone and year, how records span
// lines, levels, host) and the evidence for it, so that a user can trust
// or correct it with overrides. It reads only the first lines of each
// file, but walks whole archives to reach their members.
func Explain(w io.Writer, paths []string, ov detect.Overrides) error {
	return ExplainContext(context.Background(), w, paths, ov, archive.Limits{})
}

// ExplainContext is Explain with cancellation and archive limits.
func ExplainContext(ctx context.Context, w io.Writer, paths []string, ov detect.Overrides, lim archive.Limits) error {
	if err := ov.Validate(); err != nil {
		return err
	}
	ew := &explainWriter{w: w}
	srcs, err := listSources(paths, func(p Problem) { ew.problem(p.File, p.Reason, p.Failed) })
	if err != nil {
		return err
	}
	for _, s := range srcs {
		if err := explainSource(ctx, ew, s, ov, lim); err != nil {
			return err
		}
	}
	return ew.err
}

func explainSource(ctx context.Context, ew *explainWriter, s source, ov detect.Overrides, lim archive.Limits) error {
	f, err := os.Open(s.abs)
	if err != nil {
		ew.problem(s.name, fmt.Sprintf("cannot open: %v", err), true)
		return nil
	}
	defer f.Close()
	src := archive.Source{File: f, Size: s.size, Name: s.name, Prefix: s.prefix, ModTime: s.mtime}
	return archive.Walk(ctx, src, lim, func(m *archive.Member) error {
		settings, err := ov.For(m.Path)
		if err != nil {
			return err
		}
		sp := newSplitter(m, detect.DefaultMaxRecordBytes, nil)
		defer sp.release()
		sample, _ := sp.sample(detect.SampleLines, detect.SampleBytes)
		ew.printf("== %s\n", m.Path)
		desc := "text"
		if m.Via != "" {
			desc = "text via " + m.Via
		}
		if m.Size >= 0 {
			desc += fmt.Sprintf(", %d bytes", m.Size)
		}
		if !m.ModTime.IsZero() {
			desc += ", modified " + m.ModTime.UTC().Format(time.RFC3339)
		}
		ew.printf("  content:    %s\n", desc)
		if err := sp.readErr(); err != nil {
			ew.printf("  read error: %v (explained from the lines read before it)\n", err)
		}
		prof := detect.Detect(sample, detect.FileInfo{Path: m.Path, ModTime: m.ModTime}, settings)
		prof.Explain(ew, sample)
		if !prof.Skip {
			ew.printf("  stream:     {workspace=…, source=\"import\", file=%q", m.Path)
			if prof.Host != "" {
				ew.printf(", host=%q", prof.Host)
			}
			ew.printf(", service_name=<workspace>}; each entry keeps its first line number as metadata \"line\"\n")
		}
		ew.printf("\n")
		return ew.err
	}, func(p archive.Problem) {
		ew.problem(p.Path, p.Reason, p.Failed)
	})
}

type explainWriter struct {
	w   io.Writer
	err error
}

func (e *explainWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	e.err = err
	return n, err
}

func (e *explainWriter) printf(format string, args ...any) {
	fmt.Fprintf(e, format, args...)
}

func (e *explainWriter) problem(path, reason string, failed bool) {
	if failed {
		e.printf("== %s\n  failed:     %s\n\n", path, reason)
		return
	}
	e.printf("== %s\n  skipped:    %s\n\n", path, reason)
}
