package events

import (
	"bufio"
	"context"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// runNATS starts an embedded NATS server with JetStream on 127.0.0.1.
// port 0 picks a free port; storeDir keeps JetStream's files, so that a
// restart on the same directory finds the stream again.
func runNATS(t *testing.T, port int, storeDir string) *server.Server {
	t.Helper()
	if port == 0 {
		port = -1
	}
	opts := &server.Options{
		Host:      "127.0.0.1",
		Port:      port,
		JetStream: true,
		StoreDir:  storeDir,
		NoLog:     true,
		NoSigs:    true,
	}
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatalf("NATS server: %v", err)
	}
	s.Start()
	if !s.ReadyForConnections(20 * time.Second) {
		t.Fatal("NATS server did not become ready")
	}
	t.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	return s
}

func natsPort(t *testing.T, s *server.Server) int {
	t.Helper()
	addr, ok := s.Addr().(*net.TCPAddr)
	if !ok {
		t.Fatalf("NATS address %v", s.Addr())
	}
	return addr.Port
}

func newTestNATS(t *testing.T, url, origin string) *NATS {
	t.Helper()
	bus, err := NewNATS(NATSConfig{URL: url}, origin, nil)
	if err != nil {
		t.Fatalf("NewNATS: %v", err)
	}
	t.Cleanup(func() { bus.Close() })
	return bus
}

// publishStored publishes e and waits until JetStream has stored it,
// publishing again when the attempt was not acknowledged (failed or
// dropped: a starved test machine can miss the acknowledgement's
// deadline): tests of delivery need the event in the stream.
func publishStored(t *testing.T, bus *NATS, e *Event) {
	t.Helper()
	ctx := context.Background()
	for attempt := 1; ; attempt++ {
		before := bus.Stats().Acked
		if err := bus.Publish(ctx, e); err != nil {
			t.Fatal(err)
		}
		if err := bus.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		s := bus.Stats()
		if s.Acked > before {
			return
		}
		if attempt == 5 {
			t.Fatalf("publishing %s failed %d times: %+v", e.Type, attempt, s)
		}
	}
}

// receive waits for the next event on sub, failing the test after a
// generous deadline (a safety net, not a speed assertion).
func receive(t *testing.T, sub *Subscription) *Event {
	t.Helper()
	select {
	case e, ok := <-sub.C:
		if !ok {
			t.Fatal("subscription closed")
		}
		return e
	case <-time.After(30 * time.Second):
		t.Fatal("no event arrived")
	}
	return nil
}

func TestNATSPublishSubscribeBetweenConnections(t *testing.T) {
	srv := runNATS(t, 0, t.TempDir())
	a := newTestNATS(t, srv.ClientURL(), "proc-a")
	b := newTestNATS(t, srv.ClientURL(), "proc-b")
	ctx := context.Background()

	progress, err := b.Subscribe(ctx, ImportProgress)
	if err != nil {
		t.Fatal(err)
	}
	all, err := b.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Publish(ctx, &Event{Type: SearchRequested, Tenant: "t1", Search: &Search{QueryID: "q1", Query: `{app="x"}`}}); err != nil {
		t.Fatal(err)
	}
	if err := a.Publish(ctx, &Event{Type: ImportProgress, Tenant: "t1", Import: &Import{Workspace: "w", RunID: "r1", FilesDone: 3, Files: 10}}); err != nil {
		t.Fatal(err)
	}

	e := receive(t, progress)
	if e.Type != ImportProgress || e.Origin != "proc-a" || e.Tenant != "t1" || e.Import == nil || e.Import.FilesDone != 3 || e.Import.RunID != "r1" {
		t.Fatalf("filtered subscriber got %+v (import %+v)", e, e.Import)
	}
	if e.Time.IsZero() {
		t.Fatal("event has no time")
	}
	first, second := receive(t, all), receive(t, all)
	if first.Type != SearchRequested || first.Search == nil || first.Search.QueryID != "q1" || second.Type != ImportProgress {
		t.Fatalf("unfiltered subscriber got %s then %s; want them in publish order", first.Type, second.Type)
	}
	if err := a.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if s := a.Stats(); s.Acked != 2 || s.Failed != 0 || s.Dropped != 0 {
		t.Fatalf("publisher stats %+v", s)
	}
	progress.Close()
	if _, ok := <-progress.C; ok {
		t.Fatal("closed subscription still delivers")
	}
}

