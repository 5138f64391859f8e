package logs

import (
	"testing"
	"time"

	"github.com/preflight-rec/preflight/recorder/capture"
)

// Lines of real kills: a Debian 12 guest's (kernel 6.1, pure cgroup v2,
// the e2e-v2 run whose capture lacked its oom trigger: journal's kernel
// transport), and this hybrid host's (a v1 memory cgroup, /dev/kmsg).
var (
	guestKill = []string{
		"dead-drop invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0",
		"memory: usage 65536kB, limit 65536kB, failcnt 1523",
		"swap: usage 0kB, limit 0kB, failcnt 0",
		"Memory cgroup stats for /system.slice/dead-drop.service:",
		"anon 64585728\nfile 0\nkernel 614400",
		"Tasks state (memory values in pages):",
		"[   3406]     0  3406   332713    17523    16233     1290         0   237568        0             0 dead-drop",
		"oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,oom_memcg=/system.slice/dead-drop.service,task_memcg=/system.slice/dead-drop.service,task=dead-drop,pid=3406,uid=0",
		"Memory cgroup out of memory: Killed process 3406 (dead-drop) total-vm:1330852kB, anon-rss:64932kB, file-rss:5160kB, shmem-rss:0kB, UID:0 pgtables:232kB oom_score_adj:0",
	}
	hostKill = []string{
		"preflight.test invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0",
		"memory: usage 32768kB, limit 32768kB, failcnt 41",
		"memory+swap: usage 32768kB, limit 9007199254740988kB, failcnt 0",
		"kmem: usage 396kB, limit 9007199254740988kB, failcnt 0",
		"Memory cgroup stats for /preflight-cli-test-5ebfbca846d3:",
		"[  15127]     0 15127   702744    11248     8256     2992         0   331776        0             0 preflight.test",
		"oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,oom_memcg=/preflight-cli-test-5ebfbca846d3,task_memcg=/preflight-cli-test-5ebfbca846d3,task=preflight.test,pid=15127,uid=0",
		"Memory cgroup out of memory: Killed process 15127 (preflight.test) total-vm:2810976kB, anon-rss:33024kB, file-rss:11968kB, shmem-rss:0kB, UID:0 pgtables:324kB oom_score_adj:0",
	}
	// The header ratelimited away: the victim's line alone.
	bareKill = []string{
		"Memory cgroup out of memory: Killed process 3341 (dead-drop) total-vm:1330908kB, anon-rss:64920kB, file-rss:5096kB, shmem-rss:0kB, UID:0 pgtables:228kB oom_score_adj:0",
	}
)

func kernelLines(t0 time.Time, texts ...[]string) []capture.KernelLine {
	var out []capture.KernelLine
	for _, block := range texts {
		for _, s := range block {
			t0 = t0.Add(time.Millisecond)
			out = append(out, capture.KernelLine{At: t0, Text: s})
		}
	}
	return out
}

func TestOOMReports(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 16, 44, 12, 0, time.UTC)
	lines := kernelLines(t0, hostKill, guestKill, bareKill)
	got := OOMReports(lines)
	if len(got) != 3 {
		t.Fatalf("%d reports, want 3: %+v", len(got), got)
	}
	u := func(p *uint64) uint64 {
		if p == nil {
			return 0
		}
		return *p
	}
	for i, want := range []struct {
		pid          int
		memcg        string
		usage, limit uint64
		at           time.Time
	}{
		{15127, "/preflight-cli-test-5ebfbca846d3", 32768 << 10, 32768 << 10, lines[len(hostKill)-1].At},
		{3406, "/system.slice/dead-drop.service", 64 << 20, 64 << 20, lines[len(hostKill)+len(guestKill)-1].At},
		{3341, "", 0, 0, lines[len(lines)-1].At},
	} {
		r := got[i]
		if r.Kill.PID != want.pid || r.OOMMemcg != want.memcg || r.TaskMemcg != want.memcg || u(r.UsageBytes) != want.usage ||
			u(r.LimitBytes) != want.limit || !r.At.Equal(want.at) || !r.Kill.Memcg {
			t.Errorf("report %d: %+v (usage %d, limit %d); want pid %d in %q, usage %d, limit %d at %v",
				i, r, u(r.UsageBytes), u(r.LimitBytes), want.pid, want.memcg, want.usage, want.limit, want.at)
		}
	}
	if !got[1].Names("/system.slice/dead-drop.service") || !got[1].Names("/system.slice/dead-drop.service/") ||
		got[1].Names("/system.slice/other.service") || got[1].Names("/") || got[2].Names("/system.slice/dead-drop.service") {
		t.Error("Names: want the summary's cgroup alone")
	}
}

