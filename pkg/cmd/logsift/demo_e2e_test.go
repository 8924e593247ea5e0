package main

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestDemoRunsTheMainJob runs the README's main command the way a script
// would: the server starts, the agent imports the sample bundle and tails
// the live file, and the printed queries are the ones that work.
func TestDemoRunsTheMainJob(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binPath, "demo", "-exit-after-load", "-lines", "500", "-dir", t.TempDir(),
		"-http-listen-address", "127.0.0.1:0", "-grpc-listen-address", "127.0.0.1:0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("demo failed: %v\n%s", err, out)
	}
	for _, want := range []string{"imported", `workspace "demo-bundle"`, "4 files", `{job="demo-live"}`, "curl -sG http://127.0.0.1:"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
}
