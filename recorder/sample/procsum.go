package sample

import (
	"os"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/preflight-rec/preflight/cgroup/rawio"
)

// maxHeldStats bounds the /proc/PID/stat descriptors a ProcSum holds open
// between readings; the stat of processes beyond it is opened per reading.
const maxHeldStats = 64

// ProcSum reads /proc/PID/stat of a few processes for the service's fine
// trace: their resident memory and threads, summed, and nothing else (no
// command line). It holds each process's stat open between readings (a read
// from offset 0 regenerates it; a descriptor stays bound to its process,
// and fails once it is gone), so a reading costs a pread per process rather
// than a path walk, an open and a close (a raw pread: package rawio). Not safe for concurrent use; Close
// releases the descriptors.
type ProcSum struct {
	root     string
	pageSize uint64
	buf      []byte
	path     []byte
	dirfd    int         // the proc root, opened at the first Sum; -1 before
	held     map[int]int // PID → its open stat
	seen     map[int]bool
}

// NewProcSum returns a ProcSum over the proc filesystem at procRoot.
func NewProcSum(procRoot string) *ProcSum {
	return &ProcSum{root: procRoot, pageSize: uint64(os.Getpagesize()), buf: make([]byte, 4096), dirfd: -1,
		held: map[int]int{}, seen: map[int]bool{}}
}

// Sum returns the resident bytes and threads of pids, summed, and how many
// of them were read (a vanished or unreadable process is skipped).
func (p *ProcSum) Sum(pids []int) (rss uint64, threads, n int) {
	if p.dirfd < 0 {
		fd, err := unix.Open(p.root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return 0, 0, 0
		}
		p.dirfd = fd
	}
	clear(p.seen)
	for _, pid := range pids {
		p.seen[pid] = true
		b, ok := p.stat(pid)
		if !ok {
			continue
		}
		st, err := parseStat(b)
		if err != nil {
			continue
		}
		rss += st.RSS * p.pageSize
		threads += st.NumThreads
		n++
	}
	for pid, fd := range p.held { // processes no longer in the cgroup
		if !p.seen[pid] {
			unix.Close(fd)
			delete(p.held, pid)
		}
	}
	return rss, threads, n
}

// stat returns the content of pid's stat, from its held descriptor or a
// new one.
func (p *ProcSum) stat(pid int) ([]byte, bool) {
	if fd, ok := p.held[pid]; ok {
		if m, err := rawio.Pread(fd, p.buf, 0); err == nil && m > 0 && m < len(p.buf) {
			return p.buf[:m], true
		}
		unix.Close(fd) // gone (ESRCH), or odd: opened afresh below
		delete(p.held, pid)
	}
	path := strconv.AppendInt(p.path[:0], int64(pid), 10)
	path = append(path, "/stat\x00"...)
	p.path = path
	fd, err := openat(p.dirfd, path)
	if err != nil {
		return nil, false
	}
	m, err := readRetry(fd, p.buf)
	if len(p.held) < maxHeldStats && err == nil {
		p.held[pid] = fd
	} else {
		unix.Close(fd)
	}
	if err != nil || m == 0 || m == len(p.buf) {
		return nil, false
	}
	return p.buf[:m], true
}

// Close releases the descriptors.
func (p *ProcSum) Close() {
	for pid, fd := range p.held {
		unix.Close(fd)
		delete(p.held, pid)
	}
	if p.dirfd >= 0 {
		unix.Close(p.dirfd)
		p.dirfd = -1
	}
}
