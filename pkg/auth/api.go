package auth

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// TokenView is a token as the admin API and the CLI show it: everything
// but the digest.
type TokenView struct {
	ID             string    `json:"id"`
	Name           string    `json:"name,omitempty"`
	Tenant         string    `json:"tenant"`
	Scopes         []Scope   `json:"scopes"`
	AllowedTenants []string  `json:"allowed_tenants,omitempty"`
	Created        time.Time `json:"created"`
	LastUsed       time.Time `json:"last_used,omitzero"`
	Revoked        time.Time `json:"revoked,omitzero"`
	// Token is the secret, present only in the answer to a create.
	Token string `json:"token,omitempty"`
}

// View returns the token without its digest.
func (t *Token) View() TokenView {
	return TokenView{ID: t.ID, Name: t.Name, Tenant: t.Tenant, Scopes: t.Scopes, AllowedTenants: t.AllowedTenants,
		Created: t.Created, LastUsed: t.LastUsed, Revoked: t.Revoked}
}

// TokenAPI serves token management over HTTP, for `logsift token` against
// a running server:
//
//	GET    /api/v1/tokens        {"tokens": [TokenView...]}
//	POST   /api/v1/tokens        TokenSpec -> 201 TokenView with "token"
//	DELETE /api/v1/tokens/{id}   revoke -> TokenView
//
// The Guard admits only admin tokens to these paths; the API checks again,
// so that mounting it without the Guard exposes nothing.
type TokenAPI struct {
	Tokens *TokenFile
}

// Register mounts the API on mux.
func (a *TokenAPI) Register(mux *http.ServeMux) {
	mux.HandleFunc("/api/v1/tokens", a.collection)
	mux.HandleFunc("/api/v1/tokens/{id}", a.item)
}

const maxSpecBytes = 64 << 10

func (a *TokenAPI) allowed(w http.ResponseWriter, r *http.Request) bool {
	p, ok := PrincipalFromContext(r.Context())
	if !ok || !p.Has(ScopeAdmin) {
		http.Error(w, "forbidden: managing tokens needs an admin token", http.StatusForbidden)
		return false
	}
	if a.Tokens == nil {
		http.Error(w, "this server has no tokens file", http.StatusNotFound)
		return false
	}
	return true
}

func (a *TokenAPI) collection(w http.ResponseWriter, r *http.Request) {
	if !a.allowed(w, r) {
		return
	}
	switch r.Method {
	case http.MethodGet:
		list := a.Tokens.List()
		out := make([]TokenView, len(list))
		for i := range list {
			out[i] = list[i].View()
		}
		writeJSON(w, http.StatusOK, map[string]any{"tokens": out})
	case http.MethodPost:
		var spec TokenSpec
		dec := json.NewDecoder(io.LimitReader(r.Body, maxSpecBytes))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&spec); err != nil {
			http.Error(w, "invalid token request: "+err.Error(), http.StatusBadRequest)
			return
		}
		if err := spec.Validate(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		secret, tok, err := a.Tokens.Create(spec)
		if err != nil {
			http.Error(w, fmt.Sprintf("create token: %v", err), http.StatusInternalServerError)
			return
		}
		v := tok.View()
		v.Token = secret
		writeJSON(w, http.StatusCreated, v)
	default:
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, "use GET to list tokens or POST to create one", http.StatusMethodNotAllowed)
	}
}

func (a *TokenAPI) item(w http.ResponseWriter, r *http.Request) {
	if !a.allowed(w, r) {
		return
	}
	if r.Method != http.MethodDelete {
		w.Header().Set("Allow", "DELETE")
		http.Error(w, "use DELETE to revoke a token", http.StatusMethodNotAllowed)
		return
	}
	tok, err := a.Tokens.Revoke(r.PathValue("id"))
	switch {
	case errors.Is(err, ErrNotFound):
		http.Error(w, err.Error(), http.StatusNotFound)
	case errors.Is(err, ErrAmbiguous):
		http.Error(w, err.Error(), http.StatusConflict)
	case err != nil:
		http.Error(w, fmt.Sprintf("revoke token: %v", err), http.StatusInternalServerError)
	default:
		writeJSON(w, http.StatusOK, tok.View())
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
