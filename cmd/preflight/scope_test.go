package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/preflight-rec/preflight/cgroup/cgrouptest"
	"github.com/preflight-rec/preflight/recorder/capture"
)

// allocHelperEnv makes the test binary, re-executed, allocate: it waits for
// a byte on stdin (sent once the test has moved it into its cgroup), then
// touches 200 MB.
const allocHelperEnv = "PREFLIGHT_TEST_ALLOC"

func allocHelper() {
	_, _ = io.ReadFull(os.Stdin, make([]byte, 1))
	b := make([]byte, 200<<20)
	for i := 0; i < len(b); i += 4096 {
		b[i] = 1
	}
	runtime.KeepAlive(b)
	fmt.Println("allocated 200 MB: no limit was enforced")
	os.Exit(3)
}

// scopedRecorder starts a recorder scoped to cg with a health server that
// stays healthy and a 5 s interval: any capture within a second comes from
// the cgroup, not from a health check.
func scopedRecorder(t *testing.T, cg *cgrouptest.Cgroup) (dir string, log *lockedBuffer) {
	t.Helper()
	h := newHealthServer(t)
	dir = t.TempDir()
	_, log = startRecorder(t, []string{
		"PREFLIGHT_SERVICE=scoped",
		"PREFLIGHT_HEALTH_URL=" + h.URL,
		"PREFLIGHT_INTERVAL_SECONDS=5",
		"PREFLIGHT_CGROUP=" + cg.Path,
	}, "--dir", dir)
	// The first sample is taken before the first check is started; a
	// healthy state means the ring holds it.
	waitFor(t, 10*time.Second, "the recorder's first check", func() bool {
		st, err := capture.ReadState(dir, "scoped")
		return err == nil && st.State == capture.StateHealthy
	})
	return dir, log
}

func waitCapture(t *testing.T, dir string, within time.Duration, log *lockedBuffer) *capture.Capture {
	t.Helper()
	var files []string
	deadline := time.Now().Add(within)
	for len(files) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no capture within %v; log:\n%s", within, log)
		}
		time.Sleep(5 * time.Millisecond)
		files = captures(t, filepath.Join(dir, "scoped"))
	}
	c, _, err := capture.Read(files[0])
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func lastBefore(c *capture.Capture) *capture.Sample {
	var pre *capture.Sample
	for i := range c.Samples {
		if c.Samples[i].At.Before(c.TransitionTime) {
			pre = &c.Samples[i]
		}
	}
	return pre
}

func pidsOf(ps []capture.Process) []int {
	var out []int
	for _, p := range ps {
		out = append(out, p.PID)
	}
	return out
}

// TestExitTrigger is the cgroup issue's "done when": kill -9 of the
// service's only process → within 1 s an exit capture whose last sample
// before the failure lists the process.
func TestExitTrigger(t *testing.T) {
	cg := cgrouptest.New(t, "preflight-cli-test")
	sleep := cgrouptest.StartSleep(t)
	cg.Move(t, sleep.PID)
	dir, log := scopedRecorder(t, cg)

	killed := time.Now()
	sleep.Kill()
	c := waitCapture(t, dir, time.Second, log)
	t.Logf("kill -9 → capture on disk: %v", time.Since(killed).Round(time.Millisecond))
	if c.Triggers[0].Kind != capture.TriggerExit {
		t.Fatalf("triggers %+v, want exit first", c.Triggers)
	}
	pre := lastBefore(c)
	if pre == nil || pre.Service == nil || !slices.Contains(pidsOf(pre.Service.Processes), sleep.PID) {
		t.Fatalf("the last sample before the failure does not list the sleep (%d): %+v", sleep.PID, pre)
	}
	for _, p := range pre.Service.Processes {
		if p.PID == sleep.PID && (p.Name != "sleep" || p.Cmdline != "sleep 300") {
			t.Errorf("process object %+v", p)
		}
	}
	at := c.Samples[len(c.Samples)-1]
	if at.Service == nil || len(at.Service.Processes) != 0 || at.Service.Cgroup != cg.Path {
		t.Errorf("the sample at the trigger should show an empty %s: %+v", cg.Path, at.Service)
	}
}

