package sample

import (
	"os/exec"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/preflight-rec/preflight/recorder/capture"
)

// TestProcChurn samples the real /proc while shells start thousands of
// short-lived processes: every sample is complete, the sampler's
// per-process state holds only the latest scan's processes, and the heap
// stays flat over the run.
func TestProcChurn(t *testing.T) {
	const shells, perShell, topN = 2, 2000, 5
	// Each reading one second after the last on the rates' clock, so that
	// every sample has a window and is a reference in turn.
	mono := time.Now()
	s, err := newSampler("/proc", topN, func() time.Time { mono = mono.Add(time.Second); return mono }, unix.Statfs)
	if err != nil {
		t.Fatal(err)
	}
	// Warm up the sampler's buffers and maps before measuring.
	for range 20 {
		s.Sample(time.Now(), nil)
	}
	var seen [1 << 22 / 64]uint64 // PID_MAX_LIMIT bits: PIDs the scans saw, without growing the heap
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)

	var running atomic.Int32
	running.Store(shells)
	for range shells {
		cmd := exec.Command("/bin/sh", "-c", `i=0; while [ $i -lt "$0" ]; do /bin/true; i=$((i+1)); done`, strconv.Itoa(perShell))
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() {
			_ = cmd.Wait()
			running.Add(-1)
		}()
		t.Cleanup(func() { _ = cmd.Process.Kill() }) // by PID; a no-op once reaped
	}

	samples, maxState, distinct := 0, 0, 0
	var samplePIDs []int
	for running.Load() > 0 || samples < 300 {
		got, svc := s.Sample(time.Now(), samplePIDs)
		samples++
		if err := complete(got, topN); err != "" {
			t.Fatalf("sample %d is incomplete: %s: %+v", samples, err, got)
		}
		// Per-process state: exactly the processes of the latest scan.
		if len(s.procs) != len(s.recs) || len(s.procs) != got.Processes {
			t.Fatalf("sample %d: %d remembered processes, %d in the scan, %d reported", samples, len(s.procs), len(s.recs), got.Processes)
		}
		if len(svc) > len(samplePIDs) {
			t.Fatalf("sample %d: %d service processes for %d PIDs", samples, len(svc), len(samplePIDs))
		}
		maxState = max(maxState, len(s.procs))
		samplePIDs = samplePIDs[:0]
		for _, r := range s.recs {
			if w, b := r.pid/64, uint64(1)<<(r.pid%64); seen[w]&b == 0 {
				seen[w] |= b
				distinct++
			}
			if len(samplePIDs) < 20 {
				samplePIDs = append(samplePIDs, r.pid) // some of which vanish before the next sample
			}
		}
		if samples > 100000 {
			t.Fatal("the shells never finished")
		}
	}
	final, _ := s.Sample(time.Now(), nil)

	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	growth := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	// Generous: the sampler's steady state is a few hundred KiB; a leak of
	// per-process state over thousands of PIDs would pass it.
	if growth > 4<<20 {
		t.Errorf("heap grew by %d bytes over %d samples", growth, samples)
	}
	if len(s.procs) != final.Processes || len(s.spare) > maxState {
		t.Errorf("after the churn: %d remembered, %d processes, spare map %d (most ever %d)", len(s.procs), final.Processes, len(s.spare), maxState)
	}
	t.Logf("churn: %d short-lived processes started, %d samples, %d distinct PIDs seen, at most %d processes remembered (now %d), heap %+d bytes",
		shells*perShell, samples, distinct, maxState, len(s.procs), growth)
}

// complete returns what is missing from a sample, or "".
func complete(s capture.Sample, topN int) string {
	switch {
	case s.At.IsZero():
		return "no time"
	case s.CPU.CPUs <= 0:
		return "no CPUs"
	case s.Memory.TotalBytes == 0:
		return "no memory"
	case s.Processes <= 0:
		return "no processes"
	case s.Disks == nil:
		return "no disks"
	case len(s.TopCPU) != min(topN, s.Processes) || len(s.TopMemory) != min(topN, s.Processes):
		return "short top lists"
	}
	for _, l := range [][]capture.Process{s.TopCPU, s.TopMemory} {
		for _, p := range l {
			if p.PID <= 0 || p.Name == "" || p.State == "" || p.CPUPercent != nil && *p.CPUPercent < 0 {
				return "a process object without pid, name or state"
			}
		}
	}
	return ""
}
