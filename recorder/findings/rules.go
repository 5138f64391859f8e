package findings

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/preflight-rec/preflight/recorder/capture"
)

// ServiceUnseen fires when the sample at the failure has no service: its
// cgroup was not seen (no such unit, no cgroup found), so nothing can be
// said of its OOM kills, memory or processes, and no reader may claim
// their absence.
func ServiceUnseen(in Incident, _ Thresholds) *Finding {
	at := in.atFailure()
	if at == nil || at.Service != nil {
		return nil
	}
	f := &Finding{Summary: "The service's cgroup was not seen: its OOM kills, memory and processes are unknown"}
	if in.ServiceMissing != "" {
		f.Evidence = append(f.Evidence, in.ServiceMissing)
	}
	seen := 0
	for i := range in.Samples {
		if in.Samples[i].Service != nil {
			seen++
		}
	}
	f.Evidence = append(f.Evidence, fmt.Sprintf("%d of %d samples show the service", seen, len(in.Samples)))
	return f
}

// OOMKill fires when the service cgroup's OOM kill counter rose during the
// capture, or an "oom" trigger says so. A counter already above zero at the
// first sample, and never rising, is old history and does not fire. When it
// rose more than once, the rise nearest the failure is the one told.
func OOMKill(in Incident, th Thresholds) *Finding {
	var before, after, last *capture.Sample
	best := time.Duration(math.MaxInt64)
	// In order, but a count on the kernel's word (an oom trigger's sample:
	// a copy of its exit's, just before it) after the exit's read.
	order := make([]*capture.Sample, len(in.Samples))
	for i := range in.Samples {
		order[i] = &in.Samples[i]
	}
	for i := 0; i+1 < len(order); i++ {
		a, b := order[i], order[i+1]
		if a.Service != nil && slices.Contains(a.Service.FromKernelLog, capture.FieldOOMKills) && a.At.Equal(b.At) &&
			(b.Service == nil || len(b.Service.FromKernelLog) == 0) {
			order[i], order[i+1] = b, a
			i++
		}
	}
	for _, s := range order {
		if s.Service == nil || s.Service.OOMKills == nil {
			continue
		}
		if last != nil && *s.Service.OOMKills > *last.Service.OOMKills {
			if d := in.distance(last.At, s.At); d < best {
				best, before, after = d, last, s
			}
		}
		last = s
	}
	var trig *capture.Trigger
	for i := range in.Triggers {
		if in.Triggers[i].Kind == capture.TriggerOOM {
			trig = &in.Triggers[i]
			break
		}
	}
	if before == nil && trig == nil {
		return nil
	}
	f := &Finding{Summary: "The kernel OOM-killed a process in the service's cgroup"}
	if before != nil {
		n := *after.Service.OOMKills - *before.Service.OOMKills
		if n > 1 {
			f.Summary = fmt.Sprintf("The kernel OOM-killed %d processes in the service's cgroup", n)
		}
		f.Evidence = append(f.Evidence, fmt.Sprintf("oom_kills %d at %s → %d at %s%s", *before.Service.OOMKills,
			in.rel(before.At), *after.Service.OOMKills, in.rel(after.At), kernelSaid(after.Service, capture.FieldOOMKills)))
	}
	if trig != nil {
		f.Evidence = append(f.Evidence, fmt.Sprintf("trigger oom at %s: %s", in.rel(trig.At), trig.Detail))
	}
	if before == nil { // the trigger alone: the samples around it
		before, after = in.lastBefore(), in.atFailure()
	}
	if before != nil && before.Service != nil {
		if m := memoryOf(before.Service); m != "" {
			f.Evidence = append(f.Evidence, fmt.Sprintf("memory %s at %s", m, in.rel(before.At)))
		}
	}
	if last != nil && last.Service.MemoryPeakBytes != nil && last.Service.MemoryMaxBytes != nil {
		peak, max := *last.Service.MemoryPeakBytes, *last.Service.MemoryMaxBytes
		if max > 0 && float64(peak) >= float64(max)*th.MemoryNearLimitPercent/100 {
			f.Evidence = append(f.Evidence, fmt.Sprintf("high-water mark %s, limit %s%s", Bytes(peak), Bytes(max),
				kernelSaid(last.Service, capture.FieldMemoryPeakBytes)))
		}
	}
	if before != nil && after != nil && before.Service != nil {
		gone := goneProcesses(before.Service.Processes, after.Service)
		if len(gone) > 0 {
			p := gone[0]
			line := fmt.Sprintf("%s, %s resident at %s, is gone at %s", procName(p), Bytes(p.RSSBytes),
				in.rel(before.At), in.rel(after.At))
			if len(gone) > 1 {
				line += fmt.Sprintf(" (and %d more)", len(gone)-1)
			}
			f.Evidence = append(f.Evidence, line)
		}
	}
	return f
}

