package main

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

// TestTargets checks the requests of both modes: the dashboard's panels
// in turn; in fixed mode the same range every time, ending an hour ago on
// a step; in relative mode ending now.
func TestTargets(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 34, 56, 0, time.UTC)
	o := options{addr: "http://127.0.0.1:3100", mode: "fixed", rng: 6 * time.Hour, step: time.Minute}
	fixed := targets(o, now)
	for i := range 2 * len(dashboard) {
		u, err := url.Parse(fixed(i))
		if err != nil {
			t.Fatal(err)
		}
		q := u.Query()
		end := now.Add(-time.Hour).Truncate(time.Minute)
		if u.Path != "/loki/api/v1/query_range" || q.Get("query") != dashboard[i%len(dashboard)] ||
			q.Get("end") != strconv.FormatInt(end.UnixNano(), 10) ||
			q.Get("start") != strconv.FormatInt(end.Add(-6*time.Hour).UnixNano(), 10) || q.Get("step") != "1m0s" {
			t.Fatalf("request %d: %s", i, u)
		}
	}
	o.mode = "relative"
	before := time.Now()
	u, _ := url.Parse(targets(o, now)(0))
	end, _ := strconv.ParseInt(u.Query().Get("end"), 10, 64)
	if end < before.UnixNano() || end > time.Now().UnixNano() {
		t.Fatalf("relative mode ends at %d, not now", end)
	}
}

func TestCheckLoopback(t *testing.T) {
	for addr, ok := range map[string]bool{
		"http://127.0.0.1:3100": true,
		"http://127.8.9.1:3100": true,
		"http://[::1]:3100":     true,
		"http://localhost:3100": true,
		"http://10.0.0.1:3100":  false,
		"http://example.com":    false,
		"http://0.0.0.0:3100":   false,
	} {
		if err := checkLoopback(addr); (err == nil) != ok {
			t.Errorf("%s: %v", addr, err)
		}
	}
}

// TestLoad runs the generator for a moment against a server that counts
// what it receives: every completed request is measured once, with the
// query parameters a dashboard sends, and the load stops on time.
func TestLoad(t *testing.T) {
	var got atomic.Int64
	var bad atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if r.URL.Path != "/loki/api/v1/query_range" || q.Get("query") == "" || q.Get("start") == "" || q.Get("end") == "" || q.Get("step") != "1m0s" {
			bad.Add(1)
		}
		if !slices.Contains(dashboard, q.Get("query")) {
			bad.Add(1)
		}
		got.Add(1)
		_, _ = w.Write([]byte(`{"status":"success","data":{"resultType":"matrix","result":[]}}`))
	}))
	defer srv.Close()
	o := options{addr: srv.URL, mode: "fixed", rng: time.Hour, step: time.Minute, concurrency: 4}
	client := srv.Client()
	start := time.Now()
	res, err := load(client, o, targets(o, time.Now()), 300*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("a 300ms load ran %s", d)
	}
	if len(res.lat) == 0 || int64(len(res.lat)) > got.Load() || res.errs != 0 || res.status[200] != int64(len(res.lat)) {
		t.Fatalf("%d measured, %d served, %d errors, statuses %v", len(res.lat), got.Load(), res.errs, res.status)
	}
	if bad.Load() != 0 {
		t.Fatalf("%d malformed requests", bad.Load())
	}
}
