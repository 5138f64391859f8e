package recorder

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/preflight-rec/preflight/cgroup"
	"github.com/preflight-rec/preflight/cgroup/cgrouptest"
)

// TestSystemdsMainIsWatched: the main process systemd names while the unit
// is active, when following begins (followFrom, as Run does) and as it
// reports, is the watcher's: its kill while others live on is an exit
// event naming it. One named while the unit is not active is not.
func TestSystemdsMainIsWatched(t *testing.T) {
	cg := cgrouptest.New(t, "preflight-main")
	a, b, c, worker := cgrouptest.StartSleep(t), cgrouptest.StartSleep(t), cgrouptest.StartSleep(t), cgrouptest.StartSleep(t)
	for _, p := range []*cgrouptest.Proc{a, b, c, worker} {
		cg.Move(t, p.PID)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	t.Cleanup(srv.Close)
	cfg := Config{Service: "main", HealthURL: srv.URL, IntervalSeconds: 1, BufferSamples: 3, FailureThreshold: 1,
		CaptureDir: t.TempDir(), Keep: 5, TopProcesses: 3, LogLevel: "debug", Cgroup: cg.Path, TraceSeconds: 120}
	r, err := New(cfg, Options{Logger: zerolog.New(zerolog.NewTestWriter(t)), Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	if r.scope == nil {
		t.Skip("no cgroup scope here")
	}
	ctx, cancel := context.WithCancel(context.Background())
	events := r.scope.start(ctx)
	t.Cleanup(func() { cancel(); r.scope.wait() })
	seen := func(p *cgrouptest.Proc) bool { return slices.Contains(r.scope.w.PIDs(), p.PID) }
	waitUntil := func(what string, ok func() bool) {
		t.Helper()
		for end := time.Now().Add(5 * time.Second); !ok(); time.Sleep(5 * time.Millisecond) {
			if time.Now().After(end) {
				t.Fatalf("%s: not within 5 s", what)
			}
		}
	}
	waitUntil("the watcher's look at the four", func() bool { return len(r.scope.w.PIDs()) == 4 })
	mainExit := func(p *cgrouptest.Proc) {
		t.Helper()
		p.Kill()
		select {
		case tr := <-events:
			if tr.main() != p.PID {
				t.Fatalf("event %q (main %d), want the end of main process %d", tr.detail, tr.main(), p.PID)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no event within 5 s of the main process %d's kill", p.PID)
		}
	}

	r.followFrom(cgroup.UnitState{At: time.Now(), ActiveState: "active", SubState: "running", MainPID: intp(a.PID)})
	mainExit(a)

	r.onUnitState(cgroup.UnitState{At: time.Now(), ActiveState: "activating", SubState: "start", MainPID: intp(b.PID)})
	b.Kill()
	waitUntil("the look after b's kill", func() bool { return !seen(b) })
	select {
	case tr := <-events:
		t.Fatalf("event %q for a process named main while the unit was activating", tr.detail)
	case <-time.After(100 * time.Millisecond):
	}

	r.onUnitState(cgroup.UnitState{At: time.Now(), ActiveState: "active", SubState: "running", MainPID: intp(c.PID)})
	mainExit(c)
	if !seen(worker) {
		t.Fatalf("the worker %d is not among the cgroup's processes %v", worker.PID, r.scope.w.PIDs())
	}
}
