package pipeline

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"net/url"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"text/template"
	"time"
	"unicode"
	"unicode/utf8"
)

// templateFuncs are the functions of line_format and label_format, as
// Loki documents them (template_functions.md), written for this package.
// Functions whose value comes last (replace, trunc, default...) take it
// last so that they chain: {{ .path | replace " " "_" | trunc 5 }}.
func templateFuncs(ctx *tmplContext) template.FuncMap {
	return template.FuncMap{
		// The entry.
		"__line__":      func() string { return string(ctx.line) },
		"__timestamp__": func() time.Time { return templateTime(ctx.ts) },

		// Go's strings functions under their Go names (Loki's first set).
		"ToLower":    strings.ToLower,
		"ToUpper":    strings.ToUpper,
		"Replace":    strings.Replace,
		"Trim":       strings.Trim,
		"TrimLeft":   strings.TrimLeft,
		"TrimRight":  strings.TrimRight,
		"TrimPrefix": strings.TrimPrefix,
		"TrimSuffix": strings.TrimSuffix,
		"TrimSpace":  strings.TrimSpace,

		// Strings.
		"lower":      strings.ToLower,
		"upper":      strings.ToUpper,
		"title":      title,
		"trunc":      trunc,
		"substr":     substr,
		"contains":   func(sub, s string) bool { return strings.Contains(s, sub) },
		"hasPrefix":  func(prefix, s string) bool { return strings.HasPrefix(s, prefix) },
		"hasSuffix":  func(suffix, s string) bool { return strings.HasSuffix(s, suffix) },
		"indent":     indent,
		"nindent":    func(n int, s string) (string, error) { r, err := indent(n, s); return "\n" + r, err },
		"replace":    func(old, new, s string) string { return strings.ReplaceAll(s, old, new) },
		"repeat":     repeat,
		"trim":       strings.TrimSpace,
		"trimAll":    func(cutset, s string) string { return strings.Trim(s, cutset) },
		"trimPrefix": func(prefix, s string) string { return strings.TrimPrefix(s, prefix) },
		"trimSuffix": func(suffix, s string) string { return strings.TrimSuffix(s, suffix) },
		"alignLeft":  alignLeft,
		"alignRight": alignRight,
		"printf":     printf,
		"default":    dflt,
		"b64enc":     func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) },
		"b64dec":     b64dec,
		"urlencode":  url.QueryEscape,
		"urldecode":  url.QueryUnescape,
		"sha256":     func(s string) string { sum := sha256.Sum256([]byte(s)); return hex.EncodeToString(sum[:]) },
		"fromJson":   fromJSON,
		"toJson":     toJSON,

		// Regular expressions.
		"regexReplaceAll": func(re, s, repl string) (string, error) {
			r, err := cachedRegexp(re)
			if err != nil {
				return "", err
			}
			return r.ReplaceAllString(s, repl), nil
		},
		"regexReplaceAllLiteral": func(re, s, repl string) (string, error) {
			r, err := cachedRegexp(re)
			if err != nil {
				return "", err
			}
			return r.ReplaceAllLiteralString(s, repl), nil
		},
		"count": func(re, s string) (int, error) {
			r, err := cachedRegexp(re)
			if err != nil {
				return 0, err
			}
			return len(r.FindAllStringIndex(s, -1)), nil
		},

		// Conversions.
		"int":              func(v any) int { return int(toInt64(v)) },
		"float64":          toFloat64,
		"bytes":            convertBytes,
		"duration":         convertDuration,
		"duration_seconds": convertDuration,

		// Arithmetic, with Sprig's semantics: integer functions convert
		// their arguments to int64, the f-suffixed ones to float64.
		"add": func(vs ...any) int64 {
			var s int64
			for _, v := range vs {
				s += toInt64(v)
			}
			return s
		},
		"sub": func(a, b any) int64 { return toInt64(a) - toInt64(b) },
		"mul": func(a any, vs ...any) int64 {
			p := toInt64(a)
			for _, v := range vs {
				p *= toInt64(v)
			}
			return p
		},
		"div": func(a, b any) (int64, error) {
			d := toInt64(b)
			if d == 0 {
				return 0, errors.New("integer divide by zero")
			}
			return toInt64(a) / d, nil
		},
		"mod": func(a, b any) (int64, error) {
			d := toInt64(b)
			if d == 0 {
				return 0, errors.New("integer divide by zero")
			}
			return toInt64(a) % d, nil
		},
		"addf": func(vs ...any) float64 {
			s := new(big.Rat)
			for _, v := range vs {
				s.Add(s, exactRat(v))
			}
			f, _ := s.Float64()
			return f
		},
		"subf": func(a any, vs ...any) float64 {
			s := exactRat(a)
			for _, v := range vs {
				s.Sub(s, exactRat(v))
			}
			f, _ := s.Float64()
			return f
		},
		"mulf": func(a any, vs ...any) float64 {
			s := exactRat(a)
			for _, v := range vs {
				s.Mul(s, exactRat(v))
			}
			f, _ := s.Float64()
			return f
		},
		"divf": func(a any, vs ...any) (float64, error) {
			s := exactRat(a)
			for _, v := range vs {
				d := exactRat(v)
				if d.Sign() == 0 {
					return 0, errors.New("division by zero")
				}
				s.Quo(s, d)
			}
			f, _ := s.Float64()
			return f, nil
		},
		"max": func(a any, vs ...any) int64 {
			m := toInt64(a)
			for _, v := range vs {
				m = max(m, toInt64(v))
			}
			return m
		},
		"min": func(a any, vs ...any) int64 {
			m := toInt64(a)
			for _, v := range vs {
				m = min(m, toInt64(v))
			}
			return m
		},
		"maxf": func(a any, vs ...any) float64 {
			m := toFloat64(a)
			for _, v := range vs {
				m = math.Max(m, toFloat64(v))
			}
			return m
		},
		"minf": func(a any, vs ...any) float64 {
			m := toFloat64(a)
			for _, v := range vs {
				m = math.Min(m, toFloat64(v))
			}
			return m
		},
		"ceil":  func(a any) float64 { return math.Ceil(toFloat64(a)) },
		"floor": func(a any) float64 { return math.Floor(toFloat64(a)) },
		"round": round,

		// Time.
		"now":             time.Now,
		"date":            date,
		"toDate":          func(layout, s string) time.Time { t, _ := time.ParseInLocation(layout, s, time.Local); return t },
		"toDateInZone":    toDateInZone,
		"unixEpoch":       func(t time.Time) string { return strconv.FormatInt(t.Unix(), 10) },
		"unixEpochMillis": func(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) },
		"unixEpochNanos":  func(t time.Time) string { return strconv.FormatInt(t.UnixNano(), 10) },
		"unixToTime":      unixToTime,
	}
}

