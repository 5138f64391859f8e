package main

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/preflight-rec/preflight/cgroup/cgrouptest"
	"github.com/preflight-rec/preflight/recorder/capture"
)

// growHelperEnv makes the test binary, re-executed, a leaking service: it
// waits for a byte on stdin (sent once it is in its cgroup), then touches
// 8 MiB more every second for 8 s, and exits 1.
const growHelperEnv = "PREFLIGHT_TEST_GROW"

func growHelper() {
	_, _ = io.ReadFull(os.Stdin, make([]byte, 1))
	var kept [][]byte
	for range 8 {
		b := make([]byte, 8<<20)
		for i := 0; i < len(b); i += 4096 {
			b[i] = 1
		}
		kept = append(kept, b)
		time.Sleep(time.Second)
	}
	runtime.KeepAlive(kept)
	os.Exit(1)
}

// fdsHelperEnv makes the test binary, re-executed, open files up to a soft
// RLIMIT_NOFILE of 256: it waits for a byte on stdin, opens /dev/null until
// the kernel refuses, prints "full N", and waits to be killed (or stdin to
// close).
const fdsHelperEnv = "PREFLIGHT_TEST_FDS"

func fdsHelper() {
	_, _ = io.ReadFull(os.Stdin, make([]byte, 1))
	lim := unix.Rlimit{Cur: 256, Max: 256}
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		os.Exit(2)
	}
	n := 0
	for {
		if _, err := unix.Open("/dev/null", unix.O_RDONLY, 0); err != nil {
			break
		}
		n++
	}
	os.Stdout.WriteString("full " + strconv.Itoa(n) + "\n")
	// Blocked in read(2) until killed: a timer would need the runtime's
	// epoll descriptor, which the limit no longer allows.
	for {
		if _, err := unix.Read(0, make([]byte, 1)); err != nil && err != unix.EINTR {
			os.Exit(0)
		}
	}
}

// startHelper runs the test binary as the helper env names, in cg, and
// returns it and its stdin (the start signal) and stdout.
func startHelper(t *testing.T, cg *cgrouptest.Cgroup, env string) (*cgrouptest.Proc, io.Writer, *bufio.Reader) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), env+"=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := cgrouptest.Start(t, cmd)
	cg.Move(t, p.PID)
	return p, stdin, bufio.NewReader(stdout)
}

// TestTraceShowsGrowth is the test of the fine trace: a service
// that grows 8 MiB/s for 8 s and exits, under a 30 s interval, leaves a
// capture whose service trace shows at least 6 points of growth before the
// exit (the ring has one sample of it at most).
func TestTraceShowsGrowth(t *testing.T) {
	cg := cgrouptest.New(t, "preflight-cli-test")
	grow, start, _ := startHelper(t, cg, growHelperEnv)
	h := newHealthServer(t)
	dir := t.TempDir()
	_, log := startRecorder(t, []string{
		"PREFLIGHT_SERVICE=scoped",
		"PREFLIGHT_HEALTH_URL=" + h.URL,
		"PREFLIGHT_INTERVAL_SECONDS=30",
		"PREFLIGHT_CGROUP=" + cg.Path,
	}, "--dir", dir)
	waitFor(t, 10*time.Second, "the recorder's first check", func() bool {
		st, err := capture.ReadState(dir, "scoped")
		return err == nil && st.State == capture.StateHealthy
	})
	start.Write([]byte{1})
	select {
	case <-grow.Done:
	case <-time.After(20 * time.Second):
		t.Fatal("the growing process did not exit within 20 s")
	}
	c := waitCapture(t, dir, 2*time.Second, log)
	if c.Triggers[0].Kind != capture.TriggerExit {
		t.Fatalf("triggers %+v, want exit", c.Triggers)
	}
	if c.ServiceIntervalSeconds != 1 {
		t.Errorf("service_interval_seconds %v, want 1", c.ServiceIntervalSeconds)
	}
	growth := 0
	var prev uint64
	var last capture.TracePoint
	for _, p := range c.ServiceTrace {
		if !p.At.Before(c.TransitionTime) || p.Trigger != "" || p.MemoryBytes == nil {
			continue
		}
		if prev != 0 && *p.MemoryBytes >= prev+4<<20 {
			growth++
		}
		prev, last = *p.MemoryBytes, p
	}
	t.Logf("%d trace points, %d of growth before the exit; last before it: %d MiB, rss %d MiB",
		len(c.ServiceTrace), growth, prev>>20, last.RSSBytes>>20)
	if growth < 6 {
		t.Errorf("the trace shows %d points of growth (≥ 4 MiB each) before the exit, want ≥ 6: %+v", growth, c.ServiceTrace)
	}
	if prev < 48<<20 {
		t.Errorf("the last point before the exit shows %d MiB, want ≥ 48", prev>>20)
	}
	final := c.ServiceTrace[len(c.ServiceTrace)-1]
	if final.Trigger != capture.TriggerExit || final.Pids != 0 {
		t.Errorf("the trace should end with the exit's point, no processes: %+v", final)
	}
	for i := 1; i < len(c.ServiceTrace); i++ {
		if c.ServiceTrace[i].At.Before(c.ServiceTrace[i-1].At) {
			t.Fatalf("trace not oldest first at %d", i)
		}
	}
	r := preflight(t, nil, "last", "--dir", dir, "scoped")
	for _, want := range []string{"Service trace (every 1.0s, relative to the failure)", "The service's memory grew", "MiB/s in its last", "← exit"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("the report lacks %q:\n%s", want, r.stdout)
		}
	}
	if h := preflight(t, nil, "last", "--dir", dir, "--html", "scoped"); !strings.Contains(h.stdout, "trace, every 1.0s") {
		t.Errorf("the HTML page's memory chart lacks the trace series")
	}
}

// TestFDsAtTheirLimit: a service process that opened files up to a soft
// limit of 256 shows fds and fd_limit in the capture, and the report says
// "256 of 256 open files".
func TestFDsAtTheirLimit(t *testing.T) {
	cg := cgrouptest.New(t, "preflight-cli-test")
	p, start, out := startHelper(t, cg, fdsHelperEnv)
	start.Write([]byte{1})
	line, err := out.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "full ") {
		t.Fatalf("helper said %q, %v", line, err)
	}
	dir, log := scopedRecorder(t, cg)
	p.Kill()
	c := waitCapture(t, dir, 2*time.Second, log)
	pre := lastBefore(c)
	if pre == nil || pre.Service == nil {
		t.Fatalf("no sample with the service before the failure")
	}
	var proc *capture.Process
	for i := range pre.Service.Processes {
		if pre.Service.Processes[i].PID == p.PID {
			proc = &pre.Service.Processes[i]
		}
	}
	if proc == nil || proc.FDs == nil || proc.FDLimit == nil {
		t.Fatalf("process %d lacks fds or fd_limit: %+v", p.PID, proc)
	}
	if *proc.FDs != 256 || *proc.FDLimit != 256 {
		t.Errorf("fds %d, fd_limit %d: want 256 and 256 (helper: %q)", *proc.FDs, *proc.FDLimit, strings.TrimSpace(line))
	}
	files := captures(t, dir+"/scoped")
	r := preflight(t, nil, "show", files[0])
	if !strings.Contains(r.stdout, "256 of 256 open files") {
		t.Errorf("the report lacks the finding \"256 of 256 open files\":\n%s", r.stdout)
	}
}
