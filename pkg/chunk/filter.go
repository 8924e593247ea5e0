package chunk

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"slices"
)

// The filter indexes, per block, every distinct ASCII-lowercased 3-, 4- and
// 5-byte window (gram) of every line. Grams never span two entries. Each
// gram is hashed once by multiplication and sets one bit of a per-block
// bitmap (a Bloom filter with one hash function). A needle may occur in a
// block only if the bits of all its grams are set there, so testing a few of
// its grams is enough to rule a block out and can never rule out a block
// that holds it. docs/formats/chunk.md gives the measurements behind the
// gram lengths, the single hash and the fill target.
//
// A gram g of n bytes b0..bn-1 (after lowercasing A-Z) is the little-endian
// integer k = b0 | b1<<8 | ... ; its hash is h = k * mulN mod 2^64. In a
// block filter with scratch exponent lg and m bits, h sets bit
// ((h >> (64-lg)) * m) >> lg. The builder first marks slots h >> (64-lg) of
// a 2^lg-slot scratch table, then projects it onto m bits, which lets it
// choose m from the number of distinct grams after seeing them.
const (
	mul3 = 0x9E3779B97F4A7C15
	mul4 = 0xC2B2AE3D27D4EB4F
	mul5 = 0x165667B19E3779F9

	filterVersion = 1
	filterDirLen  = 9 // lg u8, m u32, offset u32

	minScratchLg = 10
	maxScratchLg = 20

	maxNeedleKeys = 24
)

// filterParams tune how the builder sizes block bitmaps. The format does
// not record them (a reader needs only each block's size), so they can
// change without a version bump; tests and the measurement command vary
// them.
var filterParams = struct {
	// fill is the fraction of bits a bitmap should have set: with one hash
	// that is also the chance an absent gram passes.
	fill float64
	// maxFill: when even the largest allowed bitmap would be fuller than
	// this, the block gets no bitmap and always answers "maybe".
	maxFill float64
	// A bitmap may have at most bitsPerStoredByte bits per byte of the
	// block's compressed sections (so the filter stays a bounded share of
	// stored size) and at most bitsPerRawByte per line byte (so text that
	// does not compress does not get a large useless bitmap), but always
	// minCapBits.
	bitsPerStoredByte float64
	bitsPerRawByte    float64
	minCapBits        int
}{fill: 0.5, maxFill: 0.8, bitsPerStoredByte: 4, bitsPerRawByte: 1, minCapBits: 2048}

// filterCap is the largest bitmap, in bits, a block with raw line bytes
// and stored compressed bytes may get.
func filterCap(raw, stored int) int {
	p := &filterParams
	return max(int(min(p.bitsPerStoredByte*float64(stored), p.bitsPerRawByte*float64(raw))), p.minCapBits)
}

var lowerTable = func() (t [256]byte) {
	for i := range t {
		c := byte(i)
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		t[i] = c
	}
	return t
}()

// lowerASCII writes src with A-Z lowercased into dst (len(dst) >= len(src)),
// eight bytes at a time.
func lowerASCII(dst, src []byte) {
	dst = dst[:len(src)]
	i := 0
	for ; i+8 <= len(src); i += 8 {
		v := binary.LittleEndian.Uint64(src[i:])
		t := v & 0x7f7f7f7f7f7f7f7f
		ge := t + 0x3f3f3f3f3f3f3f3f // high bit set where t >= 'A'
		gt := t + 0x2525252525252525 // high bit set where t > 'Z'
		upper := ge &^ gt &^ v & 0x8080808080808080
		binary.LittleEndian.PutUint64(dst[i:], v|upper>>2)
	}
	for ; i < len(src); i++ {
		dst[i] = lowerTable[src[i]]
	}
}

// filterBuilder builds block bitmaps. It is reused across blocks and chunks.
type filterBuilder struct {
	scratch []byte // one byte per slot: plain stores, no read-modify-write
	lg      uint
}

// scratchLg sizes the scratch for a bitmap of at most limit bits. Folding
// onto a power of two is exact for any scratch at least as large as the
// bitmap, so the scratch only needs to reach the largest bitmap allowed.
func scratchLg(limit int) uint {
	lg := uint(bits.Len(uint(limit - 1))) // smallest 2^lg >= limit
	return min(max(lg, minScratchLg), maxScratchLg)
}

