package main

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/preflight-rec/preflight/cgroup/cgrouptest"
	"github.com/preflight-rec/preflight/recorder/capture"
	"github.com/preflight-rec/preflight/recorder/logs"
)

// TestOOMKernelLog: a process OOM-killed in a real cgroup (a 32 MiB v1
// limit) → the capture is rewritten with the kernel's "Killed process PID"
// line in kernel_log (read from /dev/kmsg: the test runs as root), the
// report shows it under its heading, and the finding names the victim.
// This machine has no journal: journal is absent and the capture says why.
func TestOOMKernelLog(t *testing.T) {
	cg := cgrouptest.New(t, "preflight-cli-test")
	if cg.V1Memory == "" {
		t.Skip("no v1 memory controller: the limit would be cgroup2's (not on this kind of host)")
	}
	if f, err := os.Open("/dev/kmsg"); err != nil {
		t.Skipf("the kernel log is not readable here: %v", err)
	} else {
		f.Close()
	}
	cg.LimitMemory(t, 32<<20)
	main := cgrouptest.StartSleep(t)
	cg.Move(t, main.PID)
	dir, log := scopedRecorder(t, cg)

	p, allocate := startAllocator(t, cg)
	allocate()
	waitCapture(t, dir, 2*time.Second, log) // first written without the words
	var c *capture.Capture
	var file string
	waitFor(t, 10*time.Second, "the capture rewritten with the kernel's words", func() bool {
		files := captures(t, dir+"/scoped")
		if len(files) == 0 {
			return false
		}
		file = files[0]
		var err error
		c, _, err = capture.Read(file)
		return err == nil && (c.KernelLog != nil || c.KernelLogMissing != "")
	})
	if c.KernelLog == nil {
		t.Fatalf("kernel_log absent: %s", c.KernelLogMissing)
	}
	var killed string
	for _, l := range c.KernelLog {
		t.Logf("kernel_log %s: %s", l.At.Sub(c.TransitionTime), l.Text)
		if k, ok := logs.ParseOOMKill(l.Text); ok && k.PID == p.PID {
			killed = l.Text
			// At least most of the 32 MiB limit; more is possible (pages the
			// process touched before it was moved in are not charged to a
			// v1 cgroup, and the race detector's shadow is anonymous too).
			if !k.Memcg || k.AnonRSSBytes < 16<<20 || k.AnonRSSBytes > 512<<20 {
				t.Errorf("the victim's line %q: want a memory cgroup kill with 16–512 MiB anonymous", l.Text)
			}
			if d := l.At.Sub(c.TransitionTime); d > time.Second || d < -5*time.Second {
				t.Errorf("the kill logged at %s from the trigger: the monotonic stamp was converted wrongly", d)
			}
		}
	}
	if killed == "" {
		t.Fatalf("no \"Killed process %d\" line in kernel_log", p.PID)
	}
	// The kernel's report of the same kill, parsed from all its lines as
	// the recorder's kernel's word reads it: the victim, the cgroup, and
	// (where the ratelimited header was printed) the usage at the limit.
	lines, err := logs.KmsgLines("/dev/kmsg", c.TransitionTime.Add(-time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	var rep *logs.OOMReport
	for _, r := range logs.OOMReports(lines) {
		if r.Kill.PID == p.PID {
			rep = &r
		}
	}
	switch {
	case rep == nil:
		t.Errorf("OOMReports: no report of PID %d", p.PID)
	case rep.OOMMemcg == "":
		t.Logf("the kill's header was ratelimited (other OOM kills on this host): the victim's line alone")
	case !rep.Names(cg.Path) || rep.UsageBytes == nil || *rep.UsageBytes < 30<<20 || *rep.UsageBytes > 32<<20 ||
		rep.LimitBytes == nil || *rep.LimitBytes != 32<<20:
		t.Errorf("report %+v (usage %s, limit %s): want the kill in %s at its 32 MiB limit", *rep, fmtU64(rep.UsageBytes), fmtU64(rep.LimitBytes), cg.Path)
	default:
		t.Logf("the kernel's report: PID %d in %s, usage %d of %d bytes", rep.Kill.PID, rep.OOMMemcg, *rep.UsageBytes, *rep.LimitBytes)
	}
	if c.Journal != nil || c.JournalMissing == "" {
		t.Errorf("journal %v, journal_missing %q: want absent, and why", c.Journal, c.JournalMissing)
	}
	r := preflight(t, nil, "show", file)
	if r.code != 0 {
		t.Fatalf("show: exit %d: %s", r.code, r.stderr)
	}
	for _, want := range []string{"Kernel log about the service", fmt.Sprintf("Killed process %d (", p.PID),
		fmt.Sprintf("The OOM killer's victim: %s (PID %d) with ", strings.TrimSpace(killedName(killed)), p.PID),
		"Journal of the unit", "not read: " + c.JournalMissing} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("the report lacks %q:\n%s", want, r.stdout)
		}
	}
	h := preflight(t, nil, "show", "--html", file)
	if !strings.Contains(h.stdout, "<h2>Kernel log about the service</h2>") || !strings.Contains(h.stdout, fmt.Sprintf("Killed process %d (", p.PID)) {
		t.Errorf("the page lacks the kernel's line")
	}
}

func killedName(line string) string {
	k, _ := logs.ParseOOMKill(line)
	return k.Name
}

