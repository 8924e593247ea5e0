package configdoc

import (
	"bufio"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"sync"
)

// Source reads the doc comments of Go types from the module's source tree.
// Reflection gives the shape of a configuration, but comments exist only
// in the source, so the generator parses the package of every type it
// meets (once) with go/parser.
type Source struct {
	root   string // module root directory
	module string // module path from go.mod

	mu   sync.Mutex
	pkgs map[string]map[string]*typeDoc // import path -> type name -> docs
}

// typeDoc is what the source says about one named type.
type typeDoc struct {
	doc    string
	fields map[string]fieldDoc // by Go field name
	order  []string            // Go field names in declaration order
}

type fieldDoc struct {
	doc     string // the comment above the field
	comment string // the comment after it on the same line
}

// NewSource reads go.mod in root. Types of packages outside the module
// have no docs.
func NewSource(root string) (*Source, error) {
	mod, err := modulePath(filepath.Join(root, "go.mod"))
	if err != nil {
		return nil, err
	}
	return &Source{root: root, module: mod, pkgs: map[string]map[string]*typeDoc{}}, nil
}

// ModuleRoot finds the directory of the module's go.mod: upwards from the
// working directory (go run, go generate and go test all run inside the
// module), else from this source file's directory.
func ModuleRoot() (string, error) {
	var starts []string
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	if _, file, _, ok := runtime.Caller(0); ok {
		starts = append(starts, filepath.Dir(file))
	}
	for _, dir := range starts {
		for d := dir; ; d = filepath.Dir(d) {
			if mod, err := modulePath(filepath.Join(d, "go.mod")); err == nil && mod == thisModule {
				return d, nil
			}
			if filepath.Dir(d) == d {
				break
			}
		}
	}
	return "", fmt.Errorf("cannot find the go.mod of %s above %v; run from inside the repository", thisModule, starts)
}

// thisModule is the module whose configuration is documented.
const thisModule = "github.com/logsift/logsift"

func modulePath(gomod string) (string, error) {
	f, err := os.Open(gomod)
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "module "); ok {
			return strings.Trim(strings.TrimSpace(rest), `"`), nil
		}
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("read %s: %w", gomod, err)
	}
	return "", fmt.Errorf("%s has no module line", gomod)
}

// lookup returns the docs of t's declaration, or nil for unnamed types and
// types outside the module.
func (s *Source) lookup(t reflect.Type) (*typeDoc, error) {
	pkg, name := t.PkgPath(), t.Name()
	if pkg == "" || name == "" {
		return nil, nil
	}
	rel, ok := strings.CutPrefix(pkg, s.module)
	if !ok || (rel != "" && rel[0] != '/') {
		return nil, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	types, ok := s.pkgs[pkg]
	if !ok {
		var err error
		if types, err = parsePackage(filepath.Join(s.root, filepath.FromSlash(rel))); err != nil {
			return nil, fmt.Errorf("read the source of %s: %w", pkg, err)
		}
		s.pkgs[pkg] = types
	}
	return types[name], nil
}

// parsePackage collects the type declarations of the non-test files in dir.
func parsePackage(dir string) (map[string]*typeDoc, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	fset := token.NewFileSet()
	out := map[string]*typeDoc{}
	var errs []error
	for _, e := range entries {
		n := e.Name()
		if e.IsDir() || !strings.HasSuffix(n, ".go") || strings.HasSuffix(n, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, n), nil, parser.ParseComments|parser.SkipObjectResolution)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, decl := range f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != token.TYPE {
				continue
			}
			for _, spec := range gd.Specs {
				ts := spec.(*ast.TypeSpec)
				doc := ts.Doc
				if doc == nil && len(gd.Specs) == 1 {
					doc = gd.Doc
				}
				td := &typeDoc{doc: doc.Text(), fields: map[string]fieldDoc{}}
				if st, ok := ts.Type.(*ast.StructType); ok {
					for _, fl := range st.Fields.List {
						fd := fieldDoc{doc: fl.Doc.Text(), comment: fl.Comment.Text()}
						names := fl.Names
						if len(names) == 0 { // embedded: named after its type
							names = []*ast.Ident{{Name: embeddedName(fl.Type)}}
						}
						for _, id := range names {
							td.fields[id.Name] = fd
							td.order = append(td.order, id.Name)
						}
					}
				}
				out[ts.Name.Name] = td
			}
		}
	}
	return out, errors.Join(errs...)
}

func embeddedName(e ast.Expr) string {
	switch x := e.(type) {
	case *ast.StarExpr:
		return embeddedName(x.X)
	case *ast.SelectorExpr:
		return x.Sel.Name
	case *ast.Ident:
		return x.Name
	}
	return ""
}
