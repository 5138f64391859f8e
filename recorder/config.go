package recorder

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
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
// tag). Numbers are kept as the operator wrote them. The zero values of
// TimeoutSeconds and Unit stand for their derived defaults, which
// [Config.WithDefaults] fills; [Config.Validate] only checks.
type Config struct {
	Service          string  `env:"SERVICE" yaml:"name"`
	HealthURL        string  `env:"HEALTH_URL" yaml:"health_url"`
	IntervalSeconds  float64 `env:"INTERVAL_SECONDS" envDefault:"30" yaml:"interval_seconds"`
	BufferSamples    int     `env:"BUFFER_SAMPLES" envDefault:"20" yaml:"buffer_samples"`
	TimeoutSeconds   float64 `env:"TIMEOUT_SECONDS" yaml:"timeout_seconds"` // 0: the smaller of 10 and the interval (an explicit 0 is an error)
	FailureThreshold int     `env:"FAILURE_THRESHOLD" envDefault:"1" yaml:"failure_threshold"`
	CaptureDir       string  `env:"CAPTURE_DIR" envDefault:"/var/lib/preflight" yaml:"capture_dir"`
	Unit             string  `env:"UNIT" yaml:"unit"`     // "": SERVICE.service
	Cgroup           string  `env:"CGROUP" yaml:"cgroup"` // "": found from the unit
	Keep             int     `env:"KEEP" envDefault:"50" yaml:"keep"`
	TopProcesses     int     `env:"TOP_PROCESSES" envDefault:"5" yaml:"top_processes"`
	LogLevel         string  `env:"LOG_LEVEL" envDefault:"info" yaml:"log_level"`
	JournalLines     int     `env:"JOURNAL_LINES" envDefault:"20" yaml:"journal_lines"` // the unit's last journal lines in a capture; 0: none
	// The service's fine trace: one cheap reading every
	// ServiceIntervalSeconds (0: none), kept for TraceSeconds.
	ServiceIntervalSeconds float64 `env:"SERVICE_INTERVAL_SECONDS" envDefault:"1" yaml:"service_interval_seconds"`
	TraceSeconds           float64 `env:"TRACE_SECONDS" envDefault:"120" yaml:"trace_seconds"`
}

// Limits of the numeric settings.
const (
	minInterval   = 0.05
	maxInterval   = 86400
	maxTimeout    = 600
	maxThreshold  = 1000
	maxKeep       = 100000
	maxTop        = 100
	maxJournal    = 1000
	maxPathLength = 4096
	maxTrace      = 3600 // TraceSeconds
	// maxTracePoints bounds TraceSeconds / ServiceIntervalSeconds: about
	// 200 bytes of capture each.
	maxTracePoints = 3600
)

// The size bound: BufferSamples × (TopProcesses + sampleBase) at most
// maxSampleUnits. One unit is what one more entry of the top lists costs a
// sample at worst (two processes with full command lines, about 450 bytes
// of JSON); sampleBase units are the rest of a heavy sample (the host,
// 16 filesystems, a service of 10 processes with long command lines). At
// the bound such a capture (the ring, 20 trigger samples, the checks) stays
// within the readers' capture.MaxFileSize (16 MiB), as TestLargestSettings
// checks; a host heavier still has its oldest samples dropped
// ([capture.Encode]).
const (
	maxSampleUnits = 30000
	sampleBase     = 24
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
// os.Environ returns), fills the derived defaults and validates it. Every
// error is a *ConfigError.
func ConfigFromEnv(environ []string) (Config, error) {
	cfg, err := envConfig(environ)
	if err != nil {
		return cfg, err
	}
	cfg = cfg.WithDefaults()
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
	// 0 stands for the derived default: written out, it is a mistake.
	if name := cfg.Name("TimeoutSeconds"); m[name] != "" && cfg.TimeoutSeconds == 0 {
		return cfg, &ConfigError{Name: name, Field: "TimeoutSeconds", Msg: errZeroTimeout}
	}
	return cfg, nil
}

// errZeroTimeout is the message of an explicit timeout of 0.
const errZeroTimeout = "0 seconds is out of range (0.001 to 600; leave it unset for the smaller of 10 and the interval)"

// envError turns caarlos0/env's error into a ConfigError naming the
// variable and the value.
func envError(err error, m map[string]string) error {
	var pe env.ParseError
	if errors.As(err, &pe) {
		if f, ok := reflect.TypeFor[Config]().FieldByName(pe.Name); ok {
			name := EnvPrefix + f.Tag.Get("env")
			return &ConfigError{Name: name, Field: pe.Name, Msg: numberError(m[name], f.Type.Kind(), pe.Err)}
		}
	}
	return &ConfigError{Name: "environment", Msg: err.Error()}
}

// numberError says why value is not a number of kind (reflect.Int or
// reflect.Float64); err is strconv's.
func numberError(value string, kind reflect.Kind, err error) string {
	if errors.Is(err, strconv.ErrRange) {
		return fmt.Sprintf("%q is out of range", value)
	}
	if kind == reflect.Int {
		return fmt.Sprintf("%q is not a whole number", value)
	}
	return fmt.Sprintf("%q is not a number", value)
}

// UnknownEnv returns a warning for each PREFLIGHT_* variable of environ
// that configures nothing (a typo: PREFLIGHT_INTERVAL), naming the known
// variable it is nearest to, if one is near. Such a variable is ignored;
// the warnings say so.
func UnknownEnv(environ []string) []string {
	t := reflect.TypeFor[Config]()
	known := make([]string, 0, t.NumField())
	for i := range t.NumField() {
		known = append(known, EnvPrefix+t.Field(i).Tag.Get("env"))
	}
	var out []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, EnvPrefix) || slices.Contains(known, name) {
			continue
		}
		msg := name + " is not a preflight variable and is ignored"
		if near := nearest(name, known); near != "" {
			msg += " (did you mean " + near + "?)"
		}
		out = append(out, msg)
	}
	return out
}

