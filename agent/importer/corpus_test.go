package importer

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/logsift/logsift/pkg/chunk"
	"github.com/logsift/logsift/pkg/corpus"
)

// corpusFiles reads the corpus to pack. Under the race detector only the
// files below 1 MiB are taken, to keep the run short.
func corpusFiles(t *testing.T) []packFile {
	dir := corpus.Require(t)
	return listTree(t, dir, func(rel string, size int64) bool {
		return !raceEnabled || size < 1<<20
	})
}

// expectedLines counts a corpus file's lines as text: UTF-16 files are
// decoded first, since their code units may hold a 0x0A byte.
func expectedLines(b []byte) int {
	if len(b) >= 2 && (b[0] == 0xff && b[1] == 0xfe || b[0] == 0xfe && b[1] == 0xff) {
		order := binary.ByteOrder(binary.LittleEndian)
		if b[0] == 0xfe {
			order = binary.BigEndian
		}
		u := make([]uint16, 0, len(b)/2)
		for i := 2; i+1 < len(b); i += 2 {
			u = append(u, order.Uint16(b[i:]))
		}
		return countLines([]byte(string(utf16.Decode(u))))
	}
	return countLines(b)
}

func TestImportCorpusArchives(t *testing.T) {
	files := corpusFiles(t)
	dir := t.TempDir()

	zipped := zipBytes(t, files, zip.Deflate)
	tgz := gzipBytes(t, tarBytes(t, files))
	nested := zstdBytes(t, gzipBytes(t, tarBytes(t, []packFile{{name: "inner/bundle.zip", data: zipped}})))

	cases := []struct {
		name, file, prefix string
		data               []byte
	}{
		{"zip", "bundle.zip", "", zipped},
		{"tar.gz", "bundle.tar.gz", "", tgz},
		{"zip in tar.gz in zstd", "bundle.tar.gz.zst", "inner/bundle.zip/", nested},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := writeFile(t, filepath.Join(dir, tc.file), tc.data)
			sink := newFakeShipper(t)
			sum, err := Run(context.Background(), Options{Paths: []string{path}, Workspace: "case-4711"}, sink)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range sum.Problems {
				t.Errorf("unexpected problem: %s", p)
			}
			checkCorpus(t, files, tc.prefix, sink, sum)
		})
	}
}

// TestImportCorpusFolder imports the corpus folder in place.
func TestImportCorpusFolder(t *testing.T) {
	dir := corpus.Require(t)
	if raceEnabled {
		t.Skip("the folder holds 73 MB; the archive test covers the race run")
	}
	sink := newFakeShipper(t)
	sink.verify = false // the archive test verifies; keep this one quick
	sum, err := Run(context.Background(), Options{Paths: []string{dir}, Workspace: "corpus"}, sink)
	if err != nil {
		t.Fatal(err)
	}
	if len(sum.Problems) != 0 {
		t.Errorf("problems: %v", sum.Problems)
	}
	files := listTree(t, dir, nil)
	got := sink.byFile()
	for _, f := range files {
		n := 0
		for _, e := range got[f.name] {
			n += bytes.Count(e.Line, []byte{'\n'}) + 1
		}
		if want := expectedLines(f.data); n != want {
			t.Errorf("%s: %d lines imported, file has %d", f.name, n, want)
		}
	}
}

