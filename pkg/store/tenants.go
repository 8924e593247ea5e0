package store

import (
	"strings"

	"github.com/logsift/logsift/pkg/labels"
)

// TenantLabel is the label a query across tenants (X-Scope-OrgID "a|b")
// adds to every stream, as Loki's multi-tenant queries do, so that the
// answer tells the tenants apart and a matcher on it picks some of them.
const TenantLabel = "__tenant_id__"

// tenantScope is one tenant of a read: its database, the label to add to
// its streams (none for a single-tenant read) and the matchers left once
// those on TenantLabel are decided.
type tenantScope struct {
	db    *tenantDB
	label *labels.Label
	ms    []*labels.Matcher
}

// scopes resolves a read's tenant ID, one tenant or several joined by
// "|", into the tenants that exist and pass the matchers on TenantLabel.
func (s *Store) scopes(tenantID string, ms []*labels.Matcher) []tenantScope {
	if !strings.Contains(tenantID, "|") {
		t := s.tenant(tenantID, false)
		if t == nil {
			return nil
		}
		return []tenantScope{{db: t, ms: ms}}
	}
	var rest, onTenant []*labels.Matcher
	for _, m := range ms {
		if m.Name == TenantLabel {
			onTenant = append(onTenant, m)
		} else {
			rest = append(rest, m)
		}
	}
	var out []tenantScope
	seen := map[string]bool{}
	for _, id := range strings.Split(tenantID, "|") {
		if id == "" || seen[id] {
			continue
		}
		seen[id] = true
		ok := true
		for _, m := range onTenant {
			if !m.Matches(id) {
				ok = false
				break
			}
		}
		if t := s.tenant(id, false); ok && t != nil {
			out = append(out, tenantScope{db: t, label: &labels.Label{Name: TenantLabel, Value: id}, ms: rest})
		}
	}
	return out
}

// withTenant adds the scope's tenant label to a stream's labels.
func (sc *tenantScope) withTenant(ls labels.Labels) labels.Labels {
	if sc.label == nil {
		return ls
	}
	out := make(labels.Labels, 0, len(ls)+1)
	out = append(out, ls...)
	out = append(out, *sc.label)
	return out.Sort()
}
