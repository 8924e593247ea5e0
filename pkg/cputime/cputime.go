// Package cputime reads the CPU time a process has used (user plus
// system, every thread and the garbage collector included), for the
// benchmarks and load tools that report CPU per operation: unlike wall
// time, it hardly grows when other work shares the machine.
package cputime

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Self is the CPU time this process has used so far, or -1 where the
// system cannot tell.
func Self() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return -1
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// Process is the CPU time process pid has used so far, read from Linux's
// /proc/<pid>/stat (in clock ticks of 1/100 s, USER_HZ).
func Process(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The fields after the command name, which is in parentheses and
	// may hold spaces.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: bad utime or stime %q %q", pid, f[11], f[12])
	}
	return time.Duration(ut+st) * time.Second / 100, nil
}

// PerOp is the CPU time per operation in milliseconds since start (a value
// of Self), over n operations; ok is false when either reading failed.
func PerOp(start time.Duration, n int) (ms float64, ok bool) {
	end := Self()
	if start < 0 || end < 0 || n <= 0 {
		return 0, false
	}
	return float64(end-start) / float64(n) / 1e6, true
}
