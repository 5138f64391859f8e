package recorder

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/preflight-rec/preflight/recorder/capture"
)

// logBuffer collects a recorder's JSON log lines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// lines returns the log lines whose message starts with msg.
func (b *logBuffer) lines(msg string) []map[string]any {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	for _, l := range strings.Split(b.buf.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil && strings.HasPrefix(m["message"].(string), msg) {
			out = append(out, m)
		}
	}
	return out
}

func loggedRecorder(t *testing.T, mod func(*Config), now func() time.Time) (*Recorder, *logBuffer) {
	t.Helper()
	log := &logBuffer{}
	r := newTestRecorderOpt(t, mod, Options{Logger: zerolog.New(log), Version: "test", Now: now})
	return r, log
}

// breakDir makes every capture write fail (the service's directory is a
// file); mend undoes it.
func breakDir(t *testing.T, r *Recorder) (mend func()) {
	t.Helper()
	if err := os.RemoveAll(r.Dir()); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(r.Dir(), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	return func() { os.Remove(r.Dir()) }
}

// Nothing lost: a capture that cannot be written stays pending across the
// end of its incident and across a later incident; both land, oldest
// first, at the first tick once the directory takes files again.
func TestPendingAcrossIncidents(t *testing.T) {
	r, log := loggedRecorder(t, nil, nil)
	r.healthyOnce = true
	mend := breakDir(t, r)
	r.onCheck(check(false, "HTTP 500"))
	r.onCheck(check(false, "HTTP 500")) // threshold 2: incident A
	if r.inc == nil || !r.inc.dirty {
		t.Fatal("no pending incident")
	}
	first := r.inc.name
	r.onCheck(check(true, "")) // A is over, unwritten
	if r.inc != nil || len(r.pending) != 1 || r.pending[0].name != first {
		t.Fatalf("the unwritten capture of the closed incident is not pending: %+v", r.pending)
	}
	r.tick(t.Context(), time.Now()) // retried, fails again
	<-r.checkDone
	r.checking = false
	r.onCheck(check(false, "HTTP 502"))
	r.onCheck(check(false, "HTTP 502")) // incident B
	second := r.inc.name
	r.onCheck(check(true, ""))
	if len(r.pending) != 2 || second <= first {
		t.Fatalf("pending %d (%s, %s)", len(r.pending), first, second)
	}
	mend()
	r.tick(t.Context(), time.Now())
	files := captureFiles(t, r)
	if len(files) != 2 || files[0].Name != first || files[1].Name != second || len(r.pending) != 0 {
		t.Fatalf("after the directory mends: %+v, pending %d", files, len(r.pending))
	}
	for i, want := range []string{"HTTP 500", "HTTP 502"} {
		c, _, err := capture.Read(files[i].Path)
		if err != nil || c.HealthError != want {
			t.Errorf("%s: %v, health_error %q, want %q", files[i].Name, err, c.HealthError, want)
		}
	}
	if n := len(log.lines("failed to write capture, will retry")); n < 3 {
		t.Errorf("%d failed writes of open incidents logged, want one per attempt (at least 3)", n)
	}
	if l := log.lines("failed to write pending captures, will retry"); len(l) != 1 || l[0]["pending"] != 1.0 || l[0]["level"] != "error" {
		t.Errorf("failed retries of pending captures logged as %v, want one error line for the one tick", l)
	}
	if n := len(log.lines("capture written")); n != 2 {
		t.Errorf("%d captures written, want 2", n)
	}
}

// The bound: past maxPending captures waiting for the disk, the oldest is
// dropped, each with an error line naming it.
func TestPendingBound(t *testing.T) {
	r, log := loggedRecorder(t, func(c *Config) { c.FailureThreshold = 1 }, nil)
	r.healthyOnce = true
	breakDir(t, r)
	var names []string
	for range maxPending + 3 {
		r.onCheck(check(false, "HTTP 503"))
		names = append(names, r.inc.name)
		r.onCheck(check(true, ""))
	}
	if len(r.pending) != maxPending || r.pending[0].name != names[3] {
		t.Fatalf("%d pending, oldest %s; want %d from %s", len(r.pending), r.pending[0].name, maxPending, names[3])
	}
	dropped := log.lines("capture dropped")
	if len(dropped) != 3 {
		t.Fatalf("%d drops logged, want 3", len(dropped))
	}
	for i, l := range dropped {
		if l["level"] != "error" || !strings.HasSuffix(l["path"].(string), names[i]) {
			t.Errorf("drop line %v, want an error naming %s", l, names[i])
		}
	}
}

// At SIGTERM (Run's context done) pending captures get one last attempt;
// what cannot be written is logged, each as an error.
func TestExitWithPending(t *testing.T) {
	r, log := loggedRecorder(t, func(c *Config) { c.FailureThreshold = 1 }, nil)
	r.healthyOnce = true
	breakDir(t, r)
	r.onCheck(check(false, "HTTP 503"))
	r.onCheck(check(true, ""))
	r.onCheck(check(false, "HTTP 504")) // open, unwritten
	r.flush(true)
	lost := log.lines("capture lost at exit")
	if len(lost) != 2 || lost[0]["level"] != "error" || lost[1]["level"] != "error" {
		t.Fatalf("lost at exit: %v, want two errors", lost)
	}
}

// Names never go backwards: after the clock is stepped back an hour, the
// next incident's capture is named 1 ms after the newest, so it is the one
// 'last' shows and KEEP keeps; its transition_time stays the clock's.
func TestClockSteppedBack(t *testing.T) {
	t0 := time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	now := t0
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	set := func(t time.Time) { mu.Lock(); now = t; mu.Unlock() }
	r, _ := loggedRecorder(t, func(c *Config) { c.FailureThreshold, c.Keep = 1, 2 }, clock)
	r.healthyOnce = true
	r.onCheck(check(false, "HTTP 500"))
	r.onCheck(check(true, ""))
	set(t0.Add(-time.Hour)) // NTP steps the clock back
	r.onCheck(check(false, "HTTP 501"))
	r.onCheck(check(true, ""))
	set(t0.Add(-time.Hour + time.Second))
	r.onCheck(check(false, "HTTP 502"))
	files := captureFiles(t, r)
	want := []string{"2026-11-26T03-00-00.001Z.json", "2026-11-26T03-00-00.002Z.json"} // KEEP 2: the first is gone
	if len(files) != 2 || files[0].Name != want[0] || files[1].Name != want[1] {
		t.Fatalf("captures %+v, want %v", files, want)
	}
	c, _, err := capture.Read(files[1].Path)
	if err != nil || c.HealthError != "HTTP 502" || !c.TransitionTime.Equal(t0.Add(-time.Hour+time.Second)) {
		t.Errorf("newest: %v, health_error %q, transition_time %v", err, c.HealthError, c.TransitionTime)
	}
	r.writeState(true)
	if st, err := capture.ReadState(r.cfg.CaptureDir, "svc"); err != nil || !st.UpdatedAt.Equal(t0.Add(-time.Hour+time.Second)) {
		t.Errorf("the state file is not on the injected clock: %+v, %v", st, err)
	}
}

// One writer: a second recorder of the same service and directory is
// refused, naming the first's PID; another service is not.
func TestSecondRecorderRefused(t *testing.T) {
	first := newTestRecorder(t, nil)
	cfg := first.cfg
	_, err := New(cfg, Options{Logger: zerolog.Nop(), NoCgroup: true})
	var le *capture.LockedError
	if !errors.As(err, &le) || le.PID != os.Getpid() || !strings.Contains(err.Error(), "pid "+itoa(os.Getpid())) {
		t.Fatalf("second recorder: %v, want a LockedError naming pid %d", err, os.Getpid())
	}
	newTestRecorder(t, func(c *Config) { c.CaptureDir, c.Service = cfg.CaptureDir, "other" })
	first.Close()
	again, err := New(cfg, Options{Logger: zerolog.Nop(), NoCgroup: true})
	if err != nil {
		t.Fatalf("after the first closed: %v", err)
	}
	again.Close()
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

// Validate reads the configuration and never changes it; the readers of
// configuration fill the derived defaults.
func TestValidateDoesNotMutate(t *testing.T) {
	cfg := Config{Service: "svc", HealthURL: "http://127.0.0.1:9/", IntervalSeconds: 2, BufferSamples: 3,
		FailureThreshold: 1, CaptureDir: t.TempDir(), Keep: 5, TopProcesses: 1, LogLevel: "info", TraceSeconds: 120}.WithDefaults()
	before := cfg
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cfg, before) {
		t.Errorf("Validate changed the configuration:\n%+v\n%+v", before, cfg)
	}
	env, err := ConfigFromEnv([]string{"PREFLIGHT_SERVICE=svc", "PREFLIGHT_HEALTH_URL=http://127.0.0.1:9/", "PREFLIGHT_INTERVAL_SECONDS=2"})
	if err != nil || env.TimeoutSeconds != 2 || env.Unit != "svc.service" {
		t.Errorf("ConfigFromEnv: %+v, %v; want the derived timeout 2 and unit svc.service", env, err)
	}
}

// A capture directory removed under a running recorder takes its lock file
// with it: the next tick takes the lock again, so a second recorder is
// still refused.
func TestRelockAfterDirectoryRemoved(t *testing.T) {
	r := newTestRecorder(t, nil)
	if err := os.RemoveAll(r.cfg.CaptureDir); err != nil {
		t.Fatal(err)
	}
	r.tick(t.Context(), time.Now())
	<-r.checkDone
	_, err := New(r.cfg, Options{Logger: zerolog.Nop(), NoCgroup: true})
	var le *capture.LockedError
	if !errors.As(err, &le) {
		t.Fatalf("a second recorder after the directory was removed: %v, want refused", err)
	}
}
