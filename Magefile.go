//go:build mage

// Build, test and benchmark targets for logsift. Run them with
// `go run mage.go <target>` (no mage install needed) or `mage <target>`.
package main

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
)

// Default is what `mage` alone runs.
var Default = Test

func run(name string, args ...string) error {
	fmt.Println("+", name, strings.Join(args, " "))
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	return cmd.Run()
}

// Build compiles the server into bin/.
func Build() error {
	ext := ""
	if runtime.GOOS == "windows" {
		ext = ".exe"
	}
	return run("go", "build", "-o", "bin/logsift"+ext, "./pkg/cmd/logsift")
}

// Test runs every test: vet, the Go unit, fuzz-seed and end-to-end tests,
// and the race detector on the concurrent core.
func Test() error {
	if err := run("go", "vet", "./..."); err != nil {
		return err
	}
	if err := run("go", "test", "-count=1", "-timeout=20m", "./..."); err != nil {
		return err
	}
	return run("go", "test", "-count=1", "-race", "-timeout=10m", "./pkg/store/...", "./pkg/query/...", "./pkg/ingest/...")
}

// Demo runs the main job: the server on the embedded default with sample logs.
func Demo() error {
	return run("go", "run", "./pkg/cmd/logsift", "demo")
}
