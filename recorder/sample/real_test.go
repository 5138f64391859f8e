package sample

import (
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/preflight-rec/preflight/recorder/capture"
)

// start starts a child process and ends it (by its PID) when the test ends.
func start(t testing.TB, name string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(name, args...)
	if err := cmd.Start(); err != nil {
		t.Fatalf("failed to start %s: %v", name, err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return cmd
}

func find(ps []capture.Process, pid int) (capture.Process, bool) {
	for _, p := range ps {
		if p.PID == pid {
			return p, true
		}
	}
	return capture.Process{}, false
}

func TestRealProc(t *testing.T) {
	child := start(t, "sleep", "60")
	s, err := New("/proc", 5)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	got, service := s.Sample(time.Now(), []int{child.Process.Pid, os.Getpid()})

	if got.CPU.CPUs <= 0 {
		t.Errorf("CPUs = %d", got.CPU.CPUs)
	}
	if c := got.CPU; c.Percent < 0 || c.Percent > 100 || c.User < 0 || c.System < 0 {
		t.Errorf("CPU = %+v", c)
	}
	if m := got.Memory; m.TotalBytes == 0 || m.AvailableBytes > m.TotalBytes || m.UsedPercent <= 0 || m.UsedPercent >= 100 {
		t.Errorf("Memory = %+v", m)
	}
	if len(got.Disks) == 0 {
		t.Error("no disks")
	}
	for _, d := range got.Disks {
		if d.TotalBytes == 0 || d.UsedBytes > d.TotalBytes || d.Mount == "" || d.FSType == "" {
			t.Errorf("disk %+v", d)
		}
		if excludedFSTypes[d.FSType] || strings.HasPrefix(d.Mount, "/proc") || strings.HasPrefix(d.Mount, "/sys") {
			t.Errorf("pseudo filesystem reported: %+v", d)
		}
	}
	if _, err := os.Stat("/proc/pressure/cpu"); err == nil && got.Pressure == nil {
		t.Error("Pressure is nil on a kernel with /proc/pressure")
	}
	if got.Processes < 3 {
		t.Errorf("Processes = %d", got.Processes)
	}
	if len(got.TopCPU) != 5 || len(got.TopMemory) != 5 {
		t.Errorf("top lists of %d and %d, want 5", len(got.TopCPU), len(got.TopMemory))
	}
	for i := 1; i < len(got.TopMemory); i++ {
		if got.TopMemory[i].RSSBytes > got.TopMemory[i-1].RSSBytes {
			t.Errorf("top_memory out of order: %+v", got.TopMemory)
		}
	}

	if len(service) != 2 || service[0].PID > service[1].PID {
		t.Fatalf("service processes = %+v, want 2 sorted by PID", service)
	}
	self, ok := find(service, os.Getpid())
	if !ok {
		t.Fatalf("test process %d not found in %+v", os.Getpid(), service)
	}
	comm, err := os.ReadFile("/proc/self/comm")
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.TrimSpace(string(comm)); self.Name != want {
		t.Errorf("self name %q, want %q", self.Name, want)
	}
	if want := Redact(os.Args); self.Cmdline != want {
		t.Errorf("self cmdline %q, want %q", self.Cmdline, want)
	}
	if self.RSSBytes == 0 || self.Threads < 1 || self.State == "" {
		t.Errorf("self = %+v", self)
	}
	sleep, ok := find(service, child.Process.Pid)
	if !ok {
		t.Fatalf("child %d not found in %+v", child.Process.Pid, service)
	}
	if sleep.Name != "sleep" || sleep.Cmdline != "sleep 60" || sleep.State != "S" || sleep.Threads != 1 || sleep.RSSBytes == 0 {
		t.Errorf("child = %+v", sleep)
	}
}

func TestRealBusyChild(t *testing.T) {
	busy := start(t, "sh", "-c", "while :; do :; done")
	pid := busy.Process.Pid
	s, err := New("/proc", 5)
	if err != nil {
		t.Fatal(err)
	}
	// A loaded machine may starve the child for a while: allow a few tries.
	var last capture.Process
	for range 10 {
		time.Sleep(500 * time.Millisecond)
		got, service := s.Sample(time.Now(), []int{pid})
		p, ok := find(service, pid)
		if !ok {
			t.Fatalf("busy child %d not found", pid)
		}
		last = p
		if _, inTop := find(got.TopCPU, pid); inTop && p.CPUPercent > 50 {
			if p.CPUPercent > float64(100*got.CPU.CPUs) {
				t.Errorf("cpu_percent %v above 100 × %d CPUs", p.CPUPercent, got.CPU.CPUs)
			}
			return
		}
	}
	t.Errorf("busy child never over 50%% and in top_cpu; last %+v", last)
}

func TestRealExitedProcess(t *testing.T) {
	child := start(t, "sleep", "60")
	pid := child.Process.Pid
	s, err := New("/proc", 3)
	if err != nil {
		t.Fatal(err)
	}
	_, service := s.Sample(time.Now(), []int{pid})
	if _, ok := find(service, pid); !ok {
		t.Fatalf("child %d not found before exit", pid)
	}
	if err := child.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = child.Wait()

	got, service := s.Sample(time.Now(), []int{pid, os.Getpid()})
	if _, ok := find(service, pid); ok {
		t.Errorf("exited child %d still reported", pid)
	}
	if _, ok := find(service, os.Getpid()); !ok {
		t.Error("test process missing after the child exited")
	}
	if _, ok := find(slices.Concat(got.TopCPU, got.TopMemory), pid); ok {
		t.Errorf("exited child %d in a top list", pid)
	}
	if _, ok := s.procs[pid]; ok {
		t.Errorf("state still holds exited child %d", pid)
	}
	if len(s.procs) != got.Processes {
		t.Errorf("state holds %d PIDs, scan saw %d", len(s.procs), got.Processes)
	}
}

// TestProcessesAlone reads one process without a host scan: this test's,
// and skips a PID that does not exist.
func TestProcessesAlone(t *testing.T) {
	s, err := New("/proc", 3)
	if err != nil {
		t.Fatal(err)
	}
	got := s.Processes(time.Now(), []int{os.Getpid(), 1 << 30, os.Getpid()})
	if len(got) != 1 || got[0].PID != os.Getpid() || got[0].RSSBytes == 0 || got[0].Threads < 1 || got[0].Cmdline == "" {
		t.Fatalf("Processes = %+v, want this test's process alone", got)
	}
	if got := s.Processes(time.Now(), nil); got == nil || len(got) != 0 {
		t.Errorf("Processes(nil) = %#v, want an empty list", got)
	}
}