// kernelSaid marks a value of svc the kernel's log reported rather than a
// read of the cgroup: " (the kernel's log)", else "".
func kernelSaid(svc *capture.Service, field string) string {
	if slices.Contains(svc.FromKernelLog, field) {
		return " (the kernel's log)"
	}
	return ""
}

// goneProcesses returns the processes of ps absent from svc, largest
// resident memory first.
func goneProcesses(ps []capture.Process, svc *capture.Service) []capture.Process {
	now := map[int]bool{}
	if svc != nil {
		for _, p := range svc.Processes {
			now[p.PID] = true
		}
	}
	var gone []capture.Process
	for _, p := range ps {
		if !now[p.PID] {
			gone = append(gone, p)
		}
	}
	sort.SliceStable(gone, func(i, j int) bool { return gone[i].RSSBytes > gone[j].RSSBytes })
	return gone
}

// memoryOf describes a cgroup's memory: "31MiB of its 32MiB limit (97%)",
// or "31MiB, no limit"; "" when unknown.
func memoryOf(s *capture.Service) string {
	if s.MemoryBytes == nil {
		return ""
	}
	if s.MemoryMaxBytes == nil || *s.MemoryMaxBytes == 0 {
		return Bytes(*s.MemoryBytes) + ", no limit"
	}
	return fmt.Sprintf("%s of its %s limit (%s)", Bytes(*s.MemoryBytes), Bytes(*s.MemoryMaxBytes),
		pct(100*float64(*s.MemoryBytes)/float64(*s.MemoryMaxBytes)))
}

// atFailure returns the first sample at or after the failure, or nil.
func (in Incident) atFailure() *capture.Sample {
	if n := len(in.before()); n < len(in.Samples) {
		return &in.Samples[n]
	}
	return nil
}

// memPoint is the service's memory in one sample.
type memPoint struct {
	at        time.Time
	used, max uint64 // max 0: no limit
}

func (p memPoint) pct() float64 { return 100 * float64(p.used) / float64(p.max) }

// serviceMemory returns the samples' service memory, where known; limited
// selects the samples with a limit (true) or without one (false).
func serviceMemory(in Incident, limited bool) []memPoint {
	var out []memPoint
	for _, s := range in.Samples {
		if s.Service == nil || s.Service.MemoryBytes == nil {
			continue
		}
		has := s.Service.MemoryMaxBytes != nil && *s.Service.MemoryMaxBytes > 0
		if has != limited {
			continue
		}
		p := memPoint{at: s.At, used: *s.Service.MemoryBytes}
		if has {
			p.max = *s.Service.MemoryMaxBytes
		}
		out = append(out, p)
	}
	return out
}

// peakOf returns the index of the largest used value (the first of equals).
func peakOf(ps []memPoint) int {
	best := 0
	for i, p := range ps {
		if p.used > ps[best].used {
			best = i
		}
	}
	return best
}