// reset prepares an all-clear scratch of 2^lg slots. The scratch is always
// left clear by project, so only growth allocates.
func (fb *filterBuilder) reset(lg uint) {
	fb.lg = lg
	n := 1 << lg
	if cap(fb.scratch) < n {
		fb.scratch = make([]byte, n)
	}
	fb.scratch = fb.scratch[:n]
}

// addLine marks the grams of one lowercased line. low must have at least 7
// readable bytes after the line (their values do not matter).
func (fb *filterBuilder) addLine(low []byte, n int) {
	sc := fb.scratch
	shift := (64 - fb.lg) & 63
	i := 0
	// Four positions per 8-byte load: bytes i..i+7 hold the 5-grams
	// starting at i..i+3.
	for ; i+8 <= n; i += 4 {
		v := binary.LittleEndian.Uint64(low[i : i+8 : i+8])
		for k := 0; k < 4; k++ {
			w := v >> (8 * k)
			sc[(w&0xFFFFFF)*mul3>>shift] = 1
			sc[(w&0xFFFFFFFF)*mul4>>shift] = 1
			sc[(w&0xFFFFFFFFFF)*mul5>>shift] = 1
		}
	}
	for ; i+5 <= n; i++ {
		v := binary.LittleEndian.Uint64(low[i : i+8 : i+8])
		sc[(v&0xFFFFFF)*mul3>>shift] = 1
		sc[(v&0xFFFFFFFF)*mul4>>shift] = 1
		sc[(v&0xFFFFFFFFFF)*mul5>>shift] = 1
	}
	for ; i+3 <= n; i++ {
		v := binary.LittleEndian.Uint64(low[i : i+8 : i+8])
		sc[(v&0xFFFFFF)*mul3>>shift] = 1
		if i+4 <= n {
			sc[(v&0xFFFFFFFF)*mul4>>shift] = 1
		}
	}
}

// sizeBits chooses the bitmap size for the marked scratch: enough bits for
// the target fill given the estimated number of distinct grams, capped by
// the block's size. It returns m == 0 when no gram was marked and ok ==
// false when the block should get no bitmap (it would be too full to help).
func (fb *filterBuilder) sizeBits(limit int) (m int, ok bool) {
	sc := fb.scratch
	slots := len(sc)
	// Estimate the distinct grams from the share of marked slots (linear
	// counting). Sampling one 64-byte stripe in eight keeps this cheap; it
	// only affects the bitmap's size, never which bits are set.
	marked, sampled := 0, 0
	if slots <= 4096 {
		marked, sampled = countMarked(sc), slots
	} else {
		for s := 0; s+64 <= slots; s += 512 {
			marked += countMarked(sc[s : s+64])
			sampled += 64
		}
	}
	if marked == 0 {
		if countMarked(sc) == 0 {
			return 0, true // no grams: every line is shorter than 3 bytes
		}
		marked = 1
	}
	frac := float64(marked) / float64(sampled)
	distinct := math.Inf(1)
	if frac < 1 {
		distinct = -float64(slots) * math.Log1p(-frac)
	}
	// The reader accepts any multiple of 8 bits; the builder picks the power
	// of two nearest (geometrically) to the ideal size, because folding the
	// scratch onto a power of two costs a fraction of a general projection.
	p := &filterParams
	ideal := distinct / -math.Log1p(-p.fill)
	lg := int(math.Round(math.Log2(max(ideal, 8))))
	for lg > 3 && 1<<lg > limit {
		lg--
	}
	m = min(1<<min(lg, 30), slots)
	if -math.Expm1(-distinct/float64(m)) > p.maxFill {
		return 0, false
	}
	return m, true
}

// fold sets bit j of out when any of scratch slots [j<<f, (j+1)<<f) is
// marked: the projection for m = len(sc) >> f, done a word at a time
// instead of a multiply per slot.
func fold(out, sc []byte, f uint) {
	k := 0
	if f >= 3 {
		span := 8 << (f - 3) // scratch bytes per output bit
		for o := range out {
			var z byte
			for bit := range 8 {
				var v uint64
				for e := k + span; k < e; k += 8 {
					v |= binary.LittleEndian.Uint64(sc[k:])
				}
				z |= byte((v|-v)>>63) << bit
			}
			out[o] = z
		}
		return
	}
	per := 64 >> f // bits of z filled by one scratch word
	for o := range out {
		var z uint64 // one 0/1 byte per output bit
		for sh := 0; sh < 64; sh += per {
			z |= orGroups(binary.LittleEndian.Uint64(sc[k:]), f) << sh
			k += 8
		}
		out[o] = gather8(z)
	}
}

