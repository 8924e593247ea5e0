// Command logsift-bench measures logsift end to end, and VictoriaLogs beside
// it on the same data when its binary is available: ingest through the Loki
// push API (protobuf+snappy), a needle query, a full scan that no chunk
// filter can prune, the metric query targets of issue 3 (with the cache
// bypassed, and the two systems' totals compared), stored size and peak
// memory. Every number in
// docs/benchmarks.md comes from this command.
//
//	go run ./pkg/cmd/logsift-bench -size 1GB [-victoria-logs PATH]
//	go run ./pkg/cmd/logsift-bench -import -size 2GB   # logsift-agent import end to end
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/logsift/logsift/pkg/chunk"
	"github.com/logsift/logsift/pkg/corpus"
	"github.com/logsift/logsift/pkg/labels"
	"github.com/logsift/logsift/pkg/logql"
	"github.com/logsift/logsift/pkg/lokiclient"
	"github.com/logsift/logsift/pkg/sampledata"
)

func main() {
	size := flag.String("size", "1GB", "raw line bytes to generate and push")
	vlPath := flag.String("victoria-logs", "", "path to a victoria-logs binary to measure beside logsift (default: $GOPATH/bin/victoria-logs if present; \"none\" to skip)")
	conc := flag.Int("concurrency", 4, "concurrent push requests")
	batch := flag.Int("batch", 1<<20, "raw line bytes per push request")
	queries := flag.Int("queries", 20, "repetitions of each query")
	keep := flag.Bool("keep", false, "keep the data directories")
	flag.Float64Var(&mutateRate, "mutate", 0, "fraction of digit runs re-rolled in each generated line (0: corpus lines exactly as written)")
	flag.StringVar(&profileDir, "profile", "", "write CPU profiles of the logsift server (ingest, scan) into this directory")
	flag.StringVar(&serverConfig, "config", "", "configuration file for the logsift server (default: none, the embedded default)")
	importOnly := flag.Bool("import", false, "measure `logsift-agent import` of files and of a tar.gz into a local server instead of pushes and queries")
	flag.Parse()
	n, err := logql.ParseBytes(*size)
	if err != nil {
		fail("invalid -size: %v", err)
	}
	if *importOnly {
		work, err := os.MkdirTemp("", "logsift-bench-import-")
		if err != nil {
			fail("%v", err)
		}
		defer os.RemoveAll(work)
		if err := benchImport(work, int64(n)); err != nil {
			os.RemoveAll(work)
			fail("%v", err)
		}
		return
	}
	if err := run(int64(n), *vlPath, *conc, *batch, *queries, *keep); err != nil {
		fail("%v", err)
	}
}

var (
	serverConfig string
	profileDir   string
	mutateRate   float64
)

// profile collects a CPU profile of the server while fn runs.
func profile(base, name string, fn func() error) error {
	if profileDir == "" {
		return fn()
	}
	stop := make(chan []byte, 1)
	go func() {
		resp, err := http.Get(base + "/debug/pprof/profile?seconds=30")
		if err != nil {
			stop <- nil
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		stop <- b
	}()
	err := fn()
	b := <-stop
	if len(b) > 0 {
		_ = os.MkdirAll(profileDir, 0o755)
		_ = os.WriteFile(filepath.Join(profileDir, name+".pprof"), b, 0o644)
	}
	return err
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "logsift-bench: "+format+"\n", args...)
	os.Exit(1)
}

// dataset is the generated load: push bodies ready to send, and what the
// queries need to know about them.
type dataset struct {
	bodies   [][]byte
	rawBytes int64
	lines    int64
	start    time.Time
	end      time.Time
	needle   string
	jobs     []string
	jobRaw   map[string]int64 // raw line bytes per job
	jobLines map[string]int64
}

