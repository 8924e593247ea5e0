package lokiapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/logsift/logsift/pkg/chunk"
	"github.com/logsift/logsift/pkg/labels"
	"github.com/logsift/logsift/pkg/query"
	"github.com/logsift/logsift/pkg/store"
	"github.com/logsift/logsift/pkg/tenant"
)

type tailFrame struct {
	Streams []struct {
		Stream map[string]string `json:"stream"`
		Values [][2]string       `json:"values"`
	} `json:"streams"`
}

// TestTailDeliversEveryLineOnceInOrder pushes while a WebSocket client
// tails, and checks that the backfill and every live line arrive exactly
// once, in order per stream, and that the filter applies.
func TestTailDeliversEveryLineOnceInOrder(t *testing.T) {
	st, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close(context.Background())
	api := &API{Engine: &query.Engine{Store: st}, Store: st, Limits: DefaultLimits(), Tenants: tenant.Resolver{}}
	mux := http.NewServeMux()
	api.Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	push := func(stream string, from, n int, tag string) {
		var es []chunk.Entry
		for i := from; i < from+n; i++ {
			es = append(es, chunk.Entry{Timestamp: time.Now().UnixNano(), Line: []byte(fmt.Sprintf("%s %s %06d", tag, stream, i))})
		}
		if err := st.Append(ctx, "fake", []store.Stream{{Labels: labels.New("job", "tail", "s", stream), Entries: es}}); err != nil {
			t.Fatal(err)
		}
	}
	push("a", 0, 5, "keep") // backfill
	push("a", 5, 3, "skip")

	u := "ws" + strings.TrimPrefix(srv.URL, "http") + "/loki/api/v1/tail?" + url.Values{"query": {`{job="tail"} |= "keep"`}, "limit": {"100"}}.Encode()
	conn, _, err := websocket.Dial(ctx, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseNow()

	const live = 400
	go func() {
		for i := 0; i < live; i += 20 {
			push("a", 100+i, 20, "keep")
			push("b", 100+i, 20, "keep")
			push("b", 100+i, 5, "skip")
			time.Sleep(5 * time.Millisecond)
		}
	}()
	got := map[string][]string{}
	total := 0
	for total < 5+2*live {
		_, b, err := conn.Read(ctx)
		if err != nil {
			t.Fatalf("read after %d lines: %v", total, err)
		}
		var f tailFrame
		if err := json.Unmarshal(b, &f); err != nil {
			t.Fatal(err)
		}
		for _, s := range f.Streams {
			for _, v := range s.Values {
				if _, err := strconv.ParseInt(v[0], 10, 64); err != nil {
					t.Fatalf("timestamp %q", v[0])
				}
				if !strings.HasPrefix(v[1], "keep") {
					t.Fatalf("filtered line delivered: %s", v[1])
				}
				got[s.Stream["s"]] = append(got[s.Stream["s"]], v[1])
				total++
			}
		}
	}
	for _, s := range []string{"a", "b"} {
		lines := got[s]
		seen := map[string]bool{}
		for i, l := range lines {
			if seen[l] {
				t.Fatalf("stream %s: %q delivered twice", s, l)
			}
			seen[l] = true
			if i > 0 && l < lines[i-1] {
				t.Fatalf("stream %s out of order: %q after %q", s, l, lines[i-1])
			}
		}
	}
	if len(got["a"]) != 5+live || len(got["b"]) != live {
		t.Fatalf("got %d lines of a and %d of b, want %d and %d", len(got["a"]), len(got["b"]), 5+live, live)
	}
}
