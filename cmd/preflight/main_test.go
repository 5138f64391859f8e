package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// The CLI is tested by running the built binary: exit codes, stdout,
// stderr and the files it leaves.

var binary string

func TestMain(m *testing.M) {
	if os.Getenv(allocHelperEnv) != "" {
		allocHelper()
		return
	}
	if os.Getenv(serveHelperEnv) != "" {
		serveHelper()
		return
	}
	if os.Getenv(growHelperEnv) != "" {
		growHelper()
		return
	}
	if os.Getenv(fdsHelperEnv) != "" {
		fdsHelper()
		return
	}
	dir, err := os.MkdirTemp("", "preflight-cli-test")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "preflight")
	out, err := exec.Command("go", "build", "-race", "-ldflags", "-X main.Version=test-1.2.3", "-o", binary, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type result struct {
	code           int
	stdout, stderr string
}

// preflight runs the binary with a clean PREFLIGHT_* environment plus env.
func preflight(t *testing.T, env []string, args ...string) result {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append(cleanEnv(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run preflight %v: %v", args, err)
	}
	return result{code, stdout.String(), stderr.String()}
}

// cleanEnv is the test's environment without PREFLIGHT_* variables, and
// without the race detector's one-second sleep at every exit.
func cleanEnv() []string {
	out := []string{"GORACE=atexit_sleep_ms=0"}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PREFLIGHT_") && !strings.HasPrefix(kv, "GORACE=") {
			out = append(out, kv)
		}
	}
	return out
}

// healthServer is a loopback health endpoint whose status the test sets.
type healthServer struct {
	*httptest.Server
	status atomic.Int32
	hits   atomic.Int32
}

func newHealthServer(t *testing.T) *healthServer {
	h := &healthServer{}
	h.status.Store(200)
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		h.hits.Add(1)
		w.WriteHeader(int(h.status.Load()))
	}))
	t.Cleanup(h.Close)
	return h
}

// startRecorder starts 'preflight start' and stops it (SIGTERM, by PID) at
// cleanup, requiring exit 0.
func startRecorder(t *testing.T, env []string, args ...string) (*exec.Cmd, *lockedBuffer) {
	t.Helper()
	return startCommand(t, exec.Command(binary, append([]string{"start"}, args...)...), env)
}

// startCommand is startRecorder for a cmd that execs 'preflight start' in
// its own process (a wrapper that sets something first, then execs it).
func startCommand(t *testing.T, cmd *exec.Cmd, env []string) (*exec.Cmd, *lockedBuffer) {
	t.Helper()
	cmd.Env = append(cleanEnv(), env...)
	stderr := &lockedBuffer{mu: make(chan struct{}, 1)}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-done:
			switch {
			case err != nil:
				t.Errorf("recorder exited with %v after SIGTERM; log:\n%s", err, stderr.String())
			case t.Failed():
				log := stderr.String()
				t.Logf("the recorder's log, its last 8 KiB:\n%s", log[max(0, len(log)-8<<10):])
			}
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			t.Errorf("recorder did not exit within 10s of SIGTERM")
		}
	})
	return cmd, stderr
}

// lockedBuffer is a bytes.Buffer safe for the writer goroutine of exec
// and the test's reads. Not embedded: exec would find ReadFrom and bypass
// the lock.
type lockedBuffer struct {
	mu  chan struct{}
	buf bytes.Buffer
}

func (b *lockedBuffer) lock() { b.mu <- struct{}{} }

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.lock()
	defer func() { <-b.mu }()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.lock()
	defer func() { <-b.mu }()
	return b.buf.String()
}

