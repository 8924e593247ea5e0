package auth

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/logsift/logsift/pkg/tenant"
)

// DefaultTokensPath is where the tokens of a data directory live.
func DefaultTokensPath(dataDir string) string {
	return filepath.Join(dataDir, "meta", "tokens.json")
}

// fileVersion is the format version of the tokens file.
const fileVersion = 1

// maxFileBytes bounds the tokens file that is read: a million tokens fit
// in far less, and a runaway file must not take the server's memory.
const maxFileBytes = 64 << 20

// DefaultLastUsedResolution is how stale a token's stored last use may get
// before the server writes it back.
const DefaultLastUsedResolution = time.Hour

// DefaultCheckInterval is how often the server looks at the tokens file
// for changes (one stat call); a new or revoked token takes effect within
// it.
const DefaultCheckInterval = time.Second

// fileDoc is the tokens file. JSON, not a database: there are few tokens,
// people may want to read the file, and the CLI and a running server can
// both change it safely with an advisory lock plus an atomic rename, where
// an embedded database would be held open exclusively by the server.
type fileDoc struct {
	Version int     `json:"version"`
	Tokens  []Token `json:"tokens"`
}

// TokenFileOptions configures OpenTokenFile; zero values are defaults.
type TokenFileOptions struct {
	// CheckInterval: DefaultCheckInterval when 0.
	CheckInterval time.Duration
	// LastUsedResolution: DefaultLastUsedResolution when 0; negative
	// never writes last use back (for read-only data directories).
	LastUsedResolution time.Duration
	Logger             *slog.Logger
	Now                func() time.Time
}

// TokenFile is the token store: a JSON file of token records that is read
// into memory and reread when it changes on disk, so that tokens created
// or revoked by the CLI reach a running server within CheckInterval.
// Lookups take no lock.
type TokenFile struct {
	path string
	opts TokenFileOptions
	log  *slog.Logger

	set       atomic.Pointer[tokenSet]
	lastCheck atomic.Int64 // unix ns of the last stat
	reloadMu  sync.Mutex

	persisting atomic.Bool
	persistWG  sync.WaitGroup
}

// tokenSet is one loaded version of the file.
type tokenSet struct {
	info     os.FileInfo // nil when the file does not exist
	tokens   []*liveToken
	byDigest map[[sha256.Size]byte]*liveToken
	active   int
}

// liveToken is a token as the server uses it.
type liveToken struct {
	Token
	scopes   scopeSet
	lastUsed atomic.Int64 // unix ns, in memory
}

// OpenTokenFile reads the tokens file at path; a missing file is an empty
// store (which is how open mode starts).
func OpenTokenFile(path string, opts TokenFileOptions) (*TokenFile, error) {
	if opts.CheckInterval == 0 {
		opts.CheckInterval = DefaultCheckInterval
	}
	if opts.LastUsedResolution == 0 {
		opts.LastUsedResolution = DefaultLastUsedResolution
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	f := &TokenFile{path: path, opts: opts, log: opts.Logger}
	set, err := f.load(nil)
	if err != nil {
		return nil, err
	}
	f.set.Store(set)
	f.lastCheck.Store(opts.Now().UnixNano())
	return f, nil
}

// Path is the file's path.
func (f *TokenFile) Path() string { return f.path }

// Close waits for a last-use write in progress.
func (f *TokenFile) Close() error {
	f.persistWG.Wait()
	return nil
}

// load reads the file. prev, when set, lends its in-memory last uses to
// the tokens that survive.
func (f *TokenFile) load(prev *tokenSet) (*tokenSet, error) {
	doc, info, err := readDoc(f.path)
	if err != nil {
		return nil, err
	}
	set := &tokenSet{info: info, byDigest: make(map[[sha256.Size]byte]*liveToken, len(doc.Tokens))}
	old := map[string]*liveToken{}
	if prev != nil {
		for _, t := range prev.tokens {
			old[t.ID] = t
		}
	}
	for i := range doc.Tokens {
		t := &liveToken{Token: doc.Tokens[i], scopes: makeScopeSet(doc.Tokens[i].Scopes)}
		d, err := parseDigest(t.SHA256)
		if err != nil {
			return nil, fmt.Errorf("tokens file %s: token %s: %w", f.path, t.ID, err)
		}
		if _, dup := set.byDigest[d]; dup {
			return nil, fmt.Errorf("tokens file %s: token %s has the digest of another token", f.path, t.ID)
		}
		lu := t.LastUsed.UnixNano()
		if t.LastUsed.IsZero() {
			lu = 0
		}
		if o := old[t.ID]; o != nil {
			lu = max(lu, o.lastUsed.Load())
		}
		t.lastUsed.Store(lu)
		set.tokens = append(set.tokens, t)
		set.byDigest[d] = t
		if t.Active() {
			set.active++
		}
	}
	return set, nil
}

// readDoc reads and checks the file; a missing file is an empty document.
func readDoc(path string) (*fileDoc, os.FileInfo, error) {
	fh, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return &fileDoc{Version: fileVersion}, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("open tokens file: %w", err)
	}
	defer fh.Close()
	info, err := fh.Stat()
	if err != nil {
		return nil, nil, fmt.Errorf("stat tokens file: %w", err)
	}
	data, err := io.ReadAll(io.LimitReader(fh, maxFileBytes+1))
	if err != nil {
		return nil, nil, fmt.Errorf("read tokens file %s: %w", path, err)
	}
	doc, err := decodeDoc(data)
	if err != nil {
		return nil, nil, fmt.Errorf("tokens file %s: %w", path, err)
	}
	return doc, info, nil
}

