package cgroup

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/godbus/dbus/v5"
)

// TestFollowWithoutSystemd: where systemd is not PID 1, nothing is tried.
func TestFollowWithoutSystemd(t *testing.T) {
	f, err := followUnit(context.Background(), filepath.Join(t.TempDir(), "absent"), "redis")
	if f != nil || !errors.Is(err, ErrNoSystemd) {
		t.Fatalf("followUnit = %v, %v; want ErrNoSystemd", f, err)
	}
}

// TestApply: PropertiesChanged values as systemd sends them.
func TestApply(t *testing.T) {
	var st UnitState
	apply(&st, map[string]dbus.Variant{
		"ActiveState":    dbus.MakeVariant("activating"),
		"SubState":       dbus.MakeVariant("auto-restart"),
		"Result":         dbus.MakeVariant("oom-kill"),
		"ExecMainCode":   dbus.MakeVariant(int32(2)),
		"ExecMainStatus": dbus.MakeVariant(int32(9)),
		"NRestarts":      dbus.MakeVariant(uint32(3)),
		"MainPID":        dbus.MakeVariant(uint32(0)),
		"ControlPID":     dbus.MakeVariant(uint32(150)),
		"Job":            dbus.MakeVariant([]any{uint32(7), dbus.ObjectPath("/org/freedesktop/systemd1/job/7")}),
		"Unknown":        dbus.MakeVariant("ignored"),
	})
	if st.ActiveState != "activating" || st.SubState != "auto-restart" || st.Result != "oom-kill" || st.ExecMainCode != "killed" ||
		*st.ExecMainStatus != 9 || *st.NRestarts != 3 || *st.MainPID != 0 || *st.ControlPID != 150 ||
		st.JobID != 7 || st.jobPath != "/org/freedesktop/systemd1/job/7" {
		t.Errorf("apply = %+v", st)
	}
	apply(&st, map[string]dbus.Variant{"ExecMainCode": dbus.MakeVariant(int32(0)), "Job": dbus.MakeVariant([]any{uint32(0), dbus.ObjectPath("/")})})
	if st.ExecMainCode != "" || st.JobID != 0 {
		t.Errorf("a main process not ended and no job: %+v", st)
	}
	a, b := st, st
	b.At = b.At.Add(1)
	if !sameState(a, b) {
		t.Error("states differing only in At are the same")
	}
	n := 4
	b.NRestarts = &n
	if sameState(a, b) {
		t.Error("states differing in NRestarts are not the same")
	}
}
