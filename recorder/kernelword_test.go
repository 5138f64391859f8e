package recorder

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/preflight-rec/preflight/cgroup"
	"github.com/preflight-rec/preflight/recorder/capture"
	"github.com/preflight-rec/preflight/recorder/findings"
	"github.com/preflight-rec/preflight/recorder/logs"
)

// The lines of the e2e-v2 run on pure cgroup v2 whose capture lacked its
// oom trigger (oom-main-continue #8): the main process 3406 OOM-killed,
// the kernel's stamps relative to the exit the watcher saw (its last read
// 34 ms before, oom_kills 0). The kills of the earlier runs (each its own
// incident) are in the window too.
const ddCgroup = "/system.slice/dead-drop.service"

func guestLines(exit time.Time) []capture.KernelLine {
	ms := func(d int) time.Time { return exit.Add(time.Duration(d) * time.Millisecond) }
	return []capture.KernelLine{
		{At: ms(-6083), Text: "Memory cgroup stats for /system.slice/dead-drop.service:"},
		{At: ms(-6082), Text: "oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,oom_memcg=/system.slice/dead-drop.service,task_memcg=/system.slice/dead-drop.service,task=dead-drop,pid=3341,uid=0"},
		{At: ms(-6082), Text: "Memory cgroup out of memory: Killed process 3341 (dead-drop) total-vm:1330908kB, anon-rss:64920kB, file-rss:5096kB, shmem-rss:0kB, UID:0 pgtables:228kB oom_score_adj:0"},
		{At: ms(-4), Text: "dead-drop invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0"},
		{At: ms(-3), Text: "memory: usage 65536kB, limit 65536kB, failcnt 1523"},
		{At: ms(15), Text: "Memory cgroup stats for /system.slice/dead-drop.service:"},
		{At: ms(20), Text: "oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,oom_memcg=/system.slice/dead-drop.service,task_memcg=/system.slice/dead-drop.service,task=dead-drop,pid=3406,uid=0"},
		{At: ms(21), Text: "Memory cgroup out of memory: Killed process 3406 (dead-drop) total-vm:1330852kB, anon-rss:64932kB, file-rss:5160kB, shmem-rss:0kB, UID:0 pgtables:232kB oom_score_adj:0"},
	}
}

// bareKill is the victim's line alone, its header ratelimited away.
func bareKill(at time.Time, pid int) capture.KernelLine {
	return capture.KernelLine{At: at, Text: fmt.Sprintf("Memory cgroup out of memory: Killed process %d (dead-drop) total-vm:1330908kB, anon-rss:64920kB, file-rss:5096kB, shmem-rss:0kB, UID:0 pgtables:228kB oom_score_adj:0", pid)}
}

// exitCapture is an incident with one exit trigger at exit whose sample
// read the cgroup (oom_kills 0, memory at its 64 MiB limit) at readAt.
func exitCapture(exit, readAt time.Time) *capture.Capture {
	zero, mem, max, peak := uint64(0), uint64(66949120), uint64(64<<20), uint64(64<<20)
	return &capture.Capture{
		TransitionTime: exit,
		Triggers:       []capture.Trigger{{Kind: capture.TriggerExit, At: exit, Detail: "cgroup emptied (last pids 3406)"}},
		Samples: []capture.Sample{{At: exit.Add(2 * time.Millisecond), Trigger: capture.TriggerExit, Service: &capture.Service{
			Cgroup: ddCgroup, OOMKills: &zero, MemoryBytes: &mem, MemoryMaxBytes: &max, MemoryPeakBytes: &peak, ReadAt: &readAt}}},
	}
}

