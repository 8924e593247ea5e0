package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/logsift/logsift/pkg/tenant"
)

// Scope is what a token may do.
type Scope string

// The scopes. Admin includes the other two: an operator's token that can
// manage tokens and flush the store could mint itself a push token anyway.
const (
	ScopePush  Scope = "push"  // write logs: Loki push, agent chunks
	ScopeQuery Scope = "query" // read logs: the Loki query API, tail
	ScopeAdmin Scope = "admin" // manage tokens, flush, delete workspaces, pprof
)

// scopeSet is a set of scopes as bits, so a per-request check is one AND.
type scopeSet uint8

const (
	bitPush scopeSet = 1 << iota
	bitQuery
	bitAdmin
)

func (s Scope) bit() scopeSet {
	switch s {
	case ScopePush:
		return bitPush
	case ScopeQuery:
		return bitQuery
	case ScopeAdmin:
		return bitAdmin
	}
	return 0
}

func makeScopeSet(scopes []Scope) scopeSet {
	var s scopeSet
	for _, sc := range scopes {
		s |= sc.bit()
	}
	if s&bitAdmin != 0 {
		s |= bitPush | bitQuery
	}
	return s
}

func (s scopeSet) has(sc Scope) bool { return s&sc.bit() == sc.bit() && sc.bit() != 0 }

// ParseScopes reads a comma-separated scope list such as "push,query".
func ParseScopes(list string) ([]Scope, error) {
	var out []Scope
	for _, f := range strings.Split(list, ",") {
		f = strings.ToLower(strings.TrimSpace(f))
		if f == "" {
			continue
		}
		sc := Scope(f)
		if sc.bit() == 0 {
			return nil, fmt.Errorf("unknown scope %q: use push, query or admin", f)
		}
		if !slices.Contains(out, sc) {
			out = append(out, sc)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no scope given: use push, query, admin or a comma-separated list of them")
	}
	return out, nil
}

// Token is a stored API token. The secret itself is never stored: only its
// SHA-256 digest, which is enough to recognise it and useless to present.
type Token struct {
	ID     string  `json:"id"`
	Name   string  `json:"name,omitempty"`
	Tenant string  `json:"tenant"`
	Scopes []Scope `json:"scopes"`
	// AllowedTenants are further tenants the token may name in
	// X-Scope-OrgID (for an operator's or a shared Grafana's token).
	AllowedTenants []string  `json:"allowed_tenants,omitempty"`
	SHA256         string    `json:"sha256"`
	Created        time.Time `json:"created"`
	// LastUsed is kept to within about an hour (LastUsedResolution): the
	// server does not rewrite the file on every request.
	LastUsed time.Time `json:"last_used,omitzero"`
	Revoked  time.Time `json:"revoked,omitzero"`
}

// Active reports whether the token is usable.
func (t *Token) Active() bool { return t.Revoked.IsZero() }

// MayActFor reports whether the token may act for tenant id.
func (t *Token) MayActFor(id string) bool {
	return id == t.Tenant || slices.Contains(t.AllowedTenants, id)
}

// TokenSpec is what a new token is made of.
type TokenSpec struct {
	Name           string   `json:"name,omitempty"`
	Tenant         string   `json:"tenant"`
	Scopes         []Scope  `json:"scopes"`
	AllowedTenants []string `json:"allowed_tenants,omitempty"`
}

// Validate reports what is wrong with the spec.
func (s *TokenSpec) Validate() error {
	if err := tenant.Validate(s.Tenant); err != nil {
		return fmt.Errorf("token tenant: %w", err)
	}
	if len(s.Scopes) == 0 {
		return errors.New("a token needs at least one scope: push, query or admin")
	}
	for _, sc := range s.Scopes {
		if sc.bit() == 0 {
			return fmt.Errorf("unknown scope %q: use push, query or admin", sc)
		}
	}
	for _, id := range s.AllowedTenants {
		if err := tenant.Validate(id); err != nil {
			return fmt.Errorf("allowed tenant: %w", err)
		}
	}
	if len(s.Name) > 200 {
		return fmt.Errorf("token name is %d bytes long, the limit is 200", len(s.Name))
	}
	for _, r := range s.Name {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("token name %q has a control character", s.Name)
		}
	}
	return nil
}

// SecretPrefix starts every token, so that secret scanners and people can
// tell a logsift token from other strings.
const SecretPrefix = "lsk_"

// secretChars is base62: no characters that URL, header or shell quoting
// would mangle.
const secretChars = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// secretLen is the number of base62 characters after the prefix: 43 of
// them carry 43*log2(62) = 256 bits, as much as 32 random bytes.
const secretLen = 43

// SecretLength is the length of a whole token string.
const SecretLength = len(SecretPrefix) + secretLen

// newSecret returns a fresh token string.
func newSecret() (string, error) {
	b := make([]byte, 0, SecretLength)
	b = append(b, SecretPrefix...)
	var buf [64]byte
	for len(b) < SecretLength {
		if _, err := rand.Read(buf[:]); err != nil {
			return "", fmt.Errorf("read random bytes: %w", err)
		}
		for _, c := range buf {
			// 248 = 4*62: rejecting bytes at or above it keeps every
			// character equally likely.
			if c < 248 && len(b) < SecretLength {
				b = append(b, secretChars[c%62])
			}
		}
	}
	return string(b), nil
}

// wellFormed reports whether s looks like a token, so that garbage is
// refused before it is hashed.
func wellFormed(s string) bool {
	if len(s) != SecretLength || !strings.HasPrefix(s, SecretPrefix) {
		return false
	}
	for i := len(SecretPrefix); i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z') {
			return false
		}
	}
	return true
}

// digest is the stored form of a token. SHA-256, not a password hash such
// as argon2id: a token holds 256 random bits, so no dictionary or
// brute-force attack on a leaked digest can succeed however fast the hash
// is, and a fast hash lets every request be checked by one map lookup
// instead of a deliberately slow computation per stored token.
func digest(secret string) [sha256.Size]byte {
	return sha256.Sum256([]byte(secret))
}

// newID returns a short random token ID for listing and revoking.
func newID() (string, error) {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("read random bytes: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}
