package cputime

import (
	"os"
	"testing"
	"time"
)

func TestSelfAndProcessAgree(t *testing.T) {
	start := Self()
	// Burn some CPU so that both clocks move.
	deadline := time.Now().Add(200 * time.Millisecond)
	x := 0
	for time.Now().Before(deadline) {
		x++
	}
	end := Self()
	if start < 0 || end-start < 50*time.Millisecond {
		t.Fatalf("Self moved from %v to %v over 200 ms of work (x=%d)", start, end, x)
	}
	p, err := Process(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	// /proc counts in 10 ms ticks.
	if d := p - end; d < -50*time.Millisecond || d > time.Second {
		t.Errorf("Process %v, Self %v", p, end)
	}
	if _, err := Process(-1); err == nil {
		t.Error("no error for a process that does not exist")
	}
	if ms, ok := PerOp(start, 2); !ok || ms < 25 {
		t.Errorf("PerOp = %v, %v; want at least 25 ms per op", ms, ok)
	}
	if _, ok := PerOp(-1, 1); ok {
		t.Error("PerOp ok from a failed reading")
	}
}
