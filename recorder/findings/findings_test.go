package findings

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/preflight-rec/preflight/recorder/capture"
)

// The failure happens at t0. A crafted incident has n samples one second
// apart, the last one 1 s (and 1 ms) before t0, then the sample taken at
// the trigger, at t0.
var t0 = time.Date(2026, 11, 26, 3, 12, 4, 0, time.UTC)

const (
	mib = 1 << 20
	gib = 1 << 30
)

func u(v uint64) *uint64     { return &v }
func f64(v float64) *float64 { return &v }

// calm is a sample of a quiet 4-CPU host with a quiet service (pids 100
// and 101) under a 1 GiB limit.
func calm(at time.Time) capture.Sample {
	svcProcs := []capture.Process{
		{PID: 100, Name: "drop", State: "S", CPUPercent: f64(3), RSSBytes: 80 * mib, Threads: 8},
		{PID: 101, Name: "drop-helper", State: "S", CPUPercent: f64(0.5), RSSBytes: 20 * mib, Threads: 1},
	}
	return capture.Sample{
		At:     at,
		CPU:    capture.CPU{Percent: f64(5), User: f64(3), System: f64(2), CPUs: 4},
		Load:   capture.Load{Load1: 0.5, Load5: 0.4, Load15: 0.3},
		Memory: capture.Memory{TotalBytes: 16 * gib, AvailableBytes: 11 * gib, UsedPercent: 31.25},
		Disks: []capture.Disk{
			{Mount: "/", Device: "/dev/vda", FSType: "ext4", TotalBytes: 100 * gib, UsedBytes: 40 * gib, UsedPercent: 40, InodesUsedPercent: 5},
			{Mount: "/var", Device: "/dev/vdb", FSType: "xfs", TotalBytes: 50 * gib, UsedBytes: 10 * gib, UsedPercent: 20, InodesUsedPercent: 1},
		},
		Pressure:  &capture.Pressure{},
		TopCPU:    []capture.Process{svcProcs[0], {PID: 1, Name: "systemd", CPUPercent: f64(0.3), RSSBytes: 12 * mib}},
		TopMemory: []capture.Process{svcProcs[0], {PID: 7, Name: "journald", RSSBytes: 40 * mib}},
		Processes: 120,
		Service: &capture.Service{
			Cgroup:           "/system.slice/drop.service",
			MemoryBytes:      u(100 * mib),
			MemoryMaxBytes:   u(gib),
			OOMKills:         u(0),
			CPUPercent:       f64(3.5),
			CPUThrottledUsec: u(0),
			Pids:             2,
			Pressure:         &capture.Pressure{},
			Processes:        svcProcs,
		},
	}
}

// incident returns n calm samples before the failure plus the one at it,
// each passed to mod with its index (n for the one at the failure).
func incident(n int, mod func(i int, s *capture.Sample)) Incident {
	in := Incident{Failure: t0, Triggers: []capture.Trigger{{Kind: capture.TriggerHealth, At: t0, Detail: "HTTP 503"}}}
	for i := 0; i <= n; i++ {
		at := t0.Add(-time.Duration(n-i)*time.Second - time.Millisecond)
		if i == n {
			at = t0
		}
		s := calm(at)
		if mod != nil {
			mod(i, &s)
		}
		in.Samples = append(in.Samples, s)
	}
	return in
}

type ruleCase struct {
	name string
	in   Incident
	want []string // substrings of summary + evidence; nil: must not fire
}

func runRule(t *testing.T, rule func(Incident, Thresholds) *Finding, cases []ruleCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := rule(tc.in, Default)
			if tc.want == nil {
				if f != nil {
					t.Fatalf("fired: %+v", *f)
				}
				return
			}
			if f == nil {
				t.Fatalf("did not fire")
			}
			text := f.Summary + "\n" + strings.Join(f.Evidence, "\n")
			for _, w := range tc.want {
				if !strings.Contains(text, w) {
					t.Errorf("lacks %q:\n%s", w, text)
				}
			}
		})
	}
}

