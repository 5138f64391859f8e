package recorder

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/preflight-rec/preflight/cgroup"
	"github.com/preflight-rec/preflight/recorder/capture"
)

// TestUnitValidation: PREFLIGHT_UNIT must be a unit name systemd could
// have; anything else (a path, "..", blanks) is a configuration error
// naming the variable and the value.
func TestUnitValidation(t *testing.T) {
	base := []string{"PREFLIGHT_SERVICE=redis", "PREFLIGHT_HEALTH_URL=tcp://127.0.0.1:6379"}
	for _, u := range []string{"..", ".", "/etc/passwd", "a/b.service", "  ", " redis", "redis\n", "@.service", strings.Repeat("a", 256)} {
		_, err := ConfigFromEnv(append(base, "PREFLIGHT_UNIT="+u))
		if err == nil || !strings.Contains(err.Error(), "PREFLIGHT_UNIT") {
			t.Errorf("PREFLIGHT_UNIT=%q: error %v, want one naming PREFLIGHT_UNIT", u, err)
		}
	}
	for _, u := range []string{"redis", "redis.service", "redis-server.service", "preflight@dead-drop.service", `system-x\x2dy.slice`} {
		cfg, err := ConfigFromEnv(append(base, "PREFLIGHT_UNIT="+u))
		if err != nil || cfg.Unit != u {
			t.Errorf("PREFLIGHT_UNIT=%q: unit %q, error %v", u, cfg.Unit, err)
		}
	}
	cfg, err := ConfigFromEnv(base)
	if err != nil || cfg.Unit != "redis.service" {
		t.Errorf("no PREFLIGHT_UNIT: unit %q, error %v; want redis.service", cfg.Unit, err)
	}
}

// states builds a unit's history: each state one millisecond after the
// previous, from t0.
func states(t0 time.Time, ss ...cgroup.UnitState) []cgroup.UnitState {
	for i := range ss {
		ss[i].At = t0.Add(time.Duration(i+1) * time.Millisecond)
	}
	return ss
}

func intp(v int) *int { return &v }

// TestWordFor: systemd's word on a trigger is the last state it reported
// before the unit came up again; the restarted unit is never its word.
func TestWordFor(t *testing.T) {
	t0 := time.Date(2026, 11, 26, 3, 12, 4, 0, time.UTC)
	h := states(t0,
		cgroup.UnitState{ActiveState: "active", SubState: "running", MainPID: intp(100), NRestarts: intp(0)},
		cgroup.UnitState{ActiveState: "activating", SubState: "auto-restart", Result: "oom-kill", MainPID: intp(0), NRestarts: intp(0), ExecMainCode: "killed", ExecMainStatus: intp(9)},
		cgroup.UnitState{ActiveState: "activating", SubState: "auto-restart", Result: "oom-kill", Job: "restart", JobID: 7, NRestarts: intp(0)},
		// systemd 252: the start job queued, Result reset, then dead, then start-pre.
		cgroup.UnitState{ActiveState: "activating", SubState: "auto-restart", Result: "oom-kill", Job: "start", JobID: 8, NRestarts: intp(1)},
		cgroup.UnitState{ActiveState: "activating", SubState: "auto-restart", Result: "success", Job: "start", JobID: 8, NRestarts: intp(1)},
		cgroup.UnitState{ActiveState: "inactive", SubState: "dead", Result: "success", Job: "start", JobID: 8, NRestarts: intp(1)},
		cgroup.UnitState{ActiveState: "activating", SubState: "start", Result: "success", Job: "start", JobID: 8, NRestarts: intp(1)},
		cgroup.UnitState{ActiveState: "active", SubState: "running", Result: "success", MainPID: intp(200), NRestarts: intp(1)},
	)
	trig := t0.Add(1500 * time.Microsecond) // between the first two states
	w, ok, final := wordFor(h, trig, trig.Add(time.Second))
	if !ok || !final || w.Result != "oom-kill" || w.Job != "restart" || *w.NRestarts != 0 {
		t.Errorf("word %+v ok %v final %v: want the auto-restart state with the restart job, final", w, ok, final)
	}
	// Only the state at the trigger yet: a word, not final until wordSettle.
	w, ok, final = wordFor(h[:1], trig, trig.Add(time.Second))
	if !ok || final || w.SubState != "running" {
		t.Errorf("word %+v ok %v final %v: want the running state, not final", w, ok, final)
	}
	if _, _, final = wordFor(h[:1], trig, trig.Add(wordSettle)); !final {
		t.Error("a word is final after wordSettle")
	}
	if _, ok, _ = wordFor(nil, trig, trig); ok {
		t.Error("no history, no word")
	}
}

// followed returns a test recorder that follows a unit (as if over D-Bus)
// which is active and running, and has had one healthy check.
func followed(t *testing.T) *Recorder {
	r := newTestRecorder(t, func(c *Config) { c.FailureThreshold = 1 })
	r.unit.on, r.unit.name = true, "svc.service"
	r.onUnitState(cgroup.UnitState{At: time.Now(), ActiveState: "active", SubState: "running", Result: "success", MainPID: intp(100)})
	r.samples.push(r.takeSample(time.Now(), nil))
	r.onCheck(check(true, ""))
	return r
}

func exitTrigger(gone ...int) trigger {
	return trigger{kind: capture.TriggerExit, at: time.Now(), detail: "cgroup emptied", ev: &cgroup.Event{Kind: cgroup.KindExit, Gone: gone}}
}

// captureCount counts the service's captures: by the contract, the *.json
// files directly in $DIR/SERVICE.
func captureCount(t *testing.T, r *Recorder) int {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(r.cfg.CaptureDir, r.cfg.Service, "*"+capture.Ext))
	if err != nil {
		t.Fatal(err)
	}
	return len(files)
}

// TestRequestedRestartIsNoFailure: systemctl restart: the processes end
// under a restart job that ends in success: no capture, health failures
// meanwhile do not count, and recording resumes with a fresh ring.
func TestRequestedRestartIsNoFailure(t *testing.T) {
	r := followed(t)
	r.onUnitState(cgroup.UnitState{At: time.Now(), ActiveState: "deactivating", SubState: "stop-sigterm", Result: "success", Job: "restart", JobID: 9, MainPID: intp(100)})
	r.onTrigger(exitTrigger(100))
	r.onCheck(check(false, "connection refused"))
	r.onUnitState(cgroup.UnitState{At: time.Now(), ActiveState: "activating", SubState: "start", Result: "success", Job: "restart", JobID: 9})
	r.decideHeld(time.Now().Add(time.Minute)) // however long it waited
	r.onUnitState(cgroup.UnitState{At: time.Now(), ActiveState: "active", SubState: "running", Result: "success", MainPID: intp(101)})
	if n := captureCount(t, r); n != 0 {
		t.Fatalf("%d captures, want none for a requested restart", n)
	}
	if r.unhealthy || r.healthyOnce || len(r.samples.snapshot()) != 0 || r.quiet() {
		t.Errorf("after the restart: unhealthy %v healthyOnce %v samples %d quiet %v; want a fresh start",
			r.unhealthy, r.healthyOnce, len(r.samples.snapshot()), r.quiet())
	}
}

