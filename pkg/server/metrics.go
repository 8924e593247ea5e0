package server

import (
	"io/fs"
	"path/filepath"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
)

// registerStoreGauges exports the store's size: the bytes held in head
// chunks, on disk (WAL, partitions, metadata), and the tenants. They are
// gauges read at scrape time; the disk walk is cached, since the data
// directory holds a few files per day partition and a scrape every few
// seconds should not stat them all each time.
func (s *Server) registerStoreGauges() {
	set := metrics.NewSet()
	set.NewGauge(`logsift_store_head_bytes`, func() float64 { return float64(s.Store.HeadBytes()) })
	set.NewGauge(`logsift_store_tenants`, func() float64 { return float64(len(s.Store.Tenants())) })
	disk := &cachedDirSize{dir: s.cfg.DataDir, ttl: 15 * time.Second}
	set.NewGauge(`logsift_store_disk_bytes`, func() float64 { return float64(disk.get()) })
	metrics.RegisterSet(set)
	s.closers = append(s.closers, func() error { metrics.UnregisterSet(set, true); return nil })
}

// cachedDirSize is the total size of the files under dir, recomputed at
// most once per ttl.
type cachedDirSize struct {
	dir  string
	ttl  time.Duration
	mu   sync.Mutex
	at   time.Time
	size int64
}

func (c *cachedDirSize) get() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if time.Since(c.at) < c.ttl {
		return c.size
	}
	var n int64
	// Files vanish while the walk runs (WAL rotation, partition rewrites):
	// skip them rather than fail the scrape.
	_ = filepath.WalkDir(c.dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		if fi, err := d.Info(); err == nil {
			n += fi.Size()
		}
		return nil
	})
	c.size, c.at = n, time.Now()
	return n
}
