package levels

import (
	"bytes"
	"testing"

	"github.com/logsift/logsift/pkg/labels"
)

func TestDetectRecord(t *testing.T) {
	for _, c := range []struct {
		line string
		h    Hints
		want string
	}{
		// What Detect finds, DetectRecord finds.
		{"2024-01-01 10:00:00 ERROR x", Hints{}, Error},
		{"2024-01-01 10:00:00 [warn] x", Hints{}, Warn},
		{"2024-01-01 10:00:00 level=debug msg=x", Hints{}, Debug},
		{`{"level":"warning","msg":"x"}`, Hints{}, Warn},
		{"2024-01-01 10:00:00 FATAL x", Hints{}, Fatal},
		{"2024-01-01 10:00:00 CRIT x", Hints{}, Critical},
		{"2016-09-28 04:30:30, Info   CBS", Hints{}, Info},
		// Only the first line of a record counts: a stack trace's frames
		// and messages do not give it their words.
		{"2024-01-01 10:00:00 request done\njava.lang.IllegalStateException: ERROR in frame", Hints{}, Unknown},
		{"2024-01-01 10:00:00 WARN slow\n\tat x.y(Z.java:1) ERROR", Hints{}, Warn},
		// Markers Loki does not know, where Detect finds nothing.
		{"[Sun Dec 04 04:47:44 2005] [notice] workerEnv.init() ok", Hints{}, Info},
		{`{"t":{"$date":"2021-03-22T21:21:20.328+00:00"},"s":"E","c":"x"}`, Hints{}, Error},
		{`{"t":{"$date":"2021-03-22T21:21:20.328+00:00"},"s":"D2","c":"x"}`, Hints{}, Debug},
		{"2017-07-31 13:36:42.585 CEST [4974] LOG:  database system is ready", Hints{}, Info},
		{"Jun 15 04:06:20 combo logrotate: ALERT exited abnormally", Hints{}, Critical},
		{"Jul 1 12:00:00 host app: <alert> disk", Hints{}, Critical},
		{"2005.07.01 R37 NULL DISCOVERY SEVERE Can not get assembly", Hints{}, Error},
		{"Jun 01 12:00:00 com.x.Y run FINEST: entering", Hints{}, Trace},
		{"we will alert you, notice this", Hints{}, Unknown},
		// A known format's level letter wins over words in the message.
		{"E0507 12:04:17.597069 1 x.go:1] bad", Hints{Format: Klog}, Error},
		{"I0507 12:04:17.597069 1 x.go:1] retrying after error", Hints{Format: Klog}, Info},
		{"E0507 12:04:17.597069 1 x.go:1] bad", Hints{}, Unknown}, // the server cannot know it is klog
		{"not klog at all", Hints{Format: Klog}, Unknown},
		{"03-17 16:13:38.811  1702  2395 W WindowManager: x", Hints{Format: Logcat}, Warn},
		{"03-17 16:13:38.811  1702  2395 V Tag: an error text", Hints{Format: Logcat}, Trace},
		{"03-17 16:13:38.811  1702 D Tag: x", Hints{Format: Logcat}, Unknown},
		// A user's field is the only place looked at.
		{`{"sev":"warning","level":"error"}`, Hints{Field: "sev"}, Warn},
		{`ts=1 sev="ERR" msg="info"`, Hints{Field: "sev"}, Error},
		{`ts=1 xsev=info msg=x`, Hints{Field: "sev"}, Unknown},
		{`ERROR but no field`, Hints{Field: "sev"}, Unknown},
		{`{"sev" : "FINE"}`, Hints{Field: "sev"}, Debug},
	} {
		if got := DetectRecord(nil, nil, []byte(c.line), c.h); got != c.want {
			t.Errorf("%q %+v: %s, want %s", c.line, c.h, got, c.want)
		}
	}
}

func TestDetectRecordPrefersLabelsAndMetadata(t *testing.T) {
	if got := DetectRecord(labels.New("level", "warn"), nil, []byte("E0507 12:04:17.597069 1 x.go:1] bad"), Hints{Format: Klog}); got != Warn {
		t.Errorf("stream label: %s", got)
	}
	if got := DetectRecord(nil, labels.New("severity", "debug"), []byte(`{"sev":"error"}`), Hints{Field: "sev"}); got != Debug {
		t.Errorf("metadata: %s", got)
	}
}

func TestMetadataIsShared(t *testing.T) {
	a, b := Metadata(Error), Metadata(Error)
	if len(a) != 1 || a[0].Name != Label || a[0].Value != Error || &a[0] != &b[0] {
		t.Fatalf("Metadata(error) = %v, not one shared set", a)
	}
	if md := Metadata("custom"); md.Get(Label) != "custom" {
		t.Fatalf("Metadata(custom) = %v", md)
	}
}

// FuzzDetectRecord checks the promise that keeps agent and server in
// agreement: without hints, DetectRecord gives what Detect gives the
// record's first line whenever Detect finds a level; and it always returns
// a normalised level.
func FuzzDetectRecord(f *testing.F) {
	for _, s := range []string{"level=info", `{"s":"I","msg":"ERROR"}`, "[notice] x", "LOG: x\nERROR", "E0507 12:04:17.597069 x", "SEVERE", "03-17 16:13:38.811  1 2 W t: x"} {
		f.Add([]byte(s), uint8(0), "")
	}
	f.Fuzz(func(t *testing.T, rec []byte, format uint8, field string) {
		h := Hints{Format: Format(format % 3), Field: field}
		got := DetectRecord(nil, nil, rec, h)
		switch got {
		case Critical, Error, Warn, Info, Debug, Trace, Unknown:
		default:
			t.Fatalf("not a normalised level: %q", got)
		}
		first := rec
		if i := bytes.IndexByte(rec, '\n'); i >= 0 {
			first = rec[:i]
		}
		if d := Detect(nil, nil, first); d != Unknown {
			if plain := DetectRecord(nil, nil, rec, Hints{}); plain != d {
				t.Fatalf("%q: DetectRecord %s, Detect %s", rec, plain, d)
			}
		}
	})
}

func BenchmarkDetectRecord(b *testing.B) {
	line := []byte(`83.149.9.216 - - [17/May/2015:10:05:03 +0000] "GET /presentations/logstash-monitorama-2013/images/kibana-search.png HTTP/1.1" 200 203023 "http://semicomplete.com/presentations/logstash-monitorama-2013/" "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_9_1)"`)
	b.SetBytes(int64(len(line)))
	for i := 0; i < b.N; i++ {
		DetectRecord(nil, nil, line, Hints{})
	}
}
