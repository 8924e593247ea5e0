// Package pluginzip packs a built Grafana plugin (dist/) into the zip that
// Grafana's plugin validator and `grafana cli plugins install` expect: one
// top-level folder named after the plugin id, holding plugin.json,
// module.js, the backend executables (mode 0755) and the README and
// LICENSE. It checks the layout first and refuses an incomplete build.
package pluginzip

import (
	"archive/zip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// Manifest is what the package needs from dist/plugin.json.
type Manifest struct {
	ID         string `json:"id"`
	Type       string `json:"type"`
	Backend    bool   `json:"backend"`
	Executable string `json:"executable"`
	Info       struct {
		Version string `json:"version"`
		Logos   struct {
			Small string `json:"small"`
			Large string `json:"large"`
		} `json:"logos"`
	} `json:"info"`
}

// Platform is a GOOS/GOARCH pair the backend must be built for.
type Platform struct{ OS, Arch string }

// Executable is the backend's file name for p, as the plugin SDK's build
// names it.
func (m Manifest) executable(p Platform) string {
	name := fmt.Sprintf("%s_%s_%s", m.Executable, p.OS, p.Arch)
	if p.OS == "windows" {
		name += ".exe"
	}
	return name
}

// Check reads dist/plugin.json and checks that dist holds a complete
// plugin for the platforms: the problems are joined in the error.
func Check(dist string, platforms []Platform) (Manifest, error) {
	var m Manifest
	raw, err := os.ReadFile(filepath.Join(dist, "plugin.json"))
	if err != nil {
		return m, fmt.Errorf("read the built plugin.json (run the frontend and backend builds first): %w", err)
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		return m, fmt.Errorf("%s/plugin.json: %w", dist, err)
	}
	var errs []error
	if m.ID == "" || m.Type == "" {
		errs = append(errs, errors.New("plugin.json has no id or type"))
	}
	if strings.Contains(string(raw), "%VERSION%") || strings.Contains(string(raw), "%TODAY%") || m.Info.Version == "" {
		errs = append(errs, errors.New("plugin.json still holds template variables or no info.version: it is the source manifest, not the built one"))
	}
	need := []string{"module.js", "README.md"}
	for _, logo := range []string{m.Info.Logos.Small, m.Info.Logos.Large} {
		if logo != "" {
			need = append(need, logo)
		}
	}
	if m.Backend {
		if m.Executable == "" {
			errs = append(errs, errors.New("plugin.json sets backend but no executable"))
		}
		need = append(need, "go_plugin_build_manifest")
		for _, p := range platforms {
			need = append(need, m.executable(p))
		}
	}
	for _, f := range need {
		if st, err := os.Stat(filepath.Join(dist, filepath.FromSlash(f))); err != nil || st.IsDir() {
			errs = append(errs, fmt.Errorf("%s is missing from %s", f, dist))
		}
	}
	return m, errors.Join(errs...)
}

// Write checks dist and writes the zip to w: every file of dist under
// <id>/, in name order, backend executables with mode 0755.
func Write(dist string, platforms []Platform, w io.Writer) (Manifest, error) {
	m, err := Check(dist, platforms)
	if err != nil {
		return m, err
	}
	var files []string
	err = filepath.WalkDir(dist, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type()&fs.ModeSymlink != 0 {
			return fmt.Errorf("%s is a symbolic link; the plugin validator refuses them", p)
		}
		if !d.IsDir() {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		return m, err
	}
	sort.Strings(files)
	zw := zip.NewWriter(w)
	for _, p := range files {
		rel, err := filepath.Rel(dist, p)
		if err != nil {
			return m, err
		}
		name := path.Join(m.ID, filepath.ToSlash(rel))
		mode := fs.FileMode(0o644)
		if m.Backend && strings.HasPrefix(path.Base(name), m.Executable+"_") {
			mode = 0o755
		}
		hdr := &zip.FileHeader{Name: name, Method: zip.Deflate}
		hdr.SetMode(mode)
		fw, err := zw.CreateHeader(hdr)
		if err != nil {
			return m, err
		}
		f, err := os.Open(p)
		if err != nil {
			return m, err
		}
		_, err = io.Copy(fw, f)
		f.Close()
		if err != nil {
			return m, fmt.Errorf("add %s: %w", p, err)
		}
	}
	return m, zw.Close()
}
