//go:build mage

package main

// Targets that ship logsift: every binary for every platform, the plugin
// zip, and the generated dashboards.
//
//	go run mage.go buildAll     # bin/<os>_<arch>/{logsift,logsift-agent}, dist/ (plugin backend and frontend)
//	go run mage.go package      # bin/logsift-datasource-<version>.zip
//	go run mage.go dashboards   # provisioning/dashboards/*.json from provisioning/dashgen

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/magefile/mage/mg"

	"github.com/logsift/logsift/deploy/pluginzip"
)

// serverPlatforms are the platforms the server is built for; the agent
// (unix only: it uses flock and inotify or kqueue) skips windows.
var serverPlatforms = [][2]string{
	{"linux", "amd64"},
	{"linux", "arm64"},
	{"darwin", "amd64"},
	{"darwin", "arm64"},
	{"windows", "amd64"},
}

// Dashboards regenerates provisioning/dashboards/*.json from the code in
// provisioning/dashgen (checked in; a test fails on drift).
func Dashboards() error {
	return run("go", "run", "./provisioning/generate")
}

// Frontend builds the plugin's frontend into dist/ (module.js, assets,
// README, plugin.json), installing the npm packages first when
// node_modules is missing. The backend executables in dist/ are kept.
func Frontend() error {
	if _, err := exec.LookPath("npm"); err != nil {
		return fmt.Errorf("the frontend build needs npm (Node.js 20 or newer): %w", err)
	}
	if _, err := os.Stat("node_modules"); err != nil {
		if err := run("npm", "ci", "--no-audit", "--no-fund"); err != nil {
			return err
		}
	}
	return run("npm", "run", "build")
}

// BuildAll builds everything: the server and the agent for every platform
// into bin/<os>_<arch>/, and the plugin (frontend, then the backend for
// every platform) into dist/.
func BuildAll() error {
	mg.SerialDeps(Frontend, Plugin.Build)
	for _, p := range serverPlatforms {
		if err := buildBinary(p, "logsift", "./pkg/cmd/logsift"); err != nil {
			return err
		}
		if p[0] == "windows" {
			continue
		}
		if err := buildBinary(p, "logsift-agent", "./agent/cmd/logsift-agent"); err != nil {
			return err
		}
	}
	return nil
}

// buildBinary cross-compiles a static binary into bin/<os>_<arch>/.
func buildBinary(p [2]string, name, pkg string) error {
	out := filepath.Join("bin", p[0]+"_"+p[1], name)
	if p[0] == "windows" {
		out += ".exe"
	}
	fmt.Printf("+ %s %s/%s -> %s\n", name, p[0], p[1], out)
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", out, pkg)
	cmd.Env = append(os.Environ(), "GOOS="+p[0], "GOARCH="+p[1], "CGO_ENABLED=0")
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("build %s for %s/%s: %w", name, p[0], p[1], err)
	}
	return nil
}

// Package builds the plugin and packs dist/ into
// bin/<plugin id>-<version>.zip, laid out as Grafana's plugin validator
// expects (one folder named after the plugin id), after checking that
// plugin.json, module.js, the README, the logos and the backend for every
// platform are there.
func Package() error {
	mg.SerialDeps(Frontend, Plugin.Build)
	platforms := make([]pluginzip.Platform, 0, len(pluginPlatforms))
	for _, p := range pluginPlatforms {
		platforms = append(platforms, pluginzip.Platform{OS: p[0], Arch: p[1]})
	}
	if err := os.MkdirAll("bin", 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp("bin", "plugin-*.zip")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	m, err := pluginzip.Write("dist", platforms, tmp)
	if err != nil {
		tmp.Close()
		return fmt.Errorf("package the plugin: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	out := filepath.Join("bin", fmt.Sprintf("%s-%s.zip", m.ID, strings.TrimPrefix(m.Info.Version, "v")))
	if err := os.Rename(tmp.Name(), out); err != nil {
		return err
	}
	fmt.Printf("+ %s (%s/%s host build)\n", out, runtime.GOOS, runtime.GOARCH)
	return nil
}
