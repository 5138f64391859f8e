package recorder

import (
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/preflight-rec/preflight/recorder/capture"
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

var envTarget = fuzzTarget{
	name: "FuzzConfigFromEnv",
	seeds: []string{
		"PREFLIGHT_SERVICE=x\nPREFLIGHT_HEALTH_URL=http://127.0.0.1:8080/health",
		"PREFLIGHT_SERVICE=dead-drop\nPREFLIGHT_HEALTH_URL=tcp://127.0.0.1:5432\nPREFLIGHT_INTERVAL_SECONDS=0.2\nPREFLIGHT_BUFFER_SAMPLES=5\nPREFLIGHT_TIMEOUT_SECONDS=0.1\nPREFLIGHT_FAILURE_THRESHOLD=3\nPREFLIGHT_KEEP=2\nPREFLIGHT_TOP_PROCESSES=0\nPREFLIGHT_LOG_LEVEL=DEBUG\nPREFLIGHT_UNIT=x.service\nPREFLIGHT_CGROUP=/system.slice/x.service\nPREFLIGHT_CAPTURE_DIR=/tmp/c",
		"PREFLIGHT_SERVICE=..\nPREFLIGHT_HEALTH_URL=ftp://x/",
		"PREFLIGHT_SERVICE=x\nPREFLIGHT_HEALTH_URL=http://u:p@h/\nPREFLIGHT_INTERVAL_SECONDS=NaN",
		"PREFLIGHT_SERVICE=x\nPREFLIGHT_HEALTH_URL=http://h/\nPREFLIGHT_BUFFER_SAMPLES=99999999999999999999",
	},
	check: func(t *testing.T, data []byte) {
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

var yamlTarget = fuzzTarget{
	name: "FuzzConfigsFromYAML",
	seeds: []string{
		"capture_dir: /var/lib/preflight\nservices:\n  - name: dead-drop\n    health_url: https://example.internal/drop/health\n    interval_seconds: 30\n    buffer_samples: 20\n",
		"defaults:\n  interval_seconds: 0.5\n  keep: 3\nservices:\n  - name: a\n    health_url: http://127.0.0.1/\n  - name: b\n    health_url: tcp://127.0.0.1:22\n    failure_threshold: 2\n",
		"services:\n  - name: a\n    health_url: http://h/\n  - name: a\n    health_url: http://h/\n",
		"services: []\n", "services:\n  - name: &x a\n    health_url: *x\n", "a: &a [*a]\n", "- - - - - - - -\n",
		"services:\n  - {name: x, health_url: 'http://h/', unknown: 1}\n", "\t", "services:\n  - name: x\n    health_url: http://h/\n    keep: 1e3\n",
	},
	check: func(t *testing.T, data []byte) {
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

func FuzzConfigFromEnv(f *testing.F)   { envTarget.fuzz(f) }
func FuzzConfigsFromYAML(f *testing.F) { yamlTarget.fuzz(f) }

func TestConfigMutations(t *testing.T) {
	mutations(t, 5000, envTarget, yamlTarget)
}

// ---- a small, deterministic mutator (the same in every package's fuzz file) ----

// fuzzTarget is one fuzz property: a Fuzz function runs it under go test
// -fuzz (make fuzz); plain go test runs it over the seed corpus and over a
// fixed-seed batch of mutations of it.
type fuzzTarget struct {
	name  string // the Fuzz function, whose testdata/fuzz directory holds seeds
	seeds []string
	check func(t *testing.T, data []byte)
}

func (ft fuzzTarget) fuzz(f *testing.F) {
	for _, s := range ft.seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(ft.check)
}

// corpus returns the target's seeds: in code and in testdata/fuzz/NAME.
func (ft fuzzTarget) corpus(t *testing.T) [][]byte {
	var out [][]byte
	for _, s := range ft.seeds {
		out = append(out, []byte(s))
	}
	files, _ := filepath.Glob(filepath.Join("testdata", "fuzz", ft.name, "*"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		if len(lines) != 2 || lines[0] != "go test fuzz v1" || !strings.HasPrefix(lines[1], "[]byte(") {
			t.Fatalf("%s: not a []byte corpus file", f)
		}
		v, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "[]byte("), ")"))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out = append(out, []byte(v))
	}
	return out
}

// mutations runs each target over n mutations of its corpus (fixed seed)
// and logs how many inputs it tried.
func mutations(t *testing.T, n int, targets ...fuzzTarget) {
	for _, ft := range targets {
		t.Run(ft.name, func(t *testing.T) {
			seeds := ft.corpus(t)
			rng := rand.New(rand.NewPCG(6, uint64(len(ft.name))))
			for _, s := range seeds {
				ft.check(t, s)
			}
			for i := range n {
				data := mutate(rng, seeds)
				ft.check(t, data)
				if t.Failed() {
					t.Fatalf("mutation %d: %q", i, data)
				}
			}
			t.Logf("%s: %d seeds + %d mutations", ft.name, len(seeds), n)
		})
	}
}

var interesting = []string{"\x00", "\n", " ", "\t", "=", ":", "(", ")", "-", "0", "9", "18446744073709551616", "-1",
	"\xff", "\"", "{", "}", "[", "]", ",", "/", "..", "%", "\\", "NaN", "1e400", "é"}

// mutate returns a variation of a random seed: bit flips, insertions of
// interesting bytes, deletions, duplications and splices.
func mutate(rng *rand.Rand, seeds [][]byte) []byte {
	b := slices.Clone(seeds[rng.IntN(len(seeds))])
	for range 1 + rng.IntN(4) {
		i := rng.IntN(len(b) + 1)
		switch rng.IntN(5) {
		case 0:
			if i < len(b) {
				b[i] ^= 1 << rng.IntN(8)
			}
		case 1:
			b = slices.Insert(b, i, []byte(interesting[rng.IntN(len(interesting))])...)
		case 2:
			b = slices.Delete(b, i, min(len(b), i+1+rng.IntN(8)))
		case 3:
			j := min(len(b), i+rng.IntN(16))
			b = slices.Insert(b, i, slices.Clone(b[i:j])...)
		case 4:
			o := seeds[rng.IntN(len(seeds))]
			k := rng.IntN(len(o) + 1)
			b = append(b[:i:i], o[k:]...)
		}
	}
	return b
}
