package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/coder/websocket"
)

// TailRequest opens /loki/api/v1/tail.
type TailRequest struct {
	Query string
	// Start is where the backfill begins; the server sends the newest
	// Limit entries since Start first, then every new entry.
	Start time.Time
	Limit int
	// DelayFor lets the server wait for late entries, in seconds (max 5).
	DelayFor int
}

// TailConn is an open tail WebSocket.
type TailConn struct {
	conn *websocket.Conn
}

// TailMessage is one message of the tail WebSocket.
type TailMessage struct {
	Streams []Stream
	// Dropped counts entries the server could not send in time.
	Dropped int
}

// maxTailMessage bounds one WebSocket message; a backfill of 5,000 long
// lines fits.
const maxTailMessage = 256 << 20

// Tail opens the live tail WebSocket of a log query.
func (c *Client) Tail(ctx context.Context, r TailRequest) (*TailConn, error) {
	v := url.Values{"query": {r.Query}}
	if !r.Start.IsZero() {
		v.Set("start", strconv.FormatInt(r.Start.UnixNano(), 10))
	}
	if r.Limit > 0 {
		v.Set("limit", strconv.Itoa(r.Limit))
	}
	if r.DelayFor > 0 {
		v.Set("delay_for", strconv.Itoa(r.DelayFor))
	}
	u := *c.base
	switch u.Scheme {
	case "https":
		u.Scheme = "wss"
	default:
		u.Scheme = "ws"
	}
	u.Path += "/loki/api/v1/tail"
	u.RawQuery = v.Encode()
	h := http.Header{}
	c.setHeaders(h)
	h.Del("X-Loki-Response-Encoding-Flags") // tail answers merge labels either way
	dctx := ctx
	if c.timeout > 0 {
		var cancel context.CancelFunc
		dctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	conn, resp, err := websocket.Dial(dctx, u.String(), &websocket.DialOptions{HTTPClient: c.http, HTTPHeader: h})
	if err != nil {
		if resp != nil && resp.StatusCode/100 != 2 && resp.StatusCode != http.StatusSwitchingProtocols {
			return nil, &StatusError{Code: resp.StatusCode, Path: "/loki/api/v1/tail", Body: err.Error()}
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, &ConnectError{URL: c.base.String(), Err: err}
	}
	conn.SetReadLimit(maxTailMessage)
	return &TailConn{conn: conn}, nil
}

// Read waits for the next message.
func (t *TailConn) Read(ctx context.Context) (TailMessage, error) {
	typ, b, err := t.conn.Read(ctx)
	if err != nil {
		return TailMessage{}, err
	}
	if typ != websocket.MessageText {
		return TailMessage{}, fmt.Errorf("tail sent a binary message")
	}
	return DecodeTailMessage(b)
}

// Ping checks that the server still answers.
func (t *TailConn) Ping(ctx context.Context) error { return t.conn.Ping(ctx) }

// Close ends the WebSocket.
func (t *TailConn) Close() error {
	return t.conn.Close(websocket.StatusNormalClosure, "")
}

// DecodeTailMessage decodes one tail message.
func DecodeTailMessage(b []byte) (TailMessage, error) {
	s := newScanner(string(b))
	var msg TailMessage
	var dropped string
	ok := s.object(func(k string) bool {
		var ok bool
		switch fold(k) {
		case "streams":
			msg.Streams, ok = s.streams()
		case "dropped_entries":
			dropped, ok = s.span()
		default:
			ok = s.skip()
		}
		return ok
	}) && s.end()
	if !ok {
		return TailMessage{}, s.error("tail message")
	}
	if len(dropped) > 0 && dropped != "null" {
		var raw []json.RawMessage
		if err := json.Unmarshal([]byte(dropped), &raw); err != nil {
			return TailMessage{}, fmt.Errorf("decode tail message: dropped entries: %w", err)
		}
		for _, d := range raw {
			// The server reports a count in a __dropped_entries__ label;
			// Loki reports one element per dropped entry.
			var de struct {
				Labels map[string]string `json:"labels"`
			}
			n := 1
			if json.Unmarshal(d, &de) == nil {
				if v, err := strconv.Atoi(de.Labels["__dropped_entries__"]); err == nil && v > 0 {
					n = min(v, 1<<30)
				}
			}
			msg.Dropped += n
		}
	}
	return msg, nil
}
