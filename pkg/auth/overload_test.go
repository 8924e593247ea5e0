package auth

import (
	"context"
	"runtime"
	"sync"
	"testing"
	"time"
)

func TestBreakerOpensAndRecovers(t *testing.T) {
	cfg := BreakerConfig{Window: 30 * time.Second, MinFailures: 3, FailureRatio: 0.5, Cooldown: 10 * time.Second}
	bs := &breakers{cfg: cfg}
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := 0; i < 10; i++ {
		bs.record("a", now, outcomeSuccess, false)
	}
	if len(bs.m) != 0 {
		t.Fatal("a tenant whose queries succeed got a breaker")
	}
	opened := false
	for i := 0; i < 3; i++ {
		if ok, _, _ := bs.allow("a", now); !ok {
			t.Fatalf("refused before opening (query %d)", i)
		}
		opened = bs.record("a", now, outcomeFailure, false)
	}
	if !opened {
		t.Fatal("three failures in a row did not open the breaker")
	}
	if ok, _, retry := bs.allow("a", now.Add(time.Second)); ok || retry != 9*time.Second {
		t.Fatalf("open breaker: ok=%v retry=%v", ok, retry)
	}
	if ok, _, _ := bs.allow("b", now); !ok {
		t.Fatal("another tenant's breaker opened too")
	}
	// After the cool-down exactly one probe runs.
	later := now.Add(11 * time.Second)
	ok, probe, _ := bs.allow("a", later)
	if !ok || !probe {
		t.Fatalf("after cool-down: ok=%v probe=%v", ok, probe)
	}
	if ok, _, _ := bs.allow("a", later); ok {
		t.Fatal("a second query ran beside the probe")
	}
	// A failed probe opens it again, a successful one closes it.
	bs.record("a", later, outcomeFailure, true)
	if ok, _, _ := bs.allow("a", later.Add(time.Second)); ok {
		t.Fatal("failed probe left the breaker closed")
	}
	later = later.Add(11 * time.Second)
	if ok, probe, _ := bs.allow("a", later); !ok || !probe {
		t.Fatal("no probe after the second cool-down")
	}
	bs.record("a", later, outcomeSuccess, true)
	for i := 0; i < 5; i++ {
		if ok, _, _ := bs.allow("a", later); !ok {
			t.Fatal("breaker still refusing after a successful probe")
		}
	}
	if bs.open() != 0 {
		t.Fatalf("%d breakers open", bs.open())
	}
}

func TestBreakerRatio(t *testing.T) {
	cfg := BreakerConfig{Window: time.Minute, MinFailures: 3, FailureRatio: 0.5, Cooldown: time.Second}
	b := &breaker{}
	now := time.Unix(1000, 0)
	b.windowStart = now
	// Failures spread among many successes do not open it.
	for i := 0; i < 30; i++ {
		o := outcomeSuccess
		if i%5 == 0 {
			o = outcomeFailure
		}
		if b.record(now, o, false, &cfg) {
			t.Fatalf("opened at query %d with a 20%% failure rate", i)
		}
	}
	// Canceled requests say nothing.
	for i := 0; i < 50; i++ {
		b.record(now, outcomeNeutral, false, &cfg)
	}
	if b.state != breakerClosed {
		t.Fatal("cancellations opened the breaker")
	}
	// A new window starts clean.
	now = now.Add(2 * time.Minute)
	b.record(now, outcomeFailure, false, &cfg)
	b.record(now, outcomeFailure, false, &cfg)
	if !b.record(now, outcomeFailure, false, &cfg) {
		t.Fatal("three failures out of three did not open it")
	}
}

func TestOutcomeOf(t *testing.T) {
	for code, want := range map[int]outcome{200: outcomeSuccess, 204: outcomeSuccess, 400: outcomeSuccess, 429: outcomeSuccess,
		499: outcomeNeutral, 500: outcomeFailure, 503: outcomeFailure, 504: outcomeFailure} {
		if got := outcomeOf(code); got != want {
			t.Errorf("outcomeOf(%d) = %d, want %d", code, got, want)
		}
	}
}

