package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"go.opentelemetry.io/otel/attribute"
	"golang.org/x/time/rate"

	"github.com/logsift/logsift/pkg/store"
	"github.com/logsift/logsift/pkg/tenant"
	"github.com/logsift/logsift/pkg/tracing"
)

// Appender is where validated streams go; it returns only once they are
// durable. Unless Config.ReuseBuffers is set it may keep the entries' Line
// and Metadata memory (the handler then never reuses it); it must never
// modify that memory, and must treat Labels as read-only: label sets are
// shared between pushes through a cache.
type Appender interface {
	Append(ctx context.Context, tenant string, streams []store.Stream) error
}

// Config configures a Handler. The zero value of every field means its
// documented default.
type Config struct {
	// Limits apply to tenants without an override; nil means DefaultLimits.
	Limits *Limits `yaml:"limits"`
	// Overrides holds complete per-tenant limits.
	Overrides Overrides `yaml:"overrides"`
	// Tenants resolves X-Scope-OrgID when no middleware has put a tenant
	// in the request context.
	Tenants tenant.Resolver `yaml:"-"`
	// MaxBodyBytes bounds the request body as sent (compressed); default
	// 32 MiB. Larger bodies get 413.
	MaxBodyBytes int `yaml:"max_body_bytes"`
	// MaxDecompressedBytes bounds the body after gzip/deflate and snappy,
	// and separately the memory of decoded entries; default 128 MiB.
	MaxDecompressedBytes int `yaml:"max_decompressed_bytes"`
	// MaxReportedErrors is how many drop reasons a 400 lists; default 10.
	MaxReportedErrors int `yaml:"max_reported_errors"`
	// LabelCacheBytes bounds the cache of parsed stream labels; default
	// 16 MiB.
	LabelCacheBytes int `yaml:"label_cache_bytes"`
	// ReuseBuffers recycles the buffers that lines and structured metadata
	// point into once Append has returned, saving an allocation of the
	// decoded body per push. Set it only when the Appender copies every
	// Line and every metadata string it keeps before it returns.
	ReuseBuffers bool `yaml:"reuse_buffers"`
	// Metrics receives the handler's metrics; nil means the default set.
	Metrics *metrics.Set `yaml:"-"`
	// Logger gets rejected pushes (rate-limited to a few per second);
	// nil means slog.Default().
	Logger *slog.Logger `yaml:"-"`
	// Now is the clock for rate limits and future timestamps; nil means
	// time.Now.
	Now func() time.Time `yaml:"-"`
}

// Defaults of Config's size fields.
const (
	DefaultMaxBodyBytes         = 32 << 20
	DefaultMaxDecompressedBytes = 128 << 20
	DefaultMaxReportedErrors    = 10
	DefaultLabelCacheBytes      = 16 << 20
)

// Handler serves POST /loki/api/v1/push. Its answers:
//
//	204  everything was appended and is durable
//	400  malformed body or tenant ID; or some streams/entries were invalid:
//	     the valid rest was appended (durably) and the body lists the reasons
//	401  X-Scope-OrgID required but missing ("no org id")
//	405  not POST
//	413  body, decompressed body or decoded push over its limit
//	415  unsupported Content-Type or Content-Encoding
//	429  tenant rate limit (Retry-After set, nothing appended), or the
//	     store's stream limit (the other streams were appended)
//	499  the client went away before the append was durable
//	500  unexpected store error (nothing acknowledged)
//	503  store closing, or the request deadline passed during the append
//	507  data directory out of space (nothing appended; clients retry 5xx)
type Handler struct {
	app       Appender
	cfg       Config
	defaults  Limits
	overrides map[string]*Limits
	body      bodyReader
	cache     *labelCache
	metrics   *handlerMetrics
	log       *slog.Logger
	logSample *rate.Limiter
	logMissed atomic.Int64

	mu       sync.Mutex
	limiters map[string]*rate.Limiter
}

