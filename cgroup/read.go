package cgroup

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/preflight-rec/preflight/cgroup/rawio"
)

// Size caps of the pseudo-files read. Their sizes as stat reports them lie
// (4096 or 0), so they are read to EOF, up to the cap.
const (
	maxFileSize  = 64 << 10 // keyed files, single values, pressure
	maxProcsSize = 4 << 20  // cgroup.procs: about 500 000 PIDs
)

// errTooBig reports a pseudo-file larger than its cap.
var errTooBig = errors.New("file exceeds its size cap")

// reader reads pseudo-files into one reused buffer, with plain system calls
// (open, pread, close; fstat on request): no allocation once the buffer has
// grown, and no netpoller registration as os.Open would attempt on kernfs
// files. Its preads go through the wrapped system call (unix.Pread), but
// for a held descriptor of a file that never waits (see readsRaw): those
// are raw (package rawio). The bytes returned are valid until the next
// read. Not safe for concurrent use.
type reader struct {
	buf []byte
}

// read returns the content of path, at most limit bytes. With wantID it
// also returns the file's inode number, which identifies a cgroup: a
// re-created cgroup has new inodes.
func (r *reader) read(path string, limit int, wantID bool) ([]byte, uint64, error) {
	fd, id, err := openFile(path, wantID)
	if err != nil {
		return nil, 0, err
	}
	defer unix.Close(fd)
	b, err := r.readFD(fd, path, limit, false) // a first read: never raw
	return b, id, err
}

// readFD reads an open file from offset 0 to EOF, at most limit bytes. A
// kernfs seq file read from offset 0 is generated afresh, so a file held
// open can be read again and again (not v1 cgroup.procs: its PID list is
// cached per open file). A removed cgroup's files fail with ENODEV. With
// raw, the preads are raw system calls: only for a file readsRaw allows,
// held and read before.
func (r *reader) readFD(fd int, path string, limit int, raw bool) ([]byte, error) {
	return r.readAt0(fd, path, limit, endOf(path, false), raw)
}

// end is how a read of a kernfs seq file tells that it has all of it,
// without a last read that returns 0 (readAt0).
type end uint8

const (
	// atEOF: only a read that returns 0 tells.
	atEOF end = iota
	// oneRecord: the file is one seq_file record, which the kernel
	// generates whole and hands out as far as the buffer holds, so a read
	// shorter than the buffer is all of it (as /proc/PID/stat is read).
	oneRecord
	// pidLines: the file is lines of one PID each (cgroup.procs, tasks),
	// at most maxPIDLine bytes. The kernel fills a read with whole lines
	// until the buffer is full, its own buffer (a page at least) has no
	// room for the next line (seq_printf keeps a line only if it ends
	// before the page does: count+len < size), or no line is left; so a
	// first read shorter than the buffer and than a 4096-byte page less a
	// line is all of it. A longer list is read on to EOF.
	pidLines
)

// maxPIDLine is the longest line of cgroup.procs: PID_MAX_LIMIT (2^22),
// seven digits, and the newline.
const maxPIDLine = len("4194304\n")

// endOf is the end of the file path (its base name counts), or oneRecord
// where single says the file is one record.
func endOf(path string, single bool) end {
	switch {
	case single:
		return oneRecord
	case strings.HasSuffix(path, "/cgroup.procs"), strings.HasSuffix(path, "/tasks"), path == "cgroup.procs", path == "tasks":
		return pidLines
	}
	return atEOF
}

// readAt0 is readFD, with the file's end given (end).
func (r *reader) readAt0(fd int, path string, limit int, e end, raw bool) ([]byte, error) {
	pread := preadWrapped
	if raw {
		pread = preadRaw
	}
	if r.buf == nil {
		r.buf = make([]byte, 4096)
	}
	n := 0
	for {
		if n == len(r.buf) {
			if n >= limit {
				return nil, &fs.PathError{Op: "read", Path: path, Err: errTooBig}
			}
			grown := make([]byte, min(2*len(r.buf), limit))
			copy(grown, r.buf[:n])
			r.buf = grown
		}
		m, err := pread(fd, r.buf[n:], int64(n))
		if err != nil {
			return nil, &fs.PathError{Op: "read", Path: path, Err: err}
		}
		if m == 0 {
			return r.buf[:n], nil
		}
		first := n == 0
		n += m
		switch {
		case e == oneRecord && n < len(r.buf),
			e == pidLines && first && n < len(r.buf) && n < 4096-maxPIDLine:
			return r.buf[:n], nil
		}
	}
}

// The preads: the wrapped system call, which lets the Go scheduler hand
// the thread's P off (and stop the world for GC) while the kernel waits,
// and the raw one, which does not (package rawio). Variables for a test.
var (
	preadWrapped = func(fd int, b []byte, off int64) (int, error) {
		for {
			n, err := unix.Pread(fd, b, off)
			if err != unix.EINTR {
				return n, err
			}
		}
	}
	preadRaw = rawio.Pread
)