// rate describes the growth from a to b: "+5.0MiB/s"; "" without growth.
func rate(a, b memPoint) (string, float64) {
	dt := b.at.Sub(a.at).Seconds()
	if dt <= 0 || b.used <= a.used {
		return "", 0
	}
	r := float64(b.used-a.used) / dt
	return "+" + Bytes(uint64(r)) + "/s", r
}

// MemoryLimit fires when the service's memory reached
// MemoryNearLimitPercent of its cgroup limit, or climbed by
// MemoryClimbPercent of the limit to at least MemoryClimbEndPercent.
func MemoryLimit(in Incident, th Thresholds) *Finding {
	ps := serviceMemory(in, true)
	if len(ps) == 0 {
		return nil
	}
	first, peak := ps[0], ps[peakOf(ps)]
	near := peak.pct() >= th.MemoryNearLimitPercent
	climb := peak.pct() >= th.MemoryClimbEndPercent && peak.pct()-first.pct() >= th.MemoryClimbPercent
	if !near && !climb {
		return nil
	}
	f := &Finding{Summary: "The service's memory rose toward its cgroup limit"}
	if near {
		f.Summary = fmt.Sprintf("The service's memory reached %s of its cgroup limit", pct(peak.pct()))
	}
	if peak.at.After(first.at) {
		f.Evidence = append(f.Evidence, fmt.Sprintf("%s (%s) at %s → %s (%s) at %s, limit %s",
			Bytes(first.used), pct(first.pct()), in.rel(first.at), Bytes(peak.used), pct(peak.pct()), in.rel(peak.at), Bytes(peak.max)))
	} else {
		f.Evidence = append(f.Evidence, fmt.Sprintf("%s (%s) at %s, limit %s", Bytes(peak.used), pct(peak.pct()), in.rel(peak.at), Bytes(peak.max)))
	}
	if r, v := rate(first, peak); r != "" {
		line := "growing " + r
		if !near && peak.used < peak.max {
			eta := time.Duration(float64(peak.max-peak.used) / v * float64(time.Second))
			line += fmt.Sprintf(": at that rate the limit is %s away", Duration(eta))
		}
		f.Evidence = append(f.Evidence, line)
	}
	return f
}

// MemoryGrowth fires when a service without a memory limit grew its
// memory MemoryGrowthFactor-fold and by MemoryGrowthMinBytes, rising in
// MemoryGrowthSteadyPercent of the steps up to its peak.
func MemoryGrowth(in Incident, th Thresholds) *Finding {
	ps := serviceMemory(in, false)
	if len(ps) < 2 {
		return nil
	}
	first, pi := ps[0], peakOf(ps)
	peak := ps[pi]
	if pi == 0 || peak.used-first.used < th.MemoryGrowthMinBytes ||
		float64(peak.used) < th.MemoryGrowthFactor*float64(first.used) {
		return nil
	}
	rising := 0
	for i := 1; i <= pi; i++ {
		if ps[i].used >= ps[i-1].used {
			rising++
		}
	}
	if 100*float64(rising) < th.MemoryGrowthSteadyPercent*float64(pi) {
		return nil
	}
	f := &Finding{Summary: "The service's memory grew steadily (it has no memory limit)"}
	f.Evidence = append(f.Evidence, fmt.Sprintf("%s at %s → %s at %s, rising in %d of %d intervals",
		Bytes(first.used), in.rel(first.at), Bytes(peak.used), in.rel(peak.at), rising, pi))
	if r, _ := rate(first, peak); r != "" {
		f.Evidence = append(f.Evidence, "growing "+r)
	}
	return f
}

// firstPeak returns, of the samples that have a value, the first and the one
// with the largest value (the earliest of equals); nil, nil when none has one.
func firstPeak[T cmp.Ordered](samples []capture.Sample, has func(*capture.Sample) bool, value func(*capture.Sample) T) (first, peak *capture.Sample) {
	for i := range samples {
		s := &samples[i]
		if !has(s) {
			continue
		}
		if first == nil {
			first = s
		}
		if peak == nil || value(s) > value(peak) {
			peak = s
		}
	}
	return first, peak
}