// TestKernelKills: the attribution rule over the kernel's reports.
func TestKernelKills(t *testing.T) {
	exit := time.Date(2026, 12, 1, 16, 44, 12, 295506040, time.UTC)
	readAt := exit.Add(-34 * time.Millisecond)
	pids := func(m map[int][]logs.OOMReport) []int {
		var out []int
		for _, reps := range m {
			for _, r := range reps {
				out = append(out, r.Kill.PID)
			}
		}
		slices.Sort(out)
		return out
	}
	other := func(at time.Time, cg string, pid int) []capture.KernelLine {
		return []capture.KernelLine{
			{At: at, Text: fmt.Sprintf("oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,oom_memcg=%s,task_memcg=%s,task=x,pid=%d,uid=0", cg, cg, pid)},
			bareKill(at, pid),
		}
	}
	for _, tc := range []struct {
		name  string
		gone  []int
		lines []capture.KernelLine
		want  []int
	}{
		{"the guest's run: this exit's kill, not the earlier incidents'", []int{3406}, guestLines(exit), []int{3406}},
		{"the cgroup named, the PID never seen (a child)", nil, guestLines(exit), []int{3406}},
		{"ratelimited header: a vanished PID's line alone", []int{3406}, []capture.KernelLine{bareKill(exit.Add(21*time.Millisecond), 3406)}, []int{3406}},
		{"a PID not seen vanishing, no cgroup named: nothing", []int{3406}, []capture.KernelLine{bareKill(exit.Add(21*time.Millisecond), 999)}, nil},
		{"another cgroup's kill: nothing", []int{3406}, other(exit, "/system.slice/other.service", 777), nil},
		{"the same cgroup under a container's prefix", nil, other(exit, "/machine/c1"+ddCgroup, 777), []int{777}},
		{"stamped 200 ms before the read (skew)", []int{3406}, []capture.KernelLine{bareKill(readAt.Add(-200*time.Millisecond), 3406)}, []int{3406}},
		{"stamped 400 ms before the read: counted by it, or another's", []int{3406}, []capture.KernelLine{bareKill(readAt.Add(-400*time.Millisecond), 3406)}, nil},
		{"stamped 900 ms after the exit (a slow console)", []int{3406}, []capture.KernelLine{bareKill(exit.Add(900*time.Millisecond), 3406)}, []int{3406}},
		{"stamped 1.5 s after the exit: the restarted run's", nil, other(exit.Add(1500*time.Millisecond), ddCgroup, 3500), nil},
		{"an earlier incident's kill of the cgroup: nothing", nil, other(exit.Add(-6*time.Second), ddCgroup, 3341), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := exitCapture(exit, readAt)
			got := pids(kernelKills(c, [][]int{tc.gone}, logs.OOMReports(tc.lines)))
			if !slices.Equal(got, tc.want) {
				t.Errorf("kills of PIDs %v, want %v", got, tc.want)
			}
		})
	}
}

// TestWithKernelKills: the oom trigger's sample is the exit's, with the
// kernel's count on top of the last read and the usage the kernel printed
// at the kill, each marked.
func TestWithKernelKills(t *testing.T) {
	exit := time.Now().UTC()
	readAt := exit.Add(-34 * time.Millisecond)
	c := exitCapture(exit, readAt)
	low := uint64(60 << 20)
	c.Samples[0].Service.MemoryPeakBytes = &low
	s := withKernelKills(c, 0, logs.OOMReports(guestLines(exit)[3:]))
	svc := s.Service
	if svc.OOMKills == nil || *svc.OOMKills != 1 || *svc.MemoryPeakBytes != 64<<20 ||
		!slices.Equal(svc.FromKernelLog, []string{"oom_kills", "memory_peak_bytes"}) || !svc.ReadAt.Equal(readAt) {
		t.Errorf("service %+v (oom_kills %v, peak %v): want 1 kill, the 64 MiB usage, both marked, read_at kept", svc, *svc.OOMKills, *svc.MemoryPeakBytes)
	}
	if *c.Samples[0].Service.OOMKills != 0 || *c.Samples[0].Service.MemoryPeakBytes != low || c.Samples[0].Service.FromKernelLog != nil {
		t.Error("the exit's own sample was changed")
	}
	// Without the header: the count alone; a peak read above the usage stays.
	s = withKernelKills(exitCapture(exit, readAt), 0, []logs.OOMReport{{At: exit, Kill: logs.OOMKill{PID: 3406, Name: "dead-drop"}}})
	if *s.Service.OOMKills != 1 || *s.Service.MemoryPeakBytes != 64<<20 || !slices.Equal(s.Service.FromKernelLog, []string{"oom_kills"}) {
		t.Errorf("service %+v: want oom_kills 1 alone from the kernel", s.Service)
	}
	if d, want := kernelDetail(logs.OOMReports(guestLines(exit)[3:]), s),
		"the kernel logged an OOM kill of dead-drop (PID 3406) in /system.slice/dead-drop.service; the cgroup was gone before its oom_kill was read: oom_kills here is the kernel's report"; d != want {
		t.Errorf("detail %q, want %q", d, want)
	}
	if d := kernelSays(logs.OOMReports(guestLines(exit)), ddCgroup); d != "the kernel logged 2 OOM kills: dead-drop (PID 3341), dead-drop (PID 3406) in "+ddCgroup {
		t.Errorf("two kills: %q", d)
	}
}

