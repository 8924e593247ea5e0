package cache

import (
	"bytes"
	"testing"
)

func TestValueFraming(t *testing.T) {
	for _, v := range [][]byte{
		{},
		[]byte("short"),
		bytes.Repeat([]byte("compressible "), 1000),
		func() []byte { // incompressible: stays raw
			b := make([]byte, 4096)
			x := uint32(1)
			for i := range b {
				x ^= x << 13
				x ^= x >> 17
				x ^= x << 5
				b[i] = byte(x)
			}
			return b
		}(),
	} {
		enc := encodeValue(v, 1024)
		if len(v) >= 1024 && bytes.Count(v, []byte("compressible")) > 0 && enc[0] != frameS2 {
			t.Fatalf("a compressible %d-byte value was not compressed", len(v))
		}
		got, err := decodeValue(enc)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, v) {
			t.Fatalf("round trip of %d bytes changed the value", len(v))
		}
	}
	for _, bad := range [][]byte{nil, {7}, {frameS2, 0xff, 0xff, 0xff, 0xff, 0x0f}} {
		if _, err := decodeValue(bad); err == nil {
			t.Fatalf("decodeValue(%x) accepted garbage", bad)
		}
	}
}

func FuzzDecodeValue(f *testing.F) {
	f.Add([]byte{frameRaw, 'a', 'b'})
	f.Add(encodeValue(bytes.Repeat([]byte("abc"), 1000), 16))
	f.Add([]byte{frameS2, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := decodeValue(b)
		if err != nil {
			return
		}
		if len(v) > MaxValueSize {
			t.Fatalf("decoded %d bytes, above the limit", len(v))
		}
		// What decodes re-encodes to something that decodes the same.
		again, err := decodeValue(encodeValue(v, 64))
		if err != nil || !bytes.Equal(again, v) {
			t.Fatalf("re-encoding changed the value: %v", err)
		}
	})
}
