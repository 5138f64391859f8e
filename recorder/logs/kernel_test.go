package logs

import (
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/preflight-rec/preflight/recorder/capture"
)

// Real kernel lines: 6.18 (this machine, an OOM kill in the e2e's systemd
// and a python3 segfault) and 6.1 (Debian 12's kernel: the same OOM lines;
// a segfault without the offset and CPU).
const (
	oomKill61   = "Memory cgroup out of memory: Killed process 9352 (dead-drop) total-vm:1330856kB, anon-rss:63744kB, file-rss:0kB, shmem-rss:4408kB, UID:0 pgtables:232kB oom_score_adj:0"
	oomHost     = "Out of memory: Killed process 2210 (java) total-vm:8394712kB, anon-rss:3964724kB, file-rss:0kB, shmem-rss:0kB, UID:1000 pgtables:8216kB oom_score_adj:0"
	oomKillLine = "oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=preflight-e2e-8899,mems_allowed=0,oom_memcg=/process_api/c22d/preflight-e2e-8899/system.slice/dead-drop.service,task_memcg=/process_api/c22d/preflight-e2e-8899/system.slice/dead-drop.service,task=dead-drop,pid=9352,uid=0"
	segv618     = "python3[11622]: segfault at 0 ip 00007f5866585ad8 sp 00007ffd410b7858 error 4 in libc.so.6[167ad8,7f5866444000+156000] likely on CPU 0 (core 0, socket 0)"
	segv61      = "worker[4242]: segfault at 18 ip 00007f3a1c2b4e65 sp 00007ffe5a0d7c40 error 4 in libfoo.so.1.2[7f3a1c2a0000+25000]"
	segvNoLib   = "a.out[77]: segfault at 0 ip 0000000000000000 sp 00007ffc58a5f6e8 error 14"
	trapDiv     = "traps: calc[3131] trap divide error ip:55f4b0a1b139 sp:7ffd3d5c1e60 error:0 in calc[55f4b0a1b000+1000]"
	trapGP      = "traps: app[808] general protection fault ip:7f1e2c0a1b2c sp:7ffcb3e0a0f0 error:0 in libcrypto.so.3[7f1e2bf00000+200000]"
	hung        = "INFO: task postgres:1234 blocked for more than 122 seconds."
	cpuLine     = "CPU: 1 UID: 0 PID: 9352 Comm: dead-drop Not tainted 6.18.44-fc-v657 #1 PREEMPT(voluntary)"
	reaped      = "oom_reaper: reaped process 9352 (dead-drop), now anon-rss:0kB, file-rss:0kB, shmem-rss:4408kB"
	invoked     = "dead-drop invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0"
	memStats    = "Memory cgroup stats for /process_api/c22d/preflight-e2e-8899/system.slice/dead-drop.service:"
	taskRow     = "[   9352]     0  9352   332714    15936    15936        0        0   188416        0             0 dead-drop"
)

func TestParseOOMKill(t *testing.T) {
	for _, tc := range []struct {
		text string
		want OOMKill
		ok   bool
	}{
		{oomKill61, OOMKill{PID: 9352, Name: "dead-drop", Memcg: true, TotalVMBytes: 1330856 << 10, AnonRSSBytes: 63744 << 10, ShmemRSSBytes: 4408 << 10}, true},
		{oomHost, OOMKill{PID: 2210, Name: "java", TotalVMBytes: 8394712 << 10, AnonRSSBytes: 3964724 << 10}, true},
		{"Memory cgroup out of memory: Killed process 5 (a (b) c) total-vm:1kB, anon-rss:2kB, file-rss:3kB, shmem-rss:4kB, UID:0", OOMKill{PID: 5, Name: "a (b) c", Memcg: true, TotalVMBytes: 1 << 10, AnonRSSBytes: 2 << 10, FileRSSBytes: 3 << 10, ShmemRSSBytes: 4 << 10}, true},
		{oomKillLine, OOMKill{}, false},
		{reaped, OOMKill{}, false},
		{"Memory cgroup out of memory: Killed process 0 (x) total-vm:1kB, anon-rss:2kB, file-rss:3kB, shmem-rss:4kB", OOMKill{}, false},
		{"", OOMKill{}, false},
	} {
		got, ok := ParseOOMKill(tc.text)
		if ok != tc.ok || got != tc.want {
			t.Errorf("ParseOOMKill(%q) = %+v, %v; want %+v, %v", tc.text, got, ok, tc.want, tc.ok)
		}
	}
}

