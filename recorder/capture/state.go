package capture

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/preflight-rec/preflight/atomicfile"
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
	return filepath.Join(dir, StateDir, service+Ext)
}

// LockPath is the lock file of service's recorder in dir.
func LockPath(dir, service string) string {
	return filepath.Join(dir, StateDir, service+lockExt)
}

// ReadState reads a service's state file in dir. A missing file is an
// error that satisfies errors.Is(err, fs.ErrNotExist).
func ReadState(dir, service string) (*State, error) {
	s, err := Open(dir)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	return s.ReadState(service)
}

// ReadState reads a service's state file. A missing file is an error that
// satisfies errors.Is(err, fs.ErrNotExist).
func (s *Store) ReadState(service string) (*State, error) {
	if err := ValidService(service); err != nil {
		return nil, err
	}
	r, err := s.subdir(StateDir, false)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return s.readState(r, service)
}

func (s *Store) readState(r *os.Root, service string) (*State, error) {
	path := s.Path(StateDir, service+Ext)
	f, err := openFile(r, service+Ext, path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := readOpen(f, path)
	if err != nil {
		return nil, err
	}
	st := new(State)
	if err := json.Unmarshal(data, st); err != nil {
		return nil, fmt.Errorf("%s: %w: %v", path, ErrNotCapture, err)
	}
	return st, nil
}

// States reads every state file, by service. One that cannot be read is
// passed to warn (an error naming it) and left out.
func (s *Store) States(warn func(error)) map[string]*State {
	r, err := s.subdir(StateDir, false)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			warn(fmt.Errorf("recorder states: %w", err))
		}
		return nil
	}
	defer r.Close()
	des, err := readDir(r, ".")
	if err != nil {
		warn(fmt.Errorf("recorder states %s: %w", s.Path(StateDir), err))
		return nil
	}
	out := map[string]*State{}
	for _, de := range des {
		svc, ok := strings.CutSuffix(de.Name(), Ext)
		if !ok || ValidService(svc) != nil {
			continue
		}
		st, err := s.readState(r, svc)
		if err != nil {
			warn(err)
			continue
		}
		out[svc] = st
	}
	return out
}

// WriteState replaces the service's state file, atomically but without
// fsync (it is live state, not evidence), re-creating the directories if
// they were removed.
func (s *Store) WriteState(st *State) error {
	if err := ValidService(st.Service); err != nil {
		return err
	}
	data, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("encode state: %w", err)
	}
	if err := s.refresh(); err != nil {
		return err
	}
	r, err := s.subdir(StateDir, true)
	if err != nil {
		return err
	}
	defer r.Close()
	if err := atomicfile.ReplaceFile(r, st.Service+Ext, data, FileMode); err != nil {
		return fmt.Errorf("%s: %w", s.Path(StateDir, st.Service+Ext), unwrapPath(err))
	}
	return nil
}
