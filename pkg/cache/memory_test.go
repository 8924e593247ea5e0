package cache

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"
)

func TestMemoryGetSetDelete(t *testing.T) {
	m, err := NewMemory(MemoryConfig{MaxBytes: 1 << 20, Name: "test-basic"})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ctx := context.Background()
	if _, ok := m.Get(ctx, "a"); ok {
		t.Fatal("hit in an empty cache")
	}
	m.Set(ctx, "a", []byte("one"), time.Hour)
	m.Set(ctx, "b", []byte("two"), time.Hour)
	if v, ok := m.Get(ctx, "a"); !ok || string(v) != "one" {
		t.Fatalf("Get(a) = %q, %v", v, ok)
	}
	out := make([]Hit, 3)
	m.GetMulti(ctx, []string{"b", "zz", "a"}, out)
	if string(out[0].Value) != "two" || out[0].Level != L1 || out[1].Level != Miss || string(out[2].Value) != "one" {
		t.Fatalf("GetMulti = %+v", out)
	}
	m.Delete(ctx, "a")
	if _, ok := m.Get(ctx, "a"); ok {
		t.Fatal("hit after Delete")
	}
	m.Set(ctx, "c", []byte("x"), 0)
	if _, ok := m.Get(ctx, "c"); ok {
		t.Fatal("a zero TTL must not be stored")
	}
}

// TestMemoryBoundedByBytes writes far more than the bound and checks that
// the weight stays within it and recent values survive intact.
func TestMemoryBoundedByBytes(t *testing.T) {
	const limit = 1 << 20
	m, err := NewMemory(MemoryConfig{MaxBytes: limit, Name: "test-bound"})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ctx := context.Background()
	val := bytes.Repeat([]byte("v"), 1<<10)
	for i := range 20000 { // ~20 MiB through a 1 MiB cache
		m.Set(ctx, fmt.Sprintf("key-%d", i), val, time.Hour)
		// A hot key, read all along, should survive the churn.
		m.Get(ctx, "hot")
		if i == 0 {
			m.Set(ctx, "hot", []byte("hot value"), time.Hour)
		}
	}
	if b := m.Bytes(); b > limit || b == 0 {
		t.Fatalf("holds %d bytes, bound %d", b, limit)
	}
	if n := m.Len(); n > 1000 || n < 500 {
		t.Fatalf("holds %d entries; 1 KiB entries in 1 MiB should be about 900", n)
	}
	if v, ok := m.Get(ctx, "hot"); !ok || string(v) != "hot value" {
		t.Fatalf("the frequently read key was evicted (%q, %v)", v, ok)
	}
	// A value above a sixteenth of the bound is not kept at all.
	m.Set(ctx, "huge", make([]byte, limit/8), time.Hour)
	if _, ok := m.Get(ctx, "huge"); ok {
		t.Fatal("an oversized value was stored")
	}
}
