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

// timerfds counts this process's open timerfds.
func timerfds(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range ents {
		if l, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && l == "anon_inode:[timerfd]" {
			n++
		}
	}
	return n
}

// stopWithin stops tk, failing the test if Stop does not return in 10 s.
func stopWithin(t *testing.T, tk *fdTicker) {
	t.Helper()
	done := make(chan struct{})
	go func() { tk.Stop(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Stop did not return in 10 s")
	}
}

// An fdTicker's timerfd expires on the grid, every interval; its ticks
// come, no more of them than expiries; Stop ends its goroutine and closes
// the timerfd, and may be called twice.
func TestFDTicker(t *testing.T) {
	n := timerfds(t)

	// The grid, at 1 s, from an epoch 1.3 s ago: a ticker armed a whole
	// interval from now would expire 0.3 s off it.
	const iv = time.Second
	epoch, mono := tickEpoch, tickEpochMono
	defer func() { tickEpoch, tickEpochMono = epoch, mono }()
	var now unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &now); err != nil {
		t.Fatal(err)
	}
	tickEpoch, tickEpochMono = time.Now().Add(-1300*time.Millisecond), time.Duration(now.Nano())-1300*time.Millisecond
	tk, err := newFDTicker(iv)
	if err != nil {
		t.Fatalf("newFDTicker: %v", err)
	}
	rc, err := tk.f.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var cur unix.ItimerSpec
	var before, after unix.Timespec
	var gerr error
	if err := rc.Control(func(fd uintptr) {
		unix.ClockGettime(unix.CLOCK_MONOTONIC, &before)
		gerr = unix.TimerfdGettime(int(fd), &cur)
		unix.ClockGettime(unix.CLOCK_MONOTONIC, &after)
	}); err != nil || gerr != nil {
		t.Fatalf("timerfd_gettime: %v, %v", err, gerr)
	}
	stopWithin(t, tk)
	if got := time.Duration(cur.Interval.Nano()); got != iv {
		t.Errorf("timerfd interval %v, want %v", got, iv)
	}
	// The next expiry, seen between before and after, is at a multiple of
	// iv since the epoch: armed at an absolute time, exactly.
	d := time.Duration(cur.Value.Nano())
	lo := time.Duration(before.Nano()) + d - tickEpochMono
	hi := time.Duration(after.Nano()) + d - tickEpochMono
	if k := hi / iv * iv; d <= 0 || d > iv || k < lo-time.Microsecond {
		t.Errorf("next expiry in %v, at %v..%v since the epoch: not on the grid of %v", d, lo, hi, iv)
	}
	tickEpoch, tickEpochMono = epoch, mono

	// The ticks, at 20 ms: never more than the expiries since it was
	// made (a ticker that spun would send thousands).
	const fast = 20 * time.Millisecond
	made := time.Now()
	tk, err = newFDTicker(fast)
	if err != nil {
		t.Fatalf("newFDTicker: %v", err)
	}
	defer tk.Stop()
	got := 0
	for got < 5 {
		select {
		case <-tk.C:
			got++
		case <-time.After(10 * time.Second):
			t.Fatalf("tick %d did not come in 10 s, at an interval of %v", got, fast)
		}
	}
	if most := int(time.Since(made)/fast) + 1; got > most {
		t.Errorf("%d ticks in %v at an interval of %v: more than the %d expiries", got, time.Since(made), fast, most)
	}
	stopWithin(t, tk)
	stopWithin(t, tk) // twice
	if m := timerfds(t); m != n {
		t.Errorf("%d timerfds open after Stop, %d before the tickers", m, n)
	}
}

// An fdTicker whose timerfd fails goes on ticking on a Go timer until Stop.
func TestFDTickerOnGoTimer(t *testing.T) {
	c := make(chan time.Time, 1)
	tk := &fdTicker{C: c, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(tk.done)
		tk.onGoTimer(c, 20*time.Millisecond)
	}()
	for i := range 3 {
		select {
		case <-c:
		case <-time.After(10 * time.Second):
			t.Fatalf("tick %d did not come in 10 s", i)
		}
	}
	close(tk.stop)
	select {
	case <-tk.done:
	case <-time.After(10 * time.Second):
		t.Fatal("the Go timer's loop did not end in 10 s after Stop")
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
