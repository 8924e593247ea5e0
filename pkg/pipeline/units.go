package pipeline

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unsafe"
)

// Label values are converted the way Loki converts them, which is not the
// LogQL literal syntax: durations with Go's time.ParseDuration (no d, w or
// y), byte sizes with go-humanize's rules (an optional space, units such as
// k, KB, KiB, M, MiB, case-insensitive, and a bare number meaning bytes).

var humanByteUnits = map[string]float64{
	"":    1,
	"b":   1,
	"k":   1e3,
	"kb":  1e3,
	"ki":  1 << 10,
	"kib": 1 << 10,
	"m":   1e6,
	"mb":  1e6,
	"mi":  1 << 20,
	"mib": 1 << 20,
	"g":   1e9,
	"gb":  1e9,
	"gi":  1 << 30,
	"gib": 1 << 30,
	"t":   1e12,
	"tb":  1e12,
	"ti":  1 << 40,
	"tib": 1 << 40,
	"p":   1e15,
	"pb":  1e15,
	"pi":  1 << 50,
	"pib": 1 << 50,
	"e":   1e18,
	"eb":  1e18,
	"ei":  1 << 60,
	"eib": 1 << 60,
}

// parseHumanBytes reads a byte size from a label value: 5 MiB, 3k, 1G,
// 1,024, 42MB.
func parseHumanBytes(s string) (uint64, error) {
	i := 0
	hasComma := false
	for i < len(s) && ((s[i] >= '0' && s[i] <= '9') || s[i] == '.' || s[i] == ',') {
		if s[i] == ',' {
			hasComma = true
		}
		i++
	}
	num := s[:i]
	if hasComma {
		num = strings.ReplaceAll(num, ",", "")
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, fmt.Errorf("invalid byte size %q: %w", s, err)
	}
	unit := strings.ToLower(strings.TrimSpace(s[i:]))
	m, ok := humanByteUnits[unit]
	if !ok {
		return 0, fmt.Errorf("unhandled size name: %v", unit)
	}
	f *= m
	if f >= math.MaxUint64 {
		return 0, fmt.Errorf("too large: %v", s)
	}
	return uint64(f), nil
}

var errEmptyValue = errors.New("empty value")

// convertFloat is the plain unwrap conversion.
func convertFloat(s string) (float64, error) {
	return strconv.ParseFloat(s, 64)
}

// convertDuration is unwrap duration()/duration_seconds(): seconds.
func convertDuration(s string) (float64, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, err
	}
	return d.Seconds(), nil
}

// convertBytes is unwrap bytes().
func convertBytes(s string) (float64, error) {
	if s == "" {
		return 0, errEmptyValue
	}
	n, err := parseHumanBytes(s)
	if err != nil {
		return 0, err
	}
	return float64(n), nil
}

// stringBytes views a string as bytes for read-only use.
func stringBytes(s string) []byte {
	if s == "" {
		return nil
	}
	return unsafe.Slice(unsafe.StringData(s), len(s))
}
