package main

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// benchImport measures `logsift-agent import` end to end: the agent
// process reads the files (or an archive of them), detects timestamps,
// levels and multi-line records, builds chunks with their filters and
// ships them over gRPC to a logsift server on the same machine, which
// verifies and stores each chunk before acknowledging it. The clock stops
// when the agent exits, that is when every chunk is acknowledged.
func benchImport(work string, size int64) error {
	dir := filepath.Join(work, "import")
	files, raw, err := writeImportFiles(dir, size)
	if err != nil {
		return err
	}
	archive := filepath.Join(work, "bundle.tar.gz")
	if err := tarGz(archive, dir, files); err != nil {
		return err
	}
	fmt.Printf("import: %d files, %s of raw lines\n", len(files), human(raw))
	bins := map[string]string{"logsift": "./pkg/cmd/logsift", "logsift-agent": "./agent/cmd/logsift-agent"}
	for name, pkg := range bins {
		out := filepath.Join(work, name)
		build := exec.Command("go", "build", "-o", out, pkg)
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			return fmt.Errorf("build %s (run from the module root): %w", name, err)
		}
		bins[name] = out
	}
	for _, c := range []struct{ name, path string }{{"plain files", dir}, {"tar.gz archive", archive}} {
		r, err := importOnce(work, bins["logsift"], bins["logsift-agent"], c.path)
		if err != nil {
			return fmt.Errorf("import of %s: %w", c.name, err)
		}
		d := r.wall
		fmt.Printf("| import, %s | %s in %s: %.0f MB/s, %.1f GB/min | CPU: agent %.1fs, server %.1fs | peak RSS: agent %s, server %s |\n",
			c.name, human(raw), d.Round(time.Millisecond), float64(raw)/1e6/d.Seconds(), float64(raw)/1e9/d.Minutes(),
			r.agentCPU.Seconds(), r.serverCPU.Seconds(), human(r.agentRSS), human(r.serverRSS))
	}
	return nil
}

// importResult is one import's wall time, CPU time and peak memory.
type importResult struct {
	wall, agentCPU, serverCPU time.Duration
	agentRSS, serverRSS       int64
}

// importOnce starts a fresh server and runs one import against it.
func importOnce(work, serverBin, agentBin, path string) (res importResult, err error) {
	run, err := os.MkdirTemp(work, "run-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(run)
	httpAddr, err := freePort()
	if err != nil {
		return res, err
	}
	grpcAddrFile := filepath.Join(run, "grpc-addr")
	srv := exec.Command(serverBin, "serve", "-data-dir", filepath.Join(run, "data"), "-http-listen-address", httpAddr, "-grpc-listen-address", "127.0.0.1:0", "-log.level", "warn")
	srv.Env = append(os.Environ(), "LOGSIFT_GRPC_ADDR_FILE="+grpcAddrFile)
	srv.Stderr = os.Stderr
	if err := srv.Start(); err != nil {
		return res, err
	}
	defer func() { srv.Process.Kill(); srv.Wait() }()
	if err := waitReady("http://"+httpAddr+"/ready", srv); err != nil {
		return res, err
	}
	grpcAddr, err := os.ReadFile(grpcAddrFile)
	if err != nil {
		return res, err
	}
	cfg := filepath.Join(run, "agent.yaml")
	yaml := fmt.Sprintf("data_dir: %s\noutput: {type: logsift, url: %q}\nfiles:\n  - paths: [%q]\nmetrics: {listen_address: \"\"}\n",
		filepath.Join(run, "agent-data"), strings.TrimSpace(string(grpcAddr)), filepath.Join(run, "unused", "*.log"))
	if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
		return res, err
	}
	serverCPU0 := processCPU(srv.Process.Pid)
	agent := exec.Command(agentBin, "import", "--config", cfg, "--workspace", "bench", path)
	var out strings.Builder
	agent.Stdout, agent.Stderr = &out, &out
	start := time.Now()
	if err := agent.Start(); err != nil {
		return res, err
	}
	// Sample the agent's peak RSS while it runs; /proc's VmHWM is gone
	// once the process has been reaped.
	var agentRSS int64
	done := make(chan error, 1)
	go func() { done <- agent.Wait() }()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			res.wall = time.Since(start)
			if err != nil {
				return res, fmt.Errorf("agent: %w\n%s", err, out.String())
			}
			res.agentRSS, res.serverRSS = agentRSS, peakRSS(srv.Process.Pid)
			res.serverCPU = processCPU(srv.Process.Pid) - serverCPU0
			if st := agent.ProcessState; st != nil {
				res.agentCPU = st.UserTime() + st.SystemTime()
			}
			return res, nil
		case <-tick.C:
			agentRSS = max(agentRSS, peakRSS(agent.Process.Pid))
		}
	}
}

// processCPU is the user and system CPU time a running process has used,
// from /proc/<pid>/stat (fields 14 and 15, in clock ticks of 1/100 s).
func processCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name (field 2) may hold spaces; fields count from ")".
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0
	}
	var ut, st int64
	fmt.Sscan(f[11], &ut)
	fmt.Sscan(f[12], &st)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

// writeImportFiles writes size bytes of corpus lines as one log file per
// job and host, each file replaying its source in order, as a support
// bundle holds a host's logs.
func writeImportFiles(dir string, size int64) ([]string, int64, error) {
	srcs, err := loadSources()
	if err != nil {
		return nil, 0, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, 0, err
	}
	type file struct {
		name   string
		w      *bufio.Writer
		f      *os.File
		src    *source
		cursor int
	}
	var fs []*file
	for i := range srcs {
		for h := 0; h < streamsPerJob; h++ {
			name := fmt.Sprintf("%s-host-%d.log", srcs[i].job, h)
			f, err := os.Create(filepath.Join(dir, name))
			if err != nil {
				return nil, 0, err
			}
			fs = append(fs, &file{name: name, f: f, w: bufio.NewWriterSize(f, 1<<20), src: &srcs[i], cursor: h * 97})
		}
	}
	var raw int64
	for raw < size {
		for _, f := range fs {
			for k := 0; k < 100; k++ {
				line := f.src.lines[f.cursor%len(f.src.lines)]
				f.cursor++
				f.w.Write(line)
				f.w.WriteByte('\n')
				raw += int64(len(line))
			}
		}
	}
	var names []string
	for _, f := range fs {
		if err := f.w.Flush(); err != nil {
			return nil, 0, err
		}
		if err := f.f.Close(); err != nil {
			return nil, 0, err
		}
		names = append(names, f.name)
	}
	return names, raw, nil
}

func tarGz(dst, root string, files []string) error {
	f, err := os.Create(dst)
	if err != nil {
		return err
	}
	defer f.Close()
	zw := gzip.NewWriter(f)
	tw := tar.NewWriter(zw)
	for _, name := range files {
		data, err := os.ReadFile(filepath.Join(root, name))
		if err != nil {
			return err
		}
		if err := tw.WriteHeader(&tar.Header{Name: "bundle/" + name, Mode: 0o644, Size: int64(len(data)), ModTime: time.Now(), Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		if _, err := tw.Write(data); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return f.Close()
}
