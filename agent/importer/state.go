package importer

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// state records the files an import has fully imported (every chunk
// acknowledged), so that a re-run after an interruption leaves them out.
// Files cut short are not recorded: a re-run redoes them from their start,
// and because chunks are cut deterministically the server recognises the
// chunks it already has.
type state struct {
	path string // "" keeps the state in memory only

	mu       sync.Mutex
	file     stateFile
	dirty    bool
	lastSave time.Time
}

type stateFile struct {
	Version   int                 `json:"version"`
	Workspace string              `json:"workspace"`
	Done      map[string]doneFile `json:"done"`
}

type doneFile struct {
	Path string    `json:"path"`
	At   time.Time `json:"at"`
}

const stateVersion = 1

// saveEvery debounces state writes while files complete.
const saveEvery = 2 * time.Second

func loadState(dir, workspace string) (*state, error) {
	s := &state{file: stateFile{Version: stateVersion, Workspace: workspace, Done: map[string]doneFile{}}}
	if dir == "" {
		return s, nil
	}
	s.path = filepath.Join(dir, stateFileName(workspace))
	b, err := os.ReadFile(s.path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return s, nil
	case err != nil:
		return nil, fmt.Errorf("import: reading resume state: %w", err)
	}
	var f stateFile
	if err := json.Unmarshal(b, &f); err != nil || f.Version != stateVersion || f.Done == nil {
		// A damaged or foreign state only costs a full re-import, which
		// the server deduplicates; do not fail the import over it.
		slog.Warn("import: ignoring unreadable resume state", "path", s.path, "err", err)
		return s, nil
	}
	s.file = f
	return s, nil
}

// stateFileName makes a file name from a workspace name: safe characters
// kept, plus a short hash so that different names never share a file.
func stateFileName(workspace string) string {
	safe := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' {
			return r
		}
		return '_'
	}, workspace)
	if len(safe) > 64 {
		safe = safe[:64]
	}
	h := sha256.Sum256([]byte(workspace))
	return safe + "-" + hex.EncodeToString(h[:4]) + ".json"
}

func (s *state) isDone(key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.file.Done[key]
	return ok
}

func (s *state) markDone(key, path string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.file.Done[key] = doneFile{Path: path, At: time.Now().UTC()}
	s.dirty = true
	if s.path != "" && time.Since(s.lastSave) >= saveEvery {
		if err := s.saveLocked(); err != nil {
			slog.Warn("import: saving resume state", "err", err)
		}
	}
}

func (s *state) save() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.saveLocked()
}

// saveLocked writes the state atomically: a temporary file renamed over
// the old one.
func (s *state) saveLocked() error {
	if s.path == "" || !s.dirty {
		return nil
	}
	b, err := json.Marshal(&s.file)
	if err != nil {
		return fmt.Errorf("import: encoding resume state: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(s.path), 0o700); err != nil {
		return fmt.Errorf("import: saving resume state: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(s.path), ".import-state-*")
	if err != nil {
		return fmt.Errorf("import: saving resume state: %w", err)
	}
	_, werr := tmp.Write(b)
	serr := tmp.Sync()
	cerr := tmp.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("import: saving resume state: %w", err)
	}
	if err := os.Rename(tmp.Name(), s.path); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("import: saving resume state: %w", err)
	}
	s.dirty = false
	s.lastSave = time.Now()
	return nil
}
