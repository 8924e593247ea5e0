package plugin

import (
	"context"
	"errors"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/data"

	"github.com/logsift/logsift/datasource/client"
	"github.com/logsift/logsift/datasource/frames"
	"github.com/logsift/logsift/datasource/querymodel"
)

// Search slicing: the first slice is 1/firstSliceShare of the range, so
// that the first results arrive after a small part of the scan; each
// next slice doubles, up to 1/maxSliceShare of the range.
const (
	firstSliceShare = 64
	maxSliceShare   = 4
	minSlice        = time.Second
)

// Progress is how far a streaming search has come. It rides in the
// custom metadata of every frame of a search channel, under "progress".
type Progress struct {
	// Done is set on the last frame.
	Done bool `json:"done"`
	// LimitReached tells that the search stopped at the line limit.
	LimitReached bool `json:"limitReached"`
	// RangeCovered is the share of the time range searched, 0 to 1.
	RangeCovered float64 `json:"rangeCovered"`
	// ChunksCovered is ChunksScanned / ChunksTotal, 0 to 1; -1 when the
	// index could not tell.
	ChunksCovered float64 `json:"chunksCovered"`
	// ChunksScanned are the chunks the index has in the part of the
	// range searched so far, and ChunksTotal those of the whole range,
	// both from the server's index statistics of the query's selectors.
	ChunksScanned int64 `json:"chunksScanned"`
	ChunksTotal   int64 `json:"chunksTotal"`
	// ChunksRead are the chunks the server decoded for the slices
	// searched: those the selectors and the time range name, less those
	// its filters ruled out.
	ChunksRead int64 `json:"chunksRead"`
	// BytesScanned are the line bytes the server processed; BytesTotal
	// the index's count for the whole range.
	BytesScanned int64 `json:"bytesScanned"`
	BytesTotal   int64 `json:"bytesTotal"`
	// LinesMatched are the lines that passed the query's filters;
	// LinesSent those sent (at most the line limit).
	LinesMatched int64 `json:"linesMatched"`
	LinesSent    int   `json:"linesSent"`
	Slice        int   `json:"slice"`
	Slices       int   `json:"slices"`
	// SearchedFrom and SearchedTo bound the part of the range searched,
	// Unix milliseconds.
	SearchedFrom int64 `json:"searchedFrom"`
	SearchedTo   int64 `json:"searchedTo"`
}

// searchSlices cuts [start, end) into slices in search order: newest
// first for a backward search, oldest first for a forward one.
func searchSlices(start, end time.Time, forward bool) [][2]time.Time {
	total := end.Sub(start)
	if total <= 0 {
		return [][2]time.Time{{start, end}}
	}
	size := max(total/firstSliceShare, minSlice)
	maxSize := max(total/maxSliceShare, minSlice)
	var out [][2]time.Time
	lo, hi := start, end
	for lo.Before(hi) {
		if forward {
			e := lo.Add(size)
			if e.After(hi) {
				e = hi
			}
			out = append(out, [2]time.Time{lo, e})
			lo = e
		} else {
			s := hi.Add(-size)
			if s.Before(lo) {
				s = lo
			}
			out = append(out, [2]time.Time{s, hi})
			hi = s
		}
		size = min(2*size, maxSize)
	}
	return out
}

