package logql

import (
	"errors"
	"math"
	"strconv"
	"strings"
	"time"
)

// Durations accept Go's units (ns, us, µs, ms, s, m, h) and Prometheus's
// longer ones (d, w, y), with fractions and in any combination: 250ms,
// 1m30s, 1.5h, 2d12h. A year is 365 days, as in Prometheus.
const (
	day  = 24 * time.Hour
	week = 7 * day
	year = 365 * day
)

var durationUnits = map[string]time.Duration{
	"ns": time.Nanosecond,
	"us": time.Microsecond,
	"µs": time.Microsecond, // U+00B5 micro sign
	"μs": time.Microsecond, // U+03BC Greek mu
	"ms": time.Millisecond,
	"s":  time.Second,
	"m":  time.Minute,
	"h":  time.Hour,
	"d":  day,
	"w":  week,
	"y":  year,
}

var errDurationRange = errors.New("duration out of range")

// ParseDuration reads a non-negative LogQL duration such as 5m, 1h30m or
// 250ms. A bare number without a unit is not a duration.
func ParseDuration(s string) (time.Duration, error) {
	if s == "" {
		return 0, errors.New("empty duration")
	}
	orig := s
	var total uint64
	for s != "" {
		intPart, frac, i := splitDecimal(s)
		if intPart == "" && frac == "" {
			return 0, errors.New("invalid duration " + strconv.Quote(orig))
		}
		s = s[i:]
		// Unit: everything up to the next digit or dot.
		j := 0
		for j < len(s) && s[j] != '.' && (s[j] < '0' || s[j] > '9') {
			j++
		}
		unit, ok := durationUnits[s[:j]]
		if !ok {
			if j == 0 {
				return 0, errors.New("missing unit in duration " + strconv.Quote(orig))
			}
			return 0, errors.New("unknown unit " + strconv.Quote(s[:j]) + " in duration " + strconv.Quote(orig))
		}
		s = s[j:]
		v, err := scaleDecimal(intPart, frac, uint64(unit))
		if err != nil {
			return 0, errDurationRange
		}
		total += v
		if total > math.MaxInt64 {
			return 0, errDurationRange
		}
	}
	return time.Duration(total), nil
}

// scaleDecimal computes (int.frac) * unit exactly for the integer part and
// truncating the fraction, failing on overflow of uint64.
func scaleDecimal(intPart, frac string, unit uint64) (uint64, error) {
	var v uint64
	for i := 0; i < len(intPart); i++ {
		d := uint64(intPart[i] - '0')
		if v > (math.MaxUint64-d)/10 {
			return 0, errDurationRange
		}
		v = v*10 + d
	}
	if v > math.MaxUint64/unit {
		return 0, errDurationRange
	}
	v *= unit
	// The fraction: accumulate digits while they still matter.
	var f, scale uint64 = 0, 1
	for i := 0; i < len(frac); i++ {
		if scale > math.MaxUint64/10/unit || f > (math.MaxUint64-9)/10 {
			break // further digits are below the unit's resolution
		}
		f = f*10 + uint64(frac[i]-'0')
		scale *= 10
	}
	add := f * unit / scale
	if v > math.MaxUint64-add {
		return 0, errDurationRange
	}
	return v + add, nil
}

var durationFormatUnits = []struct {
	name string
	d    time.Duration
}{
	{"y", year}, {"w", week}, {"d", day}, {"h", time.Hour}, {"m", time.Minute},
	{"s", time.Second}, {"ms", time.Millisecond}, {"us", time.Microsecond}, {"ns", time.Nanosecond},
}

// FormatDuration prints d the way ParseDuration reads it back exactly, in
// the largest units first: 1m30s, 1d12h, 1s500ms. Zero prints as 0s.
func FormatDuration(d time.Duration) string {
	if d == 0 {
		return "0s"
	}
	var b strings.Builder
	u := uint64(d)
	if d < 0 {
		b.WriteByte('-')
		u = uint64(-(d + 1)) + 1 // safe for MinInt64
	}
	for _, fu := range durationFormatUnits {
		if q := u / uint64(fu.d); q > 0 {
			b.WriteString(strconv.FormatUint(q, 10))
			b.WriteString(fu.name)
			u -= q * uint64(fu.d)
		}
	}
	return b.String()
}

// Byte sizes follow Loki and go-humanize: decimal (kB, MB, ...) and binary
// (KiB, MiB, ...) units, case-insensitive, with an optional fraction.
var byteUnits = map[string]uint64{
	"b":   1,
	"kb":  1e3,
	"kib": 1 << 10,
	"mb":  1e6,
	"mib": 1 << 20,
	"gb":  1e9,
	"gib": 1 << 30,
	"tb":  1e12,
	"tib": 1 << 40,
	"pb":  1e15,
	"pib": 1 << 50,
	"eb":  1e18,
	"eib": 1 << 60,
}

// ParseBytes reads a byte size with a unit such as 20MB, 1.5KiB or 512B.
func ParseBytes(s string) (uint64, error) {
	intPart, frac, i := splitDecimal(s)
	if intPart == "" && frac == "" {
		return 0, errors.New("invalid byte size " + strconv.Quote(s))
	}
	unit, ok := byteUnits[strings.ToLower(s[i:])]
	if !ok {
		return 0, errors.New("unknown unit in byte size " + strconv.Quote(s))
	}
	v, err := scaleDecimal(intPart, frac, unit)
	if err != nil {
		return 0, errors.New("byte size out of range: " + strconv.Quote(s))
	}
	return v, nil
}

var bytesFormatUnits = []struct {
	name string
	n    uint64
}{
	{"EiB", 1 << 60}, {"EB", 1e18}, {"PiB", 1 << 50}, {"PB", 1e15}, {"TiB", 1 << 40}, {"TB", 1e12},
	{"GiB", 1 << 30}, {"GB", 1e9}, {"MiB", 1 << 20}, {"MB", 1e6}, {"KiB", 1 << 10}, {"KB", 1e3},
}

// FormatBytes prints n with the largest unit that divides it exactly, so
// that ParseBytes reads back the same number: 20MB, 1KiB, 1500B.
func FormatBytes(n uint64) string {
	for _, u := range bytesFormatUnits {
		if n >= u.n && n%u.n == 0 {
			return strconv.FormatUint(n/u.n, 10) + u.name
		}
	}
	return strconv.FormatUint(n, 10) + "B"
}

// formatNumber prints a float so that the lexer reads back the same value.
func formatNumber(v float64) string {
	return strconv.FormatFloat(v, 'g', -1, 64)
}

// splitDecimal reads the number that s starts with, digits and an optional
// fraction after a dot, and returns both parts (either may be empty) and
// the length read.
func splitDecimal(s string) (intPart, frac string, n int) {
	for n < len(s) && s[n] >= '0' && s[n] <= '9' {
		n++
	}
	intPart = s[:n]
	if n < len(s) && s[n] == '.' {
		j := n + 1
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
		}
		frac = s[n+1 : j]
		n = j
	}
	return intPart, frac, n
}