func TestOOMKill(t *testing.T) {
	runRule(t, OOMKill, []ruleCase{
		{"counter rose, largest process gone", incident(5, func(i int, s *capture.Sample) {
			s.Service.MemoryMaxBytes = u(32 * mib)
			s.Service.MemoryBytes = u(uint64(20+2*i) * mib)
			if i == 5 {
				s.Service.OOMKills = u(1)
				s.Service.MemoryBytes = u(mib)
				s.Service.MemoryPeakBytes = u(32 * mib)
				s.Service.Processes = s.Service.Processes[1:]
			}
		}), []string{"OOM-killed a process", "oom_kills 0 at -1.0s → 1 at 0s", "memory 28MiB of its 32MiB limit (88%) at -1.0s",
			"high-water mark 32MiB, limit 32MiB", "PID 100 (drop), 80MiB resident at -1.0s, is gone at 0s"}},
		{"several kills", incident(3, func(i int, s *capture.Sample) { s.Service.OOMKills = u(uint64(2 + i)) }),
			[]string{"OOM-killed a process", "oom_kills 4 at -1.0s → 5 at 0s"}}, // the rise nearest the failure
		{"two kills in one rise", incident(3, func(i int, s *capture.Sample) { s.Service.OOMKills = u(uint64(2 * (i / 3))) }),
			[]string{"OOM-killed 2 processes", "oom_kills 0 at -1.0s → 2 at 0s"}},
		{"trigger without a counter", func() Incident {
			in := incident(3, func(i int, s *capture.Sample) { s.Service.OOMKills = nil })
			in.Triggers = append(in.Triggers, capture.Trigger{Kind: capture.TriggerOOM, At: t0.Add(time.Second), Detail: "oom_kill 0 → 1"})
			return in
		}(), []string{"trigger oom at +1.0s: oom_kill 0 → 1"}},
		{"the kill on the kernel's word", incident(5, func(i int, s *capture.Sample) {
			s.Service.MemoryMaxBytes = u(64 * mib)
			if i == 5 {
				s.Service.OOMKills, s.Service.MemoryPeakBytes = u(1), u(64*mib)
				s.Service.FromKernelLog = []string{capture.FieldOOMKills, capture.FieldMemoryPeakBytes}
			}
		}), []string{"OOM-killed a process", "oom_kills 0 at -1.0s → 1 at 0s (the kernel's log)", "high-water mark 64MiB, limit 64MiB (the kernel's log)"}},
		{"old kills only", incident(5, func(i int, s *capture.Sample) { s.Service.OOMKills = u(3) }), nil},
		{"calm", incident(5, nil), nil},
		{"no service", incident(5, func(i int, s *capture.Sample) { s.Service = nil }), nil},
	})
}

func TestMemoryLimit(t *testing.T) {
	runRule(t, MemoryLimit, []ruleCase{
		{"near the limit", incident(4, func(i int, s *capture.Sample) { s.Service.MemoryBytes = u(uint64(900+20*i) * mib) }),
			[]string{"reached 96% of its cgroup limit", "900MiB (88%) at -4.0s → 980MiB (96%) at 0s, limit 1.0GiB", "growing +20MiB/s"}},
		{"climbing", incident(4, func(i int, s *capture.Sample) { s.Service.MemoryBytes = u(uint64(300+100*i) * mib) }),
			[]string{"rose toward its cgroup limit", "300MiB (29%) at -4.0s → 700MiB (68%) at 0s", "+100MiB/s: at that rate the limit is 3.2s away"}},
		{"steady half", incident(4, func(i int, s *capture.Sample) { s.Service.MemoryBytes = u(512 * mib) }), nil},
		{"climbing but low", incident(4, func(i int, s *capture.Sample) { s.Service.MemoryBytes = u(uint64(100+100*i) * mib) }), nil},
		{"no limit", incident(4, func(i int, s *capture.Sample) {
			s.Service.MemoryBytes, s.Service.MemoryMaxBytes = u(uint64(900+20*i)*mib), nil
		}), nil},
	})
}

func TestMemoryGrowth(t *testing.T) {
	noLimit := func(f func(i int) uint64) Incident {
		return incident(6, func(i int, s *capture.Sample) { s.Service.MemoryBytes, s.Service.MemoryMaxBytes = u(f(i)), nil })
	}
	runRule(t, MemoryGrowth, []ruleCase{
		{"steady leak", noLimit(func(i int) uint64 { return uint64(50+75*i) * mib }),
			[]string{"grew steadily", "50MiB at -6.0s → 500MiB at 0s, rising in 6 of 6 intervals", "+75MiB/s"}},
		{"small", noLimit(func(i int) uint64 { return uint64(10+3*i) * mib }), nil},
		{"jumpy", noLimit(func(i int) uint64 { return []uint64{50, 400, 60, 300, 70, 200, 500}[i] * mib }), nil},
		{"limited", incident(6, func(i int, s *capture.Sample) { s.Service.MemoryBytes = u(uint64(50+75*i) * mib) }), nil},
	})
}

