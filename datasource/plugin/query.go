package plugin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/cespare/xxhash/v2"
	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/data"

	"github.com/logsift/logsift/datasource/client"
	"github.com/logsift/logsift/datasource/frames"
	"github.com/logsift/logsift/datasource/querymodel"
	"github.com/logsift/logsift/pkg/logql"
)

// maxParallelQueries bounds the queries of one request that run at once.
const maxParallelQueries = 4

// FromAlert reports whether a request comes from an alert rule: Grafana's
// alerting engine sets the FromAlert header.
func FromAlert(headers map[string]string) bool {
	for k, v := range headers {
		if strings.EqualFold(k, backend.FromAlertHeaderName) || strings.EqualFold(k, "http_"+backend.FromAlertHeaderName) {
			return v != "" && !strings.EqualFold(v, "false")
		}
	}
	return false
}

// QueryData runs every query of the request.
func (in *Instance) QueryData(ctx context.Context, req *backend.QueryDataRequest) (*backend.QueryDataResponse, error) {
	resp := backend.NewQueryDataResponse()
	alert := FromAlert(req.Headers)
	if len(req.Queries) == 1 {
		q := req.Queries[0]
		resp.Responses[q.RefID] = in.query(ctx, q, alert)
		return resp, nil
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, maxParallelQueries)
	for _, q := range req.Queries {
		wg.Add(1)
		sem <- struct{}{}
		go func(q backend.DataQuery) {
			defer func() { <-sem; wg.Done() }()
			r := in.query(ctx, q, alert)
			mu.Lock()
			resp.Responses[q.RefID] = r
			mu.Unlock()
		}(q)
	}
	wg.Wait()
	return resp, nil
}

// BuildRequest reads one Grafana query into a server request.
func (in *Instance) BuildRequest(q backend.DataQuery, alert bool) (querymodel.Request, error) {
	r, err := querymodel.Build(querymodel.Input{
		JSON:            q.JSON,
		From:            q.TimeRange.From,
		To:              q.TimeRange.To,
		Interval:        q.Interval,
		MaxDataPoints:   q.MaxDataPoints,
		FromAlert:       alert,
		DefaultMaxLines: in.settings.MaxLines,
	})
	// Grafana's refId is the one its response map is keyed by.
	r.RefID = q.RefID
	return r, err
}

func (in *Instance) query(ctx context.Context, q backend.DataQuery, alert bool) backend.DataResponse {
	if in.configErr != nil {
		return backend.ErrDataResponseWithSource(backend.StatusBadRequest, backend.ErrorSourceDownstream, "datasource settings: "+in.configErr.Error())
	}
	r, err := in.BuildRequest(q, alert)
	if errors.Is(err, querymodel.ErrEmptyQuery) {
		return backend.DataResponse{}
	}
	if err != nil {
		return backend.ErrDataResponseWithSource(backend.StatusBadRequest, backend.ErrorSourceDownstream, err.Error())
	}
	fs, err := in.Run(ctx, r)
	if err != nil {
		return errorResponse(err)
	}
	return backend.DataResponse{Frames: fs}
}

