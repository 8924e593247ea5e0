package main

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestProbe(t *testing.T) {
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ready\n")) }))
	defer ok.Close()
	if err := probe(ok.URL, time.Second); err != nil {
		t.Errorf("a 200 answer: %v", err)
	}
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "starting", http.StatusServiceUnavailable) }))
	defer bad.Close()
	if err := probe(bad.URL, time.Second); err == nil {
		t.Error("a 503 answer passed")
	}
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { time.Sleep(500 * time.Millisecond) }))
	defer slow.Close()
	if err := probe(slow.URL, 50*time.Millisecond); err == nil {
		t.Error("an answer after the timeout passed")
	}
	if err := probe("http://127.0.0.1:1/ready", time.Second); err == nil {
		t.Error("a refused connection passed")
	}
}
