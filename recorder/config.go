package recorder

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"

	"github.com/preflight-rec/preflight/recorder/capture"
	"github.com/preflight-rec/preflight/recorder/health"
)

// EnvPrefix is the prefix of every environment variable of a recorder.
const EnvPrefix = "PREFLIGHT_"

// DefaultCaptureDir is where captures go unless configured otherwise.
const DefaultCaptureDir = "/var/lib/preflight"

// Config configures one recorder. Its fields mirror the contract's
// environment variables (PREFLIGHT_ + the env tag) and YAML keys (the yaml
// tag). Numbers are kept as the operator wrote them; [Config.Validate] checks
// them and fills the derived defaults.
type Config struct {
	Service          string  `env:"SERVICE" yaml:"name"`
	HealthURL        string  `env:"HEALTH_URL" yaml:"health_url"`
	IntervalSeconds  float64 `env:"INTERVAL_SECONDS" envDefault:"30" yaml:"interval_seconds"`
	BufferSamples    int     `env:"BUFFER_SAMPLES" envDefault:"20" yaml:"buffer_samples"`
	TimeoutSeconds   float64 `env:"TIMEOUT_SECONDS" yaml:"timeout_seconds"` // 0: the smaller of 10 and the interval
	FailureThreshold int     `env:"FAILURE_THRESHOLD" envDefault:"1" yaml:"failure_threshold"`
	CaptureDir       string  `env:"CAPTURE_DIR" envDefault:"/var/lib/preflight" yaml:"capture_dir"`
	Unit             string  `env:"UNIT" yaml:"unit"`     // "": SERVICE.service
	Cgroup           string  `env:"CGROUP" yaml:"cgroup"` // "": found from the unit
	Keep             int     `env:"KEEP" envDefault:"50" yaml:"keep"`
	TopProcesses     int     `env:"TOP_PROCESSES" envDefault:"5" yaml:"top_processes"`
	LogLevel         string  `env:"LOG_LEVEL" envDefault:"info" yaml:"log_level"`
}

// Limits of the numeric settings.
const (
	minInterval   = 0.05
	maxInterval   = 86400
	maxTimeout    = 600
	maxBuffer     = 10000
	maxThreshold  = 1000
	maxKeep       = 100000
	maxTop        = 100
	maxPathLength = 4096
)

// ConfigError is a configuration error that names the setting: the
// environment variable (PREFLIGHT_X) or, from a YAML file, the file, line
// and key.
type ConfigError struct {
	Name  string // e.g. PREFLIGHT_INTERVAL_SECONDS, or "preflight.yaml:7: interval_seconds"
	Field string // the Config field, e.g. IntervalSeconds ("" when none applies)
	Msg   string
}

func (e *ConfigError) Error() string { return e.Name + ": " + e.Msg }

// ConfigFromEnv reads a Config from environ (KEY=VALUE pairs, as
// os.Environ returns) and validates it. Every error is a *ConfigError.
func ConfigFromEnv(environ []string) (Config, error) {
	cfg, err := envConfig(environ)
	if err != nil {
		return cfg, err
	}
	if err := cfg.Validate(); err != nil {
		return cfg, err
	}
	return cfg, nil
}

// envConfig reads a Config from environ with the built-in defaults, without
// validating it.
func envConfig(environ []string) (Config, error) {
	m := make(map[string]string, len(environ))
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	cfg, err := env.ParseAsWithOptions[Config](env.Options{Environment: m, Prefix: EnvPrefix})
	if err != nil {
		return cfg, envError(err, m)
	}
	return cfg, nil
}

// envError turns caarlos0/env's error into a ConfigError naming the
// variable and the value.
func envError(err error, m map[string]string) error {
	var pe env.ParseError
	if errors.As(err, &pe) {
		if f, ok := reflect.TypeFor[Config]().FieldByName(pe.Name); ok {
			name := EnvPrefix + f.Tag.Get("env")
			what := "a number"
			if f.Type.Kind() == reflect.Int {
				what = "a whole number"
			}
			return &ConfigError{Name: name, Field: pe.Name, Msg: fmt.Sprintf("%q is not %s", m[name], what)}
		}
	}
	return &ConfigError{Name: "environment", Msg: err.Error()}
}

