//go:build unix

package tail

import (
	"fmt"

	"github.com/VictoriaMetrics/metrics"
)

// tailMetrics are the tailer's metrics:
//
//	logsift_agent_read_bytes_total, logsift_agent_read_lines_total   all files
//	logsift_agent_file_read_bytes_total{path}                        per file
//	logsift_agent_file_read_lines_total{path}
//	logsift_agent_file_lag_bytes{path}      file size minus read offset
//	logsift_agent_files_followed, logsift_agent_files_open
//	logsift_agent_rotations_total{kind="rename"|"copytruncate"}
//	logsift_agent_truncations_total, logsift_agent_files_deleted_total
//	logsift_agent_lines_truncated_total     lines cut at max_line_bytes
//	logsift_agent_read_errors_total, logsift_agent_rescans_total
//	logsift_agent_watch_overflows_total, logsift_agent_watch_errors_total
//	logsift_agent_lru_closes_total          files closed by the open-file limit
//	logsift_agent_buffered_bytes            lines held in builders
type tailMetrics struct {
	set                      *metrics.Set
	bytes, lines             *metrics.Counter
	rotations, copyRotations *metrics.Counter
	truncations, deleted     *metrics.Counter
	linesTruncated           *metrics.Counter
	readErrors, rescans      *metrics.Counter
	overflows, watchErrors   *metrics.Counter
	lruCloses                *metrics.Counter
}

func newTailMetrics(set *metrics.Set, t *Tailer) *tailMetrics {
	set.GetOrCreateGauge(`logsift_agent_files_followed`, func() float64 { return float64(t.Stats().Files) })
	set.GetOrCreateGauge(`logsift_agent_files_open`, func() float64 { return float64(t.Stats().Open) })
	set.GetOrCreateGauge(`logsift_agent_buffered_bytes`, func() float64 { return float64(t.budget.Bytes()) })
	return &tailMetrics{
		set:            set,
		bytes:          set.GetOrCreateCounter(`logsift_agent_read_bytes_total`),
		lines:          set.GetOrCreateCounter(`logsift_agent_read_lines_total`),
		rotations:      set.GetOrCreateCounter(`logsift_agent_rotations_total{kind="rename"}`),
		copyRotations:  set.GetOrCreateCounter(`logsift_agent_rotations_total{kind="copytruncate"}`),
		truncations:    set.GetOrCreateCounter(`logsift_agent_truncations_total`),
		deleted:        set.GetOrCreateCounter(`logsift_agent_files_deleted_total`),
		linesTruncated: set.GetOrCreateCounter(`logsift_agent_lines_truncated_total`),
		readErrors:     set.GetOrCreateCounter(`logsift_agent_read_errors_total`),
		rescans:        set.GetOrCreateCounter(`logsift_agent_rescans_total`),
		overflows:      set.GetOrCreateCounter(`logsift_agent_watch_overflows_total`),
		watchErrors:    set.GetOrCreateCounter(`logsift_agent_watch_errors_total`),
		lruCloses:      set.GetOrCreateCounter(`logsift_agent_lru_closes_total`),
	}
}

// pathMetrics are one path's series, shared by the generations and
// rotated predecessors of the file at that path.
type pathMetrics struct {
	refs         int
	bytes, lines *metrics.Counter
	lag          *metrics.Gauge
	names        [3]string
}

func (t *Tailer) pathMetricsLocked(path string) *pathMetrics {
	pm := t.paths[path]
	if pm == nil {
		pm = &pathMetrics{names: [3]string{
			fmt.Sprintf(`logsift_agent_file_read_bytes_total{path=%q}`, path),
			fmt.Sprintf(`logsift_agent_file_read_lines_total{path=%q}`, path),
			fmt.Sprintf(`logsift_agent_file_lag_bytes{path=%q}`, path),
		}}
		pm.bytes = t.m.set.GetOrCreateCounter(pm.names[0])
		pm.lines = t.m.set.GetOrCreateCounter(pm.names[1])
		pm.lag = t.m.set.GetOrCreateGauge(pm.names[2], nil)
		t.paths[path] = pm
	}
	pm.refs++
	return pm
}

func (t *Tailer) releasePathMetricsLocked(path string) {
	pm := t.paths[path]
	if pm == nil {
		return
	}
	pm.refs--
	if pm.refs > 0 {
		return
	}
	delete(t.paths, path)
	for _, n := range pm.names {
		t.m.set.UnregisterMetric(n)
	}
}