// waitFor polls cond every 20 ms until it holds or the deadline passes.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func captures(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestBlackBox is the recorder issue's "done when": five healthy checks,
// then 503, then one capture with every contract field and 6 samples.
func TestBlackBox(t *testing.T) {
	h := newHealthServer(t)
	dir := t.TempDir()
	env := []string{
		"PREFLIGHT_SERVICE=x",
		"PREFLIGHT_HEALTH_URL=" + h.URL + "/health",
		"PREFLIGHT_INTERVAL_SECONDS=0.2",
		"PREFLIGHT_BUFFER_SAMPLES=5",
	}
	_, log := startRecorder(t, env, "--dir", dir)
	waitFor(t, 5*time.Second, "five healthy checks", func() bool { return h.hits.Load() >= 5 })
	h.status.Store(503)
	failedAt := time.Now()
	svcDir := filepath.Join(dir, "x")
	waitFor(t, 2*time.Second, "a capture", func() bool { return len(captures(t, svcDir)) > 0 })
	t.Logf("capture appeared %v after the server turned 503", time.Since(failedAt).Round(time.Millisecond))
	time.Sleep(500 * time.Millisecond) // later failed checks must not write a second file
	files := captures(t, svcDir)
	if len(files) != 1 {
		t.Fatalf("want exactly one capture, got %v\nlog:\n%s", files, log)
	}
	data, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(files[0])
	if st.Mode().Perm() != 0o640 {
		t.Errorf("capture mode %v, want 0640", st.Mode().Perm())
	}
	if st, _ := os.Stat(svcDir); st.Mode().Perm() != 0o750 {
		t.Errorf("service directory mode %v, want 0750", st.Mode().Perm())
	}

	var c map[string]any
	if err := json.Unmarshal(data, &c); err != nil {
		t.Fatalf("capture is not JSON: %v", err)
	}
	for _, k := range []string{"schema", "service", "host", "health_url", "transition_time", "health_error",
		"triggers", "health", "samples", "preflight_version"} {
		if _, ok := c[k]; !ok {
			t.Errorf("capture lacks %q", k)
		}
	}
	if c["schema"] != "preflight.capture/v1" || c["service"] != "x" || c["preflight_version"] != "test-1.2.3" {
		t.Errorf("schema/service/version: %v %v %v", c["schema"], c["service"], c["preflight_version"])
	}
	if !strings.Contains(c["health_error"].(string), "503") {
		t.Errorf("health_error %q does not say 503", c["health_error"])
	}
	if _, err := time.Parse(time.RFC3339Nano, c["transition_time"].(string)); err != nil || !strings.HasSuffix(c["transition_time"].(string), "Z") {
		t.Errorf("transition_time %q is not RFC 3339 UTC", c["transition_time"])
	}
	trig := c["triggers"].([]any)
	if len(trig) != 1 || trig[0].(map[string]any)["kind"] != "health" {
		t.Errorf("triggers: %v", trig)
	}
	samples := c["samples"].([]any)
	if len(samples) != 6 {
		t.Fatalf("want 6 samples (5 + the one at the trigger), got %d", len(samples))
	}
	for i, s := range samples {
		sm := s.(map[string]any)
		for _, k := range []string{"at", "cpu", "load", "memory", "disks", "top_cpu", "top_memory", "service"} {
			if _, ok := sm[k]; !ok {
				t.Errorf("sample %d lacks %q", i, k)
			}
		}
	}
	last := samples[5].(map[string]any)
	if lastAt, _ := time.Parse(time.RFC3339Nano, last["at"].(string)); lastAt.Before(mustTime(t, c["transition_time"])) {
		t.Errorf("the last sample (%v) is not the one taken at the trigger (%v)", last["at"], c["transition_time"])
	}
	checks := c["health"].([]any)
	if len(checks) == 0 || checks[len(checks)-1].(map[string]any)["ok"] != false {
		t.Errorf("health history does not end with the failed check: %v", checks)
	}

	// The readers.
	r := preflight(t, nil, "last", "x", "--json", "--dir", dir)
	if r.code != 0 || r.stdout != string(data) {
		t.Errorf("last --json: code %d, byte-identical %v, stderr %q", r.code, r.stdout == string(data), r.stderr)
	}
	r = preflight(t, []string{"PREFLIGHT_CAPTURE_DIR=" + dir}, "last", "--json", "x")
	if r.code != 0 || r.stdout != string(data) {
		t.Errorf("last --json x (dir from env): code %d, stderr %q", r.code, r.stderr)
	}
	r = preflight(t, nil, "list", "--json", "--dir", dir)
	var listed []struct {
		Service  string
		Captures int
		Newest   struct{ Path string }
	}
	if err := json.Unmarshal([]byte(r.stdout), &listed); err != nil || r.code != 0 {
		t.Fatalf("list --json: code %d, %v: %q", r.code, err, r.stdout)
	}
	if len(listed) != 1 || listed[0].Service != "x" || listed[0].Captures != 1 || listed[0].Newest.Path != files[0] {
		t.Errorf("list --json: %+v", listed)
	}
	r = preflight(t, nil, "last", "x", "--dir", dir)
	for _, want := range []string{"x failed at", "health", "HTTP 503", "Timeline", "Top CPU before the failure", files[0]} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("last report lacks %q:\n%s", want, r.stdout)
		}
	}
	if !strings.Contains(log.String(), `"path":"`+files[0]) {
		t.Errorf("no log line with the capture's path:\n%s", log)
	}
}

