package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/preflight-rec/preflight/bench/internal/kit"
)

// The goals of issue 7 (and the latency goal of issue 3).
const (
	goalFloorFactor  = 1.5
	goalAtopFraction = 5
	goalRSSMiB       = 16
	goalCaptureKiB   = 64
	goalLatency      = 100 * time.Millisecond
	goalIdlePercent  = 0.05 // issue 16: an idle recorder at the defaults, one `sleep`
	goalWholePercent = 0.1  // issue 14: the whole recorder at the defaults, a service of 10 processes
	goalScaleFactor  = 1.5  // 20 services in one process vs one (issue 16)
	defaultInterval  = 30.0
)

type machine struct {
	cpus                     int
	model, kernel, os        string
	memGiB                   float64
	preflight, atop, sysstat string
}

func describeMachine(c config) machine {
	m := machine{cpus: runtime.NumCPU()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.model = strings.TrimSpace(v)
				break
			}
		}
	}
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		m.kernel = unix.ByteSliceToString(u.Release[:])
	}
	if b, err := os.ReadFile("/etc/os-release"); err == nil {
		for line := range strings.Lines(string(b)) {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), "PRETTY_NAME="); ok {
				m.os = strings.Trim(v, `"`)
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		if kb, ok := kit.KeyedValue(b, "MemTotal"); ok {
			m.memGiB = float64(kb) / (1 << 20)
		}
	}
	m.preflight = firstLine(c.preflight, "version")
	m.atop = firstLine(c.atop, "-V")
	m.sysstat = firstLine(c.sadc, "-V")
	return m
}

// firstLine is the first line a command prints (stdout and stderr).
func firstLine(bin string, args ...string) string {
	out, _ := exec.Command(bin, args...).CombinedOutput()
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return strings.TrimSpace(line)
}

type results struct {
	cfg     config
	machine machine
	started time.Time
	pops    []*popResult
	idle    []kit.IdleCost
	idle30  []kit.IdleCost // measured at the default interval
	scale   []kit.IdleCost // 1 vs 20 services
	// scaleProcs is the host's processes during the scale run.
	scaleProcs int
}

// cost returns the named subject's cost.
func cost(cs []kit.IdleCost, name string) (kit.IdleCost, bool) {
	for _, c := range cs {
		if c.Name == name {
			return c, true
		}
	}
	return kit.IdleCost{}, false
}

// toolSummary is one tool's medians over the repetitions.
type toolSummary struct {
	cpu            time.Duration
	ticksMS        float64
	hwmKiB         float64
	wchar, storage float64
	captureBytes   float64
	captureSamples float64
}

func (p *popResult) tool(name string) toolSummary {
	var cpu, ticks, hwm, wchar, storage, cb, cs []float64
	for _, rep := range p.reps {
		for _, t := range rep {
			if t.Tool != name {
				continue
			}
			cpu = append(cpu, float64(t.CPUPerSample))
			ticks = append(ticks, t.TicksPerSample*10)
			hwm = append(hwm, float64(t.HWMKiB))
			wchar = append(wchar, t.WcharPerSample)
			storage = append(storage, t.StoragePerSample)
			cb = append(cb, float64(t.CaptureBytes))
			cs = append(cs, float64(t.CaptureSamples))
		}
	}
	return toolSummary{
		cpu: time.Duration(kit.Median(cpu)), ticksMS: kit.Median(ticks), hwmKiB: kit.Median(hwm),
		wchar: kit.Median(wchar), storage: kit.Median(storage),
		captureBytes: kit.Median(cb), captureSamples: kit.Median(cs),
	}
}

func (p *popResult) floor() kit.Floors { return medianFloors(p.floors) }

func (p *popResult) warmFloor() kit.Floors { return medianFloors(p.warm) }

func medianFloors(fs []kit.Floors) kit.Floors {
	var st, ss, n []float64
	for _, f := range fs {
		st = append(st, float64(f.Stat))
		ss = append(ss, float64(f.StatStatus))
		n = append(n, float64(f.Procs))
	}
	return kit.Floors{Procs: int(kit.Median(n)), Stat: time.Duration(kit.Median(st)), StatStatus: time.Duration(kit.Median(ss))}
}