// kernelJournal is a journalctl whose kernel transport holds lines only
// from its reading number from on (1: the first; the journal lagging
// the kernel), and whose unit journal is empty. It counts the kernel's
// readings.
func kernelJournal(t *testing.T, lines []capture.KernelLine, from int) (logs.Journalctl, func() int) {
	t.Helper()
	dir := t.TempDir()
	var out strings.Builder
	for _, l := range lines {
		b, _ := json.Marshal(map[string]string{"__REALTIME_TIMESTAMP": fmt.Sprint(l.At.UnixMicro()), "_TRANSPORT": "kernel", "PRIORITY": "3", "MESSAGE": l.Text})
		out.Write(append(b, '\n'))
	}
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(filepath.Join(dir, "kernel"), []byte(out.String()), 0o644))
	must(os.MkdirAll(filepath.Join(dir, "journal", "m"), 0o755))
	must(os.WriteFile(filepath.Join(dir, "journal", "m", "system.journal"), nil, 0o644))
	script := fmt.Sprintf(`#!/bin/sh
case "$*" in *_TRANSPORT=kernel*) ;; *) exit 0;; esac
echo x >> %[1]s/reads
[ "$(wc -l < %[1]s/reads)" -ge %[2]d ] && cat %[1]s/kernel
exit 0
`, dir, from)
	p := filepath.Join(dir, "journalctl")
	must(os.WriteFile(p, []byte(script), 0o755))
	reads := func() int {
		b, _ := os.ReadFile(filepath.Join(dir, "reads"))
		return strings.Count(string(b), "\n")
	}
	return logs.Journalctl{Path: p, Dirs: []string{filepath.Join(dir, "journal")}}, reads
}

// kernelRecorder records an exit as the watcher sent it in the guest's
// failed run (PID 3406 gone, the last read 34 ms before: oom_kills 0,
// memory at the limit; no oom_kill rise), with the kernel's lines behind
// a journalctl (the hardened unit's source: no /dev/kmsg).
func kernelRecorder(t *testing.T, j logs.Journalctl, follow bool) (*Recorder, trigger) {
	opt := Options{KmsgPath: filepath.Join(t.TempDir(), "no-kmsg"), Journalctl: j}
	r := newTestRecorderOpt(t, func(c *Config) { c.FailureThreshold, c.JournalLines = 1, 5 }, opt)
	if follow {
		r.unit.on, r.unit.name = true, "dead-drop.service"
		r.onUnitState(cgroup.UnitState{At: time.Now(), ActiveState: "active", SubState: "running", Result: "success", MainPID: intp(3406)})
	}
	tr := exitTrigger(3406)
	tr.detail = "cgroup emptied (last pids 3406)"
	return r, tr
}

func exitSample(r *Recorder, tr trigger) capture.Sample {
	s := r.triggerSample(tr)
	s.Service = exitCapture(tr.at, tr.at.Add(-34*time.Millisecond)).Samples[0].Service
	return s
}

