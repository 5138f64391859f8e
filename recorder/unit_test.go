package recorder

import (
	"strings"
	"testing"
)

// TestUnitValidation: PREFLIGHT_UNIT must be a unit name systemd could
// have; anything else (a path, "..", blanks) is a configuration error
// naming the variable and the value.
func TestUnitValidation(t *testing.T) {
	base := []string{"PREFLIGHT_SERVICE=redis", "PREFLIGHT_HEALTH_URL=tcp://127.0.0.1:6379"}
	for _, u := range []string{"..", ".", "/etc/passwd", "a/b.service", "  ", " redis", "redis\n", "@.service", strings.Repeat("a", 256)} {
		_, err := ConfigFromEnv(append(base, "PREFLIGHT_UNIT="+u))
		if err == nil || !strings.Contains(err.Error(), "PREFLIGHT_UNIT") {
			t.Errorf("PREFLIGHT_UNIT=%q: error %v, want one naming PREFLIGHT_UNIT", u, err)
		}
	}
	for _, u := range []string{"redis", "redis.service", "redis-server.service", "preflight@dead-drop.service", `system-x\x2dy.slice`} {
		cfg, err := ConfigFromEnv(append(base, "PREFLIGHT_UNIT="+u))
		if err != nil || cfg.Unit != u {
			t.Errorf("PREFLIGHT_UNIT=%q: unit %q, error %v", u, cfg.Unit, err)
		}
	}
	cfg, err := ConfigFromEnv(base)
	if err != nil || cfg.Unit != "redis.service" {
		t.Errorf("no PREFLIGHT_UNIT: unit %q, error %v; want redis.service", cfg.Unit, err)
	}
}
