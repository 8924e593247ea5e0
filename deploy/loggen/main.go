// Command logsift-loggen makes the logs the docker-compose setup ships: a
// sample support bundle for `logsift-agent import`, and a live application
// log for `logsift-agent run` to tail.
//
//	logsift-loggen bundle OUT.tar.gz        write the sample bundle (pkg/sampledata) and exit
//	logsift-loggen live FILE [-rate 5]      append lines to FILE until stopped, rotating it by rename
//
// The bundle holds the same four services as `logsift demo` (nginx access
// log, a logfmt API, a JSON payments service, a Java service with stack
// traces) over the last day. The live log is logfmt with a level on every
// line and, every few minutes, a burst of errors from one service.
package main

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/logsift/logsift/pkg/sampledata"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch os.Args[1] {
	case "bundle":
		fs := flag.NewFlagSet("bundle", flag.ExitOnError)
		lines := fs.Int("lines", 5000, "lines per file")
		out := parseOne(fs, os.Args[2:])
		err = writeBundle(out, time.Now(), *lines)
	case "live":
		fs := flag.NewFlagSet("live", flag.ExitOnError)
		rate := fs.Float64("rate", 5, "lines per second")
		maxBytes := fs.Int64("max-bytes", 64<<20, "rotate the file (rename to FILE.1) past this size")
		file := parseOne(fs, os.Args[2:])
		if *rate <= 0 {
			usage()
		}
		err = live(ctx, file, *rate, *maxBytes)
	default:
		usage()
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintln(os.Stderr, "logsift-loggen:", err)
		os.Exit(1)
	}
}

// parseOne parses flags given before or after the one positional argument
// (`live FILE -rate 5` as well as `live -rate 5 FILE`: the flag package
// alone stops at the first non-flag) and returns that argument.
func parseOne(fs *flag.FlagSet, args []string) string {
	_ = fs.Parse(args)
	if fs.NArg() == 0 {
		usage()
	}
	arg := fs.Arg(0)
	_ = fs.Parse(fs.Args()[1:])
	if fs.NArg() != 0 {
		usage()
	}
	return arg
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: logsift-loggen bundle OUT.tar.gz [-lines N] | live FILE [-rate N] [-max-bytes N]")
	os.Exit(2)
}

// bundlePaths are the files of the sample bundle, by the job label of the
// generated stream.
var bundlePaths = map[string]string{
	"nginx":    "var/log/nginx/access.log",
	"api":      "var/log/api/api.log",
	"payments": "var/log/payments/payments.json",
	"billing":  "opt/billing/logs/billing.log",
}

// writeBundle writes the sample bundle as a gzip-compressed tar, first to
// a temporary name so that a reader never sees half a bundle.
func writeBundle(out string, now time.Time, lines int) error {
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	tmp := out + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	zw := gzip.NewWriter(f)
	tw := tar.NewWriter(zw)
	for _, s := range sampledata.Generate(sampledata.Options{Seed: uint64(now.Unix()), End: now, Span: 24 * time.Hour, Lines: lines}) {
		name, ok := bundlePaths[s.Labels.Get("job")]
		if !ok {
			return fmt.Errorf("sample stream %s has no bundle path", s.Labels)
		}
		var size int64
		for _, e := range s.Entries {
			size += int64(len(e.Line)) + 1
		}
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: size, ModTime: now, Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		for _, e := range s.Entries {
			if _, err := tw.Write(append(e.Line, '\n')); err != nil {
				return err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, out); err != nil {
		return err
	}
	fmt.Println("wrote", out)
	return nil
}

var services = []string{"checkout", "search", "accounts"}

// live appends lines at rate per second; every five minutes one service
// logs a burst of errors for a minute. It rotates by rename past maxBytes,
// as logrotate's default does.
func live(ctx context.Context, path string, rate float64, maxBytes int64) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer func() { f.Close() }()
	r := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
	defer tick.Stop()
	for seq := 0; ; seq++ {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		now := time.Now().UTC()
		if _, err := io.WriteString(f, line(r, now, seq)); err != nil {
			return err
		}
		if st, err := f.Stat(); err == nil && st.Size() > maxBytes {
			if err := f.Close(); err != nil {
				return err
			}
			if err := os.Rename(path, path+".1"); err != nil {
				return err
			}
			if f, err = os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); err != nil {
				return err
			}
		}
	}
}

func line(r *rand.Rand, now time.Time, seq int) string {
	svc := services[r.IntN(len(services))]
	burst := now.Minute()%5 == 0 && svc == services[(now.Hour()+now.Minute()/5)%len(services)]
	level, msg := "info", "request served"
	switch p := r.IntN(100); {
	case burst && p < 80:
		level, msg = "error", "upstream timeout"
	case p < 2:
		level, msg = "error", "database connection refused"
	case p < 10:
		level, msg = "warn", "slow request"
	case p < 20:
		level, msg = "debug", "cache lookup"
	}
	return fmt.Sprintf("%s level=%s service=%s msg=%q duration_ms=%d request_id=%016x seq=%d\n",
		now.Format(time.RFC3339Nano), level, svc, msg, 1+r.IntN(900), r.Uint64(), seq)
}
