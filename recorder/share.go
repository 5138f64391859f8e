package recorder

import (
	"fmt"
	"os"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/preflight-rec/preflight/recorder/sample"
)

// The recorders of one process share the host's part of their samples
// (sample.Host): a reading started within sample.ShareWithin serves every
// recorder due then. So that recorders are due together, every recorder of
// the process ticks on one grid: the multiples of its interval since
// tickEpoch. Recorders of equal intervals tick at the same instants, and a
// longer interval's ticks fall on a shorter one's when it is a multiple of
// it (30 s and 1 s, 10 s and 5 s). One timer a recorder, no ticker drift:
// a late tick does not move the next.

// tickEpoch is the origin of every recorder's ticks in this process.
var tickEpoch = time.Now()

// newSampler returns the recorder's sampler: of the shared Host when
// opt.Host is set, else one reading the host alone.
func newSampler(opt Options, topN int) (*sample.Sampler, error) {
	if opt.Host != nil {
		return opt.Host.Sampler(topN)
	}
	return sample.New(opt.ProcRoot, topN)
}

// ticker fires at the multiples of its interval since tickEpoch. After
// each receive from C, call next.
type ticker struct {
	t  *time.Timer
	iv time.Duration
	C  <-chan time.Time
}

func newTicker(iv time.Duration) *ticker {
	t := &ticker{iv: iv}
	t.t = time.NewTimer(untilNext(iv))
	t.C = t.t.C
	return t
}

// untilNext is the time to the next multiple of iv since tickEpoch (a
// whole interval when now is one).
func untilNext(iv time.Duration) time.Duration {
	return iv - time.Since(tickEpoch)%iv
}

// next arms the timer for the next tick.
func (t *ticker) next() { t.t.Reset(untilNext(t.iv)) }

// Stop stops the timer.
func (t *ticker) Stop() { t.t.Stop() }

// fdTicker is a ticker on the grid of ticker whose wake-up is a timerfd
// parked in Go's network poller, not a Go timer: the trace's every second.
//
// A Go timer also wakes the runtime's monitor (sysmon), which sleeps until
// the next timer and, once awake, 10 ms more before it sleeps again: two
// wake-ups a second of a thread that has nothing to do, on a virtual
// machine about a fifth of an idle recorder's CPU. With the trace's ticks
// on a timerfd the next Go timer is the sample's, 30 s away, and sysmon
// sleeps through the seconds between, as long as nothing in the trace's
// reading makes a wrapped system call, which would wake it (cgroup
// readsRaw, readsRawInTrace; docs/benchmarks.md has the figures).
type fdTicker struct {
	C    <-chan time.Time
	f    *os.File
	done chan struct{}
}

// newFDTicker returns an fdTicker at the multiples of iv since tickEpoch,
// or an error where the kernel has no timerfd (a system call filter).
func newFDTicker(iv time.Duration) (*fdTicker, error) {
	fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("timerfd_create: %w", err)
	}
	// The kernel's CLOCK_MONOTONIC is the clock of time.Since: the first
	// expiry falls on the grid, and each next one iv later, never drifting.
	first := untilNext(iv)
	spec := unix.ItimerSpec{Interval: unix.NsecToTimespec(int64(iv)), Value: unix.NsecToTimespec(int64(first))}
	if err := unix.TimerfdSettime(fd, 0, &spec, nil); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("timerfd_settime: %w", err)
	}
	f := os.NewFile(uintptr(fd), "timerfd")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	c := make(chan time.Time, 1)
	t := &fdTicker{C: c, f: f, done: make(chan struct{})}
	go func() {
		defer close(t.done)
		var n [8]byte // the expirations since the last read: ticks missed are dropped, as time.Ticker drops them
		for {
			err := rc.Read(func(fd uintptr) bool {
				// Raw: a timerfd read never waits (non-blocking), and a
				// wrapped one would wake sysmon.
				for {
					_, _, e := unix.RawSyscall(unix.SYS_READ, fd, uintptr(unsafe.Pointer(&n[0])), uintptr(len(n)))
					if e != unix.EINTR {
						return e != unix.EAGAIN
					}
				}
			})
			if err != nil {
				return // closed (Stop)
			}
			select {
			case c <- time.Now():
			default: // the last tick is not taken yet
			}
		}
	}()
	return t, nil
}

// next is ticker's: nothing to arm.
func (t *fdTicker) next() {}

// Stop stops the ticker and waits for its goroutine to end.
func (t *fdTicker) Stop() {
	t.f.Close()
	<-t.done
}

// tickSource is a ticker or an fdTicker.
type tickSource interface {
	next()
	Stop()
}

// SharedHost returns the Host that n recorders of one process share (the
// real /proc): nil for a single recorder, which reads the host alone and
// reuses its buffers.
func SharedHost(n int) (*sample.Host, error) {
	if n < 2 {
		return nil, nil
	}
	h, err := sample.NewHost("/proc")
	if err != nil {
		return nil, fmt.Errorf("start sampling /proc: %w", err)
	}
	return h, nil
}
