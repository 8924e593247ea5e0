package events

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
)

// AllTypes lists every domain event type, in a stable order.
var AllTypes = []Type{
	SearchRequested, SearchCompleted, SearchFailed,
	ImportStarted, ImportProgress, ImportCompleted, ImportFailed, ImportCancelled,
	CacheHit, CacheMiss, CacheInvalidated,
	WorkspaceCreated, WorkspaceDeleted, WorkspaceRenamed,
	RangeWritten,
}

// Known reports whether t is one of AllTypes.
func (t Type) Known() bool { return slices.Contains(AllTypes, t) }

// validTypeName reports whether t can be used as a NATS subject suffix:
// lower-case tokens separated by single dots. Unknown but well-formed
// types pass, so that a newer server's events still travel through an
// older one.
func validTypeName(t Type) bool {
	if t == "" || len(t) > 64 || t[0] == '.' || t[len(t)-1] == '.' {
		return false
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '_':
		case c == '.':
			if t[i-1] == '.' {
				return false
			}
		default:
			return false
		}
	}
	return true
}

// ParseTypes reads a comma-separated list of event types, as the streaming
// endpoints take it. A prefix ending in ".*" ("import.*") names every known
// type under it. An empty list means all types and returns nil.
func ParseTypes(s string) ([]Type, error) {
	var out []Type
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if prefix, ok := strings.CutSuffix(f, ".*"); ok {
			n := len(out)
			for _, t := range AllTypes {
				if strings.HasPrefix(string(t), prefix+".") {
					out = append(out, t)
				}
			}
			if len(out) == n {
				return nil, fmt.Errorf("event type pattern %q matches no type", f)
			}
			continue
		}
		t := Type(f)
		if !t.Known() {
			return nil, fmt.Errorf("unknown event type %q", f)
		}
		out = append(out, t)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// WorkspaceName is the workspace an event concerns, or "".
func (e *Event) WorkspaceName() string {
	switch {
	case e.Import != nil:
		return e.Import.Workspace
	case e.Workspace != nil:
		return e.Workspace.Name
	}
	return ""
}

// Filter selects the events a client of a streaming endpoint sees.
type Filter struct {
	// Tenants the client may see; an event of any other tenant never
	// passes. Empty lets nothing through: isolation is not optional.
	Tenants []string
	// Types selects event types; empty means all.
	Types []Type
	// Workspace, when set, keeps only the events of that workspace (or of
	// any of its names: see workspace aliases).
	Workspace []string
}

// Match reports whether e passes the filter.
func (f *Filter) Match(e *Event) bool {
	if !slices.Contains(f.Tenants, e.Tenant) {
		return false
	}
	if len(f.Types) > 0 && !slices.Contains(f.Types, e.Type) {
		return false
	}
	if len(f.Workspace) > 0 {
		ws := e.WorkspaceName()
		if !slices.Contains(f.Workspace, ws) && (e.Workspace == nil || !slices.Contains(f.Workspace, e.Workspace.OldName)) {
			return false
		}
	}
	return true
}

// DefaultOrigin names this process on a shared bus: host name and process
// id.
func DefaultOrigin() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	return host + "/" + strconv.Itoa(os.Getpid())
}
