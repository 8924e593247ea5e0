package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Config is the events section of the server configuration:
//
//	events:
//	  nats:
//	    url: nats://127.0.0.1:4222
//
// With no NATS URL the server uses the in-process bus.
type Config struct {
	NATS NATSConfig `yaml:"nats"`
	// Journal bounds the recent events each server keeps for event stream
	// clients that reconnect (Last-Event-ID, see docs/events.md).
	Journal JournalConfig `yaml:"journal"`
}

// JournalConfig bounds the event journal; 0 takes the default.
type JournalConfig struct {
	// MaxEvents is how many events the journal keeps (default 10000).
	MaxEvents int `yaml:"max_events"`
	// MaxBytes bounds their size in memory (default 16 MiB).
	MaxBytes int64 `yaml:"max_bytes"`
}

// NATSConfig configures the NATS JetStream bus.
type NATSConfig struct {
	// URL of the NATS server(s), comma-separated; empty disables NATS.
	URL string `yaml:"url"`
	// Stream is the JetStream stream that keeps the events (default
	// LOGSIFT_EVENTS). It is created, or updated, on connect.
	Stream string `yaml:"stream"`
	// SubjectPrefix is prepended to the event type to form the subject
	// (default "logsift.events": logsift.events.import.progress).
	SubjectPrefix string `yaml:"subject_prefix"`
	// MaxAge bounds how long the stream keeps events (default 24h).
	MaxAge time.Duration `yaml:"max_age"`
	// MaxBytes bounds the stream's size; the oldest events go first
	// (default 256 MiB).
	MaxBytes int64 `yaml:"max_bytes"`
	// Replicas of the stream in a NATS cluster (default 1).
	Replicas int `yaml:"replicas"`
	// CredsFile is a NATS credentials file (JWT and NKey), if the server
	// wants one. Plain user:password or a token can go into URL.
	CredsFile string `yaml:"creds_file"`
	// PublishBuffer is how many events wait to be sent while NATS is slow
	// or away; past it events are dropped and counted (default 8192).
	PublishBuffer int `yaml:"publish_buffer"`
	// PublishTimeout is how long an event waits for JetStream's
	// acknowledgement before it counts as failed (default 5s).
	PublishTimeout time.Duration `yaml:"publish_timeout"`
	// AckWait is how long a durable subscriber's event waits for its
	// acknowledgement before JetStream delivers it again (default 30s).
	// Events in flight to a durable subscriber that stopped come back to
	// its successor after this long.
	AckWait time.Duration `yaml:"ack_wait"`
}

func (c *NATSConfig) setDefaults() {
	if c.Stream == "" {
		c.Stream = "LOGSIFT_EVENTS"
	}
	if c.SubjectPrefix == "" {
		c.SubjectPrefix = "logsift.events"
	}
	c.SubjectPrefix = strings.TrimSuffix(c.SubjectPrefix, ".")
	if c.MaxAge <= 0 {
		c.MaxAge = 24 * time.Hour
	}
	if c.MaxBytes <= 0 {
		c.MaxBytes = 256 << 20
	}
	if c.Replicas <= 0 {
		c.Replicas = 1
	}
	if c.PublishBuffer <= 0 {
		c.PublishBuffer = 8192
	}
	if c.PublishTimeout <= 0 {
		c.PublishTimeout = 5 * time.Second
	}
	if c.AckWait <= 0 {
		c.AckWait = 30 * time.Second
	}
}

// ErrClosed is returned by a bus that has been closed.
var ErrClosed = errors.New("event bus is closed")

// Open returns the configured bus: NATS JetStream when cfg.NATS.URL is set,
// the in-process bus otherwise. origin tags the events this process
// publishes (DefaultOrigin is a good value).
func Open(cfg Config, origin string, log *slog.Logger) (Bus, error) {
	if cfg.NATS.URL == "" {
		return NewMemory(origin), nil
	}
	return NewNATS(cfg.NATS, origin, log)
}

