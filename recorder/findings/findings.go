// Package findings explains an incident: a few small rules over a capture's
// samples, each of which names one fact that most likely explains the
// failure, with its evidence (numbers and the times of the samples they come
// from, relative to the failure).
//
// # Contract
//
// [Explain] runs every rule of [Rules], in order, and returns the findings
// that fired, in that order: the order is the rank, most telling first (an
// OOM kill before memory at its limit, before a full disk, before a busy
// neighbour…). An empty result means nothing in the samples stands out, and
// the reader should say so.
//
// Every rule is a pure function of an [Incident] and the [Thresholds]: no
// clock, no files, no environment. Every number a rule compares against is a
// field of [Thresholds]; [Default] holds the values preflight uses.
// docs/readers.md lists the rules, their thresholds and their rank.
//
// The samples follow the capture's semantics (docs/capture-format.md): the
// ring before the first trigger (At before [Incident.Failure]), then one
// sample per trigger. Every rule looks at the change nearest the failure,
// never at an earlier incident's: when the ring holds a sample taken at an
// earlier incident's trigger (a crash loop), [FromCapture] leaves out that
// sample and every one before it ([Scene]). Rates (CPU percents) are
// null where their window was too short (capture.MinRateWindow); rules
// about CPU use only the samples before the failure, and never a null rate.
package findings

import (
	"fmt"
	"slices"
	"time"

	"github.com/preflight-rec/preflight/recorder/capture"
)

// Finding is one fact about an incident.
type Finding struct {
	Rule     string   `json:"rule"`     // the rule's stable name, e.g. "oom-kill"
	Summary  string   `json:"summary"`  // one line
	Evidence []string `json:"evidence"` // short lines with numbers and sample times
}

// Incident is what the rules look at.
type Incident struct {
	Samples  []capture.Sample  // oldest first: this incident's scene (see [Scene])
	Failure  time.Time         // the incident's first trigger
	Triggers []capture.Trigger // oldest first
	Checks   []capture.Check   // the health history, oldest first
	Systemd  *capture.Systemd  // systemd's view of the unit; nil without it
	Interval float64           // the recorder's interval in seconds; 0 when unknown
	// ServiceMissing is why samples lack the service (the capture's
	// service_missing), "" when it was seen.
	ServiceMissing string
	// KernelLog is what the kernel logged about the service (the
	// capture's kernel_log), oldest first.
	KernelLog []capture.KernelLine
	// Trace is the service's fine trace (the capture's service_trace) over
	// this incident's scene, oldest first; nil without one.
	Trace []capture.TracePoint
}

// FromCapture returns the incident of a capture: its scene, without the
// samples of an earlier incident.
func FromCapture(c *capture.Capture) Incident {
	scene := Scene(c)
	trace := c.ServiceTrace
	if scene > 0 { // not the earlier incident's readings either
		from := c.Samples[scene-1].At
		trace = slices.DeleteFunc(slices.Clone(trace), func(p capture.TracePoint) bool { return !p.At.After(from) })
	}
	kernel := c.KernelLog
	if scene < len(c.Samples) { // nor the kernel's lines of earlier runs (an earlier OOM kill of the same cgroup)
		from := c.Samples[scene].At.Add(-kernelSkew)
		kernel = slices.DeleteFunc(slices.Clone(kernel), func(l capture.KernelLine) bool { return l.At.Before(from) })
	}
	return Incident{Samples: c.Samples[scene:], Failure: c.TransitionTime, Triggers: c.Triggers,
		Checks: c.Health, Systemd: c.Systemd, Interval: c.IntervalSeconds, ServiceMissing: c.ServiceMissing,
		KernelLog: kernel, Trace: trace}
}

// kernelSkew is how far before the scene's first sample a kernel line may
// be stamped and still count for the incident: the kernel's clock
// (local_clock) drifts from the recorder's by tens of milliseconds.
const kernelSkew = 250 * time.Millisecond

