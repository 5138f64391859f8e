package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/preflight-rec/preflight/recorder"
)

// maxExposure is the highest `systemd-analyze security` exposure the
// shipped unit may have.
const maxExposure = 2.0

const unitPath = "packaging/systemd/preflight@.service"

func requireAnalyze(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Skipf("needs systemd-analyze: %v", err)
	}
}

// TestUnitSecurity: the unit's exposure, offline, is at most maxExposure.
func TestUnitSecurity(t *testing.T) {
	requireAnalyze(t)
	cmd := exec.Command("systemd-analyze", "security", "--offline=true", "--no-pager", unitPath)
	cmd.Dir = repoRoot(t)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze security: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`Overall exposure level for \S+: ([0-9.]+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no exposure level in:\n%s", out)
	}
	score, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("exposure %.1f", score)
	if score > maxExposure {
		t.Errorf("exposure %.1f > %.1f:\n%s", score, maxExposure, out)
	}
}

// TestUnitVerify: `systemd-analyze verify` of the unit as `make install`
// lays it out, against a root holding the binary, the man page and this
// machine's targets and slices (what the unit's dependencies name), prints
// nothing and exits 0.
func TestUnitVerify(t *testing.T) {
	requireAnalyze(t)
	if _, err := exec.LookPath("make"); err != nil {
		t.Skipf("needs make: %v", err)
	}
	b := build(t)
	root := t.TempDir()
	makeInstall(t, root, b.preflight)
	units := filepath.Join(root, "usr/lib/systemd/system")
	for _, pattern := range []string{"*.target", "*.slice"} {
		files, _ := filepath.Glob(filepath.Join("/usr/lib/systemd/system", pattern))
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				continue // a dangling alias
			}
			if err := os.WriteFile(filepath.Join(units, filepath.Base(f)), data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	cmd := exec.Command("systemd-analyze", "verify", "--root="+root, filepath.Join(units, "preflight@.service"))
	// Documentation=man:preflight(1) is looked up with man(1).
	cmd.Env = append(os.Environ(), "MANPATH="+filepath.Join(root, "usr/share/man"))
	out, err := cmd.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// TestCatalog: the journal's catalog, as make install lays it out,
// compiles, and explains preflight's "capture written" MESSAGE_ID.
func TestCatalog(t *testing.T) {
	if _, err := exec.LookPath("journalctl"); err != nil {
		t.Skipf("needs journalctl: %v", err)
	}
	id := captureWrittenID(t)
	root := t.TempDir()
	dir := filepath.Join(root, "usr/lib/systemd/catalog")
	data, err := os.ReadFile(filepath.Join(repoRoot(t), "packaging/catalog/preflight.catalog"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "preflight.catalog"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("journalctl", "--root="+root, "--update-catalog").CombinedOutput(); err != nil || len(out) > 0 {
		t.Fatalf("journalctl --update-catalog: %v\n%s", err, out)
	}
	out, err := exec.Command("journalctl", "--root="+root, "--dump-catalog", id).CombinedOutput()
	if err != nil {
		t.Fatalf("journalctl --dump-catalog %s: %v\n%s", id, err, out)
	}
	for _, want := range []string{"-- " + id, "Subject: preflight wrote a capture", "@PREFLIGHT_CAPTURE@", "preflight last @PREFLIGHT_SERVICE@"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("catalog entry %s lacks %q:\n%s", id, want, out)
		}
	}
}

// TestManPage: the man page names every command and PREFLIGHT_ variable
// the README does.
func TestManPage(t *testing.T) {
	root := repoRoot(t)
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	man, err := os.ReadFile(filepath.Join(root, "packaging/preflight.1"))
	if err != nil {
		t.Fatal(err)
	}
	text := strings.ReplaceAll(string(man), `\-`, "-")
	vars := regexp.MustCompile(`PREFLIGHT_[A-Z_]+[A-Z]`).FindAllString(string(readme), -1)
	cmds := regexp.MustCompile(`(?m)^preflight ([a-z]+)`).FindAllStringSubmatch(string(readme), -1)
	if len(vars) < 10 || len(cmds) < 5 {
		t.Fatalf("README.md: found %d variables and %d commands; has its layout changed?", len(vars), len(cmds))
	}
	for _, v := range vars {
		if !strings.Contains(text, v) {
			t.Errorf("preflight.1 lacks %s, which README.md documents", v)
		}
	}
	for _, c := range cmds {
		if !strings.Contains(text, `\fBpreflight `+c[1]) {
			t.Errorf("preflight.1's synopsis lacks 'preflight %s', which README.md documents", c[1])
		}
	}
}

// TestExamples: the shipped examples are valid configurations, with every
// commented-out default set too.
func TestExamples(t *testing.T) {
	root := repoRoot(t)
	env, err := os.ReadFile(filepath.Join(root, "packaging/examples/dead-drop.env"))
	if err != nil {
		t.Fatal(err)
	}
	environ := []string{"PREFLIGHT_SERVICE=dead-drop"} // set by the unit
	for line := range strings.Lines(string(env)) {
		line = strings.TrimSpace(line)
		if v, ok := strings.CutPrefix(line, "#"); ok && strings.HasPrefix(v, recorder.EnvPrefix) {
			line = v
		}
		if strings.HasPrefix(line, recorder.EnvPrefix) {
			environ = append(environ, line)
		}
	}
	if len(environ) < 10 {
		t.Fatalf("dead-drop.env sets %d variables; want every one", len(environ))
	}
	if _, err := recorder.ConfigFromEnv(environ); err != nil {
		t.Errorf("dead-drop.env: %v", err)
	}

	const yamlPath = "packaging/examples/preflight.yaml"
	data, err := os.ReadFile(filepath.Join(root, yamlPath))
	if err != nil {
		t.Fatal(err)
	}
	cfgs, err := recorder.ConfigsFromYAML(yamlPath, data, nil)
	if err != nil {
		t.Fatalf("%s: %v", yamlPath, err)
	}
	if len(cfgs) != 2 || cfgs[0].Service != "dead-drop" {
		t.Errorf("%s: %d services (%+v), want dead-drop and billing", yamlPath, len(cfgs), cfgs)
	}
}
