package glob

import "testing"

func TestMatch(t *testing.T) {
	cases := []struct {
		pat, path string
		want      bool
	}{
		{"/var/log/*.log", "/var/log/syslog.log", true},
		{"/var/log/*.log", "/var/log/a/b.log", false},
		{"/var/log/**/*.log", "/var/log/b.log", true},
		{"/var/log/**/*.log", "/var/log/a/b/c.log", true},
		{"/var/log/**/*.log", "/var/logs/c.log", false},
		{"/var/log/**", "/var/log/a/b", true},
		{"/var/**/app/*.log", "/var/x/y/app/z.log", true},
		{"/var/**/app/*.log", "/var/app/z.log", true},
		{"/var/log/app.log", "/var/log/app.log", true},
		{"/var/log/app.log", "/var/log/app.log.1", false},
		{"/var/log/[ab].log", "/var/log/b.log", true},
	}
	for _, c := range cases {
		p, err := Compile(c.pat)
		if err != nil {
			t.Fatal(err)
		}
		if got := p.Match(c.path); got != c.want {
			t.Errorf("%s ~ %s: %v", c.pat, c.path, got)
		}
	}
}

func TestRootAndMayContain(t *testing.T) {
	p, _ := Compile("/var/log/*/app/**/*.log")
	if p.Root() != "/var/log" {
		t.Fatalf("root %q", p.Root())
	}
	for dir, want := range map[string]bool{
		"/": true, "/var": true, "/var/log": true, "/var/log/x": true, "/var/log/x/app": true,
		"/var/log/x/app/deep/er": true, "/var/log/x/other": false, "/etc": false,
	} {
		if got := p.MayContain(dir); got != want {
			t.Errorf("MayContain(%s) = %v", dir, got)
		}
	}
	lit, _ := Compile("/var/log/app.log")
	if lit.Root() != "/var/log" || lit.MayContain("/var/log/app.log/x") {
		t.Fatalf("literal pattern: root %q", lit.Root())
	}
}

func TestCompileErrors(t *testing.T) {
	for _, p := range []string{"relative/*.log", "/var/**x/a", "/var/[a/b"} {
		if _, err := Compile(p); err == nil {
			t.Errorf("%q compiled", p)
		}
	}
}

// FuzzMatch checks that compiling and matching arbitrary patterns and paths
// never panics, and that a pattern without metacharacters matches itself.
func FuzzMatch(f *testing.F) {
	f.Add("/var/log/**/*.log", "/var/log/a/b.log")
	f.Add("/a/b", "/a/b")
	f.Add("/**/**/x", "/x")
	f.Fuzz(func(t *testing.T, pat, path string) {
		p, err := Compile(pat)
		if err != nil {
			return
		}
		p.Match(path)
		p.MayContain(path)
		if !hasMeta(pat) && len(pat) > 1 && pat[len(pat)-1] != '/' && !containsDotSegments(pat) && !p.Match(pat) {
			t.Fatalf("literal %q does not match itself", pat)
		}
	})
}

func containsDotSegments(p string) bool {
	for _, s := range splitPath(p) {
		if s == "." || s == ".." || s == "" {
			return true
		}
	}
	return p != "/"+joinSegs(splitPath(p))
}

func joinSegs(s []string) string {
	out := ""
	for i, x := range s {
		if i > 0 {
			out += "/"
		}
		out += x
	}
	return out
}
