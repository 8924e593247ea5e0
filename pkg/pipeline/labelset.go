package pipeline

import (
	"hash/maphash"
	"slices"
	"strings"
	"unsafe"

	"github.com/cespare/xxhash/v2"

	"github.com/logsift/logsift/pkg/labels"
)

// The names Loki reserves for pipeline errors.
const (
	ErrorLabel        = "__error__"
	ErrorDetailsLabel = "__error_details__"
)

// The values of __error__ that stages set, as Loki names them.
const (
	ErrJSON             = "JSONParserErr"
	ErrLogfmt           = "LogfmtParserErr"
	ErrSampleExtraction = "SampleExtractionErr"
	ErrLabelFilter      = "LabelFilterErr"
	ErrTemplateFormat   = "TemplateFormatErr"
)

// Label categories. A name lives in one category at a time; when two
// sources give the same name, parsed labels win over structured metadata
// and structured metadata over stream labels, as in Loki.
const (
	catStream uint8 = iota
	catMetadata
	catParsed
)

// duplicateSuffix is appended to a parsed or metadata label whose name is
// already a stream label.
const duplicateSuffix = "_extracted"

// LabelsResult is the label set of an entry after the pipeline, kept in the
// three categories Loki distinguishes so that the API can serve clients that
// ask for categorized labels. Results are shared and cached: treat them as
// read-only.
type LabelsResult struct {
	Stream             labels.Labels
	StructuredMetadata labels.Labels
	// Parsed holds labels added by parsers and label_format, plus
	// __error__ and __error_details__ when a stage failed.
	Parsed labels.Labels
	// Labels is the union of the three, sorted: the stream key of a result.
	Labels labels.Labels
	// Hash is Labels.Hash().
	Hash uint64
	// Err is the value of __error__, "" when no stage failed.
	Err string

	cats []uint8 // category of each element of Labels, for cache checks
}

// String formats the merged labels: {a="1", b="2"}.
func (r *LabelsResult) String() string { return r.Labels.String() }

// nameHash is the hash used to find label names quickly.
func nameHash(s string) uint64 { return xxhash.Sum64String(s) }

// ent is a label set during the processing of one entry. Values may point
// into the line or the entry's arena; they are copied before they outlive
// the entry.
type ent struct {
	name  string
	value string
	h     uint64
	cat   uint8
	dead  bool
	// parsed records that a parser or label_format set the name during
	// this entry; later parsers do not overwrite it ("first value wins").
	parsed bool
}

type slot struct {
	gen uint32
	idx int32
	h   uint64
}

// entryState holds the labels of the entry being processed: the stream's
// labels, untouched, plus changes in ents. It is reset for every entry
// without freeing memory.
type entryState struct {
	base     labels.Labels
	baseH    []uint64
	baseMask uint64 // one bit per base name hash, to skip most base lookups
	baseGone []bool // base label deleted or shadowed by an ent
	anyGone  bool

	ents  []ent
	slots []slot // open-addressing index of ents by name hash
	gen   uint32

	err, errDetails string

	// arena holds unescaped values of this entry.
	arena []byte
	// scratch for building results.
	merged []labels.Label
	mcats  []uint8
	sorter sorter
}

func (s *entryState) reset() {
	s.ents = s.ents[:0]
	s.gen++
	if s.gen == 0 { // wrapped: old stamps could look current
		clear(s.slots)
		s.gen = 1
	}
	if s.anyGone {
		clear(s.baseGone)
		s.anyGone = false
	}
	s.err, s.errDetails = "", ""
	s.arena = s.arena[:0]
}

// changed reports whether the entry's labels differ from the stream's.
func (s *entryState) changed() bool {
	return len(s.ents) > 0 || s.anyGone || s.err != "" || s.errDetails != ""
}

func (s *entryState) baseIndex(name string, h uint64) int {
	if s.baseMask&(1<<(h&63)) == 0 {
		return -1
	}
	for i, bh := range s.baseH {
		if bh == h && s.base[i].Name == name {
			return i
		}
	}
	return -1
}

// baseHas reports whether the stream has the label, which decides the
// _extracted suffix.
func (s *entryState) baseHas(name string, h uint64) bool { return s.baseIndex(name, h) >= 0 }