// TestRequestedStopIsStopped: systemctl stop: no capture, the unit is
// stopped until it runs again.
func TestRequestedStopIsStopped(t *testing.T) {
	r := followed(t)
	r.onUnitState(cgroup.UnitState{At: time.Now(), ActiveState: "deactivating", SubState: "stop-sigterm", Result: "success", Job: "stop", JobID: 3, MainPID: intp(100)})
	r.onTrigger(exitTrigger(100))
	r.onUnitState(cgroup.UnitState{At: time.Now(), ActiveState: "inactive", SubState: "dead", Result: "success"})
	r.onCheck(check(false, "connection refused"))
	if n := captureCount(t, r); n != 0 || !r.unit.stopped || r.unhealthy {
		t.Fatalf("%d captures, stopped %v, unhealthy %v; want none, stopped, not unhealthy", n, r.unit.stopped, r.unhealthy)
	}
	r.onUnitState(cgroup.UnitState{At: time.Now(), ActiveState: "activating", SubState: "start", Result: "success", Job: "start", JobID: 4})
	if r.unit.stopped {
		t.Error("still stopped after the unit started again")
	}
}

// TestStopTimeoutIsFailure: a requested stop that ends in SIGKILL after
// its timeout is a failure, recorded with the exit's own sample.
func TestStopTimeoutIsFailure(t *testing.T) {
	r := followed(t)
	r.onUnitState(cgroup.UnitState{At: time.Now(), ActiveState: "deactivating", SubState: "stop-sigterm", Result: "success", Job: "stop", JobID: 3, MainPID: intp(100)})
	tr := exitTrigger(100)
	r.onTrigger(tr)
	r.onUnitState(cgroup.UnitState{At: time.Now(), ActiveState: "deactivating", SubState: "stop-sigkill", Result: "timeout", Job: "stop", JobID: 3})
	r.onUnitState(cgroup.UnitState{At: time.Now(), ActiveState: "failed", SubState: "failed", Result: "timeout"})
	_, c := readOnly(t, r)
	if c.Triggers[0].Kind != capture.TriggerExit || !c.Triggers[0].At.Equal(tr.at.UTC()) {
		t.Errorf("triggers %+v, want the exit at %v", c.Triggers, tr.at)
	}
	if w := c.Triggers[0].Systemd; w == nil || w.Result != "timeout" || w.At == nil {
		t.Errorf("systemd's word %+v, want Result=timeout with its time", w)
	}
}

// TestKillIsRecordedWithSystemdsWord: an exit systemd did not ask for is
// recorded as soon as systemd reports the unit down, with its result.
func TestKillIsRecordedWithSystemdsWord(t *testing.T) {
	r := followed(t)
	r.onTrigger(exitTrigger(100))
	if n := captureCount(t, r); n != 0 {
		t.Fatalf("%d captures before systemd's word", n)
	}
	r.onUnitState(cgroup.UnitState{At: time.Now(), ActiveState: "activating", SubState: "auto-restart", Result: "signal",
		ExecMainCode: "killed", ExecMainStatus: intp(9), MainPID: intp(0), NRestarts: intp(0)})
	_, c := readOnly(t, r)
	if w := c.Triggers[0].Systemd; w == nil || w.Result != "signal" || *w.ExecMainStatus != 9 || c.Systemd == nil {
		t.Fatalf("systemd's word %+v (capture's %+v), want Result=signal, status 9", w, c.Systemd)
	}
	r.onUnitState(cgroup.UnitState{At: time.Now(), ActiveState: "active", SubState: "running", Result: "success", MainPID: intp(101), NRestarts: intp(1)})
	_, c = readOnly(t, r)
	if w := c.Triggers[0].Systemd; w.Result != "signal" || *w.NRestarts != 0 {
		t.Errorf("after the restart the word became %+v: the restarted unit is not this failure's", w)
	}
}

// TestExitWithoutSystemdsReaction: processes replaced while systemd sees
// nothing are still recorded, after holdMax.
func TestExitWithoutSystemdsReaction(t *testing.T) {
	r := followed(t)
	tr := exitTrigger(100)
	r.onTrigger(tr)
	r.decideHeld(tr.at.Add(holdMax / 2))
	if n := captureCount(t, r); n != 0 {
		t.Fatalf("%d captures before holdMax", n)
	}
	r.decideHeld(tr.at.Add(holdMax))
	if n := captureCount(t, r); n != 1 {
		t.Fatalf("%d captures after holdMax, want 1", n)
	}
}

// TestControlProcessExitIsNotTheService: ExecStartPre= ending (its PID
// systemd's ControlPID) is not the service dying.
func TestControlProcessExitIsNotTheService(t *testing.T) {
	r := followed(t)
	r.onUnitState(cgroup.UnitState{At: time.Now(), ActiveState: "reloading", SubState: "reload", Result: "success", MainPID: intp(100), ControlPID: intp(150)})
	r.onTrigger(exitTrigger(150, 151)) // sh -c and its child
	r.onUnitState(cgroup.UnitState{At: time.Now(), ActiveState: "active", SubState: "running", Result: "success", MainPID: intp(100), ControlPID: intp(0)})
	r.decideHeld(time.Now().Add(time.Minute))
	if n := captureCount(t, r); n != 0 {
		t.Fatalf("%d captures for a control process", n)
	}
	r.onTrigger(exitTrigger(100, 150)) // the main process among them: the service
	r.decideHeld(time.Now().Add(time.Minute))
	if n := captureCount(t, r); n != 1 {
		t.Fatalf("%d captures for the main process's exit, want 1", n)
	}
}

// TestRequestedJobThatNeverEnds: exits held by a requested stop are
// recorded once it has run for heldMax.
func TestRequestedJobThatNeverEnds(t *testing.T) {
	r := followed(t)
	r.onUnitState(cgroup.UnitState{At: time.Now(), ActiveState: "deactivating", SubState: "stop-sigterm", Result: "success", Job: "stop", JobID: 3, MainPID: intp(100)})
	tr := exitTrigger(100)
	r.onTrigger(tr)
	r.checkHeld(tr.at.Add(heldMax / 2))
	if n := captureCount(t, r); n != 0 {
		t.Fatalf("%d captures while the stop runs", n)
	}
	r.checkHeld(tr.at.Add(heldMax))
	if n := captureCount(t, r); n != 1 {
		t.Fatalf("%d captures after heldMax, want 1", n)
	}
}