// NATS is the Bus on NATS JetStream, for several server processes that
// share events. Every event is one message on subject
// <prefix>.<type>, stored in one stream; subscribers read it through
// consumers of their own, so each process sees every event, its own
// included (Origin tells them apart).
//
// Publish never waits for NATS: events go into a bounded queue that one
// goroutine sends asynchronously. When NATS is slow or unreachable the
// queue fills and further events are dropped and counted, so that a query
// or an import never stalls on the event bus. The client reconnects for
// ever; consumers resume after the last event they saw.
type NATS struct {
	cfg    NATSConfig
	origin string
	log    *slog.Logger
	nc     *nats.Conn
	js     jetstream.JetStream

	queue      chan *nats.Msg
	senderDone chan struct{}

	mu     sync.RWMutex
	closed bool
	subs   map[*natsSub]struct{}

	stats natsStats
}

type natsStats struct {
	queued, acked, dropped, failed, decodeErrors, reconnects atomic.Int64
	lastLog                                                  atomic.Int64
}

// NATSStats are the bus's counters since it was opened.
type NATSStats struct {
	// Queued events were accepted by Publish; Acked ones were stored by
	// JetStream. Dropped found the queue full, Failed were refused or
	// timed out. DecodeErrors are messages on the stream that are not
	// events. Reconnects counts reconnections to NATS.
	Queued, Acked, Dropped, Failed, DecodeErrors, Reconnects int64
}

var (
	natsQueuedTotal     = metrics.NewCounter(`logsift_events_nats_published_total{result="queued"}`)
	natsAckedTotal      = metrics.NewCounter(`logsift_events_nats_published_total{result="acked"}`)
	natsDroppedTotal    = metrics.NewCounter(`logsift_events_nats_published_total{result="dropped"}`)
	natsFailedTotal     = metrics.NewCounter(`logsift_events_nats_published_total{result="failed"}`)
	natsDecodeErrors    = metrics.NewCounter(`logsift_events_nats_decode_errors_total`)
	natsReconnectsTotal = metrics.NewCounter(`logsift_events_nats_reconnects_total`)
)

// NewNATS connects to NATS and makes sure the stream exists. It fails when
// the server cannot be reached now, so that a wrong URL is found at start;
// later outages are ridden out by reconnecting.
func NewNATS(cfg NATSConfig, origin string, log *slog.Logger) (*NATS, error) {
	cfg.setDefaults()
	if log == nil {
		log = slog.Default()
	}
	if !validSubjectPrefix(cfg.SubjectPrefix) {
		return nil, fmt.Errorf("events.nats.subject_prefix %q: use dot-separated tokens without spaces or wildcards", cfg.SubjectPrefix)
	}
	if !validNATSName(cfg.Stream) {
		return nil, fmt.Errorf("events.nats.stream %q: use letters, digits, '-' and '_'", cfg.Stream)
	}
	n := &NATS{
		cfg:        cfg,
		origin:     origin,
		log:        log.With("component", "events", "bus", "nats"),
		queue:      make(chan *nats.Msg, cfg.PublishBuffer),
		senderDone: make(chan struct{}),
		subs:       map[*natsSub]struct{}{},
	}
	opts := []nats.Option{
		nats.Name("logsift " + origin),
		nats.Timeout(5 * time.Second),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.ReconnectJitter(250*time.Millisecond, time.Second),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				n.log.Warn("disconnected from NATS; reconnecting", "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			n.stats.reconnects.Add(1)
			natsReconnectsTotal.Inc()
			n.log.Info("reconnected to NATS", "url", nc.ConnectedUrlRedacted())
			// A NATS server that lost its state (memory storage, a new
			// node) no longer has the stream: publishes would find no
			// responder until it is back.
			go func() {
				if err := n.ensureStream(); err != nil {
					n.log.Warn("recreate the event stream after reconnecting", "err", err)
				}
			}()
		}),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			n.log.Warn("NATS error", "err", err)
		}),
	}
	if cfg.CredsFile != "" {
		opts = append(opts, nats.UserCredentials(cfg.CredsFile))
	}
	nc, err := nats.Connect(cfg.URL, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to NATS at %s: %w", redactURL(cfg.URL), err)
	}
	n.nc = nc
	js, err := jetstream.New(nc,
		jetstream.WithPublishAsyncMaxPending(1024),
		jetstream.WithPublishAsyncTimeout(cfg.PublishTimeout),
		jetstream.WithPublishAsyncAckHandler(func(jetstream.JetStream, *nats.Msg, *jetstream.PubAck) {
			n.stats.acked.Add(1)
			natsAckedTotal.Inc()
		}),
		jetstream.WithPublishAsyncErrHandler(func(_ jetstream.JetStream, _ *nats.Msg, err error) {
			n.publishFailed(err)
		}),
	)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("JetStream: %w", err)
	}
	n.js = js
	if err := n.ensureStream(); err != nil {
		nc.Close()
		return nil, err
	}
	go n.send()
	return n, nil
}

