// Package glob matches file paths against globs in path.Match syntax per
// segment, where a segment that is exactly "**" matches any number of
// directories; the agent's config and tailer share it.
package glob

import (
	"fmt"
	"path"
	"path/filepath"
	"strings"
)

// Pattern is a compiled absolute path glob.
type Pattern struct {
	raw  string
	segs []string
	root string
}

// Compile checks and compiles an absolute glob.
func Compile(p string) (*Pattern, error) {
	if !filepath.IsAbs(p) {
		return nil, fmt.Errorf("pattern %q is not an absolute path", p)
	}
	clean := filepath.ToSlash(filepath.Clean(p))
	segs := strings.Split(strings.TrimPrefix(clean, "/"), "/")
	rootEnd := 0
	for i, s := range segs {
		if strings.Contains(s, "**") && s != "**" {
			return nil, fmt.Errorf("pattern %q: '**' must be a whole path segment", p)
		}
		if _, err := path.Match(s, ""); err != nil {
			return nil, fmt.Errorf("pattern %q: segment %q: %w", p, s, err)
		}
		if rootEnd == i && !hasMeta(s) {
			rootEnd = i + 1
		}
	}
	if rootEnd == len(segs) {
		rootEnd-- // a literal file name: its directory is the root
	}
	return &Pattern{raw: p, segs: segs, root: "/" + strings.Join(segs[:rootEnd], "/")}, nil
}

func hasMeta(s string) bool { return strings.ContainsAny(s, `*?[\`) }

func splitPath(p string) []string {
	return strings.Split(strings.TrimPrefix(filepath.ToSlash(filepath.Clean(p)), "/"), "/")
}

// Root is the literal directory the pattern starts in: a walk for matches
// starts there.
func (p *Pattern) Root() string { return p.root }

// String returns the pattern as written.
func (p *Pattern) String() string { return p.raw }

// Match reports whether the file path matches the whole pattern.
func (p *Pattern) Match(file string) bool { return matchSegs(p.segs, splitPath(file)) }

func matchSegs(pat, name []string) bool {
	for len(pat) > 0 {
		if pat[0] == "**" {
			rest := pat[1:]
			for i := 0; i <= len(name); i++ {
				if matchSegs(rest, name[i:]) {
					return true
				}
			}
			return false
		}
		if len(name) == 0 {
			return false
		}
		if ok, _ := path.Match(pat[0], name[0]); !ok {
			return false
		}
		pat, name = pat[1:], name[1:]
	}
	return len(name) == 0
}

// MayContain reports whether files below dir can match, so a walk can skip
// directories that cannot.
func (p *Pattern) MayContain(dir string) bool {
	d := splitPath(dir)
	if len(d) == 1 && d[0] == "" {
		return true // the filesystem root
	}
	pat := p.segs
	for len(d) > 0 {
		if len(pat) == 0 {
			return false
		}
		if pat[0] == "**" {
			return true
		}
		if ok, _ := path.Match(pat[0], d[0]); !ok {
			return false
		}
		pat, d = pat[1:], d[1:]
	}
	return len(pat) > 0
}