// orGroups ORs groups of 1<<f bytes (each 0 or 1) of v and returns the
// 8>>f results as the low bytes.
func orGroups(v uint64, f uint) uint64 {
	switch f {
	case 1:
		v = (v | v>>8) & 0x00FF00FF00FF00FF
		v = (v | v>>8) & 0x0000FFFF0000FFFF
		v = (v | v>>16) & 0x00000000FFFFFFFF
	case 2:
		v |= v >> 8
		v |= v >> 16
		v = v&0xFF | v>>24&0xFF00
	}
	return v
}

// gather8 packs the low bits of the eight bytes of z (each 0 or 1) into
// one byte, byte k to bit k.
func gather8(z uint64) byte {
	z |= z >> 7
	z |= z >> 14
	z |= z >> 28
	return byte(z)
}

func countMarked(sc []byte) int {
	n := 0
	for j := 0; j+8 <= len(sc); j += 8 {
		n += bits.OnesCount64(binary.LittleEndian.Uint64(sc[j:]))
	}
	return n
}

// project ORs the scratch onto an m-bit bitmap appended to dst and clears
// the scratch for the next block: slot s lands on bit (s*m) >> lg.
func (fb *filterBuilder) project(dst []byte, m int) []byte {
	off := len(dst)
	dst = append(dst, make([]byte, m/8)...)
	out := dst[off:]
	sc := fb.scratch
	if m >= 8 && m&(m-1) == 0 && 1<<fb.lg >= m {
		fold(out, sc, fb.lg-uint(bits.TrailingZeros(uint(m))))
	} else {
		projectAny(out, sc, fb.lg, uint64(m))
	}
	clear(sc)
	return dst
}

// projectAny is the projection for any m.
func projectAny(out, sc []byte, lg uint, m uint64) {
	for s := 0; s+8 <= len(sc); s += 8 {
		v := binary.LittleEndian.Uint64(sc[s:])
		for v != 0 {
			j := (uint64(s) + uint64(bits.TrailingZeros64(v)>>3)) * m >> lg
			out[j>>3] |= 1 << (j & 7)
			v &= v - 1
		}
	}
}

// finish sizes and projects the scratch, appending the block's directory
// entry to dir and its bitmap to bitmap.
func (fb *filterBuilder) finish(dir, bitmap []byte, limit int) ([]byte, []byte) {
	lg, off := fb.lg, len(bitmap)
	m, ok := fb.sizeBits(limit)
	if !ok {
		clear(fb.scratch)
		lg, m = 0, 0
	} else {
		bitmap = fb.project(bitmap, m)
	}
	var e [filterDirLen]byte
	e[0] = byte(lg)
	binary.LittleEndian.PutUint32(e[1:], uint32(m))
	binary.LittleEndian.PutUint32(e[5:], uint32(off))
	return append(dir, e[:]...), bitmap
}

// Filter answers "may this chunk (or block) contain substring S". It has no
// false negatives for needles of 3 bytes or more, case-sensitive or not.
// It is a view over the filter section's bytes and copies nothing.
type Filter struct {
	n    int    // blocks
	dir  []byte // n entries of filterDirLen bytes
	bits []byte // concatenated block bitmaps
}

// ParseFilter validates a filter section (Meta.FilterOffset/FilterLen) and
// returns a view over it without copying. It checks the section's CRC32C,
// which reads every byte once; a caller that already verified the bytes
// (Decode does) can use ViewFilter, which only checks the structure.
func ParseFilter(b []byte) (*Filter, error) {
	if len(b) < 4 {
		return nil, corruptf("filter section of %d bytes", len(b))
	}
	body := b[:len(b)-4]
	if got, want := crc(body), binary.LittleEndian.Uint32(b[len(b)-4:]); got != want {
		return nil, corruptf("filter checksum %08x, want %08x", got, want)
	}
	return ViewFilter(b)
}

