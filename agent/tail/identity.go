//go:build unix

package tail

import (
	"io"
	"os"
	"syscall"

	"github.com/cespare/xxhash/v2"
)

// fileID is what names a file on Linux: device and inode. Both outlive a
// rename; an inode number is reused after a delete, which is why the
// tailer also compares a fingerprint of the file's first bytes.
type fileID struct{ dev, ino uint64 }

func idOf(fi os.FileInfo) fileID {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return fileID{dev: uint64(st.Dev), ino: uint64(st.Ino)}
	}
	return fileID{}
}

// fpMax is how many leading bytes the fingerprint covers once the file is
// that long. Shorter files are fingerprinted over all their bytes and the
// fingerprint grows with them, so tiny files are told apart too.
const fpMax = 1024

// tailMax is how many bytes before a position are remembered to check
// that the file still holds what was read there (truncation and rewrite
// detection, copy matching).
const tailMax = 64

func hashBytes(b []byte) uint64 { return xxhash.Sum64(b) }

// rangeHash hashes n bytes at off of f; ok is false when they cannot all
// be read.
func rangeHash(f *os.File, off int64, n int, buf []byte) (uint64, bool) {
	if n == 0 {
		return hashBytes(nil), true
	}
	if cap(buf) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	m, err := f.ReadAt(buf, off)
	if m != n && (err == nil || err == io.EOF) {
		return 0, false
	}
	if m != n {
		return 0, false
	}
	return hashBytes(buf), true
}

// headMatches reports whether the first fpLen bytes of f hash to fp; an
// empty fingerprint (the file was empty) matches anything.
func headMatches(f *os.File, fpLen int, fp uint64, buf []byte) bool {
	if fpLen == 0 {
		return true
	}
	h, ok := rangeHash(f, 0, fpLen, buf)
	return ok && h == fp
}

// linkCount is the number of names a file has; 0 once it is deleted.
func linkCount(fi os.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Nlink)
	}
	return 1
}