func checkSize(n int) error {
	if n > maxTemplateOutput || n < 0 {
		return errTemplateTooLarge
	}
	return nil
}

// title upper-cases the first letter of every word (strings.Title's rule:
// a word starts after anything but a letter, digit, '_' or '\”).
func title(s string) string {
	prev := ' '
	return strings.Map(func(r rune) rune {
		sep := !(unicode.IsLetter(prev) || unicode.IsDigit(prev) || prev == '_' || prev == '\'')
		prev = r
		if sep {
			return unicode.ToTitle(r)
		}
		return r
	}, s)
}

// trunc keeps the first n runes, or the last -n when n is negative.
func trunc(n int, s string) string {
	runes := []rune(s)
	l := len(runes)
	if n < 0 && l+n > 0 {
		return string(runes[l+n:])
	}
	if n >= 0 && l > n {
		return string(runes[:n])
	}
	return s
}

// substr is runes [start, end): a negative start means from the
// beginning, a negative or too large end means to the end.
func substr(start, end int, s string) string {
	runes := []rune(s)
	l := len(runes)
	if end > l {
		end = l
	}
	if start > l {
		start = l
	}
	if start < 0 {
		if end < 0 {
			return ""
		}
		return string(runes[:end])
	}
	if end < 0 {
		return string(runes[start:])
	}
	if start > end {
		return ""
	}
	return string(runes[start:end])
}