func (s *entryState) find(name string, h uint64) int {
	mask := uint64(len(s.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		sl := &s.slots[i]
		if sl.gen != s.gen {
			return -1
		}
		if sl.h == h && s.ents[sl.idx].name == name {
			return int(sl.idx)
		}
	}
}

// insertSlot indexes ents[idx]; ents[:idx] are indexed already.
func (s *entryState) insertSlot(h uint64, idx int) {
	if 2*(idx+1) > len(s.slots) {
		s.grow(idx)
	}
	mask := uint64(len(s.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		if s.slots[i].gen != s.gen {
			s.slots[i] = slot{gen: s.gen, idx: int32(idx), h: h}
			return
		}
	}
}

func (s *entryState) grow(n int) {
	s.slots = make([]slot, 2*len(s.slots))
	mask := uint64(len(s.slots) - 1)
	for idx := range s.ents[:n] {
		h := s.ents[idx].h
		for i := h & mask; ; i = (i + 1) & mask {
			if s.slots[i].gen != s.gen {
				s.slots[i] = slot{gen: s.gen, idx: int32(idx), h: h}
				break
			}
		}
	}
}

// get returns the value of a label and whether it exists. The error
// labels are not labels here; see getSpecial.
func (s *entryState) get(name string, h uint64) (string, bool) {
	if i := s.find(name, h); i >= 0 {
		e := &s.ents[i]
		if !e.dead {
			return e.value, true
		}
		return "", false
	}
	if i := s.baseIndex(name, h); i >= 0 && !s.baseGone[i] {
		return s.base[i].Value, true
	}
	return "", false
}

// getWithCat is get that also returns the category.
func (s *entryState) getWithCat(name string, h uint64) (string, uint8, bool) {
	if i := s.find(name, h); i >= 0 {
		e := &s.ents[i]
		if !e.dead {
			return e.value, e.cat, true
		}
		return "", 0, false
	}
	if i := s.baseIndex(name, h); i >= 0 && !s.baseGone[i] {
		return s.base[i].Value, catStream, true
	}
	return "", 0, false
}

// getSpecial is get that also answers for __error__ and __error_details__.
func (s *entryState) getSpecial(name string, h uint64) (string, bool) {
	switch name {
	case ErrorLabel:
		return s.err, s.err != ""
	case ErrorDetailsLabel:
		return s.errDetails, s.errDetails != ""
	}
	return s.get(name, h)
}

// extracted reports whether a parser already set the name in this entry.
func (s *entryState) extracted(name string, h uint64) bool {
	i := s.find(name, h)
	return i >= 0 && s.ents[i].parsed
}

// set gives a label a value in a category, following Loki's precedence:
// parsed > structured metadata > stream.
func (s *entryState) set(cat uint8, name string, h uint64, value string) {
	if i := s.find(name, h); i >= 0 {
		e := &s.ents[i]
		if !e.dead {
			if cat == catMetadata && e.cat == catParsed {
				return
			}
			if cat == catStream && e.cat != catStream {
				return
			}
		}
		e.value, e.cat, e.dead = value, cat, false
		if cat == catParsed {
			e.parsed = true
		}
		s.shadowBase(name, h)
		return
	}
	s.ents = append(s.ents, ent{name: name, value: value, h: h, cat: cat, parsed: cat == catParsed})
	s.insertSlot(h, len(s.ents)-1)
	s.shadowBase(name, h)
}

func (s *entryState) shadowBase(name string, h uint64) {
	if i := s.baseIndex(name, h); i >= 0 && !s.baseGone[i] {
		s.baseGone[i] = true
		s.anyGone = true
	}
}

func (s *entryState) del(name string, h uint64) {
	switch name {
	case ErrorLabel:
		s.err = ""
		return
	case ErrorDetailsLabel:
		s.errDetails = ""
		return
	}
	if i := s.find(name, h); i >= 0 {
		s.ents[i].dead = true
	}
	s.shadowBase(name, h)
}

func (s *entryState) setErr(kind, details string) {
	s.err = kind
	s.errDetails = details
}

// addMetadata adds an entry's structured metadata: a name that collides
// with a stream label gets the _extracted suffix, as Loki does.
func (s *entryState) addMetadata(md labels.Labels) {
	for _, l := range md {
		name := l.Name
		h := nameHash(name)
		if s.baseHas(name, h) {
			name += duplicateSuffix
			h = nameHash(name)
		}
		switch name {
		case ErrorLabel:
			s.err = l.Value
			continue
		case ErrorDetailsLabel:
			s.errDetails = l.Value
			continue
		}
		s.set(catMetadata, name, h, l.Value)
	}
}

// build collects the entry's labels, sorted, with their categories, into
// scratch slices valid until the next call.
func (s *entryState) build() ([]labels.Label, []uint8) {
	m, c := s.merged[:0], s.mcats[:0]
	for i, l := range s.base {
		if !s.baseGone[i] {
			m = append(m, l)
			c = append(c, catStream)
		}
	}
	for i := range s.ents {
		e := &s.ents[i]
		if !e.dead {
			m = append(m, labels.Label{Name: e.name, Value: e.value})
			c = append(c, e.cat)
		}
	}
	if s.err != "" || s.errDetails != "" {
		// A stream that carries a label named like an error label loses
		// it to the pipeline's own, so that names stay unique.
		n := 0
		for i, l := range m {
			if !isReserved(l.Name) {
				m[n], c[n] = l, c[i]
				n++
			}
		}
		m, c = m[:n], c[:n]
	}
	if s.err != "" {
		m = append(m, labels.Label{Name: ErrorLabel, Value: s.err})
		c = append(c, catParsed)
	}
	if s.errDetails != "" {
		m = append(m, labels.Label{Name: ErrorDetailsLabel, Value: s.errDetails})
		c = append(c, catParsed)
	}
	s.sorter.sort(m, c)
	s.merged, s.mcats = m, c
	return m, c
}

// each calls f for every live label with its category, stream labels
// first, in no particular order otherwise. Error labels are not included.
func (s *entryState) each(f func(l labels.Label, cat uint8)) {
	for i, l := range s.base {
		if !s.baseGone[i] {
			f(l, catStream)
		}
	}
	for i := range s.ents {
		e := &s.ents[i]
		if !e.dead {
			f(labels.Label{Name: e.name, Value: e.value}, e.cat)
		}
	}
}

// appendValue copies b into the arena and returns a string viewing it. The
// view is valid until the next entry.
func (s *entryState) appendValue(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if cap(s.arena)-len(s.arena) < len(b) {
		// A new block; old views keep the old one alive.
		n := 2 * cap(s.arena)
		if n < 4096 {
			n = 4096
		}
		if n < len(b) {
			n = len(b)
		}
		s.arena = make([]byte, 0, n)
	}
	start := len(s.arena)
	s.arena = append(s.arena, b...)
	return unsafe.String(&s.arena[start], len(b))
}

// bytesView returns a string viewing b without copying; b must not change
// while the entry is processed.
func bytesView(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// resultCache maps the hash of a label set (with categories) to results,
// so that entries ending with the same labels share one result.
type resultCache struct {
	// small holds the first results in a slice: metric queries mostly
	// group into a handful of series per stream, and scanning a few keys
	// beats a map lookup. The rest go into m.
	small []keyedResult
	m     map[uint64][]*LabelsResult
	n     int
	last  *LabelsResult // the result returned last
}

type keyedResult struct {
	key uint64
	r   *LabelsResult
}

// smallResults is how many results the slice holds before the map.
const smallResults = 16

// maxCachedResults bounds the cache of one stream; past it, results of new
// label sets are still built but no longer remembered.
const maxCachedResults = 4096

func (c *resultCache) lookup(key uint64, merged []labels.Label, cats []uint8) *LabelsResult {
	for i := range c.small {
		if e := &c.small[i]; e.key == key && sameLabels(e.r, merged, cats) {
			return e.r
		}
	}
	for _, r := range c.m[key] {
		if sameLabels(r, merged, cats) {
			return r
		}
	}
	return nil
}

func (c *resultCache) add(key uint64, r *LabelsResult) {
	if c.n >= maxCachedResults {
		return
	}
	c.n++
	if len(c.small) < smallResults {
		c.small = append(c.small, keyedResult{key, r})
		return
	}
	if c.m == nil {
		c.m = make(map[uint64][]*LabelsResult)
	}
	c.m[key] = append(c.m[key], r)
}

func sameLabels(r *LabelsResult, merged []labels.Label, cats []uint8) bool {
	if len(r.Labels) != len(merged) {
		return false
	}
	for i, l := range merged {
		if r.Labels[i] != l || r.cats[i] != cats[i] {
			return false
		}
	}
	return true
}

// lookupSeed seeds lookupKey for the process; the keys never leave it.
var lookupSeed = maphash.MakeSeed()

// lookupKey hashes a label set and its categories for resultCache: the
// runtime's string hash, several times faster than xxhash over names,
// values and separators for the short strings labels are.
func lookupKey(ls []labels.Label, cats []uint8) uint64 {
	k := uint64(len(ls))
	for i, l := range ls {
		k = (k^maphash.String(lookupSeed, l.Name))*0x9e3779b97f4a7c15 ^ maphash.String(lookupSeed, l.Value) ^ uint64(cats[i])<<56
		k = k<<7 | k>>57
	}
	return k
}

// hashLabels is labels.Labels.Hash without the allocation of a slice
// conversion, plus a key that also covers the categories.
func hashLabels(d *xxhash.Digest, ls []labels.Label, cats []uint8) (hash, key uint64) {
	d.Reset()
	var sig uint64 = 1469598103934665603
	for i, l := range ls {
		_, _ = d.WriteString(l.Name)
		_, _ = d.Write(sepName[:])
		_, _ = d.WriteString(l.Value)
		_, _ = d.Write(sepValue[:])
		sig = (sig ^ uint64(cats[i]+1)) * 1099511628211
	}
	hash = d.Sum64()
	return hash, hash ^ sig*0x9e3779b97f4a7c15
}

var (
	sepName  = [1]byte{0xff}
	sepValue = [1]byte{0xfe}
)

// newResult copies a merged label set into a result that owns its memory,
// in four allocations whatever the number of labels.
func newResult(merged []labels.Label, cats []uint8, hash uint64) *LabelsResult {
	size := 0
	for _, l := range merged {
		size += len(l.Name) + len(l.Value)
	}
	var buf strings.Builder
	buf.Grow(size)
	for _, l := range merged {
		buf.WriteString(l.Name)
		buf.WriteString(l.Value)
	}
	all := buf.String()
	n := len(merged)
	// Labels and the three categories share one backing array.
	ls := make(labels.Labels, 2*n)
	r := &LabelsResult{Hash: hash, Labels: ls[:n:n], cats: slices.Clone(cats)}
	var counts [3]int
	off := 0
	for i, l := range merged {
		name := all[off : off+len(l.Name)]
		off += len(l.Name)
		value := all[off : off+len(l.Value)]
		off += len(l.Value)
		ls[i] = labels.Label{Name: name, Value: value}
		counts[min(cats[i], catParsed)]++
		if name == ErrorLabel {
			r.Err = value
		}
	}
	parts := ls[n:]
	next := [3]int{0, counts[0], counts[0] + counts[1]}
	for i, l := range ls[:n] {
		c := min(cats[i], catParsed)
		parts[next[c]] = l
		next[c]++
	}
	if counts[catStream] > 0 {
		r.Stream = parts[:counts[0]:counts[0]]
	}
	if counts[catMetadata] > 0 {
		r.StructuredMetadata = parts[counts[0] : counts[0]+counts[1] : counts[0]+counts[1]]
	}
	if counts[catParsed] > 0 {
		r.Parsed = parts[counts[0]+counts[1]:]
	}
	return r
}

// sorter orders the labels of an entry. Entries of a stream usually yield
// the same names in the same order, so it remembers the permutation of the
// last unsorted sequence and reuses it when the names repeat.
type sorter struct {
	names []string
	perm  []int
	tmpL  []labels.Label
	tmpC  []uint8
}

func (so *sorter) sort(ls []labels.Label, cats []uint8) {
	n := len(ls)
	if n < 2 {
		return
	}
	same := len(so.names) == n
	if same {
		for i := range ls {
			if ls[i].Name != so.names[i] {
				same = false
				break
			}
		}
	}
	if !same {
		if n <= 12 {
			insertionSort(ls, cats)
			so.names = so.names[:0]
			return
		}
		so.names = so.names[:0]
		so.perm = so.perm[:0]
		for i := range ls {
			so.names = append(so.names, ls[i].Name)
			so.perm = append(so.perm, i)
		}
		slices.SortFunc(so.perm, func(a, b int) int { return strings.Compare(ls[a].Name, ls[b].Name) })
	}
	so.tmpL = append(so.tmpL[:0], ls...)
	so.tmpC = append(so.tmpC[:0], cats...)
	for i, j := range so.perm {
		ls[i], cats[i] = so.tmpL[j], so.tmpC[j]
	}
}

func insertionSort(ls []labels.Label, cats []uint8) {
	for i := 1; i < len(ls); i++ {
		l, c := ls[i], cats[i]
		j := i
		for j > 0 && ls[j-1].Name > l.Name {
			ls[j], cats[j] = ls[j-1], cats[j-1]
			j--
		}
		ls[j], cats[j] = l, c
	}
}
