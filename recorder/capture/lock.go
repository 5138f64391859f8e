package capture

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"syscall"
	"time"
)

// lockExt is the extension of a recorder's lock file in the state
// directory, $DIR/.state/SERVICE.lock.
const lockExt = ".lock"

// Lock is a recorder's claim on its service in a capture directory: an
// exclusive flock(2) on $DIR/.state/SERVICE.lock, held for the recorder's
// life and released by the kernel the moment its process ends, however it
// ends (kill -9 too). The file holds the holder's PID. It is never removed:
// removing a lock file that another process holds open would let two
// recorders lock two different files.
type Lock struct {
	f *os.File
}

// LockedError is the lock of a service held by another recorder.
type LockedError struct {
	Service string
	Path    string // the lock file
	PID     int    // the holder, 0 if unknown
}

func (e *LockedError) Error() string {
	pid := "pid unknown"
	if e.PID > 0 {
		pid = "pid " + strconv.Itoa(e.PID)
	}
	return fmt.Sprintf("another recorder of %s is running (%s): %s is locked", e.Service, pid, e.Path)
}

// lockTries bounds the attempts to take a lock that is held: readers
// ([Store.Running]) hold it shared for an instant to test it, so a held
// lock is tried a few times, 10 ms apart, before it counts as another
// recorder's.
const lockTries = 20

// Lock takes the service's lock, creating the state directory and the lock
// file if needed. A lock another recorder holds is a *[LockedError] naming
// its PID.
func (s *Store) Lock(service string) (*Lock, error) {
	if err := ValidService(service); err != nil {
		return nil, err
	}
	if err := s.refresh(); err != nil {
		return nil, err
	}
	r, err := s.subdir(StateDir, true)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	name, path := service+lockExt, s.Path(StateDir, service+lockExt)
	// Created with O_EXCL (never through a link), or there already; then
	// opened and proved to be the lock file itself, never a link.
	if f, err := r.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, FileMode); err == nil {
		err = f.Chmod(FileMode) // whatever the umask
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("lock %s: %w", path, unwrapPath(err))
		}
	} else if !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("lock %s: %w", path, unwrapPath(err))
	}
	f, err := openFileFlag(r, name, path, os.O_RDWR)
	if err != nil {
		return nil, fmt.Errorf("lock %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		for i := 1; i < lockTries && errors.Is(err, syscall.EWOULDBLOCK); i++ {
			time.Sleep(10 * time.Millisecond)
			err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		}
		if err != nil {
			defer f.Close()
			if errors.Is(err, syscall.EWOULDBLOCK) {
				return nil, &LockedError{Service: service, Path: path, PID: readPID(f)}
			}
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
	}
	// The PID, for the next recorder's refusal and for list.
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &Lock{f: f}, nil
}

// Unlock releases the lock.
func (l *Lock) Unlock() error { return l.f.Close() }

// Holds reports whether l is still the lock of service in the directory:
// false once its lock file was removed or replaced (the capture directory
// removed under the recorder), when another recorder could lock a new one.
func (s *Store) Holds(l *Lock, service string) bool {
	held, err := l.f.Stat()
	if err != nil {
		return false
	}
	// One lookup in the root, every interval: a link on the way is
	// followed only within the directory, and could only lead to the very
	// file l holds.
	fi, err := s.root.Lstat(StateDir + "/" + service + lockExt)
	return err == nil && os.SameFile(fi, held)
}

// readPID reads the PID a lock file names, 0 if none.
func readPID(f *os.File) int {
	var buf [24]byte
	n, _ := f.ReadAt(buf[:], 0)
	pid, err := strconv.Atoi(string(bytes.TrimSpace(buf[:n])))
	if err != nil || pid <= 0 {
		return 0
	}
	return pid
}

// Running reports whether a recorder of service holds its lock now, and
// the PID its lock file names. It tests the lock with a shared flock held
// for an instant, so a recorder killed with SIGKILL is not running the
// moment it is gone. Without a lock file (no recorder of this version ever
// ran) the error satisfies errors.Is(err, fs.ErrNotExist).
func (s *Store) Running(service string) (running bool, pid int, err error) {
	if err := ValidService(service); err != nil {
		return false, 0, err
	}
	r, err := s.subdir(StateDir, false)
	if err != nil {
		return false, 0, err
	}
	defer r.Close()
	f, err := openFile(r, service+lockExt, s.Path(StateDir, service+lockExt))
	if err != nil {
		return false, 0, err
	}
	defer f.Close()
	switch err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB); {
	case err == nil:
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		return false, 0, nil
	case errors.Is(err, syscall.EWOULDBLOCK):
		return true, readPID(f), nil
	default:
		return false, 0, fmt.Errorf("%s: %w", s.Path(StateDir, service+lockExt), err)
	}
}
