package plugin

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
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
//
// Against a logsift server every count is the server's own, from its
// streaming search: chunks are the stored chunks its selectors and range
// chose, done as they are scanned or pruned. Against a plain Loki server
// the search is sliced (see runSlicedSearch) and the chunk counts come
// from the index statistics of the part of the range searched.
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
	// ChunksTotal are the chunks of the query's selectors in the range
	// and ChunksScanned those done. From a logsift server's stream: the
	// stored chunks and unflushed heads it selected, and those it scanned
	// or ruled out by their filters (not those it never read because the
	// line limit was reached). Sliced: the index's chunks of the whole
	// range and of the part searched.
	ChunksScanned int64 `json:"chunksScanned"`
	ChunksTotal   int64 `json:"chunksTotal"`
	// ChunksRead are the chunks the server decoded: those the selectors
	// and the time range name, less those its filters ruled out.
	ChunksRead int64 `json:"chunksRead"`
	// BytesScanned are the line bytes the server processed; BytesTotal
	// the index's count for the whole range.
	BytesScanned int64 `json:"bytesScanned"`
	BytesTotal   int64 `json:"bytesTotal"`
	// LinesMatched are the lines that passed the query's filters;
	// LinesSent those sent (at most the line limit).
	LinesMatched int64 `json:"linesMatched"`
	LinesSent    int   `json:"linesSent"`
	// Slice is the number of the slice searched (sliced search) or of
	// the batch (server-streamed search); Slices is the number of slices,
	// 0 for a server-streamed search, whose batches are not known ahead.
	Slice  int `json:"slice"`
	Slices int `json:"slices"`
	// SearchedFrom and SearchedTo bound the part of the range searched,
	// Unix milliseconds; from a logsift server's stream, the part whose
	// matching lines are all sent (or cannot be in the answer).
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

// runSearch runs a streaming search: with the server's streaming search
// when it has one, else (a Loki server) slice by slice.
func (in *Instance) runSearch(ctx context.Context, r querymodel.Request, sender frameSender) error {
	ss, err := in.client.Search(ctx, client.SearchRequest{Query: r.Expr, Start: r.Start, End: r.End, Limit: r.Limit, Direction: r.Direction})
	switch {
	case err == nil:
		defer ss.Close()
		return in.runServerSearch(ctx, r, ss, sender)
	case errors.Is(err, client.ErrNoSearchStream):
		return in.runSlicedSearch(ctx, r, sender)
	case client.IsStatus(err, http.StatusBadRequest) && strings.Contains(err.Error(), "max_entries_limit_per_query"):
		// More lines than the server gives one query: the sliced search
		// reads them in pages.
		return in.runSlicedSearch(ctx, r, sender)
	case ctx.Err() != nil:
		return nil
	}
	return err
}

// runServerSearch sends a frame for every batch of the server's
// streaming search, with the server's progress, until its last batch.
// The index's byte count of the range, asked alongside, fills BytesTotal
// once it is known; nothing waits for it.
func (in *Instance) runServerSearch(ctx context.Context, r querymodel.Request, ss *client.SearchStream, sender frameSender) error {
	forward := r.Direction == querymodel.Forward
	total := make(chan int64, 1)
	go func() {
		if st, err := in.client.IndexStats(ctx, r.Expr, r.Start, r.End); err == nil {
			total <- st.Bytes
		}
	}()
	p := Progress{ChunksCovered: -1}
	for batch := 1; ; batch++ {
		b, err := ss.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		select {
		case p.BytesTotal = <-total:
		default:
		}
		sp := &b.Progress
		for _, s := range b.Streams {
			p.LinesSent += len(s.Entries)
		}
		p.Done, p.LimitReached = sp.Done, sp.LimitReached
		p.Slice = batch
		if span := sp.End - sp.Start; span > 0 {
			p.RangeCovered = min(max(float64(sp.CoveredTo-sp.CoveredFrom)/float64(span), 0), 1)
		} else {
			p.RangeCovered = 1
		}
		p.SearchedFrom, p.SearchedTo = time.Unix(0, sp.CoveredFrom).UnixMilli(), time.Unix(0, sp.CoveredTo).UnixMilli()
		// Sources are the stored chunks and the unflushed heads, as the
		// index statistics of the sliced search count chunks.
		p.ChunksScanned, p.ChunksTotal, p.ChunksRead = int64(sp.SourcesDone), int64(sp.SourcesTotal), sp.ChunksDecoded
		switch {
		case sp.SourcesTotal > 0:
			p.ChunksCovered = float64(sp.SourcesDone) / float64(sp.SourcesTotal)
		case sp.Done:
			p.ChunksCovered = 1 // nothing to scan, and nothing left
		default:
			p.ChunksCovered = 0
		}
		p.BytesScanned, p.LinesMatched = sp.BytesScanned, sp.LinesMatched
		res := &client.Result{Type: client.ResultStreams, Streams: b.Streams}
		f := frames.Logs(res, frames.LogsOptions{RefID: r.RefID, Executed: "Expr: " + r.Expr, Forward: forward})
		f.Meta.Stats = frames.StatsMeta(sp.Stats())
		f.Meta.Custom = map[string]any{"progress": p}
		if err := sender.SendFrame(f, data.IncludeAll); err != nil {
			return err
		}
		if p.Done {
			return nil
		}
	}
}

// runSlicedSearch runs a log query slice by slice and sends each slice's lines
// as soon as the server answers (a slice of more than pageLimit lines in
// pages), with the search's progress, until the range is covered or the
// line limit is reached. Every frame is complete (schema, data and
// metadata), so that the progress in the metadata travels with the lines;
// the last frame, which may hold no lines, has progress.done set.
//
// Loki's HTTP API answers a query only when it is complete, so the slices
// are what makes results arrive early; the chunk counts come from its
// index statistics, asked for the part searched while each slice runs.
func (in *Instance) runSlicedSearch(ctx context.Context, r querymodel.Request, sender frameSender) error {
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