func indent(n int, s string) (string, error) {
	if n < 0 {
		n = 0
	}
	if err := checkSize(n * (strings.Count(s, "\n") + 1)); err != nil {
		return "", err
	}
	pad := strings.Repeat(" ", n)
	return pad + strings.ReplaceAll(s, "\n", "\n"+pad), nil
}

func repeat(n int, s string) (string, error) {
	if n <= 0 || s == "" {
		return "", nil
	}
	if n > maxTemplateOutput/len(s) {
		return "", errTemplateTooLarge
	}
	return strings.Repeat(s, n), nil
}

func alignLeft(n int, s string) (string, error) {
	if err := checkSize(n); err != nil {
		return "", err
	}
	runes := []rune(s)
	if n < 0 || n == len(runes) {
		return s, nil
	}
	if pad := n - len(runes); pad > 0 {
		return s + strings.Repeat(" ", pad), nil
	}
	return string(runes[:n]), nil
}

func alignRight(n int, s string) (string, error) {
	if err := checkSize(n); err != nil {
		return "", err
	}
	runes := []rune(s)
	if n < 0 || n == len(runes) {
		return s, nil
	}
	if pad := n - len(runes); pad > 0 {
		return strings.Repeat(" ", pad) + s, nil
	}
	return string(runes[len(runes)-n:]), nil
}

// printf is fmt.Sprintf with a bound on the widths a format may ask for.
func printf(format string, args ...any) (string, error) {
	total := 0
	for i := 0; i < len(format); i++ {
		if format[i] < '0' || format[i] > '9' {
			continue
		}
		j := i
		for j < len(format) && format[j] >= '0' && format[j] <= '9' {
			j++
		}
		if j-i > 7 {
			return "", errTemplateTooLarge
		}
		n, _ := strconv.Atoi(format[i:j])
		total += n
		i = j
	}
	for _, a := range args {
		if n, ok := a.(int); ok && n > 0 {
			total += n // a '*' width
		}
	}
	if err := checkSize(total); err != nil {
		return "", err
	}
	return fmt.Sprintf(format, args...), nil
}

// dflt returns d when the value is missing or empty.
func dflt(d any, given ...any) any {
	if len(given) == 0 || isEmpty(given[0]) {
		return d
	}
	return given[0]
}

func isEmpty(v any) bool {
	if v == nil {
		return true
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.String, reflect.Array, reflect.Slice, reflect.Map:
		return rv.Len() == 0
	case reflect.Bool:
		return !rv.Bool()
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return rv.Int() == 0
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return rv.Uint() == 0
	case reflect.Float32, reflect.Float64:
		return rv.Float() == 0
	case reflect.Pointer, reflect.Interface:
		return rv.IsNil()
	}
	return false
}

// b64dec returns the decoded string, or the error text (Sprig's choice).
func b64dec(s string) string {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return err.Error()
	}
	return string(b)
}

// fromJSON decodes a JSON document for use in the template, "" when it is
// not JSON.
func fromJSON(s string) any {
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		return ""
	}
	return v
}

func toJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return ""
	}
	return string(b)
}

var (
	regexpCacheMu sync.Mutex
	regexpCache   = map[string]*regexp.Regexp{}
)

// cachedRegexp compiles the regexps of template functions once: they are
// literals of the query in practice, and compiling per entry is slow.
func cachedRegexp(expr string) (*regexp.Regexp, error) {
	regexpCacheMu.Lock()
	re, ok := regexpCache[expr]
	regexpCacheMu.Unlock()
	if ok {
		return re, nil
	}
	re, err := regexp.Compile(expr)
	if err != nil {
		return nil, err
	}
	regexpCacheMu.Lock()
	if len(regexpCache) >= 1024 {
		clear(regexpCache)
	}
	regexpCache[expr] = re
	regexpCacheMu.Unlock()
	return re, nil
}