// NewHandler returns a push handler that appends to app.
func NewHandler(app Appender, cfg Config) *Handler {
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.MaxDecompressedBytes <= 0 {
		cfg.MaxDecompressedBytes = DefaultMaxDecompressedBytes
	}
	if cfg.MaxReportedErrors <= 0 {
		cfg.MaxReportedErrors = DefaultMaxReportedErrors
	}
	if cfg.LabelCacheBytes <= 0 {
		cfg.LabelCacheBytes = DefaultLabelCacheBytes
	}
	if cfg.Metrics == nil {
		cfg.Metrics = metrics.GetDefaultSet()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	h := &Handler{
		app:       app,
		cfg:       cfg,
		defaults:  DefaultLimits(),
		body:      bodyReader{maxBody: cfg.MaxBodyBytes, maxDecompressed: cfg.MaxDecompressedBytes},
		cache:     newLabelCache(cfg.LabelCacheBytes),
		metrics:   newHandlerMetrics(cfg.Metrics),
		log:       cfg.Logger,
		logSample: rate.NewLimiter(1, 5),
		limiters:  map[string]*rate.Limiter{},
	}
	if cfg.Limits != nil {
		h.defaults = *cfg.Limits
	}
	h.overrides = make(map[string]*Limits, len(cfg.Overrides))
	for id, l := range cfg.Overrides {
		h.overrides[id] = &l
	}
	return h
}

// LimitsFor returns the limits of a tenant.
func (h *Handler) LimitsFor(tenantID string) *Limits {
	if l, ok := h.overrides[tenantID]; ok {
		return l
	}
	return &h.defaults
}

// statusClientClosed is nginx's (and Loki's) code for a request the client
// gave up on; no client sees it, but logs and metrics do.
const statusClientClosed = 499

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	code, msg, tenantID := h.serve(w, r)
	if code == http.StatusNoContent {
		w.WriteHeader(code)
	} else {
		http.Error(w, msg, code)
		h.logRejected(r, tenantID, code, msg)
	}
	h.metrics.request(code, time.Since(start))
}

// serve handles a push and returns the status and, for errors, the message.
func (h *Handler) serve(w http.ResponseWriter, r *http.Request) (int, string, string) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		return http.StatusMethodNotAllowed, "push requires POST", ""
	}
	tenantID, ok := tenant.FromContext(r.Context())
	if ok {
		if err := tenant.Validate(tenantID); err != nil {
			return http.StatusBadRequest, err.Error(), ""
		}
	} else {
		var err error
		if tenantID, err = h.cfg.Tenants.Single(r); err != nil {
			if errors.Is(err, tenant.ErrNoOrgID) {
				return http.StatusUnauthorized, err.Error(), ""
			}
			return http.StatusBadRequest, err.Error(), ""
		}
	}
	format, err := FormatOf(r.Header.Get("Content-Type"))
	if err != nil {
		return http.StatusUnsupportedMediaType, err.Error(), tenantID
	}

	_, span := tracing.Start(r.Context(), "ingest.decode")
	req, release, err := h.decode(r, format)
	tracing.End(span, err)
	defer release()
	if err != nil {
		var tl *TooLargeError
		var um *errUnsupportedMedia
		switch {
		case errors.As(err, &tl):
			return http.StatusRequestEntityTooLarge, err.Error(), tenantID
		case errors.As(err, &um):
			return http.StatusUnsupportedMediaType, err.Error(), tenantID
		}
		return http.StatusBadRequest, err.Error(), tenantID
	}

	lim := h.LimitsFor(tenantID)
	rep := &Report{maxMessages: h.cfg.MaxReportedErrors}
	v := validator{limits: lim, now: h.cfg.Now(), cache: h.cache, rep: rep}
	streams := v.validate(req)
	tm := h.metrics.tenant(tenantID)
	tm.received(rep.TotalLines, rep.TotalBytes)
	defer func() { h.metrics.discarded(tenantID, rep) }()

	lines, bytes := countStreams(streams)
	if lines > 0 {
		if retry, msg := h.rateLimit(tenantID, lim, lines, bytes); msg != "" {
			rep.drop(ReasonRateLimited, lines, bytes)
			if retry > 0 {
				w.Header().Set("Retry-After", strconv.Itoa(retry))
			}
			return http.StatusTooManyRequests, msg, tenantID
		}
		if len(lim.DiscoverServiceName) > 0 {
			discoverServiceNames(streams, lim.DiscoverServiceName)
		}
		if lim.DiscoverLogLevels {
			discoverLevels(streams)
		}
		// The append span covers the WAL write and its fsync: the part of a
		// push that waits for the disk.
		actx, span := tracing.Start(r.Context(), "ingest.append", attribute.Int("lines", lines), attribute.Int("bytes", bytes), attribute.Int("streams", len(streams)))
		err := h.app.Append(actx, tenantID, streams)
		tracing.End(span, err)
		if err != nil {
			return h.appendFailed(err, rep, streams, lines, bytes), appendMessage(err, rep), tenantID
		}
	}
	if rep.DroppedLines() > 0 || len(rep.Messages) > 0 {
		return http.StatusBadRequest, rep.String(), tenantID
	}
	return http.StatusNoContent, "", tenantID
}

