package ship

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/logsift/logsift/pkg/chunk"
	"github.com/logsift/logsift/pkg/lokiclient"
)

// LokiOptions configure a LokiOutput.
type LokiOptions struct {
	// URL is the server's base URL, e.g. http://loki:3100.
	URL string
	// Tenant is sent as X-Scope-OrgID; empty sends none.
	Tenant string
	// Token, when set, is sent as "Authorization: Bearer <token>".
	Token string
	// OnRefused, when set, is called with a *RefusedError each time the
	// server answers 401 or 403; the chunks stay in the spool and are
	// retried either way.
	OnRefused func(error)
	// PushPath overrides /loki/api/v1/push.
	PushPath string
	// HTTP is the client; nil means one with Timeout.
	HTTP *http.Client
	// Timeout bounds one push; default 30s.
	Timeout time.Duration
	// BatchChunks and BatchBytes bound one push: at most this many chunks
	// and this many encoded chunk bytes (defaults 32 and 1 MiB; lines
	// expand several times when decoded).
	BatchChunks int
	BatchBytes  int
	// Backoff paces retries.
	Backoff Backoff
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// LokiOutput sends spooled chunks to a Loki-compatible push API as
// protobuf+snappy: each batch of chunks is decoded, grouped into one stream
// per label set with entries sorted by time, and pushed. A 2xx settles the
// batch; 429 and 5xx are retried (honouring Retry-After); any other 4xx is
// the data's fault and goes to the dead-letter folder.
type LokiOutput struct {
	opts   LokiOptions
	client *lokiclient.Client
	log    *slog.Logger
}

// NewLokiOutput returns a Loki push output.
func NewLokiOutput(opts LokiOptions) (*LokiOutput, error) {
	if opts.URL == "" {
		return nil, errors.New("ship: Loki output needs a URL")
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 30 * time.Second
	}
	if opts.BatchChunks <= 0 {
		opts.BatchChunks = 32
	}
	if opts.BatchBytes <= 0 {
		opts.BatchBytes = 1 << 20
	}
	opts.Backoff = opts.Backoff.withDefaults()
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	hc := opts.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: opts.Timeout}
	}
	if opts.Token != "" {
		c := *hc
		base := c.Transport
		if base == nil {
			base = http.DefaultTransport
		}
		c.Transport = &bearerTransport{base: base, token: opts.Token}
		hc = &c
	}
	return &LokiOutput{
		opts:   opts,
		client: &lokiclient.Client{URL: opts.URL, Tenant: opts.Tenant, HTTP: hc, PushPath: opts.PushPath},
		log:    opts.Logger,
	}, nil
}

func (o *LokiOutput) run(ctx context.Context, s *Spool) {
	attempt := 0
	for {
		recs, err := s.nextBatch(ctx, o.opts.BatchChunks, o.opts.BatchBytes)
		if err != nil {
			return
		}
		body, kept, err := o.encode(s, recs)
		if err != nil {
			s.requeue(recs...)
			o.log.Error("reading spooled chunks failed", "err", err)
			if !sleep(ctx, o.opts.Backoff.delay(attempt)) {
				return
			}
			attempt++
			continue
		}
		if len(kept) == 0 {
			continue
		}
		s.m.shipped.Add(len(kept))
		pctx, cancel := context.WithTimeout(ctx, o.opts.Timeout)
		err = o.client.PushBody(pctx, body, "application/x-protobuf", "")
		cancel()
		if err == nil {
			attempt = 0
			for _, r := range kept {
				s.settle(r, false)
			}
			continue
		}
		if ctx.Err() != nil {
			s.requeue(kept...)
			return
		}
		var se *lokiclient.StatusError
		if errors.As(err, &se) && (se.Code == http.StatusUnauthorized || se.Code == http.StatusForbidden) {
			// The credentials' fault, not the data's: keep the chunks
			// (dead-lettering them would lose every chunk to a typo in a
			// token) and retry at the slowest pace.
			re := &RefusedError{Forbidden: se.Code == http.StatusForbidden, HasToken: o.opts.Token != "", Detail: strings.TrimSpace(se.Body)}
			wait := o.opts.Backoff.delay(attempt)
			attempt++
			s.m.errors.Inc()
			s.m.retried.Add(len(kept))
			o.log.Error("push to Loki refused; chunks stay in the spool and are retried", "url", o.opts.URL, "err", re.Error(), "retry_in", wait.Round(time.Millisecond))
			s.requeue(kept...)
			if o.opts.OnRefused != nil {
				o.opts.OnRefused(re)
			}
			if !sleep(ctx, wait) {
				return
			}
			continue
		}
		if errors.As(err, &se) && se.Code/100 == 4 && se.Code != http.StatusTooManyRequests && se.Code != http.StatusRequestTimeout {
			for _, r := range kept {
				s.deadLetter(r, nil, fmt.Sprintf("push answered %d: %s", se.Code, se.Body))
			}
			continue
		}
		wait := o.opts.Backoff.delay(attempt)
		attempt++
		if se != nil {
			if ra, ok := parseRetryAfter(se.RetryAfter, time.Now()); ok {
				wait = max(wait, ra)
			}
		}
		s.m.errors.Inc()
		s.m.retried.Add(len(kept))
		o.log.Warn("push to Loki failed; retrying", "url", o.opts.URL, "err", err, "retry_in", wait.Round(time.Millisecond))
		s.requeue(kept...)
		if !sleep(ctx, wait) {
			return
		}
	}
}

// encode decodes a batch of chunks into one push body, one stream per label
// set with entries in time order. A chunk that cannot be read back is
// dead-lettered (it passed its checksum when spooled, so this is a bug or
// disk damage) and left out.
func (o *LokiOutput) encode(s *Spool, recs []*record) ([]byte, []*record, error) {
	streams := map[uint64]*lokiclient.Stream{}
	var order []uint64
	kept := recs[:0:0]
	var buf chunk.BlockBuffer
	for _, r := range recs {
		data, err := s.read(r)
		if err != nil {
			return nil, nil, err
		}
		c, err := chunk.Decode(data)
		if err != nil {
			s.deadLetter(r, data, "spooled chunk cannot be decoded: "+err.Error())
			continue
		}
		meta := c.Meta()
		h := meta.Labels.Hash()
		st := streams[h]
		if st == nil {
			st = &lokiclient.Stream{Labels: meta.Labels}
			streams[h] = st
			order = append(order, h)
		}
		var derr error
		for i := range meta.Blocks {
			ents, err := c.ReadBlock(i, &buf)
			if err != nil {
				derr = err
				break
			}
			for _, e := range ents {
				st.Entries = append(st.Entries, e.Clone())
			}
		}
		if derr != nil {
			s.deadLetter(r, data, "spooled chunk cannot be decoded: "+derr.Error())
			continue
		}
		kept = append(kept, r)
	}
	out := make([]lokiclient.Stream, 0, len(order))
	for _, h := range order {
		st := streams[h]
		slices.SortStableFunc(st.Entries, func(a, b chunk.Entry) int { return cmp.Compare(a.Timestamp, b.Timestamp) })
		out = append(out, *st)
	}
	if len(kept) == 0 {
		return nil, nil, nil
	}
	body, err := lokiclient.EncodePush(out)
	return body, kept, err
}

// parseRetryAfter reads an HTTP Retry-After value: seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	if v == "" {
		return 0, false
	}
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		return time.Duration(n) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}