// wordsUntil hands the recorder its last words until none is asked for.
func wordsUntil(t *testing.T, r *Recorder) {
	t.Helper()
	for len(r.words.asked) > 0 {
		select {
		case w := <-r.words.done:
			r.onLastWords(w)
		case <-time.After(10 * time.Second):
			t.Fatal("no last words within 10s")
		}
	}
}

// TestOOMOnKernelsWord: the watcher's exit carries no OOM rise and
// systemd says Result=signal (OOMPolicy=continue), but the kernel's lines
// report the kill of the vanished PID: the final capture has an oom
// trigger on the kernel's word, its sample the exit's with oom_kills 1
// and the usage at the kill, marked; the kernel_log keeps the lines about
// the service. Also when the journal lags: the kernel's lines are read
// again (near the limit), and the trigger is in the final file.
func TestOOMOnKernelsWord(t *testing.T) {
	for _, lag := range []int{1, 3} {
		t.Run(fmt.Sprintf("kill in reading %d", lag), func(t *testing.T) {
			now := time.Now()
			j, reads := kernelJournal(t, guestLines(now), lag)
			r, tr := kernelRecorder(t, j, false)
			tr.at = now
			r.record(tr, exitSample(r, tr))
			wordsUntil(t, r)
			_, c := readOnly(t, r)
			if got := kinds(c); !slices.Equal(got, []string{"oom", "exit"}) {
				t.Fatalf("triggers %v, want oom then its exit", got)
			}
			oom, s := c.Triggers[0], c.Samples[len(c.Samples)-2]
			if !oom.At.Equal(c.Triggers[1].At) || !strings.HasPrefix(oom.Detail, "the kernel logged an OOM kill of dead-drop (PID 3406) in /system.slice/dead-drop.service;") ||
				!strings.Contains(oom.Detail, "kernel's report") {
				t.Errorf("oom trigger %+v", oom)
			}
			if s.Trigger != "oom" || s.Service == nil || s.Service.OOMKills == nil || *s.Service.OOMKills != 1 ||
				!slices.Contains(s.Service.FromKernelLog, "oom_kills") || *s.Service.MemoryPeakBytes != 64<<20 {
				t.Errorf("oom sample's service %+v: want oom_kills 1 (one kill) marked from the kernel's log", s.Service)
			}
			if n := reads(); n != lag {
				t.Errorf("%d readings of the kernel's lines, want %d", n, lag)
			}
			killed := false
			for _, l := range c.KernelLog {
				killed = killed || strings.Contains(l.Text, "Killed process 3406 ")
			}
			if !killed || c.KernelLogMissing != "" {
				t.Errorf("kernel_log %v (%q): want the kill's line", c.KernelLog, c.KernelLogMissing)
			}
			// The report's findings read it as an OOM kill, the kernel's word.
			dc, err := capture.Decode(mustRead(t, r))
			if err != nil {
				t.Fatal(err)
			}
			var text []string
			for _, f := range findings.Explain(findings.FromCapture(dc), findings.Default) {
				text = append(text, f.Summary+": "+strings.Join(f.Evidence, "; "))
			}
			all := strings.Join(text, "\n")
			for _, want := range []string{"The kernel OOM-killed a process in the service's cgroup", "oom_kills 0 at ", "→ 1 at ", "(the kernel's log)",
				"trigger oom at 0s: the kernel logged an OOM kill of dead-drop (PID 3406)", "The OOM killer's victim: dead-drop (PID 3406)"} {
				if !strings.Contains(all, want) {
					t.Errorf("findings lack %q:\n%s", want, all)
				}
			}
		})
	}
}

// TestNoKernelWordWithoutTheKill: the kernel's lines hold only an earlier
// incident's kill and another PID's: nothing is added; near the limit the
// lines are read again, at most kernelRereads times.
func TestNoKernelWordWithoutTheKill(t *testing.T) {
	now := time.Now()
	lines := append(guestLines(now)[:3], bareKill(now.Add(10*time.Millisecond), 999))
	j, reads := kernelJournal(t, lines, 1)
	r, tr := kernelRecorder(t, j, false)
	tr.at = now
	r.record(tr, exitSample(r, tr))
	wordsUntil(t, r)
	_, c := readOnly(t, r)
	if got := kinds(c); !slices.Equal(got, []string{"exit"}) {
		t.Errorf("triggers %v, want the exit alone", got)
	}
	if n := reads(); n != 1+kernelRereads {
		t.Errorf("%d readings of the kernel's lines, want %d", n, 1+kernelRereads)
	}
}