// decode reads and decodes the body. release returns the buffers that
// lines point into to the pool when Config.ReuseBuffers allows it; the
// caller calls it once the Appender has returned.
func (h *Handler) decode(r *http.Request, format Format) (req *PushRequest, release func(), err error) {
	reuse := h.cfg.ReuseBuffers
	// JSON lines are unescaped in place, so its body is the lines' buffer;
	// protobuf lines point into snappy's output instead.
	keep := format == FormatJSON && !reuse
	body, pooled, err := h.body.read(r, keep)
	if err != nil {
		return nil, nop, err
	}
	release = nop
	if pooled {
		release = func() { putBuf(body) }
	}
	if format == FormatJSON {
		req, err = DecodeJSON(body, h.cfg.MaxDecompressedBytes)
		return req, release, err
	}
	if !reuse {
		// Snappy decodes into a fresh buffer that the lines point into, so
		// the compressed body can go back to the pool once it has been
		// decoded, and not a moment before: another request may take it.
		req, err = DecodeProto(body, h.cfg.MaxDecompressedBytes)
		release()
		return req, nop, err
	}
	msg, err := decodeSnappyInto(getBuf(), body, h.cfg.MaxDecompressedBytes)
	release()
	if err != nil {
		putBuf(msg)
		return nil, nop, err
	}
	req, err = DecodeProtoMessage(msg, h.cfg.MaxDecompressedBytes)
	return req, func() { putBuf(msg) }, err
}

func nop() {}

func countStreams(streams []store.Stream) (lines, bytes int) {
	for i := range streams {
		lines += len(streams[i].Entries)
		for j := range streams[i].Entries {
			bytes += entryBytes(&streams[i].Entries[j])
		}
	}
	return lines, bytes
}

// rateLimit takes bytes from the tenant's token bucket. When the bucket
// cannot pay, it returns the seconds until it can and Loki's message.
func (h *Handler) rateLimit(tenantID string, lim *Limits, lines, bytes int) (int, string) {
	if lim.IngestionRateMB <= 0 {
		return 0, ""
	}
	l := h.limiter(tenantID, lim)
	now := h.cfg.Now()
	msg := fmt.Sprintf("Ingestion rate limit exceeded for user %s (limit: %d bytes/sec) while attempting to ingest '%d' lines totaling '%d' bytes, reduce log volume or contact your Loki administrator to see if the limit can be increased", tenantID, int64(l.Limit()), lines, bytes)
	res := l.ReserveN(now, bytes)
	if !res.OK() {
		return 0, fmt.Sprintf("%s (this push alone is larger than the burst of %d bytes; send smaller batches or raise ingestion_burst_size_mb)", msg, l.Burst())
	}
	delay := res.DelayFrom(now)
	if delay <= 0 {
		return 0, ""
	}
	res.CancelAt(now)
	return int(math.Ceil(delay.Seconds())), msg
}

