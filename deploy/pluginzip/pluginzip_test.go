package pluginzip

import (
	"archive/zip"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var platforms = []Platform{{"linux", "amd64"}, {"windows", "amd64"}}

func writeDist(t *testing.T, manifest string, files ...string) string {
	t.Helper()
	dir := t.TempDir()
	put := func(name, body string) {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	put("plugin.json", manifest)
	for _, f := range files {
		put(f, "content of "+f)
	}
	return dir
}

const built = `{"id":"logsift-datasource","type":"datasource","backend":true,"executable":"gpx_logsift","info":{"version":"0.1.0","logos":{"small":"img/logo.svg","large":"img/logo.svg"}}}`

func TestWriteLaysOutThePluginFolder(t *testing.T) {
	dist := writeDist(t, built, "module.js", "README.md", "LICENSE", "img/logo.svg", "go_plugin_build_manifest",
		"gpx_logsift_linux_amd64", "gpx_logsift_windows_amd64.exe", "module.js.map")
	var buf bytes.Buffer
	m, err := Write(dist, platforms, &buf)
	if err != nil {
		t.Fatal(err)
	}
	if m.ID != "logsift-datasource" || m.Info.Version != "0.1.0" {
		t.Fatalf("manifest %+v", m)
	}
	zr, err := zip.NewReader(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]os.FileMode{}
	for _, f := range zr.File {
		if !strings.HasPrefix(f.Name, "logsift-datasource/") {
			t.Errorf("%s is outside the plugin's folder", f.Name)
		}
		got[strings.TrimPrefix(f.Name, "logsift-datasource/")] = f.Mode().Perm()
	}
	for _, want := range []string{"plugin.json", "module.js", "README.md", "LICENSE", "img/logo.svg", "go_plugin_build_manifest", "module.js.map"} {
		if _, ok := got[want]; !ok {
			t.Errorf("%s is not in the zip", want)
		}
	}
	for _, exe := range []string{"gpx_logsift_linux_amd64", "gpx_logsift_windows_amd64.exe"} {
		if got[exe] != 0o755 {
			t.Errorf("%s has mode %v in the zip, want 0755", exe, got[exe])
		}
	}
	if got["module.js"] != 0o644 {
		t.Errorf("module.js has mode %v", got["module.js"])
	}
}

func TestCheckRefusesIncompleteBuilds(t *testing.T) {
	cases := map[string]struct {
		manifest string
		files    []string
		want     string
	}{
		"no frontend":        {built, []string{"README.md", "img/logo.svg", "go_plugin_build_manifest", "gpx_logsift_linux_amd64", "gpx_logsift_windows_amd64.exe"}, "module.js is missing"},
		"a platform missing": {built, []string{"module.js", "README.md", "img/logo.svg", "go_plugin_build_manifest", "gpx_logsift_linux_amd64"}, "gpx_logsift_windows_amd64.exe is missing"},
		"source manifest":    {strings.Replace(built, `"0.1.0"`, `"%VERSION%"`, 1), []string{"module.js", "README.md", "img/logo.svg", "go_plugin_build_manifest", "gpx_logsift_linux_amd64", "gpx_logsift_windows_amd64.exe"}, "template variables"},
		"no logo":            {built, []string{"module.js", "README.md", "go_plugin_build_manifest", "gpx_logsift_linux_amd64", "gpx_logsift_windows_amd64.exe"}, "img/logo.svg is missing"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := Write(writeDist(t, c.manifest, c.files...), platforms, &bytes.Buffer{})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want one saying %q", err, c.want)
			}
		})
	}
	if _, err := Check(t.TempDir(), platforms); err == nil {
		t.Error("an empty dist passed")
	}
}