// The report and the page show the last words under their headings: the
// kernel's lines with their offsets, the journal's with priority names,
// a log not read with its reason, and a hostile line made harmless.
func TestLogSectionsRendered(t *testing.T) {
	c, _, err := capture.Read(fixturePath(t, "oom-drop"))
	if err != nil {
		t.Fatal(err)
	}
	t0 := c.TransitionTime
	c.KernelLog = []capture.KernelLine{{At: t0.Add(-1500 * time.Millisecond),
		Text: "Memory cgroup out of memory: Killed process 4242 (eat) total-vm:1048576kB, anon-rss:61440kB, file-rss:0kB, shmem-rss:0kB, UID:0 pgtables:200kB oom_score_adj:0"}}
	c.Journal = []capture.JournalLine{
		{At: t0.Add(-2 * time.Second), Priority: 6, Text: "serving"},
		{At: t0.Add(-time.Second), Priority: 3, Text: "evil \x1b[31m</td><script>x</script>"},
	}
	fixReaderClock(t)
	var b strings.Builder
	if err := writeReport(&b, c, "/x.json", out{now: fixedNow}); err != nil {
		t.Fatal(err)
	}
	r := b.String()
	for _, want := range []string{
		"\nKernel log about the service\n    -1.5s  Memory cgroup out of memory: Killed process 4242 (eat) total-vm:",
		"\nJournal: the unit's last 2 lines\n    -2.0s  info    serving\n    -1.0s  err     evil \\x1b[31m</td><script>x</script>\n",
		"The OOM killer's victim: eat (PID 4242) with 60MiB of anonymous memory (its cgroup's memory limit)",
	} {
		if !strings.Contains(r, want) {
			t.Errorf("the report lacks %q:\n%s", want, r)
		}
	}
	if strings.Index(r, "Journal:") > strings.Index(r, "\nFile: ") {
		t.Error("the logs come after File:, which is the last line")
	}
	var h strings.Builder
	if err := writeHTML(&h, c, "/x.json"); err != nil {
		t.Fatal(err)
	}
	if bad := selfContained(h.String()); len(bad) > 0 || strings.Contains(h.String(), "<script>x") {
		t.Errorf("a journal line became markup: %q", bad)
	}
	for _, want := range []string{"<h2>Kernel log about the service</h2>", "<td>err</td>", "Killed process 4242 (eat)"} {
		if !strings.Contains(h.String(), want) {
			t.Errorf("the page lacks %q", want)
		}
	}

	c.KernelLog, c.KernelLogMissing = nil, "/dev/kmsg: permission denied; journal: no access to the system journal"
	c.Journal, c.JournalMissing = nil, "disabled (JOURNAL_LINES is 0)"
	b.Reset()
	writeReport(&b, c, "/x.json", out{now: fixedNow})
	for _, want := range []string{"\nKernel log about the service\n  not read: /dev/kmsg: permission denied; journal: no access",
		"\nJournal of the unit\n  not read: disabled (JOURNAL_LINES is 0)\n"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("the report lacks %q:\n%s", want, b.String())
		}
	}
}

// TestSegfaultKernelLog: the service's only process dies of a segfault in
// libc (python3 reading address 0) → an exit capture rewritten with the
// kernel's segfault line, and the finding names the process and library.
func TestSegfaultKernelLog(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("needs python3 to segfault on request")
	}
	if f, err := os.Open("/dev/kmsg"); err != nil {
		t.Skipf("the kernel log is not readable here: %v", err)
	} else {
		f.Close()
	}
	cg := cgrouptest.New(t, "preflight-cli-test")
	// The process waits for a line, then faults: in the cgroup, and in the
	// recorder's first sample, before it dies.
	cmd := exec.Command(py, "-c", "import sys, ctypes; sys.stdin.readline(); ctypes.string_at(0)")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := cgrouptest.Start(t, cmd)
	cg.Move(t, p.PID)
	dir, log := scopedRecorder(t, cg)
	stdin.Write([]byte("\n"))
	waitCapture(t, dir, 5*time.Second, log)
	var c *capture.Capture
	var file string
	waitFor(t, 10*time.Second, "the capture rewritten with the kernel's words", func() bool {
		files := captures(t, dir+"/scoped")
		file = files[0]
		c, _, err = capture.Read(file)
		return err == nil && (c.KernelLog != nil || c.KernelLogMissing != "")
	})
	found := false
	for _, l := range c.KernelLog {
		t.Logf("kernel_log %s: %s", l.At.Sub(c.TransitionTime), l.Text)
		if s, ok := logs.ParseSegfault(l.Text); ok && s.PID == p.PID {
			found = true
			if !strings.HasPrefix(s.Library, "libc.so") && !strings.HasPrefix(s.Library, "libc-") {
				t.Errorf("segfault in %q, want libc", s.Library)
			}
		}
	}
	if !found {
		t.Fatalf("no segfault line of PID %d in kernel_log (%s)", p.PID, c.KernelLogMissing)
	}
	r := preflight(t, nil, "show", file)
	if want := fmt.Sprintf("python3 (PID %d) crashed: segfault at 0 in libc", p.PID); !strings.Contains(r.stdout, want) {
		t.Errorf("the report lacks %q:\n%s", want, r.stdout)
	}
}

// fmtU64 shows a value that may be absent.
func fmtU64(p *uint64) string {
	if p == nil {
		return "absent"
	}
	return strconv.FormatUint(*p, 10)
}
