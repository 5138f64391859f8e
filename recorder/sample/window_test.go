package sample

import (
	"os"
	"testing"
	"time"
)

// A wall clock stepped back an hour between two samples (NTP) changes
// nothing: rates run on the monotonic clock, so the busy processes keep
// their CPU percents.
func TestRatesIgnoreWallClockStep(t *testing.T) {
	root := fixture(t)
	clk := &fakeClock{t: t0}
	s, err := newSampler(root, 3, clk.now, fakeStatfs(fixtureStatfs))
	if err != nil {
		t.Fatal(err)
	}
	copyTree(t, "testdata/proc-next", root)
	if err := os.RemoveAll(root + "/5000"); err != nil {
		t.Fatal(err)
	}
	clk.at(10 * time.Second)
	wall := t0.Add(-time.Hour) // stepped back
	got, _ := s.Sample(wall, []int{1234})
	if !got.At.Equal(wall) {
		t.Errorf("At = %v, want the wall time given, %v", got.At, wall)
	}
	if len(got.TopCPU) == 0 || got.TopCPU[0].PID != 2000 || got.TopCPU[0].CPUPercent == nil || *got.TopCPU[0].CPUPercent != 150 {
		t.Fatalf("top CPU after a wall step back = %+v, want PID 2000 at 150%%", got.TopCPU)
	}
	if got.CPU.Percent == nil || *got.CPU.Percent != 30 {
		t.Errorf("host CPU = %+v, want 30%%", got.CPU)
	}
}

// The sample taken at a trigger, 20 ms after a tick, is computed against
// the reading before that tick, not over 20 ms; the first sample after the
// baseline has no window and no rates.
func TestRatesWindow(t *testing.T) {
	root := fixture(t)
	clk := &fakeClock{t: t0}
	s, err := newSampler(root, 3, clk.now, fakeStatfs(fixtureStatfs))
	if err != nil {
		t.Fatal(err)
	}
	first, svc := s.Sample(clk.at(20*time.Millisecond), []int{1234})
	if first.CPU.Percent != nil || len(first.TopCPU) != 0 || len(svc) != 1 || svc[0].CPUPercent != nil {
		t.Fatalf("sample 20ms after the baseline: CPU %+v, top CPU %+v, service %+v; want null rates and no top CPU",
			first.CPU, first.TopCPU, svc)
	}
	tick, _ := s.Sample(clk.at(10*time.Second), nil) // against the baseline, 10s back
	if len(tick.TopCPU) != 3 || *tick.TopCPU[0].CPUPercent != 0 {
		t.Fatalf("tick: top CPU %+v, want 3 processes at 0%% (nothing moved)", tick.TopCPU)
	}
	copyTree(t, "testdata/proc-next", root)
	if err := os.RemoveAll(root + "/5000"); err != nil {
		t.Fatal(err)
	}
	trig, svc := s.Sample(clk.at(10*time.Second+20*time.Millisecond), []int{1234})
	// 2000 used 15 s of CPU since the baseline, 10.02 s back: 149.7 %.
	if len(trig.TopCPU) == 0 || trig.TopCPU[0].PID != 2000 || *trig.TopCPU[0].CPUPercent != 149.7 {
		t.Errorf("trigger sample top CPU = %+v, want PID 2000 at 149.7%% (over 10.02s)", trig.TopCPU)
	}
	if len(svc) != 1 || *svc[0].CPUPercent != 49.9 {
		t.Errorf("trigger sample service = %+v, want 1234 at 49.9%%", svc)
	}
	// The trigger sample is no reference: the next tick is computed over
	// the 10 s since the previous tick.
	next, _ := s.Sample(clk.at(20*time.Second), nil)
	if *next.TopCPU[0].CPUPercent != 150 {
		t.Errorf("next tick top CPU = %+v, want PID 2000 at 150%% (over 10s)", next.TopCPU)
	}
}

func TestCounter(t *testing.T) {
	clk := &fakeClock{t: t0}
	var c Counter
	c.Clock = clk.now
	if p := c.Percent("/a", 1_000_000, 1e6); p != nil {
		t.Errorf("first reading = %v, want nil", *p)
	}
	clk.at(30 * time.Millisecond)
	if p := c.Percent("/a", 1_010_000, 1e6); p != nil {
		t.Errorf("30ms after the first = %v, want nil (no window)", *p)
	}
	clk.at(2 * time.Second)
	if p := c.Percent("/a", 2_000_000, 1e6); p == nil || *p != 50 {
		t.Errorf("1 s of CPU in 2 s = %v, want 50", p)
	}
	clk.at(2*time.Second + 5*time.Millisecond) // a trigger right after
	if p := c.Percent("/a", 2_000_000, 1e6); p == nil || *p != 49.88 {
		t.Errorf("trigger 5 ms later = %v, want 49.88 (against the reading 2.005 s back)", p)
	}
	clk.at(4 * time.Second)
	if p := c.Percent("/b", 9_000_000, 1e6); p != nil {
		t.Errorf("another cgroup = %v, want nil: it starts over", *p)
	}
	clk.at(6 * time.Second)
	if p := c.Percent("/b", 8_000_000, 1e6); p != nil {
		t.Errorf("a counter going backwards = %v, want nil", *p)
	}
}