// TestRequestedReloadKeepsTheRing: a reload the service stays up through
// is no failure and keeps the ring.
func TestRequestedReloadKeepsTheRing(t *testing.T) {
	r := followed(t)
	n := len(r.samples.snapshot())
	r.onUnitState(cgroup.UnitState{At: time.Now(), ActiveState: "reloading", SubState: "reload", Result: "success", Job: "reload", JobID: 5, MainPID: intp(100), ControlPID: intp(150)})
	r.onUnitState(cgroup.UnitState{At: time.Now(), ActiveState: "active", SubState: "running", Result: "success", MainPID: intp(100), ControlPID: intp(0)})
	if r.quiet() || !r.healthyOnce || len(r.samples.snapshot()) != n || captureCount(t, r) != 0 {
		t.Errorf("after a reload: quiet %v healthyOnce %v samples %d (want %d) captures %d",
			r.quiet(), r.healthyOnce, len(r.samples.snapshot()), n, captureCount(t, r))
	}
}

// TestWordIsTheTriggersOnly: what systemd reports long after a trigger
// (a stop a minute later) is not the trigger's word.
func TestWordIsTheTriggersOnly(t *testing.T) {
	t0 := time.Date(2026, 11, 26, 3, 12, 4, 0, time.UTC)
	h := []cgroup.UnitState{
		{At: t0, ActiveState: "active", SubState: "running", Result: "success"},
		{At: t0.Add(time.Minute), ActiveState: "deactivating", SubState: "stop-sigterm", Result: "success", Job: "stop", JobID: 3},
	}
	w, ok, final := wordFor(h, t0.Add(time.Second), t0.Add(2*time.Minute))
	if !ok || !final || w.SubState != "running" {
		t.Errorf("word %+v ok %v final %v: want the running state at the trigger, final", w, ok, final)
	}
}

// TestOOMDuringRequestedRestart: an OOM kill during a requested restart is
// recorded; the exits of the restart stay held and are dropped when it
// ends in success.
func TestOOMDuringRequestedRestart(t *testing.T) {
	r := followed(t)
	r.onUnitState(cgroup.UnitState{At: time.Now(), ActiveState: "deactivating", SubState: "stop-sigterm", Result: "success", Job: "restart", JobID: 9, MainPID: intp(100)})
	r.onTrigger(exitTrigger(100))
	r.onTrigger(trigger{kind: capture.TriggerOOM, at: time.Now(), detail: "oom_kill 0 → 1", ev: &cgroup.Event{Kind: cgroup.KindOOM}})
	r.onUnitState(cgroup.UnitState{At: time.Now(), ActiveState: "active", SubState: "running", Result: "success", MainPID: intp(101)})
	_, c := readOnly(t, r)
	if kinds(c)[0] != capture.TriggerOOM || len(c.Triggers) != 1 {
		t.Errorf("triggers %v, want the oom alone", kinds(c))
	}
}

// TestRestartSeenAsStartJob: systemctl restart as the slow e2e-v2 guest
// saw it (packaging/e2ev2, restart #1): the cgroup emptied before any
// signal, and by the time the Follower asked, the restart job was the
// start job it becomes once its stop half is done. The unit stopping
// under that job with Result=success is the restart: no capture, and the
// health failure meanwhile does not count.
func TestRestartSeenAsStartJob(t *testing.T) {
	r := followed(t)
	r.onTrigger(exitTrigger(513))
	r.onCheck(check(false, "connection refused")) // before systemd's word: held with the exit
	for _, st := range []cgroup.UnitState{
		{ActiveState: "active", SubState: "running", Result: "success", Job: "start", JobID: 21, MainPID: intp(513)},
		{ActiveState: "deactivating", SubState: "stop-sigterm", Result: "success", Job: "start", JobID: 21, MainPID: intp(513)},
	} {
		st.At = time.Now()
		r.onUnitState(st)
	}
	r.onCheck(check(false, "connection refused"))
	for _, st := range []cgroup.UnitState{
		{ActiveState: "deactivating", SubState: "stop-sigterm", Result: "success", Job: "start", JobID: 21, MainPID: intp(0)},
		{ActiveState: "inactive", SubState: "dead", Result: "success", Job: "start", JobID: 21, MainPID: intp(0)},
		{ActiveState: "active", SubState: "running", Result: "success", Job: "start", JobID: 21, MainPID: intp(617)},
	} {
		st.At = time.Now()
		r.onUnitState(st)
	}
	r.decideHeld(time.Now().Add(time.Minute)) // however long it waited
	if n := captureCount(t, r); n != 0 || !r.quiet() {
		t.Fatalf("%d captures, quiet %v while the job runs; want none, quiet", n, r.quiet())
	}
	r.onUnitState(cgroup.UnitState{At: time.Now(), ActiveState: "active", SubState: "running", Result: "success", MainPID: intp(617)})
	if n := captureCount(t, r); n != 0 || r.quiet() || r.unhealthy || len(r.samples.snapshot()) != 0 {
		t.Errorf("after the restart: %d captures, quiet %v, unhealthy %v, %d samples; want none, a fresh start",
			n, r.quiet(), r.unhealthy, len(r.samples.snapshot()))
	}
}

// TestStoppingOnRequest: which states say systemd stops the unit for a
// job whose type no longer says so, and which do not.
func TestStoppingOnRequest(t *testing.T) {
	up := cgroup.UnitState{ActiveState: "active", SubState: "running", Result: "success", Job: "start", JobID: 4}
	for _, c := range []struct {
		name     string
		prev, st cgroup.UnitState
		want     bool
	}{
		{"restart past its stop half", up, cgroup.UnitState{ActiveState: "deactivating", SubState: "stop-sigterm", Result: "success", Job: "start", JobID: 4}, true},
		{"ExecStop= running", up, cgroup.UnitState{ActiveState: "deactivating", SubState: "stop", Result: "success", Job: "unknown", JobID: 4}, true},
		{"stop states coalesced away", up, cgroup.UnitState{ActiveState: "inactive", SubState: "dead", Result: "success", Job: "start", JobID: 4}, true},
		{"clean exit: no job", up, cgroup.UnitState{ActiveState: "deactivating", SubState: "stop-sigterm", Result: "success"}, false},
		{"crash: Result says so", up, cgroup.UnitState{ActiveState: "deactivating", SubState: "stop-sigterm", Result: "signal", Job: "start", JobID: 4}, false},
		{"stop timed out", up, cgroup.UnitState{ActiveState: "deactivating", SubState: "stop-sigkill", Result: "timeout", Job: "start", JobID: 4}, false},
		{"leftover processes after a crash", up, cgroup.UnitState{ActiveState: "deactivating", SubState: "final-sigterm", Result: "success", Job: "start", JobID: 4}, false},
		{"dead, then a start job", cgroup.UnitState{ActiveState: "active", SubState: "running", Result: "success"}, cgroup.UnitState{ActiveState: "inactive", SubState: "dead", Result: "success", Job: "start", JobID: 5}, false},
		{"stopping during a start", cgroup.UnitState{ActiveState: "activating", SubState: "start-post", Result: "success", Job: "start", JobID: 4}, cgroup.UnitState{ActiveState: "deactivating", SubState: "stop-sigterm", Result: "success", Job: "start", JobID: 4}, false},
	} {
		if got := stoppingOnRequest(c.prev, c.st); got != c.want {
			t.Errorf("%s: stoppingOnRequest %v, want %v", c.name, got, c.want)
		}
	}
}

