// Command cacheload measures logsift's query result cache from a second
// process: it sends repeated dashboard queries (metric range queries)
// over HTTP on loopback to a running server for a bounded time and
// reports the rate and the latency percentiles, and the server's cache
// hit ratio from its /metrics.
//
//	go build -o /tmp/logsift ./pkg/cmd/logsift
//	/tmp/logsift serve -config cache.yaml &    # http_listen_address: 127.0.0.1:3199
//	go run ./pkg/cmd/cacheload -addr http://127.0.0.1:3199 -push 50000 -duration 20s
//
// docs/cache.md has the figures and the exact commands.
//
// Only loopback addresses are accepted: this is a load generator.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/logsift/logsift/pkg/cputime"
	"github.com/logsift/logsift/pkg/lokiclient"
	"github.com/logsift/logsift/pkg/sampledata"
)

// dashboard is the load: the panels of an overview dashboard over the
// sample services.
var dashboard = []string{
	`sum by (service_name) (count_over_time({env="demo"}[1m]))`,
	`sum by (level) (count_over_time({job="api"} | logfmt [5m]))`,
	`sum(rate({job="nginx"} |= " 500 " [5m]))`,
	`topk(5, sum by (host) (bytes_over_time({env="demo"}[5m])))`,
	`sum by (service_name) (count_over_time({env="demo"} |~ "(?i)error" [1m]))`,
}

type options struct {
	addr        string
	tenant      string
	push        int
	pushSpan    time.Duration
	mode        string
	rng         time.Duration
	step        time.Duration
	duration    time.Duration
	warmup      time.Duration
	concurrency int
}

func main() {
	var o options
	flag.StringVar(&o.addr, "addr", "http://127.0.0.1:3100", "base URL of the logsift server (loopback only)")
	flag.StringVar(&o.tenant, "tenant", "", "X-Scope-OrgID to send (empty: none)")
	flag.IntVar(&o.push, "push", 0, "push this many sample lines per service first (0: use what the server holds)")
	flag.DurationVar(&o.pushSpan, "push-span", 24*time.Hour, "time span of the pushed lines, ending now")
	flag.StringVar(&o.mode, "mode", "fixed", "fixed: the same absolute range every time (ending an hour ago); relative: now-range..now at each request")
	flag.DurationVar(&o.rng, "range", 6*time.Hour, "dashboard time range")
	flag.DurationVar(&o.step, "step", time.Minute, "query step")
	flag.DurationVar(&o.duration, "duration", 20*time.Second, "measured time (at most 5m)")
	flag.DurationVar(&o.warmup, "warmup", 2*time.Second, "unmeasured time first, which fills the cache")
	flag.IntVar(&o.concurrency, "concurrency", 16, "concurrent requests")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "cacheload:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	if err := checkLoopback(o.addr); err != nil {
		return err
	}
	o.duration = min(o.duration, 5*time.Minute)
	o.warmup = min(o.warmup, time.Minute)
	if o.concurrency < 1 || o.concurrency > 1024 {
		return errors.New("-concurrency must be in 1..1024")
	}
	if o.mode != "fixed" && o.mode != "relative" {
		return fmt.Errorf("-mode %q: want fixed or relative", o.mode)
	}
	tr := &http.Transport{MaxIdleConns: o.concurrency, MaxIdleConnsPerHost: o.concurrency, DisableCompression: true, IdleConnTimeout: time.Minute}
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	if o.push > 0 {
		if err := pushSample(o, client); err != nil {
			return err
		}
	}
	target := targets(o, time.Now())
	fmt.Printf("cacheload: %s, %d queries, range %s step %s (%s mode), %d concurrent, %s warm-up then %s measured\n",
		o.addr, len(dashboard), o.rng, o.step, o.mode, o.concurrency, o.warmup, o.duration)
	if _, err := load(client, o, target, o.warmup); err != nil {
		return err
	}
	before, _ := scrape(client, o.addr)
	selfBefore := cputime.Self()
	res, err := load(client, o, target, o.duration)
	if err != nil {
		return err
	}
	self := cputime.Self() - selfBefore
	after, _ := scrape(client, o.addr)
	res.print(o.duration)
	// CPU per query, of the server and of this generator, says what the
	// machine could do with its cores to itself: the rate above depends
	// on what else runs.
	if n := float64(len(res.lat)); after != nil && n > 0 {
		server := after["process_cpu_seconds_total"] - before["process_cpu_seconds_total"]
		fmt.Printf("cpu per query: server %.0f µs, generator %.0f µs (%d cores: at most %.0f queries/s with both on this machine alone)\n",
			server/n*1e6, self.Seconds()/n*1e6, runtime.NumCPU(), float64(runtime.NumCPU())/((server+self.Seconds())/n))
	}
	printCache(before, after)
	return nil
}

// targets returns the URL of the i-th request: the dashboard's panels in
// turn, over the range ending an hour before now (fixed mode) or ending
// at the moment of the request (relative mode).
func targets(o options, now time.Time) func(i int) string {
	fixedEnd := now.Add(-time.Hour).Truncate(o.step)
	build := func(i int, end time.Time) string {
		v := url.Values{}
		v.Set("query", dashboard[i%len(dashboard)])
		v.Set("start", strconv.FormatInt(end.Add(-o.rng).UnixNano(), 10))
		v.Set("end", strconv.FormatInt(end.UnixNano(), 10))
		v.Set("step", o.step.String())
		return o.addr + "/loki/api/v1/query_range?" + v.Encode()
	}
	// The fixed URLs are made once: the generator shares the machine's
	// cores with the server and should spend as little as it can.
	fixed := make([]string, len(dashboard))
	for i := range fixed {
		fixed[i] = build(i, fixedEnd)
	}
	target := func(i int) string {
		if o.mode == "fixed" {
			return fixed[i%len(fixed)]
		}
		return build(i, time.Now())
	}
	return target
}