func mustTime(t *testing.T, v any) time.Time {
	t.Helper()
	tm, err := time.Parse(time.RFC3339Nano, v.(string))
	if err != nil {
		t.Fatal(err)
	}
	return tm
}

// TestIncidentEndsAndRecurs: a healthy check ends the incident; the next
// failure is a second capture.
func TestIncidentEndsAndRecurs(t *testing.T) {
	h := newHealthServer(t)
	dir := t.TempDir()
	env := []string{"PREFLIGHT_SERVICE=flappy", "PREFLIGHT_HEALTH_URL=" + h.URL,
		"PREFLIGHT_INTERVAL_SECONDS=0.05", "PREFLIGHT_BUFFER_SAMPLES=3", "PREFLIGHT_FAILURE_THRESHOLD=2"}
	startRecorder(t, env, "--dir", dir)
	svcDir := filepath.Join(dir, "flappy")
	waitFor(t, 5*time.Second, "healthy checks", func() bool { return h.hits.Load() >= 3 })
	for i := 1; i <= 2; i++ {
		h.status.Store(500)
		waitFor(t, 5*time.Second, fmt.Sprintf("capture %d", i), func() bool { return len(captures(t, svcDir)) == i })
		h.status.Store(200)
		n := h.hits.Load()
		waitFor(t, 5*time.Second, "healthy again", func() bool { return h.hits.Load() >= n+3 })
	}
	if got := len(captures(t, svcDir)); got != 2 {
		t.Fatalf("want 2 captures, got %d", got)
	}
}

