package sample

import (
	"bytes"
	"errors"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/preflight-rec/preflight/recorder/capture"
)

// maxLimitsRead bounds the read of /proc/PID/limits (about 1.3 KB).
const maxLimitsRead = 8 << 10

// AddFDs fills FDs and FDLimit of the service's processes procs, read from
// the proc filesystem at procRoot: the entries of /proc/PID/fd (readable by
// the process's owner, or with CAP_DAC_READ_SEARCH or ptrace access) and
// the soft "Max open files" of /proc/PID/limits (world-readable). A value
// that cannot be read stays nil, as does an unlimited limit. Safe for
// concurrent use.
func AddFDs(procRoot string, procs []capture.Process) {
	if len(procs) == 0 {
		return
	}
	dirBuf := make([]byte, 8<<10)
	var fileBuf []byte
	for i := range procs {
		p := &procs[i]
		dir := filepath.Join(procRoot, strconv.Itoa(p.PID))
		if n, err := countFDs(filepath.Join(dir, "fd"), dirBuf); err == nil {
			p.FDs = &n
		}
		if b, err := readFile(filepath.Join(dir, "limits"), &fileBuf, maxLimitsRead); err == nil {
			p.FDLimit, _ = parseNofile(b)
		}
	}
}

// countFDs counts the entries of a /proc/PID/fd directory, "." and ".."
// aside.
func countFDs(dir string, buf []byte) (int, error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, err
	}
	defer unix.Close(fd)
	n := 0
	for {
		m, err := unix.Getdents(fd, buf)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return 0, err
		}
		if m <= 0 {
			return n, nil
		}
		n += direntFDs(buf[:m])
	}
}

// direntFDs counts the entries of a linux_dirent64 buffer whose names are
// numbers (file descriptors).
func direntFDs(buf []byte) int {
	n := 0
	forDirents(buf, func(name []byte) {
		if _, ok := parseUint(name); ok {
			n++
		}
	})
	return n
}

// parseNofile returns the soft limit of the "Max open files" line of
// /proc/PID/limits; nil for "unlimited". ok is false without such a line.
func parseNofile(b []byte) (limit *uint64, ok bool) {
	const key = "Max open files"
	for line := range bytes.Lines(b) {
		rest, found := bytes.CutPrefix(line, []byte(key))
		if !found {
			continue
		}
		f := bytes.Fields(rest)
		if len(f) == 0 {
			return nil, false
		}
		if string(f[0]) == "unlimited" {
			return nil, true
		}
		v, ok := parseUint(f[0])
		if !ok {
			return nil, false
		}
		return &v, true
	}
	return nil, false
}
