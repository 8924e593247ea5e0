package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/logsift/logsift/pkg/lokiclient"
)

// metricQuery is one of the query targets of issue 3, written once in
// LogQL for logsift and once in LogsQL for VictoriaLogs, over one job. Both answers are reduced to totals per value of by (summed
// over time), which must agree: two independent engines counting the
// same lines is the check that the timed queries did the same work.
type metricQuery struct {
	name   string
	logql  string
	logsql string
	step   time.Duration
	by     string // label whose totals are compared; "" for one series
	job    string // whose raw bytes the time is scaled by
}

const accessPattern = `<ip> - - [<_>] "<method> <path> <_>" <status> <size> <_>`

var metricQueries = []metricQuery{
	{
		name:   "count per minute",
		logql:  `sum(count_over_time({job="apache"}[1m]))`,
		logsql: `{job="apache"} | stats by (_time:1m) count() as n`,
		step:   time.Minute,
		job:    "apache",
	},
	{
		name:   "pattern, count by status per hour",
		logql:  `sum by (status) (count_over_time({job="apache"} | pattern ` + strconv.Quote(accessPattern) + ` [1h]))`,
		logsql: `{job="apache"} | extract '` + accessPattern + `' | stats by (_time:1h, status) count() as n`,
		step:   time.Hour,
		by:     "status",
		job:    "apache",
	},
	{
		name:   "line filter, count by host per 5m",
		logql:  `sum by (host) (count_over_time({job="apache"} |= "POST" [5m]))`,
		logsql: `{job="apache"} ~"POST" | stats by (_time:5m, host) count() as n`,
		step:   5 * time.Minute,
		by:     "host",
		job:    "apache",
	},
	{
		name:  "json, count by qtype_name per hour",
		logql: `sum by (qtype_name) (count_over_time({job="zeek"} | json | qtype_name=~"A|AAAA" [1h]))`,
		// VictoriaLogs splits JSON lines pushed through its Loki API into
		// fields at ingest (there is no _msg left to unpack), so its query
		// reads a stored column where logsift parses every line.
		logsql: `{job="zeek"} qtype_name:in("A", "AAAA") | stats by (_time:1h, qtype_name) count() as n`,
		step:   time.Hour,
		by:     "qtype_name",
		job:    "zeek",
	},
}

// metricRun is one system's answers to metricQueries.
type metricRun struct {
	times  []latencies          // wall time of each repetition, per query
	exec   []latencies          // server-side time when the system reports it
	totals []map[string]float64 // per query: value of by -> count
}

// runMetricQueries times each query reps times with ask, which returns the
// wall time, the server's own time (0 if unknown) and the totals.
func runMetricQueries(reps int, ask func(q metricQuery) (wall, exec time.Duration, totals map[string]float64, err error)) (*metricRun, error) {
	mr := &metricRun{}
	for _, q := range metricQueries {
		var wall, exec latencies
		var totals map[string]float64
		for range reps {
			w, e, t, err := ask(q)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", q.name, err)
			}
			wall, exec, totals = append(wall, w), append(exec, e), t
		}
		mr.times = append(mr.times, wall)
		mr.exec = append(mr.exec, exec)
		mr.totals = append(mr.totals, totals)
	}
	return mr, nil
}

// logsiftMetric runs q through /loki/api/v1/query_range with the result
// cache bypassed, so that every repetition is computed.
func logsiftMetric(base string, ds *dataset, q metricQuery) (time.Duration, time.Duration, map[string]float64, error) {
	v := url.Values{
		"query": {q.logql},
		"start": {strconv.FormatInt(ds.start.UnixNano(), 10)},
		"end":   {strconv.FormatInt(ds.end.UnixNano(), 10)},
		"step":  {strconv.FormatFloat(q.step.Seconds(), 'f', -1, 64)},
	}
	req, err := http.NewRequest(http.MethodGet, base+"/loki/api/v1/query_range?"+v.Encode(), nil)
	if err != nil {
		return 0, 0, nil, err
	}
	req.Header.Set("Cache-Control", "no-cache")
	wall, body, err := timedGet(req)
	if err != nil {
		return 0, 0, nil, err
	}
	var out lokiclient.QueryResponse
	if err := json.Unmarshal(body, &out); err != nil {
		return 0, 0, nil, fmt.Errorf("decode answer: %w", err)
	}
	series, err := out.Matrix()
	if err != nil {
		return 0, 0, nil, err
	}
	totals := map[string]float64{}
	for _, s := range series {
		for _, p := range s.Points {
			f, err := p.Float()
			if err != nil {
				return 0, 0, nil, fmt.Errorf("value %q: %w", p.Value, err)
			}
			totals[s.Labels[q.by]] += f
		}
	}
	st, err := decodeStats(out.Data.Stats)
	if err != nil {
		return 0, 0, nil, err
	}
	return wall, time.Duration(st.Summary.ExecTime * float64(time.Second)), totals, nil
}

