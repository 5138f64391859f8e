package kit

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"
)

// Reading is what a tool's cgroup and processes had consumed at one moment.
// Differences of two readings are the cost of what ran in between.
type Reading struct {
	At         time.Time
	UsageUsec  uint64 // cgroup2 cpu.stat usage_usec: user + system, µs
	Ticks      uint64 // utime+stime+cutime+cstime of its live processes, clock ticks (/proc/PID/stat)
	Wchar      uint64 // bytes passed to write(2) and the like (/proc/PID/io wchar)
	WriteBytes uint64 // bytes sent to the storage layer (/proc/PID/io write_bytes)
	HWMKiB     uint64 // peak resident set of its largest process (VmHWM)
	Procs      int
}

// Read takes a reading of cg.
func Read(cg *Cgroup) (Reading, error) {
	r := Reading{At: time.Now()}
	u, err := cg.UsageUsec()
	if err != nil {
		return r, err
	}
	r.UsageUsec = u
	pids, err := cg.PIDs()
	if err != nil {
		return r, err
	}
	for _, pid := range pids {
		p, err := ReadProc(pid)
		if err != nil {
			continue // exited since the listing
		}
		r.Procs++
		r.Ticks += p.Ticks
		r.Wchar += p.Wchar
		r.WriteBytes += p.WriteBytes
		r.HWMKiB = max(r.HWMKiB, p.HWMKiB)
	}
	return r, nil
}

// ProcReading is one process's counters.
type ProcReading struct {
	Ticks      uint64 // utime+stime+cutime+cstime
	Wchar      uint64
	WriteBytes uint64
	HWMKiB     uint64
}

// ReadProc reads /proc/PID/stat, io and status.
func ReadProc(pid int) (ProcReading, error) {
	var p ProcReading
	dir := "/proc/" + strconv.Itoa(pid) + "/"
	b, err := os.ReadFile(dir + "stat")
	if err != nil {
		return p, fmt.Errorf("failed to read %sstat: %w", dir, err)
	}
	t, err := ParseStatTimes(b)
	if err != nil {
		return p, fmt.Errorf("failed to parse %sstat: %w", dir, err)
	}
	p.Ticks = t.UTime + t.STime + t.CUTime + t.CSTime
	if b, err = os.ReadFile(dir + "io"); err == nil {
		p.Wchar, _ = KeyedValue(b, "wchar")
		p.WriteBytes, _ = KeyedValue(b, "write_bytes")
	}
	if b, err = os.ReadFile(dir + "status"); err == nil {
		p.HWMKiB, _ = KeyedValue(b, "VmHWM")
	}
	return p, nil
}

// StatTimes are the CPU times of /proc/PID/stat, in clock ticks.
type StatTimes struct {
	UTime, STime, CUTime, CSTime uint64
}

// ParseStatTimes parses fields 14 to 17 of a /proc/PID/stat line; the
// command name (field 2) may hold spaces and parentheses.
func ParseStatTimes(b []byte) (StatTimes, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return StatTimes{}, errors.New("no command name")
	}
	f := bytes.Fields(b[i+1:]) // f[0] is field 3, the state
	if len(f) < 15 {
		return StatTimes{}, fmt.Errorf("%d fields after the command name, want at least 15", len(f))
	}
	var v [4]uint64
	for k := range v {
		n, err := strconv.ParseUint(string(f[11+k]), 10, 64)
		if err != nil {
			return StatTimes{}, fmt.Errorf("field %d: %w", 14+k, err)
		}
		v[k] = n
	}
	return StatTimes{UTime: v[0], STime: v[1], CUTime: v[2], CSTime: v[3]}, nil
}

// Cost is the difference of two readings over a number of samples.
type Cost struct {
	Samples          int
	CPUPerSample     time.Duration // from cpu.stat usage_usec
	TicksPerSample   float64       // from /proc/PID/stat, for a cross-check at 10 ms resolution
	WcharPerSample   float64
	StoragePerSample float64
	Elapsed          time.Duration
}

// CostBetween is the cost of what ran between a and b, spread over samples.
func CostBetween(a, b Reading, samples int) Cost {
	c := Cost{Samples: samples, Elapsed: b.At.Sub(a.At)}
	if samples <= 0 {
		return c
	}
	n := float64(samples)
	c.CPUPerSample = time.Duration(float64(sub(b.UsageUsec, a.UsageUsec)) * float64(time.Microsecond) / n)
	c.TicksPerSample = float64(sub(b.Ticks, a.Ticks)) / n
	c.WcharPerSample = float64(sub(b.Wchar, a.Wchar)) / n
	c.StoragePerSample = float64(sub(b.WriteBytes, a.WriteBytes)) / n
	return c
}

func sub(b, a uint64) uint64 {
	if b < a {
		return 0
	}
	return b - a
}
