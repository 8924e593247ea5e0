package detect

import (
	"bytes"
	"testing"
	"time"
)

var (
	fuzzMin = time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC).Add(-24 * time.Hour).UnixNano()
	fuzzMax = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
)

// FuzzDetectLine feeds arbitrary text to detection, every scanner, the
// parser and the assembler: nothing may panic, and every time read must
// lie between 1970 and 2200.
func FuzzDetectLine(f *testing.F) {
	for _, s := range []string{
		"2016-12-19 16:00:00,123 INFO x",
		"2016-12-19T16:31:46.725+0100: 1.595: [GC pause",
		"2017-07-31 13:36:42.585 CEST [4974] LOG:  x",
		`83.149.9.216 - - [17/May/2015:10:05:03 +0000] "GET / HTTP/1.1" 200`,
		"[Sun Dec 04 04:47:44 2005] [notice] x",
		"26571:M 27 Dec 2018 11:19:18.874 * x",
		"Jul  1 09:00:55 calvisitor kernel[0]: x",
		"I0507 12:04:17.597069    1 main.go:10] hi",
		"20171223-23:7:6:75|Step_LSC|30002312|x",
		"081109 203615 148 INFO dfs.DataNode",
		"17/06/09 20:10:40 INFO executor",
		"03-17 16:13:38.811  1702  2395 D WindowManager: x",
		"[10.30 16:49:06] chrome.exe",
		"- 1117838570 2005.06.03 R02 2005-06-03-15.42.50.675872 R02",
		"1521911747.733658\tCq",
		`{"t":{"$date":"2021-03-22T21:21:20.328+00:00"},"s":"I"}`,
		`{"load_timestamp":1445680800424,"timestamp":1446249499322}`,
		"# Time: 2017-04-28T09:16:30.738365Z\n# User@Host: a\nSET timestamp=1493370990;",
		`{"log":"a "}` + "\n" + `{"log":"b\n"}`,
		"panic: x\n\ngoroutine 1 [running]:\nmain.main()\n\tx.go:1",
		"9999-12-31T23:59:59.999999999999+18:00",
		"0000-01-01 00:00:00",
		"Feb 29 00:00:00 leap",
		"99999999999999999999",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 1<<16 {
			return
		}
		ls := bytes.Split(data, []byte{'\n'})
		var st stamp
		for _, l := range ls {
			for _, fm := range builtinFormats {
				if pos, end := fm.find(l, Prefix, &st); pos >= 0 && (end < pos || end > len(l)) {
					t.Fatalf("%s: match [%d,%d) out of %d bytes", fm.Name, pos, end, len(l))
				}
			}
			jsonFind(l, &st)
		}
		for _, year := range []int{0, 2020} {
			p := Detect(ls, FileInfo{ModTime: ref}, Settings{Year: year})
			pr := NewParser(p)
			for _, l := range ls {
				if ts, ok := pr.Parse(l); ok && (ts < fuzzMin || ts > fuzzMax) {
					t.Fatalf("%q parsed as %s", l, rfc(ts))
				}
			}
			a := NewAssembler(p, func(r *Record) error {
				if r.Time < fuzzMin || r.Time > fuzzMax {
					t.Fatalf("record at %s", rfc(r.Time))
				}
				return nil
			})
			a.MaxBytes = 512
			for _, l := range ls {
				if err := a.Line(l); err != nil {
					t.Fatal(err)
				}
			}
			if err := a.Close(); err != nil {
				t.Fatal(err)
			}
			if a.LineNo() != len(ls) {
				t.Fatalf("assembler counted %d lines of %d", a.LineNo(), len(ls))
			}
		}
	})
}
