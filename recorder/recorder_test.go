package recorder

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/preflight-rec/preflight/recorder/capture"
)

// newTestRecorder returns a recorder of the real host without a cgroup
// scope, writing into a temporary directory. Its loop is not running: tests
// drive onCheck and onTrigger directly, as Run would.
func newTestRecorder(t *testing.T, mod func(*Config)) *Recorder {
	t.Helper()
	return newTestRecorderOpt(t, mod, Options{})
}

// newTestRecorderOpt is newTestRecorder with options (the logger and
// version default to the test's).
func newTestRecorderOpt(t *testing.T, mod func(*Config), opt Options) *Recorder {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	t.Cleanup(srv.Close)
	cfg := Config{
		Service: "svc", HealthURL: srv.URL, IntervalSeconds: 1, BufferSamples: 3,
		FailureThreshold: 2, CaptureDir: t.TempDir(), Keep: 50, TopProcesses: 3, LogLevel: "info", TraceSeconds: 120,
	}
	if mod != nil {
		mod(&cfg)
	}
	if opt.Version == "" { // the zero Options: the test's logger
		opt.Logger, opt.Version = zerolog.New(zerolog.NewTestWriter(t)), "test"
	}
	opt.NoCgroup = true
	r, err := New(cfg, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return r
}

func check(ok bool, errText string) capture.Check {
	return capture.Check{At: time.Now().UTC(), OK: ok, Error: errText}
}

func readOnly(t *testing.T, r *Recorder) (string, *capture.Capture) {
	t.Helper()
	files := captureFiles(t, r)
	if len(files) != 1 {
		t.Fatalf("want one capture, have %d", len(files))
	}
	c, _, err := capture.Read(files[0].Path)
	if err != nil {
		t.Fatal(err)
	}
	return files[0].Path, c
}

// captureFiles lists r's captures, oldest first, as the readers do.
func captureFiles(t *testing.T, r *Recorder) []capture.Entry {
	t.Helper()
	s, err := capture.Open(r.cfg.CaptureDir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	files, err := s.Files(r.cfg.Service, nil)
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func kinds(c *capture.Capture) []string {
	var out []string
	for _, t := range c.Triggers {
		out = append(out, t.Kind)
	}
	return out
}

func TestHealthRule(t *testing.T) {
	r := newTestRecorder(t, nil)
	for range 4 {
		r.tick(t.Context(), time.Now())
		<-r.checkDone // the tick's own check; this test feeds results itself
		r.checking = false
	}
	// Failures before any success never trigger: the service may still be starting.
	r.onCheck(check(false, "connection refused"))
	r.onCheck(check(false, "connection refused"))
	if r.inc != nil {
		t.Fatal("failures before the first success opened an incident")
	}
	r.onCheck(check(true, ""))
	r.onCheck(check(false, "HTTP 503"))
	if r.inc != nil {
		t.Fatal("one failure below FAILURE_THRESHOLD=2 opened an incident")
	}
	r.onCheck(check(false, "HTTP 502"))
	if r.inc == nil {
		t.Fatal("two consecutive failures after a success did not open an incident")
	}
	path, c := readOnly(t, r)
	if got := kinds(c); len(got) != 1 || got[0] != "health" {
		t.Fatalf("triggers %v", got)
	}
	if c.HealthError != "HTTP 502" || c.Triggers[0].Detail != "HTTP 502" {
		t.Errorf("health_error %q, detail %q", c.HealthError, c.Triggers[0].Detail)
	}
	// Ring (3) + the sample at the trigger.
	if len(c.Samples) != 4 || c.Samples[3].At.Before(c.TransitionTime) {
		t.Errorf("want 3 ring samples and one at the trigger, got %d", len(c.Samples))
	}
	if len(c.Health) != 3 || c.Health[2].OK {
		t.Errorf("health history %+v", c.Health)
	}
	// Further failures and an exit belong to the same incident.
	r.onCheck(check(false, "HTTP 502"))
	r.onTrigger(trigger{kind: capture.TriggerExit, at: time.Now(), detail: "cgroup emptied"})
	path2, c := readOnly(t, r)
	if path2 != path {
		t.Fatalf("the exit wrote a second file %s", path2)
	}
	if got := kinds(c); len(got) != 2 || got[1] != "exit" {
		t.Fatalf("triggers %v", got)
	}
	if len(c.Samples) != 5 {
		t.Errorf("want 5 samples (3 + one per trigger), got %d", len(c.Samples))
	}
	// A healthy check that started after the last trigger ends the incident.
	r.onCheck(check(true, ""))
	if r.inc != nil {
		t.Fatal("a healthy check did not end the incident")
	}
	r.onCheck(check(false, "HTTP 500"))
	r.onCheck(check(false, "HTTP 500"))
	files := captureFiles(t, r)
	if len(files) != 2 {
		t.Fatalf("the next failure should be a second capture, have %d", len(files))
	}
}

// A check that started before the incident's trigger and succeeded says
// nothing about the service after it: it must not end the incident.
func TestStaleHealthyCheckKeepsIncident(t *testing.T) {
	r := newTestRecorder(t, nil)
	before := check(true, "")
	r.onTrigger(trigger{kind: capture.TriggerExit, at: time.Now(), detail: "cgroup emptied"})
	r.onCheck(before)
	if r.inc == nil {
		t.Fatal("a check started before the trigger ended the incident")
	}
}

func TestTriggerCap(t *testing.T) {
	r := newTestRecorder(t, nil)
	for range maxTriggers + 7 {
		r.onTrigger(trigger{kind: capture.TriggerExit, at: time.Now(), detail: "all processes replaced"})
	}
	r.tick(t.Context(), time.Now()) // flushes the omitted count
	_, c := readOnly(t, r)
	if len(c.Triggers) != maxTriggers || c.TriggersOmitted != 7 {
		t.Errorf("triggers %d omitted %d, want %d and 7", len(c.Triggers), c.TriggersOmitted, maxTriggers)
	}
	if len(c.Samples) != maxTriggers { // empty ring + one per recorded trigger
		t.Errorf("samples %d, want %d", len(c.Samples), maxTriggers)
	}
}

// A capture directory removed under the recorder is re-created at the next
// write; nothing is lost.
func TestDirectoryRemovedUnderRecorder(t *testing.T) {
	r := newTestRecorder(t, nil)
	if err := os.RemoveAll(r.Dir()); err != nil {
		t.Fatal(err)
	}
	r.onTrigger(trigger{kind: capture.TriggerOOM, at: time.Now(), detail: "oom_kill 0 → 1"})
	_, c := readOnly(t, r)
	if c.Triggers[0].Kind != "oom" {
		t.Errorf("triggers %v", kinds(c))
	}
	st, err := os.Stat(r.Dir())
	if err != nil || st.Mode().Perm() != DirMode {
		t.Errorf("directory not re-created with mode %v: %v %v", DirMode, st, err)
	}
}

// A write that fails stays pending and lands at a later tick.
func TestFailedWriteIsRetried(t *testing.T) {
	r := newTestRecorder(t, nil)
	// Make the service directory a file: every write fails.
	if err := os.RemoveAll(r.Dir()); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(r.Dir(), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	r.onTrigger(trigger{kind: capture.TriggerExit, at: time.Now(), detail: "cgroup emptied"})
	if r.inc == nil || !r.inc.dirty {
		t.Fatal("a failed write must leave the incident pending")
	}
	os.Remove(r.Dir())
	r.tick(t.Context(), time.Now())
	if r.inc.dirty {
		t.Fatal("the retry at the next tick did not write the capture")
	}
	readOnly(t, r)
	if m, _ := filepath.Glob(filepath.Join(r.Dir(), ".*")); len(m) != 0 {
		t.Errorf("temporary files left: %v", m)
	}
}

// A check that never succeeds (self-signed TLS, a redirect loop) logs one
// warn line with its reason after FailureThreshold failures, and one more
// when the reason changes.
func TestNeverHealthyWarns(t *testing.T) {
	var log bytes.Buffer
	r := newTestRecorder(t, nil) // FailureThreshold 2
	r.log = zerolog.New(&log).Level(zerolog.InfoLevel)
	for _, e := range []string{"x509: certificate signed by unknown authority", "x509: certificate signed by unknown authority",
		"x509: certificate signed by unknown authority", "stopped after 10 redirects", "stopped after 10 redirects"} {
		r.onCheck(check(false, e))
	}
	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(log.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		lines = append(lines, m)
	}
	want := []struct {
		err      string
		failures float64
	}{{"x509: certificate signed by unknown authority", 2}, {"stopped after 10 redirects", 4}}
	if len(lines) != len(want) {
		t.Fatalf("%d log lines, want %d:\n%s", len(lines), len(want), log.String())
	}
	for i, w := range want {
		if l := lines[i]; l["level"] != "warn" || l["error"] != w.err || l["failures"] != w.failures ||
			l["message"] != "health check has never succeeded: no health capture until one does" {
			t.Errorf("line %d = %v, want warn with error %q after %v failures", i, l, w.err, w.failures)
		}
	}
	r.onCheck(check(true, ""))
	r.onCheck(check(false, "HTTP 503"))
	r.onCheck(check(false, "HTTP 503"))
	if strings.Count(log.String(), "never succeeded") != 2 {
		t.Errorf("warned again after a success:\n%s", log.String())
	}
}
