package sample

import (
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// ProcSum reads /proc/PID/stat of a few processes for the service's fine
// trace: their resident memory and threads, summed, with one reused buffer
// and nothing else read (no command line). Not safe for concurrent use.
type ProcSum struct {
	root     string
	pageSize uint64
	buf      []byte
	path     []byte
	dirfd    int // the proc root, opened at the first Sum; -1 before
}

// NewProcSum returns a ProcSum over the proc filesystem at procRoot.
func NewProcSum(procRoot string) *ProcSum {
	return &ProcSum{root: procRoot, pageSize: uint64(os.Getpagesize()), buf: make([]byte, 4096), dirfd: -1}
}

// Sum returns the resident bytes and threads of pids, summed, and how many
// of them were read (a vanished or unreadable process is skipped). Each
// stat is opened relative to the proc root, held open between calls.
func (p *ProcSum) Sum(pids []int) (rss uint64, threads, n int) {
	if p.dirfd < 0 {
		fd, err := unix.Open(p.root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return 0, 0, 0
		}
		p.dirfd = fd
	}
	for _, pid := range pids {
		path := strconv.AppendInt(p.path[:0], int64(pid), 10)
		path = append(path, "/stat\x00"...)
		p.path = path
		fd, err := openat(p.dirfd, path)
		if err != nil {
			continue
		}
		m, err := readRetry(fd, p.buf)
		unix.Close(fd)
		if err != nil || m == len(p.buf) {
			continue
		}
		st, err := parseStat(p.buf[:m])
		if err != nil {
			continue
		}
		rss += st.RSS * p.pageSize
		threads += st.NumThreads
		n++
	}
	return rss, threads, n
}

// Close releases the proc root's descriptor.
func (p *ProcSum) Close() {
	if p.dirfd >= 0 {
		unix.Close(p.dirfd)
		p.dirfd = -1
	}
}
