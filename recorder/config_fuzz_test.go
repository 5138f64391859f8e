package recorder

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/preflight-rec/preflight/recorder/capture"
	"github.com/preflight-rec/preflight/recorder/fuzztest"
)

// Fuzz targets of the configuration: the environment and the YAML file
// never panic, every error is a *ConfigError of one line naming the
// setting, and whatever they accept is valid. `make fuzz` runs each under
// go test -fuzz; go test runs their seeds and TestConfigMutations.

// accepted checks a configuration that was accepted.
func accepted(t *testing.T, cfg Config) {
	t.Helper()
	again := cfg
	if err := again.Validate(); err != nil {
		t.Fatalf("accepted %+v, but it does not validate again: %v", cfg, err)
	}
	if capture.ValidService(cfg.Service) != nil || cfg.Interval() <= 0 || cfg.Timeout() <= 0 || cfg.Unit == "" || cfg.CaptureDir == "" {
		t.Fatalf("accepted an unusable configuration %+v", cfg)
	}
	dir := filepath.Clean(cfg.CaptureDir)
	if p := filepath.Join(cfg.CaptureDir, cfg.Service); filepath.Dir(p) != dir {
		t.Fatalf("service %q escapes %s: %s", cfg.Service, dir, p)
	}
}

// rejected checks a configuration error.
func rejected(t *testing.T, err error, prefix string) {
	t.Helper()
	var ce *ConfigError
	if !errors.As(err, &ce) {
		t.Fatalf("error %T %v is not a *ConfigError", err, err)
	}
	if msg := err.Error(); strings.ContainsAny(msg, "\n\r") || !strings.HasPrefix(msg, prefix) {
		t.Fatalf("error %q is not one line starting with %q", msg, prefix)
	}
}

var envTarget = fuzztest.Target{
	Name: "FuzzConfigFromEnv",
	Seeds: []string{
		"PREFLIGHT_SERVICE=x\nPREFLIGHT_HEALTH_URL=http://127.0.0.1:8080/health",
		"PREFLIGHT_SERVICE=dead-drop\nPREFLIGHT_HEALTH_URL=tcp://127.0.0.1:5432\nPREFLIGHT_INTERVAL_SECONDS=0.2\nPREFLIGHT_BUFFER_SAMPLES=5\nPREFLIGHT_TIMEOUT_SECONDS=0.1\nPREFLIGHT_FAILURE_THRESHOLD=3\nPREFLIGHT_KEEP=2\nPREFLIGHT_TOP_PROCESSES=0\nPREFLIGHT_LOG_LEVEL=DEBUG\nPREFLIGHT_UNIT=x.service\nPREFLIGHT_CGROUP=/system.slice/x.service\nPREFLIGHT_CAPTURE_DIR=/tmp/c",
		"PREFLIGHT_SERVICE=..\nPREFLIGHT_HEALTH_URL=ftp://x/",
		"PREFLIGHT_SERVICE=x\nPREFLIGHT_HEALTH_URL=http://u:p@h/\nPREFLIGHT_INTERVAL_SECONDS=NaN",
		"PREFLIGHT_SERVICE=x\nPREFLIGHT_HEALTH_URL=http://h/\nPREFLIGHT_BUFFER_SAMPLES=99999999999999999999",
	},
	Check: func(t *testing.T, data []byte) {
		cfg, err := ConfigFromEnv(strings.Split(string(data), "\n"))
		if err != nil {
			rejected(t, err, "")
			if name := err.(*ConfigError).Name; !strings.HasPrefix(name, EnvPrefix) && name != "environment" {
				t.Fatalf("error %q names no variable", err)
			}
			return
		}
		accepted(t, cfg)
	},
}

var yamlTarget = fuzztest.Target{
	Name: "FuzzConfigsFromYAML",
	Seeds: []string{
		"capture_dir: /var/lib/preflight\nservices:\n  - name: dead-drop\n    health_url: https://example.internal/drop/health\n    interval_seconds: 30\n    buffer_samples: 20\n",
		"defaults:\n  interval_seconds: 0.5\n  keep: 3\nservices:\n  - name: a\n    health_url: http://127.0.0.1/\n  - name: b\n    health_url: tcp://127.0.0.1:22\n    failure_threshold: 2\n",
		"services:\n  - name: a\n    health_url: http://h/\n  - name: a\n    health_url: http://h/\n",
		"services: []\n", "services:\n  - name: &x a\n    health_url: *x\n", "a: &a [*a]\n", "- - - - - - - -\n",
		"services:\n  - {name: x, health_url: 'http://h/', unknown: 1}\n", "\t", "services:\n  - name: x\n    health_url: http://h/\n    keep: 1e3\n",
	},
	Check: func(t *testing.T, data []byte) {
		cfgs, err := ConfigsFromYAML("p.yaml", data, nil)
		if err != nil {
			rejected(t, err, "p.yaml")
			return
		}
		seen := map[string]bool{}
		for _, c := range cfgs {
			accepted(t, c)
			if seen[c.Service] {
				t.Fatalf("service %q accepted twice", c.Service)
			}
			seen[c.Service] = true
		}
		if len(cfgs) == 0 {
			t.Fatal("no error and no service")
		}
	},
}

func FuzzConfigFromEnv(f *testing.F)   { envTarget.Fuzz(f) }
func FuzzConfigsFromYAML(f *testing.F) { yamlTarget.Fuzz(f) }

func TestConfigMutations(t *testing.T) {
	fuzztest.Mutations(t, 5000, envTarget, yamlTarget)
}
