package capture

import (
	"fmt"
	"testing"
	"time"
)

// benchCapture is a capture of the default configuration: a ring of 20
// samples plus the one taken at the trigger, top 5, three disks, one
// process in the service's cgroup, 20 health checks.
func benchCapture() *Capture {
	t0 := time.Date(2026, 11, 26, 3, 12, 4, 123456789, time.UTC)
	u := func(v uint64) *uint64 { return &v }
	f := func(v float64) *float64 { return &v }
	proc := func(pid int, name string) Process {
		return Process{
			PID: pid, Name: name, State: "S", CPUPercent: f(12.34), RSSBytes: 123456789, Threads: 17,
			Cmdline: fmt.Sprintf("/usr/lib/%[1]s/%[1]s --config /etc/%[1]s/%[1]s.conf --listen 127.0.0.1:8080 --token <redacted>", name),
		}
	}
	c := &Capture{
		Schema: Schema, Service: "dead-drop", Host: "build-7", HealthURL: "https://example.internal/drop/health",
		Unit: "dead-drop.service", TransitionTime: t0, HealthError: "HTTP 503",
		Triggers:        []Trigger{{Kind: TriggerExit, At: t0, Detail: "cgroup emptied (last pids 48213)"}},
		IntervalSeconds: 30, PreflightVersion: "v1.2.3",
	}
	for i := range 20 {
		c.Health = append(c.Health, Check{At: t0.Add(time.Duration(i-20) * 30 * time.Second), OK: i < 19, LatencyMS: 1.234, StatusCode: 200})
	}
	for i := range 21 {
		s := Sample{
			At:     t0.Add(time.Duration(i-20) * 30 * time.Second),
			CPU:    CPU{Percent: f(42.42), User: f(30.1), System: f(10.2), IOWait: f(2.1), Steal: f(0.01), CPUs: 8},
			Load:   Load{Load1: 1.23, Load5: 1.11, Load15: 0.98},
			Memory: Memory{TotalBytes: 25275297792, AvailableBytes: 24831279104, UsedPercent: 1.76, SwapTotalBytes: 0, SwapUsedBytes: 0},
			Disks: []Disk{
				{Mount: "/", Device: "/dev/vda1", FSType: "ext4", TotalBytes: 270553174016, UsedBytes: 12983197696, UsedPercent: 4.8, InodesUsedPercent: 1.23},
				{Mount: "/boot", Device: "/dev/vda2", FSType: "ext4", TotalBytes: 1023303680, UsedBytes: 123303680, UsedPercent: 12.05, InodesUsedPercent: 0.5},
				{Mount: "/var/lib/postgresql", Device: "/dev/vdb1", FSType: "xfs", TotalBytes: 1099511627776, UsedBytes: 549755813888, UsedPercent: 50, InodesUsedPercent: 3.25},
			},
			Pressure:  &Pressure{CPUSomeAvg10: 1.5, MemorySomeAvg10: 0.25, MemoryFullAvg10: 0.1, IOSomeAvg10: 3.75, IOFullAvg10: 2.5},
			Processes: 2073,
			Service: &Service{
				Cgroup: "/system.slice/dead-drop.service", MemoryBytes: u(134217728), MemoryMaxBytes: u(536870912),
				OOMKills: u(0), CPUUsageUsec: u(123456789), CPUPercent: f(12.5), CPUThrottledUsec: u(0), Pids: 1, Tasks: u(17),
				Processes: []Process{proc(48213, "dead-drop")},
			},
		}
		for j, name := range []string{"postgres", "dead-drop", "java", "node", "nginx"} {
			s.TopCPU = append(s.TopCPU, proc(1000+j, name))
			s.TopMemory = append(s.TopMemory, proc(2000+j, name))
		}
		c.Samples = append(c.Samples, s)
	}
	return c
}

// BenchmarkEncode encodes a capture of the default configuration and
// reports its size.
func BenchmarkEncode(b *testing.B) {
	c := benchCapture()
	var n int
	b.ReportAllocs()
	for b.Loop() {
		data, err := Encode(c)
		if err != nil {
			b.Fatal(err)
		}
		n = len(data)
	}
	b.ReportMetric(float64(n), "bytes/capture")
}