// TestSystemdsWordWithKernelsCount: under OOMPolicy=stop systemd says
// oom-kill and the counter was missed: the oom trigger on systemd's word
// gets the kernel's count in its sample, marked, and says so.
func TestSystemdsWordWithKernelsCount(t *testing.T) {
	now := time.Now()
	j, _ := kernelJournal(t, guestLines(now), 1)
	r, tr := kernelRecorder(t, j, true)
	tr.at = now
	if !r.holdExit(tr, exitSample(r, tr)) {
		t.Fatal("the exit was not held for systemd's word")
	}
	r.onUnitState(cgroup.UnitState{At: time.Now(), ActiveState: "deactivating", SubState: "stop-sigterm", Result: "oom-kill", ExecMainCode: "killed", ExecMainStatus: intp(9), MainPID: intp(0)})
	wordsUntil(t, r)
	_, c := readOnly(t, r)
	if got := kinds(c); !slices.Equal(got, []string{"oom", "exit"}) {
		t.Fatalf("triggers %v, want oom on systemd's word then its exit", got)
	}
	oom, s := c.Triggers[0], c.Samples[len(c.Samples)-2]
	if !strings.HasPrefix(oom.Detail, oomDetail+"; the kernel logged an OOM kill of dead-drop (PID 3406)") {
		t.Errorf("detail %q", oom.Detail)
	}
	if s.Service == nil || *s.Service.OOMKills != 1 || !slices.Contains(s.Service.FromKernelLog, "oom_kills") {
		t.Errorf("oom sample's service %+v: want oom_kills 1 from the kernel's log", s.Service)
	}
	if e := c.Samples[len(c.Samples)-1]; *e.Service.OOMKills != 0 || e.Service.FromKernelLog != nil {
		t.Errorf("the exit's sample %+v changed", e.Service)
	}
}

// TestKernelsWordThenSystemds: the kernel's word came first (systemd slow
// to say anything); systemd's Result=oom-kill later adds no second oom.
func TestKernelsWordThenSystemds(t *testing.T) {
	now := time.Now()
	j, _ := kernelJournal(t, guestLines(now), 1)
	r, tr := kernelRecorder(t, j, true)
	tr.at = now
	if !r.holdExit(tr, exitSample(r, tr)) {
		t.Fatal("the exit was not held for systemd's word")
	}
	r.decideHeld(now.Add(holdMax)) // systemd said nothing in time
	wordsUntil(t, r)
	r.onUnitState(cgroup.UnitState{At: time.Now(), ActiveState: "deactivating", SubState: "stop-sigterm", Result: "oom-kill", MainPID: intp(0)})
	_, c := readOnly(t, r)
	if got := kinds(c); !slices.Equal(got, []string{"oom", "exit"}) {
		t.Fatalf("triggers %v, want one oom then the exit", got)
	}
	if d := c.Triggers[0].Detail; !strings.HasPrefix(d, "the kernel logged an OOM kill of dead-drop (PID 3406)") {
		t.Errorf("detail %q: want the kernel's word", d)
	}
}