// nearest returns the name of names that s most likely misspells, all
// starting with EnvPrefix: one that starts with s or s with it
// (PREFLIGHT_INTERVAL, PREFLIGHT_TIMEOUT), else the closest by edit
// distance of what follows the prefix, if within a quarter of its length
// (at least 1); "" when none is near.
func nearest(s string, names []string) string {
	u := strings.ToUpper(strings.TrimPrefix(s, EnvPrefix))
	best, bestD := "", max(1, len(u)/4)+1
	for _, n := range names {
		k := strings.TrimPrefix(n, EnvPrefix)
		d := editDistance(u, k)
		if len(u) >= 3 && (strings.HasPrefix(k, u) || strings.HasPrefix(u, k)) {
			d = 0
		}
		if d < bestD {
			best, bestD = n, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance of a and b (bytes).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			sub := prev[j-1]
			if a[i-1] != b[j-1] {
				sub++
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, sub)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// WithDefaults returns c with the derived defaults filled: a zero
// TimeoutSeconds becomes the smaller of 10 and the interval, an empty Unit
// SERVICE.service. Everything that reads a configuration applies it once,
// before [Config.Validate].
func (c Config) WithDefaults() Config {
	if c.TimeoutSeconds == 0 {
		c.TimeoutSeconds = math.Min(10, c.IntervalSeconds)
	}
	if c.Unit == "" && c.Service != "" {
		c.Unit = c.Service + ".service"
	}
	return c
}

// Validate checks every setting of a configuration whose defaults are
// filled ([Config.WithDefaults]); it changes nothing. Errors name the
// environment variable.
func (c *Config) Validate() error {
	bad := func(field, format string, a ...any) error {
		return &ConfigError{Name: c.Name(field), Field: field, Msg: fmt.Sprintf(format, a...)}
	}
	if c.Service == "" {
		return bad("Service", "required (the service's instance name)")
	}
	if err := capture.ValidService(c.Service); err != nil {
		return bad("Service", "%q: %s", c.Service, capture.ServiceRule)
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
	if err := checkSeconds(c.TimeoutSeconds, 0.001, maxTimeout); err != nil {
		return bad("TimeoutSeconds", "%s", err)
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
	if err := checkInt(c.JournalLines, 0, maxJournal); err != nil {
		return bad("JournalLines", "%s", err)
	}
	most := maxSampleUnits / (c.TopProcesses + sampleBase)
	if c.BufferSamples < 1 {
		return bad("BufferSamples", "%d is out of range (1 to %d)", c.BufferSamples, most)
	}
	if c.BufferSamples > most {
		return bad("BufferSamples", "%d samples with TOP_PROCESSES %d make captures larger than the readers take (%d MiB): at most %d (BUFFER_SAMPLES × (TOP_PROCESSES + %d) ≤ %d)",
			c.BufferSamples, c.TopProcesses, capture.MaxFileSize>>20, most, sampleBase, maxSampleUnits)
	}
	if c.CaptureDir == "" {
		return bad("CaptureDir", "must not be empty")
	}
	if len(c.CaptureDir) > maxPathLength {
		return bad("CaptureDir", "longer than %d bytes", maxPathLength)
	}
	if !validUnit(c.Unit) {
		return bad("Unit", "%q is not a unit name (1 to 255 letters, digits and : _ . \\ @ -)", c.Unit)
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
	if c.ServiceIntervalSeconds != 0 {
		if err := checkSeconds(c.ServiceIntervalSeconds, minInterval, maxInterval); err != nil {
			return bad("ServiceIntervalSeconds", "%s (or 0: no service trace)", err)
		}
	}
	if err := checkSeconds(c.TraceSeconds, 1, maxTrace); err != nil {
		return bad("TraceSeconds", "%s", err)
	}
	if c.ServiceIntervalSeconds != 0 && c.TraceSeconds/c.ServiceIntervalSeconds > maxTracePoints {
		return bad("TraceSeconds", "%s seconds at SERVICE_INTERVAL_SECONDS %s is more than %d trace points: at most %s",
			fmtFloat(c.TraceSeconds), fmtFloat(c.ServiceIntervalSeconds), maxTracePoints, fmtFloat(c.ServiceIntervalSeconds*maxTracePoints))
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

// ServiceInterval is the period of the service's trace; 0 when disabled.
func (c *Config) ServiceInterval() time.Duration { return seconds(c.ServiceIntervalSeconds) }

// TraceWindow is how long the service's trace is kept.
func (c *Config) TraceWindow() time.Duration { return seconds(c.TraceSeconds) }

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
