package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"golang.org/x/time/rate"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/logsift/logsift/pkg/api"
	"github.com/logsift/logsift/pkg/chunk"
	"github.com/logsift/logsift/pkg/store"
	"github.com/logsift/logsift/pkg/tenant"
)

// ChunkStore is where the chunk service puts chunks: it must verify each one
// completely (checksums, content hash, filter, labels), store it durably
// before returning, and recognise a chunk it already holds by its ID.
// *store.Store is one.
type ChunkStore interface {
	PutChunk(ctx context.Context, tenant string, data []byte) (duplicate bool, err error)
}

// ChunkConfig configures a ChunkService. Zero values mean the defaults.
type ChunkConfig struct {
	// MaxChunkBytes bounds one received chunk (and with it the gRPC
	// message size); default DefaultMaxChunkBytes.
	MaxChunkBytes int
	// Limits apply to tenants without an override; nil means DefaultLimits.
	Limits *Limits
	// Overrides holds complete per-tenant limits.
	Overrides Overrides
	// Tenants resolves the tenant when the stream's context has none from
	// an auth interceptor: metadata x-scope-orgid, else Default, else
	// tenant.DefaultID, or Unauthenticated when Required.
	Tenants tenant.Resolver
	// Workers is how many chunks of one stream are verified and stored at
	// once; default 2. Responses may then overtake each other, which the
	// protocol allows.
	Workers int
	// Metrics receives the service's metrics; nil means the default set.
	Metrics *metrics.Set
	// Logger gets rejected chunks and store failures; nil: slog.Default().
	Logger *slog.Logger
	// Now is the clock for rate limits and future timestamps.
	Now func() time.Time
}

// DefaultMaxChunkBytes is the default bound on one received chunk. Agents
// cut chunks far below it; it exists to bound what one message can make
// the server allocate.
const DefaultMaxChunkBytes = 16 << 20

// tenantMetadataKey is the gRPC metadata key carrying the tenant: gRPC
// lowercases header names, so this is X-Scope-OrgID as clients send it.
const tenantMetadataKey = "x-scope-orgid"

// Retry delays the service asks for, by cause.
const (
	retryAfterClosed   = time.Second
	retryAfterDiskFull = 30 * time.Second
	retryAfterStore    = 5 * time.Second
)

// ChunkService is the server side of logsift.v1.ChunkService: it receives
// chunks built by agents, treats each as untrusted input (size bound,
// header, labels and tenant limits here, full verification in the store),
// stores it durably and only then acknowledges it. Register it on a gRPC
// server with Register, using ServerOptions for that server.
type ChunkService struct {
	api.UnimplementedChunkServiceServer

	store     ChunkStore
	cfg       ChunkConfig
	defaults  Limits
	overrides map[string]*Limits
	log       *slog.Logger
	logSample *rate.Limiter

	mu       sync.Mutex
	limiters map[string]*rate.Limiter
	tenants  map[string]*chunkTenantMetrics

	duration *metrics.PrometheusHistogram
	streams  *metrics.Counter // streams opened
	active   *metrics.Gauge   // streams open now
}

type chunkTenantMetrics struct {
	stored, duplicate, rejected, retry *metrics.Counter
	bytes, lines                       *metrics.Counter
}

// NewChunkService returns a chunk service that stores into st.
func NewChunkService(st ChunkStore, cfg ChunkConfig) *ChunkService {
	if cfg.MaxChunkBytes <= 0 {
		cfg.MaxChunkBytes = DefaultMaxChunkBytes
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 2
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
	s := &ChunkService{
		store:     st,
		cfg:       cfg,
		defaults:  DefaultLimits(),
		overrides: make(map[string]*Limits, len(cfg.Overrides)),
		log:       cfg.Logger,
		logSample: rate.NewLimiter(1, 5),
		limiters:  map[string]*rate.Limiter{},
		tenants:   map[string]*chunkTenantMetrics{},
		duration:  cfg.Metrics.GetOrCreatePrometheusHistogram(`logsift_ingest_chunk_duration_seconds`),
		streams:   cfg.Metrics.GetOrCreateCounter(`logsift_ingest_chunk_streams_total`),
	}
	if cfg.Limits != nil {
		s.defaults = *cfg.Limits
	}
	for id, l := range cfg.Overrides {
		s.overrides[id] = &l
	}
	s.active = cfg.Metrics.GetOrCreateGauge(`logsift_ingest_chunk_streams_open`, nil)
	return s
}

// Register adds the service to a gRPC server.
func (s *ChunkService) Register(r grpc.ServiceRegistrar) {
	api.RegisterChunkServiceServer(r, s)
}

// ServerOptions are the options the gRPC server serving this service
// needs: a receive limit that admits a chunk of MaxChunkBytes plus the
// message framing.
func (s *ChunkService) ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{grpc.MaxRecvMsgSize(s.cfg.MaxChunkBytes + 64<<10)}
}