// TestOOMOnSystemdsWord: the cgroup removed before the watcher read its
// OOM counter after the kill (e2e-v2, OOMPolicy=stop): systemd's word
// Result=oom-kill still records an oom trigger, with the sample of the
// exit, as read (its read_at, its oom_kills as they were).
func TestOOMOnSystemdsWord(t *testing.T) {
	r := followed(t)
	readAt := time.Now().Add(-70 * time.Millisecond)
	zero, peak := uint64(0), uint64(64<<20)
	tr := exitTrigger(1313, 1371)
	tr.detail = "cgroup removed (last pids 1313,1371)"
	tr.ev.Stats, tr.ev.StatsAt = &cgroup.Stats{OOMKills: &zero, MemoryPeakBytes: &peak, MemoryBytes: &peak}, readAt
	// The exit's sample as scope.atTrigger makes it of the event's evidence.
	at := readAt.UTC()
	es := r.triggerSample(tr)
	es.Service = &capture.Service{Cgroup: "/system.slice/svc.service", OOMKills: &zero, MemoryPeakBytes: &peak, MemoryBytes: &peak, ReadAt: &at}
	if !r.holdExit(tr, es) {
		t.Fatal("the exit was not held for systemd's word")
	}
	for _, st := range []cgroup.UnitState{
		{ActiveState: "active", SubState: "running", Result: "oom-kill", MainPID: intp(1313)},
		{ActiveState: "deactivating", SubState: "stop-sigterm", Result: "oom-kill", ExecMainCode: "killed", ExecMainStatus: intp(15), MainPID: intp(0)},
	} {
		st.At = time.Now()
		r.onUnitState(st)
	}
	_, c := readOnly(t, r)
	if got := kinds(c); len(got) != 2 || got[0] != capture.TriggerOOM || got[1] != capture.TriggerExit {
		t.Fatalf("triggers %v, want an oom on systemd's word, then its exit", got)
	}
	oom := c.Triggers[0]
	s := c.Samples[len(c.Samples)-2]
	if oom.Detail != oomDetail || !oom.At.Equal(tr.at.UTC()) || oom.Systemd == nil || oom.Systemd.Result != "oom-kill" {
		t.Errorf("oom trigger %+v: want detail %q at the exit's time with systemd's oom-kill", oom, oomDetail)
	}
	if s.Trigger != capture.TriggerOOM || s.Service == nil || s.Service.ReadAt == nil || !s.Service.ReadAt.Equal(readAt.UTC()) ||
		s.Service.OOMKills == nil || *s.Service.OOMKills != 0 || *s.Service.MemoryPeakBytes != peak {
		t.Errorf("oom trigger's sample %+v: want the exit's evidence as read (oom_kills 0, read_at %v)", s.Service, readAt)
	}
	// systemd reporting more adds nothing.
	r.onUnitState(cgroup.UnitState{At: time.Now(), ActiveState: "active", SubState: "running", Result: "success", MainPID: intp(1400)})
	if _, c = readOnly(t, r); len(c.Triggers) != 2 {
		t.Errorf("triggers %v after systemd's next report, want 2", kinds(c))
	}
}

// TestOOMSeenIsNotDoubled: where the watcher saw the kill, systemd's
// Result=oom-kill adds no second oom trigger.
func TestOOMSeenIsNotDoubled(t *testing.T) {
	r := followed(t)
	r.onTrigger(exitTrigger(100))
	r.onTrigger(trigger{kind: capture.TriggerOOM, at: time.Now(), detail: "oom_kill 0 → 1", ev: &cgroup.Event{Kind: cgroup.KindOOM}})
	r.onUnitState(cgroup.UnitState{At: time.Now(), ActiveState: "deactivating", SubState: "stop-sigterm", Result: "oom-kill"})
	_, c := readOnly(t, r)
	n := 0
	for _, tr := range c.Triggers {
		if tr.Kind == capture.TriggerOOM {
			n++
			if tr.Detail == oomDetail {
				t.Errorf("an oom trigger on systemd's word next to the watcher's")
			}
		}
	}
	if n != 1 {
		t.Errorf("triggers %v: want one oom", kinds(c))
	}
}

// TestHealthHeldWithExit: a health failure while an exit waits for
// systemd's word waits with it, and is recorded with it when systemd
// reports the crash.
func TestHealthHeldWithExit(t *testing.T) {
	r := followed(t)
	r.onTrigger(exitTrigger(100))
	r.onCheck(check(false, "connection refused"))
	if n := captureCount(t, r); n != 0 {
		t.Fatalf("%d captures before systemd's word", n)
	}
	r.onUnitState(cgroup.UnitState{At: time.Now(), ActiveState: "activating", SubState: "auto-restart", Result: "signal", MainPID: intp(0)})
	_, c := readOnly(t, r)
	if got := kinds(c); len(got) != 2 || got[0] != capture.TriggerExit || got[1] != capture.TriggerHealth {
		t.Errorf("triggers %v, want the exit, then the health failure", got)
	}
}

// TestNoOOMOnSystemdsWordFromHealth: systemd's Result=oom-kill on a
// health trigger alone records no oom: a health check's read is not the
// watcher's evidence, and the watcher's own oom may still come.
func TestNoOOMOnSystemdsWordFromHealth(t *testing.T) {
	r := followed(t)
	r.onCheck(check(false, "connection refused"))
	r.onUnitState(cgroup.UnitState{At: time.Now(), ActiveState: "deactivating", SubState: "stop-sigterm", Result: "oom-kill"})
	r.onUnitState(cgroup.UnitState{At: time.Now(), ActiveState: "activating", SubState: "start", Result: "success", Job: "start", JobID: 31})
	_, c := readOnly(t, r)
	if got := kinds(c); len(got) != 1 || got[0] != capture.TriggerHealth {
		t.Errorf("triggers %v, want the health failure alone", got)
	}
}

// TestEventsBeforeCheck: an exit waiting on the channel when a failed
// check's result is taken goes first (select would pick at random).
func TestEventsBeforeCheck(t *testing.T) {
	r := followed(t)
	events := make(chan trigger, 1)
	events <- exitTrigger(100)
	r.takeEvents(events)
	r.onCheck(check(false, "connection refused"))
	r.onUnitState(cgroup.UnitState{At: time.Now(), ActiveState: "activating", SubState: "auto-restart", Result: "signal", MainPID: intp(0)})
	_, c := readOnly(t, r)
	if got := kinds(c); len(got) != 2 || got[0] != capture.TriggerExit {
		t.Errorf("triggers %v, want the exit first", got)
	}
	if len(events) != 0 {
		t.Error("the event was not taken")
	}
}