func TestParseSegfault(t *testing.T) {
	for _, tc := range []struct {
		text string
		want Segfault
		ok   bool
	}{
		{segv618, Segfault{PID: 11622, Name: "python3", Kind: "segfault at 0", Library: "libc.so.6"}, true},
		{segv61, Segfault{PID: 4242, Name: "worker", Kind: "segfault at 18", Library: "libfoo.so.1.2"}, true},
		{segvNoLib, Segfault{PID: 77, Name: "a.out", Kind: "segfault at 0"}, true},
		{trapDiv, Segfault{PID: 3131, Name: "calc", Kind: "trap divide error", Library: "calc"}, true},
		{trapGP, Segfault{PID: 808, Name: "app", Kind: "general protection fault", Library: "libcrypto.so.3"}, true},
		{"Web Content[99]: segfault at 8 ip 00007f00 sp 00007ffe error 6 in libxul.so[7f00+100]", Segfault{PID: 99, Name: "Web Content", Kind: "segfault at 8", Library: "libxul.so"}, true},
		{oomKill61, Segfault{}, false},
		{"Code: e1 ff ff ff c3 66 2e 0f 1f 84 00", Segfault{}, false},
	} {
		got, ok := ParseSegfault(tc.text)
		if ok != tc.ok || got != tc.want {
			t.Errorf("ParseSegfault(%q) = %+v, %v; want %+v, %v", tc.text, got, ok, tc.want, tc.ok)
		}
	}
}

func TestPIDs(t *testing.T) {
	for _, tc := range []struct {
		text string
		want []int
	}{
		{oomKill61, []int{9352}},
		{oomKillLine, []int{9352}},
		{segv618, []int{11622}},
		{trapDiv, []int{3131}},
		{hung, []int{1234}},
		{"INFO: task kworker/0:1:77 blocked for more than 120 seconds.", []int{77}},
		{cpuLine, []int{9352}},
		{reaped, []int{9352}},
		{invoked, nil},
		{taskRow, nil},
		{"Code: e1 ff ff", nil},
		{"usb 1-1: new high-speed USB device number 2 using xhci_hcd", nil},
	} {
		if got := PIDs(tc.text); !slices.Equal(got, tc.want) {
			t.Errorf("PIDs(%q) = %v, want %v", tc.text, got, tc.want)
		}
	}
}

