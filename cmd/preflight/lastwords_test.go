package main

import (
	"fmt"
	"os"
	"os/exec"
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

	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	alloc := exec.Command(self)
	alloc.Env = append(os.Environ(), allocHelperEnv+"=1")
	stdin, err := alloc.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := cgrouptest.Start(t, alloc)
	cg.Move(t, p.PID)
	stdin.Write([]byte{1})
	select {
	case <-p.Done:
	case <-time.After(10 * time.Second):
		t.Fatal("the allocating process was not killed within 10s")
	}
	waitCapture(t, dir, 2*time.Second, log) // first written without the words
	var c *capture.Capture
	var file string
	waitFor(t, 10*time.Second, "the capture rewritten with the kernel's words", func() bool {
		files := captures(t, dir+"/scoped")
		if len(files) == 0 {
			return false
		}
		file = files[0]
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
			if !k.Memcg || k.AnonRSSBytes < 16<<20 || k.AnonRSSBytes > 40<<20 {
				t.Errorf("the victim's line %q: want a memory cgroup kill with 16–40 MiB anonymous", l.Text)
			}
			if d := l.At.Sub(c.TransitionTime); d > time.Second || d < -5*time.Second {
				t.Errorf("the kill logged at %s from the trigger: the monotonic stamp was converted wrongly", d)
			}
		}
	}
	if killed == "" {
		t.Fatalf("no \"Killed process %d\" line in kernel_log", p.PID)
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
