package findings

import (
	"testing"
	"time"

	"github.com/preflight-rec/preflight/recorder/capture"
)

// Kernel lines as the kernel logs them (recorder/logs has the formats).
const (
	oomLine  = "Memory cgroup out of memory: Killed process 9352 (dead-drop) total-vm:1330856kB, anon-rss:63744kB, file-rss:0kB, shmem-rss:4408kB, UID:0 pgtables:232kB oom_score_adj:0"
	oomLine2 = "Memory cgroup out of memory: Killed process 9361 (eat) total-vm:2097152kB, anon-rss:261120kB, file-rss:1024kB, shmem-rss:0kB, UID:0 pgtables:600kB oom_score_adj:0"
	hostOOM  = "Out of memory: Killed process 2210 (java) total-vm:8394712kB, anon-rss:3964724kB, file-rss:0kB, shmem-rss:0kB, UID:1000 pgtables:8216kB oom_score_adj:0"
	segvLine = "worker[4242]: segfault at 18 ip 00007f3a1c2b4e65 sp 00007ffe5a0d7c40 error 4 in libfoo.so.1.2[7f3a1c2a0000+25000]"
	trapLine = "traps: calc[3131] trap divide error ip:55f4b0a1b139 sp:7ffd3d5c1e60 error:0 in calc[55f4b0a1b000+1000]"
)

func withKernel(texts ...string) Incident {
	in := incident(3, nil)
	for i, t := range texts {
		in.KernelLog = append(in.KernelLog, capture.KernelLine{At: in.Failure.Add(time.Duration(i-len(texts)) * time.Second), Text: t})
	}
	return in
}

func TestOOMVictim(t *testing.T) {
	runRule(t, OOMVictim, []ruleCase{
		{"one victim", withKernel("oom-kill:constraint=CONSTRAINT_MEMCG,task=dead-drop,pid=9352,uid=0", oomLine),
			[]string{"victim: dead-drop (PID 9352) with 62MiB of anonymous memory (its cgroup's memory limit)",
				"kernel at -1.0s: anon-rss 62MiB, file-rss 0B, shmem-rss 4.3MiB, total-vm 1.3GiB"}},
		{"two victims", withKernel(oomLine, oomLine2),
			[]string{"killed 2 processes, the last eat (PID 9361) with 255MiB of anonymous memory", "file-rss 1.0MiB"}},
		{"the host's OOM", withKernel(hostOOM), []string{"java (PID 2210) with 3.8GiB", "the host's memory ran out"}},
		{"a segfault only", withKernel(segvLine), nil},
		{"no kernel log", incident(3, nil), nil},
	})
}

func TestSegfault(t *testing.T) {
	runRule(t, Segfault, []ruleCase{
		{"segfault in a library", withKernel(oomLine, segvLine),
			[]string{"worker (PID 4242) crashed: segfault at 18 in libfoo.so.1.2", "kernel at -1.0s: worker[4242]: segfault at 18"}},
		{"a trap", withKernel(trapLine), []string{"calc (PID 3131) crashed: trap divide error in calc"}},
		{"the last of two", withKernel(trapLine, segvLine), []string{"PID 4242"}},
		{"an OOM kill only", withKernel(oomLine), nil},
	})
}

// TestKernelLogOfTheScene: the kernel_log window (TRACE_SECONDS) holds
// earlier runs' kills of the same cgroup; the incident's findings count
// only the lines from its scene's first sample on (less the kernel's
// clock skew).
func TestKernelLogOfTheScene(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 16, 44, 7, 0, time.UTC)
	c := &capture.Capture{TransitionTime: t0.Add(5 * time.Second), IntervalSeconds: 0.5}
	for i := range 11 {
		c.Samples = append(c.Samples, capture.Sample{At: t0.Add(time.Duration(i) * 500 * time.Millisecond)})
	}
	c.KernelLog = []capture.KernelLine{
		{At: t0.Add(-6 * time.Second), Text: oomLine2},       // an earlier incident's
		{At: t0.Add(-100 * time.Millisecond), Text: oomLine}, // this one's, stamped a little early
	}
	in := FromCapture(c)
	if len(in.KernelLog) != 1 || in.KernelLog[0].Text != oomLine {
		t.Errorf("kernel lines %v, want the scene's alone", in.KernelLog)
	}
	f := OOMVictim(in, Default)
	if f == nil || f.Summary != "The OOM killer's victim: dead-drop (PID 9352) with 62MiB of anonymous memory (its cgroup's memory limit)" {
		t.Errorf("finding %+v", f)
	}
	if len(c.KernelLog) != 2 {
		t.Error("the capture's kernel_log was changed")
	}
}