func TestRetention(t *testing.T) {
	h := newHealthServer(t)
	dir := t.TempDir()
	env := []string{"PREFLIGHT_SERVICE=r", "PREFLIGHT_HEALTH_URL=" + h.URL,
		"PREFLIGHT_INTERVAL_SECONDS=0.05", "PREFLIGHT_BUFFER_SAMPLES=2", "PREFLIGHT_KEEP=2"}
	svcDir := filepath.Join(dir, "r")
	// A foreign file and a stale temporary file of a killed writer.
	if err := os.MkdirAll(svcDir, 0o750); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(svcDir, "notes.txt"), []byte("mine"), 0o600)
	os.WriteFile(filepath.Join(svcDir, ".2020-01-01T00-00-00.000Z.json12345"), []byte("{\"sch"), 0o600)
	startRecorder(t, env, "--dir", dir)
	waitFor(t, 5*time.Second, "stale temporary file removed", func() bool {
		_, err := os.Stat(filepath.Join(svcDir, ".2020-01-01T00-00-00.000Z.json12345"))
		return os.IsNotExist(err)
	})
	var seen []string
	for i := 0; i < 4; i++ {
		waitFor(t, 5*time.Second, "healthy", func() bool { n := h.hits.Load(); time.Sleep(60 * time.Millisecond); return h.hits.Load() > n })
		h.status.Store(503)
		waitFor(t, 5*time.Second, "a new capture", func() bool {
			fs := captures(t, svcDir)
			return len(fs) > 0 && !contains(seen, fs[len(fs)-1])
		})
		fs := captures(t, svcDir)
		seen = append(seen, fs[len(fs)-1])
		h.status.Store(200)
		time.Sleep(150 * time.Millisecond)
	}
	fs := captures(t, svcDir)
	if len(fs) != 2 || fs[0] != seen[2] || fs[1] != seen[3] {
		t.Errorf("want the newest two captures %v, have %v", seen[2:], fs)
	}
	if _, err := os.Stat(filepath.Join(svcDir, "notes.txt")); err != nil {
		t.Errorf("retention removed a file that is not a capture: %v", err)
	}
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func TestStartBadConfig(t *testing.T) {
	base := map[string]string{"PREFLIGHT_SERVICE": "x", "PREFLIGHT_HEALTH_URL": "http://127.0.0.1:9/"}
	cases := []struct {
		name, value, wantVar string
	}{
		{"PREFLIGHT_HEALTH_URL", "", "PREFLIGHT_HEALTH_URL"},
		{"PREFLIGHT_SERVICE", "", "PREFLIGHT_SERVICE"},
		{"PREFLIGHT_SERVICE", "..", "PREFLIGHT_SERVICE"},
		{"PREFLIGHT_SERVICE", "a/b", "PREFLIGHT_SERVICE"},
		{"PREFLIGHT_HEALTH_URL", "ftp://127.0.0.1/", "PREFLIGHT_HEALTH_URL"},
		{"PREFLIGHT_HEALTH_URL", "tcp://127.0.0.1", "PREFLIGHT_HEALTH_URL"},
		{"PREFLIGHT_INTERVAL_SECONDS", "abc", "PREFLIGHT_INTERVAL_SECONDS"},
		{"PREFLIGHT_INTERVAL_SECONDS", "0", "PREFLIGHT_INTERVAL_SECONDS"},
		{"PREFLIGHT_INTERVAL_SECONDS", "-1", "PREFLIGHT_INTERVAL_SECONDS"},
		{"PREFLIGHT_INTERVAL_SECONDS", "NaN", "PREFLIGHT_INTERVAL_SECONDS"},
		{"PREFLIGHT_INTERVAL_SECONDS", "100000", "PREFLIGHT_INTERVAL_SECONDS"},
		{"PREFLIGHT_BUFFER_SAMPLES", "0", "PREFLIGHT_BUFFER_SAMPLES"},
		{"PREFLIGHT_BUFFER_SAMPLES", "2.5", "PREFLIGHT_BUFFER_SAMPLES"},
		{"PREFLIGHT_BUFFER_SAMPLES", "99999999999999999999", "PREFLIGHT_BUFFER_SAMPLES"},
		{"PREFLIGHT_TIMEOUT_SECONDS", "-3", "PREFLIGHT_TIMEOUT_SECONDS"},
		{"PREFLIGHT_FAILURE_THRESHOLD", "0", "PREFLIGHT_FAILURE_THRESHOLD"},
		{"PREFLIGHT_KEEP", "-1", "PREFLIGHT_KEEP"},
		{"PREFLIGHT_TOP_PROCESSES", "1000", "PREFLIGHT_TOP_PROCESSES"},
		{"PREFLIGHT_LOG_LEVEL", "loud", "PREFLIGHT_LOG_LEVEL"},
		{"PREFLIGHT_CGROUP", "relative/path", "PREFLIGHT_CGROUP"},
		{"PREFLIGHT_CGROUP", "/a/../b", "PREFLIGHT_CGROUP"},
		{"PREFLIGHT_UNIT", "a/b.service", "PREFLIGHT_UNIT"},
	}
	for _, tc := range cases {
		t.Run(tc.name+"="+tc.value, func(t *testing.T) {
			var env []string
			for k, v := range base {
				if k != tc.name {
					env = append(env, k+"="+v)
				}
			}
			env = append(env, tc.name+"="+tc.value, "PREFLIGHT_CAPTURE_DIR="+t.TempDir())
			r := preflight(t, env, "start")
			if r.code != 2 {
				t.Errorf("exit %d, want 2; stderr %q", r.code, r.stderr)
			}
			lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
			if len(lines) != 1 || !strings.HasPrefix(lines[0], "preflight: "+tc.wantVar) {
				t.Errorf("stderr %q: want one line naming %s", r.stderr, tc.wantVar)
			}
			if tc.value != "" && !strings.Contains(r.stderr, tc.value) {
				t.Errorf("stderr %q does not name the value %q", r.stderr, tc.value)
			}
		})
	}
}