func TestHostMemory(t *testing.T) {
	runRule(t, HostMemory, []ruleCase{
		{"exhausted", incident(3, func(i int, s *capture.Sample) {
			s.Memory.UsedPercent = 80 + 6*float64(i)
			s.Memory.AvailableBytes = uint64(float64(s.Memory.TotalBytes) * (100 - s.Memory.UsedPercent) / 100)
		}), []string{"ran out of memory", "328MiB available of 16GiB (98% used) at 0s; 80% used at -3.0s", "largest process: PID 100 (drop)"}},
		{"busy", incident(3, func(i int, s *capture.Sample) { s.Memory.UsedPercent = 90 }), nil},
	})
}

func TestSwap(t *testing.T) {
	withSwap := func(used func(i int) uint64) Incident {
		return incident(3, func(i int, s *capture.Sample) {
			s.Memory.SwapTotalBytes, s.Memory.SwapUsedBytes = 4*gib, used(i)
		})
	}
	runRule(t, Swap, []ruleCase{
		{"full", withSwap(func(i int) uint64 { return 3800 * mib }), []string{"almost full", "3.7GiB of 4.0GiB swap used (93%) at -3.0s"}},
		{"filling", withSwap(func(i int) uint64 { return uint64(200+300*i) * mib }), []string{"Swap was filling", "1.1GiB of 4.0GiB swap used (27%) at 0s; 200MiB at -3.0s"}},
		{"steady", withSwap(func(i int) uint64 { return 1200 * mib }), nil},
		{"no swap", incident(3, nil), nil},
	})
}

func TestDiskFull(t *testing.T) {
	runRule(t, DiskFull, []ruleCase{
		{"root filling", incident(3, func(i int, s *capture.Sample) {
			s.Disks[0].UsedPercent = 96 + float64(i)
			s.Disks[0].UsedBytes = uint64(s.Disks[0].UsedPercent * float64(s.Disks[0].TotalBytes) / 100)
		}), []string{"A filesystem was almost full: / at 99%", "/ (ext4 on /dev/vda): 99% used, 1.0GiB free of 100GiB at 0s; 96% at -3.0s"}},
		{"two", incident(1, func(i int, s *capture.Sample) { s.Disks[0].UsedPercent, s.Disks[1].UsedPercent = 97, 100 }),
			[]string{"2 filesystems were almost full", "/var (xfs on /dev/vdb): 100% used"}},
		{"just below", incident(3, func(i int, s *capture.Sample) { s.Disks[0].UsedPercent = 94.9 }), nil},
		{"empty filesystem", incident(1, func(i int, s *capture.Sample) {
			s.Disks = append(s.Disks, capture.Disk{Mount: "/x", UsedPercent: 100})
		}), nil},
	})
}

func TestInodesFull(t *testing.T) {
	runRule(t, InodesFull, []ruleCase{
		{"out of inodes", incident(2, func(i int, s *capture.Sample) { s.Disks[1].InodesUsedPercent = 98 + float64(i) }),
			[]string{"ran out of inodes: /var at 100%", "/var (xfs on /dev/vdb): 100% of inodes used at 0s; 98% at -2.0s"}},
		{"plenty", incident(2, nil), nil},
	})
}

func TestPressure(t *testing.T) {
	runRule(t, MemoryPressure, []ruleCase{
		{"host", incident(2, func(i int, s *capture.Sample) { s.Pressure.MemorySomeAvg10, s.Pressure.MemoryFullAvg10 = 30, 12 }),
			[]string{"stalled waiting for memory", "the host: memory pressure some 30%, full 12% (avg10) at -2.0s"}},
		{"service", incident(2, func(i int, s *capture.Sample) { s.Service.Pressure.MemorySomeAvg10 = float64(20 * i) }),
			[]string{"the service's cgroup: memory pressure some 40%, full 0% (avg10) at 0s"}},
		{"low", incident(2, func(i int, s *capture.Sample) { s.Pressure.MemorySomeAvg10 = 3 }), nil},
		{"no PSI", incident(2, func(i int, s *capture.Sample) { s.Pressure, s.Service.Pressure = nil, nil }), nil},
	})
	runRule(t, IOPressure, []ruleCase{
		{"host", incident(2, func(i int, s *capture.Sample) { s.Pressure.IOSomeAvg10, s.CPU.IOWait = 55, f64(40) }),
			[]string{"waiting for I/O", "the host: I/O pressure some 55%", "CPU iowait 40% at -2.0s"}},
		{"low", incident(2, func(i int, s *capture.Sample) { s.Pressure.IOSomeAvg10 = 19 }), nil},
	})
}

