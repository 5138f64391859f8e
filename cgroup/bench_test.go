package cgroup

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/preflight-rec/preflight/cgroup/cgrouptest"
)

// benchCgroup is the cgroup of the look benchmarks: a real one holding one
// process where this machine allows, else a fixture on tmpfs.
func benchCgroup(b *testing.B) (*FS, string) {
	var f *FS
	var path string
	if os.Geteuid() == 0 {
		if rf, err := NewFS("/sys/fs/cgroup"); err == nil && rf.v2 != "" {
			if dir := filepath.Join(rf.v2, "preflight-bench-probe"); os.Mkdir(dir, 0o755) == nil {
				_ = os.Remove(dir)
				f = rf
			}
		}
	}
	if f != nil {
		cg := newRealCgroup(b, f)
		p := cgrouptest.StartSleep(b)
		cg.Move(b, p.PID)
		path = cg.Path
		b.Logf("real cgroup %s (%v layout, OOM counter in %s)", path, f.Layout(), map[bool]string{true: "v1 memory", false: "v2"}[cg.V1Memory != ""])
	} else {
		root := b.TempDir()
		writeTree(b, root, map[string]string{
			"cgroup.controllers":      "memory\n",
			"x.service/cgroup.procs":  strconv.Itoa(os.Getpid()) + "\n",
			"x.service/memory.events": "oom 0\noom_kill 0\n",
		})
		var err error
		if f, err = NewFS(root); err != nil {
			b.Fatal(err)
		}
		path = "/x.service"
		b.Logf("fixture cgroup on tmpfs: no real cgroup could be made here")
	}
	return f, path
}

// BenchmarkPollOnce measures one look of the watcher (cgroup.procs, plus the
// OOM counter) at a cgroup holding one process: a real one made on this
// machine where possible, else a fixture on tmpfs. It reports the CPU time
// per look (user + system, from getrusage) and what the default 50 ms
// cadence costs per second of running.
func BenchmarkPollOnce(b *testing.B) {
	f, path := benchCgroup(b)
	w := f.NewWatcher(Target{Path: path}, WatchOptions{})
	b.Cleanup(w.stop)
	w.setPath(path)
	w.look()
	if len(w.PIDs()) != 1 || w.cur.oomFile == "" {
		b.Fatalf("look sees pids %v, oom file %q", w.PIDs(), w.cur.oomFile)
	}
	before := cpuTime(b)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		w.look()
	}
	b.StopTimer()
	perLook := float64(cpuTime(b)-before) / float64(b.N) / float64(time.Microsecond)
	b.ReportMetric(perLook, "cpu-µs/look")
	b.ReportMetric(perLook*float64(time.Second/DefaultPoll), "cpu-µs/s@50ms")
}

// BenchmarkNotifiedLook is the look of a wake-up by a notification (a
// process exited, the cgroup's files changed, the v1 OOM eventfd): the
// cgroup's evidence read first, then the look, on the cgroup of
// BenchmarkPollOnce; at most one such read per 10 ms (minEvidenceGap).
func BenchmarkNotifiedLook(b *testing.B) {
	f, path := benchCgroup(b)
	w := f.NewWatcher(Target{Path: path}, WatchOptions{})
	b.Cleanup(w.stop)
	w.setPath(path)
	w.look()
	before := cpuTime(b)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		w.lastEvAt = time.Time{} // no read of the last 10 ms to reuse
		w.lookNotified()
	}
	b.StopTimer()
	b.ReportMetric(float64(cpuTime(b)-before)/float64(b.N)/float64(time.Microsecond), "cpu-µs/look")
}

// cpuTime is the process's CPU time so far, user plus system.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// idleWindow is how long BenchmarkWatcherIdle measures each watcher.
var idleWindow = flag.Duration("idle-window", 5*time.Second, "BenchmarkWatcherIdle: the measuring window of each run")

