package sample

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/procfs"
	"golang.org/x/sys/unix"
)

// PREFLIGHT_BENCH_PROCS=N starts N sleeping processes for the benchmarks
// that scan the real /proc, to measure at a production host's scale
// (go test -bench . -run '^$' with PREFLIGHT_BENCH_PROCS=2000).
func benchPopulation(b *testing.B) {
	b.Helper()
	n, _ := strconv.Atoi(os.Getenv("PREFLIGHT_BENCH_PROCS"))
	for range n {
		start(b, "sleep", "3600")
	}
}

// countProcs reports how many processes the benchmark scanned.
func countProcs(b *testing.B, n int) {
	b.ReportMetric(float64(n), "procs")
}

func BenchmarkSample(b *testing.B) {
	benchPopulation(b)
	s, err := New("/proc", 5)
	if err != nil {
		b.Fatal(err)
	}
	pids := []int{os.Getpid()}
	var n int
	b.ReportAllocs()
	for b.Loop() {
		got, _ := s.Sample(time.Now(), pids)
		n = got.Processes
	}
	countProcs(b, n)
}

// BenchmarkScan is the per-process part of a Sample: the /proc listing,
// every PID/stat read and parsed, the CPU deltas.
func BenchmarkScan(b *testing.B) {
	benchPopulation(b)
	s, err := New("/proc", 5)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := s.scan(s.procs, 1, 1); err != nil {
			b.Fatal(err)
		}
	}
	countProcs(b, len(s.recs))
}

// BenchmarkReadAllStat is the floor: list /proc and read every PID/stat
// once, nothing else. "raw" uses the sampler's primitives (getdents into a
// buffer, openat/read/close); "os" the standard library's.
func BenchmarkReadAllStat(b *testing.B) {
	benchPopulation(b)
	b.Run("raw", func(b *testing.B) {
		dirBuf := make([]byte, 32<<10)
		buf := make([]byte, 4096)
		var path []byte
		var pids []int
		var n int
		b.ReportAllocs()
		for b.Loop() {
			dirfd, err := unix.Open("/proc", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
			if err != nil {
				b.Fatal(err)
			}
			pids = pids[:0]
			for {
				m, err := unix.Getdents(dirfd, dirBuf)
				if err != nil {
					b.Fatal(err)
				}
				if m <= 0 {
					break
				}
				pids = direntPIDs(dirBuf[:m], pids)
			}
			n = 0
			for _, pid := range pids {
				path = strconv.AppendInt(path[:0], int64(pid), 10)
				path = append(path, "/stat\x00"...)
				fd, err := openat(dirfd, path)
				if err != nil {
					continue
				}
				if _, err := unix.Read(fd, buf); err == nil {
					n++
				}
				unix.Close(fd)
			}
			unix.Close(dirfd)
		}
		countProcs(b, n)
	})
	b.Run("os", func(b *testing.B) {
		var n int
		b.ReportAllocs()
		for b.Loop() {
			names, err := readDirNames("/proc")
			if err != nil {
				b.Fatal(err)
			}
			n = 0
			for _, name := range names {
				if _, err := strconv.Atoi(name); err != nil {
					continue
				}
				if _, err := os.ReadFile(filepath.Join("/proc", name, "stat")); err == nil {
					n++
				}
			}
		}
		countProcs(b, n)
	})
}

func readDirNames(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.Readdirnames(-1)
}

// BenchmarkProcfsStat is the alternative to BenchmarkScan: procfs's
// AllProcs and Proc.Stat for every process.
func BenchmarkProcfsStat(b *testing.B) {
	benchPopulation(b)
	fs, err := procfs.NewFS("/proc")
	if err != nil {
		b.Fatal(err)
	}
	var n int
	b.ReportAllocs()
	for b.Loop() {
		procs, err := fs.AllProcs()
		if err != nil {
			b.Fatal(err)
		}
		n = 0
		for _, p := range procs {
			if _, err := p.Stat(); err == nil {
				n++
			}
		}
	}
	countProcs(b, n)
}

func BenchmarkParseStat(b *testing.B) {
	line := []byte("1234 (web server) S 1 1234 1234 0 -1 4194560 32955 309942 0 146 24 60 1187 306 20 0 11 0 9 37613568 2714 18446744073709551615 1 1 0 0 0 0 0 4096 1256 0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 0\n")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := parseStat(line); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkOpenat compares the sampler's byte-path openat with
// unix.Openat's string path, which allocates.
func BenchmarkOpenat(b *testing.B) {
	dirfd, err := unix.Open("/proc", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer unix.Close(dirfd)
	path := []byte(strconv.Itoa(os.Getpid()) + "/stat\x00")
	b.Run("bytes", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			fd, err := openat(dirfd, path)
			if err != nil {
				b.Fatal(err)
			}
			unix.Close(fd)
		}
	})
	b.Run("string", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			fd, err := unix.Openat(dirfd, string(path[:len(path)-1]), unix.O_RDONLY|unix.O_CLOEXEC, 0)
			if err != nil {
				b.Fatal(err)
			}
			unix.Close(fd)
		}
	})
}

func TestOpenat(t *testing.T) {
	dirfd, err := unix.Open("/proc", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(dirfd)
	fd, err := openat(dirfd, []byte("self/stat\x00"))
	if err != nil {
		t.Fatal(err)
	}
	unix.Close(fd)
	if _, err := openat(dirfd, []byte("self/stat")); !errors.Is(err, unix.EINVAL) {
		t.Errorf("path without NUL: %v, want EINVAL", err)
	}
	if _, err := openat(dirfd, []byte("0/stat\x00")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v, want ErrNotExist", err)
	}
}
