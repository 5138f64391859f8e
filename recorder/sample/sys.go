package sample

import (
	"errors"
	"io/fs"
	"unsafe"

	"golang.org/x/sys/unix"
)

// openat opens the NUL-terminated path relative to dirfd, read-only. It
// takes bytes so that the per-process open of /proc/PID/stat does not
// allocate a string (unix.Openat copies its path argument).
func openat(dirfd int, path []byte) (int, error) {
	if len(path) == 0 || path[len(path)-1] != 0 {
		return -1, unix.EINVAL
	}
	fd, _, errno := unix.Syscall6(unix.SYS_OPENAT, uintptr(dirfd), uintptr(unsafe.Pointer(&path[0])),
		uintptr(unix.O_RDONLY|unix.O_CLOEXEC), 0, 0, 0)
	if errno != 0 {
		return -1, errno
	}
	return int(fd), nil
}

// readFile reads the file at path into *buf, growing it as needed, and
// returns the contents (aliasing *buf). It does not stat the file: proc
// files report size 0. With limit > 0 it reads at most limit bytes.
func readFile(path string, buf *[]byte, limit int) ([]byte, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	b := (*buf)[:cap(*buf)]
	if len(b) == 0 {
		b = make([]byte, 4096)
	}
	n := 0
	for {
		if limit > 0 && n >= limit {
			break
		}
		if n == len(b) {
			b = append(b, make([]byte, len(b))...)
		}
		end := len(b)
		if limit > 0 {
			end = min(end, limit)
		}
		m, err := unix.Read(fd, b[n:end])
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			*buf = b[:0]
			return nil, &fs.PathError{Op: "read", Path: path, Err: err}
		}
		if m == 0 {
			break
		}
		n += m
	}
	*buf = b[:0]
	return b[:n], nil
}
