package cgroup

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
)

// Stats is the evidence of a service's cgroup. A nil field means this
// kernel or layout has no such file (or, for the limits, that there is no
// limit).
type Stats struct {
	MemoryBytes      *uint64 // v2 memory.current; v1 memory.usage_in_bytes
	MemoryMaxBytes   *uint64 // v2 memory.max; v1 memory.limit_in_bytes; nil when unlimited
	MemoryPeakBytes  *uint64 // v2 memory.peak (Linux 5.19+); v1 memory.max_usage_in_bytes
	SwapBytes        *uint64 // v2 memory.swap.current; v1 memory.stat swap (with swap accounting)
	OOMKills         *uint64 // v2 memory.events oom_kill; v1 memory.oom_control oom_kill (Linux 4.13+)
	CPUUsageUsec     *uint64 // v2 cpu.stat usage_usec; v1 cpuacct.usage (ns → µs)
	CPUThrottledUsec *uint64 // v2 cpu.stat throttled_usec; v1 cpu.stat throttled_time (ns → µs)
	PidsCurrent      *uint64 // pids.current
	PidsMax          *uint64 // pids.max; nil when "max"
	Pressure         *Pressure
	MemoryStat       *MemoryStat // memory.stat's breakdown
}

// Pressure is the avg10 of the cgroup's pressure stall information (v2 and
// the unified hierarchy of hybrid only), in percent of wall time. A value
// whose file or line the kernel lacks is 0.
type Pressure struct {
	CPUSomeAvg10    float64
	MemorySomeAvg10 float64
	MemoryFullAvg10 float64
	IOSomeAvg10     float64
	IOFullAvg10     float64
}

// Stats reads the evidence of the cgroup at path, each value from the first
// hierarchy that has it: v2 (or hybrid's unified) first, then v1. It returns
// ErrNotFound when no hierarchy has the cgroup. A file that cannot be read or
// parsed for another reason is reported in the error, joined with the
// others, while the rest of Stats is still filled.
func (f *FS) Stats(p string) (Stats, error) {
	p, err := cleanPath(p)
	if err != nil {
		return Stats{}, err
	}
	if !f.exists(p) {
		return Stats{}, fmt.Errorf("failed to read stats of cgroup %s: %w", p, ErrNotFound)
	}
	var sr statReader
	s := sr.stats(f.dirsOf(p))
	return s, errors.Join(sr.errs...)
}

// dirs are a cgroup's directories in each hierarchy: "" where the
// hierarchy is not mounted. v2mem and v2pids are v2 where its hierarchy
// has the memory and pids controllers, "" where it is known not to
// (hybrid's unified, as a rule): their files are not looked for there.
type dirs struct {
	v2, memory, cpu, cpuacct, pids string
	v2mem, v2pids                  string
}

// dirsOf joins the cleaned cgroup path p to each hierarchy.
func (f *FS) dirsOf(p string) dirs {
	in := func(h string) string {
		if h == "" {
			return ""
		}
		return filepath.Join(h, p)
	}
	v2 := in(f.v2)
	return dirs{v2: v2, memory: in(f.memory), cpu: in(f.cpu), cpuacct: in(f.cpuacct), pids: in(f.pids), v2mem: v2, v2pids: v2}
}

// stats reads the evidence of the cgroup in d, each value from the first
// hierarchy that has it: v2 (or hybrid's unified) first, then v1. Errors
// are collected in sr.errs.
func (sr *statReader) stats(d dirs) Stats {
	var s Stats
	// The OOM counter and the peak first: a read racing the cgroup's
	// removal keeps what it read before the files went.
	s.OOMKills = sr.keyed(d.v2mem, "memory.events", "oom_kill", 1)
	if s.OOMKills == nil {
		s.OOMKills = sr.keyed(d.memory, "memory.oom_control", "oom_kill", 1)
	}
	s.MemoryPeakBytes = sr.memoryPeak(d.v2mem, d.memory)
	s.MemoryBytes = sr.memoryBytes(d.v2mem, d.memory)
	s.MemoryMaxBytes = sr.memoryMax(d.v2mem, d.memory)
	s.SwapBytes = sr.uint(d.v2mem, "memory.swap.current", 1) // v1's: from memory.stat, below
	// cpu.stat once: usage and throttling are lines of the same file.
	if b := sr.file(d.v2, "cpu.stat"); b != nil {
		s.CPUUsageUsec = sr.key(d.v2, "cpu.stat", b, "usage_usec")
		s.CPUThrottledUsec = sr.key(d.v2, "cpu.stat", b, "throttled_usec")
	}
	if s.CPUUsageUsec == nil {
		s.CPUUsageUsec = sr.uint(d.cpuacct, "cpuacct.usage", 1000)
	}
	if s.CPUThrottledUsec == nil {
		s.CPUThrottledUsec = sr.keyed(d.cpu, "cpu.stat", "throttled_time", 1000)
	}
	s.PidsCurrent = sr.pidsCurrent(d.v2pids, d.pids)
	if v, ok := sr.limit(d.v2pids, "pids.max"); ok {
		s.PidsMax = v
	} else {
		s.PidsMax, _ = sr.limit(d.pids, "pids.max")
	}
	s.Pressure = sr.pressure(d.v2)
	s.MemoryStat = sr.memoryStat(d.v2mem, d.memory, &s.SwapBytes)
	return s
}