// HostMemory fires when the host's memory used_percent reached
// HostMemoryUsedPercent.
func HostMemory(in Incident, th Thresholds) *Finding {
	first, peak := firstPeak(in.Samples,
		func(s *capture.Sample) bool { return s.Memory.TotalBytes != 0 },
		func(s *capture.Sample) float64 { return s.Memory.UsedPercent })
	if peak == nil || peak.Memory.UsedPercent < th.HostMemoryUsedPercent {
		return nil
	}
	f := &Finding{Summary: "The host ran out of memory"}
	m := peak.Memory
	line := fmt.Sprintf("%s available of %s (%s used) at %s", Bytes(m.AvailableBytes), Bytes(m.TotalBytes),
		pct(m.UsedPercent), in.rel(peak.At))
	if first != peak {
		line += fmt.Sprintf("; %s used at %s", pct(first.Memory.UsedPercent), in.rel(first.At))
	}
	f.Evidence = append(f.Evidence, line)
	if len(peak.TopMemory) > 0 {
		p := peak.TopMemory[0]
		f.Evidence = append(f.Evidence, fmt.Sprintf("largest process: %s, %s resident", procName(p), Bytes(p.RSSBytes)))
	}
	return f
}

// Swap fires when swap use reached SwapUsedPercent of the swap space, or
// grew by SwapGrowthPercent of it.
func Swap(in Incident, th Thresholds) *Finding {
	first, peak := firstPeak(in.Samples,
		func(s *capture.Sample) bool { return s.Memory.SwapTotalBytes != 0 },
		func(s *capture.Sample) uint64 { return s.Memory.SwapUsedBytes })
	if peak == nil {
		return nil
	}
	used := func(s *capture.Sample) float64 {
		return 100 * float64(s.Memory.SwapUsedBytes) / float64(s.Memory.SwapTotalBytes)
	}
	full := used(peak) >= th.SwapUsedPercent
	growing := used(peak)-used(first) >= th.SwapGrowthPercent
	if !full && !growing {
		return nil
	}
	f := &Finding{Summary: "Swap was filling"}
	if full {
		f.Summary = "Swap was almost full"
	}
	line := fmt.Sprintf("%s of %s swap used (%s) at %s", Bytes(peak.Memory.SwapUsedBytes),
		Bytes(peak.Memory.SwapTotalBytes), pct(used(peak)), in.rel(peak.At))
	if first != peak {
		line += fmt.Sprintf("; %s at %s", Bytes(first.Memory.SwapUsedBytes), in.rel(first.At))
	}
	f.Evidence = append(f.Evidence, line)
	return f
}

// DiskFull fires when a filesystem's bytes used reached DiskUsedPercent.
func DiskFull(in Incident, th Thresholds) *Finding {
	full := fullDisks(in, th.DiskUsedPercent, func(d capture.Disk) float64 { return d.UsedPercent })
	if len(full) == 0 {
		return nil
	}
	f := &Finding{Summary: fmt.Sprintf("A filesystem was almost full: %s at %s", full[0].peak.Mount, pct(full[0].peak.UsedPercent))}
	if len(full) > 1 {
		f.Summary = fmt.Sprintf("%d filesystems were almost full", len(full))
	}
	for _, d := range full {
		p := d.peak
		line := fmt.Sprintf("%s (%s on %s): %s used, %s free of %s at %s", p.Mount, p.FSType, p.Device,
			pct(p.UsedPercent), Bytes(sub(p.TotalBytes, p.UsedBytes)), Bytes(p.TotalBytes), in.rel(d.peakAt))
		if d.firstAt != d.peakAt {
			line += fmt.Sprintf("; %s at %s", pct(d.first.UsedPercent), in.rel(d.firstAt))
		}
		f.Evidence = append(f.Evidence, line)
	}
	return f
}