func run(size int64, vlPath string, conc, batch, reps int, keep bool) error {
	work, err := os.MkdirTemp("", "logsift-bench-")
	if err != nil {
		return err
	}
	if !keep {
		defer os.RemoveAll(work)
	}
	fmt.Printf("machine: %d CPUs visible to Go; data under %s\n", runtime.NumCPU(), work)
	t0 := time.Now()
	ds, err := generate(size, batch)
	if err != nil {
		return err
	}
	fmt.Printf("generated %s of raw lines (%d lines, %d push bodies) in %s\n", human(ds.rawBytes), ds.lines, len(ds.bodies), time.Since(t0).Round(time.Millisecond))

	bin := filepath.Join(work, "logsift")
	build := exec.Command("go", "build", "-o", bin, "./pkg/cmd/logsift")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("build logsift (run from the module root): %w", err)
	}
	ls, err := benchLogsift(bin, filepath.Join(work, "logsift-data"), ds, conc, reps)
	if err != nil {
		return fmt.Errorf("logsift: %w", err)
	}
	results := []*result{ls}
	if vlPath == "" {
		if home, err := os.UserHomeDir(); err == nil {
			if p := filepath.Join(home, "go", "bin", "victoria-logs"); fileExists(p) {
				vlPath = p
			}
		}
	}
	if vlPath != "" && vlPath != "none" {
		vl, err := benchVictoriaLogs(vlPath, filepath.Join(work, "vl-data"), ds, conc, reps)
		if err != nil {
			fmt.Fprintf(os.Stderr, "VictoriaLogs: %v\n", err)
		} else {
			results = append(results, vl)
		}
	}
	printTable(ds, results)
	printMetricTable(ds, results)
	return nil
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// source is one kind of corpus line with the labels its stream gets.
type source struct {
	job   string
	lines [][]byte
}

// loadSources reads the corpus when present (access logs weighted up, as
// the reference numbers are on access logs), else the shipped
// generator's samples.
func loadSources() ([]source, error) {
	root, ok := corpus.Dir()
	if !ok {
		fmt.Println("corpus absent: generating from pkg/sampledata")
		var out []source
		for _, s := range sampledata.Generate(sampledata.Options{Seed: 42, Lines: 20000}) {
			src := source{job: s.Labels.Get("job")}
			for _, e := range s.Entries {
				src.lines = append(src.lines, e.Line)
			}
			out = append(out, src)
		}
		return out, nil
	}
	pick := []struct{ job, path string }{
		{"apache", "elastic-examples/apache_access_combined.log"},
		{"auth", "elastic-examples/auth.log"},
		{"kafka", "elastic-examples/kafka/kafka0/state-change.log.2016-12-19-16"},
		{"hdfs", "loghub/HDFS/HDFS_2k.log"},
		{"openstack", "loghub/OpenStack/OpenStack_2k.log"},
		{"spark", "loghub/Spark/Spark_2k.log"},
		{"windows", "loghub/Windows/Windows_2k.log"},
		{"android", "loghub/Android/Android_2k.log"},
		{"zeek", "zeek-wrccdc/json/dns.json"}, // JSON, for the json target
	}
	var out []source
	for _, p := range pick {
		data, err := os.ReadFile(filepath.Join(root, p.path))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		src := source{job: p.job}
		for _, l := range corpus.Lines(data) {
			if len(l) > 0 {
				src.lines = append(src.lines, l)
			}
		}
		out = append(out, src)
	}
	return out, nil
}

// mutate copies a corpus line with a fraction (-mutate) of its digit runs
// re-rolled. With 0 the lines are the corpus's own: each stream replays
// its file in order, and the 256 KiB compression window never spans a
// whole repeat of a file, so repeats do not flatter the compressors. A
// positive rate adds entropy that real logs do not have, as a stress case.
func mutate(r *rand.Rand, dst, line []byte) []byte {
	start := len(dst)
	dst = append(dst, line...)
	b := dst[start:]
	for i := 0; i < len(b); {
		if b[i] < '0' || b[i] > '9' {
			i++
			continue
		}
		j := i
		for j < len(b) && b[j] >= '0' && b[j] <= '9' {
			j++
		}
		if mutateRate > 0 && r.Float64() < mutateRate {
			for k := i; k < j; k++ {
				b[k] = byte('0' + r.IntN(10))
			}
		}
		i = j
	}
	return dst
}

const streamsPerJob = 4

