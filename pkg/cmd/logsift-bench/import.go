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
		d, agentRSS, serverRSS, err := importOnce(work, bins["logsift"], bins["logsift-agent"], c.path)
		if err != nil {
			return fmt.Errorf("import of %s: %w", c.name, err)
		}
		fmt.Printf("| import, %s | %s in %s: %.0f MB/s, %.1f GB/min | agent peak RSS %s, server peak RSS %s |\n",
			c.name, human(raw), d.Round(time.Millisecond), float64(raw)/1e6/d.Seconds(), float64(raw)/1e9/d.Minutes(), human(agentRSS), human(serverRSS))
	}
	return nil
}

// importOnce starts a fresh server and runs one import against it.
func importOnce(work, serverBin, agentBin, path string) (time.Duration, int64, int64, error) {
	run, err := os.MkdirTemp(work, "run-")
	if err != nil {
		return 0, 0, 0, err
	}
	defer os.RemoveAll(run)
	httpAddr, err := freePort()
	if err != nil {
		return 0, 0, 0, err
	}
	grpcAddrFile := filepath.Join(run, "grpc-addr")
	srv := exec.Command(serverBin, "serve", "-data-dir", filepath.Join(run, "data"), "-http-listen-address", httpAddr, "-grpc-listen-address", "127.0.0.1:0", "-log.level", "warn")
	srv.Env = append(os.Environ(), "LOGSIFT_GRPC_ADDR_FILE="+grpcAddrFile)
	srv.Stderr = os.Stderr
	if err := srv.Start(); err != nil {
		return 0, 0, 0, err
	}
	defer func() { srv.Process.Kill(); srv.Wait() }()
	if err := waitReady("http://"+httpAddr+"/ready", srv); err != nil {
		return 0, 0, 0, err
	}
	grpcAddr, err := os.ReadFile(grpcAddrFile)
	if err != nil {
		return 0, 0, 0, err
	}
	cfg := filepath.Join(run, "agent.yaml")
	yaml := fmt.Sprintf("data_dir: %s\noutput: {type: logsift, url: %q}\nfiles:\n  - paths: [%q]\nmetrics: {listen_address: \"\"}\n",
		filepath.Join(run, "agent-data"), strings.TrimSpace(string(grpcAddr)), filepath.Join(run, "unused", "*.log"))
	if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
		return 0, 0, 0, err
	}
	agent := exec.Command(agentBin, "import", "--config", cfg, "--workspace", "bench", path)
	var out strings.Builder
	agent.Stdout, agent.Stderr = &out, &out
	start := time.Now()
	if err := agent.Start(); err != nil {
		return 0, 0, 0, err
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
			d := time.Since(start)
			if err != nil {
				return 0, 0, 0, fmt.Errorf("agent: %w\n%s", err, out.String())
			}
			return d, agentRSS, peakRSS(srv.Process.Pid), nil
		case <-tick.C:
			agentRSS = max(agentRSS, peakRSS(agent.Process.Pid))
		}
	}
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
