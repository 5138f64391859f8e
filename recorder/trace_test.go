package recorder

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/preflight-rec/preflight/cgroup"
	"github.com/preflight-rec/preflight/cgroup/cgrouptest"
	"github.com/preflight-rec/preflight/recorder/capture"
)

func u64p(v uint64) *uint64 { return &v }

// The warning signs: memory within 10 % of its limit, memory.events high or
// max rising, memory pressure, a slow health check; none in a calm reading.
func TestTraceWarningSigns(t *testing.T) {
	var tr trace
	calm := cgroup.TraceStats{MemoryBytes: u64p(50 << 20), MemoryMaxBytes: u64p(100 << 20), MemoryHighEvents: u64p(3), MemoryMaxEvents: u64p(0)}
	if s := tr.warning("/a", &calm); s != "" {
		t.Errorf("calm reading: signs %q", s)
	}
	near := calm
	near.MemoryBytes = u64p(91 << 20)
	near.MemoryHighEvents = u64p(4)
	psi := 12.5
	near.MemorySomeAvg10 = &psi
	s := tr.warning("/a", &near)
	for _, want := range []string{"memory within 10% of its limit", "memory.events high rising", "memory pressure 12.5% (some avg10)"} {
		if !strings.Contains(s, want) {
			t.Errorf("signs %q lack %q", s, want)
		}
	}
	if s := tr.warning("/b", &near); strings.Contains(s, "rising") {
		t.Errorf("another cgroup's counters compared: %q", s)
	}
	tr.onCheck(capture.Check{OK: true, LatencyMS: 6000}, 10*time.Second)
	if s := tr.warning("/b", &calm); s != "health check took 6000 ms of its 10000 ms timeout" {
		t.Errorf("slow check: signs %q", s)
	}
	tr.onCheck(capture.Check{OK: true, LatencyMS: 40}, 10*time.Second)
	if s := tr.warning("/b", &calm); s != "" {
		t.Errorf("after a fast check: signs %q", s)
	}
}

// Early samples: at most one a second, at most limit in an episode, and a
// new episode only after the signs fell; none when the interval is already
// a second or less.
func TestEarlySamplesBounded(t *testing.T) {
	var tr trace
	now := time.Now()
	step := func(d time.Duration) time.Time { now = now.Add(d); return now }
	tr.signs = "memory within 10% of its limit"
	n := 0
	for range 20 {
		if why, due := tr.earlyDue(step(500*time.Millisecond), 30*time.Second, 4); due {
			n++
			if why != tr.signs {
				t.Errorf("why %q, want the signs", why)
			}
		}
	}
	if n != 4 {
		t.Errorf("%d early samples in one episode, want 4 (the bound)", n)
	}
	tr.signs = ""
	if _, due := tr.earlyDue(step(time.Second), 30*time.Second, 4); due || tr.episode {
		t.Error("the signs fell: no early sample, episode over")
	}
	tr.signs = "memory.events max rising"
	if _, due := tr.earlyDue(step(time.Second), 30*time.Second, 4); !due {
		t.Error("a new episode takes early samples again")
	}
	if _, due := tr.earlyDue(step(2*time.Second), time.Second, 4); due {
		t.Error("an interval of 1 s has nothing to tighten")
	}
}

