package recorder

import (
	"testing"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"

	"github.com/preflight-rec/preflight/cgroup/cgrouptest"
)

// BenchmarkTraceReading is one reading of the service's fine trace (the
// cgroup's cheap evidence and its processes' stat) of a real cgroup holding
// 10 processes. cpu-µs/op is the process's CPU time (user + system, from
// getrusage) per reading: the budget is 200 µs.
func BenchmarkTraceReading(b *testing.B) {
	cg := cgrouptest.New(b, "preflight-bench")
	for range 10 {
		cg.Move(b, cgrouptest.StartSleep(b).PID)
	}
	cfg := Config{Service: "bench", Unit: "bench.service", Cgroup: cg.Path, ServiceIntervalSeconds: 1, TraceSeconds: 120}
	s := newScope(cfg, cgrouptest.Root, zerolog.Nop())
	if s == nil {
		b.Skip("no cgroup file system here")
	}
	tr := newTrace(cfg, s, "/proc", nil)
	b.ReportAllocs()
	var before, after unix.Rusage
	unix.Getrusage(unix.RUSAGE_SELF, &before)
	for b.Loop() {
		if !tr.read(cg.Path, time.Now(), nil) {
			b.Fatal("cgroup not read")
		}
	}
	unix.Getrusage(unix.RUSAGE_SELF, &after)
	if p := tr.points[len(tr.points)-1]; p.Pids != 10 || p.MemoryBytes == nil || p.RSSBytes == 0 {
		b.Fatalf("point %+v: want 10 processes, memory and RSS", p)
	}
	cpu := time.Duration(after.Utime.Nano()-before.Utime.Nano()) + time.Duration(after.Stime.Nano()-before.Stime.Nano())
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/op")
}
