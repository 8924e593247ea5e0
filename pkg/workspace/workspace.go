// Package workspace keeps a tenant's workspaces: named collections of log
// sources (tailed globs, imported archives) with the history of their
// import runs. Metadata lives in one bbolt file in the data directory; the
// log data itself lives in the store under the label workspace="<name>".
// The package serves it over a JSON HTTP API and gRPC, and publishes
// workspace and import events on the event bus.
package workspace

import (
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/logsift/logsift/pkg/labels"
)

// Label is the stream label that names a stream's workspace.
const Label = "workspace"

// Workspace is one workspace of a tenant.
type Workspace struct {
	Name        string            `json:"name"`
	Tenant      string            `json:"tenant"`
	Created     time.Time         `json:"created"`
	Description string            `json:"description,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	Sources     []Source          `json:"sources"`
	// Aliases are former names. Renaming does not rewrite the workspace
	// label of stored entries, so data stored under an alias still belongs
	// to the workspace (see Service.Aliases).
	Aliases []string `json:"aliases,omitempty"`

	// RunCount and LastRun summarise the runs in listings.
	RunCount int  `json:"run_count"`
	LastRun  *Run `json:"last_run,omitempty"`
	// Runs are the import runs, newest first; only Get fills them.
	Runs []Run `json:"runs,omitempty"`
}

// SourceKind says how a source's logs arrive.
type SourceKind string

// The kinds of source.
const (
	SourceTail   SourceKind = "tail"   // files an agent follows (a glob)
	SourceImport SourceKind = "import" // an archive or directory imported once
)

// Source is a place logs of the workspace come from.
type Source struct {
	Kind  SourceKind `json:"kind"`
	Path  string     `json:"path"`
	Host  string     `json:"host,omitempty"`
	Added time.Time  `json:"added"`
}

// Status is the state of an import run.
type Status string

// The states of a run. Running is the only state a run leaves; a cancelled
// run stays cancelled when its agent reports its end.
const (
	StatusRunning   Status = "running"
	StatusCompleted Status = "completed"
	StatusFailed    Status = "failed"
	StatusCancelled Status = "cancelled"
)

func (s Status) valid() bool {
	switch s {
	case StatusRunning, StatusCompleted, StatusFailed, StatusCancelled:
		return true
	}
	return false
}

// Counters measure an import run. Agents report absolute values, so a
// resent report changes nothing.
type Counters struct {
	Files     int64 `json:"files"`
	FilesDone int64 `json:"files_done"`
	Bytes     int64 `json:"bytes"`
	BytesDone int64 `json:"bytes_done"`
	Lines     int64 `json:"lines"`
	Chunks    int64 `json:"chunks"`
}

func (c Counters) validate() error {
	if c.Files < 0 || c.FilesDone < 0 || c.Bytes < 0 || c.BytesDone < 0 || c.Lines < 0 || c.Chunks < 0 {
		return errorf(ErrInvalid, "run counters must not be negative")
	}
	return nil
}

// Run is one import run of a workspace.
type Run struct {
	ID        string    `json:"id"`
	Workspace string    `json:"workspace"`
	Host      string    `json:"host,omitempty"`
	Source    string    `json:"source,omitempty"`
	Status    Status    `json:"status"`
	Started   time.Time `json:"started"`
	Updated   time.Time `json:"updated"`
	Finished  time.Time `json:"finished,omitzero"`
	// CancelRequested is when CancelRun was called; the agent confirms
	// with FinishRun, which sets Finished.
	CancelRequested time.Time `json:"cancel_requested,omitzero"`
	Counters        Counters  `json:"counters"`
	// Errors keeps the first MaxRunErrors errors; ErrorCount counts all.
	Errors     []string `json:"errors,omitempty"`
	ErrorCount int64    `json:"error_count"`
	// DurationMS is Finished (or now, while running) minus Started,
	// computed when the run is read.
	DurationMS int64 `json:"duration_ms"`
}

// Limits on what a client may store, so that metadata stays small.
const (
	MaxNameLength        = 128
	MaxDescriptionLength = 1024
	MaxLabels            = 32
	MaxLabelValueLength  = 256
	MaxSources           = 1000
	MaxPathLength        = 4096
	MaxHostLength        = 256
	MaxRunErrors         = 100
	MaxErrorLength       = 1024
	// maxErrorsPerReport bounds one report's errors; ErrorCount still
	// counts every one sent.
	maxErrorsPerReport = 1000
)

// Errors callers tell apart with errors.Is; the HTTP and gRPC layers map
// them to status codes.
var (
	ErrInvalid     = errors.New("invalid request")
	ErrNotFound    = errors.New("not found")
	ErrExists      = errors.New("already exists")
	ErrConflict    = errors.New("conflict")
	ErrUnavailable = errors.New("unavailable")
)

// kindError carries a readable message and one of the sentinel errors.
type kindError struct {
	kind error
	msg  string
}

func (e *kindError) Error() string { return e.msg }
func (e *kindError) Unwrap() error { return e.kind }

func errorf(kind error, format string, args ...any) error {
	return &kindError{kind: kind, msg: fmt.Sprintf(format, args...)}
}

// ValidateName reports what is wrong with a workspace name, or nil. A name
// is 1 to 128 characters of ASCII letters, digits, '-', '_' and '.',
// starting with a letter or digit: safe as a label value, in a URL path, a
// file name and a shell argument without quoting.
func ValidateName(name string) error {
	if name == "" {
		return errorf(ErrInvalid, "workspace name is empty")
	}
	if len(name) > MaxNameLength {
		return errorf(ErrInvalid, "workspace name is %d characters long, the limit is %d", len(name), MaxNameLength)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if alnum || i > 0 && (c == '-' || c == '_' || c == '.') {
			continue
		}
		if i == 0 {
			return errorf(ErrInvalid, "workspace name %q must start with a letter or digit", name)
		}
		return errorf(ErrInvalid, "workspace name %q has the unsupported character %q at byte %d; allowed are letters, digits, '-', '_' and '.'", truncate(name, 64), c, i)
	}
	return nil
}

func validateLabels(ls map[string]string) error {
	if len(ls) > MaxLabels {
		return errorf(ErrInvalid, "a workspace has at most %d labels, got %d", MaxLabels, len(ls))
	}
	for k, v := range ls {
		if !labels.ValidName(k) {
			return errorf(ErrInvalid, "invalid label name %q", truncate(k, 64))
		}
		if len(v) > MaxLabelValueLength || !utf8.ValidString(v) {
			return errorf(ErrInvalid, "label %s: value must be valid UTF-8 of at most %d bytes", k, MaxLabelValueLength)
		}
	}
	return nil
}

func validateDescription(d string) error {
	if len(d) > MaxDescriptionLength || !utf8.ValidString(d) {
		return errorf(ErrInvalid, "description must be valid UTF-8 of at most %d bytes", MaxDescriptionLength)
	}
	return nil
}

func validateSource(src Source) error {
	if src.Kind != SourceTail && src.Kind != SourceImport {
		return errorf(ErrInvalid, "source kind %q: use %q or %q", truncate(string(src.Kind), 32), SourceTail, SourceImport)
	}
	if src.Path == "" || len(src.Path) > MaxPathLength || !utf8.ValidString(src.Path) {
		return errorf(ErrInvalid, "source path must be valid UTF-8 of 1 to %d bytes", MaxPathLength)
	}
	return validateHost(src.Host)
}

func validateHost(h string) error {
	if len(h) > MaxHostLength || !utf8.ValidString(h) {
		return errorf(ErrInvalid, "host must be valid UTF-8 of at most %d bytes", MaxHostLength)
	}
	return nil
}

// cleanErrors bounds the errors of one report: how many are kept and how
// long each may be.
func cleanErrors(errs []string) []string {
	if len(errs) > maxErrorsPerReport {
		errs = errs[:maxErrorsPerReport]
	}
	out := make([]string, 0, len(errs))
	for _, e := range errs {
		if !utf8.ValidString(e) {
			e = string([]rune(e)) // replaces invalid bytes with U+FFFD
		}
		out = append(out, truncate(e, MaxErrorLength))
	}
	return out
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	// Cut on a rune boundary so that the result stays valid UTF-8.
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
