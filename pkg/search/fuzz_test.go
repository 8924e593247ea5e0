package search

import (
	"errors"
	"net/http/httptest"
	"testing"
	"time"
)

// FuzzRequest feeds any query string to the parameter parser: it must
// answer with a request or a *RequestError, never panic, and what it
// accepts has a known direction and no negative limit. (Run checks the
// range and the limits against the tenant's.)
func FuzzRequest(f *testing.F) {
	for _, s := range []string{
		"query=%7Bjob%3D%22x%22%7D&start=1700000000&end=1700003600&limit=10&direction=forward",
		"start=1700000000.123456&end=2023-11-14T22:13:20.5Z",
		"since=1h30m&limit=-1",
		"since=1e400&end=99999999999999999999",
		"start=-9223372036854775808&end=NaN.5",
		"direction=BACKWARD&limit=2147483648",
		"start=%zz",
	} {
		f.Add(s)
	}
	h := &HTTP{Service: &Service{Now: func() time.Time { return time.Unix(1700000000, 0) }}}
	f.Fuzz(func(t *testing.T, q string) {
		r := httptest.NewRequest("GET", "/api/v1/search/stream", nil)
		r.URL.RawQuery = q
		if err := r.ParseForm(); err != nil {
			return
		}
		req, err := h.request(r)
		if err != nil {
			var re *RequestError
			if !errors.As(err, &re) {
				t.Fatalf("%q: %T %v is not a request error", q, err, err)
			}
			return
		}
		if req.Limit < 0 || (req.Direction != 0 && req.Direction != 1) {
			t.Fatalf("%q: accepted %+v", q, req)
		}
	})
}
