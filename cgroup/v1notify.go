package cgroup

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// oomRechecks are the delays after a v1 OOM notification at which the
// watcher looks again while the oom_kill counter has not moved yet: the
// kernel signals when the cgroup enters OOM, before the killer has chosen
// and counted its victim (about a millisecond later on the test machine).
var oomRechecks = [...]time.Duration{time.Millisecond, 10 * time.Millisecond, 50 * time.Millisecond, 200 * time.Millisecond}

// oomNotifier is the OOM notification of a v1 memory cgroup (cgroup-v1
// memory.rst, "OOM Control"): an eventfd registered through
// cgroup.event_control for memory.oom_control. The kernel signals it when
// the cgroup hits its limit and invokes the OOM killer, and when the cgroup
// is removed. It is read through Go's netpoller: a parked goroutine, no
// thread.
type oomNotifier struct {
	f       *os.File
	closing atomic.Bool
}

// notifyOOM registers an eventfd for the OOM notification of the v1 memory
// cgroup in dir, whose memory.oom_control is open as oomFD, and signals
// note (coalesced) at each notification until close. It fails where
// cgroup.event_control is not writable (not root, a read-only cgroupfs as
// under systemd's ProtectControlGroups=) or absent (cgroup2).
func notifyOOM(dir string, oomFD int, note chan<- struct{}, wg *sync.WaitGroup) (*oomNotifier, error) {
	efd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("failed to create eventfd: %w", err)
	}
	ctl := filepath.Join(dir, "cgroup.event_control")
	if err := writeControl(ctl, strconv.Itoa(efd)+" "+strconv.Itoa(oomFD)); err != nil {
		unix.Close(efd)
		return nil, fmt.Errorf("failed to register oom notification: %w", err)
	}
	n := &oomNotifier{f: os.NewFile(uintptr(efd), "eventfd "+ctl)}
	wg.Add(1)
	go func() {
		defer wg.Done()
		var b [8]byte // the eventfd counter
		for {
			if _, err := n.f.Read(b[:]); err != nil {
				return // closed
			}
			if n.closing.Load() {
				return
			}
			select {
			case note <- struct{}{}:
			default:
			}
		}
	}()
	return n, nil
}

// close unregisters the notification: the kernel drops it when the eventfd
// is released.
func (n *oomNotifier) close() {
	n.closing.Store(true)
	n.f.Close()
}

// writeControl writes line to a cgroup control file with one write(2).
func writeControl(path, line string) error {
	fd, err := unix.Open(path, unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &fs.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	for {
		_, err = unix.Write(fd, []byte(line))
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return &fs.PathError{Op: "write", Path: path, Err: err}
	}
	return nil
}
