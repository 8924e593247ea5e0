package ship

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/logsift/logsift/pkg/api"
)

// Output delivers spooled chunks. The outputs are GRPCOutput (logsift's
// chunk stream) and LokiOutput (Loki's push API).
type Output interface {
	run(ctx context.Context, s *Spool)
}

// GRPCOptions configure a GRPCOutput.
type GRPCOptions struct {
	// Address is the server's gRPC address, host:port.
	Address string
	// Tenant is sent as x-scope-orgid; empty sends none (the server's
	// default tenant).
	Tenant string
	// TLS enables TLS with this configuration; nil means plaintext.
	TLS *tls.Config
	// Token, when set, is sent as "authorization: Bearer <token>" metadata
	// on every call.
	Token string
	// OnRefused, when set, is called each time the server refuses the
	// credentials (Unauthenticated, PermissionDenied) with a *RefusedError.
	// The output keeps the chunks and retries either way; an import uses
	// the hook to stop with a clear message instead of retrying forever.
	OnRefused func(error)
	// MaxInflight bounds chunks sent and not yet answered; default 8.
	MaxInflight int
	// MaxChunkBytes is the largest chunk the server takes (its
	// MaxChunkBytes); larger ones are dead-lettered here. Default 16 MiB.
	MaxChunkBytes int
	// Backoff paces reconnects and resends.
	Backoff Backoff
	// DialOptions are added to the client's options.
	DialOptions []grpc.DialOption
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// GRPCOutput sends chunks over logsift.v1.ChunkService/Push: one stream,
// up to MaxInflight chunks in flight, each forgotten only when the server
// answers STORED or DUPLICATE. On a broken stream everything unanswered is
// sent again on the next one (the server recognises a chunk it already has
// by its content ID).
type GRPCOutput struct {
	opts GRPCOptions
	log  *slog.Logger
}

// NewGRPCOutput returns a gRPC output; it connects when the spool starts.
func NewGRPCOutput(opts GRPCOptions) (*GRPCOutput, error) {
	if opts.Address == "" {
		return nil, errors.New("ship: gRPC output needs an address")
	}
	if opts.MaxInflight <= 0 {
		opts.MaxInflight = 64
	}
	if opts.MaxChunkBytes <= 0 {
		opts.MaxChunkBytes = 16 << 20
	}
	opts.Backoff = opts.Backoff.withDefaults()
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &GRPCOutput{opts: opts, log: opts.Logger}, nil
}

// DialGRPC returns a client connection to opts.Address with the options'
// TLS, token and dial options; the import's run tracking uses it to reach
// the workspace service on the same server as the chunk stream.
func DialGRPC(opts GRPCOptions) (*grpc.ClientConn, error) {
	creds := insecure.NewCredentials()
	if opts.TLS != nil {
		creds = credentials.NewTLS(opts.TLS)
	}
	maxChunk := opts.MaxChunkBytes
	if maxChunk <= 0 {
		maxChunk = 16 << 20
	}
	dopts := []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(maxChunk + 64<<10)),
	}
	if opts.Token != "" {
		dopts = append(dopts, grpc.WithPerRPCCredentials(bearerCreds{token: opts.Token}))
	}
	return grpc.NewClient(opts.Address, append(dopts, opts.DialOptions...)...)
}

func (o *GRPCOutput) run(ctx context.Context, s *Spool) {
	conn, err := DialGRPC(o.opts)
	if err != nil {
		// Only a malformed target gets here; config validation catches it
		// first. Keep the chunks and say so until stopped.
		o.log.Error("gRPC output cannot be created; chunks stay in the spool", "address", o.opts.Address, "err", err)
		<-ctx.Done()
		return
	}
	defer conn.Close()
	client := api.NewChunkServiceClient(conn)
	attempt := 0
	for ctx.Err() == nil {
		progressed, err := o.session(ctx, s, client)
		if ctx.Err() != nil {
			return
		}
		if progressed {
			attempt = 0
		}
		s.m.errors.Inc()
		wait := max(o.opts.Backoff.delay(attempt), s.pausedFor())
		attempt++
		if re := RefusedFromGRPC(err, o.opts.Token != ""); re != nil {
			o.log.Error("chunk stream refused; chunks stay in the spool and are retried", "address", o.opts.Address, "err", re.Error(), "retry_in", wait.Round(time.Millisecond))
			if o.opts.OnRefused != nil {
				o.opts.OnRefused(re)
			}
		} else {
			o.log.Warn("chunk stream to the server failed; retrying", "address", o.opts.Address, "err", err, "retry_in", wait.Round(time.Millisecond))
		}
		if !sleep(ctx, wait) {
			return
		}
	}
}