// checkCorpus compares what was shipped with the corpus files.
func checkCorpus(t *testing.T, files []packFile, prefix string, sink *fakeShipper, sum *Summary) {
	t.Helper()
	manifest := loadManifest(t)
	got := sink.byFile()
	var totalLines int64
	for _, f := range files {
		name := prefix + f.name
		ents := got[name]
		want := expectedLines(f.data)
		totalLines += int64(want)
		// Every line arrives exactly once: entries are contiguous runs of
		// lines, each starting where the previous one ended.
		next := 1
		for _, e := range ents {
			if ln := lineNo(e); ln != next {
				t.Errorf("%s: entry starts at line %d, want %d", name, ln, next)
				break
			}
			next += bytes.Count(e.Line, []byte{'\n'}) + 1
		}
		if next-1 != want {
			t.Errorf("%s: %d lines imported, file has %d", name, next-1, want)
		}
		// Loghub's *_structured.csv files are derived tables that hold the
		// date and the time in separate CSV columns; they are imported
		// line by line, but no detector reads two columns as one stamp.
		if strings.HasPrefix(manifest[f.name], "yes") && !strings.HasSuffix(f.name, "_structured.csv") {
			for _, e := range ents {
				if e.Timestamp == packTime.UnixNano() {
					t.Errorf("%s: entry at line %d has no parsed time: %.80q", name, lineNo(e), e.Line)
					break
				}
			}
		}
	}
	if sum.Lines != totalLines {
		t.Errorf("summary counts %d lines, corpus has %d", sum.Lines, totalLines)
	}
	if sum.Entries == 0 || sum.Chunks == 0 {
		t.Errorf("summary: %+v", sum)
	}

	// Exact first timestamps of many formats (members are dated
	// 2024-06-30, which decides the year of year-less stamps).
	firsts := map[string]string{
		"loghub/Linux/Linux_2k.log":                                              "2024-06-14T15:16:01Z",
		"loghub/OpenSSH/OpenSSH_2k.log":                                          "2023-12-10T06:55:46Z",
		"loghub/Mac/Mac_2k.log":                                                  "2023-07-01T09:00:55Z",
		"loghub/Android/Android_2k.log":                                          "2024-03-17T16:13:38.811Z",
		"loghub/Proxifier/Proxifier_2k.log":                                      "2023-10-30T16:49:06Z",
		"loghub/Apache/Apache_2k.log":                                            "2005-12-04T04:47:44Z",
		"loghub/HDFS/HDFS_2k.log":                                                "2008-11-09T20:36:15Z",
		"loghub/BGL/BGL_2k.log":                                                  "2005-06-03T22:42:50Z",
		"loghub/HPC/HPC_2k.log":                                                  "2004-02-26T14:12:22Z",
		"loghub/Hadoop/Hadoop_2k.log":                                            "2015-10-18T18:01:47.978Z",
		"loghub/HealthApp/HealthApp_2k.log":                                      "2017-12-23T22:15:29.606Z",
		"loghub/OpenStack/OpenStack_2k.log":                                      "2017-05-16T00:00:00.008Z",
		"loghub/Spark/Spark_2k.log":                                              "2017-06-09T20:10:40Z",
		"loghub/Thunderbird/Thunderbird_2k.log":                                  "2005-11-09T20:01:01Z",
		"loghub/Windows/Windows_2k.log":                                          "2016-09-28T04:30:30Z",
		"loghub/Zookeeper/Zookeeper_2k.log":                                      "2015-07-29T17:41:44.747Z",
		"elastic-examples/auth.log":                                              "2024-03-27T13:06:56Z",
		"elastic-examples/apache_access_combined.log":                            "2015-05-17T10:05:03Z",
		"elastic-examples/nginxplus_status_json.log":                             "2015-10-30T23:58:19.322Z",
		"elastic-examples/kafka/kafka0/kafkaServer-gc.log":                       "2016-12-19T15:31:46.725Z",
		"elastic-examples/kafka/kafka0/server.log.2016-12-19-16":                 "2016-12-19T16:31:46.143Z",
		"beats-module-samples/postgresql/postgresql-9.6-debian-with-slowlog.log": "2017-07-31T11:36:42.585Z",
		"beats-module-samples/redis/redis-5.0.3.log":                             "2018-12-27T11:19:18.874Z",
		"beats-module-samples/mongodb/mongodb-debian-4.4.4-json.log":             "2021-03-22T21:21:20.328Z",
		"beats-module-samples/mysql/mysql-debian-5.7.17-slowlog.log":             "2017-04-28T09:07:39Z",
		"beats-module-samples/elasticsearch/server-ecs-json-8.0.log":             "2020-04-14T14:05:58.019Z",
		"beats-module-samples/elasticsearch/server-test.log":                     "2018-05-17T08:29:12.177Z",
		"beats-module-samples/iis/test-iis-7.5.log":                              "2018-08-28T18:24:25Z",
		"beats-module-samples/system/tz-offset.log":                              "1986-04-25T21:23:45.101Z",
		"beats-module-samples/system/darwin-syslog.head.log":                     "2023-12-13T11:35:28Z",
		"fixtures-fluent-bit/multiline-doc/test.log":                             "2023-12-14T06:41:08Z",
		"fixtures-fluent-bit/tail/multiline_001.log":                             "2006-07-28T13:22:04Z",
		"zeek-wrccdc/json/dns.json":                                              "2018-03-24T17:15:20.865716Z",
		"zeek-wrccdc/tsv/dns.log":                                                "2018-03-24T17:15:20.865716Z",
	}
	for file, want := range firsts {
		ents := got[prefix+file]
		if len(ents) == 0 {
			if !raceEnabled {
				t.Errorf("%s: no entries", file)
			}
			continue
		}
		if g := time.Unix(0, ents[0].Timestamp).UTC().Format(time.RFC3339Nano); g != want {
			t.Errorf("%s: first entry at %s, want %s (%.60q)", file, g, want, ents[0].Line)
		}
	}
	checkMultiline(t, prefix, got)
}