// Run sends a request to the server and builds its frames.
func (in *Instance) Run(ctx context.Context, r querymodel.Request) (data.Frames, error) {
	executed := "Expr: " + r.Expr
	switch {
	case r.Type == querymodel.TypeImports:
		return in.importsData(ctx, r)
	case r.Type == querymodel.TypeStream:
		f := frames.NewLogsBuilder(0).Frame(r.RefID, frames.LogsMeta(executed, nil))
		f.Meta.Channel = in.TailChannel(r)
		// Grafana subscribes to a channel named in a frame without
		// subscription data: the channel's key finds the query.
		_, key, _ := strings.Cut(strings.TrimPrefix(f.Meta.Channel, "ds/"+in.uid+"/"), "/")
		in.channels.put(key, StreamData{Model: querymodel.Model{RefID: r.RefID, Expr: r.Expr, MaxLines: r.Limit, Direction: r.Direction}, From: r.Start.UnixMilli()})
		return data.Frames{f}, nil
	case r.Metric && r.Type == querymodel.TypeInstant:
		res, err := in.client.QueryInstant(ctx, r.Expr, r.End, 0)
		if err != nil {
			return nil, err
		}
		o := frames.SeriesOptions{RefID: r.RefID, Executed: executed, LegendFormat: r.LegendFormat, Volume: r.Supporting == querymodel.SupportLogsVolume}
		switch {
		case res.Type == client.ResultScalar:
			return frames.Scalar(res.Scalar, &res.Stats, o), nil
		case r.Table:
			return frames.Table(res.Series, &res.Stats, o), nil
		}
		return frames.Vector(res.Series, &res.Stats, o), nil
	case r.Metric:
		res, err := in.client.QueryRange(ctx, client.RangeQuery{Query: r.Expr, Start: r.Start, End: r.End, Step: r.Step})
		if err != nil {
			return nil, err
		}
		executed += "\nStep: " + logql.FormatDuration(r.Step)
		o := frames.SeriesOptions{RefID: r.RefID, Executed: executed, LegendFormat: r.LegendFormat, Step: r.Step, Volume: r.Supporting == querymodel.SupportLogsVolume}
		switch {
		case res.Type == client.ResultScalar:
			return frames.Scalar(res.Scalar, &res.Stats, o), nil
		case r.Table:
			return frames.Table(res.Series, &res.Stats, o), nil
		case res.Type == client.ResultVector:
			return frames.Vector(res.Series, &res.Stats, o), nil
		}
		return frames.Matrix(res.Series, &res.Stats, o), nil
	default:
		res := &client.Result{Type: client.ResultStreams}
		q := client.RangeQuery{Query: r.Expr, Start: r.Start, End: r.End, Direction: r.Direction}
		err := in.pageLogs(ctx, q, r.Limit, func(page *client.Result, _ bool) error {
			if page.Type != client.ResultStreams {
				return fmt.Errorf("the server answered a log query with a %s result", page.Type)
			}
			mergeResults(res, page)
			return nil
		})
		if err != nil {
			return nil, err
		}
		return data.Frames{frames.Logs(res, frames.LogsOptions{RefID: r.RefID, Executed: executed, Forward: r.Direction == querymodel.Forward})}, nil
	}
}

// TailChannel is the Grafana Live channel of a live tail: the frontend
// subscribes to it with the query as the subscription data.
func (in *Instance) TailChannel(r querymodel.Request) string {
	key := xxhash.Sum64String(r.Expr + "\x00" + strconv.Itoa(r.Limit))
	return "ds/" + in.uid + "/" + pathTail + "/" + strconv.FormatUint(key, 16)
}

// errorResponse turns a failed server call into a query error that says
// whose problem it is.
func errorResponse(err error) backend.DataResponse {
	var se *client.StatusError
	var ce *client.ConnectError
	switch {
	case errors.As(err, &se):
		status := backend.StatusBadRequest
		switch {
		case se.Code == http.StatusUnauthorized:
			status = backend.StatusUnauthorized
		case se.Code == http.StatusForbidden:
			status = backend.StatusForbidden
		case se.Code == http.StatusTooManyRequests:
			status = backend.StatusTooManyRequests
		case se.Code == http.StatusGatewayTimeout:
			status = backend.StatusTimeout
		case se.Code >= 500:
			status = backend.StatusBadGateway
		}
		return backend.ErrDataResponseWithSource(status, backend.ErrorSourceDownstream, strings.TrimSpace(se.Body))
	case errors.As(err, &ce):
		return backend.ErrDataResponseWithSource(backend.StatusBadGateway, backend.ErrorSourceDownstream, ce.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return backend.ErrDataResponseWithSource(backend.StatusTimeout, backend.ErrorSourceDownstream, "the query timed out: narrow the time range or the selector, or raise the timeout setting")
	case errors.Is(err, context.Canceled):
		return backend.ErrDataResponseWithSource(backend.StatusBadRequest, backend.ErrorSourceDownstream, "the query was canceled")
	}
	return backend.ErrDataResponseWithSource(backend.StatusInternal, backend.ErrorSourcePlugin, err.Error())
}