func TestStartUnwritableDir(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, nil, 0o600)
	dir := filepath.Join(file, "captures")
	r := preflight(t, []string{"PREFLIGHT_SERVICE=x", "PREFLIGHT_HEALTH_URL=http://127.0.0.1:9/"}, "start", "--dir", dir)
	if r.code != 1 || !strings.Contains(r.stderr, dir) || strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("exit %d, stderr %q: want 1 and one line naming %s", r.code, r.stderr, dir)
	}
}

func TestReaders(t *testing.T) {
	dir := t.TempDir()
	svc := filepath.Join(dir, "svc")
	os.MkdirAll(svc, 0o750)
	good := `{"schema":"preflight.capture/v1","service":"svc","host":"h","health_url":"http://127.0.0.1/","transition_time":"2026-11-26T03:12:04.123Z","health_error":"HTTP 503","triggers":[{"kind":"health","at":"2026-11-26T03:12:04.123Z","detail":"HTTP 503"}],"health":[],"samples":[],"interval_seconds":30,"preflight_version":"x"}` + "\n"
	os.WriteFile(filepath.Join(svc, "2026-11-26T03-12-04.123Z.json"), []byte(good), 0o640)
	// Newer, but not readable captures: truncated, foreign, newer schema.
	os.WriteFile(filepath.Join(svc, "2026-11-26T04-00-00.000Z.json"), []byte(good[:40]), 0o640)
	os.WriteFile(filepath.Join(svc, "2026-11-26T05-00-00.000Z.json"), []byte(`{"hello":1}`), 0o640)
	os.WriteFile(filepath.Join(svc, "2026-11-26T06-00-00.000Z.json"), []byte(`{"schema":"preflight.capture/v9"}`), 0o640)
	syscall.Mkfifo(filepath.Join(svc, "2026-11-26T07-00-00.000Z.json"), 0o640) // must not block
	os.Symlink("/etc/passwd", filepath.Join(svc, "2026-11-26T08-00-00.000Z.json"))

	r := preflight(t, nil, "last", "svc", "--dir", dir, "--json")
	if r.code != 0 || r.stdout != good {
		t.Fatalf("last: exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{"04-00-00", "05-00-00", "06-00-00", "v9"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("no warning about %s in %q", want, r.stderr)
		}
	}
	r = preflight(t, nil, "list", "svc", "--dir", dir)
	if r.code != 0 || !strings.Contains(r.stdout, "2026-11-26T03-12-04.123Z.json") || strings.Count(r.stdout, "\n") != 2 {
		t.Errorf("list svc: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	r = preflight(t, nil, "list", "--dir", dir)
	if r.code != 0 || !strings.Contains(r.stdout, "svc") || !strings.Contains(r.stdout, "HTTP 503") {
		t.Errorf("list: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	r = preflight(t, nil, "show", filepath.Join(svc, "2026-11-26T03-12-04.123Z.json"), "--json")
	if r.code != 0 || r.stdout != good {
		t.Errorf("show --json: exit %d %q", r.code, r.stderr)
	}
	r = preflight(t, nil, "show", filepath.Join(svc, "2026-11-26T05-00-00.000Z.json"))
	if r.code != 1 || !strings.Contains(r.stderr, "not a preflight capture") {
		t.Errorf("show foreign: exit %d %q", r.code, r.stderr)
	}

	for _, tc := range []struct {
		args []string
		code int
		out  string // in stdout or stderr
	}{
		{[]string{"last", "nosuch", "--dir", dir}, 1, "no capture of nosuch"},
		{[]string{"last", "../etc", "--dir", dir}, 2, "invalid service name"},
		{[]string{"last", "a/b", "--dir", dir}, 2, "invalid service name"},
		{[]string{"last", "--dir", dir}, 2, "wrong number of arguments"},
		{[]string{"list", "--dir", filepath.Join(dir, "none")}, 1, "no capture directory"},
		{[]string{"list", "--dir", t.TempDir()}, 1, "no captures in"},
		{[]string{"list", "--bogus"}, 2, "flag provided but not defined: -bogus"},
		{[]string{"bogus"}, 2, `unknown command "bogus"`},
		{[]string{}, 2, "no command given"},
		{[]string{"show", "/nonexistent/file.json"}, 1, "no such file"},
		{[]string{"version"}, 0, "preflight test-1.2.3"},
		{[]string{"last", "-h"}, 0, "Usage: preflight last"},
		{[]string{"start", "--help"}, 0, "Usage: preflight start"},
		{[]string{"list", "-h"}, 0, "Usage: preflight list"},
		{[]string{"show", "-h"}, 0, "Usage: preflight show"},
		{[]string{"-h"}, 0, "Usage:"},
		{[]string{"-h"}, 0, "SERVICE@N"},
		{[]string{"--help"}, 0, "--check"},
		{[]string{"-h"}, 0, "--html"},
		{[]string{"--dir", dir, "last", "nosuch"}, 1, "no capture of nosuch in " + dir},
		{[]string{"--dir=" + dir, "last", "nosuch"}, 1, "no capture of nosuch in " + dir},
		{[]string{"--json", "--dir", dir, "list", "nosuch"}, 1, "nosuch"},
		{[]string{"--dir", dir}, 2, "no command given after --dir " + dir},
		{[]string{"--bogus", "list"}, 2, "flag provided but not defined: -bogus"},
		{[]string{"--dir", dir, "version", "--dir", dir}, 0, "preflight test-1.2.3"},
	} {
		r := preflight(t, nil, tc.args...)
		if r.code != tc.code || !strings.Contains(r.stdout+r.stderr, tc.out) {
			t.Errorf("preflight %v: exit %d (want %d), stdout %q stderr %q (want %q)", tc.args, r.code, tc.code, r.stdout, r.stderr, tc.out)
		}
		if r.code != 0 && (r.stderr == "" || !strings.HasPrefix(r.stderr, "preflight: ") && r.code == 2) {
			t.Errorf("preflight %v: error not on stderr with prefix: %q", tc.args, r.stderr)
		}
	}
}

// TestSIGTERMIdle: SIGTERM ends an idle recorder with exit 0 and no files
// but its (empty) service directory.
func TestSIGTERMIdle(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	dir := t.TempDir()
	cmd := exec.Command(binary, "start", "--dir", dir)
	cmd.Env = append(cleanEnv(), "PREFLIGHT_SERVICE=idle", "PREFLIGHT_HEALTH_URL=tcp://"+ln.Addr().String(), "PREFLIGHT_INTERVAL_SECONDS=0.05")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	readState := func() (st struct {
		PID   int
		State string
	}) {
		data, _ := os.ReadFile(filepath.Join(dir, ".state", "idle.json"))
		json.Unmarshal(data, &st)
		return st
	}
	waitFor(t, 5*time.Second, "state healthy", func() bool { return readState().State == "healthy" })
	if st := readState(); st.PID != cmd.Process.Pid {
		t.Errorf("state file pid %d, want %d", st.PID, cmd.Process.Pid)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
	if st := readState(); st.State != "stopped" {
		t.Errorf("state after SIGTERM %q, want stopped", st.State)
	}
	ents, _ := os.ReadDir(filepath.Join(dir, "idle"))
	if len(ents) != 0 {
		t.Errorf("idle recorder left files: %v", ents)
	}
	ents, _ = os.ReadDir(filepath.Join(dir, ".state"))
	if len(ents) != 2 || ents[0].Name() != "idle.json" || ents[1].Name() != "idle.lock" {
		t.Errorf("state directory holds %v, want only idle.json and idle.lock", ents)
	}
}
