package findings

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/preflight-rec/preflight/recorder/capture"
)

// procs returns service processes with the given PIDs, all in state st.
func procs(st string, pids ...int) []capture.Process {
	var ps []capture.Process
	for _, pid := range pids {
		ps = append(ps, capture.Process{PID: pid, Name: "redis-server", State: st, RSSBytes: 10 * mib})
	}
	return ps
}

// crashLoop is a capture of the second of two kills 4 s apart in one ring:
// PID 373 died at -4.0s (its incident's trigger sample is in the ring),
// PID 549 took over and died at the failure.
func crashLoop(withTriggerField bool) *capture.Capture {
	c := &capture.Capture{TransitionTime: t0, IntervalSeconds: 1,
		Triggers: []capture.Trigger{{Kind: capture.TriggerExit, At: t0, Detail: "cgroup emptied (last pids 549)"}}}
	add := func(at time.Duration, trig string, ps []capture.Process) {
		s := calm(t0.Add(at))
		s.Service.Processes, s.Service.Pids = ps, len(ps)
		if withTriggerField {
			s.Trigger = trig
		}
		c.Samples = append(c.Samples, s)
	}
	add(-6*time.Second-time.Millisecond, "", procs("S", 373))
	add(-5*time.Second-time.Millisecond, "", procs("S", 373))
	add(-4*time.Second-time.Millisecond, "", procs("S", 373))
	add(-4*time.Second+4*time.Millisecond, capture.TriggerExit, nil) // the earlier incident's trigger sample
	add(-3*time.Second-time.Millisecond, "", procs("S", 549))
	add(-2*time.Second-time.Millisecond, "", procs("S", 549))
	add(-1*time.Second-time.Millisecond, "", procs("S", 549))
	add(3*time.Millisecond, capture.TriggerExit, nil)
	return c
}

func TestCrashLoopNamesThisFailure(t *testing.T) {
	for _, field := range []bool{true, false} { // a capture with the trigger field, and an older one without
		c := crashLoop(field)
		if got := Scene(c); got != 4 {
			t.Errorf("field %v: Scene = %d, want 4 (after the earlier trigger's sample)", field, got)
		}
		f := ProcessesVanished(FromCapture(c), Default)
		if f == nil {
			t.Fatalf("field %v: processes-vanished did not fire", field)
		}
		text := f.Summary + "\n" + strings.Join(f.Evidence, "\n")
		for _, w := range []string{"1 at -1.0s → none at +3ms", "gone: PID 549 (redis-server)", "trigger exit at 0s"} {
			if !strings.Contains(text, w) {
				t.Errorf("field %v: lacks %q:\n%s", field, w, text)
			}
		}
		if strings.Contains(text, "373") {
			t.Errorf("field %v: names the earlier incident's PID 373:\n%s", field, text)
		}
	}
	// Without the scene cut (every sample), the nearest change is still
	// this failure's.
	c := crashLoop(true)
	f := ProcessesVanished(Incident{Samples: c.Samples, Failure: t0, Triggers: c.Triggers}, Default)
	if f == nil || !strings.Contains(f.Evidence[1], "PID 549") {
		t.Errorf("over every sample: %+v, want PID 549", f)
	}
}

// Two OOM kills in one ring: the one at the failure is told, with the
// process it took.
func TestOOMKillNearest(t *testing.T) {
	in := incident(6, func(i int, s *capture.Sample) {
		s.Service.MemoryMaxBytes = u(64 * mib)
		switch {
		case i < 2:
			s.Service.OOMKills = u(0)
			s.Service.Processes = procs("S", 373)
		case i < 6:
			s.Service.OOMKills = u(1)
			s.Service.Processes = procs("S", 549)
		default:
			s.Service.OOMKills = u(2)
			s.Service.Processes = nil
		}
	})
	f := OOMKill(in, Default)
	if f == nil {
		t.Fatal("did not fire")
	}
	want := []string{"oom_kills 1 at -1.0s → 2 at 0s", "PID 549 (redis-server), 10MiB resident at -1.0s, is gone at 0s"}
	text := strings.Join(f.Evidence, "\n")
	for _, w := range want {
		if !strings.Contains(text, w) {
			t.Errorf("lacks %q:\n%s", w, text)
		}
	}
	if strings.Contains(text, "373") || f.Summary != "The kernel OOM-killed a process in the service's cgroup" {
		t.Errorf("tells the earlier kill: %q\n%s", f.Summary, text)
	}
}

func TestProcessesStuck(t *testing.T) {
	runRule(t, ProcessesStuck, []ruleCase{
		{"all stopped", incident(3, func(i int, s *capture.Sample) {
			if i >= 2 {
				s.Service.Processes[0].State, s.Service.Processes[1].State = "T", "T"
			}
		}), []string{"The service's processes were all stopped (state T)",
			"stopped (state T): PID 100 (drop), PID 101 (drop-helper), from -1.0s to 0s (2 samples)"}},
		{"one in D, one zombie", incident(3, func(i int, s *capture.Sample) {
			if i >= 2 {
				s.Service.Processes[0].State, s.Service.Processes[1].State = "D", "Z"
			}
		}), []string{"1 of the service's 2 processes were in uninterruptible sleep (state D)",
			"in uninterruptible sleep (state D): PID 100 (drop), from -1.0s to 0s",
			"zombies (state Z): PID 101 (drop-helper), from -1.0s to 0s"}},
		{"stopped once only", incident(3, func(i int, s *capture.Sample) {
			if i == 3 {
				s.Service.Processes[0].State = "T"
			}
		}), nil},
		{"stopped earlier, running at the failure", incident(3, func(i int, s *capture.Sample) {
			if i < 2 {
				s.Service.Processes[0].State = "T"
			}
		}), nil},
		{"all running", incident(3, nil), nil},
	})
}