// Scene returns the index of the first sample of c that belongs to this
// incident: the one after the last sample taken, before the failure, at an
// earlier incident's trigger (0 when the ring holds none). Those samples
// tell the story of the earlier incident, not this one.
//
// A sample says it was taken at a trigger (its "trigger" field). In a
// capture from before that field, where no sample says so, a sample before
// the failure that follows the previous one by less than half the interval
// is taken for one: the recorder samples on its interval, and once more at
// a trigger.
func Scene(c *capture.Capture) int {
	marked := slices.ContainsFunc(c.Samples, func(s capture.Sample) bool { return s.Trigger != "" })
	start := 0
	for i := range c.Samples {
		s := &c.Samples[i]
		if !s.At.Before(c.TransitionTime) {
			break
		}
		earlier := s.Trigger != ""
		if !marked && i > 0 && c.IntervalSeconds > 0 {
			gap := s.At.Sub(c.Samples[i-1].At).Seconds()
			earlier = gap >= 0 && gap < c.IntervalSeconds/2
		}
		if earlier {
			start = i + 1
		}
	}
	return start
}

// Thresholds are every number the rules compare against. Percentages are
// 0–100.
type Thresholds struct {
	// memory-limit: the service's memory at or above NearLimitPercent of its
	// cgroup limit, or rising by ClimbPercent of the limit over the samples
	// to at least ClimbEndPercent.
	MemoryNearLimitPercent float64
	MemoryClimbPercent     float64
	MemoryClimbEndPercent  float64

	// memory-growth (a service without a memory limit): its memory grew
	// GrowthFactor-fold and by at least GrowthMinBytes, rising in at least
	// GrowthSteadyPercent of the steps between samples.
	MemoryGrowthFactor        float64
	MemoryGrowthMinBytes      uint64
	MemoryGrowthSteadyPercent float64

	// host-memory: the host's memory used_percent at or above this.
	HostMemoryUsedPercent float64

	// swap: swap used at or above SwapUsedPercent of the swap space, or
	// growing by SwapGrowthPercent of it over the samples.
	SwapUsedPercent   float64
	SwapGrowthPercent float64

	// disk-full, inodes-full: a filesystem's bytes or inodes used at or
	// above these.
	DiskUsedPercent   float64
	InodesUsedPercent float64

	// cpu-throttle: the service's cgroup throttled for at least this share
	// of the wall time between two samples.
	ThrottledPercent float64

	// load: load1 at or above LoadPerCPU times the number of CPUs.
	LoadPerCPU float64

	// memory-pressure, io-pressure: "some" avg10 (host or the service's
	// cgroup) at or above these, in percent of wall time.
	MemoryPressurePercent float64
	IOPressurePercent     float64

	// processes-multiplied: the service's process count grew
	// ProcessesFactor-fold and by at least ProcessesMinIncrease.
	ProcessesFactor      float64
	ProcessesMinIncrease int

	// other-cpu, other-memory: one process outside the service using at
	// least this share of all CPUs (before the failure) or of the host's
	// memory.
	OtherCPUPercent    float64
	OtherMemoryPercent float64

	// processes-stuck: a process of the service stopped (T), in
	// uninterruptible sleep (D) or a zombie (Z) in each of the last
	// StuckSamples samples up to the failure.
	StuckSamples int

	// health-latency: the successful checks' latency before the failure
	// rose LatencyFactor-fold and by LatencyMinMS from the fastest of the
	// first half, rising in LatencySteadyPercent of the steps after it.
	LatencyFactor        float64
	LatencyMinMS         float64
	LatencySteadyPercent float64

	// restart-loop: systemd restarted the unit at least RestartLoopRestarts
	// times (NRestarts), or the incident saw at least RestartLoopExits exit
	// triggers.
	RestartLoopRestarts int
	RestartLoopExits    int

	// fds-limit: a service process with at least this share of its soft
	// RLIMIT_NOFILE open.
	FDsPercent float64

	// page-cache-limit: at the memory limit (MemoryNearLimitPercent), page
	// cache (file less shmem) at least this share of the memory, and more
	// than anonymous memory.
	PageCachePercent float64

	// pressure-stall: the trace's memory pressure (some avg10) at or above
	// MemoryPressurePercent within StallSeconds before the failure.
	StallSeconds float64

	// trace-growth: the trace's memory rising (never falling) in at least
	// TraceGrowthPoints readings in a row up to the failure, by at least
	// TraceGrowthMinBytes.
	TraceGrowthPoints   int
	TraceGrowthMinBytes uint64
}

