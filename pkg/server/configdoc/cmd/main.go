// Command cmd regenerates the configuration references in docs/ from the
// Go source (see package configdoc):
//
//	go run ./pkg/server/configdoc/cmd
package main

import (
	"fmt"
	"os"

	"github.com/logsift/logsift/pkg/server/configdoc"
)

func main() {
	root, err := configdoc.ModuleRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "configdoc:", err)
		os.Exit(1)
	}
	written, err := configdoc.WriteAll(root)
	for _, p := range written {
		fmt.Println("wrote", p)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "configdoc:", err)
		os.Exit(1)
	}
}