// runSearch runs a log query slice by slice and sends each slice's lines
// as soon as the server answers (a slice of more than pageLimit lines in
// pages), with the search's progress, until the range is covered or the
// line limit is reached. Every frame is complete (schema, data and
// metadata), so that the progress in the metadata travels with the lines;
// the last frame, which may hold no lines, has progress.done set.
//
// The server's HTTP API answers a query only when it is complete, so the
// slices are what makes results arrive early; the chunk counts come from
// its index statistics, asked for the part searched while each slice runs.
func (in *Instance) runSearch(ctx context.Context, r querymodel.Request, sender frameSender) error {
	forward := r.Direction == querymodel.Forward
	p := Progress{ChunksCovered: -1}
	totalKnown := false
	if st, err := in.client.IndexStats(ctx, r.Expr, r.Start, r.End); err == nil {
		p.ChunksTotal, p.BytesTotal = st.Chunks, st.Bytes
		totalKnown = true
		if st.Chunks == 0 {
			p.ChunksCovered = 0
		}
	} else if ctx.Err() != nil {
		return nil
	} else {
		in.log.Warn("streaming search: index statistics unavailable; progress without chunk counts", "error", err)
	}
	var stats client.Stats
	total := r.End.Sub(r.Start)
	covered := time.Duration(0)
	send := func(res *client.Result) error {
		f := frames.Logs(res, frames.LogsOptions{RefID: r.RefID, Executed: "Expr: " + r.Expr, Forward: forward})
		f.Meta.Stats = frames.StatsMeta(stats)
		f.Meta.Custom = map[string]any{"progress": p}
		return sender.SendFrame(f, data.IncludeAll)
	}
	// searched is the part of the range searched once slice sl is done.
	searched := func(sl [2]time.Time) (time.Time, time.Time) {
		if forward {
			return r.Start, sl[1]
		}
		return sl[0], r.End
	}
	update := func(sl [2]time.Time, sliceDone bool, idx <-chan indexAnswer) {
		p.LinesMatched = stats.PostFilterLines
		p.BytesScanned = stats.BytesProcessed
		p.ChunksRead = stats.ChunksDownloaded
		if sliceDone {
			covered += sl[1].Sub(sl[0])
			p.RangeCovered = 1
			if total > 0 {
				p.RangeCovered = min(float64(covered)/float64(total), 1)
			}
			from, to := searched(sl)
			p.SearchedFrom, p.SearchedTo = from.UnixMilli(), to.UnixMilli()
			if a := <-idx; a.err == nil && totalKnown {
				p.ChunksScanned = min(max(a.st.Chunks, p.ChunksScanned), p.ChunksTotal)
				if p.ChunksTotal > 0 {
					p.ChunksCovered = float64(p.ChunksScanned) / float64(p.ChunksTotal)
				}
			}
		}
		p.LimitReached = p.LinesSent >= r.Limit
		p.Done = p.LimitReached
	}
	finish := func() {
		p.Done = true
		if totalKnown {
			// The whole range is searched: every chunk of it is covered.
			p.ChunksScanned, p.ChunksCovered = p.ChunksTotal, 1
		}
	}
	slices := searchSlices(r.Start, r.End, forward)
	p.Slices = len(slices)
	for i, sl := range slices {
		p.Slice = i + 1
		// The index statistics of the part searched after this slice,
		// asked while the slice runs so that they cost no waiting.
		idx := make(chan indexAnswer, 1)
		if totalKnown && i < len(slices)-1 {
			from, to := searched(sl)
			go func() {
				st, err := in.client.IndexStats(ctx, r.Expr, from, to)
				idx <- indexAnswer{st, err}
			}()
		} else {
			idx <- indexAnswer{err: errNoIndexCall}
		}
		done := false // the slice's completion was reported
		q := client.RangeQuery{Query: r.Expr, Start: sl[0], End: sl[1], Direction: r.Direction}
		err := in.pageLogs(ctx, q, r.Limit-p.LinesSent, func(res *client.Result, last bool) error {
			stats.Add(res.Stats)
			for _, s := range res.Streams {
				p.LinesSent += len(s.Entries)
			}
			update(sl, last, idx)
			done = last
			if last && i == len(slices)-1 {
				finish()
			}
			return send(res)
		})
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if p.Done {
			return nil
		}
		if !done {
			// A slice without lines still reports its progress.
			update(sl, true, idx)
			if i == len(slices)-1 {
				finish()
			}
			if err := send(&client.Result{}); err != nil {
				return err
			}
		}
	}
	return nil
}

// indexAnswer is the answer of an index statistics call.
type indexAnswer struct {
	st  client.IndexStats
	err error
}

// errNoIndexCall stands for the index call not made for the last slice,
// whose coverage is the whole range.
var errNoIndexCall = errors.New("no index call")
