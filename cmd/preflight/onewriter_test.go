package main

// The capture directory behind one owner (issue 11): one writer per
// service, a killed recorder not running at once, SIGHUP ignored, nothing
// lost on a full or read-only disk, the readers' smaller promises.

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/preflight-rec/preflight/recorder/capture"
)

// startKillable starts a recorder that the test ends itself; cleanup
// kills it by PID if it is still running.
func startKillable(t *testing.T, env []string, args ...string) (*exec.Cmd, *lockedBuffer, <-chan error) {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"start"}, args...)...)
	cmd.Env = append(cleanEnv(), env...)
	log := &lockedBuffer{mu: make(chan struct{}, 1)}
	cmd.Stderr = log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-done
		}
	})
	return cmd, log, done
}

// listState returns the live state list shows of service, from --json.
func listState(t *testing.T, dir, service string) (state string, rec *listedRecorder) {
	t.Helper()
	r := readerRun(t, nil, "list", "--json", "--dir", dir)
	var rows []listedService
	if err := json.Unmarshal([]byte(r.stdout), &rows); err != nil {
		t.Fatalf("list --json: %v: %s %s", err, r.stdout, r.stderr)
	}
	for _, row := range rows {
		if row.Service == service {
			return row.State, row.Recorder
		}
	}
	return "", nil
}

