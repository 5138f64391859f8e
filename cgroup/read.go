package cgroup

import (
	"errors"
	"fmt"
	"io/fs"

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
// (open, pread, close; fstat on request; the preads raw: package rawio): no
// allocation once the buffer has grown, and no netpoller registration as
// os.Open would attempt on kernfs files. The bytes returned are valid until the next read. Not safe for
// concurrent use.
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
	b, err := r.readFD(fd, path, limit)
	return b, id, err
}

// readFD reads an open file from offset 0 to EOF, at most limit bytes. A
// kernfs seq file read from offset 0 is generated afresh, so a file held
// open can be read again and again (not v1 cgroup.procs: its PID list is
// cached per open file). A removed cgroup's files fail with ENODEV.
func (r *reader) readFD(fd int, path string, limit int) ([]byte, error) {
	return r.readAt0(fd, path, limit, false)
}

// readAt0 is readFD; with single, the file is one seq_file record, which
// the kernel generates whole and hands out as far as the buffer holds: a
// first read shorter than the buffer is all of it, without a second read
// to see EOF (as /proc/PID/stat is read). Not for a file of many records
// (cgroup.procs), whose reads stop at the kernel's page-sized buffer.
func (r *reader) readAt0(fd int, path string, limit int, single bool) ([]byte, error) {
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
		m, err := rawio.Pread(fd, r.buf[n:], int64(n))
		if err != nil {
			return nil, &fs.PathError{Op: "read", Path: path, Err: err}
		}
		if m == 0 {
			return r.buf[:n], nil
		}
		n += m
		if single && n < len(r.buf) {
			return r.buf[:n], nil
		}
	}
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
