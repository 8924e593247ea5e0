// Command generate writes logsift's provisioned Grafana dashboards
// (provisioning/dashgen) as JSON files into provisioning/dashboards/:
//
//	go run ./provisioning/generate            # from the repository root
//	go run ./provisioning/generate -out DIR
//
// The output is checked in; provisioning/dashgen's test fails when it
// differs from what the code generates.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/logsift/logsift/provisioning/dashgen"
)

func main() {
	out := flag.String("out", filepath.Join("provisioning", "dashboards"), "directory to write the dashboards into")
	flag.Parse()
	if err := run(*out); err != nil {
		fmt.Fprintln(os.Stderr, "generate:", err)
		os.Exit(1)
	}
}

func run(dir string) error {
	files, err := dashgen.Files()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, files[name], 0o644); err != nil {
			return fmt.Errorf("write %s: %w", p, err)
		}
		fmt.Println("wrote", p)
	}
	return nil
}
