package logql

import (
	"math"
	"net/netip"
	"testing"
	"time"
)

func TestDurations(t *testing.T) {
	good := map[string]time.Duration{
		"5s":                       5 * time.Second,
		"1m30s":                    90 * time.Second,
		"250ms":                    250 * time.Millisecond,
		"1.5h":                     90 * time.Minute,
		"2h45m":                    165 * time.Minute,
		"1d":                       24 * time.Hour,
		"1w":                       7 * 24 * time.Hour,
		"1y":                       365 * 24 * time.Hour,
		"10us":                     10 * time.Microsecond,
		"10µs":                     10 * time.Microsecond,
		"10μs":                     10 * time.Microsecond,
		"7ns":                      7,
		".5s":                      500 * time.Millisecond,
		"0.10ms":                   100 * time.Microsecond,
		"1h1h":                     2 * time.Hour,
		"0s":                       0,
		"292y":                     292 * 365 * 24 * time.Hour,
		"1.000000000000000000001s": time.Second,
	}
	for in, want := range good {
		got, err := ParseDuration(in)
		if err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
		back, err := ParseDuration(FormatDuration(got))
		if err != nil || back != got {
			t.Errorf("FormatDuration(%v) = %q does not read back: %v %v", got, FormatDuration(got), back, err)
		}
	}
	for _, in := range []string{"", "5", "s", "5x", "5m5", "1.s.", "300y", "99999999999999999999s", "5 s", "-5s"} {
		if d, err := ParseDuration(in); err == nil {
			t.Errorf("ParseDuration(%q) = %v, want error", in, d)
		}
	}
	for d, want := range map[time.Duration]string{
		0: "0s", time.Second: "1s", 90 * time.Second: "1m30s", 1500 * time.Millisecond: "1s500ms",
		8 * 24 * time.Hour: "1w1d", -5 * time.Second: "-5s", 1: "1ns", math.MaxInt64: "292y24w3d23h47m16s854ms775us807ns",
	} {
		if got := FormatDuration(d); got != want {
			t.Errorf("FormatDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestBytes(t *testing.T) {
	good := map[string]uint64{
		"20MB": 20e6, "1KiB": 1024, "1.5KiB": 1536, "512B": 512, "1kB": 1000, "1KB": 1000, "1kb": 1000,
		"3GiB": 3 << 30, "2TB": 2e12, "1PiB": 1 << 50, "15EiB": 15 << 60, "0B": 0, "1.5B": 1,
	}
	for in, want := range good {
		got, err := ParseBytes(in)
		if err != nil || got != want {
			t.Errorf("ParseBytes(%q) = %v, %v; want %v", in, got, err, want)
		}
		back, err := ParseBytes(FormatBytes(got))
		if err != nil || back != got {
			t.Errorf("FormatBytes(%d) = %q does not read back", got, FormatBytes(got))
		}
	}
	for _, in := range []string{"", "MB", "20", "20XB", "16EiB", "99999999999999999999B", "1.2.3MB"} {
		if n, err := ParseBytes(in); err == nil {
			t.Errorf("ParseBytes(%q) = %d, want error", in, n)
		}
	}
	for n, want := range map[uint64]string{0: "0B", 1000: "1KB", 1024: "1KiB", 1500: "1500B", 20e6: "20MB", 1 << 40: "1TiB"} {
		if got := FormatBytes(n); got != want {
			t.Errorf("FormatBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestParsePattern(t *testing.T) {
	p, err := ParsePattern(`<ip> - - <_> "<method> <uri> <_>" <status>`)
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Names(); len(got) != 4 || got[0] != "ip" || got[3] != "status" {
		t.Fatalf("names %v", got)
	}
	if got := p.Literals(); len(got) != 5 || got[0] != " - - " || got[1] != ` "` {
		t.Fatalf("literals %q", got)
	}
	p, err = ParsePattern(`<<from>> -> <<to>>`)
	if err != nil {
		t.Fatal(err)
	}
	want := []PatternPart{{Text: "<"}, {Text: "from", Capture: true}, {Text: "> -> <"}, {Text: "to", Capture: true}, {Text: ">"}}
	if len(p.Parts) != len(want) {
		t.Fatalf("parts %+v", p.Parts)
	}
	for i := range want {
		if p.Parts[i] != want[i] {
			t.Fatalf("part %d = %+v, want %+v", i, p.Parts[i], want[i])
		}
	}
	p, _ = ParsePattern(`a <1x> <> < b> c`)
	if len(p.Parts) != 1 || p.Parts[0].Capture {
		t.Fatalf("invalid captures must be literal: %+v", p.Parts)
	}
	for _, bad := range []string{`<a><b>`, `<_><_>`, `<a> <a>`} {
		if _, err := ParsePattern(bad); err == nil {
			t.Errorf("ParsePattern(%q) accepted", bad)
		}
	}
	if _, err := ParsePattern(`<_> <_>`); err != nil {
		t.Errorf("repeated <_> must be allowed: %v", err)
	}
}

func TestParseJSONPath(t *testing.T) {
	got, err := ParseJSONPath(`my.list[0]["field x"].y`)
	if err != nil {
		t.Fatal(err)
	}
	want := []JSONPathPart{{Key: "my"}, {Key: "list"}, {Index: 0, IsIndex: true}, {Key: "field x"}, {Key: "y"}}
	if len(got) != len(want) {
		t.Fatalf("got %+v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("part %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	for _, ok := range []string{"a", "a-b", "servers[0]", `request.headers["User-Agent"]`, `["a.b"]`, "[3]"} {
		if _, err := ParseJSONPath(ok); err != nil {
			t.Errorf("ParseJSONPath(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"", ".a", "a.", "a..b", "a[", "a[x]", "a[-1]", `a["x`, `a["x"`, "a b", "a]"} {
		if _, err := ParseJSONPath(bad); err == nil {
			t.Errorf("ParseJSONPath(%q) accepted", bad)
		}
	}
}

func TestParseIPRange(t *testing.T) {
	cases := []struct {
		in       string
		in1, out []string
	}{
		{"192.168.4.5/16", []string{"192.168.0.0", "192.168.255.255", "::ffff:192.168.1.1"}, []string{"192.169.0.0", "192.167.255.255"}},
		{"10.0.0.1-10.0.0.9", []string{"10.0.0.1", "10.0.0.9", "10.0.0.5"}, []string{"10.0.0.10", "10.0.0.0", "::1"}},
		{"2001:db8::/32", []string{"2001:db8::1", "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff"}, []string{"2001:db9::", "10.0.0.1"}},
		{"::1", []string{"::1"}, []string{"::2", "127.0.0.1"}},
		{"192.0.2.0", []string{"192.0.2.0"}, []string{"192.0.2.1"}},
		{"2001:db8::1-2001:db8::8", []string{"2001:db8::8"}, []string{"2001:db8::9"}},
	}
	for _, c := range cases {
		r, err := ParseIPRange(c.in)
		if err != nil {
			t.Fatalf("ParseIPRange(%q): %v", c.in, err)
		}
		for _, a := range c.in1 {
			if !r.Contains(netip.MustParseAddr(a)) {
				t.Errorf("%s should contain %s", c.in, a)
			}
		}
		for _, a := range c.out {
			if r.Contains(netip.MustParseAddr(a)) {
				t.Errorf("%s should not contain %s", c.in, a)
			}
		}
	}
	for _, bad := range []string{"", "1.2.3", "1.2.3.4/40", "10.0.0.2-10.0.0.1", "10.0.0.1-::1", "fe80::1%eth0", "a-b"} {
		if _, err := ParseIPRange(bad); err == nil {
			t.Errorf("ParseIPRange(%q) accepted", bad)
		}
	}
}