// readsRaw reports whether a held descriptor of the cgroup file name, read
// before, is read with a raw pread: the files the per-second reads touch
// whose content the kernel prints from counters, taking no lock it could
// sleep on and flushing nothing (checked against mm/memcontrol.c,
// kernel/cgroup/pids.c, kernel/sched/cpuacct.c, kernel/cgroup/cgroup.c):
//
//   - cgroup.procs of cgroup2 (css_set_lock, a spinlock; v1's takes the
//     pidlist mutex and allocates, but is never held open);
//   - memory.current, memory.max, memory.peak, memory.events; v1
//     memory.usage_in_bytes (not the root's: some kernels sum flushed
//     statistics for it), memory.limit_in_bytes,
//     memory.max_usage_in_bytes, memory.failcnt, memory.oom_control
//     (page counters and atomic event counts);
//   - pids.current, pids.max (atomics); v1 cpuacct.usage (per-CPU sums,
//     no lock on 64-bit).
//
// The trace's per-second reading of a calm cgroup also reads two files
// raw that may wait (readsRawInTrace). Everything else goes through the wrapped
// system call: memory.stat flushes the memory controller's statistics
// (the slowest flush, in heavy reclaim, when an OOM kill comes), cpu.stat
// and the *.pressure files at a sample or a trigger, a file not listed
// here is not known not to wait. So does any first read of a descriptor,
// which allocates the kernel's seq_file buffer (GFP_KERNEL: it may
// reclaim).
func readsRaw(name string) bool {
	switch name {
	case "cgroup.procs",
		"memory.current", "memory.max", "memory.peak", "memory.events",
		"memory.usage_in_bytes", "memory.limit_in_bytes", "memory.max_usage_in_bytes",
		"memory.failcnt", "memory.oom_control",
		"pids.current", "pids.max", "cpuacct.usage":
		return true
	}
	return false
}

// readsRawInTrace reports whether the trace's per-second reading of a
// calm cgroup (Tracer.Calm) reads the held file name raw besides
// readsRaw's: the two it makes every second that may wait.
//
// The trade: the recorder's trace ticks on a timerfd (recorder fdTicker)
// so that the runtime's monitor (sysmon) sleeps between samples, and a
// wrapped call wakes it (entersyscall); woken so, it looks again 20 µs
// later and hands the P of a call still in the kernel to another thread,
// so a wrapped call that waits holds the one P of an idle recorder
// (procs.go), and the watcher with it, some tens of microseconds. A raw
// one holds it as long as the kernel makes it wait:
//
//   - cpu.stat flushes the statistics of the cgroup's subtree under the
//     rstat lock, a spinlock: since Linux 6.15 one for the base CPU
//     statistics alone, before it one global lock for every controller's
//     (memory's too, which reclaim also flushes, for the whole tree); the
//     flush drops it between CPUs where it is contended (older kernels:
//     where rescheduling is due) and may reschedule there. A reader
//     spins while another flusher holds it; at the flush's
//     rescheduling points it can be preempted, as any thread can.
//   - memory.pressure takes the cgroup's PSI averaging mutex, taken by
//     every reader of the cgroup's pressure files, by the PSI worker
//     every 2 s, and by the making or removing of a PSI trigger
//     (systemd-oomd's): it sleeps while one of them holds it.
//
// Both are short but for heavy reclaim, when the lock is contended and
// the flushes are long. So they are read raw only while the cgroup is
// calm: no warning signs at the trace's last reading (its memory not
// near its limit, no memory pressure, no memory.events high or max
// rising). Not calm, the recorder samples every second on two Ps, and
// sysmon is awake anyway. Reclaim of the whole host, with the service
// calm, is not seen by this test: then a raw read may wait for a flush
// of another cgroup's statistics.
func readsRawInTrace(name string) bool {
	return name == "cpu.stat" || name == "memory.pressure"
}

// openFile opens path read-only, with its inode number when wantID.
func openFile(path string, wantID bool) (fd int, id uint64, err error) {
	for {
		fd, err = unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return -1, 0, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	if wantID {
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			unix.Close(fd)
			return -1, 0, &fs.PathError{Op: "fstat", Path: path, Err: err}
		}
		id = uint64(st.Ino)
	}
	return fd, id, nil
}

// isAbsent reports whether err means the file is not there: the kernel or
// layout lacks it (ENOENT), its cgroup was removed while it was open (ENODEV),
// or the feature is disabled at boot (EOPNOTSUPP, e.g. psi=0).
func isAbsent(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ENODEV) ||
		errors.Is(err, unix.EOPNOTSUPP)
}

// wrapRead adds the package's error context to a failed read.
func wrapRead(err error) error {
	return fmt.Errorf("failed to read cgroup file: %w", err)
}
