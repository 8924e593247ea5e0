package auth

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Client manages tokens through a running server's TokenAPI, with an
// admin token.
type Client struct {
	// URL is the server's base URL, e.g. http://localhost:3100.
	URL string
	// Token is an admin token.
	Token string
	// HTTP is the client to use; nil means one with a 30 s timeout.
	HTTP *http.Client
}

// Create makes a token; the answer's Token field holds the secret.
func (c *Client) Create(ctx context.Context, spec TokenSpec) (TokenView, error) {
	body, err := json.Marshal(spec)
	if err != nil {
		return TokenView{}, err
	}
	var v TokenView
	err = c.do(ctx, http.MethodPost, "/api/v1/tokens", body, http.StatusCreated, &v)
	return v, err
}

// List returns every token.
func (c *Client) List(ctx context.Context) ([]TokenView, error) {
	var out struct {
		Tokens []TokenView `json:"tokens"`
	}
	err := c.do(ctx, http.MethodGet, "/api/v1/tokens", nil, http.StatusOK, &out)
	return out.Tokens, err
}

// Revoke revokes a token by ID or unique name.
func (c *Client) Revoke(ctx context.Context, idOrName string) (TokenView, error) {
	var v TokenView
	err := c.do(ctx, http.MethodDelete, "/api/v1/tokens/"+url.PathEscape(idOrName), nil, http.StatusOK, &v)
	return v, err
}

func (c *Client) do(ctx context.Context, method, path string, body []byte, want int, out any) error {
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.URL, "/")+path, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("token API: %w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("token API: %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("token API: read answer: %w", err)
	}
	if resp.StatusCode != want {
		return fmt.Errorf("token API: %s %s: %s: %s", method, path, resp.Status, strings.TrimSpace(string(data)))
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("token API: decode answer: %w", err)
	}
	return nil
}