func (s *ChunkService) limitsFor(tenantID string) *Limits {
	if l, ok := s.overrides[tenantID]; ok {
		return l
	}
	return &s.defaults
}

// tenantOf resolves the stream's tenant like the HTTP push path does.
func (s *ChunkService) tenantOf(ctx context.Context) (string, error) {
	id, ok := tenant.FromContext(ctx)
	if !ok {
		if md, found := metadata.FromIncomingContext(ctx); found {
			if v := md.Get(tenantMetadataKey); len(v) > 0 {
				id = strings.TrimSpace(v[0])
			}
		}
	}
	if id == "" {
		switch {
		case s.cfg.Tenants.Required:
			return "", status.Error(codes.Unauthenticated, tenant.ErrNoOrgID.Error())
		case s.cfg.Tenants.Default != "":
			id = s.cfg.Tenants.Default
		default:
			id = tenant.DefaultID
		}
	}
	if err := tenant.Validate(id); err != nil {
		return "", status.Error(codes.InvalidArgument, err.Error())
	}
	return id, nil
}

// Push serves one agent stream: requests are read in order, stored by
// Workers goroutines, and answered as each becomes durable.
func (s *ChunkService) Push(stream api.ChunkService_PushServer) error {
	ctx := stream.Context()
	tenantID, err := s.tenantOf(ctx)
	if err != nil {
		return err
	}
	s.streams.Inc()
	s.active.Inc()
	defer s.active.Dec()

	jobs := make(chan *api.PushChunksRequest)
	results := make(chan *api.PushChunksResponse, s.cfg.Workers)
	var workers sync.WaitGroup
	for range s.cfg.Workers {
		workers.Add(1)
		go func() {
			defer workers.Done()
			for req := range jobs {
				results <- s.handle(ctx, tenantID, req)
			}
		}()
	}
	sendDone := make(chan error, 1)
	go func() {
		var err error
		for resp := range results {
			if err == nil {
				err = stream.Send(resp)
			}
			// After a failed send keep draining so no worker blocks; the
			// stream is dead and the agent resends what it did not hear of.
		}
		sendDone <- err
	}()

	var recvErr error
	for {
		req, err := stream.Recv()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				recvErr = err
			}
			break
		}
		select {
		case jobs <- req:
		case <-ctx.Done():
			recvErr = ctx.Err()
		}
		if recvErr != nil {
			break
		}
	}
	close(jobs)
	workers.Wait()
	close(results)
	sendErr := <-sendDone
	if recvErr != nil {
		return recvErr
	}
	return sendErr
}

