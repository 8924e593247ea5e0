//go:build mage

package main

// Targets for the Grafana datasource plugin's backend (datasource/). The
// SDK's build package does the compiling: it names each executable after
// plugin.json ("executable": "gpx_logsift" gives gpx_logsift_<os>_<arch>),
// links it statically, and writes dist/go_plugin_build_manifest, which
// the plugin validator and Grafana's signing read.

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/magefile/mage/mg"

	"github.com/grafana/grafana-plugin-sdk-go/build"
)

// Plugin builds and tests the datasource plugin's backend.
type Plugin mg.Namespace

// pluginPlatforms are the platforms Grafana runs the backend on.
var pluginPlatforms = [][2]string{
	{"linux", "amd64"},
	{"linux", "arm64"},
	{"darwin", "amd64"},
	{"darwin", "arm64"},
	{"windows", "amd64"},
}

func init() {
	// The SDK builds ./pkg from a manifest in src/ by default; logsift's
	// backend lives in ./datasource, and the manifest is where the
	// frontend keeps it.
	if err := build.SetBeforeBuildCallback(func(cfg build.Config) (build.Config, error) {
		dir, err := pluginJSONDir()
		if err != nil {
			return cfg, err
		}
		cfg.PluginJSONPath = dir
		cfg.RootPackagePath = "./datasource"
		cfg.OutputBinaryPath = "dist"
		return cfg, nil
	}); err != nil {
		panic(err)
	}
}

// pluginJSONDir finds plugin.json: in src/ (the plugin tools' layout) or
// at the repository root.
func pluginJSONDir() (string, error) {
	for _, dir := range []string{"src", "."} {
		if _, err := os.Stat(filepath.Join(dir, "plugin.json")); err == nil {
			return dir, nil
		}
	}
	return "", errors.New("plugin.json not found in src/ or the repository root: the build takes the executable's name from it")
}

// Backend builds gpx_logsift_<os>_<arch> for Linux, macOS and Windows
// (amd64, and arm64 for Linux and macOS) into dist/.
func (Plugin) Backend() error {
	b := build.Build{}
	for _, p := range pluginPlatforms {
		fmt.Printf("+ backend %s/%s\n", p[0], p[1])
		if err := b.Custom(p[0], p[1]); err != nil {
			return fmt.Errorf("build the backend for %s/%s: %w", p[0], p[1], err)
		}
	}
	return nil
}

// Build builds the backend for every platform and writes dist/plugin.json
// (the manifest with %VERSION%, %TODAY% and %PLUGIN_ID% filled in, as the
// frontend build writes it), so that dist/ holds what Grafana's plugin
// folder needs from the backend. The frontend build (npm run build) adds
// module.js and the assets, and keeps the binaries.
func (Plugin) Build() error {
	mg.Deps(Plugin.Backend)
	return writeManifest()
}

// writeManifest copies plugin.json into dist/ with the template
// variables replaced, and checks that it names a backend executable.
func writeManifest() error {
	dir, err := pluginJSONDir()
	if err != nil {
		return err
	}
	raw, err := os.ReadFile(filepath.Join(dir, "plugin.json"))
	if err != nil {
		return err
	}
	var m struct {
		ID         string `json:"id"`
		Backend    bool   `json:"backend"`
		Executable string `json:"executable"`
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		return fmt.Errorf("%s/plugin.json: %w", dir, err)
	}
	if !m.Backend || m.Executable == "" {
		return fmt.Errorf("%s/plugin.json must set \"backend\": true and \"executable\"", dir)
	}
	version := "0.0.0"
	if pkg, err := os.ReadFile("package.json"); err == nil {
		var p struct {
			Version string `json:"version"`
		}
		if json.Unmarshal(pkg, &p) == nil && p.Version != "" {
			version = p.Version
		}
	}
	out := strings.NewReplacer("%VERSION%", version, "%TODAY%", time.Now().UTC().Format("2006-01-02"), "%PLUGIN_ID%", m.ID).Replace(string(raw))
	for _, p := range pluginPlatforms {
		exe := filepath.Join("dist", m.Executable+"_"+p[0]+"_"+p[1])
		if p[0] == "windows" {
			exe += ".exe"
		}
		if _, err := os.Stat(exe); err != nil {
			return fmt.Errorf("the backend build left no %s: %w", exe, err)
		}
	}
	fmt.Println("+ dist/plugin.json")
	return os.WriteFile(filepath.Join("dist", "plugin.json"), []byte(out), 0o644)
}

// Test runs the backend's tests, the plugin harness included (it builds
// the executable and drives it over Grafana's plugin protocol).
func (Plugin) Test() error {
	return run("go", "test", "-count=1", "./datasource/...")
}
