package pipeline

import (
	"bytes"
	"net/netip"

	"github.com/logsift/logsift/pkg/logql"
)

// ipFilter is |= ip("..."): the line contains an IPv4 or IPv6 address in
// the range. An address is a maximal run of address characters (hex
// digits, '.' and ':'), trimmed of the dots and colons that end sentences
// or precede ports, so that "93.180.71.3" never matches ip("3.180.71.3")
// and "host=10.0.0.1:8080" does match ip("10.0.0.0/8"). A run that is not
// an address as a whole is also tried as dotted IPv4 pieces, which finds
// "ab10.0.0.1" (hex letters glued to the address).
type ipFilter struct {
	r logql.IPRange
}

func newIPFilter(s string) (*ipFilter, error) {
	r, err := logql.ParseIPRange(s)
	if err != nil {
		return nil, err
	}
	return &ipFilter{r: r}, nil
}

// ipByte classifies bytes: 1 hex digit, 2 '.', 3 ':'.
var ipByte [256]uint8

func init() {
	for c := '0'; c <= '9'; c++ {
		ipByte[c] = 1
	}
	for c := 'a'; c <= 'f'; c++ {
		ipByte[c] = 1
		ipByte[c-32] = 1
	}
	ipByte['.'] = 2
	ipByte[':'] = 3
}

func (f *ipFilter) Match(line []byte) bool {
	want4 := f.r.From.Is4()
	// Every candidate holds a '.' (IPv4) or a ':' (IPv6): jump between
	// those with IndexByte and grow each into its run.
	sep := byte(':')
	if want4 {
		sep = '.'
	}
	for i := 0; i < len(line); {
		d := bytes.IndexByte(line[i:], sep)
		if d < 0 {
			return false
		}
		start, end := i+d, i+d
		for start > i && ipByte[line[start-1]] != 0 {
			start--
		}
		dots, colons := 0, 0
		for end < len(line) && ipByte[line[end]] != 0 {
			switch ipByte[line[end]] {
			case 2:
				dots++
			case 3:
				colons++
			}
			end++
		}
		i = end
		// An IPv4 address has three dots, an IPv6 one at least two colons.
		if want4 && dots < 3 || !want4 && colons < 2 {
			continue
		}
		if f.matchRun(line[start:end], want4) {
			return true
		}
	}
	return false
}

func (f *ipFilter) matchRun(run []byte, want4 bool) bool {
	if f.matchCandidate(trimIPRun(run)) {
		return true
	}
	if !want4 {
		return false
	}
	// Dotted pieces inside a longer run: "ab10.0.0.1", "::10.0.0.1:80".
	for i := 0; i < len(run); {
		if run[i] < '0' || run[i] > '9' {
			i++
			continue
		}
		j := i
		for j < len(run) && (run[j] >= '0' && run[j] <= '9' || run[j] == '.') {
			j++
		}
		if j-i < len(run) && f.matchCandidate(trimIPRun(run[i:j])) {
			return true
		}
		i = j
	}
	return false
}

func (f *ipFilter) matchCandidate(b []byte) bool {
	if len(b) < 2 || len(b) > 45 {
		return false
	}
	if a, ok := parseIPv4(b); ok {
		return f.r.Contains(a)
	}
	if bytes.IndexByte(b, ':') < 0 {
		return false
	}
	a, err := netip.ParseAddr(string(b))
	return err == nil && f.r.Contains(a)
}

// parseIPv4 reads a dotted quad without allocating, with the rules of
// netip.ParseAddr: four decimal octets up to 255, no leading zeros.
func parseIPv4(b []byte) (netip.Addr, bool) {
	var ip [4]byte
	octet := 0
	for i := 0; i < 4; i++ {
		if i > 0 {
			if octet >= len(b) || b[octet] != '.' {
				return netip.Addr{}, false
			}
			octet++
		}
		v, n := 0, 0
		for octet < len(b) && b[octet] >= '0' && b[octet] <= '9' && n < 4 {
			v = v*10 + int(b[octet]-'0')
			octet++
			n++
		}
		if n == 0 || n > 3 || v > 255 || n > 1 && b[octet-n] == '0' {
			return netip.Addr{}, false
		}
		ip[i] = byte(v)
	}
	if octet != len(b) {
		return netip.Addr{}, false
	}
	return netip.AddrFrom4(ip), true
}

// trimIPRun drops the separators a run can carry from its context:
// trailing sentence dots and a ":port" suffix after an IPv4 address.
func trimIPRun(b []byte) []byte {
	for len(b) > 0 && b[len(b)-1] == '.' {
		b = b[:len(b)-1]
	}
	for len(b) > 0 && b[0] == '.' {
		b = b[1:]
	}
	// "fe80::1:" ends a sentence; "fe80::" is an address.
	if n := len(b); n >= 2 && b[n-1] == ':' && b[n-2] != ':' {
		b = b[:n-1]
	}
	// 10.0.0.1:8080 -> 10.0.0.1 (an IPv6 address never has a dot before
	// its last colon unless it ends in a dotted IPv4 part).
	if c := lastIndexByte(b, ':'); c > 0 {
		if d := lastIndexByte(b[:c], '.'); d >= 0 && indexByte(b[:c], ':') < 0 {
			return b[:c]
		}
	}
	return b
}

func lastIndexByte(b []byte, c byte) int {
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] == c {
			return i
		}
	}
	return -1
}

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}
