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

// TestBadConfigInputs: every bad input of the configuration, each with its
// one-line error naming the thing (exit 2), or its documented behaviour.
func TestBadConfigInputs(t *testing.T) {
	dir := t.TempDir()
	yamlFile := func(body string) string {
		f, err := os.CreateTemp(dir, "*.yaml")
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString(body)
		f.Close()
		return f.Name()
	}
	ok := []string{"PREFLIGHT_SERVICE=x", "PREFLIGHT_HEALTH_URL=http://127.0.0.1:9/"}
	env := func(kv ...string) []string { return append(append([]string{}, ok...), kv...) }
	svc := "services:\n  - name: x\n    health_url: http://127.0.0.1:9/\n"
	for _, tc := range []struct {
		name   string
		env    []string
		yaml   string // with --config FILE
		args   []string
		code   int
		stderr string // the whole of stderr, FILE replaced by the file's path
	}{
		{name: "second YAML document", yaml: svc + "---\nservices:\n  - name: y\n    health_url: http://127.0.0.1:9/\n",
			code: 2, stderr: "preflight: FILE:4: another YAML document (---): want one, with every service under one services key\n"},
		{name: "service starting with -", env: []string{"PREFLIGHT_SERVICE=-x", "PREFLIGHT_HEALTH_URL=http://127.0.0.1:9/"},
			code: 2, stderr: `preflight: PREFLIGHT_SERVICE: "-x": must be 1 to 128 letters, digits and _ . @ -, starting with a letter or a digit` + "\n"},
		{name: "service @", env: []string{"PREFLIGHT_SERVICE=@", "PREFLIGHT_HEALTH_URL=http://127.0.0.1:9/"},
			code: 2, stderr: `preflight: PREFLIGHT_SERVICE: "@": must be 1 to 128 letters, digits and _ . @ -, starting with a letter or a digit` + "\n"},
		{name: "YAML name starting with _", yaml: "services:\n  - name: _x\n    health_url: http://127.0.0.1:9/\n",
			code: 2, stderr: `preflight: FILE:2: name: "_x": must be 1 to 128 letters, digits and _ . @ -, starting with a letter or a digit (service _x)` + "\n"},
		{name: "mistyped variable warns, start still runs", env: env("PREFLIGHT_INTERVAL=5"), args: []string{"--check"},
			code: 0, stderr: "preflight: warning: PREFLIGHT_INTERVAL is not a preflight variable and is ignored (did you mean PREFLIGHT_INTERVAL_SECONDS?)\n"},
		{name: "misspelt variable", env: env("PREFLIGHT_TOP_PROCESES=9"), args: []string{"--check"},
			code: 0, stderr: "preflight: warning: PREFLIGHT_TOP_PROCESES is not a preflight variable and is ignored (did you mean PREFLIGHT_TOP_PROCESSES?)\n"},
		{name: "unknown variable, nothing near", env: env("PREFLIGHT_COLOUR=red"), args: []string{"--check"},
			code: 0, stderr: "preflight: warning: PREFLIGHT_COLOUR is not a preflight variable and is ignored\n"},
		{name: "timeout 0", env: env("PREFLIGHT_TIMEOUT_SECONDS=0"),
			code: 2, stderr: "preflight: PREFLIGHT_TIMEOUT_SECONDS: 0 seconds is out of range (0.001 to 600; leave it unset for the smaller of 10 and the interval)\n"},
		{name: "YAML timeout 0", yaml: svc + "    timeout_seconds: 0\n",
			code: 2, stderr: "preflight: FILE:4: timeout_seconds: 0 seconds is out of range (0.001 to 600; leave it unset for the smaller of 10 and the interval)\n"},
		{name: "empty --dir", env: ok, args: []string{"--dir", ""},
			code: 2, stderr: "preflight: start: --dir: must not be empty\n"},
		{name: "empty --dir=", env: ok, args: []string{"--dir="},
			code: 2, stderr: "preflight: start: --dir: must not be empty\n"},
		{name: "negative interval", env: env("PREFLIGHT_INTERVAL_SECONDS=-1"),
			code: 2, stderr: "preflight: PREFLIGHT_INTERVAL_SECONDS: -1 seconds is out of range (0.05 to 86400)\n"},
		{name: "NaN interval", env: env("PREFLIGHT_INTERVAL_SECONDS=NaN"),
			code: 2, stderr: "preflight: PREFLIGHT_INTERVAL_SECONDS: NaN seconds is out of range (0.05 to 86400)\n"},
		{name: "Inf timeout", env: env("PREFLIGHT_TIMEOUT_SECONDS=Inf"),
			code: 2, stderr: "preflight: PREFLIGHT_TIMEOUT_SECONDS: +Inf seconds is out of range (0.001 to 600)\n"},
		{name: "huge float", env: env("PREFLIGHT_INTERVAL_SECONDS=1e400"),
			code: 2, stderr: `preflight: PREFLIGHT_INTERVAL_SECONDS: "1e400" is out of range` + "\n"},
		{name: "huge int", env: env("PREFLIGHT_KEEP=99999999999999999999"),
			code: 2, stderr: `preflight: PREFLIGHT_KEEP: "99999999999999999999" is out of range` + "\n"},
		{name: "negative int", env: env("PREFLIGHT_TOP_PROCESSES=-1"),
			code: 2, stderr: "preflight: PREFLIGHT_TOP_PROCESSES: -1 is out of range (0 to 100)\n"},
		{name: "captures the readers would refuse", env: env("PREFLIGHT_INTERVAL_SECONDS=0.05", "PREFLIGHT_BUFFER_SAMPLES=1000", "PREFLIGHT_TOP_PROCESSES=100"),
			code: 2, stderr: "preflight: PREFLIGHT_BUFFER_SAMPLES: 1000 samples with TOP_PROCESSES 100 make captures larger than the readers take (16 MiB): at most 241 (BUFFER_SAMPLES × (TOP_PROCESSES + 24) ≤ 30000)\n"},
		{name: "YAML captures the readers would refuse", yaml: svc + "    buffer_samples: 2000\n",
			code: 2, stderr: "preflight: FILE:4: buffer_samples: 2000 samples with TOP_PROCESSES 5 make captures larger than the readers take (16 MiB): at most 1034 (BUFFER_SAMPLES × (TOP_PROCESSES + 24) ≤ 30000) (service x)\n"},
		{name: "negative service interval", env: env("PREFLIGHT_SERVICE_INTERVAL_SECONDS=-1"),
			code: 2, stderr: "preflight: PREFLIGHT_SERVICE_INTERVAL_SECONDS: -1 seconds is out of range (0.05 to 86400) (or 0: no service trace)\n"},
		{name: "trace too long", env: env("PREFLIGHT_TRACE_SECONDS=7200"),
			code: 2, stderr: "preflight: PREFLIGHT_TRACE_SECONDS: 7200 seconds is out of range (1 to 3600)\n"},
		{name: "trace of too many points", env: env("PREFLIGHT_SERVICE_INTERVAL_SECONDS=0.1", "PREFLIGHT_TRACE_SECONDS=600"),
			code: 2, stderr: "preflight: PREFLIGHT_TRACE_SECONDS: 600 seconds at SERVICE_INTERVAL_SECONDS 0.1 is more than 3600 trace points: at most 360\n"},
		{name: "YAML trace 0", yaml: svc + "    trace_seconds: 0\n",
			code: 2, stderr: "preflight: FILE:4: trace_seconds: 0 seconds is out of range (1 to 3600) (service x)\n"},
		{name: "no trace", env: env("PREFLIGHT_SERVICE_INTERVAL_SECONDS=0"), args: []string{"--check"}, code: 0},
		{name: "no samples", env: env("PREFLIGHT_BUFFER_SAMPLES=0"),
			code: 2, stderr: "preflight: PREFLIGHT_BUFFER_SAMPLES: 0 is out of range (1 to 1034)\n"},
		{name: "not a number", env: env("PREFLIGHT_BUFFER_SAMPLES=lots"),
			code: 2, stderr: `preflight: PREFLIGHT_BUFFER_SAMPLES: "lots" is not a whole number` + "\n"},
		{name: "YAML huge float", yaml: svc + "    interval_seconds: 1e400\n",
			code: 2, stderr: `preflight: FILE:4: interval_seconds: "1e400" is out of range` + "\n"},
		{name: "YAML NaN", yaml: svc + "    interval_seconds: .nan\n",
			code: 2, stderr: `preflight: FILE:4: interval_seconds: ".nan" is not a number` + "\n"},
		{name: "YAML wrong type", yaml: svc + "    keep: {n: 1}\n",
			code: 2, stderr: "preflight: FILE:4: keep: want a single value\n"},
		{name: "YAML bool for a number", yaml: svc + "    buffer_samples: true\n",
			code: 2, stderr: `preflight: FILE:4: buffer_samples: "true" is not a whole number` + "\n"},
		{name: "YAML null", yaml: svc + "    unit: ~\n",
			code: 2, stderr: "preflight: FILE:4: unit: no value (leave the key out for the default)\n"},
		{name: "not a unit name", env: env("PREFLIGHT_UNIT=a$b.service"),
			code: 2, stderr: `preflight: PREFLIGHT_UNIT: "a$b.service" is not a unit name (1 to 255 letters, digits and : _ . \ @ -)` + "\n"},
		{name: "YAML syntax error names its line", yaml: "services:\n\t- name: x\n",
			code: 2, stderr: "preflight: FILE:2: found character that cannot start any token\n"},
		{name: "YAML empty value", yaml: "capture_dir:\n" + svc,
			code: 2, stderr: "preflight: FILE:1: capture_dir: no value (leave the key out for the default)\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"start"}
			file := ""
			if tc.yaml != "" {
				file = yamlFile(tc.yaml)
				args = append(args, "--config", file, "--check")
			}
			args = append(args, tc.args...)
			r := preflight(t, tc.env, args...)
			want := strings.ReplaceAll(tc.stderr, "FILE", file)
			if r.code != tc.code || r.stderr != want {
				t.Errorf("exit %d, stderr\n%q\nwant exit %d, stderr\n%q", r.code, r.stderr, tc.code, want)
			}
			if tc.code == 0 && !strings.Contains(r.stdout, "name: x") {
				t.Errorf("start --check printed no configuration:\n%s", r.stdout)
			}
		})
	}
}