func TestTenantSlots(t *testing.T) {
	var ts tenantSlots
	ctx := context.Background()
	r1, why, _, _ := ts.acquire(ctx, "a", 2, 1, time.Hour)
	r2, _, _, _ := ts.acquire(ctx, "a", 2, 1, time.Hour)
	if r1 == nil || r2 == nil || why != slotOK {
		t.Fatal("could not take two of two slots")
	}
	// A third waits; a fourth finds the queue full.
	got := make(chan func(), 1)
	go func() {
		r, _, _, _ := ts.acquire(ctx, "a", 2, 1, time.Hour)
		got <- r
	}()
	waitFor(t, func() bool {
		ts.mu.Lock()
		defer ts.mu.Unlock()
		return ts.tenants["a"].waiting == 1
	})
	r4, why, running, waiting := ts.acquire(ctx, "a", 2, 1, time.Hour)
	if r4 != nil || why != slotQueueFull || running != 2 || waiting != 1 {
		t.Fatalf("fourth: release=%v why=%v running=%d waiting=%d", r4 != nil, why, running, waiting)
	}
	// Another tenant is not affected.
	rb, _, _, _ := ts.acquire(ctx, "b", 2, 1, time.Hour)
	if rb == nil {
		t.Fatal("tenant b refused while a is full")
	}
	rb()
	r1()
	r3 := <-got
	if r3 == nil {
		t.Fatal("the waiter did not get the freed slot")
	}
	r1() // a second release of the same slot is a no-op
	r2()
	r3()
	if n := ts.tracked(); n != 0 {
		t.Fatalf("%d tenants still tracked with nothing running", n)
	}
	// A canceled waiter gives up.
	ra, _, _, _ := ts.acquire(ctx, "c", 1, 5, time.Hour)
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if r, why, _, _ := ts.acquire(cctx, "c", 1, 5, time.Hour); r != nil || why != slotCanceled {
		t.Fatalf("canceled waiter: %v %v", r != nil, why)
	}
	// A waiter whose time runs out gives up.
	if r, why, _, _ := ts.acquire(ctx, "c", 1, 5, time.Millisecond); r != nil || why != slotTimeout {
		t.Fatalf("timed-out waiter: %v %v", r != nil, why)
	}
	ra()
	if n := ts.tracked(); n != 0 {
		t.Fatalf("%d tenants still tracked", n)
	}
}

func TestTenantSlotsConcurrent(t *testing.T) {
	var ts tenantSlots
	var mu sync.Mutex
	running, peak := 0, 0
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, _, _, _ := ts.acquire(context.Background(), "a", 3, 100, time.Hour)
			if r == nil {
				t.Error("refused with a queue large enough for everyone")
				return
			}
			mu.Lock()
			running++
			peak = max(peak, running)
			mu.Unlock()
			mu.Lock()
			running--
			mu.Unlock()
			r()
		}()
	}
	wg.Wait()
	if peak > 3 {
		t.Fatalf("%d ran at once with 3 slots", peak)
	}
	if ts.tracked() != 0 {
		t.Fatal("slots leaked")
	}
}

func TestHeapGauge(t *testing.T) {
	g := newHeapGauge()
	runtime.GC() // the live heap is known from the first collection on
	if v := g.readRuntime(); v == 0 {
		t.Fatal("the runtime reports no live heap")
	}
	calls := 0
	g.read = func() uint64 { calls++; return uint64(calls) }
	now := time.Unix(100, 0)
	if g.get(now) != 1 || g.get(now.Add(heapSampleEvery/2)) != 1 {
		t.Fatal("sampled more often than heapSampleEvery")
	}
	if g.get(now.Add(heapSampleEvery)) != 2 {
		t.Fatal("did not sample again after heapSampleEvery")
	}
}

// waitFor polls cond: the state it waits for is reached by another
// goroutine, with no timing assumed beyond the test's own deadline.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 10s")
		}
		time.Sleep(time.Millisecond)
	}
}