// decodeDoc parses and validates the file's contents.
func decodeDoc(data []byte) (*fileDoc, error) {
	if len(data) > maxFileBytes {
		return nil, fmt.Errorf("larger than %d bytes", maxFileBytes)
	}
	doc := &fileDoc{}
	if len(bytes.TrimSpace(data)) == 0 {
		doc.Version = fileVersion
		return doc, nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(doc); err != nil {
		return nil, fmt.Errorf("not a valid tokens file: %w", err)
	}
	if doc.Version != fileVersion {
		return nil, fmt.Errorf("format version %d is not supported (this build reads version %d)", doc.Version, fileVersion)
	}
	ids := make(map[string]bool, len(doc.Tokens))
	for i := range doc.Tokens {
		t := &doc.Tokens[i]
		if t.ID == "" || len(t.ID) > 64 {
			return nil, fmt.Errorf("token %d has an invalid id %q", i, t.ID)
		}
		if ids[t.ID] {
			return nil, fmt.Errorf("token id %s appears twice", t.ID)
		}
		ids[t.ID] = true
		spec := TokenSpec{Name: t.Name, Tenant: t.Tenant, Scopes: t.Scopes, AllowedTenants: t.AllowedTenants}
		if err := spec.Validate(); err != nil {
			return nil, fmt.Errorf("token %s: %w", t.ID, err)
		}
		if _, err := parseDigest(t.SHA256); err != nil {
			return nil, fmt.Errorf("token %s: %w", t.ID, err)
		}
	}
	return doc, nil
}

func parseDigest(s string) ([sha256.Size]byte, error) {
	var d [sha256.Size]byte
	if len(s) != 2*sha256.Size {
		return d, fmt.Errorf("sha256 must be %d hex digits, not %d characters", 2*sha256.Size, len(s))
	}
	if _, err := hex.Decode(d[:], []byte(s)); err != nil {
		return d, fmt.Errorf("sha256: %w", err)
	}
	return d, nil
}

// current returns the loaded set, rereading the file first when it may
// have changed and CheckInterval has passed since the last look.
func (f *TokenFile) current() *tokenSet {
	now := f.opts.Now().UnixNano()
	last := f.lastCheck.Load()
	if now-last < int64(f.opts.CheckInterval) || !f.lastCheck.CompareAndSwap(last, now) {
		return f.set.Load()
	}
	f.reloadIfChanged()
	return f.set.Load()
}

// Reload rereads the file if it changed; the server calls it on its own
// schedule through lookups, tests and SIGHUP handlers may call it directly.
func (f *TokenFile) Reload() error {
	return f.reloadIfChanged()
}

func (f *TokenFile) reloadIfChanged() error {
	f.reloadMu.Lock()
	defer f.reloadMu.Unlock()
	cur := f.set.Load()
	info, err := os.Stat(f.path)
	if errors.Is(err, os.ErrNotExist) {
		info, err = nil, nil
	}
	if err != nil {
		f.log.Error("cannot check the tokens file; keeping the tokens already loaded", "path", f.path, "err", err)
		return fmt.Errorf("stat tokens file: %w", err)
	}
	if sameFile(cur.info, info) {
		return nil
	}
	set, err := f.load(cur)
	if err != nil {
		// Keep serving the tokens we have: a half-edited or broken file
		// must neither lock everyone out nor open the server. Remember the
		// broken version so that the error is logged once, not per second.
		f.log.Error("cannot reload the tokens file; keeping the tokens already loaded", "path", f.path, "err", err)
		broken := *cur
		broken.info = info
		f.set.Store(&broken)
		return err
	}
	f.set.Store(set)
	// Last-use writes reload the file too; only a change in the tokens
	// themselves is worth an info line.
	level := slog.LevelDebug
	if len(set.tokens) != len(cur.tokens) || set.active != cur.active {
		level = slog.LevelInfo
	}
	f.log.Log(context.Background(), level, "tokens file reloaded", "path", f.path, "tokens", len(set.tokens), "active", set.active)
	return nil
}

func sameFile(a, b os.FileInfo) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return os.SameFile(a, b) && a.ModTime().Equal(b.ModTime()) && a.Size() == b.Size()
}

