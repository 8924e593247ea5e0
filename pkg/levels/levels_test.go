package levels

import (
	"testing"

	"github.com/logsift/logsift/pkg/labels"
)

func TestFromLine(t *testing.T) {
	cases := map[string]string{
		`2024-01-01T00:00:00Z level=error msg="disk full"`:                         Error,
		`ts=1 lvl=WARN msg=x`:                                                      Warn,
		`{"time":"x","level":"DEBUG","msg":"y"}`:                                   Debug,
		`{"severity":"Warning","message":"m"}`:                                     Warn,
		`[2016-12-19 16:00:00,123] INFO Kafka version : 0.10.1.0`:                  Info,
		`2014-05-01 12:00:00.123 CEST ERROR:  relation "x" does not exist`:         Error,
		`Jun 14 15:16:01 combo sshd(pam_unix)[19939]: authentication failure`:      Unknown,
		`E0507 12:04:17.597069 klog line`:                                          Unknown,
		`panic: runtime error: index out of range`:                                 Fatal,
		`FATAL: could not open file`:                                               Fatal,
		`CRITICAL: disk full`:                                                      Critical,
		`for more information see the manual`:                                      Unknown,
		`the terrorist errand`:                                                     Unknown,
		`WARNING: deprecated flag`:                                                 Warn,
		`10.0.0.1 - - [17/May/2015:10:05:03 +0000] "GET /Error.html HTTP/1.1" 200`: Unknown,
		`mixed Error case`:                                                         Error,
		`weird eRRoR case`:                                                         Unknown,
		``:                                                                         Unknown,
	}
	for line, want := range cases {
		if got := FromLine([]byte(line)); got != want {
			t.Errorf("%q: %s, want %s", line, got, want)
		}
	}
}

func TestDetectPrefersLabelsAndMetadata(t *testing.T) {
	if got := Detect(labels.New("level", "Err"), nil, []byte("INFO all good")); got != Error {
		t.Errorf("stream label: %s", got)
	}
	if got := Detect(nil, labels.New("severity", "fatal"), []byte("INFO all good")); got != Fatal {
		t.Errorf("metadata: %s", got)
	}
	if got := Detect(labels.New("level", "banana"), nil, []byte("debug: x")); got != Debug {
		t.Errorf("a non-level label value falls through to the line: %s", got)
	}
}

func TestOnlyThePrefixIsScanned(t *testing.T) {
	line := make([]byte, 10000)
	for i := range line {
		line[i] = 'x'
	}
	copy(line[5000:], " ERROR ")
	if got := FromLine(line); got != Unknown {
		t.Errorf("level found past the scanned prefix: %s", got)
	}
}

func FuzzFromLine(f *testing.F) {
	for _, s := range []string{"level=info", `{"level":"x"}`, "ERROR", "lvl:", "level=", "severity"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		switch FromLine(line) {
		case Critical, Error, Warn, Info, Debug, Trace, Unknown:
		default:
			t.Fatal("not a normalised level")
		}
	})
}

func BenchmarkFromLine(b *testing.B) {
	line := []byte(`83.149.9.216 - - [17/May/2015:10:05:03 +0000] "GET /presentations/logstash-monitorama-2013/images/kibana-search.png HTTP/1.1" 200 203023 "http://semicomplete.com/presentations/logstash-monitorama-2013/" "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_9_1)"`)
	b.SetBytes(int64(len(line)))
	for i := 0; i < b.N; i++ {
		FromLine(line)
	}
}