// BenchmarkWatcherIdle measures what an idle watcher costs as a process of
// its own: the test binary re-executed (watchHelper) runs a Watcher on a
// real cgroup holding one sleep, lets it settle for a second, then reports
// its CPU time (user + system, getrusage(RUSAGE_SELF) deltas) and context
// switches over -idle-window. Two such processes run side by side: one
// with the default options (event-driven, a look every Safety = 1 s) and
// one with Safety = Poll = 50 ms, which looks as often as the watcher did
// before pidfds and the v1 OOM eventfd. Reported per second of running:
// cpu-µs/s and switches/s (context switches, about one per wake-up) for
// each.
func BenchmarkWatcherIdle(b *testing.B) {
	f := realFS(b)
	cg := newRealCgroup(b, f)
	p := cgrouptest.StartSleep(b)
	cg.Move(b, p.PID)
	type result struct{ cpu, switches float64 }
	run := func(safety time.Duration, out chan<- result) {
		cmd := exec.Command(os.Args[0], "-test.run=^$", "-test.bench=^$")
		cmd.Env = append(os.Environ(), helperEnv+"=watch", "PREFLIGHT_WATCH_PATH="+cg.Path,
			"PREFLIGHT_WATCH_SAFETY="+safety.String(), "PREFLIGHT_WATCH_WINDOW="+idleWindow.String())
		o, err := cmd.Output()
		if err != nil {
			b.Errorf("watch helper (safety %v): %v", safety, err)
			out <- result{}
			return
		}
		var r result
		var window float64
		if _, err := fmt.Sscanf(string(o), "cpu_ns=%g switches=%g window_ns=%g", &r.cpu, &r.switches, &window); err != nil {
			b.Errorf("watch helper (safety %v) printed %q: %v", safety, o, err)
		}
		out <- result{r.cpu / window * 1e6, r.switches / window * 1e9}
	}
	var events, polled result
	for range b.N {
		ce, cp := make(chan result, 1), make(chan result, 1)
		go run(0, ce)
		go run(DefaultPoll, cp)
		e, p := <-ce, <-cp
		events.cpu += e.cpu / float64(b.N)
		events.switches += e.switches / float64(b.N)
		polled.cpu += p.cpu / float64(b.N)
		polled.switches += p.switches / float64(b.N)
	}
	b.ReportMetric(events.cpu, "cpu-µs/s")
	b.ReportMetric(events.switches, "switches/s")
	b.ReportMetric(polled.cpu, "cpu-µs/s@50ms")
	b.ReportMetric(polled.switches, "switches/s@50ms")
	b.ReportMetric(0, "ns/op")
}

// watchHelper is the process BenchmarkWatcherIdle measures: it watches the
// cgroup PREFLIGHT_WATCH_PATH with Safety PREFLIGHT_WATCH_SAFETY (0: the
// default) and prints its own CPU time and context switches over
// PREFLIGHT_WATCH_WINDOW, after a second of settling.
func watchHelper() int {
	safety, err1 := time.ParseDuration(os.Getenv("PREFLIGHT_WATCH_SAFETY"))
	window, err2 := time.ParseDuration(os.Getenv("PREFLIGHT_WATCH_WINDOW"))
	f, err3 := NewFS("/sys/fs/cgroup")
	if err := errors.Join(err1, err2, err3); err != nil {
		fmt.Fprintln(os.Stderr, "watch helper:", err)
		return 2
	}
	w := f.NewWatcher(Target{Path: os.Getenv("PREFLIGHT_WATCH_PATH")}, WatchOptions{Safety: safety})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	go func() {
		for range w.Events() {
		}
	}()
	<-w.Ready()
	time.Sleep(time.Second)
	var r0, r1 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &r0)
	t0 := time.Now()
	time.Sleep(window)
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &r1)
	elapsed := time.Since(t0)
	cancel()
	if err := <-done; err != nil {
		fmt.Fprintln(os.Stderr, "watch helper:", err)
		return 1
	}
	cpu := r1.Utime.Nano() + r1.Stime.Nano() - r0.Utime.Nano() - r0.Stime.Nano()
	switches := r1.Nvcsw + r1.Nivcsw - r0.Nvcsw - r0.Nivcsw
	fmt.Printf("cpu_ns=%d switches=%d window_ns=%d\n", cpu, switches, elapsed.Nanoseconds())
	return 0
}

// BenchmarkStats measures one reading of a cgroup's whole evidence, as a
// recorder's sample takes it, at the cgroup of BenchmarkPollOnce: fresh
// opens (FS.Stats, as at an event) against the files a Tracer holds
// (Tracer.Stats, as at every sample).
func BenchmarkStats(b *testing.B) {
	f, path := benchCgroup(b)
	tr := f.NewTracer()
	b.Cleanup(tr.Close)
	for _, c := range []struct {
		name string
		read func() (Stats, error)
	}{
		{"opened", func() (Stats, error) { return f.Stats(path) }},
		{"held", func() (Stats, error) { return tr.Stats(path) }},
	} {
		b.Run(c.name, func(b *testing.B) {
			if st, err := c.read(); err != nil || st.CPUUsageUsec == nil {
				b.Fatalf("%+v, %v", st, err)
			}
			before := cpuTime(b)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if _, err := c.read(); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(cpuTime(b)-before)/float64(b.N)/float64(time.Microsecond), "cpu-µs/read")
		})
	}
}