// TestWordAfterTheIncident: systemd's word that comes after a healthy
// check ended the incident (its signals lag under load) still reaches the
// trigger it is about, and the closed capture is rewritten with it; the
// restarted unit's state does not, and the incident is let go once its
// words are final.
func TestWordAfterTheIncident(t *testing.T) {
	r := followed(t)
	r.onTrigger(trigger{kind: capture.TriggerOOM, at: time.Now(), detail: "oom_kill 0 → 1", ev: &cgroup.Event{Kind: cgroup.KindOOM}})
	r.onCheck(check(true, ""))
	if r.inc != nil {
		t.Fatal("the incident is still open after a healthy check")
	}
	_, c := readOnly(t, r)
	if w := c.Triggers[0].Systemd; w == nil || w.Result != "success" {
		t.Fatalf("the oom trigger's word %+v before systemd reported, want the running unit's", w)
	}
	r.onUnitState(cgroup.UnitState{At: time.Now(), ActiveState: "activating", SubState: "auto-restart", Result: "signal",
		ExecMainCode: "killed", ExecMainStatus: intp(9), MainPID: intp(0), NRestarts: intp(0)})
	r.onUnitState(cgroup.UnitState{At: time.Now(), ActiveState: "active", SubState: "running", Result: "success", MainPID: intp(101), NRestarts: intp(1)})
	_, c = readOnly(t, r)
	if w := c.Triggers[0].Systemd; w == nil || w.Result != "signal" || w.ExecMainStatus == nil || *w.ExecMainStatus != 9 || c.Systemd == nil || c.Systemd.Result != "signal" {
		t.Errorf("the oom trigger's word %+v (capture's %+v), want Result=signal, status 9", w, c.Systemd)
	}
	if len(r.settling) != 0 {
		t.Errorf("%d closed incidents still wait for systemd's word, want none once it is final", len(r.settling))
	}
}

// TestOOMOnSystemdsWordAfterClose: systemd's Result=oom-kill comes after
// a healthy check closed the incident (its signals lag the kill): the
// closed capture gets its oom trigger on systemd's word all the same,
// just before the exit it ended.
func TestOOMOnSystemdsWordAfterClose(t *testing.T) {
	j, _ := kernelJournal(t, nil, 1)
	r, tr := kernelRecorder(t, j, true)
	tr.at = time.Now()
	if !r.holdExit(tr, exitSample(r, tr)) {
		t.Fatal("the exit was not held for systemd's word")
	}
	r.decideHeld(tr.at.Add(holdMax)) // systemd said nothing in time
	wordsUntil(t, r)
	r.healthyOnce = true
	c := check(true, "")
	c.At = tr.at.Add(time.Second)
	r.onCheck(c)
	if r.inc != nil || len(r.settling) != 1 {
		t.Fatalf("open incident %v, %d settling: want the incident closed, its word settling", r.inc != nil, len(r.settling))
	}
	r.onUnitState(cgroup.UnitState{At: time.Now(), ActiveState: "deactivating", SubState: "stop-sigterm", Result: "oom-kill", ExecMainCode: "killed", ExecMainStatus: intp(9), MainPID: intp(0)})
	_, cp := readOnly(t, r)
	if got := kinds(cp); !slices.Equal(got, []string{"oom", "exit"}) {
		t.Fatalf("triggers %v, want an oom on systemd's word, then its exit", got)
	}
	oom, s := cp.Triggers[0], cp.Samples[len(cp.Samples)-2]
	if oom.Detail != oomDetail || !oom.At.Equal(cp.Triggers[1].At) || oom.Systemd == nil || oom.Systemd.Result != "oom-kill" {
		t.Errorf("oom trigger %+v: want systemd's word at the exit's time", oom)
	}
	if s.Trigger != capture.TriggerOOM || cp.Samples[len(cp.Samples)-1].Trigger != capture.TriggerExit {
		t.Errorf("trigger samples %q, %q: want oom, exit", s.Trigger, cp.Samples[len(cp.Samples)-1].Trigger)
	}
}

// TestRestartHealthBeforeItsExit: under systemctl restart, a health check
// refused after the watcher found the cgroup empty but before its exit
// event reached the recorder (seen in the pure-v2 guest) is held for
// systemd's word, which then says the stop was requested: no capture.
func TestRestartHealthBeforeItsExit(t *testing.T) {
	r := followed(t)
	empty := false
	r.testCgroupEmpty = func() bool { return empty }
	empty = true // the watcher's look: the cgroup emptied; its event still on its way
	r.onCheck(check(false, "connection refused"))
	if r.inc != nil {
		t.Fatal("a health failure while the cgroup is empty was recorded before systemd's word")
	}
	r.onTrigger(exitTrigger(100))
	r.onUnitState(cgroup.UnitState{At: time.Now(), ActiveState: "deactivating", SubState: "stop-sigterm", Result: "success", Job: "start", JobID: 9, MainPID: intp(0)})
	r.onUnitState(cgroup.UnitState{At: time.Now(), ActiveState: "inactive", SubState: "dead", Result: "success", Job: "start", JobID: 9})
	r.onUnitState(cgroup.UnitState{At: time.Now(), ActiveState: "active", SubState: "running", Result: "success", MainPID: intp(200)})
	if n := captureCount(t, r); n != 0 || r.inc != nil {
		t.Errorf("%d captures (incident open: %t) after a requested restart, want none", n, r.inc != nil)
	}
}

// TestCrashHealthBeforeItsExit: the same order for a crash: the held
// health trigger is recorded once systemd says the unit went down on its
// own, with the exit.
func TestCrashHealthBeforeItsExit(t *testing.T) {
	r := followed(t)
	r.testCgroupEmpty = func() bool { return true }
	r.onCheck(check(false, "connection refused"))
	r.onTrigger(exitTrigger(100))
	r.onUnitState(cgroup.UnitState{At: time.Now(), ActiveState: "activating", SubState: "auto-restart", Result: "signal", MainPID: intp(0)})
	_, c := readOnly(t, r)
	if got := kinds(c); len(got) != 2 || got[0] != capture.TriggerHealth || got[1] != capture.TriggerExit {
		t.Errorf("triggers %v, want [health exit]", got)
	}
}