// A recorder killed with SIGKILL is "not running" the moment it is gone:
// list asks its lock, which the kernel released with the process.
func TestKill9NotRunning(t *testing.T) {
	h := newHealthServer(t)
	dir := t.TempDir()
	cmd, _, done := startKillable(t, []string{"PREFLIGHT_SERVICE=k", "PREFLIGHT_HEALTH_URL=" + h.URL,
		"PREFLIGHT_INTERVAL_SECONDS=30"}, "--dir", dir)
	waitFor(t, 10*time.Second, "list to show k healthy", func() bool {
		s, _ := listState(t, dir, "k")
		return s == capture.StateHealthy
	})
	if _, rec := listState(t, dir, "k"); rec == nil || rec.PID != cmd.Process.Pid {
		t.Errorf("recorder %+v, want pid %d", rec, cmd.Process.Pid)
	}
	if err := syscall.Kill(cmd.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-done
	// No waiting: the first list after the process is gone says so, though
	// its state file still says healthy and is seconds old (the interval
	// is 30 s: by the file alone it would be live for 65 s more).
	state, rec := listState(t, dir, "k")
	if state != notRunning || rec == nil || !rec.Stale || rec.State != capture.StateHealthy {
		t.Errorf("right after kill -9: state %q, recorder %+v; want not running, stale", state, rec)
	}
	r := readerRun(t, nil, "list", "--dir", dir)
	if !strings.Contains(r.stdout, "not running") {
		t.Errorf("list:\n%s", r.stdout)
	}
}

// One writer: a second start for the same service and directory exits 1
// naming the running recorder's PID; with --config, the recorders built
// before the refused one have removed nothing.
func TestSecondStartRefused(t *testing.T) {
	h := newHealthServer(t)
	dir := t.TempDir()
	env := []string{"PREFLIGHT_SERVICE=one", "PREFLIGHT_HEALTH_URL=" + h.URL, "PREFLIGHT_INTERVAL_SECONDS=0.1"}
	first, _ := startRecorder(t, env, "--dir", dir)
	waitState(t, dir, "one", first.Process.Pid, capture.StateHealthy)

	r := runBounded(t, env, "start", "--dir", dir)
	want := fmt.Sprintf("preflight: another recorder of one is running (pid %d): %s is locked\n", first.Process.Pid, capture.LockPath(dir, "one"))
	if r.code != 1 || r.stderr != want {
		t.Errorf("second start: exit %d, stderr %q; want 1, %q", r.code, r.stderr, want)
	}

	// A service "early" with KEEP=1 beyond its bound and a killed writer's
	// temporary file, before "one" in the file: nothing of it is removed.
	early := filepath.Join(dir, "early")
	os.Mkdir(early, 0o750)
	planted := []string{"2026-01-01T00-00-00.000Z.json", "2026-01-02T00-00-00.000Z.json", ".2026-01-03T00-00-00.000Z.json42"}
	for _, n := range planted {
		os.WriteFile(filepath.Join(early, n), []byte("{}"), 0o640)
	}
	yaml := filepath.Join(t.TempDir(), "p.yaml")
	os.WriteFile(yaml, []byte(fmt.Sprintf("capture_dir: %s\nservices:\n  - name: early\n    health_url: %s\n    keep: 1\n  - name: one\n    health_url: %s\n", dir, h.URL, h.URL)), 0o600)
	r = runBounded(t, nil, "start", "--config", yaml)
	if r.code != 1 || !strings.Contains(r.stderr, "pid "+strconv.Itoa(first.Process.Pid)) {
		t.Errorf("start --config: exit %d, stderr %q", r.code, r.stderr)
	}
	for _, n := range planted {
		if _, err := os.Lstat(filepath.Join(early, n)); err != nil {
			t.Errorf("a refused start removed %s: %v", n, err)
		}
	}
	if s, _ := listState(t, dir, "early"); s != notRunning {
		t.Errorf("early after the refused start: %q, want not running", s)
	}
}

// SIGHUP is logged and ignored: the recorder goes on, then stops cleanly.
func TestSIGHUPIgnored(t *testing.T) {
	h := newHealthServer(t)
	dir := t.TempDir()
	cmd, log, done := startKillable(t, []string{"PREFLIGHT_SERVICE=hup", "PREFLIGHT_HEALTH_URL=" + h.URL,
		"PREFLIGHT_INTERVAL_SECONDS=0.05"}, "--dir", dir)
	waitState(t, dir, "hup", cmd.Process.Pid, capture.StateHealthy)
	cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, 5*time.Second, "the SIGHUP logged", func() bool { return strings.Contains(log.String(), "SIGHUP ignored") })
	hits := h.hits.Load()
	waitFor(t, 5*time.Second, "checks going on", func() bool { return h.hits.Load() >= hits+3 })
	if s, _ := listState(t, dir, "hup"); s != capture.StateHealthy {
		t.Errorf("after SIGHUP: %q", s)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if err := <-done; err != nil {
		t.Fatalf("exit after SIGTERM: %v; log:\n%s", err, log)
	}
	if st, _ := capture.ReadState(dir, "hup"); st == nil || st.State != capture.StateStopped {
		t.Errorf("state %+v, want stopped", st)
	}
}

// show takes the FILE column of 'list SERVICE': a capture's file name,
// found in whichever service's directory holds it.
func TestShowFileName(t *testing.T) {
	dir := copyFixtures(t, "calm", "leaky")
	r := readerRun(t, nil, "list", "calm", "--json", "--dir", dir)
	var rows []listedCapture
	if err := json.Unmarshal([]byte(r.stdout), &rows); err != nil || len(rows) != 1 {
		t.Fatalf("list calm: %v %s", err, r.stdout)
	}
	r = readerRun(t, nil, "show", rows[0].File, "--dir", dir)
	if r.code != 0 || !strings.Contains(r.stdout, "File: "+rows[0].Path) {
		t.Errorf("show %s: exit %d\n%s%s", rows[0].File, r.code, r.stdout, r.stderr)
	}
	// The same name in two services: say so, and how to name one.
	data, _ := os.ReadFile(rows[0].Path)
	os.WriteFile(filepath.Join(dir, "leaky", rows[0].File), data, 0o640)
	r = readerRun(t, nil, "show", rows[0].File, "--dir", dir)
	if r.code != 1 || !strings.Contains(r.stderr, "ambiguous capture "+rows[0].File+": calm, leaky") || !strings.Contains(r.stderr, "calm@") {
		t.Errorf("ambiguous: exit %d %q", r.code, r.stderr)
	}
	r = readerRun(t, nil, "show", "2020-01-01T00-00-00.000Z.json", "--dir", dir)
	if r.code != 1 || r.stderr != "preflight: no capture 2020-01-01T00-00-00.000Z.json in "+dir+", nor a file of that name here\n" {
		t.Errorf("missing: exit %d %q", r.code, r.stderr)
	}
}

// mountTmpfs mounts a small tmpfs on a new directory, unmounted at cleanup.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a tmpfs")
	}
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size+",mode=0750"); err != nil {
		t.Skipf("cannot mount a tmpfs here: %v", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
			_ = syscall.Unmount(dir, syscall.MNT_DETACH)
		}
	})
	return dir
}

// fill fills the file system of dir with one file, and returns it.
func fill(t *testing.T, dir string) string {
	t.Helper()
	filler := filepath.Join(dir, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 4096)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("filling %s: %v", dir, err)
			}
			return filler
		}
	}
}

// failAndRecover turns h unhealthy until the recorder has failed to write
// `failedBefore+1`-th time, then healthy until the incident is over.
func failAndRecover(t *testing.T, h *healthServer, log *lockedBuffer) {
	t.Helper()
	failed := strings.Count(log.String(), "failed to write capture, will retry")
	over := strings.Count(log.String(), `"incident over"`)
	h.status.Store(503)
	waitFor(t, 5*time.Second, "a failed write", func() bool {
		return strings.Count(log.String(), "failed to write capture, will retry") > failed
	})
	h.status.Store(200)
	waitFor(t, 5*time.Second, "the incident over", func() bool { return strings.Count(log.String(), `"incident over"`) > over })
}