// A header whose summary names another PID than the victim's line (a
// header of a kill whose line is not in the window, then a bare line)
// lends the victim nothing; a header cut off by the window's start
// neither.
func TestOOMReportsHeaderOfAnotherKill(t *testing.T) {
	t0 := time.Now()
	header := guestKill[:len(guestKill)-1]
	got := OOMReports(kernelLines(t0, header, bareKill))
	if len(got) != 1 || got[0].Kill.PID != 3341 || got[0].OOMMemcg != "" || got[0].UsageBytes != nil {
		t.Errorf("got %+v, want the bare kill of 3341 without the other's header", got)
	}
	got = OOMReports(kernelLines(t0, guestKill[2:]))
	if len(got) != 1 || got[0].UsageBytes != nil || got[0].OOMMemcg != "/system.slice/dead-drop.service" {
		t.Errorf("got %+v, want the kill with its summary, no usage (its line before the window)", got)
	}
}

func TestSameCgroup(t *testing.T) {
	for _, tc := range []struct {
		printed, cg string
		want        bool
	}{
		{"/system.slice/x.service", "/system.slice/x.service", true},
		{"/machine/c1/system.slice/x.service", "/system.slice/x.service", true},
		{"/system.slice/x.service", "/system.slice/x.service/", true},
		{"/system.slice/x.service/child", "/system.slice/x.service", false},
		{"/system.slice/ax.service", "/x.service", false},
		{"", "/system.slice/x.service", false},
		{"/", "/", false},
		{"/system.slice/x.service", "", false},
	} {
		if got := SameCgroup(tc.printed, tc.cg); got != tc.want {
			t.Errorf("SameCgroup(%q, %q) = %v", tc.printed, tc.cg, got)
		}
	}
}

// A global OOM (the host out of memory, no cgroup's limit hit): the
// kernel's summary has ",global_oom," where a memcg OOM has its
// oom_memcg (mem_cgroup_print_oom_context), and no memcg usage lines.
func TestOOMReportsGlobal(t *testing.T) {
	global := []string{
		"dead-drop invoked oom-killer: gfp_mask=0x140cca(GFP_HIGHUSER_MOVABLE|__GFP_COMP), order=0, oom_score_adj=0",
		"Mem-Info:",
		"oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),cpuset=/,mems_allowed=0,global_oom,task_memcg=/system.slice/dead-drop.service,task=dead-drop,pid=1234,uid=0",
		"Out of memory: Killed process 1234 (dead-drop) total-vm:1330852kB, anon-rss:64932kB, file-rss:5160kB, shmem-rss:0kB, UID:0 pgtables:232kB oom_score_adj:0",
	}
	got := OOMReports(kernelLines(time.Date(2026, 12, 1, 16, 44, 12, 0, time.UTC), global))
	if len(got) != 1 {
		t.Fatalf("%d reports, want 1: %+v", len(got), got)
	}
	r := got[0]
	if r.Kill.PID != 1234 || r.Kill.Memcg || r.OOMMemcg != "" || r.TaskMemcg != "/system.slice/dead-drop.service" ||
		r.UsageBytes != nil || r.LimitBytes != nil {
		t.Errorf("report %+v: want PID 1234, a global kill, task_memcg /system.slice/dead-drop.service, no oom_memcg, no usage", r)
	}
	if !r.Names("/system.slice/dead-drop.service") || r.Names("/system.slice/other.service") {
		t.Error("Names: want the victim's cgroup alone")
	}
}