// InodesFull fires when a filesystem's inodes used reached
// InodesUsedPercent.
func InodesFull(in Incident, th Thresholds) *Finding {
	full := fullDisks(in, th.InodesUsedPercent, func(d capture.Disk) float64 { return d.InodesUsedPercent })
	if len(full) == 0 {
		return nil
	}
	f := &Finding{Summary: fmt.Sprintf("A filesystem ran out of inodes: %s at %s", full[0].peak.Mount, pct(full[0].peak.InodesUsedPercent))}
	if len(full) > 1 {
		f.Summary = fmt.Sprintf("%d filesystems ran out of inodes", len(full))
	}
	for _, d := range full {
		line := fmt.Sprintf("%s (%s on %s): %s of inodes used at %s", d.peak.Mount, d.peak.FSType, d.peak.Device,
			pct(d.peak.InodesUsedPercent), in.rel(d.peakAt))
		if d.firstAt != d.peakAt {
			line += fmt.Sprintf("; %s at %s", pct(d.first.InodesUsedPercent), in.rel(d.firstAt))
		}
		f.Evidence = append(f.Evidence, line)
	}
	return f
}

// diskSeries is one mount across the samples.
type diskSeries struct {
	first, peak     capture.Disk
	firstAt, peakAt time.Time
}

// fullDisks returns the mounts whose value reached limit, fullest first.
func fullDisks(in Incident, limit float64, value func(capture.Disk) float64) []diskSeries {
	byMount := map[string]*diskSeries{}
	var order []string
	for _, s := range in.Samples {
		for _, d := range s.Disks {
			if d.TotalBytes == 0 {
				continue
			}
			ds := byMount[d.Mount]
			if ds == nil {
				ds = &diskSeries{first: d, peak: d, firstAt: s.At, peakAt: s.At}
				byMount[d.Mount] = ds
				order = append(order, d.Mount)
			} else if value(d) > value(ds.peak) {
				ds.peak, ds.peakAt = d, s.At
			}
		}
	}
	var out []diskSeries
	for _, m := range order {
		if ds := byMount[m]; value(ds.peak) >= limit {
			out = append(out, *ds)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return value(out[i].peak) > value(out[j].peak) })
	return out
}

func sub(a, b uint64) uint64 {
	if b > a {
		return 0
	}
	return a - b
}

// MemoryPressure fires when memory "some" pressure (avg10) of the host or
// of the service's cgroup reached MemoryPressurePercent.
func MemoryPressure(in Incident, th Thresholds) *Finding {
	return pressure(in, th.MemoryPressurePercent, "memory",
		func(p *capture.Pressure) (float64, float64) { return p.MemorySomeAvg10, p.MemoryFullAvg10 })
}

// IOPressure fires when I/O "some" pressure (avg10) of the host or of the
// service's cgroup reached IOPressurePercent.
func IOPressure(in Incident, th Thresholds) *Finding {
	f := pressure(in, th.IOPressurePercent, "I/O",
		func(p *capture.Pressure) (float64, float64) { return p.IOSomeAvg10, p.IOFullAvg10 })
	if f == nil {
		return nil
	}
	var peak *capture.Sample
	for i := range in.before() {
		if s := &in.Samples[i]; s.CPU.IOWait != nil && in.rated(s) && (peak == nil || *s.CPU.IOWait > *peak.CPU.IOWait) {
			peak = s
		}
	}
	if peak != nil && *peak.CPU.IOWait > 0 {
		f.Evidence = append(f.Evidence, fmt.Sprintf("CPU iowait %s at %s", pct(*peak.CPU.IOWait), in.rel(peak.At)))
	}
	return f
}

