package configdoc

import (
	"fmt"
	"go/scanner"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// metricName matches a string literal that starts with a metric name of
// logsift's, as the VictoriaMetrics constructors take it: the name, then
// optionally the labels in braces.
var metricName = regexp.MustCompile(`^(logsift_[a-z0-9_]*[a-z0-9])(\{|$)`)

// MetricNames lists the metric names that the server, the agent and the
// plugin register: every string literal in their non-test Go files that
// begins with logsift_<name>, alone or followed by its labels. Names are
// always written out whole in logsift's code (never assembled from
// parts), which is what makes this scan complete.
func MetricNames(root string) ([]string, error) {
	seen := map[string]bool{}
	fset := token.NewFileSet()
	for _, top := range []string{"pkg", "agent", "datasource"} {
		err := filepath.WalkDir(filepath.Join(root, top), func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			name := d.Name()
			if d.IsDir() {
				if name == "testdata" || name == "node_modules" || strings.HasPrefix(name, ".") {
					return filepath.SkipDir
				}
				return nil
			}
			if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
				return nil
			}
			src, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			var sc scanner.Scanner
			sc.Init(fset.AddFile(path, -1, len(src)), src, nil, 0)
			for {
				_, tok, lit := sc.Scan()
				if tok == token.EOF {
					break
				}
				if tok != token.STRING {
					continue
				}
				s, err := strconv.Unquote(lit)
				if err != nil {
					continue
				}
				if m := metricName.FindStringSubmatch(s); m != nil {
					seen[m[1]] = true
				}
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("scan %s for metric names: %w", top, err)
		}
	}
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	sort.Strings(names)
	return names, nil
}
