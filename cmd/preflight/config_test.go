package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/preflight-rec/preflight/recorder/capture"
)

// TestConfigFileTwoServices is the YAML issue's "done when": two services
// in one process, failing at different times, each get one capture holding
// only their own health history.
func TestConfigFileTwoServices(t *testing.T) {
	a, b := newHealthServer(t), newHealthServer(t)
	dir := t.TempDir()
	file := filepath.Join(t.TempDir(), "preflight.yaml")
	os.WriteFile(file, []byte(fmt.Sprintf(`capture_dir: %s
defaults:
  interval_seconds: 0.05
  buffer_samples: 4
services:
  - name: alpha
    health_url: %s/alpha
  - name: beta
    health_url: %s/beta
    failure_threshold: 2
`, dir, a.URL, b.URL)), 0o600)

	r := preflight(t, nil, "start", "--config", file, "--check")
	if r.code != 0 || !strings.Contains(r.stdout, "name: alpha") || !strings.Contains(r.stdout, "failure_threshold: 2") {
		t.Fatalf("--check: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("--check started something: %v", entries)
	}

	startRecorder(t, nil, "--config", file)
	waitFor(t, 5*time.Second, "healthy checks", func() bool { return a.hits.Load() > 3 && b.hits.Load() > 3 })
	a.status.Store(503)
	waitFor(t, 5*time.Second, "alpha's capture", func() bool { return len(captures(t, filepath.Join(dir, "alpha"))) == 1 })
	time.Sleep(200 * time.Millisecond)
	if n := len(captures(t, filepath.Join(dir, "beta"))); n != 0 {
		t.Fatalf("beta has %d captures while only alpha failed", n)
	}
	b.status.Store(500)
	waitFor(t, 5*time.Second, "beta's capture", func() bool { return len(captures(t, filepath.Join(dir, "beta"))) == 1 })

	for svc, want := range map[string]string{"alpha": "HTTP 503", "beta": "HTTP 500"} {
		files := captures(t, filepath.Join(dir, svc))
		if len(files) != 1 {
			t.Fatalf("%s: %d captures, want 1", svc, len(files))
		}
		c, _, err := capture.Read(files[0])
		if err != nil {
			t.Fatal(err)
		}
		if c.Service != svc || c.HealthError != want || !strings.HasSuffix(c.HealthURL, "/"+svc) {
			t.Errorf("%s: service %q error %q url %q", svc, c.Service, c.HealthError, c.HealthURL)
		}
		for _, h := range c.Health {
			if !h.OK && h.Error != want {
				t.Errorf("%s: a failed check %q that is not its own", svc, h.Error)
			}
		}
	}
}

func TestConfigFileErrors(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "preflight.yaml")
	os.WriteFile(file, []byte("services:\n  - name: dead-drop\n    health_url: http://127.0.0.1:9/\n    interval_second: 30\n"), 0o600)
	r := preflight(t, nil, "start", "--config", file)
	want := "preflight: " + file + ":4: interval_second: unknown key\n"
	if r.code != 2 || r.stderr != want {
		t.Errorf("typo: exit %d stderr %q, want 2 and %q", r.code, r.stderr, want)
	}
	r = preflight(t, nil, "start", "--config", filepath.Join(dir, "missing.yaml"))
	if r.code != 2 || !strings.Contains(r.stderr, "missing.yaml") {
		t.Errorf("missing file: exit %d stderr %q", r.code, r.stderr)
	}
	// --dir beats the file's capture_dir.
	os.WriteFile(file, []byte("capture_dir: /nonexistent/x\nservices:\n  - name: s\n    health_url: http://127.0.0.1:9/\n"), 0o600)
	r = preflight(t, nil, "start", "--config", file, "--check", "--dir", "/tmp/elsewhere")
	if r.code != 0 || !strings.Contains(r.stdout, "capture_dir: /tmp/elsewhere") {
		t.Errorf("--dir over the file: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// The example file shipped in the package is a valid configuration.
func TestShippedExampleConfig(t *testing.T) {
	r := preflight(t, nil, "start", "--config", filepath.Join("..", "..", "packaging", "examples", "preflight.yaml"), "--check")
	if r.code != 0 || !strings.Contains(r.stdout, "name: dead-drop") {
		t.Errorf("packaging/examples/preflight.yaml: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}
