package recorder

import (
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/preflight-rec/preflight/cgroup/cgrouptest"
	"github.com/preflight-rec/preflight/recorder/capture"
)

// BenchmarkServiceSample is the service's part of one sample: the cgroup's
// processes and its evidence (memory, OOM kills, CPU, pids, pressure), read
// from a real cgroup made on this machine (cgroup2, plus v1 memory on a
// hybrid host) that holds one process.
func BenchmarkServiceSample(b *testing.B) {
	cg := cgrouptest.New(b, "preflight-bench")
	p := cgrouptest.StartSleep(b)
	cg.Move(b, p.PID)
	s := newScope(Config{Service: "bench", Unit: "bench.service", Cgroup: cg.Path}, cgrouptest.Root, zerolog.Nop())
	if s == nil {
		b.Skip("no cgroup file system here")
	}
	procs := []capture.Process{{PID: p.PID, Name: "sleep"}}
	b.ReportAllocs()
	for b.Loop() {
		pids, err := s.tr.Procs(cg.Path)
		if err != nil || len(pids) != 1 {
			b.Fatalf("procs %v, %v; want [%d]", pids, err, p.PID)
		}
		if svc := s.service(cg.Path, time.Now(), procs); svc.MemoryBytes == nil {
			b.Fatalf("service sample without memory: %+v", svc)
		}
	}
}
