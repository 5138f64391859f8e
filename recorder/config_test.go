package recorder

import (
	"strings"
	"testing"
)

func TestUnknownEnv(t *testing.T) {
	got := UnknownEnv([]string{
		"PATH=/bin", "PREFLIGHT_SERVICE=x", "PREFLIGHT_INTERVAL=5", "PREFLIGHT_SERVCE=x", "PREFLIGHT_HEALTHURL=u",
		"PREFLIGHT_TIMEOUT=1", "PREFLIGHT_BUFER_SAMPLE=3", "preflight_keep=1", "PREFLIGHT_COLOUR=red", "PREFLIGHT_=1", "PREFLIGHT_X=1",
	})
	want := []string{
		"PREFLIGHT_INTERVAL is not a preflight variable and is ignored (did you mean PREFLIGHT_INTERVAL_SECONDS?)",
		"PREFLIGHT_SERVCE is not a preflight variable and is ignored (did you mean PREFLIGHT_SERVICE?)",
		"PREFLIGHT_HEALTHURL is not a preflight variable and is ignored (did you mean PREFLIGHT_HEALTH_URL?)",
		"PREFLIGHT_TIMEOUT is not a preflight variable and is ignored (did you mean PREFLIGHT_TIMEOUT_SECONDS?)",
		"PREFLIGHT_BUFER_SAMPLE is not a preflight variable and is ignored (did you mean PREFLIGHT_BUFFER_SAMPLES?)",
		"PREFLIGHT_COLOUR is not a preflight variable and is ignored",
		"PREFLIGHT_ is not a preflight variable and is ignored",
		"PREFLIGHT_X is not a preflight variable and is ignored",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("UnknownEnv:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// Validate only reads; the derived defaults come from WithDefaults, once.
func TestValidateChangesNothing(t *testing.T) {
	cfg := Config{Service: "x", HealthURL: "http://h/", IntervalSeconds: 2, BufferSamples: 1, FailureThreshold: 1,
		CaptureDir: "/c", Keep: 1, LogLevel: "info", TraceSeconds: 120}
	before := cfg
	if err := cfg.Validate(); err == nil {
		t.Error("a configuration without its defaults validated")
	}
	if cfg != before {
		t.Errorf("Validate changed the configuration: %+v, was %+v", cfg, before)
	}
	d := cfg.WithDefaults()
	if cfg != before {
		t.Errorf("WithDefaults changed its receiver: %+v", cfg)
	}
	if d.TimeoutSeconds != 2 || d.Unit != "x.service" {
		t.Errorf("defaults: timeout %v unit %q, want 2 and x.service", d.TimeoutSeconds, d.Unit)
	}
	if err := d.Validate(); err != nil {
		t.Errorf("with defaults: %v", err)
	}
	d.TimeoutSeconds, d.Unit = 3, "y.service"
	if again := d.WithDefaults(); again != d {
		t.Errorf("WithDefaults replaced set values: %+v", again)
	}
}
