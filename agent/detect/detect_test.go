package detect

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/logsift/logsift/pkg/labels"
	"github.com/logsift/logsift/pkg/levels"
)

var ref = time.Date(2024, 6, 30, 12, 0, 0, 0, time.UTC)

func lines(s string) [][]byte {
	var out [][]byte
	for _, l := range strings.Split(strings.TrimSuffix(s, "\n"), "\n") {
		out = append(out, []byte(l))
	}
	return out
}

// records runs text through Detect and the assembler.
func records(t *testing.T, text string, s Settings) (*Profile, []Record) {
	t.Helper()
	ls := lines(text)
	p := Detect(ls, FileInfo{Path: "x.log", ModTime: ref}, s)
	var out []Record
	a := NewAssembler(p, func(r *Record) error {
		c := *r
		c.Text = bytes.Clone(r.Text)
		out = append(out, c)
		return nil
	})
	for _, l := range ls {
		if err := a.Line(l); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	return p, out
}

func rfc(ns int64) string { return time.Unix(0, ns).UTC().Format(time.RFC3339Nano) }

func TestFormats(t *testing.T) {
	cases := []struct {
		line, format, want string
	}{
		{"2016-12-19 16:00:00,123 INFO x", "iso8601", "2016-12-19T16:00:00.123Z"},
		{"2016-12-19T16:31:46.725+0100: 1.595: [GC pause", "iso8601", "2016-12-19T15:31:46.725Z"},
		{"1986-04-26T01:23:45.388424+04:00 host thermald: x", "iso8601", "1986-04-25T21:23:45.388424Z"},
		{"2017-07-31 13:36:42.585 CEST [4974] LOG:  x", "iso8601", "2017-07-31T11:36:42.585Z"},
		{"2016-09-28 04:30:30, Info   CBS    Loaded", "iso8601", "2016-09-28T04:30:30Z"},
		{"[2018-05-17T08:29:12,177][INFO ][o.e.c.m]", "iso8601", "2018-05-17T08:29:12.177Z"},
		{"2009/11/10 23:00:00 [error] 1#1: x", "iso8601", "2009-11-10T23:00:00Z"},
		{"2019-06-14T10:40:20Z x", "iso8601", "2019-06-14T10:40:20Z"},
		{"2006-01-02 15:04:05.999999999 -0700 MST x", "iso8601", "2006-01-02T22:04:05.999999999Z"},
		{"nova-api.log.1.2017-05-16_13:53:08 2017-05-16 00:00:00.008 25746 INFO", "iso8601", "2017-05-16T00:00:00.008Z"},
		{"- 1117838570 2005.06.03 R02 2005-06-03-15.42.50.675872 R02", "epoch", "2005-06-03T22:42:50Z"},
		{"KERNDTLB 2005-06-03-15.42.50.675872 R02 RAS", "bgl", "2005-06-03T15:42:50.675872Z"},
		{`83.149.9.216 - - [17/May/2015:10:05:03 +0000] "GET / HTTP/1.1" 200`, "clf", "2015-05-17T10:05:03Z"},
		{`::1 - - [17/May/2015:10:05:03 -0700] "GET"`, "clf", "2015-05-17T17:05:03Z"},
		{"[Sun Dec 04 04:47:44 2005] [notice] workerEnv.init() ok", "ansic", "2005-12-04T04:47:44Z"},
		{"Mon Jan  2 15:04:05 MST 2006 x", "ansic", "2006-01-02T22:04:05Z"},
		{"26571:M 27 Dec 2018 11:19:18.874 * Synchronization", "day-month-year", "2018-12-27T11:19:18.874Z"},
		{"Date: Mon, 02 Jan 2006 15:04:05 GMT", "day-month-year", "2006-01-02T15:04:05Z"},
		{"Jun 14 15:16:01 combo sshd(pam_unix)[19939]: x", "syslog", "2024-06-14T15:16:01Z"},
		{"Jul  1 09:00:55 calvisitor kernel[0]: x", "syslog", "2023-07-01T09:00:55Z"},
		{"Mar 27 2017 13:06:56 router x", "syslog", "2017-03-27T13:06:56Z"},
		{"I0507 12:04:17.597069    1 main.go:10] hi", "klog", "2024-05-07T12:04:17.597069Z"},
		{"20171223-22:15:29:606|Step_LSC|30002312|x", "compact", "2017-12-23T22:15:29.606Z"},
		{"20171223-23:7:6:75|Step_LSC|30002312|x", "compact", "2017-12-23T23:07:06.075Z"},
		{"081109 203615 148 INFO dfs.DataNode", "yymmdd", "2008-11-09T20:36:15Z"},
		{"17/06/09 20:10:40 INFO executor", "yy/mm/dd", "2017-06-09T20:10:40Z"},
		{"03-17 16:13:38.811  1702  2395 D WindowManager: x", "month-day", "2024-03-17T16:13:38.811Z"},
		{"[10.30 16:49:06] chrome.exe - proxy", "month.day", "2023-10-30T16:49:06Z"},
		{"134681 node-246 unix.hw state_change.unavailable 1077804742 1 Component", "epoch", "2004-02-26T14:12:22Z"},
		{"1521911747.733658\tCqKst53mF3det3eDV9\t10.47.1.100", "epoch", "2018-03-24T17:15:47.733658Z"},
		{"ts=1446249499322 msg=hi", "epoch", "2015-10-30T23:58:19.322Z"},
		{`{"@timestamp":"2020-04-14T14:05:58.019Z", "log.level": "INFO"}`, "json", "2020-04-14T14:05:58.019Z"},
		{`{"_write_ts":"2018-03-24T17:15:20.866586Z","ts":"2018-03-24T17:15:20.865716Z"}`, "json", "2018-03-24T17:15:20.865716Z"},
		{`{"t":{"$date":"2021-03-22T21:21:20.328+00:00"},"s":"I"}`, "json", "2021-03-22T21:21:20.328Z"},
		{`{"load_timestamp":1445680800424,"timestamp":1446249499322}`, "json", "2015-10-30T23:58:19.322Z"},
		{`{"ts":1521911747.733658,"x":1}`, "json", "2018-03-24T17:15:47.733658Z"},
	}
	for _, c := range cases {
		p := Detect([][]byte{[]byte(c.line)}, FileInfo{ModTime: ref}, Settings{})
		if p.Format == nil || p.Format.Name != c.format {
			name := "none"
			if p.Format != nil {
				name = p.Format.Name
			}
			t.Errorf("%q: format %s, want %s", c.line, name, c.format)
			continue
		}
		ts, ok := NewParser(p).Parse([]byte(c.line))
		if !ok || rfc(ts) != c.want {
			t.Errorf("%q: %s (ok %v), want %s", c.line, rfc(ts), ok, c.want)
		}
	}
}

func TestNotTimestamps(t *testing.T) {
	for _, l := range []string{
		"blk_38865049064139660 size 67108864",
		"version 1.2017-05-16 is out",
		"2020-03-24 Multiple lines:",
		"user 12345678901 logged in",
		"Mayday 14 15:16:01",
		"2016-13-45 10:00:00 bad month",
		"2016-02-30 10:00:00 bad day",
		"99:99:99",
		"10.30.16.49 host",
	} {
		p := Detect([][]byte{[]byte(l)}, FileInfo{ModTime: ref}, Settings{})
		if p.Format != nil {
			t.Errorf("%q: read as %s", l, p.Format.Name)
		}
	}
}

func TestYearRollover(t *testing.T) {
	_, recs := records(t, "Dec 30 23:59:00 h a: x\nDec 31 23:59:59 h a: x\nJan  1 00:00:01 h a: x\nDec 31 23:59:58 h a: late\nJan  2 10:00:00 h a: x\n", Settings{})
	want := []string{"2023-12-30T23:59:00Z", "2023-12-31T23:59:59Z", "2024-01-01T00:00:01Z", "2023-12-31T23:59:58Z", "2024-01-02T10:00:00Z"}
	if len(recs) != len(want) {
		t.Fatalf("%d records", len(recs))
	}
	for i, r := range recs {
		if rfc(r.Time) != want[i] {
			t.Errorf("record %d at %s, want %s", i, rfc(r.Time), want[i])
		}
	}
	// The year override sets the starting year.
	_, recs = records(t, "Dec 31 23:59:59 h a: x\nJan  1 00:00:01 h a: x\n", Settings{Year: 2010})
	if rfc(recs[0].Time) != "2010-12-31T23:59:59Z" || rfc(recs[1].Time) != "2011-01-01T00:00:01Z" {
		t.Errorf("year override: %s, %s", rfc(recs[0].Time), rfc(recs[1].Time))
	}
}

func TestOverrides(t *testing.T) {
	ov := Overrides{Rules: []Rule{
		{Match: "**/app/*.log", Timestamp: "02.01.2006 15:04:05", Timezone: "Europe/Berlin"},
		{Match: "*.bin", Skip: true},
		{Match: "legacy/**", Timezone: "+02:00", Multiline: `^\d{4}-`},
		{Match: "noisy.log", Multiline: "none", LevelField: "none"},
	}}
	if err := ov.Validate(); err != nil {
		t.Fatal(err)
	}
	s, _ := ov.For("var/app/server.log")
	p, recs := records(t, "31.12.2023 23:00:00 ERROR boom\n  detail\n01.01.2024 00:30:00 INFO ok\n", s)
	if p.LayoutText == "" || len(recs) != 2 || rfc(recs[0].Time) != "2023-12-31T22:00:00Z" || p.Level(nil, recs[0].Text) != levels.Error {
		t.Errorf("layout override: %+v %v", p.Format, recs)
	}
	if s, _ := ov.For("deep/dir/x.bin"); !s.Skip {
		t.Error("skip rule did not apply")
	}
	s, _ = ov.For("legacy/a/b.log")
	_, recs = records(t, "2024-01-01 10:00:00 a\nno stamp but a new line\n2024-01-01 11:00:00 b\n", s)
	if len(recs) != 2 || rfc(recs[0].Time) != "2024-01-01T08:00:00Z" || !strings.Contains(string(recs[0].Text), "\nno stamp") {
		t.Errorf("legacy: %v", recs)
	}
	s, _ = ov.For("x/noisy.log")
	p, recs = records(t, "2024-01-01 10:00:00 ERROR a\n  indented\n", s)
	if len(recs) != 2 || p.Level(nil, recs[0].Text) != "" || p.Levels {
		t.Errorf("noisy: %v", recs)
	}
	for _, bad := range []Rule{{Timestamp: "not a layout"}, {Timezone: "Mars/Olympus"}, {Multiline: "("}, {Year: 3}, {Match: "[", Skip: true}} {
		if err := (&Overrides{Rules: []Rule{bad}}).Validate(); err == nil {
			t.Errorf("rule %+v: no error", bad)
		}
	}
}

func TestGlob(t *testing.T) {
	cases := []struct {
		pat, path string
		want      bool
	}{
		{"*.log", "a/b/c.log", true},
		{"*.log", "a/b/c.txt", false},
		{"a/*/c.log", "a/b/c.log", true},
		{"a/**/c.log", "a/c.log", true},
		{"a/**/c.log", "a/x/y/c.log", true},
		{"**", "anything/at/all", true},
		{"var/log/*", "var/log/sub/x", false},
		{"", "x", true},
	}
	for _, c := range cases {
		if got := globMatch(c.pat, c.path); got != c.want {
			t.Errorf("globMatch(%q, %q) = %v", c.pat, c.path, got)
		}
	}
}

func TestMultiline(t *testing.T) {
	t.Run("java", func(t *testing.T) {
		text := "2024-01-01 10:00:00,000 ERROR failed\njava.lang.IllegalStateException: boom\n\tat a.b.C.d(C.java:1)\n\tat a.b.C.e(C.java:2)\nCaused by: java.io.IOException: x\n\t... 3 more\n2024-01-01 10:00:01,000 INFO next\n"
		p, recs := records(t, text, Settings{})
		if p.Mode != ModeTimestamp || len(recs) != 2 || recs[0].Lines != 6 || p.Level(nil, recs[0].Text) != levels.Error || recs[1].Line != 7 {
			t.Fatalf("mode %v, records %+v", p.Mode, recs)
		}
	})
	t.Run("leading lines take the first time", func(t *testing.T) {
		_, recs := records(t, "header one\nheader two\n2024-01-01T10:00:00Z first\nno stamp\n2024-01-01T10:00:05Z second\n2024-01-01T10:00:06Z third\n2024-01-01T10:00:07Z fourth\n", Settings{})
		if len(recs) != 5 || rfc(recs[0].Time) != "2024-01-01T10:00:00Z" || recs[0].Lines != 2 || recs[0].OwnTime || recs[1].Lines != 2 {
			t.Fatalf("%+v", recs)
		}
	})
	t.Run("no timestamps", func(t *testing.T) {
		p, recs := records(t, "alpha\nbeta\n  indented\ngamma\n", Settings{})
		if p.Mode != ModePattern || len(recs) != 3 || recs[1].Lines != 2 {
			t.Fatalf("%v %+v", p.Mode, recs)
		}
		for _, r := range recs {
			if r.Time != ref.UnixNano() {
				t.Errorf("record %d at %s, want the modification time", r.Line, rfc(r.Time))
			}
		}
	})
	t.Run("go panic among plain lines", func(t *testing.T) {
		text := "starting\npanic: oops\n\ngoroutine 1 [running]:\nmain.main()\n\t/x/main.go:5 +0x1d\nexit status 2\nafter\n"
		_, recs := records(t, text, Settings{})
		if len(recs) != 3 || recs[1].Lines != 6 || string(recs[2].Text) != "after" {
			t.Fatalf("%+v", recs)
		}
	})
	t.Run("go panic in a timestamped log starts a record", func(t *testing.T) {
		text := "2024-01-01T10:00:00Z INFO up\npanic: oops\n\ngoroutine 1 [running]:\nmain.main()\n\t/x/main.go:5 +0x1d\n2024-01-01T10:00:02Z INFO again\n"
		_, recs := records(t, text, Settings{})
		if len(recs) != 3 || !bytes.HasPrefix(recs[1].Text, []byte("panic: oops")) || recs[1].Time != recs[0].Time {
			t.Fatalf("%+v", recs)
		}
	})
	t.Run("mysql slow log", func(t *testing.T) {
		text := "# User@Host: a[a] @ h []  Id: 1\n# Query_time: 1.0\nSET timestamp=1493370459;\nSELECT 1\n  FROM t;\n# Time: 2017-04-28T09:16:30.738365Z\n# User@Host: a[a] @ h []  Id: 2\n# Query_time: 2.0\nSET timestamp=1493370990;\ncall x();\n"
		p, recs := records(t, text, Settings{})
		if p.Mode != ModeMySQLSlow || len(recs) != 2 || recs[0].Lines != 5 || rfc(recs[0].Time) != "2017-04-28T09:07:39Z" || rfc(recs[1].Time) != "2017-04-28T09:16:30.738365Z" {
			t.Fatalf("%v %+v", p.Mode, recs)
		}
	})
	t.Run("docker partial lines", func(t *testing.T) {
		text := `{"log":"2020-03-24 one ","stream":"stdout","time":"2020-03-24T10:00:00Z"}` + "\n" +
			`{"log":"line\n","stream":"stdout","time":"2020-03-24T10:00:00.5Z"}` + "\n" +
			`{"log":"two\n","stream":"stdout","time":"2020-03-24T10:00:01Z"}` + "\n"
		p, recs := records(t, text, Settings{})
		if p.Mode != ModeDocker || len(recs) != 2 || recs[0].Lines != 2 || rfc(recs[1].Time) != "2020-03-24T10:00:01Z" {
			t.Fatalf("%v %+v", p.Mode, recs)
		}
	})
	t.Run("record bounds", func(t *testing.T) {
		p := Detect(lines("2024-01-01T10:00:00Z a"), FileInfo{ModTime: ref}, Settings{})
		var recs []Record
		a := NewAssembler(p, func(r *Record) error { recs = append(recs, *r); return nil })
		a.MaxLines = 3
		a.MaxBytes = 64
		_ = a.Line([]byte("2024-01-01T10:00:00Z a"))
		for i := 0; i < 5; i++ {
			_ = a.Line([]byte("  more"))
		}
		_ = a.Line(bytes.Repeat([]byte("x"), 150)) // a line longer than the bound
		_ = a.Close()
		total := 0
		for _, r := range recs {
			total += r.Lines
			if len(r.Text) > 64 {
				t.Errorf("record of %d bytes", len(r.Text))
			}
		}
		if len(recs) < 4 || !recs[0].Cut || a.LineNo() != 7 {
			t.Fatalf("%d records, lines %d: %+v", len(recs), a.LineNo(), recs)
		}
	})
}

// TestLevels checks the file knowledge the profile adds to pkg/levels
// (which has its own tests): the format's level letter, the user's field,
// and the first line of a record.
func TestLevels(t *testing.T) {
	cases := []struct {
		sample, record string
		s              Settings
		want           string
	}{
		{"E0507 12:04:17.597069 1 x.go:1] bad", "E0507 12:04:17.597069 1 x.go:1] retry: info", Settings{}, levels.Error},
		{"03-17 16:13:38.811  1702  2395 W WindowManager: x", "03-17 16:13:38.811  1702  2395 D Tag: an error", Settings{}, levels.Debug},
		{"2024-01-01 10:00:00 ERROR x", "2024-01-01 10:00:00 ERROR x\n\tat frame WARN", Settings{}, levels.Error},
		{"2024-01-01 10:00:00 x", "2024-01-01 10:00:00 done\nERROR in the second line", Settings{}, levels.Unknown},
		{"2024-01-01 10:00:00 connection error in handler", "2024-01-01 10:00:00 connection error in handler", Settings{}, levels.Error},
		{`{"sev":"W","level":"info"}`, `{"sev":"E","level":"info"}`, Settings{LevelField: "sev"}, levels.Error},
		{"2024-01-01 10:00:00 ERROR x", "2024-01-01 10:00:00 ERROR x", Settings{LevelField: "none"}, ""},
	}
	for _, c := range cases {
		p := Detect([][]byte{[]byte(c.sample)}, FileInfo{ModTime: ref}, c.s)
		if got := p.Level(nil, []byte(c.record)); got != c.want {
			t.Errorf("%q: level %q, want %q", c.record, got, c.want)
		}
	}
	p := Detect([][]byte{[]byte("2024-01-01 10:00:00 INFO x")}, FileInfo{ModTime: ref}, Settings{})
	if got := p.Level(labels.New("level", "warn"), []byte("2024-01-01 10:00:00 INFO x")); got != levels.Warn {
		t.Errorf("a stream's level label: %q", got)
	}
}

func TestHost(t *testing.T) {
	p := Detect(lines("Mar 27 13:06:56 ip-10-77-20-248 sshd[1291]: a\nMar 27 13:06:57 ip-10-77-20-248 sudo: b\n"), FileInfo{ModTime: ref}, Settings{})
	if p.Host != "ip-10-77-20-248" {
		t.Errorf("host %q", p.Host)
	}
	p = Detect(lines("Mar 27 13:06:56 a sshd[1]: x\nMar 27 13:06:57 b sshd[1]: x\n"), FileInfo{ModTime: ref}, Settings{})
	if p.Host != "" {
		t.Errorf("mixed hosts gave %q", p.Host)
	}
}

func TestExplain(t *testing.T) {
	text := "Dec 14 06:41:08 host app[1]: Exception in thread \"main\" java.lang.RuntimeException: x\n    at a.b(C.java:1)\nDec 14 06:41:09 host app[1]: WARN ok\n"
	sample := lines(text)
	p := Detect(sample, FileInfo{Path: "x.log", ModTime: ref}, Settings{})
	var b strings.Builder
	p.Explain(&b, sample)
	out := b.String()
	for _, want := range []string{"syslog", "matched 2 of 3 sample lines at column 0", "year:", "zone:", "read as UTC", "3 lines make 2 records, 1 of them multi-line", "| Dec 14 06:41:08", "warn 1", "host:       host"} {
		if !strings.Contains(out, want) {
			t.Errorf("explain output lacks %q:\n%s", want, out)
		}
	}
}

func ExampleProfile_Explain() {
	sample := lines("2024-01-01 10:00:00,123 INFO started\n2024-01-01 10:00:01,000 ERROR failed\n\tat a.b(C.java:1)\n")
	p := Detect(sample, FileInfo{Path: "app.log", ModTime: ref}, Settings{})
	var b strings.Builder
	p.Explain(&b, sample)
	fmt.Print(strings.SplitAfter(b.String(), "\n")[1])
	// Output:
	//   timestamp:  iso8601  yyyy-MM-dd[T ]HH:mm:ss[.,fraction][Z|±hh:mm|±hhmm| ZONE] (also yyyy/MM/dd) (chosen by match count)
}