func TestNATSContextEndsSubscription(t *testing.T) {
	srv := runNATS(t, 0, t.TempDir())
	bus := newTestNATS(t, srv.ClientURL(), "p")
	ctx, cancel := context.WithCancel(context.Background())
	sub, err := bus.Subscribe(ctx, CacheHit)
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	for range sub.C {
	}
	if err := bus.Publish(context.Background(), &Event{Type: "Not A Subject", Tenant: "t"}); err == nil {
		t.Fatal("an event type that is not a subject token was published")
	}
	bus.Close()
	if err := bus.Publish(context.Background(), &Event{Type: CacheHit, Tenant: "t"}); err != ErrClosed {
		t.Fatalf("publish after close: %v, want ErrClosed", err)
	}
}

func TestNATSDurableSubscriberGetsWhatItMissed(t *testing.T) {
	srv := runNATS(t, 0, t.TempDir())
	pub := newTestNATS(t, srv.ClientURL(), "pub")
	// A short AckWait: events the closed subscription's pending pull
	// received are redelivered to its successor after it.
	subBus, err := NewNATS(NATSConfig{URL: srv.ClientURL(), AckWait: time.Second}, "sub", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer subBus.Close()
	ctx := context.Background()

	sub, err := subBus.SubscribeDurable(ctx, "audit-test", WorkspaceCreated)
	if err != nil {
		t.Fatal(err)
	}
	_ = pub.Publish(ctx, &Event{Type: WorkspaceCreated, Tenant: "t", Workspace: &Workspace{Name: "one"}})
	if e := receive(t, sub); e.Workspace.Name != "one" {
		t.Fatalf("got %+v", e.Workspace)
	}
	sub.Close()

	// Published while nobody listens under that name.
	publishStored(t, pub, &Event{Type: WorkspaceCreated, Tenant: "t", Workspace: &Workspace{Name: "two"}})
	publishStored(t, pub, &Event{Type: WorkspaceDeleted, Tenant: "t", Workspace: &Workspace{Name: "x"}})
	publishStored(t, pub, &Event{Type: WorkspaceCreated, Tenant: "t", Workspace: &Workspace{Name: "three"}})

	again, err := subBus.SubscribeDurable(ctx, "audit-test", WorkspaceCreated)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	defer func() {
		if t.Failed() {
			t.Logf("publisher %+v, subscriber %+v", pub.Stats(), subBus.Stats())
		}
	}()
	got := []string{receive(t, again).Workspace.Name, receive(t, again).Workspace.Name}
	slices.Sort(got)
	if !slices.Equal(got, []string{"three", "two"}) {
		t.Fatalf("missed events delivered: %v, want two and three", got)
	}
	if _, err := subBus.SubscribeDurable(ctx, "bad.name"); err == nil {
		t.Fatal("a durable name with a dot was accepted")
	}
}

func TestNATSReconnectsAfterServerRestart(t *testing.T) {
	storeDir := t.TempDir()
	srv := runNATS(t, 0, storeDir)
	port := natsPort(t, srv)
	url := srv.ClientURL()
	pub := newTestNATS(t, url, "pub")
	subBus := newTestNATS(t, url, "sub")
	ctx := context.Background()
	sub, err := subBus.Subscribe(ctx, ImportCompleted)
	if err != nil {
		t.Fatal(err)
	}
	_ = pub.Publish(ctx, &Event{Type: ImportCompleted, Tenant: "t", Import: &Import{RunID: "before"}})
	if e := receive(t, sub); e.Import.RunID != "before" {
		t.Fatalf("got %+v", e.Import)
	}

	srv.Shutdown()
	srv.WaitForShutdown()
	// While the server is away publishing still returns at once.
	for i := 0; i < 10; i++ {
		if err := pub.Publish(ctx, &Event{Type: ImportProgress, Tenant: "t", Import: &Import{RunID: "during"}}); err != nil {
			t.Fatalf("publish during outage: %v", err)
		}
	}
	runNATS(t, port, storeDir)

	// Publish until one arrives: the first ones may race the reconnect.
	deadline := time.Now().Add(60 * time.Second)
	for i := 0; ; i++ {
		_ = pub.Publish(ctx, &Event{Type: ImportCompleted, Tenant: "t", Import: &Import{RunID: "after-" + strconv.Itoa(i)}})
		select {
		case e, ok := <-sub.C:
			if !ok {
				t.Fatal("subscription closed by the restart")
			}
			if !strings.HasPrefix(e.Import.RunID, "after-") {
				t.Fatalf("got %+v", e.Import)
			}
			// The client runs its reconnect callback (which counts) on a
			// goroutine of its own, so an event can arrive before it ran.
			for pub.Stats().Reconnects == 0 || subBus.Stats().Reconnects == 0 {
				if time.Now().After(deadline) {
					t.Fatalf("no reconnect counted: pub %+v sub %+v", pub.Stats(), subBus.Stats())
				}
				time.Sleep(5 * time.Millisecond)
			}
			return
		case <-time.After(500 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("no event after the NATS restart; publisher %+v subscriber %+v", pub.Stats(), subBus.Stats())
		}
	}
}

func TestNATSPublishDropsInsteadOfBlockingWhenNATSIsAway(t *testing.T) {
	srv := runNATS(t, 0, t.TempDir())
	bus, err := NewNATS(NATSConfig{URL: srv.ClientURL(), PublishBuffer: 8}, "p", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer bus.Close()
	srv.Shutdown()
	srv.WaitForShutdown()
	for i := 0; i < 5000; i++ {
		if err := bus.Publish(context.Background(), &Event{Type: SearchRequested, Tenant: "t"}); err != nil {
			t.Fatal(err)
		}
	}
	if s := bus.Stats(); s.Dropped == 0 || s.Queued+s.Dropped != 5000 {
		t.Fatalf("stats %+v: want dropped events and every event accounted for", s)
	}
}

func TestNATSConfigErrors(t *testing.T) {
	if _, err := NewNATS(NATSConfig{URL: "nats://127.0.0.1:1", SubjectPrefix: "a.*"}, "p", nil); err == nil || !strings.Contains(err.Error(), "subject_prefix") {
		t.Fatalf("wildcard prefix: %v", err)
	}
	if _, err := NewNATS(NATSConfig{URL: "nats://127.0.0.1:1", Stream: "a.b"}, "p", nil); err == nil || !strings.Contains(err.Error(), "stream") {
		t.Fatalf("bad stream name: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, err = NewNATS(NATSConfig{URL: "nats://user:secret@" + addr}, "p", nil)
	if err == nil {
		t.Fatal("connected to a closed port")
	}
	if strings.Contains(err.Error(), "secret") {
		t.Fatalf("error leaks the password: %v", err)
	}
	bus, err := Open(Config{}, "p", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := bus.(*Memory); !ok {
		t.Fatalf("Open without NATS URL gave %T, want the in-process bus", bus)
	}
	bus.Close()
}

// TestNATSEventsCrossProcesses runs two separate OS processes (the
// natspeer helper) against one NATS server: one subscribes, the other
// publishes, and the test process takes part as a third.
func TestNATSEventsCrossProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a helper binary")
	}
	srv := runNATS(t, 0, t.TempDir())
	url := srv.ClientURL()
	bin := filepath.Join(t.TempDir(), "natspeer")
	build := exec.Command("go", "build", "-o", bin, "./internal/natspeer")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build natspeer: %v\n%s", err, out)
	}

	const n = 5
	subCmd := exec.Command(bin, "-url", url, "-mode", "subscribe", "-count", strconv.Itoa(2*n), "-types", "import.progress")
	stdout, err := subCmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	subCmd.Stderr = os.Stderr
	if err := subCmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = subCmd.Process.Kill(); _ = subCmd.Wait() })
	lines := bufio.NewScanner(stdout)
	if !lines.Scan() || lines.Text() != "ready" {
		t.Fatalf("subscriber process did not get ready: %q %v", lines.Text(), lines.Err())
	}

	// This process subscribes too, then the publisher process sends n
	// events and this test process sends n more.
	local := newTestNATS(t, url, "test-process")
	ctx := context.Background()
	localSub, err := local.Subscribe(ctx, ImportProgress)
	if err != nil {
		t.Fatal(err)
	}
	pubCmd := exec.Command(bin, "-url", url, "-mode", "publish", "-count", strconv.Itoa(n), "-tenant", "t9", "-origin", "publisher-process")
	if out, err := pubCmd.CombinedOutput(); err != nil {
		t.Fatalf("publisher process: %v\n%s", err, out)
	}
	for i := 0; i < n; i++ {
		_ = local.Publish(ctx, &Event{Type: ImportProgress, Tenant: "t9", Import: &Import{Workspace: "w", RunID: "local", FilesDone: i + 1}})
		_ = local.Publish(ctx, &Event{Type: CacheMiss, Tenant: "t9", Cache: &Cache{Key: "k"}})
	}

	// The test process receives the other process's events.
	for i := 0; i < n; i++ {
		e := receive(t, localSub)
		if e.Origin != "publisher-process" || e.Tenant != "t9" || e.Import.FilesDone != i+1 {
			t.Fatalf("event %d from the publisher process: %+v %+v", i, e, e.Import)
		}
	}
	// The subscriber process receives both, in each publisher's order,
	// and no cache event.
	got := map[string][]int{}
	for i := 0; i < 2*n; i++ {
		if !lines.Scan() {
			t.Fatalf("subscriber process stopped after %d events: %v", i, lines.Err())
		}
		e, err := Unmarshal(lines.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		if e.Type != ImportProgress {
			t.Fatalf("subscriber process got %s despite its type filter", e.Type)
		}
		got[e.Origin] = append(got[e.Origin], e.Import.FilesDone)
	}
	_, _ = io.Copy(io.Discard, stdout)
	if err := subCmd.Wait(); err != nil {
		t.Fatalf("subscriber process: %v", err)
	}
	for _, origin := range []string{"publisher-process", "test-process"} {
		seq := got[origin]
		if len(seq) != n {
			t.Fatalf("subscriber process got %d events from %s, want %d (%v)", len(seq), origin, n, got)
		}
		for i, v := range seq {
			if v != i+1 {
				t.Fatalf("events from %s out of order: %v", origin, seq)
			}
		}
	}
}

// TestNATSDurableHandsBackWhatItDidNotDeliver closes a durable
// subscription whose subscriber never read: the events JetStream had
// delivered into its buffer were not acknowledged, are handed back on
// close, and the next subscriber of the name gets every one of them.
func TestNATSDurableHandsBackWhatItDidNotDeliver(t *testing.T) {
	srv := runNATS(t, 0, t.TempDir())
	pub := newTestNATS(t, srv.ClientURL(), "pub")
	subBus, err := NewNATS(NATSConfig{URL: srv.ClientURL(), AckWait: time.Minute}, "sub", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer subBus.Close()
	ctx := context.Background()
	sub, err := subBus.SubscribeDurable(ctx, "unread", WorkspaceCreated)
	if err != nil {
		t.Fatal(err)
	}
	names := []string{"a", "b", "c", "d", "e"}
	for _, n := range names {
		publishStored(t, pub, &Event{Type: WorkspaceCreated, Tenant: "t", Workspace: &Workspace{Name: n}})
	}
	cons, err := subBus.js.Consumer(ctx, subBus.cfg.Stream, "unread")
	if err != nil {
		t.Fatal(err)
	}
	// Wait until all five sit in the subscription, delivered and not
	// acknowledged (one is held by the forwarder, the rest buffered).
	deadline := time.Now().Add(30 * time.Second)
	for {
		ci, err := cons.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if ci.Delivered.Stream >= uint64(len(names)) && ci.NumAckPending == len(names) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("events not delivered unacknowledged: %+v %+v", ci.Delivered, ci.NumAckPending)
		}
		time.Sleep(10 * time.Millisecond)
	}
	sub.Close()

	// AckWait is a minute: only a hand-back brings them here in time.
	again, err := subBus.SubscribeDurable(ctx, "unread", WorkspaceCreated)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	var got []string
	for range names {
		got = append(got, receive(t, again).Workspace.Name)
	}
	slices.Sort(got)
	if !slices.Equal(got, names) {
		t.Fatalf("successor got %v, want %v", got, names)
	}
}