// checkMultiline checks that multi-line records come out whole.
func checkMultiline(t *testing.T, prefix string, got map[string][]chunk.Entry) {
	t.Helper()
	for name, ents := range got {
		file := strings.TrimPrefix(name, prefix)
		switch {
		case strings.Contains(file, "/kafka/") && strings.Contains(file, "kafkaServer-gc"):
			// The 3-line JVM header is one record; every GC event is one
			// record of its indented lines.
			if n := strings.Count(string(ents[0].Line), "\n"); !strings.HasPrefix(string(ents[0].Line), "OpenJDK") || n != 2 {
				t.Errorf("%s: first record is not the 3-line JVM header: %.80q", file, ents[0].Line)
			}
			for _, e := range ents[1:] {
				lines := strings.Split(string(e.Line), "\n")
				if !strings.HasPrefix(lines[0], "20") {
					t.Errorf("%s line %d: record does not start with a timestamp: %.60q", file, lineNo(e), e.Line)
					break
				}
				for _, l := range lines[1:] {
					if !strings.HasPrefix(l, " ") {
						t.Errorf("%s line %d: continuation %q is not indented", file, lineNo(e), l)
					}
				}
			}
		case strings.Contains(file, "/kafka/") && strings.Contains(file, ".log"):
			// log4j: a record starts with "[yyyy-" and no continuation
			// line does; stack traces stay with their record.
			for _, e := range ents {
				lines := strings.Split(string(e.Line), "\n")
				if !strings.HasPrefix(lines[0], "[20") {
					t.Errorf("%s line %d: record does not start with a timestamp: %.60q", file, lineNo(e), e.Line)
				}
				for _, l := range lines[1:] {
					if strings.HasPrefix(l, "[20") {
						t.Errorf("%s line %d: a timestamped line was joined into a record", file, lineNo(e))
					}
				}
			}
		}
	}

	// A Java stack trace in the Kafka controller log is one entry.
	if ents := got[prefix+"elastic-examples/kafka/kafka0/controller.log.2016-12-19-18"]; len(ents) > 0 {
		found := false
		for _, e := range ents {
			s := string(e.Line)
			if strings.Contains(s, "\njava.io.IOException: Connection to 1 was disconnected before the response was read\n") {
				found = true
				if !strings.HasSuffix(s, "\tat kafka.utils.ShutdownableThread.run(ShutdownableThread.scala:63)") || strings.Count(s, "\n\tat ") != 11 {
					t.Errorf("controller.log stack trace not whole: %q", s)
				}
			}
		}
		if !found {
			t.Errorf("controller.log: the IOException trace is not inside a timestamped record")
		}
	}
	// The broker's config dump is one record.
	if ents := got[prefix+"elastic-examples/kafka/kafka0/server.log.2016-12-19-16"]; len(ents) > 0 {
		s := string(ents[0].Line)
		if !strings.Contains(s, "INFO KafkaConfig values: \n\tadvertised.host.name = null\n") || !strings.Contains(s, "\n\tzookeeper.connect = ") {
			t.Errorf("server.log config dump is not one record: %.200q", s)
		}
	}
	// The fluent-bit fixture: a single line, a Java exception with its
	// frames, a single line, a Go panic with all its goroutines, a single
	// line.
	if ents := got[prefix+"fixtures-fluent-bit/multiline-doc/test.log"]; len(ents) > 0 {
		if len(ents) != 5 {
			t.Fatalf("test.log: %d records, want 5", len(ents))
		}
		java, gopanic := string(ents[1].Line), string(ents[3].Line)
		if !strings.HasPrefix(java, "Dec 14 06:41:08 Exception in thread \"main\" java.lang.RuntimeException") || strings.Count(java, "\n    at ") != 5 {
			t.Errorf("test.log: Java record %q", java)
		}
		if !strings.HasPrefix(gopanic, "panic: my panic\n") || !strings.Contains(gopanic, "goroutine 3 [GC sweep wait]:") || !strings.HasSuffix(strings.TrimRight(gopanic, "\n"), "mgc.go:216 +0x58") {
			t.Errorf("test.log: Go record %q", gopanic)
		}
		if string(ents[4].Line) != "one more line, no multiline" {
			t.Errorf("test.log: last record %q", ents[4].Line)
		}
	}
	// JSON lines whose message is a stack frame join the record before.
	if ents := got[prefix+"fixtures-fluent-bit/tail/multiline_001.log"]; len(ents) > 0 && len(ents) != 1 {
		t.Errorf("multiline_001.log: %d records, want 1", len(ents))
	}
	// MySQL slow log: one record per statement with its header lines.
	if ents := got[prefix+"beats-module-samples/mysql/mysql-debian-5.7.17-slowlog.log"]; len(ents) > 0 {
		if len(ents) != 3 || !strings.HasPrefix(string(ents[1].Line), "# Time: 2017-04-28T09:16:30.738365Z\n# User@Host:") {
			t.Errorf("mysql slow log: %d records, second %.60q", len(ents), ents[min(1, len(ents)-1)].Line)
		}
	}
}

// loadManifest reads the corpus MANIFEST's "timestamps" column by path.
func loadManifest(t *testing.T) map[string]string {
	b, err := os.ReadFile(filepath.Join(corpus.Require(t), "MANIFEST.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Split(l, "\t"); len(f) > 8 {
			m[f[0]] = f[8]
		}
	}
	return m
}
