package recorder

import (
	"bytes"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/preflight-rec/preflight/recorder/capture"
	"github.com/preflight-rec/preflight/recorder/sample"
)

// heavySample is a sample as large as a busy host makes it: full top lists
// of processes with the longest command lines kept, 16 filesystems, and a
// service of 10 processes with long command lines.
func heavySample(at time.Time, top int) capture.Sample {
	u := func(v uint64) *uint64 { return &v }
	f := func(v float64) *float64 { return &v }
	proc := func(i, cmdline int) capture.Process {
		return capture.Process{PID: 4000000 + i, Name: "kworker/u256:12", Cmdline: strings.Repeat("c", cmdline-len("…")) + "…",
			State: "R", CPUPercent: f(199.99), RSSBytes: 1 << 40, Threads: 1024}
	}
	s := capture.Sample{At: at,
		CPU:       capture.CPU{Percent: f(99.99), User: f(33.33), System: f(33.33), IOWait: f(11.11), Steal: f(11.11), CPUs: 256, WindowSeconds: f(86400.123456)},
		Trigger:   "health",
		Load:      capture.Load{Load1: 1234.56, Load5: 1234.56, Load15: 1234.56},
		Memory:    capture.Memory{TotalBytes: 1 << 42, AvailableBytes: 1 << 41, UsedPercent: 50.05, SwapTotalBytes: 1 << 40, SwapUsedBytes: 1 << 39},
		Pressure:  &capture.Pressure{CPUSomeAvg10: 99.99, MemorySomeAvg10: 99.99, MemoryFullAvg10: 99.99, IOSomeAvg10: 99.99, IOFullAvg10: 99.99},
		Processes: 4000000,
		Service: &capture.Service{Cgroup: "/system.slice/" + strings.Repeat("s", 64) + ".service",
			MemoryBytes: u(1 << 40), MemoryMaxBytes: u(1 << 40), MemoryPeakBytes: u(1 << 40), SwapBytes: u(1 << 40), OOMKills: u(1 << 20),
			CPUUsageUsec: u(1 << 50), CPUPercent: f(12345.678901234), CPUThrottledUsec: u(1 << 50), Pids: 4000000, Tasks: u(1 << 22), PidsMax: u(1 << 22),
			Pressure: &capture.Pressure{CPUSomeAvg10: 99.99, MemorySomeAvg10: 99.99, MemoryFullAvg10: 99.99, IOSomeAvg10: 99.99, IOFullAvg10: 99.99}},
	}
	for i := range 16 {
		s.Disks = append(s.Disks, capture.Disk{Mount: "/srv/" + strings.Repeat("m", 40) + fmt.Sprint(i), Device: "/dev/mapper/" + strings.Repeat("d", 30),
			FSType: "ext4", TotalBytes: 1 << 50, UsedBytes: 1 << 49, UsedPercent: 50.05, InodesUsedPercent: 50.05})
	}
	for i := range top {
		s.TopCPU = append(s.TopCPU, proc(i, sample.MaxTopCmdline))
		s.TopMemory = append(s.TopMemory, proc(i, sample.MaxTopCmdline))
	}
	for i := range 10 {
		s.Service.Processes = append(s.Service.Processes, proc(i, sample.MaxCmdline))
	}
	return s
}

