package query

import (
	"math"
	"slices"
)

// paneGrid cuts time into the panes of a range aggregation's windows.
//
// Loki evaluates a range aggregation at t = start, start+step, ... <= end
// over the window (t-offset-range, t-offset]: open on the left, closed on
// the right. With [1m] evaluated at 10:01:00, an entry at exactly 10:00:00
// is out and one at exactly 10:01:00 is in. (Loki's range iterator drops
// samples with ts <= t-range and loads those with ts <= t; its sample
// query ends one nanosecond after the last step to include entries at
// exactly end.)
//
// Every window starts and ends at a boundary, the boundaries being the
// window ends a_j = t_j-offset and starts a_j-range. Between two adjacent
// boundaries lies a pane (b[p], b[p+1]], so each sample lands in exactly
// one pane, found with one comparison while timestamps rise, and each
// window is a run of consecutive panes. With range a multiple of step
// (the common [1m] at step 1m, or [5m] at 1m) the panes are the steps;
// otherwise there are at most two per step. Panes that lie in no window
// (step > range leaves gaps) are marked unused: their samples are skipped
// before any pipeline work, and blocks and chunks that lie only in unused
// panes are never read.
type paneGrid struct {
	b      []int64 // boundaries, ascending and distinct
	use    []bool  // per pane: inside some window
	useCum []int32 // useCum[p]: used panes before pane p (len = panes+1)
	lo, hi []int32 // window j is panes lo[j]..hi[j]
	ends   []int64 // a_j, the window ends
	rng    int64
}

// newPaneGrid builds the panes of windows (a_j-rng, a_j] for ascending
// ends a_j; rng > 0.
func newPaneGrid(ends []int64, rng int64) *paneGrid {
	g := &paneGrid{ends: ends, rng: rng}
	b := make([]int64, 0, 2*len(ends))
	for _, a := range ends {
		b = append(b, a-rng, a)
	}
	slices.Sort(b)
	g.b = slices.Compact(b)
	np := len(g.b) - 1
	g.lo = make([]int32, len(ends))
	g.hi = make([]int32, len(ends))
	diff := make([]int32, np+1)
	for j, a := range ends {
		lo, _ := slices.BinarySearch(g.b, a-rng)
		hi, _ := slices.BinarySearch(g.b, a)
		g.lo[j], g.hi[j] = int32(lo), int32(hi-1)
		diff[lo]++
		diff[hi]--
	}
	g.use = make([]bool, np)
	g.useCum = make([]int32, np+1)
	depth := int32(0)
	for p := 0; p < np; p++ {
		depth += diff[p]
		g.use[p] = depth > 0
		g.useCum[p+1] = g.useCum[p]
		if g.use[p] {
			g.useCum[p+1]++
		}
	}
	return g
}

// panes is the number of panes.
func (g *paneGrid) panes() int { return len(g.b) - 1 }

// paneOf returns the pane holding ts: -1 before the first window,
// panes() after the last.
func (g *paneGrid) paneOf(ts int64) int {
	i, _ := slices.BinarySearch(g.b, ts) // first boundary >= ts
	return i - 1
}

// useful reports whether a sample at pane p counts for some window.
func (g *paneGrid) useful(p int) bool { return p >= 0 && p < len(g.use) && g.use[p] }

// anyUseful reports whether [minT, maxT] meets a used pane: if not, a
// block or chunk with that time range holds nothing the query needs.
func (g *paneGrid) anyUseful(minT, maxT int64) bool {
	lo, hi := g.paneOf(minT), g.paneOf(maxT)
	lo, hi = max(lo, 0), min(hi, g.panes()-1)
	if lo > hi {
		return false
	}
	return g.useCum[hi+1]-g.useCum[lo] > 0
}

// onePane returns the used pane that holds all of [minT, maxT], if one
// does: then a block's or chunk's entry count and byte size answer for
// it without reading a single timestamp.
func (g *paneGrid) onePane(minT, maxT int64) (int, bool) {
	p := g.paneOf(minT)
	if !g.useful(p) || maxT > g.b[p+1] {
		return 0, false
	}
	return p, true
}

// firstWindow returns the first window whose last pane is p or later.
func (g *paneGrid) firstWindow(p int32) int {
	j, _ := slices.BinarySearch(g.hi, p)
	return j
}

// paneCursor finds panes for rising timestamps with one comparison in the
// common case.
type paneCursor struct {
	g      *paneGrid
	p      int
	lo, hi int64 // pane p is (lo, hi]
}

func newPaneCursor(g *paneGrid) paneCursor {
	return paneCursor{g: g, p: -1, lo: math.MaxInt64, hi: math.MinInt64}
}

// find returns the pane of ts (see paneGrid.paneOf).
func (c *paneCursor) find(ts int64) int {
	if ts > c.lo && ts <= c.hi {
		return c.p
	}
	g := c.g
	c.p = g.paneOf(ts)
	switch {
	case c.p < 0:
		c.lo, c.hi = math.MinInt64, g.b[0]
	case c.p >= g.panes():
		c.lo, c.hi = g.b[len(g.b)-1], math.MaxInt64
	default:
		c.lo, c.hi = g.b[c.p], g.b[c.p+1]
	}
	return c.p
}