func pressure(in Incident, limit float64, what string, get func(*capture.Pressure) (some, full float64)) *Finding {
	type peak struct {
		some, full float64
		at         time.Time
		ok         bool
	}
	var host, svc peak
	for _, s := range in.Samples {
		if s.Pressure != nil {
			if some, full := get(s.Pressure); !host.ok || some > host.some {
				host = peak{some, full, s.At, true}
			}
		}
		if s.Service != nil && s.Service.Pressure != nil {
			if some, full := get(s.Service.Pressure); !svc.ok || some > svc.some {
				svc = peak{some, full, s.At, true}
			}
		}
	}
	hostHit, svcHit := host.ok && host.some >= limit, svc.ok && svc.some >= limit
	if !hostHit && !svcHit {
		return nil
	}
	f := &Finding{Summary: fmt.Sprintf("Tasks stalled waiting for %s", what)}
	if svcHit {
		f.Evidence = append(f.Evidence, fmt.Sprintf("the service's cgroup: %s pressure some %s, full %s (avg10) at %s",
			what, pct(svc.some), pct(svc.full), in.rel(svc.at)))
	}
	if hostHit {
		f.Evidence = append(f.Evidence, fmt.Sprintf("the host: %s pressure some %s, full %s (avg10) at %s",
			what, pct(host.some), pct(host.full), in.rel(host.at)))
	}
	return f
}

// CPUThrottle fires when, between two samples before the failure, the
// service's cgroup was throttled by its CPU quota for ThrottledPercent of
// the time.
func CPUThrottle(in Incident, th Thresholds) *Finding {
	pre := in.before()
	var (
		worst            float64
		wa, wb           *capture.Sample
		total, totalWall time.Duration
	)
	var prev *capture.Sample
	for i := range pre {
		s := &pre[i]
		if s.Service == nil || s.Service.CPUThrottledUsec == nil {
			continue
		}
		if prev != nil && *s.Service.CPUThrottledUsec >= *prev.Service.CPUThrottledUsec {
			wall := s.At.Sub(prev.At)
			thr := time.Duration(*s.Service.CPUThrottledUsec-*prev.Service.CPUThrottledUsec) * time.Microsecond
			total += thr
			totalWall += wall
			if wall > 0 {
				if r := 100 * float64(thr) / float64(wall); r > worst {
					worst, wa, wb = r, prev, s
				}
			}
		}
		prev = s
	}
	if wa == nil || worst < th.ThrottledPercent {
		return nil
	}
	f := &Finding{Summary: "The service was throttled by its CPU quota"}
	thr := time.Duration(*wb.Service.CPUThrottledUsec-*wa.Service.CPUThrottledUsec) * time.Microsecond
	f.Evidence = append(f.Evidence, fmt.Sprintf("throttled %s of the %s from %s to %s (%s)",
		Duration(thr), Duration(wb.At.Sub(wa.At)), in.rel(wa.At), in.rel(wb.At), pct(math.Min(worst, 100))))
	if totalWall > wb.At.Sub(wa.At) {
		f.Evidence = append(f.Evidence, fmt.Sprintf("throttled %s of the %s before the failure", Duration(total), Duration(totalWall)))
	}
	return f
}

// Load fires when load1 reached LoadPerCPU times the number of CPUs at the
// failure: in the last sample before it or the one taken at it. A load that
// was high earlier and fell is not this failure's.
func Load(in Incident, th Thresholds) *Finding {
	var peak *capture.Sample
	for _, s := range []*capture.Sample{in.lastBefore(), in.atFailure()} {
		if s != nil && s.CPU.CPUs > 0 && (peak == nil || s.Load.Load1/float64(s.CPU.CPUs) > peak.Load.Load1/float64(peak.CPU.CPUs)) {
			peak = s
		}
	}
	if peak == nil || peak.Load.Load1 < th.LoadPerCPU*float64(peak.CPU.CPUs) {
		return nil
	}
	f := &Finding{Summary: "The host's load was far above its CPU count"}
	line := fmt.Sprintf("load1 %.1f on %d CPUs at %s", peak.Load.Load1, peak.CPU.CPUs, in.rel(peak.At))
	if first := &in.Samples[0]; first != peak && first.CPU.CPUs > 0 {
		line += fmt.Sprintf("; %.1f at %s", first.Load.Load1, in.rel(first.At))
	}
	f.Evidence = append(f.Evidence, line)
	// CPU figures only from the last sample before the failure: the one
	// at the failure may cover milliseconds.
	if s := in.lastBefore(); s != nil && s.CPU.Percent != nil && in.rated(s) {
		line := fmt.Sprintf("host CPU %s busy", pct(*s.CPU.Percent))
		if s.CPU.IOWait != nil {
			line += fmt.Sprintf(", iowait %s", pct(*s.CPU.IOWait))
		}
		f.Evidence = append(f.Evidence, line+" at "+in.rel(s.At))
	}
	return f
}