// toInt64 converts like Sprig (spf13/cast): numbers are truncated, strings
// parsed as integers (any base prefix, "3.0" accepted), anything else 0.
func toInt64(v any) int64 {
	switch x := v.(type) {
	case int:
		return int64(x)
	case int64:
		return x
	case int32:
		return int64(x)
	case int16:
		return int64(x)
	case int8:
		return int64(x)
	case uint:
		return int64(x)
	case uint64:
		return int64(x)
	case uint32:
		return int64(x)
	case uint16:
		return int64(x)
	case uint8:
		return int64(x)
	case float64:
		return int64(x)
	case float32:
		return int64(x)
	case bool:
		if x {
			return 1
		}
		return 0
	case string:
		n, err := strconv.ParseInt(trimZeroDecimal(x), 0, 64)
		if err != nil {
			return 0
		}
		return n
	}
	return 0
}

func trimZeroDecimal(s string) string {
	dot := strings.IndexByte(s, '.')
	if dot < 0 || dot == len(s)-1 {
		return s
	}
	for _, c := range s[dot+1:] {
		if c != '0' {
			return s
		}
	}
	return s[:dot]
}

// toFloat64 converts like Sprig: strings are parsed as floats, anything
// that does not convert is 0.
func toFloat64(v any) float64 {
	switch x := v.(type) {
	case float64:
		return x
	case float32:
		return float64(x)
	case string:
		f, err := strconv.ParseFloat(x, 64)
		if err != nil {
			return 0
		}
		return f
	case bool:
		if x {
			return 1
		}
		return 0
	}
	return float64(toInt64(v))
}

// exactRat is the decimal value of a number as written, so that addf 0.1
// 0.2 is 0.3 as with Sprig's decimal arithmetic.
func exactRat(v any) *big.Rat {
	f := toFloat64(v)
	r, ok := new(big.Rat).SetString(strconv.FormatFloat(f, 'g', -1, 64))
	if !ok {
		// Infinities and NaN have no exact form.
		r = new(big.Rat)
		if !math.IsNaN(f) && !math.IsInf(f, 0) {
			r.SetFloat64(f)
		}
	}
	return r
}

// round rounds to p decimals, rounding up from roundOn (default .5).
func round(a any, p int, roundOn ...float64) float64 {
	on := .5
	if len(roundOn) > 0 {
		on = roundOn[0]
	}
	pow := math.Pow(10, float64(p))
	digit := pow * toFloat64(a)
	_, frac := math.Modf(digit)
	if frac >= on {
		return math.Ceil(digit) / pow
	}
	return math.Floor(digit) / pow
}

// date formats a time, or Unix seconds, in the server's zone.
func date(layout string, v any) string {
	var t time.Time
	switch x := v.(type) {
	case time.Time:
		t = x
	case *time.Time:
		if x != nil {
			t = *x
		}
	case int64:
		t = time.Unix(x, 0)
	case int:
		t = time.Unix(int64(x), 0)
	case int32:
		t = time.Unix(int64(x), 0)
	default:
		t = time.Now()
	}
	return t.In(time.Local).Format(layout)
}

func toDateInZone(layout, zone, s string) time.Time {
	loc, err := time.LoadLocation(zone)
	if err != nil {
		loc = time.UTC
	}
	t, _ := time.ParseInLocation(layout, s, loc)
	return t
}

// unixToTime reads an epoch whose unit follows from its number of digits:
// days (5), seconds (10), milliseconds (13), microseconds (16) or
// nanoseconds (19).
func unixToTime(epoch string) (time.Time, error) {
	n, err := strconv.ParseInt(epoch, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("unable to parse time %q: %w", epoch, err)
	}
	digits := utf8.RuneCountInString(strings.TrimPrefix(epoch, "-"))
	switch digits {
	case 5:
		return time.Unix(n*86400, 0), nil
	case 10:
		return time.Unix(n, 0), nil
	case 13:
		return time.UnixMilli(n), nil
	case 16:
		return time.UnixMicro(n), nil
	case 19:
		return time.Unix(0, n), nil
	}
	return time.Time{}, fmt.Errorf("unable to parse time %q: unsupported number of digits %d", epoch, digits)
}