// lookup finds the active token with this secret.
func (f *TokenFile) lookup(secret string) (*liveToken, bool) {
	if !wellFormed(secret) {
		return nil, false
	}
	t, ok := f.current().byDigest[digest(secret)]
	if !ok || !t.Active() {
		return nil, false
	}
	f.touch(t)
	return t, true
}

// touch records a use, and writes last uses back when the stored one has
// become stale; at most one write runs at a time, in the background.
func (f *TokenFile) touch(t *liveToken) {
	now := f.opts.Now()
	t.lastUsed.Store(now.UnixNano())
	res := f.opts.LastUsedResolution
	if res < 0 || now.Sub(t.LastUsed) < res {
		return
	}
	if !f.persisting.CompareAndSwap(false, true) {
		return
	}
	f.persistWG.Add(1)
	go func() {
		defer f.persistWG.Done()
		defer f.persisting.Store(false)
		if err := f.persistLastUsed(); err != nil {
			f.log.Warn("cannot record token last use", "path", f.path, "err", err)
		}
	}()
}

func (f *TokenFile) persistLastUsed() error {
	mem := map[string]int64{}
	for _, t := range f.set.Load().tokens {
		if lu := t.lastUsed.Load(); lu > 0 {
			mem[t.ID] = lu
		}
	}
	return f.update(func(doc *fileDoc) (bool, error) {
		changed := false
		for i := range doc.Tokens {
			t := &doc.Tokens[i]
			if lu, ok := mem[t.ID]; ok && lu > t.LastUsed.UnixNano() {
				t.LastUsed = time.Unix(0, lu).UTC()
				changed = true
			}
		}
		return changed, nil
	})
}

// Count returns the number of tokens in the file, revoked ones included,
// and how many of them are active.
func (f *TokenFile) Count() (all, active int) {
	s := f.current()
	return len(s.tokens), s.active
}

// List returns the tokens sorted by creation, with last uses as this
// process knows them.
func (f *TokenFile) List() []Token {
	s := f.current()
	out := make([]Token, 0, len(s.tokens))
	for _, t := range s.tokens {
		tok := t.Token
		if lu := t.lastUsed.Load(); lu > 0 {
			tok.LastUsed = time.Unix(0, lu).UTC()
		}
		out = append(out, tok)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Created.Before(out[j].Created) })
	return out
}

// Create adds a token and returns its secret, which exists nowhere else
// afterwards: the file keeps only its digest.
func (f *TokenFile) Create(spec TokenSpec) (string, Token, error) {
	if err := spec.Validate(); err != nil {
		return "", Token{}, err
	}
	secret, err := newSecret()
	if err != nil {
		return "", Token{}, err
	}
	d := digest(secret)
	tok := Token{
		Name:           spec.Name,
		Tenant:         spec.Tenant,
		Scopes:         slices.Clone(spec.Scopes),
		AllowedTenants: slices.Clone(spec.AllowedTenants),
		SHA256:         hex.EncodeToString(d[:]),
		Created:        f.opts.Now().UTC().Truncate(time.Second),
	}
	err = f.update(func(doc *fileDoc) (bool, error) {
		for {
			if tok.ID, err = newID(); err != nil {
				return false, err
			}
			if !slices.ContainsFunc(doc.Tokens, func(t Token) bool { return t.ID == tok.ID }) {
				break
			}
		}
		doc.Tokens = append(doc.Tokens, tok)
		return true, nil
	})
	if err != nil {
		return "", Token{}, err
	}
	return secret, tok, nil
}

// Errors of Revoke.
var (
	ErrNotFound  = errors.New("no such token")
	ErrAmbiguous = errors.New("ambiguous token name")
)