// TestRestartTrigger: every process replaced without the cgroup ever
// emptying (a restart) is an exit.
func TestRestartTrigger(t *testing.T) {
	cg := cgrouptest.New(t, "preflight-cli-test")
	a := cgrouptest.StartSleep(t)
	cg.Move(t, a.PID)
	dir, log := scopedRecorder(t, cg)
	// A set replaced within a second of appearing is a daemon forking at
	// start-up, not a restart.
	time.Sleep(1100 * time.Millisecond)
	b := cgrouptest.StartSleep(t)
	cg.Move(t, b.PID)
	a.Kill()
	c := waitCapture(t, dir, time.Second, log)
	if c.Triggers[0].Kind != capture.TriggerExit {
		t.Fatalf("triggers %+v", c.Triggers)
	}
	t.Logf("trigger detail: %s", c.Triggers[0].Detail)
}

// TestOOMTrigger: a child of the service OOM-killed under a 32 MiB limit
// while the main process lives → an oom capture with the counter's rise.
func TestOOMTrigger(t *testing.T) {
	cg := cgrouptest.New(t, "preflight-cli-test")
	cg.LimitMemory(t, 32<<20)
	main := cgrouptest.StartSleep(t)
	cg.Move(t, main.PID)
	dir, log := scopedRecorder(t, cg)

	_, allocate := startAllocator(t, cg)
	allocate()
	c := waitCapture(t, dir, time.Second, log)
	if c.Triggers[0].Kind != capture.TriggerOOM {
		t.Fatalf("triggers %+v, want oom", c.Triggers)
	}
	at := c.Samples[len(c.Samples)-1]
	if at.Service == nil || at.Service.OOMKills == nil || *at.Service.OOMKills < 1 {
		t.Errorf("the sample at the trigger lacks the OOM kill count: %+v", at.Service)
	}
	if lim := at.Service.MemoryMaxBytes; lim == nil || *lim != 32<<20 {
		t.Errorf("memory_max_bytes %v, want 32 MiB", lim)
	}
	if !slices.Contains(pidsOf(at.Service.Processes), main.PID) {
		t.Errorf("the main process should still be in the cgroup at the trigger")
	}
	b, _ := json.Marshal(c.Triggers)
	t.Logf("triggers: %s", b)
}

// TestOOMEvidenceOutlivesRemoval: the service's only process OOM-killed
// under a 32 MiB limit, and its cgroup removed the moment the process is
// reaped, as systemd does: the sample of the oom trigger still holds what
// the cgroup said at the kill.
func TestOOMEvidenceOutlivesRemoval(t *testing.T) {
	const limit = 32 << 20
	cg := cgrouptest.New(t, "preflight-cli-test")
	cg.LimitMemory(t, limit)
	_, allocate := startAllocator(t, cg)
	dir, log := scopedRecorder(t, cg)

	allocate()
	cg.Remove(t)
	c := waitCapture(t, dir, time.Second, log)
	waitFor(t, 2*time.Second, "the oom trigger", func() bool {
		c = waitCapture(t, dir, time.Second, log)
		return slices.ContainsFunc(c.Triggers, func(tr capture.Trigger) bool { return tr.Kind == capture.TriggerOOM })
	})
	first := len(c.Samples) - len(c.Triggers)
	for i, tr := range c.Triggers {
		s := c.Samples[first+i].Service
		if tr.Kind != capture.TriggerOOM {
			continue
		}
		if s == nil || s.OOMKills == nil || *s.OOMKills < 1 {
			t.Fatalf("the oom trigger's sample lacks the kill: %+v", s)
		}
		if s.MemoryPeakBytes == nil || *s.MemoryPeakBytes < limit*9/10 {
			t.Errorf("the oom trigger's sample: memory peak %v, want ≥ 90%% of %d", s.MemoryPeakBytes, limit)
		}
		if s.ReadAt == nil || s.ReadAt.Sub(tr.At) > 100*time.Millisecond || tr.At.Sub(*s.ReadAt) > time.Second {
			t.Errorf("the oom trigger at %v: service read at %v", tr.At, s.ReadAt)
		}
	}
	b, _ := json.Marshal(c.Triggers)
	t.Logf("triggers: %s", b)
}

// startAllocator starts this test binary as the allocating helper, in cg.
// allocate tells it to allocate past the limit and waits (10 s at most)
// for the kernel to kill it.
func startAllocator(t *testing.T, cg *cgrouptest.Cgroup) (p *cgrouptest.Proc, allocate func()) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	alloc := exec.Command(self)
	alloc.Env = append(os.Environ(), allocHelperEnv+"=1")
	stdin, err := alloc.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	p = cgrouptest.Start(t, alloc)
	cg.Move(t, p.PID)
	return p, func() {
		t.Helper()
		stdin.Write([]byte{1})
		select {
		case <-p.Done:
		case <-time.After(10 * time.Second):
			t.Fatal("the allocating process was not killed within 10s")
		}
	}
}
