package plugin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"

	"github.com/logsift/logsift/datasource/client"
)

// MinLokiAPI is the oldest Loki API version the plugin works with: 3.0
// brought structured metadata and categorized labels in query answers.
var MinLokiAPI = [3]int{3, 0, 0}

// CheckHealth tells the user whether the datasource works and, when it
// does not, exactly what is wrong: the settings, the URL, the version of
// the server, the token or the tenant. It asks two things: the version
// (/loki/api/v1/status/buildinfo), then the label names of the last 24
// hours, which exercises the token and the tenant on a query route. A
// server with authentication refuses the first call already, so both
// answers are read the same way.
func (in *Instance) CheckHealth(ctx context.Context, _ *backend.CheckHealthRequest) (*backend.CheckHealthResult, error) {
	fail := func(msg string) (*backend.CheckHealthResult, error) {
		return &backend.CheckHealthResult{Status: backend.HealthStatusError, Message: msg}, nil
	}
	if in.configErr != nil {
		return fail("Settings: " + in.configErr.Error())
	}
	bi, err := in.client.BuildInfo(ctx)
	if err != nil {
		var se *client.StatusError
		switch {
		case errors.As(err, &se) && se.Code == http.StatusNotFound:
			return fail(fmt.Sprintf("%s is not a logsift or Loki server: /loki/api/v1/status/buildinfo answered 404; check the URL (it should be the server's base URL, without /loki/api/v1)", in.client.URL()))
		case strings.Contains(err.Error(), "decode buildinfo"):
			return fail(fmt.Sprintf("%s is not a logsift or Loki server: its version check did not answer JSON; check the URL", in.client.URL()))
		}
		return fail(in.diagnose(in.client.URL(), "the version check", err))
	}
	if bi.Version == "" {
		return fail(fmt.Sprintf("%s is not a logsift or Loki server: its version check names no version", in.client.URL()))
	}
	// Loki's development builds report a branch name ("main-1a2b3c4");
	// those are let through, as the labels call below still checks the
	// API.
	v, ok := parseVersion(bi.Version)
	if ok && compareVersion(v, MinLokiAPI) < 0 {
		return fail(fmt.Sprintf("version mismatch: %s speaks Loki API %s; the plugin needs %d.%d or newer (structured metadata and categorized labels)", in.client.URL(), bi.Version, MinLokiAPI[0], MinLokiAPI[1]))
	}
	server := "Loki " + bi.Version
	if bi.Application == "logsift" {
		server = fmt.Sprintf("logsift %s (Loki API %s)", bi.LogsiftVersion, bi.Version)
	}

	end := time.Now()
	names, err := in.client.Labels(ctx, end.Add(-24*time.Hour), end, "")
	if err != nil {
		return fail(in.diagnose("connected to "+server+", but it", "listing labels", err))
	}
	details, _ := json.Marshal(map[string]any{
		"version":        bi.Version,
		"application":    bi.Application,
		"logsiftVersion": bi.LogsiftVersion,
		"revision":       bi.Revision,
		"tenant":         in.settings.Tenant,
		"labels":         len(names),
	})
	tenant := in.settings.Tenant
	if tenant == "" {
		tenant = "the default tenant"
	} else {
		tenant = strconv.Quote(tenant)
	}
	if len(names) == 0 {
		return &backend.CheckHealthResult{
			Status:      backend.HealthStatusOk,
			Message:     fmt.Sprintf("Connected to %s. No logs for %s in the last 24 hours: if you expected some, check the tenant.", server, tenant),
			JSONDetails: details,
		}, nil
	}
	return &backend.CheckHealthResult{
		Status:      backend.HealthStatusOk,
		Message:     fmt.Sprintf("Connected to %s; %s has %d labels in the last 24 hours.", server, tenant, len(names)),
		JSONDetails: details,
	}, nil
}

// diagnose says in words what a refused or failed health call means:
// who refused what, and which setting to change. subject names who
// answered ("http://x:3100", or "connected to ..., but it"); what is the
// call. The server's own words are kept at the end: logsift's refusals
// say how to fix them.
func (in *Instance) diagnose(subject, what string, err error) string {
	var se *client.StatusError
	if !errors.As(err, &se) {
		if strings.HasPrefix(subject, "connected to") {
			return fmt.Sprintf("%s failed %s: %v", subject, what, err)
		}
		return err.Error()
	}
	body := strings.TrimSpace(se.Body)
	lower := strings.ToLower(body)
	tenant := in.settings.Tenant
	hasToken := in.settings.APIToken != ""
	switch {
	case se.Code == http.StatusUnauthorized && strings.Contains(lower, "no org id"):
		return fmt.Sprintf("%s requires a tenant: set Tenant (sent as X-Scope-OrgID) in the datasource settings (HTTP 401: %s)", subject, body)
	case se.Code == http.StatusUnauthorized && !hasToken:
		return fmt.Sprintf("%s requires an API token: set API token in the datasource settings (HTTP 401: %s)", subject, body)
	case se.Code == http.StatusUnauthorized:
		return fmt.Sprintf("%s refused the API token (HTTP 401): the token is wrong, unknown or revoked; check API token in the datasource settings (%s)", subject, body)
	case se.Code == http.StatusForbidden && tenant != "" && strings.Contains(lower, "tenant") && strings.Contains(lower, strings.ToLower(tenant)):
		return fmt.Sprintf("%s refused the tenant %q for this API token (HTTP 403): use the token's own tenant, leave Tenant empty, or use a token of that tenant (%s)", subject, tenant, body)
	case se.Code == http.StatusForbidden && strings.Contains(lower, "scope"):
		return fmt.Sprintf("%s refused the API token (HTTP 403): it may not query; the datasource needs a token with the query scope (%s)", subject, body)
	case se.Code == http.StatusForbidden:
		return fmt.Sprintf("%s refused the API token (HTTP 403): %s", subject, body)
	case se.Code == http.StatusBadRequest && strings.Contains(lower, "tenant"):
		return fmt.Sprintf("%s rejected the tenant %q: %s", subject, tenant, body)
	}
	return fmt.Sprintf("%s answered HTTP %d to %s: %s", subject, se.Code, what, body)
}

// parseVersion reads "3.5.0", "v3.4.2" or "3.5.0-rc1" into numbers.
func parseVersion(s string) ([3]int, bool) {
	var v [3]int
	s = strings.TrimPrefix(strings.TrimSpace(s), "v")
	s, _, _ = strings.Cut(s, "-")
	s, _, _ = strings.Cut(s, "+")
	parts := strings.Split(s, ".")
	if len(parts) < 2 || len(parts) > 3 {
		return v, false
	}
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 {
			return v, false
		}
		v[i] = n
	}
	return v, true
}

func compareVersion(a, b [3]int) int {
	for i := range a {
		if a[i] != b[i] {
			return a[i] - b[i]
		}
	}
	return 0
}
