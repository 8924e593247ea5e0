package logql

import (
	"fmt"
	"net/netip"
	"strings"
)

// IPRange is the inclusive address range of an ip("...") argument. Both
// ends are of the same family; IPv4-mapped IPv6 addresses are unmapped.
type IPRange struct {
	From, To netip.Addr
}

// Contains reports whether a (unmapped first) lies in the range.
func (r IPRange) Contains(a netip.Addr) bool {
	a = a.Unmap()
	return a.BitLen() == r.From.BitLen() && r.From.Compare(a) <= 0 && a.Compare(r.To) <= 0
}

// ParseIPRange parses the argument of ip(): a single address (192.0.2.1,
// ::1), a range (192.168.0.1-192.168.0.20) or a CIDR (10.0.0.0/8; host bits
// are ignored, so 192.168.4.5/16 is 192.168.0.0/16).
func ParseIPRange(s string) (IPRange, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return IPRange{}, fmt.Errorf("invalid CIDR %q in ip(): %w", s, err)
		}
		p = p.Masked()
		from := p.Addr()
		to := lastAddr(p)
		if from.Is4In6() && p.Bits() >= 96 {
			from, to = from.Unmap(), to.Unmap()
		}
		return IPRange{From: from, To: to}, nil
	}
	if a, b, ok := strings.Cut(s, "-"); ok {
		from, err := netip.ParseAddr(strings.TrimSpace(a))
		if err != nil {
			return IPRange{}, fmt.Errorf("invalid range start %q in ip(): %w", a, err)
		}
		to, err := netip.ParseAddr(strings.TrimSpace(b))
		if err != nil {
			return IPRange{}, fmt.Errorf("invalid range end %q in ip(): %w", b, err)
		}
		from, to = from.Unmap(), to.Unmap()
		if from.Zone() != "" || to.Zone() != "" {
			return IPRange{}, fmt.Errorf("invalid range %q in ip(): zones are not supported", s)
		}
		if from.BitLen() != to.BitLen() {
			return IPRange{}, fmt.Errorf("invalid range %q in ip(): mixes IPv4 and IPv6", s)
		}
		if to.Less(from) {
			return IPRange{}, fmt.Errorf("invalid range %q in ip(): start is after end", s)
		}
		return IPRange{From: from, To: to}, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return IPRange{}, fmt.Errorf("invalid address %q in ip(): %w", s, err)
	}
	if a.Zone() != "" {
		return IPRange{}, fmt.Errorf("invalid address %q in ip(): zones are not supported", s)
	}
	a = a.Unmap()
	return IPRange{From: a, To: a}, nil
}

// lastAddr is the highest address of a masked prefix.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	bits := p.Bits()
	for i := range b {
		for bit := 0; bit < 8; bit++ {
			if i*8+bit >= bits {
				b[i] |= 0x80 >> bit
			}
		}
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}