// TestLargestSettings: the largest configurations start accepts make
// captures the readers read, whole, even when every sample is heavy; one
// more sample in the ring is refused with an error naming the bound.
func TestLargestSettings(t *testing.T) {
	for _, top := range []int{maxTop, 5, 0} {
		most := maxSampleUnits / (top + sampleBase)
		environ := []string{"PREFLIGHT_SERVICE=big", "PREFLIGHT_HEALTH_URL=http://127.0.0.1:9/", "PREFLIGHT_INTERVAL_SECONDS=0.05",
			fmt.Sprintf("PREFLIGHT_TOP_PROCESSES=%d", top)}
		if _, err := ConfigFromEnv(append(environ, fmt.Sprintf("PREFLIGHT_BUFFER_SAMPLES=%d", most))); err != nil {
			t.Fatalf("the largest settings are refused: %v", err)
		}
		_, err := ConfigFromEnv(append(environ, fmt.Sprintf("PREFLIGHT_BUFFER_SAMPLES=%d", most+1)))
		want := fmt.Sprintf("PREFLIGHT_BUFFER_SAMPLES: %d samples with TOP_PROCESSES %d make captures larger than the readers take (16 MiB): at most %d (", most+1, top, most)
		if err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("one more sample: %v, want %q…", err, want)
		}
		// The heaviest capture: the ring and 20 triggers, every sample heavy.
		heavy := heavySample(time.Now(), top)
		c := capture.Capture{Schema: capture.Schema, Service: "big", Triggers: make([]capture.Trigger, maxTriggers)}
		for range most + maxTriggers {
			c.Samples = append(c.Samples, heavy)
		}
		for range most {
			c.Health = append(c.Health, capture.Check{At: heavy.At, Error: "timeout after 50ms", LatencyMS: 50.123, StatusCode: 503})
		}
		data, err := capture.Encode(&c)
		if err != nil {
			t.Fatal(err)
		}
		if len(data) > capture.MaxFileSize || bytes.Contains(data, []byte(`"samples_omitted"`)) {
			t.Errorf("top %d, buffer %d: the heaviest capture, %d bytes, lost samples", top, most, len(data))
		}
		t.Logf("top %d, buffer %d: the heaviest capture is %d bytes (limit %d)", top, most, len(data), capture.MaxFileSize)
	}

	// The recorder at the largest settings: a ring of heavy samples, then a
	// trigger; 'last' reads the file it wrote (capture.Files, capture.Read).
	top := maxTop
	most := maxSampleUnits / (top + sampleBase)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	r := newTestRecorder(t, func(c *Config) { c.IntervalSeconds, c.BufferSamples, c.TopProcesses = 0.05, most, top })
	t0 := time.Now()
	for i := range most {
		r.samples.push(heavySample(t0.Add(time.Duration(i)*50*time.Millisecond), top))
		r.checks.push(capture.Check{At: t0, Error: "timeout after 50ms", LatencyMS: 50.123, StatusCode: 503})
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	r.onTrigger(trigger{kind: capture.TriggerExit, at: time.Now(), detail: "cgroup emptied"})
	path, got := readOnly(t, r)
	if got.SamplesOmitted != 0 || len(got.Samples) != most+1 || len(got.Triggers) != 1 {
		t.Errorf("%s: %d samples (%d omitted), %d triggers; want %d, none, 1", path, len(got.Samples), got.SamplesOmitted, len(got.Triggers), most+1)
	}
	t.Logf("top %d, buffer %d: a ring of heavy samples takes %.1f MiB of heap", top, most,
		float64(after.HeapAlloc-min(before.HeapAlloc, after.HeapAlloc))/(1<<20))
}

// TestHeavierHostThinned: a host heavier than the bound assumes (a
// service of 2000 processes) still gets captures the readers read, without
// their oldest samples.
func TestHeavierHostThinned(t *testing.T) {
	const buffer = 14 // of samples over 1 MiB each: more than 16 MiB
	r := newTestRecorder(t, func(c *Config) { c.BufferSamples, c.TopProcesses = buffer, 5 })
	s := heavySample(time.Now(), 5)
	for len(s.Service.Processes) < 2000 {
		s.Service.Processes = append(s.Service.Processes, s.Service.Processes[0])
	}
	for range buffer {
		r.samples.push(s)
	}
	r.onTrigger(trigger{kind: capture.TriggerHealth, at: time.Now(), detail: "HTTP 503"})
	_, got := readOnly(t, r)
	if got.SamplesOmitted == 0 || len(got.Samples)+got.SamplesOmitted != buffer+1 || got.Samples[len(got.Samples)-1].Service != nil {
		t.Errorf("%d samples, %d omitted: want the oldest omitted and the trigger's sample kept", len(got.Samples), got.SamplesOmitted)
	}
}
