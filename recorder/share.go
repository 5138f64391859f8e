package recorder

import (
	"errors"
	"fmt"
	"os"
	"sync"
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

// tickEpoch is the origin of every recorder's ticks in this process, and
// tickEpochMono the same instant on CLOCK_MONOTONIC (the clock of
// time.Since), where an fdTicker's timerfd is armed.
var tickEpoch, tickEpochMono = epoch()

func epoch() (time.Time, time.Duration) {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts) // cannot fail for this clock
	return time.Now(), time.Duration(ts.Nano())
}

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
// on a timerfd, the next Go timer is the watcher's watchdog (5 s) or the
// sample's, and sysmon sleeps through the seconds between, as long as the
// trace's reading makes no wrapped system call, which would wake it
// (cgroup readsRaw, readsRawInTrace; docs/benchmarks.md has the figures).
type fdTicker struct {
	C        <-chan time.Time
	f        *os.File
	stop     chan struct{} // closed by Stop
	stopOnce sync.Once
	done     chan struct{} // closed when its goroutine ends
}

// newFDTicker returns an fdTicker at the multiples of iv since the epoch,
// or an error where the kernel has no timerfd (a system call filter) or
// Go's poller cannot take it.
func newFDTicker(iv time.Duration) (*fdTicker, error) {
	fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("timerfd_create: %w", err)
	}
	// Armed at absolute times on the grid: each expiry iv after the one
	// before, never drifting, and no delay before this call shifts them.
	var now unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &now); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("clock_gettime: %w", err)
	}
	since := time.Duration(now.Nano()) - tickEpochMono
	first := tickEpochMono + (since/iv+1)*iv
	spec := unix.ItimerSpec{Interval: unix.NsecToTimespec(int64(iv)), Value: unix.NsecToTimespec(int64(first))}
	if err := unix.TimerfdSettime(fd, unix.TFD_TIMER_ABSTIME, &spec, nil); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("timerfd_settime: %w", err)
	}
	f := os.NewFile(uintptr(fd), "timerfd")
	// NewFile keeps a descriptor the poller refused (epoll_ctl: ENOSPC at
	// fs.epoll.max_user_watches), and a read of it would fail at once.
	if err := f.SetReadDeadline(time.Time{}); err != nil {
		f.Close()
		return nil, fmt.Errorf("timerfd not in the network poller: %w", err)
	}
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	c := make(chan time.Time, 1)
	t := &fdTicker{C: c, f: f, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(t.done)
		var n [8]byte // the expirations since the last read: ticks missed are dropped, as time.Ticker drops them
		var rerr error
		read := func(fd uintptr) bool {
			for {
				// Raw: a read of a non-blocking timerfd never waits, and a
				// wrapped one would wake sysmon.
				_, _, e := unix.RawSyscall(unix.SYS_READ, fd, uintptr(unsafe.Pointer(&n[0])), uintptr(len(n)))
				switch e {
				case 0:
					return true
				case unix.EINTR:
					continue
				case unix.EAGAIN:
					return false
				}
				rerr = fmt.Errorf("read timerfd: %w", e)
				return true
			}
		}
		for {
			err := rc.Read(read)
			if err == nil {
				err = rerr
			}
			if errors.Is(err, os.ErrClosed) {
				return // Stop
			}
			if err != nil {
				t.onGoTimer(c, iv) // no tick is lost for it
				return
			}
			select {
			case c <- time.Now():
			default: // the last tick is not taken yet
			}
		}
	}()
	return t, nil
}

// onGoTimer ticks on a Go timer, on the same grid, until Stop: the timerfd
// failed.
func (t *fdTicker) onGoTimer(c chan<- time.Time, iv time.Duration) {
	tm := time.NewTimer(untilNext(iv))
	defer tm.Stop()
	for {
		select {
		case <-t.stop:
			return
		case now := <-tm.C:
			select {
			case c <- now:
			default:
			}
			tm.Reset(untilNext(iv))
		}
	}
}

// next is ticker's: nothing to arm.
func (t *fdTicker) next() {}

// Stop stops the ticker and waits for its goroutine to end. It may be
// called more than once.
func (t *fdTicker) Stop() {
	t.stopOnce.Do(func() {
		close(t.stop)
		t.f.Close()
	})
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