// idleAt30 is the recorder's CPU per second at the default interval,
// computed from the idle recorder's cost per second and the cost of one
// sample (the 1 s run's cost per sample less one second of idling).
func (r *results) idleAt30() (perSecond, idle, sample time.Duration, ok bool) {
	found := false
	for _, ic := range r.idle {
		if ic.Name == idleRecorder {
			idle, found = ic.PerSecond, true
		}
	}
	if !found || len(r.pops) == 0 {
		return 0, 0, 0, false
	}
	sample = r.pops[0].tool(kit.ToolPreflight).cpu - idle
	return idle + time.Duration(float64(sample)/defaultInterval), idle, sample, true
}

func (r *results) markdown() string {
	var b bytes.Buffer
	m := r.machine
	c := r.cfg
	if c.scaleOnly {
		fmt.Fprintf(&b, "# The scale run alone (`bench/measure -scale-only`), %s\n\n", r.started.Format("2006-01-02 15:04 UTC"))
		fmt.Fprintf(&b, "**Machine:** %d CPUs (%s), Linux %s.  \n**Tools:** %s.\n\n", m.cpus, m.model, m.kernel, m.preflight)
		b.WriteString(r.scaleSection())
		return b.String()
	}
	fmt.Fprintf(&b, "# Benchmarks\n\n")
	fmt.Fprintf(&b, "Written by `make bench` (`bench/overhead`, which runs `bench/measure`) on %s; the text above the notes marker is regenerated by every run.\n", r.started.Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(&b, "Numbers are one run on one machine: compare runs on the same machine only.\n\n")
	fmt.Fprintf(&b, "**Machine:** %d CPUs (%s), Linux %s, %s, %.1f GiB RAM.  \n", m.cpus, m.model, m.kernel, m.os, m.memGiB)
	fmt.Fprintf(&b, "**Tools:** %s; %s; %s.\n\n", m.preflight, m.atop, m.sysstat)

	b.WriteString(r.goals())
	b.WriteString("\n## Side by side at a 1 s interval\n\n")
	fmt.Fprintf(&b, "preflight's recorder (`preflight start`, interval 1 s, default ring of 20 and top 5, watching a service cgroup that holds one `sleep`, health checks against a loopback server), `atop -w FILE 1 N` and `sadc -S DISK 1 N FILE` (Debian's default sadc options), run at the same time, each in a cgroup of its own, started ⅓ s apart so that their samples do not compete for the CPUs. Each tool's window holds exactly %d of its samples, after %d samples of warm-up. The floors are taken by the benchmark in the same window, once a second each, at moments when no tool samples. Medians of %d repetitions. The recorder's CPU per sample includes everything it does in a second: the sample, the health check, its state file, and the cgroup watcher's 20 looks (see *Idle cost per second*).\n\n", c.samples, c.warmup, c.reps)
	b.WriteString("| processes | what | CPU per sample | peak RSS | written per sample | to storage per sample |\n")
	b.WriteString("|---:|---|---:|---:|---:|---:|\n")
	for _, p := range r.pops {
		f := p.floor()
		for _, t := range []struct{ name, label string }{
			{kit.ToolPreflight, "preflight"},
			{kit.ToolAtop, "atop -w"},
			{kit.ToolSadc, "sadc -S DISK"},
		} {
			s := p.tool(t.name)
			fmt.Fprintf(&b, "| %s | %s | %s | %.1f MiB | %s | %s |\n", procs(p.procs), t.label, dur(s.cpu), s.hwmKiB/1024, size(s.wchar), size(s.storage))
		}
		w := p.warmFloor()
		fmt.Fprintf(&b, "| %s | floor: every /proc/PID/stat once | %s (warm: %s) | | | |\n", procs(f.Procs), dur(f.Stat), dur(w.Stat))
		fmt.Fprintf(&b, "| %s | floor: every /proc/PID/stat and status once | %s (warm: %s) | | | |\n", procs(f.Procs), dur(f.StatStatus), dur(w.StatStatus))
	}
	b.WriteString("\n")

	b.WriteString("## Exit trigger → durable capture\n\n")
	b.WriteString("One recorder (interval 1 s) watches a cgroup (cgroup2 and v1 memory) holding one `sleep`; each run puts a fresh `sleep` in, waits 250 ms (five of the watcher's 50 ms looks), sends it SIGKILL and times, from just before kill(2): *detected*, the watcher's look that saw the cgroup empty (the trigger's `at` in the capture); *renamed*, the capture's name appearing in the directory (inotify IN_MOVED_TO); *durable*, the recorder's `capture written` log line read by the benchmark, which the recorder logs after fsync(file), rename and fsync(dir). The next run waits for the recorder's `incident over` (a healthy check that started after the trigger), so every run is a fresh incident with a file of its own; the recorder is not restarted. The capture directory is on the root file system (ext4), not tmpfs.\n\n")
	b.WriteString("| processes | runs | detected: median / worst | renamed: median / worst | durable: median / worst |\n")
	b.WriteString("|---:|---:|---:|---:|---:|\n")
	for _, p := range r.pops {
		l := p.latency
		if len(l.Durable) == 0 {
			continue
		}
		fmt.Fprintf(&b, "| %s | %d | %s | %s | %s |\n", procs(p.procs), len(l.Durable), medWorst(l.Detected), medWorst(l.Renamed), medWorst(l.Durable))
	}
	b.WriteString("\n")

	if perSecond, idle, sample, ok := r.idleAt30(); ok {
		b.WriteString("## Idle cost per second\n\n")
		fmt.Fprintf(&b, "Measured side by side, each in its own cgroup, over %d windows of %v after 3 s of start-up; medians. The watcher wakes on its notifications (inotify on `cgroup.events`, pidfds, the OOM eventfd) and looks every second besides (WatchOptions.Safety); WatchOptions.Poll, its cadence where notifications do not cover the cgroup (default 50 ms), changes nothing here. It runs here in a process of its own (`bench/measure child watch`), watching a cgroup that holds one `sleep`. \"The recorder between samples\" runs with an interval of 86400 s, so it takes no sample in the windows: what is left is its service trace (every second, the default), on whose wake-up the watcher's safety look rides (cgroup.Watcher.Look).\n\n", c.idleWindows, c.idleWindow)
		b.WriteString("| process | CPU per second | of one core |\n|---|---:|---:|\n")
		for _, ic := range r.idle {
			fmt.Fprintf(&b, "| %s | %s | %s |\n", ic.Name, dur(ic.PerSecond), pct(ic.PerSecond))
		}
		if len(r.idle30) > 0 {
			b.WriteString("\nThe recorder at the default interval is measured over minutes below (*Idle at the default interval, measured*); these 10 s windows move more.\n\n")
		} else {
			fmt.Fprintf(&b, "| **the recorder at the default 30 s interval** (computed) | **%s** | **%s** |\n\n", dur(perSecond), pct(perSecond))
			fmt.Fprintf(&b, "Computed, not measured over minutes: the idle recorder's %s per second, plus one sample's cost every 30 s, where a sample costs the 1 s run's CPU per sample at %s processes less one second of idling: %s − %s = %s.\n\n",
				dur(idle), procs(r.pops[0].procs), dur(r.pops[0].tool(kit.ToolPreflight).cpu), dur(idle), dur(sample))
		}
	}

	b.WriteString(r.scaleSection())
	b.WriteString(r.idle30Section())
	b.WriteString("## Capture size\n\n")
	b.WriteString("The capture each side-by-side run ends with: the service's process killed after the ring is full, with the defaults (a ring of 20 samples, top 5), so 21 samples (the ring plus the one taken at the trigger), one process in the service's cgroup, this host's disks.\n\n")
	b.WriteString("| processes | samples | bytes |\n|---:|---:|---:|\n")
	for _, p := range r.pops {
		s := p.tool(kit.ToolPreflight)
		fmt.Fprintf(&b, "| %s | %.0f | %.0f (%.1f KiB) |\n", procs(p.procs), s.captureSamples, s.captureBytes, s.captureBytes/1024)
	}
	b.WriteString("\n## Method\n\n")
	b.WriteString("- CPU time is cgroup2 `cpu.stat` `usage_usec` of the tool's own cgroup (user + system, µs resolution, children and exited threads included), read half an interval after a sample; /proc/PID/stat `utime+stime` (10 ms ticks) is read alongside as a cross-check and printed by the run.\n")
	b.WriteString("- Peak RSS is `VmHWM` of /proc/PID/status, read at the end of the window. *Written* is /proc/PID/io `wchar` (every write(2), sockets included: the recorder's health-check request counts); *to storage* is `write_bytes` (page-cache pages dirtied for the disk).\n")
	b.WriteString("- Floors are measured by the benchmark itself, in the side-by-side window, as CPU time of one thread (CLOCK_THREAD_CPUTIME_ID): list /proc, then open, read and close every PID/stat (and PID/status), one read(2) each; the median of the window's passes, then the median over the repetitions. *Warm* is the same pass five times back to back just before the window (every cache hot): the least a pass can cost, but not what a pass once a second meets.\n")
	b.WriteString("- Windows: atop and sadc can slip a second under load, so their window is bounded by their own records (inotify on their output files) and holds exactly the stated number of samples; the recorder's Go ticker keeps its phase, so its window is bounded half an interval after its ticks. A repetition whose reading came too late to be sure of its window is run again.\n")
	b.WriteString("- This machine is shared: other work runs beside the benchmark, so figures move by some ten per cent between runs; the side-by-side figures of one table row are taken in the same windows and compare fairly.\n")
	fmt.Fprintf(&b, "- Processes: the host's own (about %s here), then %s idle `sleep 3600` processes started by the benchmark and ended by PID.\n", procs(r.pops[0].procs), procs(c.extra))
	b.WriteString("- The Go benchmarks (`go test -bench`, output comparable with benchstat) are printed by `make bench` before this run; they are not repeated here.\n")
	return b.String()
}

func (r *results) goals() string {
	var b bytes.Buffer
	b.WriteString("## Goals\n\n| goal | measured | |\n|---|---|---|\n")
	row := func(goal, measured string, ok bool) {
		v := "met"
		if !ok {
			v = "**missed**"
		}
		fmt.Fprintf(&b, "| %s | %s | %s |\n", goal, measured, v)
	}
	busy := r.pops[len(r.pops)-1]
	pf, atop := busy.tool(kit.ToolPreflight), busy.tool(kit.ToolAtop)
	f := busy.floor()
	n := procs(busy.procs)
	row(fmt.Sprintf("CPU per sample at %s processes ≤ %.1f × the stat-only floor", n, goalFloorFactor),
		fmt.Sprintf("%s vs %.1f × %s = %s (%.2f ×; %.2f × the warm floor)", dur(pf.cpu), goalFloorFactor, dur(f.Stat), dur(time.Duration(goalFloorFactor*float64(f.Stat))), float64(pf.cpu)/float64(f.Stat), float64(pf.cpu)/float64(busy.warmFloor().Stat)),
		float64(pf.cpu) <= goalFloorFactor*float64(f.Stat))
	row(fmt.Sprintf("CPU per sample at %s processes ≤ ⅕ of atop's", n),
		fmt.Sprintf("%s vs %s / 5 = %s (1/%.1f)", dur(pf.cpu), dur(atop.cpu), dur(atop.cpu/goalAtopFraction), float64(atop.cpu)/float64(pf.cpu)),
		pf.cpu*goalAtopFraction <= atop.cpu)
	row(fmt.Sprintf("peak RSS at %s processes below atop's and ≤ %d MiB", n, goalRSSMiB),
		fmt.Sprintf("%.1f MiB vs atop %.1f MiB", pf.hwmKiB/1024, atop.hwmKiB/1024),
		pf.hwmKiB < atop.hwmKiB && pf.hwmKiB <= goalRSSMiB*1024)
	var capMax float64
	for _, p := range r.pops {
		capMax = max(capMax, p.tool(kit.ToolPreflight).captureBytes)
	}
	row(fmt.Sprintf("a default capture (20 samples, top 5) ≤ %d KiB", goalCaptureKiB),
		fmt.Sprintf("%.1f KiB (largest median)", capMax/1024), capMax <= goalCaptureKiB*1024)
	for _, p := range r.pops {
		if len(p.latency.Durable) == 0 {
			continue
		}
		med := time.Duration(kit.Median(kit.Durations(p.latency.Durable)))
		row(fmt.Sprintf("kill -9 → durable capture, median ≤ %v (%s processes, %d runs)", goalLatency, procs(p.procs), len(p.latency.Durable)),
			fmt.Sprintf("median %s, worst %s", dur(med), dur(time.Duration(kit.Max(kit.Durations(p.latency.Durable))))), med <= goalLatency)
	}
	if one, ok := cost(r.scale, scaleOne); ok {
		shared, _ := cost(r.scale, scaleShared)
		apart, _ := cost(r.scale, scaleApart)
		oneBeside, _ := cost(r.scale, scaleOneBeside)
		row(fmt.Sprintf("%d services in one process ≤ %.1f × one service's CPU (%s processes, interval 1 s)", scaleService, goalScaleFactor, procs(r.scaleProcs)),
			fmt.Sprintf("%s vs %s per second (%.2f ×; each further service %s; as %d processes: %.1f ×)", dur(shared.PerSecond), dur(one.PerSecond),
				float64(shared.PerSecond)/float64(one.PerSecond), dur((shared.PerSecond-one.PerSecond)/(scaleService-1)), scaleService, float64(apart.PerSecond)/float64(oneBeside.PerSecond)),
			float64(shared.PerSecond) <= goalScaleFactor*float64(one.PerSecond))
	}
	if ic, ok := cost(r.idle30, idle30); ok {
		row(fmt.Sprintf("idle recorder at the defaults (30 s samples, 1 s trace), one `sleep`, < %.2f %% of one core", goalIdlePercent),
			fmt.Sprintf("%s per second = %s (measured over %v)", dur(ic.PerSecond), pct(ic.PerSecond), time.Duration(len(ic.Windows))*30*time.Second),
			float64(ic.PerSecond)/float64(time.Second)*100 < goalIdlePercent)
		if ten, ok := cost(r.idle30, idle30Ten); ok {
			row(fmt.Sprintf("the whole recorder at the defaults, a service of 10 processes, < %.1f %% of one core", goalWholePercent),
				fmt.Sprintf("%s per second = %s (measured over %v)", dur(ten.PerSecond), pct(ten.PerSecond), time.Duration(len(ten.Windows))*30*time.Second),
				float64(ten.PerSecond)/float64(time.Second)*100 < goalWholePercent)
		}
	} else if perSecond, _, _, ok := r.idleAt30(); ok {
		row(fmt.Sprintf("idle recorder at the default 30 s interval < %.2f %% of one core", goalIdlePercent),
			fmt.Sprintf("%s per second = %s (computed, see below)", dur(perSecond), pct(perSecond)),
			float64(perSecond)/float64(time.Second)*100 < goalIdlePercent)
	}
	return b.String()
}

func procs(n int) string {
	if n < 1000 {
		return fmt.Sprint(n)
	}
	return fmt.Sprintf("%d,%03d", n/1000, n%1000)
}

func dur(d time.Duration) string {
	switch {
	case d >= 10*time.Millisecond:
		return fmt.Sprintf("%.1f ms", ms(d))
	case d >= time.Millisecond:
		return fmt.Sprintf("%.2f ms", ms(d))
	default:
		return fmt.Sprintf("%.0f µs", float64(d)/float64(time.Microsecond))
	}
}

func pct(perSecond time.Duration) string {
	return fmt.Sprintf("%.4f %%", float64(perSecond)/float64(time.Second)*100)
}

func size(b float64) string {
	if b < 1024 {
		return fmt.Sprintf("%.0f B", b)
	}
	return fmt.Sprintf("%.1f KiB", b/1024)
}

func medWorst(ds []time.Duration) string {
	v := kit.Durations(ds)
	return dur(time.Duration(kit.Median(v))) + " / " + dur(time.Duration(kit.Max(v)))
}

// scaleSection is the 1 vs 20 services table.
func (r *results) scaleSection() string {
	if len(r.scale) == 0 {
		return ""
	}
	var b bytes.Buffer
	b.WriteString("## One service or twenty\n\n")
	fmt.Fprintf(&b, "At %s processes, each in a cgroup of its own: one `preflight start --config` recording 1 service and one recording %d, side by side (with `-baseline`, the same two of the baseline binary beside them); each started 1/n s after the one before (n processes in the run), so that their host scans, which follow their start, do not overlap; then, in a second run, %d `preflight start` processes recording one each (as %d instances of the template unit `preflight@` would), beside one service again: their 20 host scans a second would otherwise load the CPUs under the first comparison. Each row's × is against the one service of its own binary and run. Every service: a tcp health check on loopback, interval 1 s, a cgroup holding one `sleep`. CPU time of each cgroup per second of wall time over %d windows of %v after 5 s of start-up; medians, and each window's figure. `go run ./bench/measure -scale-only -baseline OLD_BINARY` runs this alone, to compare two builds.\n\n",
		procs(r.scaleProcs), scaleService, scaleService, scaleService, len(r.scale[0].Windows), r.cfg.scaleWindow)
	b.WriteString("| what | CPU per second | of one core | × one service | windows |\n|---|---:|---:|---:|---|\n")
	for _, c := range r.scale {
		one, _ := cost(r.scale, scaleOne) // each against the one service of its binary and run
		switch {
		case strings.HasSuffix(c.Name, baselineSuffix):
			one, _ = cost(r.scale, scaleOne+baselineSuffix)
		case c.Name == scaleApart || c.Name == scaleOneBeside:
			one, _ = cost(r.scale, scaleOneBeside)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %.2f | %s |\n", c.Name, dur(c.PerSecond), pct(c.PerSecond), float64(c.PerSecond)/float64(one.PerSecond), windows(c.Windows))
	}
	b.WriteString("\n")
	for _, v := range []struct{ suffix, label string }{{"", ""}, {baselineSuffix, " (baseline binary)"}} {
		one, ok1 := cost(r.scale, scaleOne+v.suffix)
		shared, ok2 := cost(r.scale, scaleShared+v.suffix)
		if ok1 && ok2 {
			fmt.Fprintf(&b, "Each further service in one process%s: (%s − %s) / %d = **%s** of CPU per second.  \n", v.label,
				dur(shared.PerSecond), dur(one.PerSecond), scaleService-1, dur((shared.PerSecond-one.PerSecond)/(scaleService-1)))
		}
	}
	b.WriteString("\n")
	return b.String()
}

// idle30Section is the idle run at the default interval.
func (r *results) idle30Section() string {
	if len(r.idle30) == 0 {
		return ""
	}
	var b bytes.Buffer
	b.WriteString("## Idle at the default interval, measured\n\n")
	fmt.Fprintf(&b, "Recorders at their defaults (host samples every 30 s, the service trace every second, a ring of 20, top 5), side by side, each in a cgroup of its own, health checks against a loopback HTTP server, each watching a real cgroup (cgroup2 and v1 memory) that holds one `sleep`; the second one's holds 10 `sleep`s; the third has no cgroup and a unit systemd cannot find (it looks the unit up again every second); the fourth has no trace, the fifth one P; the last line is a Go program that only wakes once a second, the floor of any wake-up here. CPU time of each cgroup (cgroup2 `cpu.stat` `usage_usec`, which counts what v1 `cpuacct.usage` counts) over %d windows of 30 s, after 5 s of start-up, so that each window holds exactly one sample; medians, and each window's figure. `go run ./bench/measure -procs 0 -reps 1 -latency-runs 0` runs it alone, with the rest at the host's processes.\n\n", len(r.idle30[0].Windows))
	b.WriteString("| process | CPU per second | of one core | windows |\n|---|---:|---:|---|\n")
	for _, c := range r.idle30 {
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", c.Name, dur(c.PerSecond), pct(c.PerSecond), windows(c.Windows))
	}
	b.WriteString("\n")
	return b.String()
}

// windows lists each window's CPU per second.
func windows(ws []time.Duration) string {
	parts := make([]string, len(ws))
	for i, w := range ws {
		parts[i] = dur(w)
	}
	return strings.Join(parts, ", ")
}