// TestRequestedJobsExitAfterSystemdsWord: the watcher's exit event of a
// requested stop or restart may reach the recorder after systemd's word
// that the job ended (two channels, either first): no capture. A restart
// whose new service fails at once (systemd says it is down again) is a
// failure, whichever processes the exit names. A stopped unit restarted
// on request is no longer stopped.
func TestRequestedJobsExitAfterSystemdsWord(t *testing.T) {
	r := followed(t)
	r.onUnitState(cgroup.UnitState{At: time.Now(), ActiveState: "deactivating", SubState: "stop-sigterm", Result: "success", Job: "stop", JobID: 3, MainPID: intp(100)})
	r.onUnitState(cgroup.UnitState{At: time.Now(), ActiveState: "inactive", SubState: "dead", Result: "success"})
	r.onTrigger(exitTrigger(100))
	if n := captureCount(t, r); n != 0 || !r.unit.stopped {
		t.Fatalf("stop: %d captures, stopped %v; want none, stopped", n, r.unit.stopped)
	}
	restart := func(r *Recorder) {
		r.onUnitState(cgroup.UnitState{At: time.Now(), ActiveState: "deactivating", SubState: "stop-sigterm", Result: "success", Job: "restart", JobID: 9, MainPID: intp(100)})
		r.onUnitState(cgroup.UnitState{At: time.Now(), ActiveState: "activating", SubState: "start", Result: "success", Job: "restart", JobID: 9})
		r.onUnitState(cgroup.UnitState{At: time.Now(), ActiveState: "active", SubState: "running", Result: "success", MainPID: intp(101)})
	}
	restart(r)
	if r.unit.stopped {
		t.Fatal("a stopped unit restarted on request is still stopped")
	}

	r = followed(t)
	restart(r)
	r.onTrigger(exitTrigger(100, 102)) // the old main process and a child of it
	r.decideHeld(time.Now().Add(holdMax))
	if n := captureCount(t, r); n != 0 {
		t.Fatalf("restart: %d captures for the old processes' exit, want none", n)
	}

	r = followed(t)
	restart(r)
	r.onTrigger(exitTrigger(100, 102)) // the only event: the new main process never seen
	r.onUnitState(cgroup.UnitState{At: time.Now(), ActiveState: "failed", SubState: "failed", Result: "exit-code"})
	if n := captureCount(t, r); n != 1 {
		t.Fatalf("restart into a failure: %d captures, want 1", n)
	}
}

// mainExitTrigger is the watcher's exit of the main process main, others
// (left) living on.
func mainExitTrigger(main int, left ...int) trigger {
	pids := strings.Trim(strings.ReplaceAll(fmt.Sprint(left), " ", ","), "[]")
	return trigger{kind: capture.TriggerExit, at: time.Now(), detail: fmt.Sprintf("main process %d ended (left pids %s)", main, pids),
		ev: &cgroup.Event{Kind: cgroup.KindExit, Main: main, Gone: []int{main}, PIDs: left}}
}

// TestMainExitBeforeHealth: a forking daemon's main process killed while
// its workers and systemd's ExecStop= live on for a while (PostgreSQL's
// postmaster; seen in CI): its exit is the first trigger, named, and the
// health check that fails meanwhile is recorded after it, once systemd
// says the unit went down.
func TestMainExitBeforeHealth(t *testing.T) {
	r := followed(t)
	r.samples.push(capture.Sample{At: time.Now().UTC(), Service: &capture.Service{Processes: []capture.Process{{PID: 100, Name: "postgres"}, {PID: 101, Name: "postgres"}}}})
	r.onTrigger(mainExitTrigger(100, 101))
	r.onCheck(check(false, "connection refused"))
	if n := captureCount(t, r); n != 0 {
		t.Fatalf("%d captures before systemd's word", n)
	}
	r.onUnitState(cgroup.UnitState{At: time.Now(), ActiveState: "deactivating", SubState: "stop", Result: "success",
		ExecMainCode: "killed", ExecMainStatus: intp(9), MainPID: intp(0), ControlPID: intp(102)})
	_, c := readOnly(t, r)
	if got := kinds(c); len(got) != 2 || got[0] != capture.TriggerExit || got[1] != capture.TriggerHealth {
		t.Fatalf("triggers %v, want the main process's exit, then the health failure", got)
	}
	if d, want := c.Triggers[0].Detail, "main process 100 (postgres) ended"; !strings.HasPrefix(d, want) {
		t.Errorf("detail %q, want it to start %q", d, want)
	}
	if w := c.Triggers[0].Systemd; w == nil || w.ExecMainCode != "killed" {
		t.Errorf("systemd's word %+v, want the main process killed", w)
	}
}

// asking has r ask through the test: asks counts the asks, answer gives
// systemd's answer.
func asking(r *Recorder) (asks *int, answer func(cgroup.UnitState, error)) {
	asks = new(int)
	r.unit.ask = func() bool { *asks++; return true }
	return asks, func(st cgroup.UnitState, err error) {
		st.At = time.Now()
		r.onAnswer(stateAnswer{st, err})
	}
}