// Revoke marks the token with this ID (or this name, if exactly one token
// has it) revoked. It stays in the file so that listings show what was
// revoked and when.
func (f *TokenFile) Revoke(idOrName string) (Token, error) {
	var out Token
	err := f.update(func(doc *fileDoc) (bool, error) {
		idx := -1
		for i := range doc.Tokens {
			if doc.Tokens[i].ID == idOrName {
				idx = i
				break
			}
		}
		if idx < 0 {
			for i := range doc.Tokens {
				if doc.Tokens[i].Name == idOrName && idOrName != "" {
					if idx >= 0 {
						return false, fmt.Errorf("%w: several tokens are named %q; revoke by ID", ErrAmbiguous, idOrName)
					}
					idx = i
				}
			}
		}
		if idx < 0 {
			return false, fmt.Errorf("%w: %q", ErrNotFound, idOrName)
		}
		t := &doc.Tokens[idx]
		if t.Revoked.IsZero() {
			t.Revoked = f.opts.Now().UTC().Truncate(time.Second)
		}
		out = *t
		return true, nil
	})
	return out, err
}

// update applies fn to the file under an exclusive lock and writes the
// result atomically; other writers (the CLI, the server's admin API, the
// last-use writer) wait for the lock, readers never see a partial file.
func (f *TokenFile) update(fn func(*fileDoc) (bool, error)) error {
	dir := filepath.Dir(f.path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	lock, err := os.OpenFile(f.path+".lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return fmt.Errorf("open tokens lock file: %w", err)
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		return fmt.Errorf("lock tokens file: %w", err)
	}
	defer unix.Flock(int(lock.Fd()), unix.LOCK_UN) //nolint:errcheck // closing releases it too
	doc, _, err := readDoc(f.path)
	if err != nil {
		return err
	}
	changed, err := fn(doc)
	if err != nil || !changed {
		return err
	}
	doc.Version = fileVersion
	data, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return fmt.Errorf("encode tokens file: %w", err)
	}
	data = append(data, '\n')
	if err := writeFileAtomic(f.path, data); err != nil {
		return err
	}
	return f.reloadIfChanged()
}

// writeFileAtomic replaces path with data: a temporary file in the same
// directory, synced, then renamed over path, then the directory synced.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write tokens file: %w", err)
	}
	name := tmp.Name()
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(name)
		}
	}()
	if err := tmp.Chmod(0o600); err != nil {
		return fmt.Errorf("write tokens file: %w", err)
	}
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("write tokens file: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("sync tokens file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write tokens file: %w", err)
	}
	if err := os.Rename(name, path); err != nil {
		return fmt.Errorf("replace tokens file: %w", err)
	}
	ok = true
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

// Principal is who a request acts as: a token, or anyone in open mode.
type Principal struct {
	// TokenID and TokenName are empty in open mode.
	TokenID   string
	TokenName string
	// Tenant is the token's own tenant; in open mode the resolved one.
	Tenant string
	// OrgID is the tenant the request acts for: one tenant, or "a|b" for
	// a query across tenants.
	OrgID string
	// Open is set in open mode, where every request is allowed.
	Open    bool
	scopes  scopeSet
	allowed []string
}

// Has reports whether the principal holds a scope (always, in open mode).
func (p *Principal) Has(s Scope) bool { return p.Open || p.scopes.has(s) }

// MayActFor reports whether the principal may act for tenant id.
func (p *Principal) MayActFor(id string) bool {
	return p.Open || id == p.Tenant || slices.Contains(p.allowed, id)
}

func principalOf(t *liveToken) *Principal {
	return &Principal{TokenID: t.ID, TokenName: t.Name, Tenant: t.Tenant, scopes: t.scopes, allowed: t.AllowedTenants}
}

// resolveOrgID decides the org ID a token's request acts for from its
// X-Scope-OrgID value: none means the token's tenant; otherwise every
// tenant it names must be one the token may act for. multi allows "a|b".
func (p *Principal) resolveOrgID(header string, multi bool) (string, error) {
	if header == "" {
		return p.Tenant, nil
	}
	var ids []string
	if multi {
		var err error
		if ids, err = tenant.ParseQueryIDs(header); err != nil {
			return "", &requestError{code: 400, msg: err.Error()}
		}
	} else {
		if err := tenant.Validate(header); err != nil {
			return "", &requestError{code: 400, msg: err.Error()}
		}
		ids = []string{header}
	}
	for _, id := range ids {
		if !p.MayActFor(id) {
			return "", &requestError{code: 403, msg: fmt.Sprintf(
				"token %s is bound to tenant %q and may not act for tenant %q (named in %s): leave the header out, or use a token of that tenant, or create a token with --allow-tenant %s",
				p.TokenID, p.Tenant, id, tenant.Header, id)}
		}
	}
	return tenant.JoinQueryIDs(ids), nil
}

// requestError is a refusal with its HTTP status.
type requestError struct {
	code int
	msg  string
}

func (e *requestError) Error() string { return e.msg }