func generate(size int64, batch int) (*dataset, error) {
	srcs, err := loadSources()
	if err != nil {
		return nil, err
	}
	r := rand.New(rand.NewPCG(2026, 11))
	ds := &dataset{end: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), jobRaw: map[string]int64{}, jobLines: map[string]int64{}}
	ds.start = ds.end.Add(-24 * time.Hour)
	ds.needle = fmt.Sprintf("needle-%016x", r.Uint64())
	// Weights: half access log, the rest spread evenly.
	type stream struct {
		ls     labels.Labels
		src    *source
		cursor int // next line of src: streams read their source in order, as real logs are written
	}
	var streams []stream
	for i := range srcs {
		ds.jobs = append(ds.jobs, srcs[i].job)
		for h := 0; h < streamsPerJob; h++ {
			streams = append(streams, stream{ls: labels.New("job", srcs[i].job, "host", fmt.Sprintf("host-%d", h), "env", "bench"), src: &srcs[i], cursor: r.IntN(len(srcs[i].lines))})
		}
	}
	weights := make([]float64, len(streams))
	for i, s := range streams {
		weights[i] = 1
		if s.src.job == "apache" {
			weights[i] = float64(len(srcs) - 1)
		}
	}
	var total float64
	for _, w := range weights {
		total += w
	}
	// Needles go into 10 random lines of the whole set.
	needleAt := map[int64]bool{}
	approxLines := size / 200
	for len(needleAt) < 10 {
		needleAt[r.Int64N(max(approxLines, 10))] = true
	}
	span := ds.end.Sub(ds.start)
	var lineNo int64
	needles := 0 // needles due and not yet placed
	arena := make([]byte, 0, 64<<20)
	for ds.rawBytes < size {
		// One push: a batch of lines for a few streams.
		var push []lokiclient.Stream
		var pushed int
		for pushed < batch && ds.rawBytes < size {
			x := r.Float64() * total
			si := 0
			for ; si < len(weights)-1 && x >= weights[si]; si++ {
				x -= weights[si]
			}
			st := &streams[si]
			ps := lokiclient.Stream{Labels: st.ls}
			// Stop at size exactly: a line past it would get a timestamp
			// past ds.end, outside the range the queries ask about.
			for k := 0; k < 200 && pushed < batch && ds.rawBytes < size; k++ {
				line := st.src.lines[st.cursor]
				st.cursor = (st.cursor + 1) % len(st.src.lines)
				if cap(arena)-len(arena) < len(line)+64 {
					arena = make([]byte, 0, 64<<20)
				}
				s := len(arena)
				arena = mutate(r, arena, line)
				if needleAt[lineNo] {
					needles++
				}
				// A needle appended to a JSON line would make it invalid
				// JSON, which the two systems treat differently (VictoriaLogs
				// keeps it as text, a LogQL json stage still reads the
				// object), so needles go to the next line of another job.
				if needles > 0 && st.src.job != "zeek" {
					arena = append(arena, " "+ds.needle...)
					needles--
				}
				l := arena[s:len(arena):len(arena)]
				frac := float64(ds.rawBytes) / float64(size)
				ts := ds.start.Add(time.Duration(frac*float64(span)) + time.Duration(r.IntN(1000))).UnixNano()
				ps.Entries = append(ps.Entries, chunk.Entry{Timestamp: ts, Line: l})
				pushed += len(l)
				ds.rawBytes += int64(len(l))
				ds.lines++
				ds.jobRaw[st.src.job] += int64(len(l))
				ds.jobLines[st.src.job]++
				lineNo++
			}
			push = append(push, ps)
		}
		body, err := lokiclient.EncodePush(push)
		if err != nil {
			return nil, err
		}
		ds.bodies = append(ds.bodies, body)
	}
	return ds, nil
}

// result is what one system measured.
type result struct {
	name        string
	ingestTime  time.Duration
	storedBytes int64
	// compactedBytes is the stored size after POST /compact (logsift
	// only; 0 elsewhere), compactTime how long the compaction took.
	compactedBytes int64
	compactTime    time.Duration
	peakRSS        int64
	needle         latencies
	needleFound    int
	scan           latencies
	scanNeedle     string
	scanBytes      int64
	metric         *metricRun
	notes          []string
}

type latencies []time.Duration

func (l latencies) pct(p float64) time.Duration {
	if len(l) == 0 {
		return 0
	}
	s := slices.Clone(l)
	slices.Sort(s)
	i := int(float64(len(s)-1) * p)
	return s[i]
}

