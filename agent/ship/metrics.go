package ship

import "github.com/VictoriaMetrics/metrics"

// spoolMetrics are the shipping metrics:
//
//	logsift_agent_chunks_spooled_total          chunks written to the spool
//	logsift_agent_chunk_bytes_spooled_total     their bytes
//	logsift_agent_spool_bytes                   bytes of spool files on disk
//	logsift_agent_spool_chunks                  chunks not yet acknowledged
//	logsift_agent_spool_full_waits_total        times Ship waited for space
//	logsift_agent_spool_full_seconds_total      time Ship spent waiting for space
//	logsift_agent_spool_fsyncs_total            group commits
//	logsift_agent_chunks_shipped_total          chunks sent (including resends)
//	logsift_agent_chunks_acked_total{status}    stored or duplicate
//	logsift_agent_chunks_retried_total          resends the server asked for
//	logsift_agent_chunks_rejected_total         refused for good, dead-lettered
//	logsift_agent_dead_letter_dropped_total     refused and not kept (folder full)
//	logsift_agent_ship_errors_total             connection and stream failures
//	logsift_agent_chunks_dropped_total          unsent chunks discarded (cancelled import)
//	logsift_agent_ack_latency_seconds           spooled to acknowledged
type spoolMetrics struct {
	spooled, spooledBytes *metrics.Counter
	fullWaits             *metrics.Counter
	fullSeconds           *metrics.FloatCounter
	fsyncs                *metrics.Counter
	shipped               *metrics.Counter
	acked, duplicates     *metrics.Counter
	retried, rejected     *metrics.Counter
	deadDropped, errors   *metrics.Counter
	dropped               *metrics.Counter
	ackLatency            *metrics.Histogram
}

func newSpoolMetrics(set *metrics.Set, s *Spool) *spoolMetrics {
	set.GetOrCreateGauge(`logsift_agent_spool_bytes`, func() float64 { return float64(s.Stats().Bytes) })
	set.GetOrCreateGauge(`logsift_agent_spool_chunks`, func() float64 { return float64(s.Stats().Chunks) })
	return &spoolMetrics{
		spooled:      set.GetOrCreateCounter(`logsift_agent_chunks_spooled_total`),
		spooledBytes: set.GetOrCreateCounter(`logsift_agent_chunk_bytes_spooled_total`),
		fullWaits:    set.GetOrCreateCounter(`logsift_agent_spool_full_waits_total`),
		fullSeconds:  set.GetOrCreateFloatCounter(`logsift_agent_spool_full_seconds_total`),
		fsyncs:       set.GetOrCreateCounter(`logsift_agent_spool_fsyncs_total`),
		shipped:      set.GetOrCreateCounter(`logsift_agent_chunks_shipped_total`),
		acked:        set.GetOrCreateCounter(`logsift_agent_chunks_acked_total{status="stored"}`),
		duplicates:   set.GetOrCreateCounter(`logsift_agent_chunks_acked_total{status="duplicate"}`),
		retried:      set.GetOrCreateCounter(`logsift_agent_chunks_retried_total`),
		rejected:     set.GetOrCreateCounter(`logsift_agent_chunks_rejected_total`),
		deadDropped:  set.GetOrCreateCounter(`logsift_agent_dead_letter_dropped_total`),
		errors:       set.GetOrCreateCounter(`logsift_agent_ship_errors_total`),
		dropped:      set.GetOrCreateCounter(`logsift_agent_chunks_dropped_total`),
		ackLatency:   set.GetOrCreateHistogram(`logsift_agent_ack_latency_seconds`),
	}
}