// handle validates and stores one chunk and builds its answer.
func (s *ChunkService) handle(ctx context.Context, tenantID string, req *api.PushChunksRequest) *api.PushChunksResponse {
	start := time.Now()
	defer s.duration.UpdateDuration(start)
	resp := &api.PushChunksResponse{Sequence: req.Sequence}
	tm := s.tenantMetrics(tenantID)
	reject := func(format string, args ...any) *api.PushChunksResponse {
		resp.Status = api.ChunkStatus_CHUNK_STATUS_REJECTED
		resp.Reason = fmt.Sprintf(format, args...)
		tm.rejected.Inc()
		s.logf(ctx, slog.LevelWarn, "chunk rejected", "tenant", tenantID, "reason", resp.Reason)
		return resp
	}
	retry := func(after time.Duration, reason string) *api.PushChunksResponse {
		resp.Status = api.ChunkStatus_CHUNK_STATUS_RETRY
		resp.Reason = reason
		resp.RetryAfterMs = uint32(min(after.Milliseconds(), math.MaxUint32))
		tm.retry.Inc()
		return resp
	}

	data := req.Chunk
	if len(data) > s.cfg.MaxChunkBytes {
		return reject("chunk of %d bytes exceeds the limit of %d bytes", len(data), s.cfg.MaxChunkBytes)
	}
	c, err := chunk.Decode(data)
	if err != nil {
		return reject("invalid chunk: %v", err)
	}
	meta := c.Meta()
	resp.ChunkId = meta.ID[:]
	lim := s.limitsFor(tenantID)
	if err := checkChunk(c, lim, s.cfg.Now()); err != nil {
		return reject("%v", err)
	}
	if after, msg := s.rateLimit(tenantID, lim, meta); msg != "" {
		if after < 0 {
			return reject("%s", msg)
		}
		return retry(after, msg)
	}

	dup, err := s.store.PutChunk(ctx, tenantID, data)
	switch {
	case err == nil && dup:
		resp.Status = api.ChunkStatus_CHUNK_STATUS_DUPLICATE
		tm.duplicate.Inc()
	case err == nil:
		resp.Status = api.ChunkStatus_CHUNK_STATUS_STORED
		tm.stored.Inc()
		tm.bytes.Add(len(data))
		tm.lines.Add(meta.Entries)
	case invalidChunkError(err):
		return reject("%v", err)
	case errors.Is(err, store.ErrDiskFull):
		s.logf(ctx, slog.LevelError, "chunk not stored: data directory full", "tenant", tenantID, "err", err)
		return retry(retryAfterDiskFull, err.Error())
	case errors.Is(err, store.ErrClosed):
		return retry(retryAfterClosed, "server is shutting down: "+err.Error())
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return retry(retryAfterClosed, err.Error())
	default:
		// Not the chunk's fault as far as we can tell: the agent keeps it
		// and tries again, which is the safe side of "never lose a line".
		s.logf(ctx, slog.LevelError, "chunk not stored: store error", "tenant", tenantID, "err", err)
		return retry(retryAfterStore, "store error: "+err.Error())
	}
	return resp
}

// invalidChunkError tells the store's "this chunk is bad" errors from its
// own failures. The store wraps decoding and verification failures in
// store.ErrInvalidChunk (and chunk.ErrCorrupt).
func invalidChunkError(err error) bool {
	return errors.Is(err, chunk.ErrCorrupt) || errors.Is(err, store.ErrInvalidChunk)
}

// checkChunk applies the tenant limits that a chunk's header and blocks
// can break. A chunk is immutable, so unlike a push it is taken or refused
// whole: an agent configured within the limits never builds such a chunk.
func checkChunk(c *chunk.Chunk, lim *Limits, now time.Time) error {
	meta := c.Meta()
	if len(meta.Labels) == 0 {
		return errors.New("invalid chunk: a stream needs at least one label")
	}
	if lim.MaxLabelNamesPerSeries > 0 && len(meta.Labels) > lim.MaxLabelNamesPerSeries {
		return fmt.Errorf("stream %s has %d labels, the limit is %d", shortLabels(meta), len(meta.Labels), lim.MaxLabelNamesPerSeries)
	}
	for _, l := range meta.Labels {
		if lim.MaxLabelNameLength > 0 && len(l.Name) > lim.MaxLabelNameLength {
			return fmt.Errorf("label name %.64q is %d bytes long, the limit is %d", l.Name, len(l.Name), lim.MaxLabelNameLength)
		}
		if lim.MaxLabelValueLength > 0 && len(l.Value) > lim.MaxLabelValueLength {
			return fmt.Errorf("value of label %q is %d bytes long, the limit is %d", l.Name, len(l.Value), lim.MaxLabelValueLength)
		}
	}
	if err := meta.Labels.Validate(); err != nil {
		return fmt.Errorf("invalid chunk labels: %w", err)
	}
	if lim.CreationGracePeriod > 0 && meta.MaxTime > now.Add(lim.CreationGracePeriod).UnixNano() {
		return fmt.Errorf("chunk's newest entry (%s) is more than %s in the future", time.Unix(0, meta.MaxTime).UTC().Format(time.RFC3339Nano), lim.CreationGracePeriod)
	}
	if lim.MaxLineSize > 0 {
		// Only a block with more line bytes than the limit can hold a line
		// over it; the rest need no decompression here.
		var buf chunk.BlockBuffer
		for i, b := range meta.Blocks {
			if b.RawBytes <= lim.MaxLineSize {
				continue
			}
			ents, err := c.ReadBlock(i, &buf)
			if err != nil {
				return fmt.Errorf("invalid chunk: %w", err)
			}
			for _, e := range ents {
				if len(e.Line) > lim.MaxLineSize {
					return fmt.Errorf("chunk holds a line of %d bytes, the limit is %d", len(e.Line), lim.MaxLineSize)
				}
			}
		}
	}
	return nil
}

