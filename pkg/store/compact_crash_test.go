package store

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/logsift/logsift/pkg/chunk"
	"github.com/logsift/logsift/pkg/labels"
)

// The crash tests run the test binary again as a child process that opens
// a store, compacts it and stops at a chosen step, where the parent kills
// it with SIGKILL. TestMain sends the child to crashChild instead of the
// tests.
const (
	crashDirEnv  = "LOGSIFT_STORE_CRASH_DIR"
	crashStepEnv = "LOGSIFT_STORE_CRASH_STEP"
)

func TestMain(m *testing.M) {
	if dir := os.Getenv(crashDirEnv); dir != "" {
		crashChild(dir, os.Getenv(crashStepEnv))
		os.Exit(3) // crashChild never returns unless something failed
	}
	os.Exit(m.Run())
}

var (
	crashBase   = time.Date(2021, 9, 14, 0, 0, 0, 0, time.UTC).UnixNano()
	crashA      = labels.New("job", "crash", "host", "a")
	crashB      = labels.New("job", "crash", "host", "b")
	crashDuring = labels.New("job", "during")
)

func crashOpts() Options {
	return Options{TargetChunkSize: 8 << 10, Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))}
}

// crashChild opens the store, compacts it, and at step writes more
// entries (flushed ones and WAL-only ones), reports each acknowledged
// batch on stdout, says STOP and waits to be killed.
func crashChild(dir, step string) {
	fail := func(err error) {
		fmt.Println("ERROR", err)
		os.Exit(2)
	}
	s, err := Open(dir, crashOpts())
	if err != nil {
		fail(err)
	}
	ctx := context.Background()
	compactHook = func(at string) {
		if at != step {
			return
		}
		// index-tmp runs under the partition lock: a write would wait for it.
		if at != "index-tmp" {
			if err := s.Append(ctx, "t", []Stream{{Labels: crashDuring, Entries: entries(crashBase+int64(time.Hour), 500, "flushed-during")}}); err != nil {
				fail(err)
			}
			if err := s.Flush(ctx); err != nil {
				fail(err)
			}
			fmt.Println("ACKED flushed-during")
			if err := s.Append(ctx, "t", []Stream{{Labels: crashDuring, Entries: entries(crashBase+int64(2*time.Hour), 70, "wal-during")}}); err != nil {
				fail(err)
			}
			fmt.Println("ACKED wal-during")
		}
		fmt.Println("STOP")
		select {}
	}
	if err := s.Compact(ctx); err != nil {
		fail(err)
	}
	fail(fmt.Errorf("compaction ended without reaching step %q", step))
}

// crashStop ends a store as a kill would: nothing flushed, nothing closed
// but the lock.
func crashStop(s *Store) {
	s.closing.Store(true)
	close(s.stop)
	s.bg.Wait()
	s.wal.close()
	for _, tn := range s.tenants {
		for _, p := range tn.partitions() {
			p.close()
		}
	}
	s.unlock()
}

func TestCompactionSurvivesKill9AtEveryStep(t *testing.T) {
	for _, step := range []string{"sealed", "encoding", "encoded", "index-tmp", "indexed", "retired"} {
		t.Run(step, func(t *testing.T) {
			dir := t.TempDir()
			ctx := context.Background()
			// Acknowledged before the child starts: 2 x 3000 entries in
			// flushed chunks, 2 x 40 only in the WAL.
			s := openTest(t, dir, crashOpts())
			for i := 0; i < 6; i++ {
				if err := s.Append(ctx, "t", []Stream{
					{Labels: crashA, Entries: withMetadata(entries(crashBase+int64(i)*int64(time.Minute), 500, fmt.Sprint("a", i)))},
					{Labels: crashB, Entries: entries(crashBase+int64(i)*int64(time.Minute), 500, fmt.Sprint("b", i))},
				}); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			if err := s.Append(ctx, "t", []Stream{
				{Labels: crashA, Entries: entries(crashBase+int64(30*time.Minute), 40, "a-wal")},
				{Labels: crashB, Entries: entries(crashBase+int64(30*time.Minute), 40, "b-wal")},
			}); err != nil {
				t.Fatal(err)
			}
			crashStop(s)

			acked := runCrashChild(t, dir, step)
			want := map[string]int{crashA.String(): 3040, crashB.String(): 3040}
			if acked["flushed-during"] {
				want[crashDuring.String()] += 500
			}
			if acked["wal-during"] {
				want[crashDuring.String()] += 70
			}
			if step != "index-tmp" && want[crashDuring.String()] != 570 {
				t.Fatalf("the child acknowledged %v before stopping", acked)
			}

			s = openTest(t, dir, crashOpts())
			checkCounts := func(when string) {
				t.Helper()
				got := countUnique(t, s, "t")
				for ls, n := range want {
					if got[ls] != n {
						t.Fatalf("%s: %s has %d entries, want %d (all: %v)", when, ls, got[ls], n, got)
					}
				}
				if len(got) != len(want) {
					t.Fatalf("%s: streams %v, want %v", when, got, want)
				}
			}
			checkCounts("after the kill")
			for _, pd := range partitionDirs(t, dir) {
				indexState(t, pd) // fails on an unreferenced segment
			}
			// The replayed WAL entries become chunks too, then everything is
			// compacted.
			if err := s.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			if err := s.Compact(ctx); err != nil {
				t.Fatal(err)
			}
			checkCounts("after compacting again")
			closeTest(t, s)
			for _, pd := range partitionDirs(t, dir) {
				for _, r := range indexState(t, pd) {
					if !r.compacted {
						t.Errorf("chunk %s not compacted", r.ref.ID)
					}
				}
			}
			s = openTest(t, dir, crashOpts())
			defer closeTest(t, s)
			checkCounts("after reopening")
		})
	}
}

func withMetadata(es []chunk.Entry) []chunk.Entry {
	for i := range es {
		if i%2 == 0 {
			es[i].Metadata = labels.New("detected_level", "info", "span", fmt.Sprint(i))
		}
	}
	return es
}

// runCrashChild runs the child until it says STOP, kills it with SIGKILL
// and returns the batches it acknowledged.
func runCrashChild(t *testing.T, dir, step string) map[string]bool {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashDirEnv+"="+dir, crashStepEnv+"="+step)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	acked := map[string]bool{}
	timeout := time.After(2 * time.Minute)
	for stopped := false; !stopped; {
		select {
		case l, ok := <-lines:
			if !ok {
				_ = cmd.Wait()
				t.Fatalf("child ended before stopping at %s", step)
			}
			switch {
			case l == "STOP":
				stopped = true
			case strings.HasPrefix(l, "ACKED "):
				acked[strings.TrimPrefix(l, "ACKED ")] = true
			case strings.HasPrefix(l, "ERROR"):
				_ = cmd.Process.Kill()
				t.Fatalf("child: %s", l)
			}
		case <-timeout:
			_ = cmd.Process.Kill()
			t.Fatalf("child did not reach step %s", step)
		}
	}
	if err := cmd.Process.Kill(); err != nil { // SIGKILL
		t.Fatal(err)
	}
	_ = cmd.Wait()
	go func() {
		for range lines {
		}
	}()
	return acked
}