func (n *NATS) ensureStream() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := n.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        n.cfg.Stream,
		Description: "logsift domain events",
		Subjects:    []string{n.cfg.SubjectPrefix + ".>"},
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		MaxAge:      n.cfg.MaxAge,
		MaxBytes:    n.cfg.MaxBytes,
		Storage:     jetstream.FileStorage,
		Replicas:    n.cfg.Replicas,
	})
	if err != nil {
		return fmt.Errorf("create or update JetStream stream %s: %w", n.cfg.Stream, err)
	}
	return nil
}

// Subject is the NATS subject of events of type t.
func (n *NATS) Subject(t Type) string { return n.cfg.SubjectPrefix + "." + string(t) }

// Publish queues e for sending and returns at once. A full queue drops the
// event (counted in Stats and logsift_events_nats_published_total); only
// an invalid event or a closed bus is an error.
func (n *NATS) Publish(_ context.Context, e *Event) error {
	if !validTypeName(e.Type) {
		return fmt.Errorf("publish event: invalid type %q", e.Type)
	}
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	if e.Origin == "" {
		e.Origin = n.origin
	}
	b, err := e.Marshal()
	if err != nil {
		return fmt.Errorf("publish event %s: %w", e.Type, err)
	}
	msg := &nats.Msg{Subject: n.Subject(e.Type), Data: b}
	n.mu.RLock()
	defer n.mu.RUnlock()
	if n.closed {
		return ErrClosed
	}
	select {
	case n.queue <- msg:
		n.stats.queued.Add(1)
		natsQueuedTotal.Inc()
	default:
		n.stats.dropped.Add(1)
		natsDroppedTotal.Inc()
		n.logRarely("event queue full; dropping events until NATS catches up", "queue", cap(n.queue))
	}
	return nil
}

// send is the one goroutine that talks to JetStream for publishers. While
// too many acknowledgements are outstanding PublishMsgAsync waits briefly
// and fails; that wait happens here, never in Publish.
func (n *NATS) send() {
	defer close(n.senderDone)
	for msg := range n.queue {
		if _, err := n.js.PublishMsgAsync(msg); err != nil {
			n.publishFailed(err)
		}
	}
}

func (n *NATS) publishFailed(err error) {
	n.stats.failed.Add(1)
	natsFailedTotal.Inc()
	n.logRarely("publish event to NATS", "err", err)
}

// logRarely keeps a NATS outage from flooding the log: one line per 10s.
func (n *NATS) logRarely(msg string, args ...any) {
	now := time.Now().UnixNano()
	last := n.stats.lastLog.Load()
	if now-last < int64(10*time.Second) || !n.stats.lastLog.CompareAndSwap(last, now) {
		return
	}
	n.log.Warn(msg, args...)
}

// Stats returns the bus's counters.
func (n *NATS) Stats() NATSStats {
	return NATSStats{
		Queued: n.stats.queued.Load(), Acked: n.stats.acked.Load(), Dropped: n.stats.dropped.Load(),
		Failed: n.stats.failed.Load(), DecodeErrors: n.stats.decodeErrors.Load(), Reconnects: n.stats.reconnects.Load(),
	}
}

