package patterns

import (
	"bufio"
	"encoding/csv"
	"os"
	"path/filepath"
	"testing"

	"github.com/logsift/logsift/pkg/corpus"
)

var loghubSets = []string{"Android", "Apache", "BGL", "HDFS", "HPC", "Hadoop", "HealthApp", "Linux", "Mac", "OpenSSH", "OpenStack", "Proxifier", "Spark", "Thunderbird", "Windows", "Zookeeper"}

// loghub reads a Loghub 2k sample: the raw lines and, for each, the event
// its maintainers labelled it with.
func loghub(tb testing.TB, set string) (lines []string, events []string) {
	tb.Helper()
	dir := filepath.Join(corpus.Require(tb), "loghub", set)
	f, err := os.Open(filepath.Join(dir, set+"_2k.log"))
	if err != nil {
		tb.Skipf("%s: %v", set, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	cf, err := os.Open(filepath.Join(dir, set+"_2k.log_structured.csv"))
	if err != nil {
		tb.Skipf("%s: %v", set, err)
	}
	defer cf.Close()
	r := csv.NewReader(cf)
	r.FieldsPerRecord = -1
	recs, err := r.ReadAll()
	if err != nil {
		tb.Fatalf("%s: %v", set, err)
	}
	col := -1
	for i, h := range recs[0] {
		if h == "EventId" {
			col = i
		}
	}
	for _, rec := range recs[1:] {
		events = append(events, rec[col])
	}
	if len(events) != len(lines) {
		tb.Skipf("%s: %d lines but %d labels", set, len(lines), len(events))
	}
	return lines, events
}

// groupingAccuracy is Loghub's measure: the share of lines whose cluster
// holds exactly the lines of their labelled event.
func groupingAccuracy(clusters []int, events []string) float64 {
	byCluster := map[int]map[int]bool{}
	byEvent := map[string]map[int]bool{}
	for i := range clusters {
		if byCluster[clusters[i]] == nil {
			byCluster[clusters[i]] = map[int]bool{}
		}
		byCluster[clusters[i]][i] = true
		if byEvent[events[i]] == nil {
			byEvent[events[i]] = map[int]bool{}
		}
		byEvent[events[i]][i] = true
	}
	correct := 0
	for i := range clusters {
		c, e := byCluster[clusters[i]], byEvent[events[i]]
		if len(c) != len(e) {
			continue
		}
		same := true
		for k := range c {
			if !e[k] {
				same = false
				break
			}
		}
		if same {
			correct++
		}
	}
	return float64(correct) / float64(len(clusters))
}

// TestLoghubGroupingAccuracy mines the labelled Loghub samples and checks
// that most lines land in a cluster that is exactly their event.
func TestLoghubGroupingAccuracy(t *testing.T) {
	var sum float64
	n := 0
	for _, set := range loghubSets {
		lines, events := loghub(t, set)
		m := New(Options{})
		ids := make([]int, len(lines))
		for i, l := range lines {
			if c := m.Add([]byte(l)); c != nil {
				ids[i] = c.ID
			} else {
				ids[i] = -1 - i // dropped: a cluster of its own
			}
		}
		// Clusters whose templates ended equal are one pattern.
		byPattern := map[string]int{}
		for i := range ids {
			if ids[i] >= 0 {
				p := m.Clusters()[ids[i]].Pattern()
				if _, ok := byPattern[p]; !ok {
					byPattern[p] = ids[i]
				}
				ids[i] = byPattern[p]
			}
		}
		labelled := map[string]bool{}
		for _, e := range events {
			labelled[e] = true
		}
		ga := groupingAccuracy(ids, events)
		t.Logf("%-12s grouping accuracy %.3f, %4d patterns for %4d labelled events", set, ga, len(byPattern), len(labelled))
		sum += ga
		n++
	}
	if avg := sum / float64(n); avg < 0.6 {
		t.Fatalf("average grouping accuracy %.3f, below 0.6", avg)
	} else {
		t.Logf("average grouping accuracy %.3f over %d Loghub samples", avg, n)
	}
}

func BenchmarkMinerLoghub(b *testing.B) {
	var lines [][]byte
	var size int64
	for _, set := range loghubSets {
		ls, _ := loghub(b, set)
		for _, l := range ls {
			lines = append(lines, []byte(l))
			size += int64(len(l))
		}
	}
	b.SetBytes(size)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		m := New(Options{})
		for _, l := range lines {
			m.Add(l)
		}
	}
	b.ReportMetric(float64(len(lines)*b.N)/b.Elapsed().Seconds(), "lines/s")
}
