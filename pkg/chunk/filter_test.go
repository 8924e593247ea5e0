package chunk

import (
	"bytes"
	"math/rand/v2"
	"regexp"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/logsift/logsift/pkg/labels"
)

// TestOnlyKAndSFoldOutsideASCII proves the rule usableForFold relies on:
// among ASCII characters, only k, K, s and S have a Unicode simple-fold
// orbit that leaves ASCII (to U+212A KELVIN SIGN and U+017F LONG S), so a
// gram of other ASCII bytes matches case-insensitively exactly when its
// ASCII-lowercased form occurs.
func TestOnlyKAndSFoldOutsideASCII(t *testing.T) {
	var leaving []rune
	for r := rune(0); r < utf8.RuneSelf; r++ {
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			if f >= utf8.RuneSelf {
				leaving = append(leaving, r)
				break
			}
		}
	}
	if string(leaving) != "KSks" {
		t.Fatalf("ASCII runes whose fold orbit leaves ASCII: %q", string(leaving))
	}
	for r := rune(0); r < utf8.RuneSelf; r++ {
		want := r < utf8.RuneSelf && !bytes.ContainsRune([]byte("KSks"), r)
		if got := usableForFold(byte(r)); got != want {
			t.Errorf("usableForFold(%q) = %v", r, got)
		}
	}
	for c := 0x80; c < 0x100; c++ {
		if usableForFold(byte(c)) {
			t.Errorf("usableForFold(%#x) = true", c)
		}
	}
	// The case the rule exists for: (?i)kelvin matches a Kelvin sign.
	if !regexp.MustCompile(`(?i)kelvin`).MatchString("\u212Aelvin") {
		t.Fatal("Go's (?i) no longer folds k to U+212A; revisit usableForFold")
	}
}

func TestLowerASCII(t *testing.T) {
	src := make([]byte, 256+13)
	for i := range src {
		src[i] = byte(i)
	}
	dst := make([]byte, len(src))
	lowerASCII(dst, src)
	for i := range src {
		if dst[i] != lowerTable[src[i]] {
			t.Fatalf("byte %#x lowered to %#x", src[i], dst[i])
		}
	}
}

// checkNoFalseNegatives asserts, for one chunk, that every needle some line
// contains (by brute force: bytes.Contains, or (?i) regexp for fold) passes
// the chunk filter and the filter of every block holding such a line.
func checkNoFalseNegatives(t *testing.T, c *Chunk, blocks [][]Entry, needles [][]byte) (checked, ruledOut int) {
	t.Helper()
	f := c.Filter()
	// Each block's lines joined by NUL: a needle without NUL cannot match
	// across the separator, for bytes.Contains or for a regexp (NUL is a
	// whole rune that only a NUL in the pattern matches).
	joined := make([][]byte, len(blocks))
	for i, ents := range blocks {
		joined[i] = bytes.Join(linesOf(ents), []byte{0})
	}
	contains := func(i int, nd []byte, re *regexp.Regexp) bool {
		if bytes.IndexByte(nd, 0) < 0 {
			if re != nil {
				return re.Match(joined[i])
			}
			return bytes.Contains(joined[i], nd)
		}
		for _, e := range blocks[i] {
			if (re == nil && bytes.Contains(e.Line, nd)) || (re != nil && re.Match(e.Line)) {
				return true
			}
		}
		return false
	}
	for _, nd := range needles {
		for _, fold := range []bool{false, true} {
			var re *regexp.Regexp
			if fold {
				if !utf8.Valid(nd) {
					continue // no (?i) pattern can be written for it
				}
				re = regexp.MustCompile("(?i)" + regexp.QuoteMeta(string(nd)))
			}
			compiled := CompileNeedle(nd, fold)
			inChunk := false
			for i := range blocks {
				inBlock := contains(i, nd, re)
				may := f.BlockMayContain(i, nd, fold)
				if may != f.BlockMayContainNeedle(i, compiled) {
					t.Fatalf("BlockMayContain and BlockMayContainNeedle disagree on %q", nd)
				}
				if inBlock && !may {
					t.Fatalf("false negative: block %d holds %q (fold=%v) but its filter rules it out", i, nd, fold)
				}
				inChunk = inChunk || inBlock
			}
			may := f.MayContain(nd, fold)
			if inChunk && !may {
				t.Fatalf("false negative: chunk holds %q (fold=%v) but its filter rules it out", nd, fold)
			}
			checked++
			if !may {
				ruledOut++
			}
		}
	}
	return checked, ruledOut
}