// TestKernelCountLowerBound: oom_kills on the kernel's word never exceeds
// what the cgroup's counter held: a read after the kill already counts
// it (no sum), and a read of the cgroup before an earlier exit of the
// incident (a restart: another counter) is no base at all.
func TestKernelCountLowerBound(t *testing.T) {
	exit := time.Date(2026, 12, 1, 16, 44, 12, 0, time.UTC)
	gone := func(c *capture.Capture) {
		c.Samples[len(c.Samples)-1].Service.OOMKills, c.Samples[len(c.Samples)-1].Service.ReadAt = nil, nil
	}
	kill := []logs.OOMReport{{At: exit.Add(-10 * time.Millisecond), Kill: logs.OOMKill{PID: 3406, Name: "dead-drop"}}}

	// A trace point read 5 ms before the exit shows the kill stamped 10 ms before it.
	c := exitCapture(exit, exit)
	gone(c)
	one := uint64(1)
	c.ServiceTrace = []capture.TracePoint{{At: exit.Add(-5 * time.Millisecond), OOMKills: &one}}
	if at, n := lastRead(c, 0); n == nil || *n != 1 || !at.Equal(exit.Add(-5*time.Millisecond)) {
		t.Fatalf("last read %v %v: want the trace point's", at, n)
	}
	if s := withKernelKills(c, 0, kill); *s.Service.OOMKills != 1 {
		t.Errorf("oom_kills %d: want 1, the one kill the read already counted", *s.Service.OOMKills)
	}

	// Two exits (a restart between): the first's read (oom_kills 3, the old
	// cgroup's) is no base for the second, whose cgroup was gone unread.
	c = exitCapture(exit, exit.Add(-time.Millisecond))
	three := uint64(3)
	c.Samples[0].Service.OOMKills = &three
	second := exit.Add(5 * time.Second)
	c.Triggers = append(c.Triggers, capture.Trigger{Kind: capture.TriggerExit, At: second})
	s2 := c.Samples[0]
	s2.At, s2.Service = second, new(*s2.Service)
	c.Samples = append(c.Samples, s2)
	gone(c)
	c.ServiceTrace = []capture.TracePoint{{At: exit.Add(-2 * time.Millisecond), OOMKills: &three}}
	if at, n := lastRead(c, 1); n != nil || !at.Equal(second.Add(-kernelNoRead)) {
		t.Errorf("last read for the second exit %v (count %v): want none, %v before it", at, n, kernelNoRead)
	}
	kill[0].At = second.Add(-10 * time.Millisecond)
	if s := withKernelKills(c, 1, kill); *s.Service.OOMKills != 1 {
		t.Errorf("oom_kills %d: want 1, the kernel's one kill, not the earlier cgroup's count", *s.Service.OOMKills)
	}
}

// TestKernelsWordInOrder: the kernel's word comes after a later health
// trigger: the oom trigger goes before the exit it ended (the kill came
// first), triggers stay oldest first, and each trigger's sample is still
// samples[len(samples)-len(triggers)+i].
func TestKernelsWordInOrder(t *testing.T) {
	now := time.Now()
	j, _ := kernelJournal(t, guestLines(now), 1)
	r, tr := kernelRecorder(t, j, false)
	tr.at = now
	r.record(tr, exitSample(r, tr))
	h := trigger{kind: capture.TriggerHealth, at: now.Add(300 * time.Millisecond), detail: "HTTP 503"}
	r.record(h, r.triggerSample(h))
	wordsUntil(t, r)
	_, c := readOnly(t, r)
	if got := kinds(c); !slices.Equal(got, []string{"oom", "exit", "health"}) {
		t.Fatalf("triggers %v, want oom, exit, health", got)
	}
	for i, tr := range c.Triggers {
		if i > 0 && tr.At.Before(c.Triggers[i-1].At) {
			t.Errorf("trigger %d (%s) at %v before trigger %d", i, tr.Kind, tr.At, i-1)
		}
		s := c.Samples[len(c.Samples)-len(c.Triggers)+i]
		if s.Trigger != tr.Kind {
			t.Errorf("trigger %d (%s): its sample is a %q trigger's", i, tr.Kind, s.Trigger)
		}
		kernel := s.Service != nil && len(s.Service.FromKernelLog) > 0
		if kernel != (tr.Kind == capture.TriggerOOM) {
			t.Errorf("trigger %d (%s): sample's from_kernel_log %v", i, tr.Kind, s.Service)
		}
	}
	if !c.Triggers[0].At.Equal(c.Triggers[1].At) || !c.TransitionTime.Equal(c.Triggers[0].At) {
		t.Errorf("oom at %v, exit at %v, transition_time %v: want all the exit's", c.Triggers[0].At, c.Triggers[1].At, c.TransitionTime)
	}
	if len(r.inc.gone) != 3 || r.inc.gone[0] != nil || !slices.Equal(r.inc.gone[1], []int{3406}) {
		t.Errorf("gone %v: want [nil [3406] nil], aligned with the triggers", r.inc.gone)
	}
}