// victoriaMetric runs q through VictoriaLogs' /select/logsql/query, which
// answers one JSON object per line: the by-fields, _time and n.
func victoriaMetric(base string, ds *dataset, q metricQuery) (time.Duration, time.Duration, map[string]float64, error) {
	v := url.Values{"query": {q.logsql}, "start": {ds.start.Format(time.RFC3339Nano)}, "end": {ds.end.Format(time.RFC3339Nano)}}
	req, err := http.NewRequest(http.MethodGet, base+"/select/logsql/query?"+v.Encode(), nil)
	if err != nil {
		return 0, 0, nil, err
	}
	wall, body, err := timedGet(req)
	if err != nil {
		return 0, 0, nil, err
	}
	totals := map[string]float64{}
	sc := bufio.NewScanner(bytes.NewReader(body))
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var row map[string]string
		if err := json.Unmarshal(sc.Bytes(), &row); err != nil {
			return 0, 0, nil, fmt.Errorf("decode row %q: %w", sc.Bytes(), err)
		}
		f, err := strconv.ParseFloat(row["n"], 64)
		if err != nil {
			return 0, 0, nil, fmt.Errorf("row %q: %w", sc.Bytes(), err)
		}
		totals[row[q.by]] += f
	}
	return wall, 0, totals, sc.Err()
}

// timedGet sends req and returns the wall time until the whole answer
// was read, and the answer, which must be a 200.
func timedGet(req *http.Request) (time.Duration, []byte, error) {
	t := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	wall := time.Since(t)
	if err != nil {
		return 0, nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, nil, fmt.Errorf("query answered %d: %s", resp.StatusCode, body)
	}
	return wall, body, nil
}

// sameTotals says whether two systems counted the same, and if not, the
// first difference.
func sameTotals(a, b map[string]float64) (bool, string) {
	keys := map[string]bool{}
	for k := range a {
		keys[k] = true
	}
	for k := range b {
		keys[k] = true
	}
	sorted := make([]string, 0, len(keys))
	for k := range keys {
		sorted = append(sorted, k)
	}
	slices.Sort(sorted)
	for _, k := range sorted {
		if a[k] != b[k] {
			return false, fmt.Sprintf("%q: %v against %v", k, a[k], b[k])
		}
	}
	return true, ""
}

// printMetricTable prints the metric queries' times, scaled to a GB of
// their job's raw lines, and whether the systems' totals agree.
func printMetricTable(ds *dataset, rs []*result) {
	if len(rs) == 0 || rs[0].metric == nil {
		return
	}
	fmt.Printf("\nMetric queries, 24h, result cache bypassed; p50 of wall time over loopback (ms per GB of the job's raw lines)\n\n")
	for _, job := range []string{"apache", "zeek"} {
		fmt.Printf("- job %s: %s of raw lines, %d lines\n", job, human(ds.jobRaw[job]), ds.jobLines[job])
	}
	fmt.Println()
	fmt.Println("| query | " + strings.Join(names(rs), " | ") + " | same totals |")
	fmt.Println("|---|" + strings.Repeat("---|", len(rs)+1))
	for i, q := range metricQueries {
		raw := ds.jobRaw[q.job]
		if raw == 0 {
			continue
		}
		// A GB is 10^9 bytes, as in -size and MB/s (before 2026-11-27
		// this column was per GiB, 7.4% higher for the same time).
		perGB := func(d time.Duration) float64 { return d.Seconds() * 1e3 * 1e9 / float64(raw) }
		var cells []string
		for _, r := range rs {
			if r.metric == nil {
				cells = append(cells, "-")
				continue
			}
			d := r.metric.times[i].pct(0.5)
			cell := fmt.Sprintf("%s (%.0f ms/GB, %.0f MB/s)", d.Round(time.Millisecond), perGB(d), float64(raw)/d.Seconds()/1e6)
			if e := r.metric.exec[i].pct(0.5); e > 0 {
				cell += fmt.Sprintf("; server %s", e.Round(time.Millisecond))
			}
			cells = append(cells, cell)
		}
		agree := "-"
		if len(rs) > 1 && rs[1].metric != nil {
			if ok, diff := sameTotals(rs[0].metric.totals[i], rs[1].metric.totals[i]); ok {
				agree = fmt.Sprintf("yes (%d groups)", len(rs[0].metric.totals[i]))
			} else {
				agree = "NO: " + diff
			}
		}
		fmt.Printf("| `%s` | %s | %s |\n", strings.ReplaceAll(q.logql, "|", `\|`), strings.Join(cells, " | "), agree)
	}
	if t := rs[0].metric.totals[0][""]; t != float64(ds.jobLines["apache"]) {
		fmt.Printf("\nlogsift counted %v access lines, the generator wrote %d\n", t, ds.jobLines["apache"])
	}
}