// ViewFilter is ParseFilter without the checksum: it validates every length
// and offset in O(blocks), so probing can never go out of bounds, but it
// does not detect flipped bits inside the bitmaps.
func ViewFilter(b []byte) (*Filter, error) {
	if len(b) < 1+4+4 {
		return nil, corruptf("filter section of %d bytes", len(b))
	}
	if b[0] != filterVersion {
		return nil, corruptf("filter version %d", b[0])
	}
	n := binary.LittleEndian.Uint32(b[1:])
	body := b[5 : len(b)-4]
	if n == 0 || n > MaxBlocks || uint64(n)*filterDirLen > uint64(len(body)) {
		return nil, corruptf("filter block count %d for %d bytes", n, len(b))
	}
	f := &Filter{n: int(n), dir: body[:n*filterDirLen], bits: body[n*filterDirLen:]}
	next := uint64(0)
	for i := 0; i < f.n; i++ {
		e := f.dir[i*filterDirLen:]
		lg, m, off := uint(e[0]), uint64(binary.LittleEndian.Uint32(e[1:])), uint64(binary.LittleEndian.Uint32(e[5:]))
		switch {
		case lg == 0 && m != 0:
			return nil, corruptf("filter block %d: pass-all entry with %d bits", i, m)
		case lg != 0 && (lg < minScratchLg || lg > maxScratchLg):
			return nil, corruptf("filter block %d: scratch exponent %d", i, lg)
		case m > 1<<lg || m%8 != 0:
			return nil, corruptf("filter block %d: %d bits", i, m)
		case off != next:
			return nil, corruptf("filter block %d: offset %d, want %d", i, off, next)
		}
		next += m / 8
	}
	if next != uint64(len(f.bits)) {
		return nil, corruptf("filter bitmaps hold %d bytes, directory says %d", len(f.bits), next)
	}
	return f, nil
}

// Blocks returns the number of blocks the filter covers.
func (f *Filter) Blocks() int { return f.n }

// MayContain reports whether some line of the chunk may contain needle.
// fold asks for ASCII/Unicode case-insensitive matching as (?i) does.
// Needles shorter than 3 bytes always return true.
func (f *Filter) MayContain(needle []byte, fold bool) bool {
	var nd Needle
	nd.compile(needle, fold)
	return f.MayContainNeedle(&nd)
}

// BlockMayContain is MayContain for block i alone. It returns true for an
// index out of range, as it does for any question it cannot rule out.
func (f *Filter) BlockMayContain(i int, needle []byte, fold bool) bool {
	var nd Needle
	nd.compile(needle, fold)
	return f.BlockMayContainNeedle(i, &nd)
}

// MayContainNeedle is MayContain for a needle compiled once with
// CompileNeedle, the form to use when testing many chunks.
func (f *Filter) MayContainNeedle(nd *Needle) bool {
	if nd.all {
		return true
	}
	for i := 0; i < f.n; i++ {
		if f.blockMay(i, nd) {
			return true
		}
	}
	return false
}

// BlockMayContainNeedle is BlockMayContain for a compiled needle.
func (f *Filter) BlockMayContainNeedle(i int, nd *Needle) bool {
	if nd.all || i < 0 || i >= f.n {
		return true
	}
	return f.blockMay(i, nd)
}

func (f *Filter) blockMay(i int, nd *Needle) bool {
	e := f.dir[i*filterDirLen : (i+1)*filterDirLen]
	lg := uint(e[0])
	if lg == 0 {
		return true
	}
	m := uint64(binary.LittleEndian.Uint32(e[1:]))
	if m == 0 {
		return false // the block has no gram at all, the needle has one
	}
	off := binary.LittleEndian.Uint32(e[5:])
	bm := f.bits[off : uint64(off)+m/8]
	for _, h := range nd.keys[:nd.n] {
		j := (h >> (64 - lg)) * m >> lg
		if bm[j>>3]&(1<<(j&7)) == 0 {
			return false
		}
	}
	return true
}

// Needle is a substring query prepared for filters: the hashes of up to 24
// of its grams, longest grams first. The zero value matches everything.
type Needle struct {
	n    int
	all  bool
	keys [maxNeedleKeys]uint64
}

