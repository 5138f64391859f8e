// Package rawio reads pseudo-files (cgroupfs, procfs) with raw system
// calls, for the reads an idle recorder makes every second.
//
// A system call made through the syscall or x/sys/unix wrappers tells the
// Go scheduler it may block: the runtime's monitor thread (sysmon), asleep
// while the process is idle, is woken at the first one and then polls
// every 20 µs until the process is idle again; on a virtual machine each
// of its wake-ups costs as much as a small read. A pread of a cgroup file
// or of /proc/PID/stat is generated in memory and never waits, so it
// needs none of that: [Pread] makes it without telling the scheduler. Not
// for anything that can block (a pipe, a socket, a file on a disk).
// The idle recorder's cost with and without: docs/benchmarks.md.
package rawio

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// Pread is pread(2) of a pseudo-file, retried on EINTR, made as a raw
// system call.
func Pread(fd int, b []byte, off int64) (int, error) {
	var p unsafe.Pointer
	if len(b) > 0 {
		p = unsafe.Pointer(&b[0])
	}
	for {
		n, _, e := unix.RawSyscall6(unix.SYS_PREAD64, uintptr(fd), uintptr(p), uintptr(len(b)), uintptr(off), 0, 0)
		switch e {
		case 0:
			return int(n), nil
		case unix.EINTR:
			continue
		}
		return 0, e
	}
}
