package auth

import (
	"bytes"
	"encoding/hex"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/logsift/logsift/pkg/tenant"
)

func TestNewSecret(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 200; i++ {
		s, err := newSecret()
		if err != nil {
			t.Fatal(err)
		}
		if !wellFormed(s) {
			t.Fatalf("%q is not well formed", s)
		}
		if seen[s] {
			t.Fatalf("secret %q repeated", s)
		}
		seen[s] = true
	}
	for _, bad := range []string{"", "lsk_", "lsk_abc", "xxx_" + strings.Repeat("a", secretLen), SecretPrefix + strings.Repeat("a", secretLen-1) + "-"} {
		if wellFormed(bad) {
			t.Errorf("%q accepted as well formed", bad)
		}
	}
}

func TestParseScopes(t *testing.T) {
	got, err := ParseScopes(" Push, query,push ")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0] != ScopePush || got[1] != ScopeQuery {
		t.Fatalf("got %v", got)
	}
	for _, bad := range []string{"", ",", "read", "push,write"} {
		if _, err := ParseScopes(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	s := makeScopeSet([]Scope{ScopeAdmin})
	if !s.has(ScopePush) || !s.has(ScopeQuery) || !s.has(ScopeAdmin) {
		t.Fatal("admin does not include push and query")
	}
	s = makeScopeSet([]Scope{ScopePush})
	if s.has(ScopeQuery) || s.has(ScopeAdmin) || !s.has(ScopePush) || s.has(Scope("bogus")) {
		t.Fatalf("push-only set wrong: %b", s)
	}
}

func TestSpecValidate(t *testing.T) {
	ok := TokenSpec{Tenant: "team-a", Scopes: []Scope{ScopeQuery}, AllowedTenants: []string{"team-b"}, Name: "grafana"}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	bad := []TokenSpec{
		{Tenant: "", Scopes: []Scope{ScopeQuery}},
		{Tenant: "a|b", Scopes: []Scope{ScopeQuery}},
		{Tenant: "a"},
		{Tenant: "a", Scopes: []Scope{"write"}},
		{Tenant: "a", Scopes: []Scope{ScopeQuery}, AllowedTenants: []string{".."}},
		{Tenant: "a", Scopes: []Scope{ScopeQuery}, Name: "x\ny"},
	}
	for _, s := range bad {
		if err := s.Validate(); err == nil {
			t.Errorf("%+v accepted", s)
		}
	}
}

func openTestFile(t *testing.T, path string, now func() time.Time) *TokenFile {
	t.Helper()
	f, err := OpenTokenFile(path, TokenFileOptions{CheckInterval: time.Hour, Now: now, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func TestTokenFileCreateLookupRevoke(t *testing.T) {
	path := filepath.Join(t.TempDir(), "meta", "tokens.json")
	f := openTestFile(t, path, nil)
	if all, _ := f.Count(); all != 0 {
		t.Fatalf("new store has %d tokens", all)
	}
	secret, tok, err := f.Create(TokenSpec{Name: "promtail", Tenant: "team-a", Scopes: []Scope{ScopePush}})
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(data, []byte(secret)) {
		t.Fatal("the tokens file holds the secret itself")
	}
	d := digest(secret)
	if !bytes.Contains(data, []byte(hex.EncodeToString(d[:]))) {
		t.Fatal("the tokens file lacks the digest")
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("tokens file mode %v, want 0600", fi.Mode().Perm())
	}
	lt, ok := f.lookup(secret)
	if !ok || lt.ID != tok.ID || lt.Tenant != "team-a" || !lt.scopes.has(ScopePush) {
		t.Fatalf("lookup = %+v, %v", lt, ok)
	}
	// Change the last character to another one (a secret may end in "x"
	// already, one time in 62, and replacing it with "x" then changed
	// nothing: it failed a CI run).
	other := "x"
	if strings.HasSuffix(secret, other) {
		other = "y"
	}
	if _, ok := f.lookup(secret[:len(secret)-1] + other); ok {
		t.Fatal("a different secret was accepted")
	}

	// Another process (the CLI) revokes it; this one notices.
	cli := openTestFile(t, path, nil)
	if _, err := cli.Revoke(tok.ID); err != nil {
		t.Fatal(err)
	}
	if err := f.Reload(); err != nil {
		t.Fatal(err)
	}
	if _, ok := f.lookup(secret); ok {
		t.Fatal("revoked token still accepted after reload")
	}
	if all, active := f.Count(); all != 1 || active != 0 {
		t.Fatalf("count = %d, %d; want 1, 0", all, active)
	}
	if _, err := cli.Revoke("nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("revoke unknown: %v", err)
	}
	list := f.List()
	if len(list) != 1 || list[0].Revoked.IsZero() {
		t.Fatalf("list = %+v", list)
	}
}

// A running server picks up tokens another process adds, within the
// check interval and without a restart.
func TestTokenFileReloadsOnChange(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.json")
	var now atomic.Int64
	now.Store(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	server, err := OpenTokenFile(path, TokenFileOptions{Now: func() time.Time { return time.Unix(0, now.Load()) }, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	cli := openTestFile(t, path, nil)
	secret, _, err := cli.Create(TokenSpec{Tenant: "t", Scopes: []Scope{ScopeQuery}})
	if err != nil {
		t.Fatal(err)
	}
	now.Add(int64(2 * DefaultCheckInterval))
	if _, ok := server.lookup(secret); !ok {
		t.Fatal("token created by another process not picked up")
	}
}

func TestTokenFileRevokeByName(t *testing.T) {
	f := openTestFile(t, filepath.Join(t.TempDir(), "tokens.json"), nil)
	for _, n := range []string{"a", "b", "b"} {
		if _, _, err := f.Create(TokenSpec{Name: n, Tenant: "t", Scopes: []Scope{ScopeQuery}}); err != nil {
			t.Fatal(err)
		}
	}
	if tok, err := f.Revoke("a"); err != nil || tok.Name != "a" || tok.Revoked.IsZero() {
		t.Fatalf("revoke by name: %+v %v", tok, err)
	}
	if _, err := f.Revoke("b"); !errors.Is(err, ErrAmbiguous) {
		t.Fatalf("ambiguous name: %v", err)
	}
}

func TestTokenFileBrokenKeepsTokens(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.json")
	f := openTestFile(t, path, nil)
	secret, _, err := f.Create(TokenSpec{Tenant: "t", Scopes: []Scope{ScopeQuery}})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(`{"version":1,"tokens":[{"id":`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := f.Reload(); err == nil {
		t.Fatal("broken file reloaded without error")
	}
	if _, ok := f.lookup(secret); !ok {
		t.Fatal("a broken file dropped the loaded tokens")
	}
	// A fresh process refuses to start on it rather than run open.
	if _, err := OpenTokenFile(path, TokenFileOptions{}); err == nil {
		t.Fatal("opening a broken tokens file succeeded")
	}
}

func TestTokenFileLastUsed(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.json")
	var now atomic.Int64
	now.Store(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	clock := func() time.Time { return time.Unix(0, now.Load()) }
	f := openTestFile(t, path, clock)
	secret, tok, err := f.Create(TokenSpec{Tenant: "t", Scopes: []Scope{ScopeQuery}})
	if err != nil {
		t.Fatal(err)
	}
	now.Add(int64(2 * time.Hour))
	if _, ok := f.lookup(secret); !ok {
		t.Fatal("lookup failed")
	}
	f.Close() // waits for the background write
	other := openTestFile(t, path, nil)
	got := other.List()
	if len(got) != 1 || got[0].ID != tok.ID || !got[0].LastUsed.Equal(clock()) {
		t.Fatalf("stored last use = %+v, want %v", got, clock())
	}
}

func TestDecodeDocRejects(t *testing.T) {
	tok := `{"id":"abc","tenant":"t","scopes":["query"],"sha256":"` + strings.Repeat("ab", 32) + `","created":"2025-01-01T00:00:00Z"}`
	good := `{"version":1,"tokens":[` + tok + `]}`
	if _, err := decodeDoc([]byte(good)); err != nil {
		t.Fatal(err)
	}
	bad := map[string]string{
		"version":      `{"version":2,"tokens":[]}`,
		"unknown":      `{"version":1,"tokens":[],"extra":1}`,
		"short digest": strings.Replace(good, strings.Repeat("ab", 32), "abcd", 1),
		"bad hex":      strings.Replace(good, strings.Repeat("ab", 32), strings.Repeat("zz", 32), 1),
		"tenant":       strings.Replace(good, `"tenant":"t"`, `"tenant":"a|b"`, 1),
		"scope":        strings.Replace(good, `["query"]`, `["root"]`, 1),
		"no id":        strings.Replace(good, `"id":"abc"`, `"id":""`, 1),
		"dup id":       `{"version":1,"tokens":[` + tok + `,` + tok + `]}`,
	}
	for name, in := range bad {
		if _, err := decodeDoc([]byte(in)); err == nil {
			t.Errorf("%s: accepted %s", name, in)
		}
	}
}

func FuzzDecodeTokensFile(f *testing.F) {
	f.Add([]byte(`{"version":1,"tokens":[{"id":"abc","tenant":"t","scopes":["query","admin"],"allowed_tenants":["u"],"sha256":"` + strings.Repeat("0f", 32) + `","created":"2025-01-01T00:00:00Z","revoked":"2025-02-01T00:00:00Z"}]}`))
	f.Add([]byte(`{"version":1,"tokens":[]}`))
	f.Add([]byte(""))
	f.Add([]byte(`{"version":1,"tokens":[{"id":"x","tenant":"..","scopes":[]}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		doc, err := decodeDoc(data)
		if err != nil {
			return
		}
		// Whatever decodes is usable: valid tenants, scopes and digests.
		for i := range doc.Tokens {
			tok := &doc.Tokens[i]
			if _, err := parseDigest(tok.SHA256); err != nil {
				t.Fatalf("accepted token with bad digest: %v", err)
			}
			spec := TokenSpec{Name: tok.Name, Tenant: tok.Tenant, Scopes: tok.Scopes, AllowedTenants: tok.AllowedTenants}
			if err := spec.Validate(); err != nil {
				t.Fatalf("accepted invalid token: %v", err)
			}
		}
	})
}

// Whatever X-Scope-OrgID a token's request sends, it may only ever act
// for the token's tenant and its allowed tenants.
func FuzzResolveOrgID(f *testing.F) {
	f.Add("", true)
	f.Add("team-a", false)
	f.Add("team-b|team-a", true)
	f.Add("team-a|team-c", true)
	f.Add("a/b", false)
	f.Fuzz(func(t *testing.T, header string, multi bool) {
		p := &Principal{TokenID: "t", Tenant: "team-a", allowed: []string{"team-b"}}
		org, err := p.resolveOrgID(header, multi)
		if err != nil {
			var re *requestError
			if !errors.As(err, &re) || (re.code != 400 && re.code != 403) {
				t.Fatalf("error %v is not a 400 or 403", err)
			}
			return
		}
		ids, err := tenant.ParseQueryIDs(org)
		if err != nil {
			t.Fatalf("resolved org ID %q is invalid: %v", org, err)
		}
		if !multi && len(ids) != 1 {
			t.Fatalf("single-tenant route resolved to %q", org)
		}
		for _, id := range ids {
			if id != "team-a" && id != "team-b" {
				t.Fatalf("header %q let the token act for %q", header, id)
			}
		}
	})
}
