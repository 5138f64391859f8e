package cgroup

import (
	"errors"
	"os"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"
)

// maxPidfds is how many processes a [Watcher] watches with a pidfd each: a
// cgroup with more is looked at the short Poll cadence instead.
const maxPidfds = 64

// procSet watches the processes of the last look, one pidfd each, so that
// the watcher looks again the moment one of them exits: this is how a
// process set replaced without the cgroup ever emptying is seen at once.
// A pidfd is made pollable by Go's netpoller, so a watched process costs a
// parked goroutine and a descriptor, not a thread. Its methods other than
// the goroutines' signalling run with the watcher's turn held.
type procSet struct {
	exited chan struct{} // signalled (capacity 1, coalesced) when a watched process exits
	log    zerolog.Logger

	off     bool // pidfd_open is refused or missing on this kernel (ENOSYS, EPERM, EINVAL)
	covered bool // every process of the last sync has an armed pidfd
	cur     []*proc
	next    []*proc
	wg      sync.WaitGroup // the goroutines waiting on pidfds
}

// proc is one watched process.
type proc struct {
	pid     int
	f       *os.File
	state   atomic.Int32 // procArmed, procExited or procFailed
	closing atomic.Bool  // closed by the watcher: its goroutine signals nothing
}

// States of a [proc].
const (
	procArmed  = iota // waiting for the process to exit
	procExited        // the pidfd became readable: the process has exited
	procFailed        // the netpoller could not wait on the pidfd
)

// sync makes the set watch exactly pids (ascending): it opens pidfds for
// the new processes and closes those of the processes gone, and records
// whether every process is watched. Beyond maxPidfds processes, where
// pidfds are unavailable, or unless usable (the PIDs are real), it watches
// none.
func (s *procSet) sync(pids []int, usable bool) {
	if !usable || s.off || len(pids) > maxPidfds {
		s.closeAll()
		s.covered = len(pids) == 0
		return
	}
	covered := true
	s.next = s.next[:0]
	i := 0
	for _, pid := range pids {
		for i < len(s.cur) && s.cur[i].pid < pid {
			s.cur[i].close()
			i++
		}
		var p *proc
		if i < len(s.cur) && s.cur[i].pid == pid {
			p = s.cur[i]
			i++
		} else if p = s.open(pid); p == nil {
			covered = false
			continue
		}
		if p.state.Load() != procArmed {
			covered = false // exited yet still listed, or not pollable: poll
		}
		s.next = append(s.next, p)
	}
	for ; i < len(s.cur); i++ {
		s.cur[i].close()
	}
	clear(s.cur)
	s.cur, s.next = s.next, s.cur
	s.covered = covered && !s.off
	if s.off {
		s.closeAll()
	}
}

// open returns a watch of pid, nil when it cannot be made: the process has
// gone (the next look sees it), its PID is not visible here (0 in
// cgroup.procs), or pidfds are unavailable, which turns them off for good.
func (s *procSet) open(pid int) *proc {
	if pid <= 0 || s.off {
		return nil
	}
	fd, err := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK)
	if err != nil {
		switch {
		case errors.Is(err, unix.ESRCH):
		case errors.Is(err, unix.ENOSYS), errors.Is(err, unix.EPERM), errors.Is(err, unix.EINVAL):
			// EINVAL: PIDFD_NONBLOCK needs Linux 5.10.
			s.off = true
			s.log.Debug().Err(err).Msg("no pidfds here, polling the cgroup's processes")
		default:
			s.log.Debug().Err(err).Int("pid", pid).Msg("failed to open pidfd")
		}
		return nil
	}
	p := &proc{pid: pid, f: os.NewFile(uintptr(fd), "pidfd "+strconv.Itoa(pid))}
	rc, err := p.f.SyscallConn()
	if err != nil {
		p.f.Close()
		return nil
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		// Parks in the netpoller until the pidfd is readable: the process
		// (its whole thread group) has exited.
		err := rc.Read(func(fd uintptr) bool { return readable(int(fd)) })
		if p.closing.Load() {
			return
		}
		if err != nil {
			p.state.Store(procFailed)
		} else {
			p.state.Store(procExited)
		}
		select {
		case s.exited <- struct{}{}:
		default:
		}
	}()
	return p
}

// closeAll stops watching every process.
func (s *procSet) closeAll() {
	for _, p := range s.cur {
		p.close()
	}
	clear(s.cur)
	s.cur = s.cur[:0]
	s.covered = false
}

// wait closes every pidfd and waits for their goroutines.
func (s *procSet) wait() {
	s.closeAll()
	s.wg.Wait()
}

// close closes the pidfd; its goroutine returns without signalling.
func (p *proc) close() {
	p.closing.Store(true)
	p.f.Close() // wakes the parked read
}

// readable reports whether fd polls readable now, without waiting.
func readable(fd int) bool {
	pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	for {
		n, err := unix.Poll(pfd, 0)
		if err == unix.EINTR {
			continue
		}
		return err == nil && n > 0 && pfd[0].Revents&(unix.POLLIN|unix.POLLHUP) != 0
	}
}
