package tail

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
)

// entry is the position of one file generation: a file identified by
// device, inode and fingerprint, and the offset after the last line whose
// chunk the server acknowledged. A truncated file starts a new generation
// (a new entry) because offsets in its old content mean nothing in its new.
type entry struct {
	position
	pending   []pendingChunk // chunks shipped, not yet acknowledged, in file order
	nextChunk uint64
	file      *file // the live reader of this entry, if any
	retired   bool  // the file no longer holds this content
}

// position is what the positions file stores per entry.
type position struct {
	ID      uint64 `json:"id,string"`
	Path    string `json:"path"` // where the file was found first; names its stream
	Dev     uint64 `json:"dev"`
	Ino     uint64 `json:"ino"`
	FPLen   int    `json:"fp_len"`
	FP      uint64 `json:"fp,string"` // xxhash of the first FPLen bytes
	Offset  int64  `json:"offset"`
	TailLen int    `json:"tail_len"`
	Tail    uint64 `json:"tail,string"` // xxhash of the TailLen bytes before Offset
	Seen    int64  `json:"seen"`        // unix seconds the file was last seen
}

// pendingChunk is a shipped chunk of an entry: the offset after its last
// line and the hash of the bytes before that offset.
type pendingChunk struct {
	n       uint64
	end     int64
	tailLen int
	tail    uint64
	acked   bool
}

func (e *entry) id() fileID { return fileID{dev: e.Dev, ino: e.Ino} }

// resume is where reading continues: after the last chunk that is in the
// spool (it will be delivered even across a restart), else after the last
// acknowledged one.
func (e *entry) resume() (off int64, tailLen int, tail uint64) {
	if n := len(e.pending); n > 0 {
		p := e.pending[n-1]
		return p.end, p.tailLen, p.tail
	}
	return e.Offset, e.TailLen, e.Tail
}

type positionsFile struct {
	Version int        `json:"version"`
	Files   []position `json:"files"`
}

func loadPositions(path string) ([]position, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read positions file: %w", err)
	}
	var pf positionsFile
	if err := json.Unmarshal(b, &pf); err != nil {
		return nil, fmt.Errorf("positions file %s is damaged (%v); it is written atomically, so this means disk trouble. Move it away to start over: every matched file is then read again from its start", path, err)
	}
	if pf.Version != 1 {
		return nil, fmt.Errorf("positions file %s has version %d; this agent reads version 1", path, pf.Version)
	}
	return pf.Files, nil
}

// savePositions writes the file atomically: temp file, fsync, rename,
// fsync of the directory. A crash leaves the old or the new file, whole.
func savePositions(path string, ps []position) error {
	sort.Slice(ps, func(i, j int) bool {
		if ps[i].Path != ps[j].Path {
			return ps[i].Path < ps[j].Path
		}
		return ps[i].ID < ps[j].ID
	})
	b, err := json.MarshalIndent(positionsFile{Version: 1, Files: ps}, "", " ")
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create positions directory: %w", err)
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("write positions: %w", err)
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("write positions: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("write positions: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write positions: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write positions: %w", err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("write positions: %w", err)
	}
	defer d.Close()
	return d.Sync()
}

// chunkTag is stored with every spooled chunk, so that after a restart the
// tailer knows which lines of which file generation the spool already
// holds and does not read them again.
type chunkTag struct {
	position         // identity of the entry at cut time; Offset unused
	start, end int64 // the chunk holds the lines in [start, end)
}

const tagVersion = 1

func encodeTag(e *entry, start, end int64, tailLen int, tail uint64) []byte {
	b := make([]byte, 0, 80+len(e.Path))
	b = append(b, tagVersion)
	b = binary.AppendUvarint(b, e.ID)
	b = binary.AppendUvarint(b, e.Dev)
	b = binary.AppendUvarint(b, e.Ino)
	b = binary.AppendUvarint(b, uint64(e.FPLen))
	b = binary.LittleEndian.AppendUint64(b, e.FP)
	b = binary.AppendUvarint(b, uint64(start))
	b = binary.AppendUvarint(b, uint64(end))
	b = binary.AppendUvarint(b, uint64(tailLen))
	b = binary.LittleEndian.AppendUint64(b, tail)
	b = binary.AppendUvarint(b, uint64(len(e.Path)))
	return append(b, e.Path...)
}

var errBadTag = errors.New("malformed chunk tag")

func decodeTag(b []byte) (chunkTag, error) {
	var t chunkTag
	if len(b) == 0 || b[0] != tagVersion {
		return t, errBadTag
	}
	b = b[1:]
	var bad bool
	uv := func() uint64 {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			bad = true
			return 0
		}
		b = b[n:]
		return v
	}
	u64 := func() uint64 {
		if len(b) < 8 {
			bad = true
			return 0
		}
		v := binary.LittleEndian.Uint64(b)
		b = b[8:]
		return v
	}
	t.ID = uv()
	t.Dev = uv()
	t.Ino = uv()
	t.FPLen = int(uv())
	t.FP = u64()
	t.start = int64(uv())
	t.end = int64(uv())
	t.TailLen = int(uv())
	t.Tail = u64()
	n := uv()
	if bad || n != uint64(len(b)) || t.FPLen > fpMax || t.TailLen > tailMax || t.start < 0 || t.end < t.start {
		return chunkTag{}, errBadTag
	}
	t.Path = string(b)
	return t, nil
}
