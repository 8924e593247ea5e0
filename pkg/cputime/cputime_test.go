package cputime

import (
	"os"
	"testing"
	"time"
)

func TestSelfAndProcessAgree(t *testing.T) {
	start := Self()
	if start < 0 {
		t.Fatal("Self cannot read the CPU time")
	}
	// Burn CPU until Self has counted 100 ms of it, however busy the
	// machine is (a wall-clock budget would flake under load).
	deadline := time.Now().Add(30 * time.Second)
	x, end := 0, start
	for end-start < 100*time.Millisecond {
		for range 1 << 16 {
			x++
		}
		end = Self()
		if time.Now().After(deadline) {
			t.Fatalf("Self moved from %v to %v in 30 s of busy work (x=%d)", start, end, x)
		}
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
