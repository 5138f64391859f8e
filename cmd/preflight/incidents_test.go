package main

// Captures the recorder itself makes of real incidents, read back as
// reports: a crash loop with two kills in one ring, a frozen service, a
// health endpoint slowing down toward its timeout. Each asserts the PIDs,
// times and numbers its finding names, taken from the capture.

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/preflight-rec/preflight/cgroup/cgrouptest"
	"github.com/preflight-rec/preflight/recorder/capture"
	"github.com/preflight-rec/preflight/recorder/findings"
)

// serveHelperEnv makes the test binary, re-executed, a tiny HTTP service:
// it prints its loopback port and answers 200 until killed.
const serveHelperEnv = "PREFLIGHT_TEST_SERVE"

func serveHelper() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		os.Exit(3)
	}
	fmt.Println(ln.Addr().(*net.TCPAddr).Port)
	_ = http.Serve(ln, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
}

// reportOf runs last on the newest capture of svc and returns the report.
func reportOf(t *testing.T, dir, svc string) string {
	t.Helper()
	r := readerRun(t, nil, "last", svc, "--dir", dir)
	if r.code != 0 {
		t.Fatalf("last %s: exit %d: %s", svc, r.code, r.stderr)
	}
	return r.stdout
}

// newest reads the newest capture in svcDir.
func newest(t *testing.T, svcDir string) *capture.Capture {
	t.Helper()
	files := captures(t, svcDir)
	c, _, err := capture.Read(files[len(files)-1])
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func off(c *capture.Capture, at time.Time) string { return findings.Offset(at.Sub(c.TransitionTime)) }

// TestCrashLoopReport: the service's process is killed, restarted, and
// killed again 2 s later, both within one ring. The second capture's report
// names the second process, at the second failure, and leaves the first
// incident's samples out.
func TestCrashLoopReport(t *testing.T) {
	cg := cgrouptest.New(t, "preflight-loop")
	p1 := cgrouptest.StartSleep(t)
	cg.Move(t, p1.PID)
	h := newHealthServer(t)
	dir := t.TempDir()
	cmd, log := startRecorder(t, []string{"PREFLIGHT_SERVICE=loop", "PREFLIGHT_HEALTH_URL=" + h.URL,
		"PREFLIGHT_INTERVAL_SECONDS=0.25", "PREFLIGHT_BUFFER_SAMPLES=40", "PREFLIGHT_CGROUP=" + cg.Path}, "--dir", dir)
	waitState(t, dir, "loop", cmd.Process.Pid, capture.StateHealthy)
	svcDir := filepath.Join(dir, "loop")
	time.Sleep(capture.MinRateWindow + 500*time.Millisecond)

	p1.Kill()
	<-p1.Done
	waitFor(t, 5*time.Second, "the first capture", func() bool { return len(captures(t, svcDir)) == 1 })
	p2 := cgrouptest.StartSleep(t)
	cg.Move(t, p2.PID)
	waitFor(t, 5*time.Second, "the first incident's end", func() bool {
		st, _ := readStateFile(dir, "loop")
		return st != nil && st.OpenIncident == ""
	})
	time.Sleep(2 * time.Second)
	p2.Kill()
	<-p2.Done
	waitFor(t, 5*time.Second, "the second capture", func() bool { return len(captures(t, svcDir)) == 2 })

	c := newest(t, svcDir)
	earlier := -1
	for i, s := range c.Samples {
		if s.At.Before(c.TransitionTime) && s.Trigger == capture.TriggerExit {
			earlier = i
		}
	}
	if earlier < 0 {
		t.Fatalf("the ring holds no sample marked as the first incident's exit trigger; log:\n%s", log)
	}
	// The change the report must tell: the last sample before the failure
	// with p2, and the one taken at the trigger.
	var prev, at *capture.Sample
	for i := range c.Samples {
		s := &c.Samples[i]
		if s.At.Before(c.TransitionTime) && s.Service != nil && len(s.Service.Processes) > 0 {
			prev = s
		} else if !s.At.Before(c.TransitionTime) && at == nil {
			at = s
		}
	}
	if prev == nil || at == nil || prev.Service.Processes[0].PID != p2.PID {
		t.Fatalf("capture lacks p2 %d before the failure or the trigger sample: %+v / %+v", p2.PID, prev, at)
	}
	// No rate over a few milliseconds: the trigger samples' rates cover at
	// least capture.MinRateWindow, as does every rate in the capture.
	for i, s := range c.Samples {
		w := s.CPU.WindowSeconds
		if w != nil && *w < capture.MinRateWindow.Seconds() || w == nil && s.CPU.Percent != nil {
			t.Errorf("sample %d (%s, trigger %q): rates over a window of %v s", i, off(c, s.At), s.Trigger, w)
		}
	}
	if w := at.CPU.WindowSeconds; w == nil || at.CPU.Percent == nil || at.Service.CPUPercent == nil {
		t.Errorf("the trigger sample has no rates (window %v): it should be computed against an older reading", w)
	}
	report := reportOf(t, dir, "loop")
	if testing.Verbose() {
		t.Log(report)
	}
	fs, _, _ := strings.Cut(report, "Timeline")
	for _, want := range []string{
		"The service's processes vanished",
		fmt.Sprintf("1 at %s → none at %s", off(c, prev.At), off(c, at.At)),
		fmt.Sprintf("gone: PID %d (sleep)", p2.PID),
		fmt.Sprintf("trigger exit at 0s: cgroup emptied (last pids %d)", p2.PID),
	} {
		if !strings.Contains(fs, want) {
			t.Errorf("findings lack %q:\n%s", want, fs)
		}
	}
	if strings.Contains(fs, fmt.Sprint(p1.PID)) {
		t.Errorf("findings name the first incident's PID %d:\n%s", p1.PID, fs)
	}
	wantSkip := fmt.Sprintf("(%d samples up to an earlier incident's exit trigger at %s not shown", earlier+1, off(c, c.Samples[earlier].At))
	if !strings.Contains(report, wantSkip) {
		t.Errorf("timeline lacks %q:\n%s", wantSkip, report)
	}
	t.Logf("crash loop: PID %d died at %s, PID %d at the failure; %d samples, %d of the earlier incident left out",
		p1.PID, off(c, c.Samples[earlier].At), p2.PID, len(c.Samples), earlier+1)
}

// TestFrozenServiceReport: the service's only process is stopped
// (SIGSTOP); its health checks time out and the capture's report says the
// process was stopped, naming it.
func TestFrozenServiceReport(t *testing.T) {
	cg := cgrouptest.New(t, "preflight-frozen")
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	svc := exec.Command(self)
	svc.Env = append(os.Environ(), serveHelperEnv+"=1")
	stdout, err := svc.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := cgrouptest.Start(t, svc)
	t.Cleanup(func() { _ = syscall.Kill(p.PID, syscall.SIGCONT) }) // before Start's kill, by PID
	cg.Move(t, p.PID)
	port, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cmd, log := startRecorder(t, []string{"PREFLIGHT_SERVICE=frozen", "PREFLIGHT_HEALTH_URL=http://127.0.0.1:" + strings.TrimSpace(port) + "/",
		"PREFLIGHT_INTERVAL_SECONDS=0.25", "PREFLIGHT_TIMEOUT_SECONDS=0.2", "PREFLIGHT_FAILURE_THRESHOLD=2",
		"PREFLIGHT_BUFFER_SAMPLES=20", "PREFLIGHT_CGROUP=" + cg.Path}, "--dir", dir)
	waitState(t, dir, "frozen", cmd.Process.Pid, capture.StateHealthy)
	if err := syscall.Kill(p.PID, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	svcDir := filepath.Join(dir, "frozen")
	waitFor(t, 10*time.Second, "a capture", func() bool { return len(captures(t, svcDir)) == 1 })
	c := newest(t, svcDir)
	// The samples showing the process stopped: the last before the failure
	// and the one at it.
	var stopped []*capture.Sample
	for i := range c.Samples {
		s := &c.Samples[i]
		if s.Service != nil && len(s.Service.Processes) == 1 && s.Service.Processes[0].State == "T" {
			stopped = append(stopped, s)
		}
	}
	if len(stopped) < 2 || stopped[len(stopped)-1].Trigger != capture.TriggerHealth {
		t.Fatalf("the capture does not show PID %d stopped up to the failure; log:\n%s", p.PID, log)
	}
	name := stopped[0].Service.Processes[0].Name
	report := reportOf(t, dir, "frozen")
	if testing.Verbose() {
		t.Log(report)
	}
	for _, want := range []string{
		"1. The service's process was stopped (state T)",
		fmt.Sprintf("stopped (state T): PID %d (%s), from %s to %s (2 samples)", p.PID, name,
			off(c, stopped[len(stopped)-2].At), off(c, stopped[len(stopped)-1].At)),
	} {
		if !strings.Contains(report, want) {
			t.Errorf("report lacks %q:\n%s", want, report)
		}
	}
}

// TestSlowHealthReport: a loopback health endpoint answering ever more
// slowly until its check times out; the report tells the climb with the
// latencies the capture holds.
func TestSlowHealthReport(t *testing.T) {
	var delay atomic.Int64 // ms
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		d := delay.Load()
		time.Sleep(time.Duration(d) * time.Millisecond)
		if d > 0 {
			delay.Store(d*2 + 20)
		}
	}))
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	cmd, log := startRecorder(t, []string{"PREFLIGHT_SERVICE=slow", "PREFLIGHT_HEALTH_URL=" + srv.URL,
		"PREFLIGHT_INTERVAL_SECONDS=1", "PREFLIGHT_TIMEOUT_SECONDS=0.9", "PREFLIGHT_BUFFER_SAMPLES=20"}, "--dir", dir)
	waitState(t, dir, "slow", cmd.Process.Pid, capture.StateHealthy)
	time.Sleep(2 * time.Second) // a few fast checks
	delay.Store(20)             // then 20, 60, 140, 300, 620 ms, 1.26 s: a timeout
	svcDir := filepath.Join(dir, "slow")
	waitFor(t, 20*time.Second, "a capture", func() bool { return len(captures(t, svcDir)) == 1 })
	time.Sleep(200 * time.Millisecond)
	c := newest(t, svcDir)
	var last, failed *capture.Check
	for i := range c.Health {
		h := &c.Health[i]
		if h.OK && h.At.Before(c.TransitionTime) {
			last = h
		}
		if !h.OK && failed == nil {
			failed = h
		}
	}
	if last == nil || failed == nil || last.LatencyMS < 300 {
		t.Fatalf("the capture lacks the climb: %+v; log:\n%s", c.Health, log)
	}
	report := reportOf(t, dir, "slow")
	if testing.Verbose() {
		t.Log(report)
	}
	for _, want := range []string{
		"The health check's latency climbed before the failure",
		fmt.Sprintf("→ %s at %s, slower than the check before in", findings.Latency(last.LatencyMS), off(c, last.At)),
		fmt.Sprintf("then the check at %s failed after %s: %s", off(c, failed.At), findings.Latency(failed.LatencyMS), failed.Error),
	} {
		if !strings.Contains(report, want) {
			t.Errorf("report lacks %q:\n%s", want, report)
		}
	}
}