// session runs one stream until it fails or ctx ends. progressed reports
// whether the server answered anything, which resets the backoff.
func (o *GRPCOutput) session(ctx context.Context, s *Spool, client api.ChunkServiceClient) (progressed bool, err error) {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if o.opts.Tenant != "" {
		sctx = metadata.AppendToOutgoingContext(sctx, "x-scope-orgid", o.opts.Tenant)
	}
	stream, err := client.Push(sctx)
	if err != nil {
		return false, fmt.Errorf("open stream: %w", err)
	}

	var mu sync.Mutex
	inflight := map[uint64]*record{}
	window := make(chan struct{}, o.opts.MaxInflight)
	sendDone := make(chan error, 1)
	go func() {
		sendDone <- o.sendLoop(sctx, s, stream, &mu, inflight, window)
	}()

	for {
		resp, rerr := stream.Recv()
		if rerr != nil {
			err = fmt.Errorf("receive: %w", rerr)
			break
		}
		mu.Lock()
		r := inflight[resp.Sequence]
		delete(inflight, resp.Sequence)
		mu.Unlock()
		if r == nil {
			o.log.Warn("server answered a chunk that was not sent on this stream", "sequence", resp.Sequence)
			continue
		}
		<-window
		progressed = true
		switch resp.Status {
		case api.ChunkStatus_CHUNK_STATUS_STORED:
			s.settle(r, false)
		case api.ChunkStatus_CHUNK_STATUS_DUPLICATE:
			s.settle(r, true)
		case api.ChunkStatus_CHUNK_STATUS_REJECTED:
			s.deadLetter(r, nil, resp.Reason)
		case api.ChunkStatus_CHUNK_STATUS_RETRY:
			after := time.Duration(resp.RetryAfterMs) * time.Millisecond
			o.log.Debug("server asked to resend a chunk later", "reason", resp.Reason, "retry_after", after)
			s.retryAfter(r, after, o.opts.Backoff)
		default:
			// An answer this agent does not understand (a newer server):
			// keep the chunk and resend it later rather than guess.
			s.retryAfter(r, 0, o.opts.Backoff)
		}
	}
	cancel()
	if serr := <-sendDone; err == nil {
		err = serr
	}
	mu.Lock()
	left := make([]*record, 0, len(inflight))
	for _, r := range inflight {
		left = append(left, r)
	}
	mu.Unlock()
	slices.SortFunc(left, func(a, b *record) int { return cmp.Compare(a.id, b.id) })
	s.requeue(left...)
	return progressed, err
}

func (o *GRPCOutput) sendLoop(ctx context.Context, s *Spool, stream api.ChunkService_PushClient,
	mu *sync.Mutex, inflight map[uint64]*record, window chan struct{}) error {
	for {
		select {
		case window <- struct{}{}:
		case <-ctx.Done():
			return nil
		}
		r, err := s.next(ctx)
		if err != nil {
			<-window
			return nil
		}
		data, err := s.read(r)
		if err != nil {
			<-window
			s.requeue(r)
			return err
		}
		if len(data) > o.opts.MaxChunkBytes {
			<-window
			s.deadLetter(r, data, fmt.Sprintf("chunk of %d bytes exceeds the output's max_chunk_bytes of %d", len(data), o.opts.MaxChunkBytes))
			continue
		}
		mu.Lock()
		inflight[r.id] = r
		mu.Unlock()
		if err := stream.Send(&api.PushChunksRequest{Sequence: r.id, Chunk: data}); err != nil {
			// The receive side sees the stream end and requeues whatever
			// is still in flight, this chunk included.
			return nil
		}
		s.m.shipped.Inc()
	}
}
