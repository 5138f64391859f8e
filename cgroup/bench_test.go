package cgroup

import (
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/preflight-rec/preflight/cgroup/cgrouptest"
)

// BenchmarkPollOnce measures one look of the watcher (cgroup.procs, plus the
// OOM counter) at a cgroup holding one process: a real one made on this
// machine where possible, else a fixture on tmpfs. It reports the CPU time
// per look (user + system, from getrusage) and what the default 50 ms
// cadence costs per second of running.
func BenchmarkPollOnce(b *testing.B) {
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
	w := f.NewWatcher(Target{Path: path}, WatchOptions{})
	b.Cleanup(w.detach)
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

// cpuTime is the process's CPU time so far, user plus system.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