// Flush waits until every queued event has been acknowledged by JetStream
// or has failed, or ctx ends.
func (n *NATS) Flush(ctx context.Context) error {
	for {
		s := n.Stats()
		if s.Acked+s.Failed >= s.Queued {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("flush events: %d still unacknowledged: %w", s.Queued-s.Acked-s.Failed, ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// Subscribe implements Bus with an ordered consumer: ephemeral, starting
// with the events published after it was created, and recreated by the
// client after a reconnect from the last event it delivered.
func (n *NATS) Subscribe(ctx context.Context, types ...Type) (*Subscription, error) {
	subjects, err := n.subjects(types)
	if err != nil {
		return nil, err
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cons, err := n.js.OrderedConsumer(cctx, n.cfg.Stream, jetstream.OrderedConsumerConfig{
		FilterSubjects: subjects,
		DeliverPolicy:  jetstream.DeliverNewPolicy,
	})
	if err != nil {
		return nil, fmt.Errorf("subscribe to events: %w", err)
	}
	s := newNATSSub(false)
	return n.consume(ctx, cons, s)
}

// SubscribeDurable is Subscribe through a durable consumer named name:
// events published while the subscriber is away wait in the stream (up to
// its limits) and are delivered when a subscriber of that name comes back.
// An event is acknowledged once the subscriber has taken it from the
// channel; those still buffered when the subscription closes are handed
// back, so a slow subscriber slows its own delivery and a closing one
// loses nothing. The first subscription of a name starts with the events
// published after it. Events in flight to a previous subscriber of the
// name when it stopped arrive after AckWait, possibly after newer ones.
func (n *NATS) SubscribeDurable(ctx context.Context, name string, types ...Type) (*Subscription, error) {
	if !validNATSName(name) {
		return nil, fmt.Errorf("durable subscriber name %q: use letters, digits, '-' and '_'", name)
	}
	subjects, err := n.subjects(types)
	if err != nil {
		return nil, err
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cons, err := n.js.CreateOrUpdateConsumer(cctx, n.cfg.Stream, jetstream.ConsumerConfig{
		Durable:        name,
		FilterSubjects: subjects,
		DeliverPolicy:  jetstream.DeliverNewPolicy,
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        n.cfg.AckWait,
		MaxAckPending:  1024,
	})
	if err != nil {
		return nil, fmt.Errorf("durable subscription %s: %w", name, err)
	}
	return n.consume(ctx, cons, newNATSSub(true))
}

func (n *NATS) subjects(types []Type) ([]string, error) {
	if len(types) == 0 {
		return []string{n.cfg.SubjectPrefix + ".>"}, nil
	}
	out := make([]string, 0, len(types))
	for _, t := range types {
		if !validTypeName(t) {
			return nil, fmt.Errorf("subscribe: invalid event type %q", t)
		}
		s := n.Subject(t)
		if !contains(out, s) {
			out = append(out, s)
		}
	}
	return out, nil
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// pullExpiry is how long one pull request waits on the server. A closed
// durable subscription's last pull stays on the server until it expires,
// and events sent to it come back only after AckWait, possibly to the
// same stale pull again: a short expiry lets a successor of the name get
// them within seconds.
const pullExpiry = 2 * time.Second

func (n *NATS) consume(ctx context.Context, cons jetstream.Consumer, s *natsSub) (*Subscription, error) {
	cc, err := cons.Consume(func(msg jetstream.Msg) {
		e, err := Unmarshal(msg.Data())
		if err != nil {
			n.stats.decodeErrors.Add(1)
			natsDecodeErrors.Inc()
			n.logRarely("undecodable message on the event stream", "subject", msg.Subject(), "err", err)
			if s.durable {
				_ = msg.Term()
			}
			return
		}
		if !s.durable {
			s.offer(natsItem{e: e})
			return
		}
		if !s.offer(natsItem{e: e, msg: msg}) {
			// Closing: hand it back at once rather than after AckWait.
			_ = msg.Nak()
		}
	}, jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
		n.log.Debug("event consumer", "err", err)
	}), jetstream.PullExpiry(pullExpiry))
	if err != nil {
		return nil, fmt.Errorf("consume events: %w", err)
	}
	s.cc = cc
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		s.close()
		return nil, ErrClosed
	}
	n.subs[s] = struct{}{}
	n.mu.Unlock()
	closeFn := func() {
		n.mu.Lock()
		delete(n.subs, s)
		n.mu.Unlock()
		s.close()
	}
	go func() {
		select {
		case <-ctx.Done():
			closeFn()
		case <-s.done:
		}
	}()
	return &Subscription{C: s.out, Dropped: s.dropped.Load, Close: closeFn}, nil
}

// Close stops the subscriptions, sends what is queued (for a few seconds
// at most) and disconnects.
func (n *NATS) Close() error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	close(n.queue)
	subs := n.subs
	n.subs = map[*natsSub]struct{}{}
	n.mu.Unlock()
	for s := range subs {
		s.close()
	}
	// Waiting only helps while connected: during an outage what is queued
	// would wait for a reconnect that Close is about to give up.
	wait := 5 * time.Second
	if !n.nc.IsConnected() {
		wait = 0
	}
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	select {
	case <-n.senderDone:
		select {
		case <-n.js.PublishAsyncComplete():
		case <-deadline.C:
		}
	case <-deadline.C:
	}
	// Closing the connection also makes a sender still waiting on a stalled
	// publish fail fast, so the goroutine ends.
	n.nc.Close()
	<-n.senderDone
	return nil
}

// natsSub hands events from the consumer's callback to the subscriber.
// Only the forwarding goroutine writes to out, so it alone may close it,
// whatever the callback is doing at that moment.
type natsSub struct {
	durable bool
	in      chan natsItem
	out     chan *Event
	done    chan struct{}
	once    sync.Once
	dropped atomic.Int64
	cc      jetstream.ConsumeContext
}

func newNATSSub(durable bool) *natsSub {
	s := &natsSub{durable: durable, in: make(chan natsItem, 1024), out: make(chan *Event), done: make(chan struct{})}
	go s.forward()
	return s
}

// natsItem is an event on its way to a subscriber, with the message to
// acknowledge once it is taken (durable subscriptions only).
type natsItem struct {
	e   *Event
	msg jetstream.Msg
}

// offer reports whether it was accepted. An ephemeral subscription drops
// what does not fit; a durable one waits, so that JetStream redelivers
// rather than loses. A closed subscription accepts nothing: the consumer
// can still call back after close, and its buffer always has room, so
// done is checked first.
func (s *natsSub) offer(it natsItem) bool {
	select {
	case <-s.done:
		return false
	default:
	}
	if s.durable {
		select {
		case s.in <- it:
			return true
		case <-s.done:
			return false
		}
	}
	select {
	case s.in <- it:
		return true
	case <-s.done:
		return false
	default:
		s.dropped.Add(1)
		return false
	}
}

// forward hands buffered events to the subscriber, acknowledging each
// durable one when it is taken. On close it hands back what is still
// buffered; an event offered in the instant of closing stays
// unacknowledged and comes back after AckWait.
func (s *natsSub) forward() {
	defer close(s.out)
	for {
		select {
		case it := <-s.in:
			select {
			case s.out <- it.e:
				if it.msg != nil {
					_ = it.msg.Ack()
				}
			case <-s.done:
				s.handBack(it)
				return
			}
		case <-s.done:
			s.handBack(natsItem{})
			return
		}
	}
}

// handBack returns it and every buffered event to JetStream at once.
func (s *natsSub) handBack(it natsItem) {
	for {
		if it.msg != nil {
			_ = it.msg.Nak()
		}
		select {
		case it = <-s.in:
		default:
			return
		}
	}
}

func (s *natsSub) close() {
	s.once.Do(func() {
		if s.cc != nil {
			s.cc.Stop()
		}
		close(s.done)
	})
}

// validSubjectPrefix accepts dot-separated tokens without wildcards or
// white space.
func validSubjectPrefix(p string) bool {
	if p == "" {
		return false
	}
	for _, tok := range strings.Split(p, ".") {
		if tok == "" || strings.ContainsAny(tok, "*> \t\r\n") {
			return false
		}
	}
	return true
}

func validNATSName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// redactURL hides credentials in a NATS URL list for error messages.
func redactURL(u string) string {
	parts := strings.Split(u, ",")
	for i, p := range parts {
		if at := strings.LastIndex(p, "@"); at >= 0 {
			scheme := ""
			if k := strings.Index(p, "://"); k >= 0 && k < at {
				scheme = p[:k+3]
			}
			parts[i] = scheme + "***@" + p[at+1:]
		}
	}
	return strings.Join(parts, ",")
}
