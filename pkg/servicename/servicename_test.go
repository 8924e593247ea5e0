package servicename

import (
	"testing"

	"github.com/logsift/logsift/pkg/labels"
)

func TestAdd(t *testing.T) {
	for _, c := range []struct {
		in       labels.Labels
		from     []string
		fallback string
		want     string
	}{
		{labels.New("app", "shop", "job", "varlogs"), DefaultLabels, Unknown, `{app="shop", job="varlogs", service_name="shop"}`},
		{labels.New("job", "varlogs", "service", "api"), DefaultLabels, Unknown, `{job="varlogs", service="api", service_name="api"}`},
		{labels.New("job", "varlogs"), DefaultLabels, Unknown, `{job="varlogs", service_name="varlogs"}`},
		{labels.New("host", "h"), DefaultLabels, Unknown, `{host="h", service_name="unknown_service"}`},
		{labels.New("host", "h", "workspace", "case-1"), DefaultLabels, "case-1", `{host="h", service_name="case-1", workspace="case-1"}`},
		{labels.New("app", "x", "service_name", "given"), DefaultLabels, Unknown, `{app="x", service_name="given"}`},
		// The order of the list decides, not the order of the labels.
		{labels.New("app", "a", "job", "j"), []string{"job", "app"}, Unknown, `{app="a", job="j", service_name="j"}`},
		// An empty list turns discovery off; an empty fallback adds nothing.
		{labels.New("app", "a"), nil, Unknown, `{app="a"}`},
		{labels.New("host", "h"), DefaultLabels, "", `{host="h"}`},
	} {
		in := c.in.Copy()
		got := Add(c.in, c.from, c.fallback)
		if got.String() != c.want {
			t.Errorf("Add(%s, %v, %q) = %s, want %s", c.in, c.from, c.fallback, got, c.want)
		}
		if !c.in.Equal(in) {
			t.Errorf("Add modified its input: %s, was %s", c.in, in)
		}
	}
}

func TestAddDoesNotShareTheInputsArray(t *testing.T) {
	in := make(labels.Labels, 1, 8) // room to grow in place
	in[0] = labels.Label{Name: "app", Value: "a"}
	out := Add(in, DefaultLabels, Unknown)
	out[0].Value = "changed"
	if in[0].Value != "a" {
		t.Fatal("Add appended into the caller's array")
	}
}

func TestDiscover(t *testing.T) {
	if got := Discover(labels.New("service_name", "s", "app", "a"), DefaultLabels, Unknown); got != "s" {
		t.Errorf("existing label: %q", got)
	}
	if got := Discover(labels.New("container", "c", "job", "j"), DefaultLabels, Unknown); got != "c" {
		t.Errorf("container before job: %q", got)
	}
	if got := Discover(nil, DefaultLabels, Unknown); got != Unknown {
		t.Errorf("none: %q", got)
	}
}