// TestKernelsWordNotInRing: the oom trigger's sample on the kernel's word
// (a copy of the exit's, with the kernel's values) and on systemd's word
// (a copy as read) stay out of the ring: no later incident's samples
// before its failure carry from_kernel_log or a second copy of the exit.
func TestKernelsWordNotInRing(t *testing.T) {
	check := func(t *testing.T, r *Recorder, before int) {
		t.Helper()
		ring := r.samples.snapshot()
		if len(ring) != before {
			t.Errorf("ring of %d samples after the oom trigger, want %d (the exit's alone)", len(ring), before)
		}
		for _, s := range ring {
			if s.Service != nil && len(s.Service.FromKernelLog) > 0 {
				t.Errorf("ring sample at %v carries from_kernel_log %v", s.At, s.Service.FromKernelLog)
			}
		}
	}
	t.Run("the kernel's word", func(t *testing.T) {
		now := time.Now()
		j, _ := kernelJournal(t, guestLines(now), 1)
		r, tr := kernelRecorder(t, j, false)
		tr.at = now
		r.record(tr, exitSample(r, tr))
		n := r.samples.len()
		wordsUntil(t, r)
		if _, c := readOnly(t, r); !slices.Contains(kinds(c), "oom") {
			t.Fatalf("triggers %v: no oom on the kernel's word", kinds(c))
		}
		check(t, r, n)
	})
	t.Run("systemd's word", func(t *testing.T) {
		j, _ := kernelJournal(t, nil, 1)
		r, tr := kernelRecorder(t, j, true)
		tr.at = time.Now()
		if !r.holdExit(tr, exitSample(r, tr)) {
			t.Fatal("the exit was not held for systemd's word")
		}
		n := r.samples.len()
		r.onUnitState(cgroup.UnitState{At: time.Now(), ActiveState: "deactivating", SubState: "stop-sigterm", Result: "oom-kill", MainPID: intp(0)})
		if _, c := readOnly(t, r); !slices.Contains(kinds(c), "oom") {
			t.Fatalf("triggers %v: no oom on systemd's word", kinds(c))
		}
		check(t, r, n+1)
		wordsUntil(t, r)
	})
}

// TestKernelAgainCgroupGone: the exit's sample has no memory read (the
// cgroup was gone): whether the exit came near the limit is the latest
// read before it, not one before an earlier exit (a restart).
func TestKernelAgainCgroupGone(t *testing.T) {
	exit := time.Date(2026, 12, 1, 16, 44, 12, 0, time.UTC)
	gone := func() *incident {
		c := exitCapture(exit, exit.Add(-34*time.Millisecond))
		before := c.Samples[0]
		before.At, before.Trigger = exit.Add(-500*time.Millisecond), ""
		before.Service = new(*before.Service)
		before.Service.ReadAt = nil
		c.Samples[0].Service = &capture.Service{Cgroup: ddCgroup}
		c.Samples = append([]capture.Sample{before}, c.Samples...)
		return &incident{capture: *c}
	}
	if inc := gone(); !wantKernelAgain(inc) {
		t.Error("cgroup gone at the exit, read at its limit 500 ms before: want the kernel's lines read again")
	}
	// The read at the limit was before an earlier exit of the incident.
	inc := gone()
	c := &inc.capture
	c.Triggers = append([]capture.Trigger{{Kind: capture.TriggerExit, At: exit.Add(-300 * time.Millisecond)}}, c.Triggers...)
	c.Samples = slices.Insert(c.Samples, 1, capture.Sample{At: exit.Add(-300 * time.Millisecond), Trigger: capture.TriggerExit})
	if wantKernelAgain(inc) {
		t.Error("the only read at the limit came before an earlier exit: want no reading again")
	}
}
