package recorder

import (
	"testing"
	"time"
)

// Every recorder's ticks fall on the multiples of its interval since
// tickEpoch, so that recorders of one process are due together.
func TestTickerGrid(t *testing.T) {
	for _, iv := range []time.Duration{time.Second, 30 * time.Second, 1500 * time.Millisecond} {
		tk := newTicker(iv)
		before := time.Since(tickEpoch)
		d := tk.untilNext()
		after := time.Since(tickEpoch)
		tk.Stop()
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
