package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/preflight-rec/preflight/recorder/capture"
)

// putStateErr writes a live state whose last check failed with msg.
func putStateErr(t *testing.T, dir, svc, state, msg string) {
	t.Helper()
	st := capture.State{Service: svc, PID: 77, Host: "vm", State: state, UpdatedAt: fixedNow.Add(-time.Second),
		StartedAt: fixedNow.Add(-time.Hour), IntervalSeconds: 30, TimeoutSeconds: 10,
		LastCheck: &capture.Check{At: fixedNow.Add(-time.Second), LatencyMS: 3, Error: msg}}
	data, _ := json.Marshal(st)
	if err := os.MkdirAll(filepath.Join(dir, capture.StateDir), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(capture.StatePath(dir, svc), data, 0o640); err != nil {
		t.Fatal(err)
	}
}

// list tells why a recorder is starting or failing: its last check's error.
func TestListStateReasons(t *testing.T) {
	dir := t.TempDir()
	putStateErr(t, dir, "never", capture.StateStarting, "tls: certificate signed by unknown authority")
	putStateErr(t, dir, "wobbly", capture.StateFailing, "HTTP 502")
	r := readerRun(t, nil, "list", "--dir", dir)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	for _, want := range []string{
		"never    starting         0  -       -    -         tls: certificate signed by unknown authority\n",
		"wobbly   failing          0  -       -    -         HTTP 502\n",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("list lacks %q:\n%s", want, r.stdout)
		}
	}
	r = readerRun(t, nil, "list", "--json", "--dir", dir)
	var rows []listedService
	if err := json.Unmarshal([]byte(r.stdout), &rows); err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows[0].Recorder.LastError != "tls: certificate signed by unknown authority" || rows[1].Recorder.LastError != "HTTP 502" {
		t.Errorf("list --json = %+v", rows)
	}
}

// A user outside the preflight group gets a hint with "permission denied".
func TestPermissionHint(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run the binary as nobody")
	}
	dir := t.TempDir() // under a 0700 directory of root's
	putStateErr(t, dir, "x", capture.StateHealthy, "")
	if err := os.Chmod(filepath.Dir(binary), 0o755); err != nil { // the test binary's own temporary directory
		t.Fatal(err)
	}
	if err := os.Chmod(binary, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"list"}, {"last", "x"}} {
		cmd := exec.Command(binary, append(args, "--dir", dir)...)
		cmd.Env = append(cleanEnv(), "GORACE=atexit_sleep_ms=0")
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		out, err := cmd.CombinedOutput()
		ee, ok := err.(*exec.ExitError)
		if !ok || ee.ExitCode() != 1 {
			t.Fatalf("%v as nobody: %v\n%s", args, err, out)
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		if len(lines) != 2 || !strings.Contains(lines[0], "permission denied") || lines[1] != groupHint {
			t.Errorf("%v as nobody:\n%s\nwant the error, then %q", args, out, groupHint)
		}
	}
}