// The trace keeps TRACE_SECONDS of readings; a capture gets them from
// TRACE_SECONDS before its first trigger, then the trigger's own point, and
// at a later trigger only what it lacks.
func TestTraceIntoCapture(t *testing.T) {
	r := &Recorder{cfg: Config{ServiceIntervalSeconds: 1}, trace: &trace{keep: 10 * time.Second}}
	t0 := time.Date(2026, 11, 26, 3, 12, 4, 0, time.UTC)
	for i := range 30 {
		r.trace.push(capture.TracePoint{At: t0.Add(time.Duration(i-29)*time.Second + 2*time.Millisecond), MemoryBytes: u64p(uint64(i))})
	}
	if n := len(r.trace.points); n != 11 {
		t.Fatalf("%d points kept, want 11 (10 s at 1 s)", n)
	}
	c := &capture.Capture{TransitionTime: t0}
	s := capture.Sample{At: t0, Trigger: capture.TriggerExit, Service: &capture.Service{MemoryBytes: u64p(0)}}
	r.traceInto(c, &s)
	// The last reading, 2 ms after the event, is after the trigger's
	// sample too: left out.
	n := len(c.ServiceTrace)
	if c.ServiceIntervalSeconds != 1 || n != 11 || c.ServiceTrace[n-1].Trigger != capture.TriggerExit ||
		!c.ServiceTrace[0].At.Equal(t0.Add(-10*time.Second+2*time.Millisecond)) {
		t.Errorf("trace %+v", c.ServiceTrace)
	}
	r.trace.push(capture.TracePoint{At: t0.Add(5 * time.Second)})
	s2 := capture.Sample{At: t0.Add(6 * time.Second), Trigger: capture.TriggerExit, Service: &capture.Service{}}
	r.traceInto(c, &s2)
	if len(c.ServiceTrace) != n+3 {
		t.Errorf("a later trigger added %d points, want 3 (the two readings since, its own)", len(c.ServiceTrace)-n)
	}
}

// TestEarlySamplesNearTheLimit: a service holding 60 MiB of shared memory
// under a 64 MiB limit shows the sign in its trace; the recorder takes host
// samples early, each saying why, and logs it once at info.
func TestEarlySamplesNearTheLimit(t *testing.T) {
	cg := cgrouptest.New(t, "preflight-early")
	cg.LimitMemory(t, 64<<20)
	file := filepath.Join("/dev/shm", filepath.Base(cg.Path))
	t.Cleanup(func() { os.Remove(file) })
	cmd := exec.Command("sh", "-c", "read x; head -c 62914560 /dev/zero > "+file+"; echo done; exec sleep 300")
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := cgrouptest.Start(t, cmd)
	cg.Move(t, p.PID)
	in.Write([]byte("go\n"))
	if line, err := bufio.NewReader(out).ReadString('\n'); err != nil || line != "done\n" {
		t.Fatalf("writer said %q, %v", line, err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	t.Cleanup(srv.Close)
	var log bytes.Buffer
	cfg := Config{Service: "early", HealthURL: srv.URL, IntervalSeconds: 30, BufferSamples: 20, FailureThreshold: 1,
		CaptureDir: t.TempDir(), Keep: 5, TopProcesses: 3, LogLevel: "info", Cgroup: cg.Path,
		ServiceIntervalSeconds: 0.2, TraceSeconds: 120}
	r, err := New(cfg, Options{Logger: zerolog.New(&syncWriter{w: &log}), Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if r.trace == nil {
		t.Skip("no cgroup scope here")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 1800*time.Millisecond)
	defer cancel()
	if err := r.Run(ctx); err != nil {
		t.Fatal(err)
	}
	early := 0
	for _, s := range r.samples.snapshot() {
		if s.Early != "" {
			early++
			if !strings.Contains(s.Early, "memory within 10% of its limit") {
				t.Errorf("early sample says %q", s.Early)
			}
		}
	}
	if early < 1 || early > 2 {
		t.Errorf("%d early samples in 1.8 s, want 1 or 2 (one a second at most)", early)
	}
	if n := strings.Count(log.String(), "warning signs in the service trace"); n != 1 {
		t.Errorf("logged %d times, want once:\n%s", n, log.String())
	}
	if pts := r.trace.points; len(pts) < 5 || pts[len(pts)-1].MemoryBytes == nil || *pts[len(pts)-1].MemoryBytes < 58<<20 {
		t.Errorf("trace %+v: want ≥ 5 readings near 60 MiB", pts)
	}
}

// syncWriter serialises writes from the recorder's goroutines.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}