// Default are the thresholds preflight uses.
var Default = Thresholds{
	MemoryNearLimitPercent: 90,
	MemoryClimbPercent:     25,
	MemoryClimbEndPercent:  60,

	MemoryGrowthFactor:        2,
	MemoryGrowthMinBytes:      64 << 20,
	MemoryGrowthSteadyPercent: 75,

	HostMemoryUsedPercent: 95,

	SwapUsedPercent:   80,
	SwapGrowthPercent: 10,

	DiskUsedPercent:   95,
	InodesUsedPercent: 95,

	ThrottledPercent: 10,

	LoadPerCPU: 2,

	MemoryPressurePercent: 10,
	IOPressurePercent:     20,

	ProcessesFactor:      3,
	ProcessesMinIncrease: 10,

	OtherCPUPercent:    50,
	OtherMemoryPercent: 30,

	StuckSamples: 2,

	LatencyFactor:        3,
	LatencyMinMS:         100,
	LatencySteadyPercent: 60,

	RestartLoopRestarts: 3,
	RestartLoopExits:    3,

	FDsPercent: 95,

	PageCachePercent: 50,

	StallSeconds: 10,

	TraceGrowthPoints:   5,
	TraceGrowthMinBytes: 16 << 20,
}

// Rule is one named rule. Check returns nil when the rule does not fire.
type Rule struct {
	Name  string
	Check func(Incident, Thresholds) *Finding
}

// Rules are every rule, in rank order.
var Rules = []Rule{
	{"service-unseen", ServiceUnseen},
	{"core-dump", CoreDump},
	{"segfault", Segfault},
	{"oom-kill", OOMKill},
	{"oom-victim", OOMVictim},
	{"fds-limit", FDsAtLimit},
	{"processes-stuck", ProcessesStuck},
	{"page-cache-limit", PageCacheLimit},
	{"memory-limit", MemoryLimit},
	{"trace-growth", TraceGrowth},
	{"pressure-stall", PressureStall},
	{"host-memory", HostMemory},
	{"disk-full", DiskFull},
	{"inodes-full", InodesFull},
	{"swap", Swap},
	{"memory-growth", MemoryGrowth},
	{"memory-pressure", MemoryPressure},
	{"io-pressure", IOPressure},
	{"cpu-throttle", CPUThrottle},
	{"load", Load},
	{"processes-multiplied", ProcessesMultiplied},
	{"other-cpu", OtherCPU},
	{"other-memory", OtherMemory},
	{"health-latency", HealthLatency},
	{"restart-loop", RestartLoop},
	{"processes-vanished", ProcessesVanished},
}

// Explain runs every rule over in and returns the findings, ranked.
func Explain(in Incident, th Thresholds) []Finding {
	var out []Finding
	for _, r := range Rules {
		if f := r.Check(in, th); f != nil {
			f.Rule = r.Name
			out = append(out, *f)
		}
	}
	return out
}

