package cgroup

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestShowUnitWithoutSystemd(t *testing.T) {
	if _, err := os.Stat("/run/systemd/system"); err == nil {
		t.Skip("systemd is PID 1 here")
	}
	if _, err := ShowUnit(context.Background(), "dead-drop.service"); !errors.Is(err, ErrNoSystemd) {
		t.Errorf("ShowUnit = %v, want ErrNoSystemd", err)
	}
	// No subprocess: a missing systemctl changes nothing.
	if _, err := showUnit(context.Background(), filepath.Join(t.TempDir(), "none"), "/nonexistent/systemctl", "x"); !errors.Is(err, ErrNoSystemd) {
		t.Errorf("showUnit = %v, want ErrNoSystemd", err)
	}
}

// fakeSystemctl writes a shell script standing in for systemctl and returns
// its path and the file where it records its arguments.
func fakeSystemctl(t *testing.T, body string) (string, string) {
	t.Helper()
	dir := t.TempDir()
	args := filepath.Join(dir, "args")
	script := filepath.Join(dir, "systemctl")
	content := "#!/bin/sh\nprintf '%s\\n' \"$@\" > " + args + "\n" + body + "\n"
	if err := os.WriteFile(script, []byte(content), 0o755); err != nil {
		t.Fatal(err)
	}
	return script, args
}

func TestShowUnitRunsSystemctlShow(t *testing.T) {
	marker := t.TempDir()
	script, args := fakeSystemctl(t, `cat <<'EOF'
Result=signal
NRestarts=1
ExecMainStatus=9
ExecMainCode=2
MainPID=1301
ControlGroup=/system.slice/dead-drop.service
ActiveState=active
SubState=running
EOF`)
	got, err := showUnit(context.Background(), marker, script, "dead-drop")
	if err != nil {
		t.Fatalf("showUnit: %v", err)
	}
	want := UnitState{Result: "signal", ExecMainCode: "killed", ControlGroup: "/system.slice/dead-drop.service",
		ActiveState: "active", SubState: "running", NRestarts: ptr(1), ExecMainStatus: ptr(9), MainPID: ptr(1301)}
	if !equalUnitState(got, want) {
		t.Errorf("showUnit = %+v, want %+v", got, want)
	}
	b, err := os.ReadFile(args)
	if err != nil {
		t.Fatal(err)
	}
	wantArgs := "show\n--property=" + showProperties + "\n--\ndead-drop.service\n"
	if string(b) != wantArgs {
		t.Errorf("systemctl arguments %q, want %q", b, wantArgs)
	}
}

func TestShowUnitFailures(t *testing.T) {
	marker := t.TempDir()
	script, _ := fakeSystemctl(t, "echo 'Failed to connect to bus: No such file or directory' >&2\nexit 1")
	_, err := showUnit(context.Background(), marker, script, "x.service")
	if err == nil || !strings.Contains(err.Error(), "Failed to connect to bus") {
		t.Errorf("failing systemctl: err = %v, want its stderr", err)
	}

	slow, _ := fakeSystemctl(t, "exec sleep 30")
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err = showUnit(ctx, marker, slow, "x.service")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("hanging systemctl: err = %v, want the deadline", err)
	}

	if _, err := showUnit(context.Background(), marker, script, "../x"); err == nil {
		t.Errorf("bad unit name accepted")
	}
}
