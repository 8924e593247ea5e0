package deploy

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// needProgram returns a program's path; when it is missing the test skips,
// or fails under LOGSIFT_REQUIRE_SERVICES=1 (CI), with how to install it.
func needProgram(t *testing.T, name, hint string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("LOGSIFT_REQUIRE_SERVICES") == "1" {
			t.Fatalf("%s is required (LOGSIFT_REQUIRE_SERVICES=1) but not on PATH: %s", name, hint)
		}
		t.Skipf("%s not on PATH (%s); CI sets LOGSIFT_REQUIRE_SERVICES=1 and fails here", name, hint)
	}
	return p
}

// verifyUnit runs systemd-analyze verify on a copy of the unit whose
// binary path names an executable that exists here (verify refuses a
// missing ExecStart binary), and fails on anything it reports: it exits 0
// on unknown keys and bad values, which it only prints.
func verifyUnit(t *testing.T, name, text, binary string) {
	t.Helper()
	sa := needProgram(t, "systemd-analyze", "apt-get install -y systemd")
	truePath, err := exec.LookPath("true")
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), filepath.Base(name))
	if err := os.WriteFile(p, []byte(strings.ReplaceAll(text, binary, truePath)), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cmd := exec.Command(sa, "verify", p)
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	if err != nil || out.Len() > 0 {
		t.Errorf("systemd-analyze verify %s: %v\n%s", name, err, out.String())
	}
}