// The values both Stats and a Tracer read, each from the first hierarchy
// that has it: v2 (or hybrid's unified), then v1.

func (sr *statReader) memoryBytes(v2, mem string) *uint64 {
	if v := sr.uint(v2, "memory.current", 1); v != nil {
		return v
	}
	return sr.uint(mem, "memory.usage_in_bytes", 1)
}

func (sr *statReader) memoryMax(v2, mem string) *uint64 {
	if v, ok := sr.limit(v2, "memory.max"); ok {
		return v
	}
	v, _ := sr.limit(mem, "memory.limit_in_bytes")
	return v
}

func (sr *statReader) memoryPeak(v2, mem string) *uint64 {
	if v := sr.uint(v2, "memory.peak", 1); v != nil {
		return v
	}
	return sr.uint(mem, "memory.max_usage_in_bytes", 1)
}

func (sr *statReader) cpuUsage(v2, cpuacct string) *uint64 {
	if v := sr.keyed(v2, "cpu.stat", "usage_usec", 1); v != nil {
		return v
	}
	return sr.uint(cpuacct, "cpuacct.usage", 1000)
}

func (sr *statReader) pidsCurrent(v2, pids string) *uint64 {
	if v := sr.uint(v2, "pids.current", 1); v != nil {
		return v
	}
	return sr.uint(pids, "pids.current", 1)
}

// statReader reads one file at a time into a reused buffer and collects the
// errors other than absence.
type statReader struct {
	r    reader
	errs []error
	held *heldFiles // files kept open between reads (a Tracer's); nil: none
	// given is a file read a moment before, by the watcher's look
	// ([Sight]): its content is taken instead of reading it again.
	given struct {
		file string
		b    []byte
	}
}

// read returns the content of dir/name, at most limit bytes: from a held
// file where dir's files are held (single: one seq_file record, see
// heldFiles.read).
func (sr *statReader) read(dir, name string, limit int, single bool) ([]byte, error) {
	if sr.held != nil && sr.held.holds(dir) {
		return sr.held.read(&sr.r, dir, name, limit, single)
	}
	b, _, err := sr.r.read(filepath.Join(dir, name), limit, false)
	return b, err
}

// file returns the content of dir/name; nil when dir is "" or the file is
// absent or unreadable (the latter recorded).
func (sr *statReader) file(dir, name string) []byte {
	if dir == "" {
		return nil
	}
	if g := sr.given.file; len(g) == len(dir)+1+len(name) && g[len(dir)] == '/' &&
		strings.HasPrefix(g, dir) && strings.HasSuffix(g, name) {
		return sr.given.b
	}
	b, err := sr.read(dir, name, maxFileSize, true)
	if err != nil {
		if !isAbsent(err) {
			sr.errs = append(sr.errs, wrapRead(err))
		}
		return nil
	}
	return b
}

func (sr *statReader) parseErr(dir, name string, err error) {
	sr.errs = append(sr.errs, fmt.Errorf("failed to parse %s: %w", filepath.Join(dir, name), err))
}

// uint reads a single number, divided by div (ns → µs).
func (sr *statReader) uint(dir, name string, div uint64) *uint64 {
	b := sr.file(dir, name)
	if b == nil {
		return nil
	}
	v, err := parseUint(b)
	if err != nil {
		sr.parseErr(dir, name, err)
		return nil
	}
	v /= div
	return &v
}

// keyed reads key of a keyed file, divided by div.
func (sr *statReader) keyed(dir, name, key string, div uint64) *uint64 {
	b := sr.file(dir, name)
	if b == nil {
		return nil
	}
	v, ok, err := parseKeyed(b, key)
	if err != nil {
		sr.parseErr(dir, name, err)
		return nil
	}
	if !ok {
		return nil
	}
	v /= div
	return &v
}

// limit reads a limit file; ok is false when the file is absent.
func (sr *statReader) limit(dir, name string) (v *uint64, ok bool) {
	b := sr.file(dir, name)
	if b == nil {
		return nil, false
	}
	v, err := parseLimit(b)
	if err != nil {
		sr.parseErr(dir, name, err)
		return nil, false
	}
	return v, true
}

// pressure reads cpu, memory and io.pressure of the v2 cgroup dir; nil when
// none is there.
func (sr *statReader) pressure(dir string) *Pressure {
	var p Pressure
	found := false
	read := func(name string) (psi, bool) {
		b := sr.file(dir, name)
		if b == nil {
			return psi{}, false
		}
		v, err := parsePressure(b)
		if err != nil {
			sr.parseErr(dir, name, err)
			return psi{}, false
		}
		found = true
		return v, true
	}
	if v, ok := read("cpu.pressure"); ok {
		p.CPUSomeAvg10 = v.some
	}
	if v, ok := read("memory.pressure"); ok {
		p.MemorySomeAvg10, p.MemoryFullAvg10 = v.some, v.full
	}
	if v, ok := read("io.pressure"); ok {
		p.IOSomeAvg10, p.IOFullAvg10 = v.some, v.full
	}
	if !found {
		return nil
	}
	return &p
}