// Validate checks every setting and fills the derived defaults (timeout,
// unit). Errors name the environment variable.
func (c *Config) Validate() error {
	bad := func(field, format string, a ...any) error {
		return &ConfigError{Name: c.Name(field), Field: field, Msg: fmt.Sprintf(format, a...)}
	}
	if c.Service == "" {
		return bad("Service", "required (the service's instance name)")
	}
	if err := capture.ValidService(c.Service); err != nil {
		return bad("Service", "%q: only letters, digits and _ . @ - are allowed, at most 128, not starting with '.'", c.Service)
	}
	if c.HealthURL == "" {
		return bad("HealthURL", "required (http://, https:// or tcp://host:port)")
	}
	if _, err := health.New(c.HealthURL, time.Second); err != nil {
		return bad("HealthURL", "%v", err)
	}
	if err := checkSeconds(c.IntervalSeconds, minInterval, maxInterval); err != nil {
		return bad("IntervalSeconds", "%s", err)
	}
	if c.TimeoutSeconds == 0 {
		c.TimeoutSeconds = math.Min(10, c.IntervalSeconds)
	} else if err := checkSeconds(c.TimeoutSeconds, 0.001, maxTimeout); err != nil {
		return bad("TimeoutSeconds", "%s", err)
	}
	if err := checkInt(c.BufferSamples, 1, maxBuffer); err != nil {
		return bad("BufferSamples", "%s", err)
	}
	if err := checkInt(c.FailureThreshold, 1, maxThreshold); err != nil {
		return bad("FailureThreshold", "%s", err)
	}
	if err := checkInt(c.Keep, 1, maxKeep); err != nil {
		return bad("Keep", "%s", err)
	}
	if err := checkInt(c.TopProcesses, 0, maxTop); err != nil {
		return bad("TopProcesses", "%s", err)
	}
	if c.CaptureDir == "" {
		return bad("CaptureDir", "must not be empty")
	}
	if len(c.CaptureDir) > maxPathLength {
		return bad("CaptureDir", "longer than %d bytes", maxPathLength)
	}
	if c.Unit == "" {
		c.Unit = c.Service + ".service"
	} else if !validUnit(c.Unit) {
		return bad("Unit", "%q is not a unit name", c.Unit)
	}
	if c.Cgroup != "" {
		if !strings.HasPrefix(c.Cgroup, "/") || strings.Contains(c.Cgroup, "\n") || len(c.Cgroup) > maxPathLength {
			return bad("Cgroup", "%q is not a cgroup path (it starts with /, as in /proc/PID/cgroup)", c.Cgroup)
		}
		for _, part := range strings.Split(c.Cgroup, "/") {
			if part == ".." || part == "." {
				return bad("Cgroup", "%q must not contain . or .. elements", c.Cgroup)
			}
		}
	}
	switch strings.ToLower(c.LogLevel) {
	case "debug", "info", "warn", "error":
	default:
		return bad("LogLevel", "%q is not one of debug, info, warn, error", c.LogLevel)
	}
	return nil
}

// Name returns the environment variable of a Config field.
func (c *Config) Name(field string) string {
	f, _ := reflect.TypeFor[Config]().FieldByName(field)
	return EnvPrefix + f.Tag.Get("env")
}

// Interval is the period of health checks and samples.
func (c *Config) Interval() time.Duration { return seconds(c.IntervalSeconds) }

// Timeout is one health check's deadline.
func (c *Config) Timeout() time.Duration { return seconds(c.TimeoutSeconds) }

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

func checkSeconds(v, lo, hi float64) error {
	if math.IsNaN(v) || math.IsInf(v, 0) || v < lo || v > hi {
		return fmt.Errorf("%s seconds is out of range (%s to %s)", fmtFloat(v), fmtFloat(lo), fmtFloat(hi))
	}
	return nil
}

func checkInt(v, lo, hi int) error {
	if v < lo || v > hi {
		return fmt.Errorf("%d is out of range (%d to %d)", v, lo, hi)
	}
	return nil
}

func fmtFloat(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

// validUnit reports whether u can be a systemd unit name: at most 255
// bytes of letters, digits and ":-_.@\\", not starting with '.' (so never
// "." or ".."), never a path.
func validUnit(u string) bool {
	if u == "" || len(u) > 255 || u[0] == '.' || u[0] == '@' {
		return false
	}
	for i := 0; i < len(u); i++ {
		c := u[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte(":-_.@\\", c) >= 0) {
			return false
		}
	}
	return true
}
