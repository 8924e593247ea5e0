package importer

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"

	"github.com/logsift/logsift/pkg/corpus"
	"github.com/logsift/logsift/pkg/levels"
)

// TestImportLevelsAgreeWithTheServer imports corpus files of many shapes
// and checks every entry's detected_level against pkg/levels.Detect, what
// the server gives a pushed line, on the entry's first line:
//
//   - where Detect finds a level, the importer gives the same one, except
//     on klog and logcat lines, whose level letter the importer reads
//     because it knows the file's format;
//   - where Detect finds none, the importer may fill one in (Apache's
//     [notice], MongoDB's "s", PostgreSQL's LOG:, SEVERE, ...).
//
// For entries of one line (most of them) the first line is the pushed
// line, so the agent and the server agree on it.
func TestImportLevelsAgreeWithTheServer(t *testing.T) {
	root := corpus.Require(t)
	rels := []string{
		"loghub/Apache/Apache_2k.log",
		"loghub/Android/Android_2k.log",
		"loghub/BGL/BGL_2k.log",
		"loghub/HDFS/HDFS_2k.log",
		"loghub/Hadoop/Hadoop_2k.log",
		"loghub/Linux/Linux_2k.log",
		"loghub/Mac/Mac_2k.log",
		"loghub/OpenStack/OpenStack_2k.log",
		"loghub/Proxifier/Proxifier_2k.log",
		"loghub/Spark/Spark_2k.log",
		"loghub/Zookeeper/Zookeeper_2k.log",
		"elastic-examples/kafka/kafka0/server.log.2016-12-19-16",
		"elastic-examples/kafka/kafka0/kafkaServer-gc.log",
		"beats-module-samples/mongodb/mongodb-debian-4.4.4-json.log",
		"beats-module-samples/postgresql/postgresql-9.6-debian-with-slowlog.log",
		"beats-module-samples/elasticsearch/server-ecs-json-8.0.log",
		"fixtures-fluent-bit/multiline-doc/test.log",
		"zeek-wrccdc/tsv/syslog.log",
	}
	var paths []string
	for _, r := range rels {
		paths = append(paths, filepath.Join(root, r))
	}
	sink := newFakeShipper(t)
	sink.verify = false
	if _, err := Run(context.Background(), Options{Paths: paths, Workspace: "levels"}, sink); err != nil {
		t.Fatal(err)
	}
	var agree, filled, letters, multi int
	perFile := map[string]map[string]int{}
	for _, s := range sink.streams {
		file := s.labels.Get(LabelFile)
		if perFile[file] == nil {
			perFile[file] = map[string]int{}
		}
		for _, e := range s.entries {
			got := e.Metadata.Get(levels.Label)
			perFile[file][got]++
			first := e.Line
			if i := bytes.IndexByte(first, '\n'); i >= 0 {
				first = first[:i]
				multi++
			}
			server := levels.Detect(s.labels, nil, first)
			switch {
			case got == "":
				t.Fatalf("%s line %d: no detected_level", file, lineNo(e))
			case got == server:
				agree++
			case server == levels.Unknown:
				filled++
			case got == levels.DetectRecord(s.labels, nil, first, levels.Hints{Format: levels.Logcat}),
				got == levels.DetectRecord(s.labels, nil, first, levels.Hints{Format: levels.Klog}):
				letters++
			default:
				t.Errorf("%s line %d: importer says %s, the server %s: %.120q", file, lineNo(e), got, server, first)
			}
		}
	}
	t.Logf("%d entries agree with the server, %d filled in where it finds none, %d from a level letter; %d multi-line", agree, filled, letters, multi)
	// The file knowledge is used: Android's letters and Apache's [notice]
	// give levels the server's line detection does not find.
	if a := perFile["Android_2k.log"]; a[levels.Debug] == 0 || a[levels.Info] == 0 || a[levels.Warn] == 0 {
		t.Errorf("Android levels: %v", a)
	}
	if a := perFile["Apache_2k.log"]; a[levels.Info] < 1000 || a[levels.Error] == 0 {
		t.Errorf("Apache levels: %v", a)
	}
	if m := perFile["mongodb-debian-4.4.4-json.log"]; m[levels.Info] == 0 {
		t.Errorf("MongoDB levels: %v", m)
	}
	if filled == 0 || agree < filled {
		t.Errorf("agree %d, filled %d, letters %d", agree, filled, letters)
	}
}

// TestImportDiscoveryOptions: the service_name comes from the configured
// labels, else the workspace; both discoveries can be turned off.
func TestImportDiscoveryOptions(t *testing.T) {
	dir := t.TempDir()
	smallBundle(t, dir)
	for _, c := range []struct {
		name      string
		opts      Options
		services  map[string]string // file label substring -> service_name ("" none)
		hasLevels bool
	}{
		{"host label listed", Options{ServiceNameLabels: []string{"app", "host"}},
			map[string]string{"syslog": "web-1", "app.log": "ws"}, true},
		{"user label", Options{Labels: map[string]string{"service": "billing"}},
			map[string]string{"syslog": "billing", "app.log": "billing"}, true},
		{"level label", Options{Labels: map[string]string{"level": "warn"}},
			map[string]string{"syslog": "ws", "app.log": "ws"}, true},
		{"off", Options{NoServiceName: true, NoLevels: true},
			map[string]string{"syslog": "", "app.log": ""}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			sink := newFakeShipper(t)
			opts := c.opts
			opts.Paths, opts.Workspace = []string{dir}, "ws"
			if _, err := Run(context.Background(), opts, sink); err != nil {
				t.Fatal(err)
			}
			if len(sink.streams) == 0 {
				t.Fatal("nothing imported")
			}
			for _, s := range sink.streams {
				file := s.labels.Get(LabelFile)
				want := c.services["app.log"]
				if bytes.Contains([]byte(file), []byte("syslog")) {
					want = c.services["syslog"]
				}
				if got := s.labels.Get("service_name"); got != want || s.labels.Has("service_name") != (want != "") {
					t.Errorf("%s: service_name %q, want %q", file, got, want)
				}
				for _, e := range s.entries {
					if e.Metadata.Has(levels.Label) != c.hasLevels {
						t.Fatalf("%s line %d: metadata %v", file, lineNo(e), e.Metadata)
					}
					if c.opts.Labels["level"] != "" && e.Metadata.Get(levels.Label) != c.opts.Labels["level"] {
						t.Fatalf("%s line %d: a level label decides, yet metadata %v", file, lineNo(e), e.Metadata)
					}
				}
			}
		})
	}
}