// ProcessesMultiplied fires when the service's process count grew
// ProcessesFactor-fold and by ProcessesMinIncrease.
func ProcessesMultiplied(in Incident, th Thresholds) *Finding {
	first, peak := firstPeak(in.Samples,
		func(s *capture.Sample) bool { return s.Service != nil },
		func(s *capture.Sample) int { return s.Service.Pids })
	if peak == nil {
		return nil
	}
	a, b := first.Service.Pids, peak.Service.Pids
	if b-a < th.ProcessesMinIncrease || float64(b) < th.ProcessesFactor*float64(max(a, 1)) {
		return nil
	}
	f := &Finding{Summary: "The service's processes multiplied"}
	f.Evidence = append(f.Evidence, fmt.Sprintf("%d processes at %s → %d at %s", a, in.rel(first.At), b, in.rel(peak.At)))
	if name, n := commonest(peak.Service.Processes); n > 1 {
		f.Evidence = append(f.Evidence, fmt.Sprintf("%d of them named %s", n, name))
	}
	return f
}

// commonest returns the most common process name in ps and its count.
func commonest(ps []capture.Process) (string, int) {
	count := map[string]int{}
	best, n := "", 0
	for _, p := range ps {
		count[p.Name]++
		if c := count[p.Name]; c > n || c == n && p.Name < best {
			best, n = p.Name, c
		}
	}
	return best, n
}

// ProcessesVanished fires when the service's processes all vanished (its
// cgroup emptied) or were all replaced between two samples.
// When that happened more than once, the change nearest the failure is the
// one told.
func ProcessesVanished(in Incident, th Thresholds) *Finding {
	var prev, a, b *capture.Sample
	var gone []capture.Process
	best := time.Duration(math.MaxInt64)
	for i := range in.Samples {
		s := &in.Samples[i]
		if s.Service == nil {
			continue
		}
		if prev != nil && len(prev.Service.Processes) > 0 {
			g := goneProcesses(prev.Service.Processes, s.Service)
			if d := in.distance(prev.At, s.At); len(g) == len(prev.Service.Processes) && d < best {
				best, a, b, gone = d, prev, s, g
			}
		}
		prev = s
	}
	if a == nil {
		return nil
	}
	return vanished(in, a, b, gone)
}

// distance is how far the change between samples at a and b lies from the
// failure: 0 when they straddle it.
func (in Incident) distance(a, b time.Time) time.Duration {
	switch {
	case b.Before(in.Failure):
		return in.Failure.Sub(b)
	case a.After(in.Failure):
		return a.Sub(in.Failure)
	}
	return 0
}

func vanished(in Incident, prev, s *capture.Sample, gone []capture.Process) *Finding {
	f := &Finding{Summary: "The service's processes vanished"}
	if len(s.Service.Processes) > 0 {
		f.Summary = "The service's processes were all replaced"
	}
	f.Evidence = append(f.Evidence, fmt.Sprintf("%d at %s → %d at %s, none of them the same", len(prev.Service.Processes),
		in.rel(prev.At), len(s.Service.Processes), in.rel(s.At)))
	if len(s.Service.Processes) == 0 {
		f.Evidence[0] = fmt.Sprintf("%d at %s → none at %s", len(prev.Service.Processes), in.rel(prev.At), in.rel(s.At))
	}
	var names []string
	for i, p := range gone {
		if i == 3 {
			names = append(names, fmt.Sprintf("%d more", len(gone)-3))
			break
		}
		names = append(names, procName(p))
	}
	f.Evidence = append(f.Evidence, "gone: "+strings.Join(names, ", "))
	for _, t := range in.Triggers {
		if t.Kind == capture.TriggerExit {
			f.Evidence = append(f.Evidence, fmt.Sprintf("trigger exit at %s: %s", in.rel(t.At), t.Detail))
			break
		}
	}
	return f
}

