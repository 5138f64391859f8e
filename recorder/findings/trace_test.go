package findings

import (
	"testing"
	"time"

	"github.com/preflight-rec/preflight/recorder/capture"
)

func ip(v int) *int { return &v }

func TestFDsAtLimit(t *testing.T) {
	withFDs := func(fds int, limit uint64) Incident {
		return incident(3, func(i int, s *capture.Sample) {
			if i == 2 {
				s.Service.Processes[0].FDs, s.Service.Processes[0].FDLimit = ip(fds), u(limit)
				s.Service.Processes[1].FDs, s.Service.Processes[1].FDLimit = ip(10), u(limit)
			}
		})
	}
	runRule(t, FDsAtLimit, []ruleCase{
		{"at the limit", withFDs(1021, 1024), []string{"ran out of file descriptors: 1021 of 1024 open files",
			"PID 100 (drop): 1021 of 1024 open files (soft RLIMIT_NOFILE) at -1.0s", "EMFILE"}},
		{"far from it", withFDs(500, 1024), nil},
		{"unknown", incident(3, nil), nil},
	})
}

func TestPageCacheLimit(t *testing.T) {
	atLimit := func(file, shmem, anon uint64) Incident {
		return incident(3, func(i int, s *capture.Sample) {
			s.Service.MemoryMaxBytes = u(100 * mib)
			s.Service.MemoryBytes = u(97 * mib)
			s.Service.MemoryStat = &capture.MemoryStat{FileBytes: u(file), ShmemBytes: u(shmem), AnonBytes: u(anon),
				KernelBytes: u(2 * mib), SockBytes: u(0)}
		})
	}
	runRule(t, PageCacheLimit, []ruleCase{
		{"cache", atLimit(80*mib, mib, 15*mib), []string{"page cache (79MiB), not anonymous memory (15MiB)",
			"97MiB of its 100MiB limit (97%) at 0s", "file 80MiB (shmem 1.0MiB), anon 15MiB, kernel 2.0MiB, sock 0B"}},
		{"anonymous", atLimit(10*mib, 0, 85*mib), nil},
		{"shmem is no cache", atLimit(80*mib, 70*mib, 15*mib), nil},
		{"below the limit", incident(3, func(i int, s *capture.Sample) {
			s.Service.MemoryStat = &capture.MemoryStat{FileBytes: u(90 * mib), AnonBytes: u(5 * mib)}
		}), nil},
	})
}

// traced returns a calm incident with a trace point every second for the
// last n seconds before the failure, passed to mod with its index.
func traced(n int, mod func(i int, p *capture.TracePoint)) Incident {
	in := incident(3, func(i int, s *capture.Sample) { s.Service.MemoryMaxBytes = u(256 * mib) })
	for i := range n {
		p := capture.TracePoint{At: t0.Add(-time.Duration(n-i) * time.Second), MemoryBytes: u(100 * mib),
			MemorySomeAvg10: f64(0), MemoryFullAvg10: f64(0), Pids: 2}
		if mod != nil {
			mod(i, &p)
		}
		in.Trace = append(in.Trace, p)
	}
	in.Trace = append(in.Trace, capture.TracePoint{At: t0, MemoryBytes: u(0), Trigger: capture.TriggerHealth})
	return in
}

func TestTraceGrowth(t *testing.T) {
	runRule(t, TraceGrowth, []ruleCase{
		{"8 MiB/s for 8 s", traced(20, func(i int, p *capture.TracePoint) {
			if i >= 12 {
				p.MemoryBytes = u(uint64(100+8*(i-11)) * mib)
			}
		}), []string{"grew 8.0MiB/s in its last 8.0s", "100MiB at -9.0s → 164MiB at -1.0s, 9 readings in a row",
			"at that rate the limit 256MiB was 12s away at -1.0s"}},
		{"flat", traced(20, nil), nil},
		{"too little", traced(20, func(i int, p *capture.TracePoint) { p.MemoryBytes = u(uint64(100*mib + i*mib/2)) }), nil},
		{"no trace", incident(3, nil), nil},
	})
}

func TestPressureStall(t *testing.T) {
	runRule(t, PressureStall, []ruleCase{
		{"stall at the end", traced(30, func(i int, p *capture.TracePoint) {
			if i == 27 {
				p.MemorySomeAvg10, p.MemoryFullAvg10 = f64(42), f64(30)
			}
		}), []string{"stalled on memory in its last 10s: pressure some 42%", "some 42%, full 30% (avg10) at -3.0s"}},
		{"stall long before", traced(30, func(i int, p *capture.TracePoint) {
			if i == 5 {
				p.MemorySomeAvg10 = f64(80)
			}
		}), nil},
		{"calm", traced(30, nil), nil},
	})
}

// FromCapture keeps the trace points of this incident's scene only.
func TestFromCaptureTraceScene(t *testing.T) {
	in := incident(4, func(i int, s *capture.Sample) {
		if i == 1 {
			s.Trigger = capture.TriggerExit // an earlier incident's
		}
	})
	c := &capture.Capture{TransitionTime: t0, Samples: in.Samples, IntervalSeconds: 1}
	for i := range 6 {
		c.ServiceTrace = append(c.ServiceTrace, capture.TracePoint{At: t0.Add(-time.Duration(6-i) * time.Second)})
	}
	got := FromCapture(c).Trace
	from := in.Samples[1].At
	if len(got) == 0 || len(got) >= len(c.ServiceTrace) {
		t.Fatalf("%d of %d points kept", len(got), len(c.ServiceTrace))
	}
	for _, p := range got {
		if !p.At.After(from) {
			t.Errorf("point at %v belongs to the earlier incident (its trigger at %v)", p.At, from)
		}
	}
}