func shortLabels(meta *chunk.Meta) string {
	s := meta.Labels.String()
	if len(s) > 256 {
		s = s[:256] + "..."
	}
	return s
}

// rateLimit charges the chunk's line bytes to the tenant's token bucket.
// It returns the wait before a resend can pass, or a negative wait when the
// chunk alone is larger than the burst and can never pass.
func (s *ChunkService) rateLimit(tenantID string, lim *Limits, meta *chunk.Meta) (time.Duration, string) {
	if lim.IngestionRateMB <= 0 {
		return 0, ""
	}
	l := s.limiter(tenantID, lim)
	now := s.cfg.Now()
	n := int(min(meta.RawBytes, math.MaxInt32))
	res := l.ReserveN(now, n)
	if !res.OK() {
		return -1, fmt.Sprintf("chunk of %d line bytes is larger than the ingestion burst of %d bytes of tenant %s; cut smaller chunks or raise ingestion_burst_size_mb", n, l.Burst(), tenantID)
	}
	delay := res.DelayFrom(now)
	if delay <= 0 {
		return 0, ""
	}
	res.CancelAt(now)
	return delay, fmt.Sprintf("ingestion rate limit exceeded for tenant %s (limit: %d bytes/sec)", tenantID, int64(l.Limit()))
}

func (s *ChunkService) limiter(tenantID string, lim *Limits) *rate.Limiter {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.limiters[tenantID]
	if l == nil {
		perSec := lim.IngestionRateMB * (1 << 20)
		burst := max(lim.IngestionBurstSizeMB*(1<<20), perSec)
		l = rate.NewLimiter(rate.Limit(perSec), int(min(burst, math.MaxInt32)))
		s.limiters[tenantID] = l
	}
	return l
}

func (s *ChunkService) tenantMetrics(id string) *chunkTenantMetrics {
	s.mu.Lock()
	defer s.mu.Unlock()
	tm := s.tenants[id]
	if tm == nil {
		set := s.cfg.Metrics
		c := func(format string) *metrics.Counter {
			return set.GetOrCreateCounter(fmt.Sprintf(format, id))
		}
		tm = &chunkTenantMetrics{
			stored:    c(`logsift_ingest_chunks_total{tenant=%q,status="stored"}`),
			duplicate: c(`logsift_ingest_chunks_total{tenant=%q,status="duplicate"}`),
			rejected:  c(`logsift_ingest_chunks_total{tenant=%q,status="rejected"}`),
			retry:     c(`logsift_ingest_chunks_total{tenant=%q,status="retry"}`),
			bytes:     c(`logsift_ingest_chunk_bytes_total{tenant=%q}`),
			lines:     c(`logsift_ingest_chunk_lines_total{tenant=%q}`),
		}
		s.tenants[id] = tm
	}
	return tm
}

// logf logs at most a few messages per second: a broken agent resending a
// bad chunk in a loop must not flood the log.
func (s *ChunkService) logf(ctx context.Context, level slog.Level, msg string, args ...any) {
	if !s.log.Enabled(ctx, level) || !s.logSample.Allow() {
		return
	}
	s.log.Log(ctx, level, msg, args...)
}
