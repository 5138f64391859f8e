package cgroup

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/godbus/dbus/v5"
)

// ErrNoSystemd is returned by [ShowUnit] when systemd is not the init
// system here.
var ErrNoSystemd = errors.New("systemd is not running as init")

// ShowTimeout bounds one [ShowUnit] call.
const ShowTimeout = 2 * time.Second

// showProperties are the properties ShowUnit asks for.
const showProperties = "Result,NRestarts,ExecMainStatus,ExecMainCode,MainPID,ControlGroup,ActiveState,SubState"

// UnitState is systemd's view of a unit. A nil number or an empty string
// means systemd did not report it.
type UnitState struct {
	Result       string // "success", "exit-code", "signal", "oom-kill", …
	ExecMainCode string // how the main process ended: "exited", "killed", "dumped", …
	ControlGroup string // e.g. "/system.slice/dead-drop.service"
	ActiveState  string
	SubState     string

	NRestarts      *int
	ExecMainStatus *int // exit status, or the signal number when killed or dumped
	MainPID        *int // 0 when the unit has no main process now

	// Followed over D-Bus only ([Follower]):
	ControlPID *int      // the process of ExecStartPre=, ExecStop=, ExecReload=…; 0 when none
	Job        string    // the type of the unit's running job ("start", "stop", "restart", …), "" when none
	JobID      uint32    // its id, 0 when none
	At         time.Time // when systemd reported this state

	jobPath dbus.ObjectPath
}

// ShowUnit asks systemd for the unit's state with `systemctl show`, within
// ShowTimeout (or ctx's earlier deadline). It only reads. Where systemd is
// not PID 1 (no /run/systemd/system) it returns ErrNoSystemd without running
// anything.
func ShowUnit(ctx context.Context, unit string) (UnitState, error) {
	return showUnit(ctx, "/run/systemd/system", "systemctl", unit)
}

// showUnit is ShowUnit with the marker directory and the systemctl command
// injected.
func showUnit(ctx context.Context, marker, systemctl, unit string) (UnitState, error) {
	if _, err := os.Stat(marker); err != nil {
		return UnitState{}, ErrNoSystemd
	}
	unit, err := canonicalUnit(unit)
	if err != nil {
		return UnitState{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, ShowTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, systemctl, "show", "--property="+showProperties, "--", unit)
	cmd.Env = append(os.Environ(), "LC_ALL=C", "SYSTEMD_PAGER=", "SYSTEMD_COLORS=0")
	cmd.WaitDelay = 100 * time.Millisecond
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		msg, _, _ := strings.Cut(strings.TrimSpace(stderr.String()), "\n")
		if msg != "" {
			return UnitState{}, fmt.Errorf("failed to show unit %s: %w: %s", unit, err, msg)
		}
		return UnitState{}, fmt.Errorf("failed to show unit %s: %w", unit, err)
	}
	return parseShow(out)
}

// execMainCodes are the CLD_* codes of siginfo, as `systemctl show` prints
// ExecMainCode.
var execMainCodes = map[string]string{
	"1": "exited",
	"2": "killed",
	"3": "dumped",
	"4": "trapped",
	"5": "stopped",
	"6": "continued",
}

// parseShow parses `systemctl show` output (Key=Value lines). Unknown keys
// are ignored; a number systemd leaves empty or "[not set]" is nil.
func parseShow(b []byte) (UnitState, error) {
	var s UnitState
	num := func(key, v string) (*int, error) {
		if v == "" || v == "[not set]" {
			return nil, nil
		}
		n, err := strconv.Atoi(v)
		if err != nil {
			return nil, fmt.Errorf("failed to parse %s=%q: %w", key, v, err)
		}
		return &n, nil
	}
	for line := range strings.Lines(string(b)) {
		line = strings.TrimRight(line, "\r\n")
		key, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		var err error
		switch key {
		case "Result":
			s.Result = v
		case "ExecMainCode":
			switch {
			case v == "0" || v == "":
				// the main process has not ended
			case execMainCodes[v] != "":
				s.ExecMainCode = execMainCodes[v]
			default:
				s.ExecMainCode = v // a word already, or a code unknown here
			}
		case "ControlGroup":
			s.ControlGroup = v
		case "ActiveState":
			s.ActiveState = v
		case "SubState":
			s.SubState = v
		case "NRestarts":
			s.NRestarts, err = num(key, v)
		case "ExecMainStatus":
			s.ExecMainStatus, err = num(key, v)
		case "MainPID":
			s.MainPID, err = num(key, v)
		}
		if err != nil {
			return UnitState{}, err
		}
	}
	return s, nil
}