// ShortWindow reports whether the rates of sample i of ss rest on too short
// a window to be told. A sample that states its window (cpu.window_seconds)
// does when that is below capture.MinRateWindow (the recorder never writes
// one: it computes rates over a longer window or leaves them null). In a
// capture from before that field, a sample taken less than half the
// interval (intervalSeconds) and less than MinRateWindow after the previous
// one does: the sample at a trigger, milliseconds after a tick.
func ShortWindow(ss []capture.Sample, i int, intervalSeconds float64) bool {
	s := &ss[i]
	if s.CPU.WindowSeconds != nil {
		return *s.CPU.WindowSeconds < capture.MinRateWindow.Seconds()
	}
	if i == 0 {
		return false
	}
	limit := capture.MinRateWindow
	if intervalSeconds > 0 {
		limit = min(limit, time.Duration(intervalSeconds/2*float64(time.Second)))
	}
	return s.At.Sub(ss[i-1].At) < limit
}

// rated reports whether the rates of s, one of in.Samples, may be told:
// not over too short a window (ShortWindow).
func (in Incident) rated(s *capture.Sample) bool {
	for i := range in.Samples {
		if &in.Samples[i] == s {
			return !ShortWindow(in.Samples, i, in.Interval)
		}
	}
	return false
}

// rel formats the time of t relative to the failure.
func (in Incident) rel(t time.Time) string { return Offset(t.Sub(in.Failure)) }

// before returns the samples taken before the failure.
func (in Incident) before() []capture.Sample {
	n := 0
	for n < len(in.Samples) && in.Samples[n].At.Before(in.Failure) {
		n++
	}
	return in.Samples[:n]
}

// lastBefore returns the last sample before the failure, or nil.
func (in Incident) lastBefore() *capture.Sample {
	if pre := in.before(); len(pre) > 0 {
		return &pre[len(pre)-1]
	}
	return nil
}

// Offset formats a time relative to the failure compactly: -4m30s, -1.2s,
// -250ms, 0s, +1.5s. Offsets within a millisecond of the failure are 0s.
func Offset(d time.Duration) string {
	sign := "+"
	if d < 0 {
		sign, d = "-", -d
	}
	switch {
	case d < time.Millisecond:
		return "0s"
	case d < time.Second:
		return fmt.Sprintf("%s%dms", sign, d.Milliseconds())
	case d < 10*time.Second:
		return fmt.Sprintf("%s%.1fs", sign, d.Seconds())
	case d < time.Minute:
		return fmt.Sprintf("%s%ds", sign, int(d.Round(time.Second).Seconds()))
	case d < time.Hour:
		d = d.Round(time.Second)
		return fmt.Sprintf("%s%dm%02ds", sign, int(d.Minutes()), int(d.Seconds())%60)
	default:
		d = d.Round(time.Minute)
		return fmt.Sprintf("%s%dh%02dm", sign, int(d.Hours()), int(d.Minutes())%60)
	}
}

// Bytes formats a byte count with a binary unit: 512B, 1.5KiB, 120MiB.
func Bytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%dB", n)
	}
	v, i := float64(n), -1
	for v >= unit && i < 4 {
		v /= unit
		i++
	}
	suffix := []string{"KiB", "MiB", "GiB", "TiB", "PiB"}[i]
	if v < 9.95 {
		return fmt.Sprintf("%.1f%s", v, suffix)
	}
	return fmt.Sprintf("%.0f%s", v, suffix)
}

// Duration formats a span compactly: 450ms, 2.5s, 4m30s.
func Duration(d time.Duration) string {
	s := Offset(d)
	if s[0] == '+' {
		return s[1:]
	}
	return s
}

// pct formats a percentage: 91%, 9.5%, 0.4%, 99.9%.
func pct(v float64) string {
	if v >= 99.5 && v < 100 {
		return fmt.Sprintf("%.1f%%", v) // not "100%" while it is not
	}
	if v >= 9.95 || v == 0 {
		return fmt.Sprintf("%.0f%%", v)
	}
	return fmt.Sprintf("%.1f%%", v)
}

// procName names a process for evidence: "PID 123 (java)".
func procName(p capture.Process) string {
	return fmt.Sprintf("PID %d (%s)", p.PID, p.Name)
}