// needlesFor draws needles from a chunk's own lines (cut anywhere, so words
// are cut in half, with random case changes) and from elsewhere (absent).
func needlesFor(rng *rand.Rand, lines [][]byte, n int) [][]byte {
	var out [][]byte
	for len(out) < n {
		l := lines[rng.IntN(len(lines))]
		if len(l) < 3 {
			continue
		}
		ln := 3 + rng.IntN(min(len(l)-3, 30)+1)
		st := rng.IntN(len(l) - ln + 1)
		nd := bytes.Clone(l[st : st+ln])
		switch rng.IntN(4) {
		case 0:
			nd = bytes.ToUpper(nd)
		case 1:
			for i := range nd {
				if rng.IntN(2) == 0 && nd[i] < 0x80 {
					nd[i] ^= 0x20 * byte(rng.IntN(2)) & ^byte(0xff-0x20) // flip ASCII case bit at random
				}
			}
		case 2:
			nd = []byte(string(bytes.Runes(nd))) // keep, but via runes (may repair UTF-8)
		}
		out = append(out, nd)
		// An absent needle: random letters and digits.
		abs := make([]byte, 3+rng.IntN(12))
		for i := range abs {
			abs[i] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._"[rng.IntN(65)]
		}
		out = append(out, abs)
	}
	return out
}

func encodeBlocks(t *testing.T, ents []Entry, opts Options) (*Chunk, [][]Entry) {
	t.Helper()
	b, _, err := Encode(testLabels, ents, opts)
	if err != nil {
		t.Fatal(err)
	}
	c, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	var buf BlockBuffer
	var blocks [][]Entry
	for i := range c.Meta().Blocks {
		be, err := c.ReadBlock(i, &buf)
		if err != nil {
			t.Fatal(err)
		}
		cp := make([]Entry, len(be))
		for k := range be {
			cp[k] = be[k].Clone()
		}
		blocks = append(blocks, cp)
	}
	return c, blocks
}

// forceBitmaps makes the builder give every block a bitmap, however full,
// so that the property tests exercise lookups on high-entropy text too.
func forceBitmaps(t *testing.T) {
	saved := filterParams
	filterParams.bitsPerRawByte, filterParams.bitsPerStoredByte, filterParams.maxFill = 64, 64, 1
	t.Cleanup(func() { filterParams = saved })
}

func TestFilterPropertyGenerated(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	for round := range 9 {
		if round == 6 {
			forceBitmaps(t)
		}
		var lines [][]byte
		switch round % 3 {
		case 0:
			lines = genNasty(rng, 3000)
		case 1:
			lines = genAccessLog(rng, 3000)
		default:
			lines = append(genNasty(rng, 1500), genAccessLog(rng, 1500)...)
		}
		c, blocks := encodeBlocks(t, entriesOf(lines, 0), Options{BlockSize: []int{MinBlockSize, 64 << 10, DefaultBlockSize}[round%3]})
		if err := c.Verify(); err != nil {
			t.Fatal(err)
		}
		needles := needlesFor(rng, lines, 100)
		needles = append(needles, []byte("kelvin"), []byte("KELVIN"), []byte("\u212Aelvin"), []byte("STATUS"), []byte("ſtatus"),
			[]byte("straße"), []byte("STRASSE"), []byte("σίσυφος"), []byte("ΣΊΣΥΦΟΣ"), []byte("ǆemal"), []byte("\xff\xfe"),
			[]byte("\x00\x01\x02"), []byte("\n\tat"), []byte("a\nb"), []byte("abc"), []byte("µs"), []byte("ΜS"))
		checked, out := checkNoFalseNegatives(t, c, blocks, needles)
		t.Logf("round %d: %d blocks, %d needle checks, %d ruled out", round, len(blocks), checked, out)
	}
}

func TestFilterPropertyCorpus(t *testing.T) {
	streams := loadCorpus(t, 300<<10)
	rng := rand.New(rand.NewPCG(23, 24))
	for _, s := range streams {
		if s.raw < 2048 && rng.IntN(4) != 0 {
			continue // the many tiny samples: check a quarter of them
		}
		lines := s.lines
		if len(lines) > 1500 {
			lines = lines[:1500]
		}
		// Needles from this file and, as absent candidates, from another.
		other := streams[rng.IntN(len(streams))].lines
		needles := needlesFor(rng, lines, 40)
		needles = append(needles, needlesFor(rng, other, 10)...)
		c, blocks := encodeBlocks(t, entriesOf(lines, 0), Options{BlockSize: 64 << 10})
		checkNoFalseNegatives(t, c, blocks, needles)
	}
}

// TestGramsStayInsideLines: a needle spanning the end of one line and the
// start of the next must be ruled out (its cross-boundary grams were never
// indexed), while each line's own text is found.
func TestGramsStayInsideLines(t *testing.T) {
	ents := []Entry{{Timestamp: 1, Line: []byte("connection refused by upstream")}, {Timestamp: 2, Line: []byte("retrying in five seconds")}}
	c, _ := encodeBlocks(t, ents, Options{})
	f := c.Filter()
	for _, nd := range []string{"upstreamretrying", "streamretry", "upstream\nretrying"} {
		if f.MayContain([]byte(nd), false) {
			t.Errorf("%q spans two lines but passed the filter", nd)
		}
	}
	for _, nd := range []string{"onnection refus", "UPSTREAM", "in five sec", "ret"} {
		if !f.MayContain([]byte(nd), false) || !f.MayContain([]byte(nd), true) {
			t.Errorf("%q is in a line but was ruled out", nd)
		}
	}
	// Multi-line entries are indexed across their newlines.
	c, _ = encodeBlocks(t, []Entry{{Line: []byte("Exception in thread main\n\tat com.example.Foo.bar(Foo.java:42)")}}, Options{})
	if !c.Filter().MayContain([]byte("main\n\tat com"), false) {
		t.Error("needle across a newline inside one entry was ruled out")
	}
}