// CompileNeedle prepares needle for MayContainNeedle. fold means the needle
// is matched case-insensitively with Unicode simple folding, as LogQL's
// (?i) does.
func CompileNeedle(needle []byte, fold bool) *Needle {
	nd := new(Needle)
	nd.compile(needle, fold)
	return nd
}

// usableForFold reports whether a gram of the needle can be looked up for a
// case-insensitive match. The index lowercases ASCII only, so a gram must
// consist of bytes whose every case variant is the same ASCII letter pair:
// bytes >= 0x80 are excluded (non-ASCII text folds in ways the index does
// not model), and so are k and s, whose fold orbits include U+212A KELVIN
// SIGN and U+017F LATIN SMALL LETTER LONG S.
func usableForFold(c byte) bool {
	switch c {
	case 'k', 'K', 's', 'S':
		return false
	}
	return c < 0x80
}

// needleQuota is how many 5-, 4- and 3-grams a needle contributes; a class
// with fewer usable grams passes its unused quota on to the next.
var needleQuota = [3]int{12, 6, 6}

func (nd *Needle) compile(needle []byte, fold bool) {
	nd.n, nd.all = 0, true
	if len(needle) < 3 {
		return
	}
	// The needle lowercased, padded for 8-byte loads; on the stack unless
	// the needle is long.
	var stack [72]byte
	low := stack[:]
	if len(needle)+8 > len(stack) {
		low = make([]byte, len(needle)+8)
	}
	lowerASCII(low, needle)
	g := gramPicker{nd: nd, low: low, needle: needle, fold: fold}
	if fold && len(needle) <= 64 {
		for i, c := range needle {
			if !usableForFold(c) {
				g.bad |= 1 << i
			}
		}
		g.badKnown = true
	}
	carry := 0
	for gi, n := range [3]int{5, 4, 3} {
		q := needleQuota[gi] + carry
		positions := len(needle) - n + 1
		added := 0
		g.tried, g.classStart = 0, nd.n
		if positions > 0 && positions <= q {
			for p := range positions {
				if g.add(p, n) {
					added++
				}
			}
		} else if positions > 0 {
			// Spread the grams over the needle, both ends included, so
			// one unusual region cannot supply them all; then fill any
			// quota left by unusable or repeated grams from the start.
			for t := range q {
				if g.add(t*(positions-1)/(q-1), n) {
					added++
				}
			}
			for p := 0; added < q && p < positions; p++ {
				if g.add(p, n) {
					added++
				}
			}
		}
		carry = q - added
	}
	nd.all = nd.n == 0
}

type gramPicker struct {
	nd       *Needle
	low      []byte // lowercased needle, 8 bytes of padding
	needle   []byte
	fold     bool
	badKnown bool
	bad      uint64 // bit i: needle[i] cannot take part in a fold lookup
	tried    uint64 // bit p: the gram at p of the current length was tried
	// classStart is where the current length's keys begin in nd.keys:
	// grams of different lengths never share a hash multiplier, so only
	// same-length keys can repeat.
	classStart int
}

// add adds the hash of the n-gram at p, unless folding rules it out or it
// is already there.
func (g *gramPicker) add(p, n int) bool {
	if p < 64 {
		if g.tried&(1<<p) != 0 {
			return false
		}
		g.tried |= 1 << p
	}
	if g.fold {
		if g.badKnown {
			if g.bad>>p&(1<<n-1) != 0 {
				return false
			}
		} else {
			for _, c := range g.needle[p : p+n] {
				if !usableForFold(c) {
					return false
				}
			}
		}
	}
	v := binary.LittleEndian.Uint64(g.low[p : p+8])
	var h uint64
	switch n {
	case 3:
		h = (v & 0xFFFFFF) * mul3
	case 4:
		h = (v & 0xFFFFFFFF) * mul4
	default:
		h = (v & 0xFFFFFFFFFF) * mul5
	}
	nd := g.nd
	if nd.n == maxNeedleKeys || slices.Contains(nd.keys[g.classStart:nd.n], h) {
		return false
	}
	nd.keys[nd.n] = h
	nd.n++
	return true
}

var errFilterMismatch = errors.New("filter does not match the chunk's lines")

func filterMismatch(block int) error {
	return fmt.Errorf("%w: block %d: %w", ErrCorrupt, block, errFilterMismatch)
}
