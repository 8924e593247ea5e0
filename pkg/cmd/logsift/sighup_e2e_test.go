package main

import (
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/logsift/logsift/pkg/auth"
)

// SIGHUP reloads the tokens file instead of ending the server: a token
// written into the file while the server runs works right after it.
func TestSIGHUPReloadsTokens(t *testing.T) {
	dir := t.TempDir()
	p := startServer(t, dir)
	tf, err := auth.OpenTokenFile(auth.DefaultTokensPath(dir), auth.TokenFileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	secret, _, err := tf.Create(auth.TokenSpec{Name: "reader", Tenant: "team-a", Scopes: []auth.Scope{auth.ScopeQuery}})
	tf.Close()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(p.logs.String(), "reloaded TLS certificates and tokens on SIGHUP") {
		select {
		case err := <-p.done:
			t.Fatalf("server exited on SIGHUP: %v\n%s", err, p.logs)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no reload logged within 10s\n%s", p.logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Auth switched on with the first token: the token works, a request
	// without one is refused.
	req, _ := http.NewRequest("GET", p.url+"/loki/api/v1/labels", nil)
	req.Header.Set("Authorization", "Bearer "+secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("with the new token: %d", resp.StatusCode)
	}
	resp, err = http.Get(p.url + "/loki/api/v1/labels")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("without a token after the reload: %d", resp.StatusCode)
	}
}
