//go:build mage

package main

// Targets for the pictures of the provisioned dashboards in
// docs/images/dashboards/: the data each panel showed (provisioning/render)
// and the screenshots the browser check takes of the panels drawn from it
// (tests/browser/panels).

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// DashboardData regenerates tests/browser/panels/data/: it runs the
// docker-compose setup without Docker (a server, the agent tailing and
// importing, Prometheus) for five and a half minutes, then asks every panel
// of every dashboard as Grafana would. Needs prometheus on the PATH.
func DashboardData() error {
	if err := ensurePackages(map[string]string{"prometheus": "prometheus"}); err != nil {
		return err
	}
	return run("go", "test", "-count=1", "-timeout=30m", "./provisioning/render", "-run", "TestFixtures", "-update")
}

// DashboardImages regenerates the data, then runs the frontend checks with
// UPDATE_DOCS_SCREENSHOT=1, which rewrites docs/images/dashboards/*.png
// (and docs/images/query-editor.png) from the browser check's screenshots.
func DashboardImages() error {
	if err := ensurePackages(map[string]string{"pngquant": "pngquant"}); err != nil {
		return err
	}
	if err := DashboardData(); err != nil {
		return err
	}
	fmt.Println("+ UPDATE_DOCS_SCREENSHOT=1 bash scripts/test-frontend.sh")
	cmd := exec.Command("bash", "scripts/test-frontend.sh")
	cmd.Env = append(os.Environ(), "UPDATE_DOCS_SCREENSHOT=1")
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %w", strings.Join(cmd.Args, " "), err)
	}
	return nil
}
