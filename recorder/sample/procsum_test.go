package sample

import (
	"os/exec"
	"testing"
)

// ProcSum reads each process's stat again through its held descriptor, and
// lets go of a process that left or exited.
func TestProcSumHoldsStats(t *testing.T) {
	var cmds []*exec.Cmd
	var pids []int
	for range 3 {
		c := exec.Command("sleep", "300")
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, c)
		pids = append(pids, c.Process.Pid)
	}
	t.Cleanup(func() {
		for _, c := range cmds {
			c.Process.Kill()
			c.Wait()
		}
	})
	p := NewProcSum("/proc")
	defer p.Close()
	for range 3 {
		rss, threads, n := p.Sum(pids)
		if n != 3 || threads != 3 || rss == 0 {
			t.Fatalf("Sum = %d bytes, %d threads, %d read; want 3 processes of 1 thread", rss, threads, n)
		}
	}
	if len(p.held) != 3 {
		t.Errorf("%d stats held, want 3", len(p.held))
	}
	cmds[0].Process.Kill()
	cmds[0].Wait()
	if _, _, n := p.Sum(pids); n != 2 || len(p.held) != 2 {
		t.Errorf("after one exited: %d read, %d held; want 2 and 2", n, len(p.held))
	}
	if _, _, n := p.Sum(pids[2:]); n != 1 || len(p.held) != 1 {
		t.Errorf("one left in the cgroup: %d read, %d held; want 1 and 1", n, len(p.held))
	}
}