func TestCPUThrottle(t *testing.T) {
	runRule(t, CPUThrottle, []ruleCase{
		{"half the time", incident(4, func(i int, s *capture.Sample) { s.Service.CPUThrottledUsec = u(uint64(500_000 * i)) }),
			[]string{"throttled by its CPU quota", "throttled 500ms of the 1.0s from -4.0s to -3.0s (50%)", "throttled 1.5s of the 3.0s before the failure"}},
		{"a little", incident(4, func(i int, s *capture.Sample) { s.Service.CPUThrottledUsec = u(uint64(10_000 * i)) }), nil},
		{"only at the trigger", incident(4, func(i int, s *capture.Sample) {
			if i == 4 {
				s.Service.CPUThrottledUsec = u(900_000)
			}
		}), nil},
		{"no counter", incident(4, func(i int, s *capture.Sample) { s.Service.CPUThrottledUsec = nil }), nil},
	})
}

func TestLoad(t *testing.T) {
	runRule(t, Load, []ruleCase{
		{"overloaded", incident(2, func(i int, s *capture.Sample) { s.Load.Load1 = 3 + 3*float64(i) }),
			[]string{"far above its CPU count", "load1 9.0 on 4 CPUs at 0s; 3.0 at -2.0s"}},
		{"busy", incident(2, func(i int, s *capture.Sample) { s.Load.Load1 = 7.9 }), nil},
		{"unknown CPUs", incident(2, func(i int, s *capture.Sample) { s.Load.Load1, s.CPU.CPUs = 50, 0 }), nil},
	})
}

func TestProcessesMultiplied(t *testing.T) {
	fork := func(n int) []capture.Process {
		var ps []capture.Process
		for i := 0; i < n; i++ {
			ps = append(ps, capture.Process{PID: 1000 + i, Name: "worker"})
		}
		return ps
	}
	runRule(t, ProcessesMultiplied, []ruleCase{
		{"fork storm", incident(3, func(i int, s *capture.Sample) {
			s.Service.Pids = 2 + 12*i
			s.Service.Processes = fork(s.Service.Pids)
		}), []string{"multiplied", "2 processes at -3.0s → 38 at 0s", "38 of them named worker"}},
		{"a few more", incident(3, func(i int, s *capture.Sample) { s.Service.Pids = 2 + i }), nil},
	})
}

func TestProcessesVanished(t *testing.T) {
	runRule(t, ProcessesVanished, []ruleCase{
		{"emptied", func() Incident {
			in := incident(3, func(i int, s *capture.Sample) {
				if i == 3 {
					s.Service.Processes, s.Service.Pids = nil, 0
				}
			})
			in.Triggers = append(in.Triggers, capture.Trigger{Kind: capture.TriggerExit, At: t0, Detail: "cgroup emptied (last pids 100 101)"})
			return in
		}(), []string{"vanished", "2 at -1.0s → none at 0s", "gone: PID 100 (drop), PID 101 (drop-helper)", "trigger exit at 0s"}},
		{"replaced", incident(3, func(i int, s *capture.Sample) {
			if i == 3 {
				s.Service.Processes = []capture.Process{{PID: 200, Name: "drop"}}
			}
		}), []string{"all replaced", "2 at -1.0s → 1 at 0s, none of them the same"}},
		{"one of two", incident(3, func(i int, s *capture.Sample) {
			if i == 3 {
				s.Service.Processes = s.Service.Processes[:1]
			}
		}), nil},
		{"never had any", incident(3, func(i int, s *capture.Sample) { s.Service.Processes = nil }), nil},
	})
}

