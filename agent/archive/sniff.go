package archive

import (
	"bytes"
)

// Kind is what a stream holds, told by its first bytes, not its name.
type Kind int

const (
	KindText Kind = iota
	KindBinary
	KindUTF16
	KindGzip
	KindBzip2
	KindXz
	KindZstd
	KindZip
	KindTar
	KindUnsupported // an archive or compression format this package does not read
)

func (k Kind) String() string {
	switch k {
	case KindText:
		return "text"
	case KindBinary:
		return "binary"
	case KindUTF16:
		return "UTF-16 text"
	case KindGzip:
		return "gzip"
	case KindBzip2:
		return "bzip2"
	case KindXz:
		return "xz"
	case KindZstd:
		return "zstd"
	case KindZip:
		return "zip"
	case KindTar:
		return "tar"
	case KindUnsupported:
		return "unsupported archive"
	}
	return "unknown"
}

// compressed reports whether k is a single-stream compression format.
func (k Kind) compressed() bool {
	return k == KindGzip || k == KindBzip2 || k == KindXz || k == KindZstd
}

// SniffLen is how many leading bytes Sniff wants: a tar header's magic sits
// at offset 257, and text is judged on the first 8 KiB.
const SniffLen = 8 << 10

// Sniff classifies a stream by its first bytes (up to SniffLen). It also
// names the unsupported format, if any.
func Sniff(head []byte) (Kind, string) {
	switch {
	case len(head) >= 3 && head[0] == 0x1f && head[1] == 0x8b && head[2] == 8:
		return KindGzip, ""
	case len(head) >= 10 && bytes.HasPrefix(head, []byte("BZh")) && head[3] >= '1' && head[3] <= '9' &&
		(bytes.HasPrefix(head[4:], []byte{0x31, 0x41, 0x59, 0x26, 0x53, 0x59}) || bytes.HasPrefix(head[4:], []byte{0x17, 0x72, 0x45, 0x38, 0x50, 0x90})):
		return KindBzip2, ""
	case bytes.HasPrefix(head, []byte{0xfd, '7', 'z', 'X', 'Z', 0}):
		return KindXz, ""
	case bytes.HasPrefix(head, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return KindZstd, ""
	case bytes.HasPrefix(head, []byte("PK\x03\x04")), bytes.HasPrefix(head, []byte("PK\x05\x06")), bytes.HasPrefix(head, []byte("PK\x07\x08")):
		return KindZip, ""
	case bytes.HasPrefix(head, []byte{'7', 'z', 0xbc, 0xaf, 0x27, 0x1c}):
		return KindUnsupported, "7-Zip"
	case bytes.HasPrefix(head, []byte("Rar!\x1a\x07")):
		return KindUnsupported, "RAR"
	case bytes.HasPrefix(head, []byte{0x04, 0x22, 0x4d, 0x18}):
		return KindUnsupported, "LZ4"
	case isTar(head):
		return KindTar, ""
	case len(head) >= 2 && (head[0] == 0xff && head[1] == 0xfe || head[0] == 0xfe && head[1] == 0xff):
		return KindUTF16, ""
	}
	if isBinary(head) {
		return KindBinary, ""
	}
	return KindText, ""
}

// isTar checks a 512-byte tar header: the "ustar" magic, or failing that
// (V7 archives have none) a valid header checksum.
func isTar(h []byte) bool {
	if len(h) < 512 {
		return false
	}
	if bytes.Equal(h[257:262], []byte("ustar")) {
		return true
	}
	if h[0] == 0 {
		return false
	}
	// The checksum is the sum of the header bytes with the checksum field
	// itself read as spaces, stored as octal at 148..155.
	field := bytes.TrimRight(bytes.TrimLeft(h[148:156], " \x00"), " \x00")
	if len(field) == 0 {
		return false
	}
	var want int64
	for _, c := range field {
		if c < '0' || c > '7' {
			return false
		}
		want = want*8 + int64(c-'0')
	}
	var sum int64
	for i := 0; i < 512; i++ {
		if i >= 148 && i < 156 {
			sum += ' '
		} else {
			sum += int64(h[i])
		}
	}
	return sum == want
}

// isBinary judges the first bytes of a stream: a NUL byte, or more than 5%
// control characters other than the ones text uses (tab, newlines, form
// feed, backspace, escape), means binary. Legacy 8-bit encodings (Big5,
// Windows-125x, ...) pass: their high bytes are not control characters.
func isBinary(head []byte) bool {
	if len(head) > SniffLen {
		head = head[:SniffLen]
	}
	ctl := 0
	for _, c := range head {
		switch {
		case c == 0:
			return true
		case c < 0x20 && c != '\t' && c != '\n' && c != '\r' && c != '\f' && c != '\v' && c != 0x1b && c != '\b':
			ctl++
		}
	}
	return ctl*20 > len(head)
}
