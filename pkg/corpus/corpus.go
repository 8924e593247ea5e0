// Package corpus finds the external corpus of real logs that tests and
// benchmarks read when it is present: ../shared/corpus next to the module
// root (or $LOGSIFT_CORPUS). The corpus is not part of the project; code
// that needs it skips with a clear message where it is absent.
package corpus

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"testing"
)

// Dir returns the corpus directory and whether it exists.
func Dir() (string, bool) {
	if d := os.Getenv("LOGSIFT_CORPUS"); d != "" {
		st, err := os.Stat(d)
		return d, err == nil && st.IsDir()
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", false
	}
	for d := wd; ; {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			c := filepath.Join(filepath.Dir(d), "shared", "corpus")
			st, err := os.Stat(c)
			return c, err == nil && st.IsDir()
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", false
		}
		d = parent
	}
}

// Require returns the corpus directory or skips the test.
func Require(tb testing.TB) string {
	tb.Helper()
	d, ok := Dir()
	if !ok {
		tb.Skip("the external log corpus (../shared/corpus next to the module root, or $LOGSIFT_CORPUS) is absent; this test needs it")
	}
	return d
}

// Files lists the regular files under dir (relative to the corpus root
// when dir is relative), sorted.
func Files(root, dir string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(filepath.Join(root, dir), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			out = append(out, p)
		}
		return nil
	})
	sort.Strings(out)
	return out, err
}

// Lines splits file content into lines the way logsift's tests push them:
// on '\n', with a trailing '\r' removed (most Loghub files use CRLF) and no
// empty last line for a final newline.
func Lines(data []byte) [][]byte {
	var out [][]byte
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		var line []byte
		if i < 0 {
			line, data = data, nil
		} else {
			line, data = data[:i], data[i+1:]
		}
		out = append(out, bytes.TrimSuffix(line, []byte{'\r'}))
	}
	return out
}
