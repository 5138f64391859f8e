// Package rawio reads pseudo-files (cgroupfs, procfs) with raw system
// calls, for the few reads an idle recorder makes every second that the
// kernel answers without waiting.
//
// A system call made through the syscall or x/sys/unix wrappers tells the
// Go scheduler it may block: the runtime's monitor thread (sysmon), asleep
// while the process is idle, is woken at the first one and then polls
// every 20 µs until the process is idle again; on a virtual machine each
// of its wake-ups costs as much as a small read. [Pread] makes the call
// without telling the scheduler, which then can neither hand the thread's
// P to another thread nor stop the world for GC until it returns: a raw
// call that sleeps in the kernel stalls the whole process.
//
// So it is only for a read the kernel generates from counters under no
// lock it could sleep on, and only of a descriptor read before (the first
// read of a seq_file allocates its buffer, which may reclaim memory). Not
// every pseudo-file is such: memory.stat flushes the memory controller's
// statistics (slowest in heavy reclaim, when an OOM kill comes), v1
// cgroup.procs takes a mutex and allocates. Two that may wait, cpu.stat
// (the rstat lock) and memory.pressure (the PSI mutex), are read raw by
// the trace's per-second reading of a calm cgroup only, where a wrapped
// call would wake sysmon every second. Which cgroup files qualify, and
// why: readsRaw and readsRawInTrace in package cgroup. /proc/PID/stat
// qualifies but for one rare case: a read racing the process's exit can
// hold the last reference to its memory and free it. Nothing else may use
// Pread (a pipe, a socket, a file on a disk).
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
