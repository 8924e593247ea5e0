package chunk

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// Verify decompresses every block and checks what Decode cannot without
// doing so: each block's entries agree with the header (counts, line bytes,
// first and last timestamps), the ID is the SHA-256 of the content, and
// each block's filter is exactly the one its lines produce, so the filter
// cannot hide a line. The server runs it on chunks it did not build.
func (c *Chunk) Verify() error {
	e := encoderPool.Get().(*encoder)
	defer encoderPool.Put(e)
	var buf BlockBuffer
	saved := e.lines
	defer func() { e.lines = saved }()
	e.id.begin(c.meta.Labels, c.meta.Entries)
	f := c.filter
	for i := range c.blocks {
		ents, err := c.ReadBlock(i, &buf)
		if err != nil {
			return fmt.Errorf("verify: %w", err)
		}
		for k := range ents {
			e.id.entry(ents[k].Timestamp, ents[k].Line, ents[k].Metadata)
		}
		d := f.dir[i*filterDirLen:]
		lg, m, off := uint(d[0]), int(binary.LittleEndian.Uint32(d[1:])), int(binary.LittleEndian.Uint32(d[5:]))
		if lg == 0 {
			continue // a pass-all block hides nothing
		}
		if m == 0 {
			// "No grams" must mean every line is shorter than a gram.
			for k := range ents {
				if len(ents[k].Line) >= 3 {
					return fmt.Errorf("verify: %w", filterMismatch(i))
				}
			}
			continue
		}
		e.lines = buf.lines
		e.markGrams(ents, lg)
		e.filterMap = e.fb.project(e.filterMap[:0], m)
		if !bytes.Equal(e.filterMap, f.bits[off:off+m/8]) {
			return fmt.Errorf("verify: %w", filterMismatch(i))
		}
	}
	if got := e.id.sum(); got != c.meta.ID {
		return fmt.Errorf("verify: %w: content hashes to %s, header says %s", ErrCorrupt, got, c.meta.ID)
	}
	return nil
}