// push sends every body with conc workers and returns the wall time.
func push(ds *dataset, endpoint string, conc int) (time.Duration, error) {
	var next atomic.Int64
	var wg sync.WaitGroup
	var firstErr atomic.Value
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conc}}
	start := time.Now()
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(ds.bodies) || firstErr.Load() != nil {
					return
				}
				req, _ := http.NewRequest(http.MethodPost, endpoint, bytes.NewReader(ds.bodies[i]))
				req.Header.Set("Content-Type", "application/x-protobuf")
				resp, err := client.Do(req)
				if err != nil {
					firstErr.Store(err)
					return
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode/100 != 2 {
					firstErr.Store(fmt.Errorf("push answered %d: %s", resp.StatusCode, body))
					return
				}
			}
		}()
	}
	wg.Wait()
	if err, ok := firstErr.Load().(error); ok {
		return 0, err
	}
	return time.Since(start), nil
}

func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func waitReady(u string, p *exec.Cmd) error {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(u)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s not ready after 60s", u)
}

func benchLogsift(bin, dataDir string, ds *dataset, conc, reps int) (*result, error) {
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	args := []string{"serve", "-data-dir", dataDir, "-http-listen-address", addr, "-grpc-listen-address", "127.0.0.1:0", "-log.level", "warn"}
	if serverConfig != "" {
		args = append(args, "-config.file", serverConfig)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	base := "http://" + addr
	if err := waitReady(base+"/ready", cmd); err != nil {
		return nil, err
	}
	res := &result{name: "logsift"}
	fmt.Println("logsift: pushing...")
	if err := profile(base, "ingest", func() (err error) {
		res.ingestTime, err = push(ds, base+"/loki/api/v1/push", conc)
		return err
	}); err != nil {
		return nil, err
	}
	fmt.Printf("logsift: ingest %s/s\n", human(int64(float64(ds.rawBytes)/res.ingestTime.Seconds())))
	c := &lokiclient.Client{URL: base}
	sel := `{env="bench"}`
	// Queries right after ingest, with recent data still in head chunks.
	headNeedle, _, err := logsiftQuery(c, sel+` |= "`+ds.needle+`"`, ds, 1000)
	if err != nil {
		return nil, err
	}
	res.notes = append(res.notes, fmt.Sprintf("needle query before flush (data partly in head chunks): %s", headNeedle.Round(time.Microsecond)))
	// Flush so that the rest measures the stored form.
	resp, err := http.Post(base+"/flush", "", nil)
	if err != nil {
		return nil, err
	}
	resp.Body.Close()
	res.storedBytes, err = dirSize(dataDir)
	if err != nil {
		return nil, err
	}
	// Compact now rather than wait for the background compactor's
	// min_age, so that the queries below read compacted chunks.
	fmt.Println("logsift: compacting...")
	start := time.Now()
	resp, err = http.Post(base+"/compact", "", nil)
	if err != nil {
		return nil, err
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		return nil, fmt.Errorf("POST /compact: %s: %s", resp.Status, body)
	}
	res.compactTime = time.Since(start)
	res.compactedBytes, err = dirSize(dataDir)
	if err != nil {
		return nil, err
	}
	for i := 0; i < reps; i++ {
		d, found, err := logsiftQuery(c, sel+` |= "`+ds.needle+`"`, ds, 1000)
		if err != nil {
			return nil, err
		}
		res.needle = append(res.needle, d)
		res.needleFound = found
	}
	// A substring made of common trigrams that chunk filters cannot rule
	// out: the scan has to decode and search everything.
	scanQuery, err := unprunableNeedle(c, ds)
	if err != nil {
		return nil, err
	}
	res.scanNeedle = scanQuery
	for i := 0; i < max(reps/4, 3); i++ {
		d, bytesProcessed, err := logsiftScan(c, scanQuery, ds)
		if err != nil {
			return nil, err
		}
		res.scan = append(res.scan, d)
		res.scanBytes = bytesProcessed
	}
	if err := profile(base, "metric", func() (err error) {
		res.metric, err = runMetricQueries(max(reps/4, 3), func(q metricQuery) (time.Duration, time.Duration, map[string]float64, error) {
			return logsiftMetric(base, ds, q)
		})
		return err
	}); err != nil {
		return nil, err
	}
	res.peakRSS = peakRSS(cmd.Process.Pid)
	return res, nil
}

// logsiftQuery runs a log query over the whole range and returns the
// server's own execution time and the number of entries.
func logsiftQuery(c *lokiclient.Client, q string, ds *dataset, limit int) (time.Duration, int, error) {
	resp, err := c.QueryRange(context.Background(), q, ds.start, ds.end.Add(time.Hour), limit, url.Values{"direction": {"backward"}})
	if err != nil {
		return 0, 0, err
	}
	streams, err := resp.Streams()
	if err != nil {
		return 0, 0, err
	}
	n := 0
	for _, s := range streams {
		n += len(s.Entries)
	}
	st, err := decodeStats(resp.Data.Stats)
	if err != nil {
		return 0, 0, err
	}
	return time.Duration(st.Summary.ExecTime * float64(time.Second)), n, nil
}

type lokiStats struct {
	Summary struct {
		ExecTime            float64 `json:"execTime"`
		TotalBytesProcessed int64   `json:"totalBytesProcessed"`
	} `json:"summary"`
	Logsift struct {
		ChunksPruned int64 `json:"chunksPruned"`
	} `json:"logsift"`
	Querier struct {
		Store struct {
			TotalChunksRef int64 `json:"totalChunksRef"`
		} `json:"store"`
	} `json:"querier"`
}

func decodeStats(raw json.RawMessage) (*lokiStats, error) {
	var st lokiStats
	if err := json.Unmarshal(raw, &st); err != nil {
		return nil, fmt.Errorf("decode stats: %w", err)
	}
	return &st, nil
}

func logsiftScan(c *lokiclient.Client, q string, ds *dataset) (time.Duration, int64, error) {
	resp, err := c.QueryRange(context.Background(), q, ds.start, ds.end.Add(time.Hour), 1000, url.Values{"direction": {"backward"}})
	if err != nil {
		return 0, 0, err
	}
	st, err := decodeStats(resp.Data.Stats)
	if err != nil {
		return 0, 0, err
	}
	return time.Duration(st.Summary.ExecTime * float64(time.Second)), st.Summary.TotalBytesProcessed, nil
}

// unprunableNeedle picks a query whose substring no chunk filter can rule
// out and that matches fewer lines than the limit, so the engine has to
// decode and search every chunk of the selected streams. The filters index
// lowercased text, so a frequent token in a case the data never uses (for
// example "http/1.1" against access logs) is exactly such a substring.
func unprunableNeedle(c *lokiclient.Client, ds *dataset) (string, error) {
	cands := []string{
		`{job="apache"} |= "http/1.1"`,
		`{job="apache"} |= "MOZILLA/5.0"`,
		`{env="bench"} |= "INFO"`,
	}
	for _, q := range cands {
		resp, err := c.QueryRange(context.Background(), q, ds.start, ds.end.Add(time.Hour), 1000, nil)
		if err != nil {
			return "", err
		}
		st, err := decodeStats(resp.Data.Stats)
		if err != nil {
			return "", err
		}
		streams, err := resp.Streams()
		if err != nil {
			return "", err
		}
		n := 0
		for _, s := range streams {
			n += len(s.Entries)
		}
		if st.Logsift.ChunksPruned == 0 && n < 1000 && st.Querier.Store.TotalChunksRef > 0 {
			return q, nil
		}
	}
	return "", errors.New("no candidate query escaped every chunk filter; extend the candidate list")
}

func benchVictoriaLogs(bin, dataDir string, ds *dataset, conc, reps int) (*result, error) {
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "-storageDataPath", dataDir, "-httpListenAddr", addr, "-loggerLevel", "ERROR", "-retentionPeriod", "100y")
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	base := "http://" + addr
	if err := waitReady(base+"/health", cmd); err != nil {
		return nil, err
	}
	res := &result{name: "VictoriaLogs v1.52.1"}
	fmt.Println("VictoriaLogs: pushing...")
	if res.ingestTime, err = push(ds, base+"/insert/loki/api/v1/push", conc); err != nil {
		return nil, err
	}
	fmt.Printf("VictoriaLogs: ingest %s/s\n", human(int64(float64(ds.rawBytes)/res.ingestTime.Seconds())))
	// VictoriaLogs buffers recent data in memory; force it to disk and wait
	// until the directory stops growing before measuring its size.
	var last int64 = -1
	for i := 0; i < 60; i++ {
		if resp, err := http.Get(base + "/internal/force_flush"); err == nil {
			resp.Body.Close()
		}
		time.Sleep(time.Second)
		n, err := dirSize(dataDir)
		if err != nil {
			return nil, err
		}
		if n == last && n > 1<<20 {
			break
		}
		last = n
	}
	res.storedBytes = last
	vq := func(q string) (time.Duration, int, error) {
		v := url.Values{"query": {q}, "start": {ds.start.Format(time.RFC3339)}, "end": {ds.end.Add(time.Hour).Format(time.RFC3339)}, "limit": {"1000"}}
		t := time.Now()
		resp, err := http.Get(base + "/select/logsql/query?" + v.Encode())
		if err != nil {
			return 0, 0, err
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		d := time.Since(t)
		if err != nil {
			return 0, 0, err
		}
		if resp.StatusCode != 200 {
			return 0, 0, fmt.Errorf("query answered %d: %s", resp.StatusCode, body)
		}
		return d, bytes.Count(body, []byte("\n")), nil
	}
	for i := 0; i < reps; i++ {
		d, n, err := vq(`env:=bench "` + ds.needle + `"`)
		if err != nil {
			return nil, err
		}
		res.needle = append(res.needle, d)
		res.needleFound = n
	}
	if res.metric, err = runMetricQueries(max(reps/4, 3), func(q metricQuery) (time.Duration, time.Duration, map[string]float64, error) {
		return victoriaMetric(base, ds, q)
	}); err != nil {
		return nil, err
	}
	res.notes = append(res.notes, "VictoriaLogs times are wall time of /select/logsql/query on loopback (it reports no server-side time); its needle query is a phrase filter, its line filter a regexp")
	res.peakRSS = peakRSS(cmd.Process.Pid)
	return res, nil
}

func dirSize(dir string) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			info, err := d.Info()
			if err != nil {
				return err
			}
			n += info.Size()
		}
		return nil
	})
	return n, err
}

