package recorder

import (
	"errors"
	"strings"
	"testing"
)

func TestConfigsFromYAML(t *testing.T) {
	const file = "preflight.yaml"
	data := `# the design sketch's file, with defaults
capture_dir: /srv/captures
defaults:
  interval_seconds: 10
  keep: 7
services:
  - name: dead-drop
    health_url: https://example.internal/drop/health
    interval_seconds: 30
    buffer_samples: 20
  - name: api
    health_url: tcp://127.0.0.1:5432
    unit: postgresql.service
`
	env := []string{"PREFLIGHT_TOP_PROCESSES=9", "PREFLIGHT_KEEP=3", "PREFLIGHT_SERVICE=ignored", "PREFLIGHT_HEALTH_URL=http://ignored/"}
	cfgs, err := ConfigsFromYAML(file, []byte(data), env)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfgs) != 2 {
		t.Fatalf("want 2 services, got %d", len(cfgs))
	}
	d, a := cfgs[0], cfgs[1]
	if d.Service != "dead-drop" || d.IntervalSeconds != 30 || d.BufferSamples != 20 || d.TimeoutSeconds != 10 ||
		d.Unit != "dead-drop.service" || d.CaptureDir != "/srv/captures" || d.Keep != 7 || d.TopProcesses != 9 {
		t.Errorf("dead-drop: %+v", d)
	}
	if a.Service != "api" || a.IntervalSeconds != 10 || a.BufferSamples != 20 || a.Unit != "postgresql.service" ||
		a.HealthURL != "tcp://127.0.0.1:5432" || a.FailureThreshold != 1 {
		t.Errorf("api: %+v", a)
	}
	// --check prints a file that configures the same recorders.
	out, err := MarshalConfigs(cfgs)
	if err != nil {
		t.Fatal(err)
	}
	again, err := ConfigsFromYAML("check.yaml", out, nil)
	if err != nil || len(again) != 2 || again[0] != d || again[1] != a {
		t.Errorf("--check output does not round-trip: %v\n%s", err, out)
	}
}

func TestConfigsFromYAMLErrors(t *testing.T) {
	svc := "services:\n  - name: x\n    health_url: http://127.0.0.1/\n"
	for _, tc := range []struct {
		name, data, want string
	}{
		{"typo", svc + "    interval_second: 30\n", "preflight.yaml:4: interval_second: unknown key"},
		{"top-level typo", "captur_dir: /x\n" + svc, "preflight.yaml:1: captur_dir: unknown key"},
		{"defaults typo", "defaults:\n  keeep: 3\n" + svc, "preflight.yaml:2: defaults.keeep: unknown key"},
		{"name in defaults", "defaults:\n  name: y\n" + svc, "preflight.yaml:2: defaults.name: belongs to each service"},
		{"not a number", svc + "    interval_seconds: soon\n", `preflight.yaml:4: interval_seconds: "soon" is not a number`},
		{"not an int", svc + "    keep: 2.5\n", `preflight.yaml:4: keep: "2.5" is not a whole number`},
		{"a list for a number", svc + "    keep: [1]\n", "preflight.yaml:4: keep: want a single value"},
		{"out of range", svc + "    interval_seconds: 0\n", "preflight.yaml:4: interval_seconds: 0 seconds is out of range"},
		{"bad url", "services:\n  - name: x\n    health_url: ftp://h/\n", `preflight.yaml:3: health_url: `},
		{"missing url", "services:\n  - name: x\n", "preflight.yaml:2: health_url: required"},
		{"bad name", "services:\n  - name: ../x\n    health_url: http://h/\n", "preflight.yaml:2: name: "},
		{"duplicate", svc + "  - name: x\n    health_url: http://h/\n", `preflight.yaml:4: name: service "x" is listed twice (first on line 2)`},
		{"duplicate key", "services:\n  - name: x\n    name: y\n    health_url: http://h/\n", "preflight.yaml:3: name: key given twice (first on line 2)"},
		{"no services", "capture_dir: /x\n", "preflight.yaml:1: services: want a list of at least one service"},
		{"empty services", "services: []\n", "preflight.yaml:1: services: want a list"},
		{"empty file", "", "preflight.yaml: empty file"},
		{"not yaml", "services: [\n", "preflight.yaml:1: did not find expected node content"},
		{"a list at the top", "- a\n", "preflight.yaml:1: want a mapping"},
		{"a string service", "services:\n  - x\n", "preflight.yaml:2: services[0]: want a mapping"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ConfigsFromYAML("preflight.yaml", []byte(tc.data), nil)
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("error %v is not a *ConfigError", err)
			}
			if !strings.HasPrefix(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q, want one line starting %q", err, tc.want)
			}
		})
	}
}

func TestConfigsFromYAMLEnvErrors(t *testing.T) {
	_, err := ConfigsFromYAML("f.yaml", []byte("services:\n  - name: x\n    health_url: http://h/\n"), []string{"PREFLIGHT_KEEP=lots"})
	if err == nil || !strings.HasPrefix(err.Error(), "PREFLIGHT_KEEP: ") {
		t.Errorf("a bad variable under a file: %v", err)
	}
}
