package capture

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"time"
)

// StateDir is where recorders keep their live state, under the capture
// directory. Its name starts with '.', so it can never be a service's.
const StateDir = ".state"

// Live states of a recorder.
const (
	StateStarting  = "starting"  // no health check has succeeded yet
	StateHealthy   = "healthy"   // the last check succeeded
	StateUnhealthy = "unhealthy" // FAILURE_THRESHOLD failures after a success, and none since
	StateFailing   = "failing"   // the last checks failed, below the threshold
	StateStopped   = "stopped"   // the recorder exited cleanly
)

// State is a running recorder's state file, $DIR/.state/SERVICE.json,
// rewritten (atomically, not fsynced: it is live state, not evidence) at
// each change, at least every RefreshSeconds, and at exit. Readers treat a
// state whose UpdatedAt is older than [State.Stale] as "not running".
type State struct {
	Service         string    `json:"service"`
	PID             int       `json:"pid"`
	Host            string    `json:"host"`
	State           string    `json:"state"`
	UpdatedAt       time.Time `json:"updated_at"`
	StartedAt       time.Time `json:"started_at"`
	IntervalSeconds float64   `json:"interval_seconds"`
	TimeoutSeconds  float64   `json:"timeout_seconds"`
	RefreshSeconds  float64   `json:"refresh_seconds,omitempty"` // an unchanged state is rewritten this often
	HealthURL       string    `json:"health_url"`
	LastCheck       *Check    `json:"last_check"`
	OpenIncident    string    `json:"open_incident"` // file name of the open incident's capture, or ""
	// Unit says why a running recorder does not watch its service now;
	// absent when it does.
	Unit    *UnitStatus `json:"unit,omitempty"`
	Version string      `json:"preflight_version"`
}

// Unit states of a running recorder's service (State.Unit), which 'list'
// shows in place of the health state.
const (
	UnitStopped  = "stopped"  // the unit is inactive on request (systemctl stop)
	UnitUnscoped = "unscoped" // the unit or its cgroup cannot be found: the service is not seen
)

// UnitStatus is why a recorder does not watch its service now.
type UnitStatus struct {
	State  string `json:"state"`            // UnitStopped or UnitUnscoped
	Reason string `json:"reason,omitempty"` // e.g. "systemd has no unit redis.service (load state not-found)"
}

// Stale reports whether a state written by a running recorder is too old
// to be believed at now: more than two periods (the larger of the interval
// and RefreshSeconds) plus the check timeout plus 5 s. A "stopped" state is
// never stale; it is simply not running.
func (s *State) Stale(now time.Time) bool {
	period := max(s.IntervalSeconds, s.RefreshSeconds)
	grace := time.Duration((2*period + s.TimeoutSeconds + 5) * float64(time.Second))
	return now.Sub(s.UpdatedAt) > grace
}

// StatePath is the state file of service in dir.
func StatePath(dir, service string) string {
	return filepath.Join(dir, StateDir, service+".json")
}

// ReadState reads a service's state file. A missing file is an error that
// satisfies errors.Is(err, fs.ErrNotExist).
func ReadState(dir, service string) (*State, error) {
	if err := ValidService(service); err != nil {
		return nil, err
	}
	data, err := ReadFile(StatePath(dir, service))
	if err != nil {
		return nil, err
	}
	s := new(State)
	if err := json.Unmarshal(data, s); err != nil {
		return nil, fmt.Errorf("%s: %w: %v", StatePath(dir, service), ErrNotCapture, err)
	}
	return s, nil
}