// Nothing lost on a full disk: two incidents fail and end while the disk
// is full, checks go on for a while; once space is freed both captures
// land, oldest first, each with its own error.
func TestFullDiskNothingLost(t *testing.T) {
	dir := mountTmpfs(t, "512k")
	h := newHealthServer(t)
	cmd, log := startRecorder(t, []string{"PREFLIGHT_SERVICE=full", "PREFLIGHT_HEALTH_URL=" + h.URL,
		"PREFLIGHT_INTERVAL_SECONDS=0.05", "PREFLIGHT_BUFFER_SAMPLES=5"}, "--dir", dir)
	waitState(t, dir, "full", cmd.Process.Pid, capture.StateHealthy)
	filler := fill(t, dir)
	svcDir := filepath.Join(dir, "full")

	failAndRecover(t, h, log)
	hits := h.hits.Load()
	waitFor(t, 5*time.Second, "healthy checks going on", func() bool { return h.hits.Load() >= hits+10 })
	failAndRecover(t, h, log)
	if n := len(captures(t, svcDir)); n != 0 {
		t.Fatalf("%d captures on a full disk", n)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "both captures once space is freed", func() bool { return len(captures(t, svcDir)) == 2 })
	if n, err := checkCaptures(svcDir); err != nil || n != 2 {
		t.Fatalf("%d captures: %v", n, err)
	}
	for _, f := range captures(t, svcDir) {
		c, _, _ := capture.Read(f)
		if c.HealthError != "HTTP 503" || len(c.Triggers) != 1 {
			t.Errorf("%s: health_error %q, triggers %+v", f, c.HealthError, c.Triggers)
		}
	}
	if m, _ := filepath.Glob(filepath.Join(svcDir, ".*")); len(m) != 0 {
		t.Errorf("temporary files left: %v", m)
	}
}

// Nothing lost on a read-only file system: the incident fails and ends
// while the capture directory's file system is read-only; remounted
// read-write, the capture lands.
func TestReadOnlyNothingLost(t *testing.T) {
	dir := mountTmpfs(t, "4m")
	h := newHealthServer(t)
	cmd, log := startRecorder(t, []string{"PREFLIGHT_SERVICE=ro", "PREFLIGHT_HEALTH_URL=" + h.URL,
		"PREFLIGHT_INTERVAL_SECONDS=0.05", "PREFLIGHT_BUFFER_SAMPLES=5"}, "--dir", dir)
	waitState(t, dir, "ro", cmd.Process.Pid, capture.StateHealthy)
	if err := syscall.Mount("", dir, "", syscall.MS_REMOUNT|syscall.MS_RDONLY, ""); err != nil {
		t.Skipf("cannot remount read-only: %v", err)
	}
	failAndRecover(t, h, log)
	if !strings.Contains(log.String(), "read-only file system") {
		t.Errorf("the failed write does not say why; log:\n%s", log)
	}
	svcDir := filepath.Join(dir, "ro")
	if err := syscall.Mount("", dir, "", syscall.MS_REMOUNT, ""); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the capture once writable", func() bool { return len(captures(t, svcDir)) == 1 })
	if n, err := checkCaptures(svcDir); err != nil || n != 1 {
		t.Fatalf("%d captures: %v", n, err)
	}
}

// SIGTERM while captures wait for a full disk: one last attempt, then each
// capture that could not be written is logged as an error naming it, and
// the recorder exits 0.
func TestSIGTERMWithPending(t *testing.T) {
	dir := mountTmpfs(t, "512k")
	h := newHealthServer(t)
	cmd, log, done := startKillable(t, []string{"PREFLIGHT_SERVICE=term", "PREFLIGHT_HEALTH_URL=" + h.URL,
		"PREFLIGHT_INTERVAL_SECONDS=0.05", "PREFLIGHT_BUFFER_SAMPLES=5"}, "--dir", dir)
	waitState(t, dir, "term", cmd.Process.Pid, capture.StateHealthy)
	fill(t, dir)
	failAndRecover(t, h, log) // one ended incident, pending
	failed := strings.Count(log.String(), "failed to write capture, will retry")
	h.status.Store(503) // and one open
	waitFor(t, 5*time.Second, "the open incident's failed write", func() bool {
		return strings.Count(log.String(), "failed to write capture, will retry") > failed
	})
	cmd.Process.Signal(syscall.SIGTERM)
	if err := <-done; err != nil {
		t.Fatalf("exit after SIGTERM: %v; log:\n%s", err, log)
	}
	var lost []string
	for _, l := range strings.Split(log.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil && m["message"] == "capture lost at exit: it could not be written" {
			if m["level"] != "error" {
				t.Errorf("not an error: %s", l)
			}
			lost = append(lost, fmt.Sprint(m["path"]))
		}
	}
	if len(lost) != 2 || lost[0] == lost[1] || !strings.HasPrefix(lost[0], filepath.Join(dir, "term")) {
		t.Errorf("lost at exit: %v, want the two captures by path; log:\n%s", lost, log)
	}
}
