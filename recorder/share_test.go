package recorder

import (
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Every recorder's ticks fall on the multiples of its interval since
// tickEpoch, so that recorders of one process are due together.
func TestTickerGrid(t *testing.T) {
	for _, iv := range []time.Duration{time.Second, 30 * time.Second, 1500 * time.Millisecond} {
		before := time.Since(tickEpoch)
		d := untilNext(iv)
		after := time.Since(tickEpoch)
		if d <= 0 || d > iv {
			t.Errorf("interval %v: next tick in %v, want within (0, %v]", iv, d, iv)
		}
		// The tick lands on a multiple of iv, computed between before and after.
		lo, hi := before+d, after+d
		if k := hi / iv * iv; k < lo || k > hi {
			t.Errorf("interval %v: next tick at %v..%v since the epoch, no multiple of it in between", iv, lo, hi)
		}
	}
}

// An fdTicker's timerfd expires on the grid, every interval; its ticks
// come; Stop ends its goroutine and closes the timerfd.
func TestFDTicker(t *testing.T) {
	fds := func() int {
		ents, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Fatal(err)
		}
		return len(ents)
	}
	n := fds()

	// The grid, at 1 s: the first expiry is armed relative to the moment
	// untilNext was computed, a few microseconds before the kernel arms
	// it (as a Go timer is); a quarter of the interval is room enough.
	const iv = time.Second
	epoch := tickEpoch
	tickEpoch = time.Now().Add(-1300 * time.Millisecond) // a phase a ticker off the grid would not have
	defer func() { tickEpoch = epoch }()
	tk, err := newFDTicker(iv)
	if err != nil {
		t.Fatalf("newFDTicker: %v", err)
	}
	rc, err := tk.f.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var cur unix.ItimerSpec
	var before, after time.Duration
	var gerr error
	if err := rc.Control(func(fd uintptr) {
		before = time.Since(tickEpoch)
		gerr = unix.TimerfdGettime(int(fd), &cur)
		after = time.Since(tickEpoch)
	}); err != nil || gerr != nil {
		t.Fatalf("timerfd_gettime: %v, %v", err, gerr)
	}
	tk.Stop()
	if got := time.Duration(cur.Interval.Nano()); got != iv {
		t.Errorf("timerfd interval %v, want %v", got, iv)
	}
	// The next expiry, seen between before and after, is at a multiple of
	// iv since the epoch, or just after one.
	d := time.Duration(cur.Value.Nano())
	lo, hi := before+d, after+d
	if k := hi / iv * iv; d <= 0 || d > iv || k < lo-iv/4 {
		t.Errorf("next expiry in %v, at %v..%v since the epoch: not on the grid of %v", d, lo, hi, iv)
	}

	// The ticks, at 20 ms.
	tk, err = newFDTicker(20 * time.Millisecond)
	if err != nil {
		t.Fatalf("newFDTicker: %v", err)
	}
	stopped := false
	defer func() {
		if !stopped {
			tk.Stop()
		}
	}()
	var prev time.Time
	for i := range 3 {
		select {
		case at := <-tk.C:
			if !at.After(prev) {
				t.Errorf("tick %d at %v, not after the one before (%v)", i, at, prev)
			}
			prev = at
		case <-time.After(10 * time.Second):
			t.Fatalf("tick %d did not come in 10 s, at an interval of 20 ms", i)
		}
	}
	tk.Stop() // returns once its goroutine has ended
	stopped = true
	if m := fds(); m != n {
		t.Errorf("%d descriptors open after Stop, %d before the tickers", m, n)
	}
}

// SharedHost gives a single recorder none (it reads alone) and several one.
func TestSharedHost(t *testing.T) {
	if h, err := SharedHost(1); h != nil || err != nil {
		t.Errorf("SharedHost(1) = %v, %v; want nil, nil", h, err)
	}
	h, err := SharedHost(2)
	if h == nil || err != nil {
		t.Fatalf("SharedHost(2) = %v, %v; want a host", h, err)
	}
	s, err := newSampler(Options{Host: h}, 2)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := s.Sample(time.Now(), nil)
	if got.Processes == 0 || len(got.TopMemory) != 2 {
		t.Errorf("a shared host's sample: %d processes, top memory of %d; want some and 2", got.Processes, len(got.TopMemory))
	}
}
