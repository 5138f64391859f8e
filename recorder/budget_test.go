package recorder

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"

	"github.com/preflight-rec/preflight/cgroup/cgrouptest"
	"github.com/preflight-rec/preflight/recorder/capture"
	"github.com/preflight-rec/preflight/recorder/sample"
)

// captureBudget is the bound on a capture at the default settings
// (20 samples, top 5, the 1 s trace over 120 s) on a host of 2,000
// processes, with a service of 10.
const captureBudget = 96 << 10

// TestCaptureBudget builds a capture at the defaults from this machine's
// real /proc with 2,000 more sleeping processes and a real cgroup holding
// a service of 10 processes with long command lines: 20 samples and the one
// at the trigger, 20 checks, and 121 trace points read from the cgroup
// (stamped a second apart). It must stay within captureBudget.
func TestCaptureBudget(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 2,000 processes")
	}
	c := budgetCapture(t)
	data, err := capture.Encode(c)
	if err != nil {
		t.Fatal(err)
	}
	var trace []byte
	if tj, err := capture.Encode(&capture.Capture{ServiceTrace: c.ServiceTrace}); err == nil {
		trace = tj
	}
	host := c.Samples[20].Processes
	t.Logf("capture %d bytes (%.1f KiB) at %d host processes: %d samples, %d trace points (≈%d bytes)",
		len(data), float64(len(data))/1024, host, len(c.Samples), len(c.ServiceTrace), len(trace))
	if host < 2000 {
		t.Errorf("the host shows %d processes, want ≥ 2000", host)
	}
	if got := len(c.Samples[20].Service.Processes); got != 10 {
		t.Errorf("the service shows %d processes, want 10", got)
	}
	if len(c.ServiceTrace) < 120 || len(c.Samples[20].TopCPU) != 5 {
		t.Errorf("%d trace points, %d top-CPU processes: want ≥ 120 and 5", len(c.ServiceTrace), len(c.Samples[20].TopCPU))
	}
	if len(data) > captureBudget {
		t.Errorf("capture is %d bytes, over the budget of %d", len(data), captureBudget)
	}
}

// BenchmarkCaptureSize encodes the capture of TestCaptureBudget: its size
// (bytes/capture) and the cost of encoding it.
func BenchmarkCaptureSize(b *testing.B) {
	c := budgetCapture(b)
	var data []byte
	for b.Loop() {
		var err error
		if data, err = capture.Encode(c); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(data)), "bytes/capture")
	b.ReportMetric(float64(c.Samples[len(c.Samples)-1].Processes), "host-procs")
}

// budgetCapture builds the capture of TestCaptureBudget.
func budgetCapture(t testing.TB) *capture.Capture {
	cg := cgrouptest.New(t, "preflight-budget")
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		// One process each, blocked reading a FIFO it holds open for writing
		// too, with a worker's command line.
		args := fmt.Sprintf("/opt/drop/bin/worker --config /etc/drop/worker.yaml --queue jobs-%d --concurrency 8 --log-format json", i)
		cg.Move(t, cgrouptest.Start(t, exec.Command("sh", append([]string{"-c", "read x <>" + fifo}, strings.Fields(args)...)...)).PID)
	}
	for range 2000 {
		cgrouptest.StartSleep(t)
	}
	cfg := Config{Service: "drop", Unit: "drop.service", Cgroup: cg.Path, ServiceIntervalSeconds: 1, TraceSeconds: 120,
		BufferSamples: 20, TopProcesses: 5}
	sc := newScope(cfg, cgrouptest.Root, zerolog.Nop())
	if sc == nil {
		t.Skip("no cgroup file system here")
	}
	sc.procRoot = "/proc"
	sm, err := sample.New("/proc", cfg.TopProcesses)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(capture.MinRateWindow) // rates, and top-CPU lists, from here on
	start := time.Now()
	pids, _ := sc.fs.Procs(cg.Path)
	c := capture.Capture{Schema: capture.Schema, Service: "drop", Host: "db-7.example.internal",
		HealthURL: "https://drop.example.internal/healthz", Unit: "drop.service", IntervalSeconds: 30,
		ServiceIntervalSeconds: 1, PreflightVersion: "0.0.0~git20261201.512.abcdef0"}
	for i := range 21 {
		at := start.Add(time.Duration(i-20) * 30 * time.Second)
		s, procs := sm.Sample(at.UTC(), pids)
		s.Service = sc.service(cg.Path, time.Now(), procs)
		if i == 20 {
			s.Trigger = capture.TriggerHealth
		}
		c.Samples = append(c.Samples, s)
		c.Health = append(c.Health, capture.Check{At: at.UTC(), OK: i < 20, LatencyMS: 3.217, StatusCode: 200})
	}
	c.TransitionTime = c.Samples[20].At
	c.Triggers = []capture.Trigger{{Kind: capture.TriggerHealth, At: c.TransitionTime, Detail: "HTTP 503 Service Unavailable"}}
	c.HealthError = c.Triggers[0].Detail
	tr := newTrace(cfg, sc, "/proc", nil)
	for i := range 121 {
		if !tr.read(cg.Path, start.Add(time.Duration(i-120)*time.Second), nil) {
			t.Fatal("cgroup not read")
		}
	}
	c.ServiceTrace = tr.between(c.TransitionTime.Add(-tr.keep), time.Time{}, c.TransitionTime)
	return &c
}
