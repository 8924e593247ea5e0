package main

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// forbiddenImports are packages Grafana's plugin validator fails a backend
// for (system calls, process control, file access) or that have no place
// in it.
var forbiddenImports = map[string]string{
	"syscall":                  "system calls",
	"golang.org/x/sys":         "system calls",
	"unsafe":                   "unsafe memory access",
	"os/exec":                  "running programs",
	"io/ioutil":                "file access",
	"path/filepath":            "file paths",
	"plugin":                   "loading code",
	"github.com/joho/godotenv": "environment files",
}

// TestValidatorRules holds the plugin's own code to the rules of Grafana's
// plugin validator: no file system, no environment variable (the SDK
// reads its GF_PLUGIN_* settings itself), no syscall. Of package os only
// os.Exit is allowed, in main. Tests may do as they like.
func TestValidatorRules(t *testing.T) {
	fset := token.NewFileSet()
	files := 0
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		files++
		osName := ""
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			for bad, why := range forbiddenImports {
				if p == bad || strings.HasPrefix(p, bad+"/") {
					t.Errorf("%s imports %s (%s): Grafana's plugin validator refuses it", fset.Position(imp.Pos()), p, why)
				}
			}
			if p == "os" {
				osName = "os"
				if imp.Name != nil {
					osName = imp.Name.Name
				}
			}
		}
		if osName == "" {
			return nil
		}
		ast.Inspect(f, func(n ast.Node) bool {
			sel, ok := n.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			if id, ok := sel.X.(*ast.Ident); ok && id.Name == osName {
				if sel.Sel.Name != "Exit" || path != "main.go" {
					t.Errorf("%s uses os.%s: the plugin must not read files or the environment", fset.Position(sel.Pos()), sel.Sel.Name)
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 10 {
		t.Fatalf("checked only %d files: is the test running in datasource/?", files)
	}
}
