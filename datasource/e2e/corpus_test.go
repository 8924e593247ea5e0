package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/data"
	"github.com/grafana/grafana-plugin-sdk-go/genproto/pluginv2"

	"github.com/logsift/logsift/pkg/chunk"
	"github.com/logsift/logsift/pkg/corpus"
	"github.com/logsift/logsift/pkg/labels"
)

// corpusFiles are real logs from the external corpus, read in place.
var corpusFiles = []string{
	"elastic-examples/apache_access_combined.log",
	"elastic-examples/auth.log",
}

type corpusFile struct {
	name  string
	lines []string
	ts    []int64
}

var (
	corpusOnce   sync.Once
	corpusLoaded []corpusFile
	corpusErr    error
)

// loadCorpus pushes the corpus files into workspace "corpus", one stream
// per file, spread over the data hour with their line numbers.
func loadCorpus(t *testing.T) []corpusFile {
	root := corpus.Require(t)
	corpusOnce.Do(func() {
		c := h.client()
		for _, name := range corpusFiles {
			b, err := os.ReadFile(filepath.Join(root, name))
			if err != nil {
				corpusErr = err
				return
			}
			text := strings.TrimRight(strings.ReplaceAll(string(b), "\r\n", "\n"), "\n")
			f := corpusFile{name: filepath.Base(name), lines: strings.Split(text, "\n")}
			step := time.Hour / time.Duration(len(f.lines)+1)
			ls := labels.New("workspace", "corpus", "job", strings.TrimSuffix(f.name, ".log"), "file", f.name)
			entries := make([]chunk.Entry, len(f.lines))
			for i, l := range f.lines {
				ts := dataStart.Add(time.Duration(i+1) * step).UnixNano()
				f.ts = append(f.ts, ts)
				entries[i] = chunk.Entry{Timestamp: ts, Line: []byte(l), Metadata: labels.Labels{{Name: "line", Value: strconv.Itoa(i + 1)}}}
			}
			if err := pushInBatches(c, ls, entries); err != nil {
				corpusErr = err
				return
			}
			corpusLoaded = append(corpusLoaded, f)
		}
	})
	if corpusErr != nil {
		t.Fatalf("load corpus: %v", corpusErr)
	}
	return corpusLoaded
}

func corpusCount(files []corpusFile, sub string) int {
	n := 0
	for _, f := range files {
		for _, l := range f.lines {
			if strings.Contains(l, sub) {
				n++
			}
		}
	}
	return n
}

func TestCorpusQueries(t *testing.T) {
	files := loadCorpus(t)
	from, to := dataStart.Add(-time.Minute), dataEnd.Add(time.Minute)
	for _, needle := range []string{" 404 ", "Failed password", "Googlebot", "onnection clos"} {
		want := corpusCount(files, needle)
		expr := fmt.Sprintf(`sum(count_over_time({workspace=\"corpus\"} |= %q [$__auto]))`, needle)
		expr = strings.ReplaceAll(expr, `"`+needle+`"`, `\"`+needle+`\"`)
		res := queryData(t, map[string]string{"FromAlert": "true"}, query{refID: "A", from: from, to: to, json: `{"expr":"` + expr + `"}`})["A"]
		if res.err != "" {
			t.Fatalf("%q: %s", needle, res.err)
		}
		if got := sumValues(res.frames); got != float64(want) {
			t.Errorf("%q: alert-style count %v, brute force %d", needle, got, want)
		}
		logs := queryData(t, nil, query{refID: "B", from: from, to: to,
			json: fmt.Sprintf(`{"expr":"{workspace=\"corpus\"} |= \"%s\"","maxLines":5000}`, needle)})["B"]
		if logs.err != "" {
			t.Fatalf("%q: %s", needle, logs.err)
		}
		got := rows(t, logs.frames[0])
		if len(got) != min(want, 5000) {
			t.Errorf("%q: %d lines, brute force %d", needle, len(got), want)
		}
		for _, l := range got {
			if !strings.Contains(l, needle) {
				t.Fatalf("%q: line %q does not match", needle, l)
			}
		}
	}
}

func TestCorpusSearchAndContext(t *testing.T) {
	files := loadCorpus(t)
	from, to := dataStart.Add(-time.Minute), dataEnd.Add(time.Minute)
	want := corpusCount(files, "sshd")
	payload := fmt.Sprintf(`{"expr":"{workspace=\"corpus\"} |= \"sshd\"","maxLines":100000,"from":%d,"to":%d}`, from.UnixMilli(), to.UnixMilli())
	subscribe(t, h.ds, "search/corpus", payload)
	st, err := h.stream.RunStream(context.Background(), &pluginv2.RunStreamRequest{PluginContext: pluginContext(h.ds), Path: "search/corpus", Data: []byte(payload)})
	if err != nil {
		t.Fatal(err)
	}
	n, frames := 0, 0
	for {
		msg, err := st.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("search stream: %v", err)
		}
		var f data.Frame
		if err := json.Unmarshal(msg.Data, &f); err != nil {
			t.Fatal(err)
		}
		n += len(rows(t, &f))
		frames++
	}
	if n != want || frames < 2 {
		t.Errorf("search: %d lines in %d frames, brute force %d", n, frames, want)
	}

	// Context of a hit in the middle of the access log, by line number.
	f := files[slices.IndexFunc(files, func(f corpusFile) bool { return f.name == "apache_access_combined.log" })]
	const hit = 5000
	lbls, _ := json.Marshal(map[string]string{"workspace": "corpus", "job": "apache_access_combined", "file": f.name, "line": strconv.Itoa(hit)})
	code, body := callResource(t, h.ds, "context", fmt.Sprintf("ts=%d&before=4&after=4&labels=%s", f.ts[hit-1], url.QueryEscape(string(lbls))))
	if code != 200 {
		t.Fatalf("context %d %s", code, body)
	}
	var out map[string]json.RawMessage
	decodeJSON(t, body, &out)
	var before, after data.Frame
	if err := json.Unmarshal(out["before"], &before); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(out["after"], &after); err != nil {
		t.Fatal(err)
	}
	if got := rows(t, &before); !slices.Equal(got, f.lines[hit-5:hit-1]) {
		t.Errorf("before: %q\nwant %q", got, f.lines[hit-5:hit-1])
	}
	if got := rows(t, &after); !slices.Equal(got, f.lines[hit:hit+4]) {
		t.Errorf("after: %q\nwant %q", got, f.lines[hit:hit+4])
	}
}