// checks returns ok checks one second apart ending 1 s before the failure,
// with the given latencies, then a failed one at the failure.
func checks(lat ...float64) []capture.Check {
	var cs []capture.Check
	for i, l := range lat {
		cs = append(cs, capture.Check{At: t0.Add(-time.Duration(len(lat)-i) * time.Second), OK: true, LatencyMS: l, StatusCode: 200})
	}
	return append(cs, capture.Check{At: t0, LatencyMS: 2000, Error: "timeout after 2s"})
}

func TestHealthLatency(t *testing.T) {
	with := func(cs []capture.Check) Incident { in := incident(3, nil); in.Checks = cs; return in }
	runRule(t, HealthLatency, []ruleCase{
		{"climbing", with(checks(12, 10, 15, 200, 600, 1500)), []string{"latency climbed",
			"latency 10ms at -5.0s → 1.5s at -1.0s, slower than the check before in 4 of 4 checks",
			"then the check at 0s failed after 2.0s: timeout after 2s"}},
		{"flat", with(checks(12, 10, 15, 11, 13, 12)), nil},
		{"one slow spike among fast", with(checks(12, 10, 900, 11, 13, 300)), nil},
		{"too small to matter", with(checks(1, 1, 2, 3, 4, 5)), nil},
		{"too few checks", with(checks(10, 900)), nil},
	})
}

func TestRestartLoop(t *testing.T) {
	n := func(v int) *int { return &v }
	exits := func(k int) Incident {
		in := incident(3, nil)
		in.Triggers = nil
		for i := range k {
			in.Triggers = append(in.Triggers, capture.Trigger{Kind: capture.TriggerExit, At: t0.Add(time.Duration(4*i) * time.Second)})
		}
		return in
	}
	withSystemd := func(restarts int) Incident {
		in := incident(3, nil)
		in.Systemd = &capture.Systemd{Unit: "redis-server.service", Result: "signal", NRestarts: n(restarts)}
		return in
	}
	runRule(t, RestartLoop, []ruleCase{
		{"systemd", withSystemd(5), []string{"restart loop", "systemd restarted redis-server.service 5 times (NRestarts), last result signal"}},
		{"exits", exits(3), []string{"3 exit triggers in this incident, at 0s, +4.0s, +8.0s"}},
		{"one restart", withSystemd(1), nil},
		{"two exits", exits(2), nil},
	})
}

// Rates over too short a window are null in new captures; a rule never
// reads a null rate, and never the CPU of the sample at the failure.
func TestNoFindingOnNullRates(t *testing.T) {
	in := incident(3, func(i int, s *capture.Sample) {
		s.CPU.Percent, s.CPU.IOWait = nil, nil
		s.Load.Load1 = 9
		for j := range s.TopCPU {
			s.TopCPU[j].CPUPercent = nil
		}
	})
	if f := OtherCPU(in, Default); f != nil {
		t.Errorf("other-cpu fired on null rates: %+v", f)
	}
	f := Load(in, Default)
	if f == nil || !reflect.DeepEqual(f.Evidence, []string{"load1 9.0 on 4 CPUs at -1.0s; 9.0 at -3.0s"}) {
		t.Errorf("load = %+v, want only its load line", f)
	}
}

// Load tells the load at the failure, not a peak long before it (the
// recorder's first sample on a host still busy with its boot).
func TestLoadAtTheFailure(t *testing.T) {
	in := incident(5, func(i int, s *capture.Sample) {
		s.Load.Load1 = 4
		if i == 0 {
			s.Load.Load1 = 16.4
		}
	})
	if f := Load(in, Default); f != nil {
		t.Errorf("fired on an early peak: %+v", f)
	}
}

// In a capture from before rate windows, the last sample before the
// failure taken 20 ms after the one before it (an earlier trigger's, kept
// in the ring as a tick by a heuristic miss) has rates no finding tells.
func TestNoFindingOnShortWindow(t *testing.T) {
	in := incident(3, func(i int, s *capture.Sample) {
		s.Load.Load1 = 9
		s.TopCPU = append(s.TopCPU, capture.Process{PID: 999, Name: "stress", CPUPercent: f64(380)})
	})
	in.Samples[2].At = in.Samples[1].At.Add(20 * time.Millisecond) // the last before the failure
	if f := OtherCPU(in, Default); f != nil {
		t.Errorf("other-cpu told a rate over 20ms: %+v", f)
	}
	if f := Load(in, Default); f == nil || len(f.Evidence) != 1 {
		t.Errorf("load = %+v, want its load line only, no CPU over 20ms", f)
	}
	in.Interval = 1
	in.Samples[2].At = in.Samples[1].At.Add(time.Second)
	if f := OtherCPU(in, Default); f == nil || !strings.Contains(f.Evidence[0], "PID 999 (stress) used 380% CPU (95% of 4 CPUs) at -1.0s") {
		t.Errorf("other-cpu over a whole interval = %+v", f)
	}
}
