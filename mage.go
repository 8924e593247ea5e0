//go:build ignore

// This file lets `go run mage.go <target>` run the Magefile without
// installing mage: the README's commands use it.
package main

import (
	"os"

	"github.com/magefile/mage/mage"
)

func main() { os.Exit(mage.Main()) }
