package sample

import (
	"os/exec"
	"strings"
	"testing"
	"time"
)

// Command lines are kept whole (to MaxCmdline) for the service's processes
// and cut to MaxTopCmdline in the host's top lists, which repeat in every
// sample.
func TestCmdlineLengths(t *testing.T) {
	long := strings.Repeat("x", 300)
	// The shell waits on its stdin, with no child of its own to leave behind.
	cmd := exec.Command("sh", "-c", "read x", "preflight-test", long)
	if _, err := cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	time.Sleep(50 * time.Millisecond)

	s, err := New("/proc", 100000) // every process makes the top lists
	if err != nil {
		t.Fatal(err)
	}
	smp, svc := s.Sample(time.Now(), []int{cmd.Process.Pid})
	if len(svc) != 1 || len(svc[0].Cmdline) <= MaxTopCmdline || !strings.Contains(svc[0].Cmdline, long) {
		t.Fatalf("service process: %+v", svc)
	}
	found := false
	for _, p := range append(smp.TopCPU, smp.TopMemory...) {
		if len(p.Cmdline) > MaxTopCmdline {
			t.Errorf("top-list command line of %d is %d bytes, over %d", p.PID, len(p.Cmdline), MaxTopCmdline)
		}
		if p.PID == cmd.Process.Pid {
			found = true
			if !strings.HasSuffix(p.Cmdline, "…") {
				t.Errorf("cut command line does not end with …: %q", p.Cmdline)
			}
		}
	}
	if !found {
		t.Error("the test's process is in no top list")
	}
}