func TestNeedleRules(t *testing.T) {
	ents := []Entry{{Line: []byte("some line of text with 10.1.2.3 in it")}}
	c, _ := encodeBlocks(t, ents, Options{})
	f := c.Filter()
	// Shorter than a gram: always maybe.
	for _, nd := range []string{"", "q", "zz"} {
		if !f.MayContain([]byte(nd), false) || !f.MayContain([]byte(nd), true) {
			t.Errorf("short needle %q ruled out", nd)
		}
	}
	// No gram usable under folding: maybe.
	if nd := CompileNeedle([]byte("sksks"), true); !nd.all || !f.MayContainNeedle(nd) {
		t.Error("fold needle of only k/s should match everything")
	}
	if nd := CompileNeedle([]byte("ñññ"), true); !nd.all {
		t.Error("fold needle of only non-ASCII should match everything")
	}
	// The same needle without folding is looked up.
	if CompileNeedle([]byte("sksks"), false).all {
		t.Error("case-sensitive needle sksks should have grams")
	}
	// Grams around k and s still rule a fold needle out.
	if f.MayContain([]byte("kangaroos skip kayaks"), false) || f.MayContain([]byte("kangaroos skip kayaks"), true) {
		t.Error("absent needle with k and s passed (possible but very unlikely false positive)")
	}
	// An absent needle with usable grams is ruled out; present ones pass.
	if f.MayContain([]byte("10.1.2.4 in"), false) || f.MayContain([]byte("qqqqqqq"), true) {
		t.Error("absent needle passed (possible but very unlikely false positive)")
	}
	if !f.MayContain([]byte("T WITH 10.1.2.3"), false) {
		t.Error("present needle ruled out")
	}
	// Out-of-range block indexes answer maybe.
	if !f.BlockMayContain(-1, []byte("qqqq"), false) || !f.BlockMayContain(1, []byte("qqqq"), false) {
		t.Error("out-of-range block ruled out")
	}
	// Needle keys are capped and deduplicated.
	nd := CompileNeedle(bytes.Repeat([]byte("abcdefghij"), 20), false)
	if nd.n != maxNeedleKeys {
		t.Errorf("long needle has %d keys", nd.n)
	}
	if nd := CompileNeedle([]byte("aaaaaaaa"), false); nd.n != 3 {
		t.Errorf("aaaaaaaa has %d distinct keys, want 3", nd.n)
	}
}

func TestFilterBlocksWithoutGrams(t *testing.T) {
	ents := []Entry{{Timestamp: 1, Line: []byte("ab")}, {Timestamp: 2, Line: []byte("x")}, {Timestamp: 3}}
	c, _ := encodeBlocks(t, ents, Options{})
	if c.Filter().MayContain([]byte("abx"), false) {
		t.Error("block without grams should rule out every needle with one")
	}
	if err := c.Verify(); err != nil {
		t.Fatal(err)
	}
}

func TestFilterPassAllOnRandomBytes(t *testing.T) {
	rng := rand.New(rand.NewPCG(25, 26))
	line := make([]byte, 200<<10)
	for i := range line {
		line[i] = byte(rng.UintN(256))
	}
	b, meta, err := Encode(testLabels, []Entry{{Line: line}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	f, err := ParseFilter(b[meta.FilterOffset : meta.FilterOffset+meta.FilterLen])
	if err != nil {
		t.Fatal(err)
	}
	if f.dir[0] != 0 || !f.MayContain([]byte("anything at all"), false) {
		t.Fatal("random bytes should get a pass-all block filter")
	}
	if meta.Size > len(line)+len(line)/50 {
		t.Fatalf("incompressible block grew to %d bytes", meta.Size)
	}
	c, _ := Decode(b)
	if err := c.Verify(); err != nil {
		t.Fatal(err)
	}
}

func TestParseFilterRejectsBadSections(t *testing.T) {
	b, meta, err := Encode(testLabels, entriesOf(genAccessLog(rand.New(rand.NewPCG(1, 1)), 2000), 0), Options{BlockSize: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	sec := b[meta.FilterOffset : meta.FilterOffset+meta.FilterLen]
	if _, err := ParseFilter(sec); err != nil {
		t.Fatal(err)
	}
	for i := range sec {
		mod := bytes.Clone(sec)
		mod[i] ^= 0x10
		if _, err := ParseFilter(mod); err == nil {
			t.Fatalf("ParseFilter accepted a flip at byte %d", i)
		}
	}
	for n := range len(sec) {
		if _, err := ParseFilter(sec[:n]); err == nil {
			t.Fatalf("ParseFilter accepted a truncation to %d bytes", n)
		}
	}
}

var _ = labels.New // keep the import for helpers shared with other test files
