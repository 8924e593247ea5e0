package plugin

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"

	"github.com/logsift/logsift/datasource/querymodel"
)

// Grafana Live channel paths: ds/<datasource uid>/<path>/<key>, where the
// key is any name the frontend picks for one query.
const (
	pathTail   = "tail"
	pathSearch = "search"
)

// StreamData is the subscription data of a channel: the query model,
// with the time range in Unix milliseconds. A tail backfills from From
// (default: an hour ago); a search covers [From, To].
type StreamData struct {
	querymodel.Model
	From int64 `json:"from"`
	To   int64 `json:"to"`
}

// streamRequest reads a channel's path and data.
func (in *Instance) streamRequest(path string, raw json.RawMessage) (string, querymodel.Request, error) {
	kind, key, _ := strings.Cut(path, "/")
	if kind != pathTail && kind != pathSearch {
		return "", querymodel.Request{}, fmt.Errorf("unknown channel %q: use %s/<key> or %s/<key>", path, pathTail, pathSearch)
	}
	if in.configErr != nil {
		return "", querymodel.Request{}, fmt.Errorf("datasource settings: %w", in.configErr)
	}
	var sd StreamData
	if len(raw) > 0 && string(raw) != "null" {
		if err := json.Unmarshal(raw, &sd); err != nil {
			return "", querymodel.Request{}, fmt.Errorf("the channel data is not a query: %w", err)
		}
	} else if kind == pathTail {
		// A channel QueryData named (meta.channel), subscribed to as is.
		var ok bool
		if sd, ok = in.channels.get(key); !ok {
			return "", querymodel.Request{}, fmt.Errorf("channel %q has no query: subscribe with the query as data, or run it as a stream query first", path)
		}
	}
	now := time.Now()
	from, to := now.Add(-time.Hour), now
	if sd.To > 0 {
		to = time.UnixMilli(sd.To)
	}
	if sd.From > 0 {
		from = time.UnixMilli(sd.From)
	} else if kind == pathSearch {
		from = to.Add(-time.Hour)
	}
	m := sd.Model
	m.QueryType = querymodel.TypeRange
	m.SupportingQueryType = ""
	r, err := querymodel.BuildModel(m, querymodel.Input{From: from, To: to, DefaultMaxLines: in.settings.MaxLines})
	if err != nil {
		return "", r, err
	}
	if r.Metric {
		return "", r, fmt.Errorf("%s needs a log query, not a metric query", kind)
	}
	return kind, r, nil
}

// SubscribeStream admits subscriptions to tail and search channels whose
// data is a valid log query, and to imports channels (imports.go).
func (in *Instance) SubscribeStream(ctx context.Context, req *backend.SubscribeStreamRequest) (*backend.SubscribeStreamResponse, error) {
	if isImportsChannel(req.Path) {
		return in.subscribeImports(ctx, req)
	}
	if _, _, err := in.streamRequest(req.Path, req.Data); err != nil {
		in.log.Warn("refused stream subscription", "path", req.Path, "error", err)
		return &backend.SubscribeStreamResponse{Status: backend.SubscribeStreamStatusNotFound}, nil
	}
	return &backend.SubscribeStreamResponse{Status: backend.SubscribeStreamStatusOK}, nil
}

// PublishStream refuses: the channels carry the server's data only.
func (in *Instance) PublishStream(context.Context, *backend.PublishStreamRequest) (*backend.PublishStreamResponse, error) {
	return &backend.PublishStreamResponse{Status: backend.PublishStreamStatusPermissionDenied}, nil
}

// RunStream runs a channel while Grafana has subscribers: a live tail
// or import progress until they leave, a search until it is complete.
func (in *Instance) RunStream(ctx context.Context, req *backend.RunStreamRequest, sender *backend.StreamSender) error {
	if isImportsChannel(req.Path) {
		return in.runImports(ctx, req, sender)
	}
	kind, r, err := in.streamRequest(req.Path, req.Data)
	if err != nil {
		return err
	}
	in.wg.Add(1)
	defer in.wg.Done()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(in.ctx, cancel)
	defer stop()
	if kind == pathTail {
		return in.runTail(ctx, r, sender)
	}
	return in.runSearch(ctx, r, sender)
}

// maxChannels bounds the tail channels QueryData remembers.
const maxChannels = 1024

// channelRegistry remembers the query of each tail channel QueryData
// named, so that a subscription without data finds it. The oldest are
// forgotten first.
type channelRegistry struct {
	mu    sync.Mutex
	m     map[string]StreamData
	order []string
}

func (c *channelRegistry) put(key string, sd StreamData) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]StreamData{}
	}
	if _, ok := c.m[key]; !ok {
		c.order = append(c.order, key)
	}
	c.m[key] = sd
	for len(c.order) > maxChannels {
		delete(c.m, c.order[0])
		c.order = c.order[1:]
	}
}

func (c *channelRegistry) get(key string) (StreamData, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	sd, ok := c.m[key]
	return sd, ok
}
