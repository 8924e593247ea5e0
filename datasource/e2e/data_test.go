package e2e

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/logsift/logsift/pkg/chunk"
	"github.com/logsift/logsift/pkg/labels"
	"github.com/logsift/logsift/pkg/lokiclient"
	"github.com/logsift/logsift/pkg/sampledata"
)

// The generated data: four services over the hour before dataEnd, in
// workspace "demo", every entry with its line number as the agent keeps
// it.
var (
	dataEnd   time.Time
	dataStart time.Time
	pushed    []sampledata.Stream
)

const (
	demoWorkspace = "demo"
	linesPerFile  = 1500
)

func loadData(c *lokiclient.Client) error {
	dataEnd = time.Now().Add(-2 * time.Minute).Truncate(time.Millisecond)
	dataStart = dataEnd.Add(-time.Hour)
	pushed = sampledata.Generate(sampledata.Options{Seed: 7, End: dataEnd, Span: time.Hour, Lines: linesPerFile})
	for i := range pushed {
		s := &pushed[i]
		s.Labels = append(s.Labels.Copy(), labels.Label{Name: "workspace", Value: demoWorkspace},
			labels.Label{Name: "file", Value: "var/log/" + s.Labels.Get("job") + ".log"}).Sort()
		for j := range s.Entries {
			s.Entries[j].Metadata = labels.Labels{{Name: "line", Value: strconv.Itoa(j + 1)}}
		}
		if err := pushInBatches(c, s.Labels, s.Entries); err != nil {
			return err
		}
	}
	return nil
}

func pushInBatches(c *lokiclient.Client, ls labels.Labels, entries []chunk.Entry) error {
	const batch = 1000
	for i := 0; i < len(entries); i += batch {
		j := min(i+batch, len(entries))
		if err := c.Push(context.Background(), []lokiclient.Stream{{Labels: ls, Entries: entries[i:j]}}); err != nil {
			return err
		}
	}
	return nil
}

// count is the brute-force number of pushed entries that pass keep.
func count(keep func(ls labels.Labels, line string) bool) int {
	n := 0
	for _, s := range pushed {
		for _, e := range s.Entries {
			if keep(s.Labels, string(e.Line)) {
				n++
			}
		}
	}
	return n
}

func containing(sub string) func(labels.Labels, string) bool {
	return func(_ labels.Labels, line string) bool { return strings.Contains(line, sub) }
}

type sampleStream = sampledata.Stream