func TestOtherCPU(t *testing.T) {
	hog := capture.Process{PID: 999, Name: "stress", CPUPercent: f64(380)}
	runRule(t, OtherCPU, []ruleCase{
		{"neighbour", incident(3, func(i int, s *capture.Sample) { s.TopCPU = append([]capture.Process{hog}, s.TopCPU...) }),
			[]string{"dominated the CPU: stress", "PID 999 (stress) used 380% CPU (95% of 4 CPUs) at -1.0s", "the service 3.5%"}},
		{"the service itself", incident(3, func(i int, s *capture.Sample) { s.TopCPU[0].CPUPercent = f64(380) }), nil},
		{"moderate", incident(3, func(i int, s *capture.Sample) { h := hog; h.CPUPercent = f64(150); s.TopCPU = append(s.TopCPU, h) }), nil},
		{"only at the trigger", incident(3, func(i int, s *capture.Sample) {
			if i == 3 {
				s.TopCPU = append(s.TopCPU, hog)
			}
		}), nil},
		{"no cgroup", incident(3, func(i int, s *capture.Sample) { s.Service = nil; s.TopCPU = append(s.TopCPU, hog) }),
			[]string{"may be the service itself"}},
	})
}

func TestOtherMemory(t *testing.T) {
	hog := capture.Process{PID: 999, Name: "java", RSSBytes: 12 * gib}
	runRule(t, OtherMemory, []ruleCase{
		{"neighbour", incident(2, func(i int, s *capture.Sample) { s.TopMemory = append([]capture.Process{hog}, s.TopMemory...) }),
			[]string{"much of the host's memory: java", "PID 999 (java) had 12GiB resident, 75% of 16GiB, at -1.0s"}},
		{"the service itself", incident(2, func(i int, s *capture.Sample) { s.TopMemory[0].RSSBytes = 12 * gib }), nil},
		{"modest", incident(2, func(i int, s *capture.Sample) { h := hog; h.RSSBytes = 2 * gib; s.TopMemory = append(s.TopMemory, h) }), nil},
	})
}

// TestExplain: the rank order, and nothing for a calm incident.
func TestExplain(t *testing.T) {
	if got := Explain(incident(10, nil), Default); len(got) != 0 {
		t.Errorf("calm incident: %+v", got)
	}
	oom := incident(5, func(i int, s *capture.Sample) {
		s.Service.MemoryMaxBytes = u(32 * mib)
		s.Service.MemoryBytes = u(uint64(22+2*i) * mib)
		s.Disks[0].UsedPercent = 99
		if i == 5 {
			s.Service.OOMKills = u(1)
			s.Service.Processes, s.Service.Pids = nil, 0
		}
	})
	var rules []string
	for _, f := range Explain(oom, Default) {
		rules = append(rules, f.Rule)
	}
	if want := "oom-kill memory-limit disk-full processes-vanished"; strings.Join(rules, " ") != want {
		t.Errorf("rules %v, want %s", rules, want)
	}
	seen := map[string]bool{}
	for _, r := range Rules {
		if seen[r.Name] || r.Check == nil {
			t.Errorf("rule %q repeated or empty", r.Name)
		}
		seen[r.Name] = true
	}
}

func TestOffset(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{0, "0s"}, {-500 * time.Microsecond, "0s"}, {-250 * time.Millisecond, "-250ms"}, {1500 * time.Millisecond, "+1.5s"},
		{-12 * time.Second, "-12s"}, {-270 * time.Second, "-4m30s"}, {-3*time.Hour - 5*time.Minute, "-3h05m"},
	} {
		if got := Offset(tc.d); got != tc.want {
			t.Errorf("Offset(%v) = %q, want %q", tc.d, got, tc.want)
		}
	}
	for _, tc := range []struct {
		n    uint64
		want string
	}{
		{0, "0B"}, {1023, "1023B"}, {1536, "1.5KiB"}, {10 * mib, "10MiB"}, {10200 * 1024, "10MiB"}, {3 * gib / 2, "1.5GiB"},
	} {
		if got := Bytes(tc.n); got != tc.want {
			t.Errorf("Bytes(%d) = %q, want %q", tc.n, got, tc.want)
		}
	}
}

// TestServiceUnseen: a failure whose sample has no service says so, with
// the capture's reason, and no rule claims anything of the service.
func TestServiceUnseen(t *testing.T) {
	in := incident(5, func(i int, s *capture.Sample) {
		if i >= 3 {
			s.Service = nil
		}
	})
	in.ServiceMissing = "systemd has no unit redis.service (load state not-found)"
	got := Explain(in, Default)
	if len(got) == 0 || got[0].Rule != "service-unseen" || !slices.Contains(got[0].Evidence, in.ServiceMissing) {
		t.Fatalf("findings %+v, want service-unseen first with the reason", got)
	}
	if f := ServiceUnseen(incident(5, nil), Default); f != nil {
		t.Errorf("service seen: %+v", f)
	}
}