// servicePIDs returns the PIDs of the service's processes in s, and whether
// the sample knows them.
func servicePIDs(s *capture.Sample) (map[int]bool, bool) {
	if s.Service == nil {
		return nil, false
	}
	m := map[int]bool{}
	for _, p := range s.Service.Processes {
		m[p.PID] = true
	}
	return m, true
}

// OtherCPU fires when, in the last sample before the failure, one process
// outside the service used OtherCPUPercent of all CPUs.
func OtherCPU(in Incident, th Thresholds) *Finding {
	s := in.lastBefore()
	if s == nil || !in.rated(s) {
		return nil
	}
	cpus := max(s.CPU.CPUs, 1)
	svc, known := servicePIDs(s)
	var hog *capture.Process
	for i, p := range s.TopCPU {
		if !svc[p.PID] && p.CPUPercent != nil && (hog == nil || *p.CPUPercent > *hog.CPUPercent) {
			hog = &s.TopCPU[i]
		}
	}
	if hog == nil || *hog.CPUPercent/float64(cpus) < th.OtherCPUPercent {
		return nil
	}
	f := &Finding{Summary: fmt.Sprintf("Another process dominated the CPU: %s", hog.Name)}
	f.Evidence = append(f.Evidence, fmt.Sprintf("%s used %s CPU (%s of %d CPUs) at %s", procName(*hog),
		pct(*hog.CPUPercent), pct(*hog.CPUPercent/float64(cpus)), cpus, in.rel(s.At)))
	line := "host CPU - busy"
	if s.CPU.Percent != nil {
		line = fmt.Sprintf("host CPU %s busy", pct(*s.CPU.Percent))
	}
	if known && s.Service.CPUPercent != nil {
		line += fmt.Sprintf(", the service %s", pct(*s.Service.CPUPercent))
	}
	if !known {
		line += " (the capture has no cgroup for the service: this may be the service itself)"
	}
	f.Evidence = append(f.Evidence, line)
	return f
}

// OtherMemory fires when, in the last sample before the failure (else the
// last one), one process outside the service held OtherMemoryPercent of the
// host's memory.
func OtherMemory(in Incident, th Thresholds) *Finding {
	s := in.lastBefore()
	if s == nil && len(in.Samples) > 0 {
		s = &in.Samples[len(in.Samples)-1]
	}
	if s == nil || s.Memory.TotalBytes == 0 {
		return nil
	}
	svc, known := servicePIDs(s)
	var hog *capture.Process
	for i, p := range s.TopMemory {
		if !svc[p.PID] && (hog == nil || p.RSSBytes > hog.RSSBytes) {
			hog = &s.TopMemory[i]
		}
	}
	if hog == nil {
		return nil
	}
	share := 100 * float64(hog.RSSBytes) / float64(s.Memory.TotalBytes)
	if share < th.OtherMemoryPercent {
		return nil
	}
	f := &Finding{Summary: fmt.Sprintf("Another process held much of the host's memory: %s", hog.Name)}
	line := fmt.Sprintf("%s had %s resident, %s of %s, at %s", procName(*hog), Bytes(hog.RSSBytes), pct(share),
		Bytes(s.Memory.TotalBytes), in.rel(s.At))
	if !known {
		line += " (the capture has no cgroup for the service: this may be the service itself)"
	}
	f.Evidence = append(f.Evidence, line)
	return f
}