// checkLoopback refuses targets other than this machine.
func checkLoopback(addr string) error {
	u, err := url.Parse(addr)
	if err != nil {
		return fmt.Errorf("-addr: %w", err)
	}
	host := u.Hostname()
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("-addr %s: only loopback addresses (127.0.0.0/8, ::1, localhost) are load-tested", addr)
	}
	return nil
}

func pushSample(o options, client *http.Client) error {
	streams := sampledata.Generate(sampledata.Options{Seed: 1, End: time.Now(), Span: o.pushSpan, Lines: o.push})
	lc := &lokiclient.Client{URL: o.addr, Tenant: o.tenant, HTTP: client}
	start := time.Now()
	const batch = 5000
	lines := 0
	for off := 0; off < o.push; off += batch {
		var req []lokiclient.Stream
		for _, s := range streams {
			end := min(off+batch, len(s.Entries))
			req = append(req, lokiclient.Stream{Labels: s.Labels, Entries: s.Entries[off:end]})
			lines += end - off
		}
		if err := lc.Push(context.Background(), req); err != nil {
			return fmt.Errorf("push: %w", err)
		}
	}
	fmt.Printf("pushed %d sample lines over %s in %s\n", lines, o.pushSpan, time.Since(start).Round(time.Millisecond))
	return nil
}

type result struct {
	lat    []time.Duration
	errs   int64
	bytes  int64
	status map[int]int64
}

// load runs the workers for d and collects every request's latency.
func load(client *http.Client, o options, target func(i int) string, d time.Duration) (*result, error) {
	if d <= 0 {
		return &result{}, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var next atomic.Int64
	var mu sync.Mutex
	res := &result{status: map[int]int64{}}
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for range o.concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lat := make([]time.Duration, 0, 1<<16)
			status := map[int]int64{}
			var bytes, errs int64
			buf := make([]byte, 64<<10)
			for ctx.Err() == nil {
				i := int(next.Add(1))
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, target(i), nil)
				if o.tenant != "" {
					req.Header.Set("X-Scope-OrgID", o.tenant)
				}
				start := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					if ctx.Err() != nil {
						break // the time is up mid-request: not counted
					}
					errs++
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				n, err := io.CopyBuffer(io.Discard, resp.Body, buf)
				resp.Body.Close()
				if err != nil && ctx.Err() != nil {
					break
				}
				lat = append(lat, time.Since(start))
				bytes += n
				status[resp.StatusCode]++
				if resp.StatusCode != http.StatusOK {
					errs++
				}
			}
			mu.Lock()
			res.lat = append(res.lat, lat...)
			res.bytes += bytes
			res.errs += errs
			for k, v := range status {
				res.status[k] += v
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	if e := firstErr.Load(); e != nil {
		fmt.Fprintf(os.Stderr, "first error: %s\n", e)
	}
	if len(res.lat) == 0 {
		return nil, errors.New("no request completed: is the server running?")
	}
	return res, nil
}

func (r *result) print(d time.Duration) {
	slices.Sort(r.lat)
	p := func(q float64) time.Duration { return r.lat[min(len(r.lat)-1, int(float64(len(r.lat))*q))] }
	fmt.Printf("requests %d in %s: %.0f queries/s, errors %d, statuses %v, mean response %d bytes\n",
		len(r.lat), d, float64(len(r.lat))/d.Seconds(), r.errs, r.status, r.bytes/int64(len(r.lat)))
	fmt.Printf("latency p50 %s  p90 %s  p99 %s  p99.9 %s  max %s\n",
		p(0.50).Round(time.Microsecond), p(0.90).Round(time.Microsecond), p(0.99).Round(time.Microsecond),
		p(0.999).Round(time.Microsecond), r.lat[len(r.lat)-1].Round(time.Microsecond))
}

// scrape reads the server's cache counters.
func scrape(client *http.Client, addr string) (map[string]float64, error) {
	resp, err := client.Get(addr + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "logsift_query_cache_") && !strings.HasPrefix(line, "logsift_cache_requests_total") &&
			!strings.HasPrefix(line, "process_cpu_seconds_total") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err == nil {
			out[line[:i]] = v
		}
	}
	return out, sc.Err()
}

func printCache(before, after map[string]float64) {
	if after == nil {
		return
	}
	d := func(k string) float64 { return after[k] - before[k] }
	hit := d(`logsift_query_cache_buckets_total{result="hit"}`)
	miss := d(`logsift_query_cache_buckets_total{result="miss"}`)
	stale := d(`logsift_query_cache_buckets_total{result="stale"}`)
	unc := d(`logsift_query_cache_buckets_total{result="uncacheable"}`)
	if total := hit + miss + unc; total > 0 { // stale buckets are counted as misses too
		fmt.Printf("server cache buckets: %.0f hit, %.0f miss (%.0f of them stale), %.0f not settled (computed every time); hit ratio %.1f%%\n",
			hit, miss, stale, unc, 100*hit/total)
	}
	fmt.Printf("server queries: %.0f answered whole from the memo, %.0f all buckets from the cache, %.0f partly computed, %.0f not cacheable\n",
		d(`logsift_query_cache_queries_total{result="memo"}`), d(`logsift_query_cache_queries_total{result="hit"}`),
		d(`logsift_query_cache_queries_total{result="partial"}`), d(`logsift_query_cache_queries_total{result="bypass"}`))
}