func (h *Handler) limiter(tenantID string, lim *Limits) *rate.Limiter {
	h.mu.Lock()
	defer h.mu.Unlock()
	l := h.limiters[tenantID]
	if l == nil {
		perSec := lim.IngestionRateMB * (1 << 20)
		burst := lim.IngestionBurstSizeMB * (1 << 20)
		if burst < perSec {
			burst = perSec // a burst below one second's rate would refuse pushes the rate allows
		}
		l = rate.NewLimiter(rate.Limit(perSec), int(burst))
		h.limiters[tenantID] = l
	}
	return l
}

// appendFailed maps an Append error to a status and accounts the lines the
// store did not take.
func (h *Handler) appendFailed(err error, rep *Report, streams []store.Stream, lines, bytes int) int {
	var sle *store.StreamLimitError
	if errors.As(err, &sle) {
		// The other streams were written; only the refused ones are lost.
		refused := make(map[uint64]bool, len(sle.Rejected))
		for _, ls := range sle.Rejected {
			refused[ls.Hash()] = true
		}
		for i := range streams {
			if refused[streams[i].Labels.Hash()] {
				n, b := countStreams(streams[i : i+1])
				rep.drop(ReasonStreamLimit, n, b)
			}
		}
		return http.StatusTooManyRequests
	}
	rep.drop(ReasonStoreError, lines, bytes)
	switch {
	case errors.Is(err, store.ErrDiskFull):
		return http.StatusInsufficientStorage
	case errors.Is(err, store.ErrClosed):
		return http.StatusServiceUnavailable
	case errors.Is(err, context.Canceled):
		return statusClientClosed
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

func appendMessage(err error, rep *Report) string {
	var sle *store.StreamLimitError
	var msg string
	switch {
	case errors.As(err, &sle):
		msg = err.Error()
	case errors.Is(err, store.ErrDiskFull):
		msg = fmt.Sprintf("nothing of this push was stored: %v; free space in the data directory, then retry", err)
	case errors.Is(err, store.ErrClosed):
		msg = fmt.Sprintf("nothing of this push was stored: %v (the server is shutting down); retry", err)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		msg = fmt.Sprintf("nothing of this push was stored: the request ended before the store made it durable: %v", err)
	default:
		msg = fmt.Sprintf("nothing of this push was stored: %v", err)
	}
	if len(rep.Messages) > 0 {
		msg += "\nbesides, validation rejected entries:\n" + rep.String()
	}
	return msg
}

// logRejected logs refused pushes, a few per second at most: a broken
// client retrying in a loop must not flood the log.
func (h *Handler) logRejected(r *http.Request, tenantID string, code int, msg string) {
	// Rate limits and vanished clients are routine backpressure; bad data
	// is the client's problem worth a warning; the store failing is ours.
	level := slog.LevelWarn
	switch {
	case code == http.StatusTooManyRequests || code == statusClientClosed:
		level = slog.LevelDebug
	case code >= 500:
		level = slog.LevelError
	}
	if !h.log.Enabled(r.Context(), level) {
		return
	}
	if !h.logSample.AllowN(h.cfg.Now(), 1) {
		h.logMissed.Add(1)
		return
	}
	msg = shortenTo(msg, 1024)
	h.log.Log(r.Context(), level, "push rejected",
		"tenant", tenantID, "status", code, "reason", msg,
		"remote", r.RemoteAddr, "user_agent", r.UserAgent(),
		"suppressed_since_last", h.logMissed.Swap(0))
}