// peakRSS reads the peak resident set size of a process from /proc.
func peakRSS(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			f := strings.Fields(line)
			if len(f) >= 2 {
				kb, _ := strconv.ParseInt(f[1], 10, 64)
				return kb << 10
			}
		}
	}
	return 0
}

func human(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

func printTable(ds *dataset, rs []*result) {
	fmt.Printf("\n%s of raw lines, %d lines, %d jobs x %d hosts, 24h of timestamps, digit runs re-rolled: %.0f%%, needle %q in 10 lines\n\n", human(ds.rawBytes), ds.lines, len(ds.jobs), streamsPerJob, mutateRate*100, ds.needle)
	fmt.Println("| measure | " + strings.Join(names(rs), " | ") + " |")
	fmt.Println("|---|" + strings.Repeat("---|", len(rs)))
	row := func(name string, f func(*result) string) {
		var cells []string
		for _, r := range rs {
			cells = append(cells, f(r))
		}
		fmt.Printf("| %s | %s |\n", name, strings.Join(cells, " | "))
	}
	row("ingest (raw MB/s, protobuf push)", func(r *result) string {
		return fmt.Sprintf("%.0f", float64(ds.rawBytes)/r.ingestTime.Seconds()/1e6)
	})
	row("stored size (after flush)", func(r *result) string {
		return fmt.Sprintf("%s (1/%.1f of raw)", human(r.storedBytes), float64(ds.rawBytes)/float64(r.storedBytes))
	})
	row("stored after compaction", func(r *result) string {
		if r.compactedBytes == 0 {
			return "-"
		}
		return fmt.Sprintf("%s (1/%.1f of raw; compacted in %s, %.0f MB/s of raw)", human(r.compactedBytes), float64(ds.rawBytes)/float64(r.compactedBytes),
			r.compactTime.Round(100*time.Millisecond), float64(ds.rawBytes)/r.compactTime.Seconds()/1e6)
	})
	row("needle query p50 / p95", func(r *result) string {
		return fmt.Sprintf("%s / %s (%d hits)", r.needle.pct(0.5).Round(time.Microsecond), r.needle.pct(0.95).Round(time.Microsecond), r.needleFound)
	})
	row("unprunable substring scan", func(r *result) string {
		if len(r.scan) == 0 {
			return "-"
		}
		d := r.scan.pct(0.5)
		return fmt.Sprintf("`%s`: %s, %.2f GB/s of %s", r.scanNeedle, d.Round(time.Millisecond), float64(r.scanBytes)/d.Seconds()/1e9, human(r.scanBytes))
	})
	row("peak RSS", func(r *result) string { return human(r.peakRSS) })
	for _, r := range rs {
		for _, n := range r.notes {
			fmt.Printf("\n- %s: %s", r.name, n)
		}
	}
	fmt.Println()
}

func names(rs []*result) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.name)
	}
	return out
}
