package plugin

import (
	"context"
	"math/rand/v2"
	"time"
)

// waitBackoff waits a jittered backoff (between half and one and a half
// times backoff, so that plugins that lost the server together do not
// come back together) and reports false if ctx ended first.
func waitBackoff(ctx context.Context, backoff time.Duration) bool {
	wait := backoff/2 + time.Duration(rand.Int64N(int64(backoff)))
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
