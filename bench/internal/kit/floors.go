package kit

import (
	"fmt"
	"runtime"
	"time"

	"golang.org/x/sys/unix"
)

// Floors are the least CPU time a sampler of every process can spend: one
// pass over /proc reading every PID/stat once, and every PID/stat and
// PID/status once; medians of several passes.
type Floors struct {
	Procs      int           // processes read in a pass
	Stat       time.Duration // list /proc, read every PID/stat
	StatStatus time.Duration // list /proc, read every PID/stat and PID/status
}

// Floor file sets.
var (
	StatOnly   = []string{"/stat"}
	StatStatus = []string{"/stat", "/status"}
)

// FloorPass lists the processes under procRoot and reads the given files of
// each once (one open, read(2) and close each), and returns the CPU time it
// took (user + system of the calling thread) and how many processes it read.
func FloorPass(procRoot string, files []string) (time.Duration, int, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	dirfd, err := unix.Open(procRoot, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, 0, fmt.Errorf("failed to open %s: %w", procRoot, err)
	}
	defer unix.Close(dirfd)
	buf := make([]byte, 8192)
	t0 := threadCPU()
	n, err := readAll(dirfd, procRoot, files, buf)
	return threadCPU() - t0, n, err
}

// WarmFloors takes the floors' passes back to back, alternating, passes
// times each, and returns their medians: the floors with every cache warm,
// the least a pass can cost.
func WarmFloors(procRoot string, passes int) (Floors, error) {
	var st, ss, n []float64
	for range max(passes, 1) {
		for _, files := range [][]string{StatOnly, StatStatus} {
			d, procs, err := FloorPass(procRoot, files)
			if err != nil {
				return Floors{}, err
			}
			if len(files) == 1 {
				st = append(st, float64(d))
				n = append(n, float64(procs))
			} else {
				ss = append(ss, float64(d))
			}
		}
	}
	return Floors{Procs: int(Median(n)), Stat: time.Duration(Median(st)), StatStatus: time.Duration(Median(ss))}, nil
}

// readAll lists the processes under the open root and reads the given files
// of each, one read(2) each; it returns how many processes it read.
func readAll(dirfd int, root string, files []string, buf []byte) (int, error) {
	names, err := readDirNames(root)
	if err != nil {
		return 0, fmt.Errorf("failed to list %s: %w", root, err)
	}
	n := 0
	for _, name := range names {
		if !isPID(name) {
			continue
		}
		ok := true
		for _, file := range files {
			fd, err := unix.Openat(dirfd, name+file, unix.O_RDONLY|unix.O_CLOEXEC, 0)
			if err != nil {
				ok = false
				break // exited
			}
			_, err = unix.Read(fd, buf)
			unix.Close(fd)
			ok = ok && err == nil
		}
		if ok {
			n++
		}
	}
	return n, nil
}

// threadCPU is the calling thread's CPU time.
func threadCPU() time.Duration {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts)
	return time.Duration(ts.Nano())
}