// TestMainHandOver: the main process's end is a failure only on systemd's
// word that the unit went down or was restarted (NRestarts moved). A
// hand-over systemd names (MAINPID=) is dropped at once. Without a word
// for holdMax, systemd is asked: a hand-over it made silently (nginx's
// binary upgrade: it re-reads the PID file), or a unit that stays active
// without a main process (ExitType=cgroup, RemainAfterExit=), is dropped;
// a unit going down is recorded, as is the exit when systemd does not
// answer, or cannot be asked.
func TestMainHandOver(t *testing.T) {
	count := func(r *Recorder, want int, what string) {
		t.Helper()
		if n := captureCount(t, r); n != want || len(r.unit.held) != 0 {
			t.Fatalf("%s: %d captures, %d held; want %d, none held", what, n, len(r.unit.held), want)
		}
	}
	// askedAtHoldMax: nothing before holdMax; at holdMax, systemd asked
	// once, the trigger still held.
	askedAtHoldMax := func(r *Recorder, at time.Time, asks *int) {
		t.Helper()
		r.decideHeld(at.Add(holdMax / 2))
		if *asks != 0 || len(r.unit.held) != 1 {
			t.Fatalf("before holdMax: %d asks, %d held; want none, 1", *asks, len(r.unit.held))
		}
		r.decideHeld(at.Add(holdMax))
		r.decideHeld(at.Add(holdMax + time.Second)) // the answer awaited: no second ask
		if n := captureCount(t, r); *asks != 1 || len(r.unit.held) != 1 || n != 0 {
			t.Fatalf("at holdMax: %d asks, %d held, %d captures; want 1, 1, none", *asks, len(r.unit.held), n)
		}
	}
	up := func(main, restarts int) cgroup.UnitState {
		return cgroup.UnitState{ActiveState: "active", SubState: "running", Result: "success", MainPID: intp(main), NRestarts: intp(restarts)}
	}

	r := followed(t)
	asks, _ := asking(r)
	r.onTrigger(mainExitTrigger(100, 200))
	r.onUnitState(cgroup.UnitState{At: time.Now(), ActiveState: "active", SubState: "running", Result: "success", MainPID: intp(200)})
	count(r, 0, "a hand-over systemd names")
	if *asks != 0 {
		t.Errorf("a hand-over systemd names: %d asks", *asks)
	}

	for _, tc := range []struct {
		what   string
		answer cgroup.UnitState
		err    error
		want   int
	}{
		{"silent hand-over", up(200, 0), nil, 0},
		{"active without a main process", up(0, 0), nil, 0},
		{"restarted, the word lagging", up(300, 1), nil, 1},
		{"going down, the word lagging", cgroup.UnitState{ActiveState: "deactivating", SubState: "stop", Result: "success", MainPID: intp(0), NRestarts: intp(0)}, nil, 1},
		{"no answer", cgroup.UnitState{}, errors.New("timeout"), 1},
	} {
		r := followed(t)
		r.onUnitState(cgroup.UnitState{At: time.Now(), ActiveState: "active", SubState: "running", Result: "success", MainPID: intp(100), NRestarts: intp(0)})
		asks, answer := asking(r)
		tr := mainExitTrigger(100, 200)
		r.onTrigger(tr)
		askedAtHoldMax(r, tr.at, asks)
		answer(tc.answer, tc.err)
		count(r, tc.want, tc.what)
	}

	r = followed(t)
	r.onUnitState(cgroup.UnitState{At: time.Now(), ActiveState: "active", SubState: "running", Result: "success", MainPID: intp(100), NRestarts: intp(0)})
	r.onTrigger(mainExitTrigger(100, 101))
	r.onUnitState(cgroup.UnitState{At: time.Now(), ActiveState: "active", SubState: "running", Result: "success", MainPID: intp(200), NRestarts: intp(1)})
	count(r, 1, "restarted (NRestarts 0 → 1) under a new main process")

	r = followed(t)
	r.onTrigger(mainExitTrigger(100, 101))
	r.onUnitState(cgroup.UnitState{At: time.Now(), ActiveState: "failed", SubState: "failed", Result: "signal", MainPID: intp(0)})
	count(r, 1, "unit failed")

	// systemd's Service interface speaks before its Unit interface: the
	// main process gone while the unit still reads active, then going down.
	r = followed(t)
	r.onTrigger(mainExitTrigger(100, 101))
	r.onUnitState(cgroup.UnitState{At: time.Now(), ActiveState: "active", SubState: "running", Result: "success", MainPID: intp(0), ExecMainCode: "killed", ExecMainStatus: intp(9)})
	r.onUnitState(cgroup.UnitState{At: time.Now(), ActiveState: "deactivating", SubState: "stop", Result: "success", MainPID: intp(0), ExecMainCode: "killed", ExecMainStatus: intp(9)})
	count(r, 1, "killed, systemd's two words")

	r = followed(t) // no way to ask (r.unit.ask nil): recorded at holdMax, as any exit
	tr := mainExitTrigger(100, 101)
	r.onTrigger(tr)
	r.decideHeld(tr.at.Add(holdMax))
	count(r, 1, "cannot ask")
}

// TestReplacedHandOver: every process replaced, the cgroup never seen
// empty, is a restart only on systemd's word: nginx's binary upgrade under
// load (the old master and workers gone before the watcher looked, seen
// in CI) is a hand-over systemd does not signal; asked, it says the unit
// is up under one of the new processes, not restarted: no capture. A
// restart it says (NRestarts) is recorded.
func TestReplacedHandOver(t *testing.T) {
	replaced := func() trigger {
		return trigger{kind: capture.TriggerExit, at: time.Now(), detail: "all processes replaced (100,101 → 200,201)",
			ev: &cgroup.Event{Kind: cgroup.KindExit, Replaced: true, Gone: []int{100, 101}, PIDs: []int{200, 201}}}
	}
	for _, tc := range []struct {
		what   string
		answer cgroup.UnitState
		want   int
	}{
		{"binary upgrade", cgroup.UnitState{ActiveState: "active", SubState: "running", Result: "success", MainPID: intp(200), NRestarts: intp(0)}, 0},
		{"restart", cgroup.UnitState{ActiveState: "active", SubState: "running", Result: "success", MainPID: intp(200), NRestarts: intp(1)}, 1},
	} {
		r := followed(t)
		r.onUnitState(cgroup.UnitState{At: time.Now(), ActiveState: "active", SubState: "running", Result: "success", MainPID: intp(100), NRestarts: intp(0)})
		for i := range r.unit.hist { // systemd's words came over a second before the look
			r.unit.hist[i].At = r.unit.hist[i].At.Add(-2 * time.Second)
		}
		asks, answer := asking(r)
		tr := replaced()
		r.onTrigger(tr)
		r.decideHeld(tr.at.Add(holdMax))
		if *asks != 1 {
			t.Fatalf("%s: %d asks at holdMax, want 1", tc.what, *asks)
		}
		answer(tc.answer, nil)
		if n := captureCount(t, r); n != tc.want || len(r.unit.held) != 0 {
			t.Errorf("%s: %d captures, %d held; want %d", tc.what, n, len(r.unit.held), tc.want)
		}
	}
}

// TestHealthBehindADroppedMainExit: a health failure held behind the main
// process's end is recorded when that end turns out a hand-over.
func TestHealthBehindADroppedMainExit(t *testing.T) {
	r := followed(t)
	_, answer := asking(r)
	tr := mainExitTrigger(100, 200)
	r.onTrigger(tr)
	r.onCheck(check(false, "connection refused"))
	r.decideHeld(tr.at.Add(holdMax))
	answer(cgroup.UnitState{ActiveState: "active", SubState: "running", Result: "success", MainPID: intp(200)}, nil)
	r.decideHeld(time.Now().Add(holdMax))
	_, c := readOnly(t, r)
	if got := kinds(c); len(got) != 1 || got[0] != capture.TriggerHealth {
		t.Errorf("triggers %v, want the health failure alone", got)
	}
}

// TestMainExitThenEmptied: without systemd's word (its signals lag under
// load), the main process's end followed by the cgroup emptying is the
// service dying: both are recorded once the emptied exit has waited
// holdMax.
func TestMainExitThenEmptied(t *testing.T) {
	r := followed(t)
	asks, _ := asking(r)
	m := mainExitTrigger(100, 101)
	r.onTrigger(m)
	e := exitTrigger(101)
	e.at = m.at.Add(300 * time.Millisecond)
	r.onTrigger(e)
	r.decideHeld(e.at.Add(holdMax / 2))
	if n := captureCount(t, r); n != 0 {
		t.Fatalf("%d captures before holdMax", n)
	}
	r.decideHeld(e.at.Add(holdMax))
	if *asks != 0 {
		t.Errorf("%d asks: the cgroup's exit says enough", *asks)
	}
	_, c := readOnly(t, r)
	if got := kinds(c); len(got) != 2 || !strings.HasPrefix(c.Triggers[0].Detail, "main process 100") {
		t.Errorf("triggers %v (%q first), want the main process's exit, then the cgroup's", got, c.Triggers[0].Detail)
	}
}