// The OOM report as the kernel logs it, in order: the lines about the
// service are kept, the victim's PID learnt from the oom-kill line (no
// sample saw it), and a neighbour's lines are not.
func TestFilter(t *testing.T) {
	report := []string{invoked, cpuLine, "Hardware name: QEMU Standard PC", "Call Trace:", " <TASK>", "memory: usage 131072kB, limit 131072kB, failcnt 2108",
		memStats, "anon 130023424", taskRow, oomKillLine, oomKill61, reaped,
		"other[555]: segfault at 0 ip 0 sp 0 error 4 in libc.so.6[7f00+100]",
		"oom-kill:constraint=CONSTRAINT_MEMCG,oom_memcg=/system.slice/dead-drop.service-old,task_memcg=/system.slice/dead-drop.service-old,task=x,pid=556,uid=0",
		"worker[41]: segfault at 18 ip 00007f3a1c2b4e65 sp 00007ffe5a0d7c40 error 4 in libfoo.so[7f3a1c2a0000+25000]",
	}
	f := Filter{PIDs: map[int]bool{41: true}, Cgroups: []string{"/system.slice/dead-drop.service"}}
	var got []string
	for _, l := range report {
		if f.About(l) {
			got = append(got, l)
		}
	}
	want := []string{memStats, oomKillLine, oomKill61, reaped, report[len(report)-1]}
	if !slices.Equal(got, want) {
		t.Errorf("about the service:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// The CPU line came before the PID was known: it is the invoker's, not
	// necessarily the victim's.
	if (&Filter{Cgroups: []string{"/"}}).About(oomKillLine) {
		t.Error(`the root cgroup "/" matched a line`)
	}
}

func TestParseKmsg(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Record
		ok   bool
	}{
		{"6,24010,2626679064,-;" + oomKill61 + "\n", Record{Level: 6, Seq: 24010, Usec: 2626679064, Text: oomKill61}, true},
		{"3,5,100,-,caller=T42;" + segv61 + "\n SUBSYSTEM=x\n DEVICE=y\n", Record{Level: 3, Seq: 5, Usec: 100, Text: segv61}, true},
		{"30,7,8,-;systemd[1]: Started x.service.\n", Record{Facility: 3, Level: 6, Seq: 7, Usec: 8, Text: "systemd[1]: Started x.service."}, true},
		{"6,1,2;no flags", Record{}, false},
		{"garbage", Record{}, false},
		{"x,1,2,-;t", Record{}, false},
	} {
		got, ok := ParseKmsg([]byte(tc.in))
		if ok != tc.ok || got != tc.want {
			t.Errorf("ParseKmsg(%q) = %+v, %v; want %+v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestWallTime(t *testing.T) {
	now := time.Date(2026, 12, 1, 15, 0, 0, 0, time.UTC)
	if got, want := WallTime(2626679064, now, 2700*time.Second), now.Add(-(2700*time.Second - 2626679064*time.Microsecond)); !got.Equal(want) {
		t.Errorf("WallTime = %s, want %s", got, want)
	}
}

func TestBoundAndCut(t *testing.T) {
	var lines []capture.KernelLine
	for i := range 100 {
		lines = append(lines, capture.KernelLine{Text: strings.Repeat("x", 300) + string(rune('a'+i%26))})
	}
	b := Bound(lines)
	total := 0
	for _, l := range b {
		total += len(l.Text)
	}
	if len(b) > MaxKernelLines || total > MaxKernelBytes || b[len(b)-1] != lines[99] {
		t.Errorf("Bound kept %d lines, %d bytes, last %q", len(b), total, b[len(b)-1].Text[300:])
	}
	long := strings.Repeat("é", MaxLineBytes)
	if c := Cut(long); len(c) > MaxLineBytes || !strings.HasSuffix(c, "…") || !strings.HasPrefix(c, "é") {
		t.Errorf("Cut: %d bytes, %q…", len(c), c[:4])
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{oomKill61, oomKillLine, segv618, trapDiv, hung, cpuLine, "6,1,2,-;" + segv61} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if k, ok := ParseOOMKill(s); ok && (k.PID <= 0 || !strings.Contains(s, k.Name)) {
			t.Errorf("ParseOOMKill(%q) = %+v", s, k)
		}
		if sf, ok := ParseSegfault(s); ok && (sf.PID <= 0 || !strings.Contains(s, sf.Library)) {
			t.Errorf("ParseSegfault(%q) = %+v", s, sf)
		}
		for _, pid := range PIDs(s) {
			if pid <= 0 {
				t.Errorf("PIDs(%q) has %d", s, pid)
			}
		}
		ParseKmsg([]byte(s))
		(&Filter{Cgroups: []string{"/a.service"}}).About(s)
	})
}

// Two containers run the same unit: the kernel prints both under their
// host paths, and the one that logged last is the service that failed. A
// line naming the path exactly (a recorder on the host) wins over both.
func TestSelectPrefix(t *testing.T) {
	line := func(prefix string, pid int) string {
		return "oom-kill:constraint=CONSTRAINT_MEMCG,oom_memcg=" + prefix + "/system.slice/dead-drop.service,task_memcg=" + prefix +
			"/system.slice/dead-drop.service,task=dead-drop,pid=" + strconv.Itoa(pid) + ",uid=0"
	}
	kill := func(pid int) string {
		return "Memory cgroup out of memory: Killed process " + strconv.Itoa(pid) + " (dead-drop) total-vm:1kB, anon-rss:2kB, file-rss:3kB, shmem-rss:4kB"
	}
	old, cur := "/process_api/c22d/preflight-e2e-1", "/process_api/c22d/preflight-e2e-2"
	texts := []string{line(old, 10), kill(10), "Memory cgroup stats for " + cur + "/system.slice/dead-drop.service:", line(cur, 20), kill(20)}
	f := Filter{Cgroups: []string{"/system.slice/dead-drop.service"}}
	if got, want := f.Select(texts), []int{2, 3, 4}; !slices.Equal(got, want) {
		t.Errorf("Select = %v, want %v (the latest prefix only)", got, want)
	}
	texts = append(texts, line("", 30), kill(30))
	f = Filter{Cgroups: []string{"/system.slice/dead-drop.service"}}
	if got, want := f.Select(texts), []int{5, 6}; !slices.Equal(got, want) {
		t.Errorf("Select = %v, want %v (the exact path only)", got, want)
	}
	for _, tc := range []struct {
		text, prefix string
		ok           bool
	}{
		{"x,task_memcg=/a/b.service,task=x", "", true},
		{"x,task_memcg=/m/c1/a/b.service,task=x", "/m/c1", true},
		{"Memory cgroup stats for /m/a/b.service:", "/m", true},
		{"x=/a/b.service-2,", "", false},
		{"x=/a/b.service", "", true},
	} {
		p, ok := cgroupPrefix(tc.text, "/a/b.service")
		if p != tc.prefix || ok != tc.ok {
			t.Errorf("cgroupPrefix(%q) = %q, %v; want %q, %v", tc.text, p, ok, tc.prefix, tc.ok)
		}
	}
}