// TestAnswerAfterLongCalm: a unit that has not changed for longer than
// the states are kept (histKeep) still has the state its exit is judged
// by: nginx's binary upgrade after a quiet hour, seen as the main process's
// end or as every process replaced, is a hand-over when systemd, asked,
// names one of the new processes.
func TestAnswerAfterLongCalm(t *testing.T) {
	for _, tr := range []trigger{mainExitTrigger(100, 200, 201), {kind: capture.TriggerExit, at: time.Now(),
		detail: "all processes replaced (100,101 → 200,201)", ev: &cgroup.Event{Kind: cgroup.KindExit, Replaced: true, Gone: []int{100, 101}, PIDs: []int{200, 201}}}} {
		r := followed(t)
		old := cgroup.UnitState{At: time.Now().Add(-time.Hour), ActiveState: "active", SubState: "running", Result: "success", MainPID: intp(100), NRestarts: intp(0)}
		r.unit.hist = []cgroup.UnitState{old}
		r.onUnitState(cgroup.UnitState{At: time.Now(), ActiveState: "active", SubState: "running", Result: "success", MainPID: intp(100), NRestarts: intp(0), ControlPID: intp(300)})
		if len(r.unit.hist) != 2 {
			t.Fatalf("%d states after a new one, want the old one kept", len(r.unit.hist))
		}
		asks, answer := asking(r)
		tr.at = time.Now()
		r.onTrigger(tr)
		r.decideHeld(tr.at.Add(holdMax))
		answer(cgroup.UnitState{ActiveState: "active", SubState: "running", Result: "success", MainPID: intp(200), NRestarts: intp(0)}, nil)
		if n := captureCount(t, r); *asks != 1 || n != 0 || len(r.unit.held) != 0 {
			t.Errorf("%s: %d asks, %d captures, %d held; want 1 ask, no capture", tr.detail, *asks, n, len(r.unit.held))
		}
	}
}

// TestAnswerIsNoSignal: systemd's answer, read on request, is not ordered
// with its signals: a stop job's signal that comes after it (stamped
// before, or after) still makes the stop a requested one, and the answer
// never ends that job; an answer while signals came meanwhile still
// decides the held exit.
func TestAnswerIsNoSignal(t *testing.T) {
	stop := func(at time.Time) cgroup.UnitState {
		return cgroup.UnitState{At: at, ActiveState: "deactivating", SubState: "stop-sigterm", Result: "success", Job: "stop", JobID: 7, MainPID: intp(200), NRestarts: intp(0)}
	}
	up200 := cgroup.UnitState{ActiveState: "active", SubState: "running", Result: "success", MainPID: intp(200), NRestarts: intp(0)}
	for _, signalFirst := range []bool{false, true} {
		r := followed(t)
		r.onUnitState(cgroup.UnitState{At: time.Now(), ActiveState: "active", SubState: "running", Result: "success", MainPID: intp(100), NRestarts: intp(0)})
		asking(r)
		tr := mainExitTrigger(100, 200)
		r.onTrigger(tr)
		r.decideHeld(tr.at.Add(holdMax)) // asks
		t1 := time.Now()
		a := up200
		a.At = t1.Add(time.Millisecond) // read before the job was queued, stamped after its signal
		if signalFirst {
			r.onUnitState(stop(t1))
			r.onAnswer(stateAnswer{st: a})
		} else {
			r.onAnswer(stateAnswer{st: a})
			r.onUnitState(stop(t1))
		}
		if r.unit.deliberate != "stop" {
			t.Fatalf("signal first %v: the requested stop is %q", signalFirst, r.unit.deliberate)
		}
		r.onTrigger(exitTrigger(200))
		r.onUnitState(cgroup.UnitState{At: time.Now(), ActiveState: "inactive", SubState: "dead", Result: "success", MainPID: intp(0), NRestarts: intp(0)})
		r.decideHeld(time.Now().Add(holdMax))
		if n := captureCount(t, r); n != 0 || !r.unit.stopped {
			t.Errorf("signal first %v: systemctl stop while asking: %d captures, stopped %v; want none, stopped", signalFirst, n, r.unit.stopped)
		}
	}

	r := followed(t)
	r.onUnitState(cgroup.UnitState{At: time.Now(), ActiveState: "active", SubState: "running", Result: "success", MainPID: intp(100), NRestarts: intp(0)})
	asking(r)
	tr := mainExitTrigger(100, 200)
	r.onTrigger(tr)
	r.decideHeld(tr.at.Add(holdMax))
	a := up200
	a.At = time.Now()
	sig := cgroup.UnitState{At: a.At.Add(time.Millisecond), ActiveState: "active", SubState: "running", Result: "success", MainPID: intp(100), NRestarts: intp(0), ControlPID: intp(300)}
	r.onUnitState(sig) // stamped after the answer, taken first
	r.onAnswer(stateAnswer{st: a})
	if len(r.unit.held) != 0 || captureCount(t, r) != 0 {
		t.Errorf("an answer after a later signal: %d held, %d captures; want the hand-over dropped", len(r.unit.held), captureCount(t, r))
	}
}

// TestAnswerNamesTheEndedMain: asked, systemd still names the main process
// that ended: it has not reaped it yet, and is asked again; once that has
// gone on for lagMax, the exit is recorded. A later exit is not judged by
// an earlier answer: systemd is asked again.
func TestAnswerNamesTheEndedMain(t *testing.T) {
	stale := cgroup.UnitState{ActiveState: "active", SubState: "running", Result: "success", MainPID: intp(100), NRestarts: intp(0)}
	r := followed(t)
	asks, answer := asking(r)
	tr := mainExitTrigger(100, 200)
	tr.at = time.Now().Add(-2 * holdMax)
	r.onTrigger(tr)
	r.decideHeld(time.Now())
	answer(stale, nil)
	if n := captureCount(t, r); n != 0 || len(r.unit.held) != 1 {
		t.Fatalf("systemd lagging: %d captures, %d held; want it held", n, len(r.unit.held))
	}
	r.decideHeld(time.Now())
	if *asks != 2 {
		t.Fatalf("%d asks, want a second one", *asks)
	}
	r.unit.held[0].t.at = time.Now().Add(-lagMax)
	answer(stale, nil)
	if n := captureCount(t, r); n != 1 {
		t.Fatalf("systemd lagging for lagMax: %d captures, want the exit recorded", n)
	}

	r = followed(t)
	asks, answer = asking(r)
	tr = mainExitTrigger(100, 200)
	r.onTrigger(tr)
	r.decideHeld(tr.at.Add(holdMax))
	answer(cgroup.UnitState{ActiveState: "active", SubState: "running", Result: "success", MainPID: intp(200)}, nil)
	tr2 := mainExitTrigger(200, 300)
	r.onTrigger(tr2)
	if len(r.unit.held) != 1 {
		t.Fatalf("a later exit decided by the earlier answer: %d held", len(r.unit.held))
	}
	r.decideHeld(tr2.at.Add(holdMax))
	if *asks != 2 {
		t.Errorf("%d asks, want one for each exit", *asks)
	}
}
