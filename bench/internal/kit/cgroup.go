// Package kit is the machinery of preflight's benchmarks (bench/): throw-away
// cgroups that account each measured tool's CPU time to the microsecond,
// processes started straight into them, readings of /proc, a loopback health
// server, and the side-by-side, idle and latency runs built from them.
//
// Every process kit starts is ended by its PID (never by name) and reaped;
// every cgroup it makes is removed, once the processes it started there have
// exited. Root only: cgroups are made by hand.
package kit

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// Hierarchies are the mount points the benchmarks use: the cgroup2 one
// (/sys/fs/cgroup/unified on a hybrid host, /sys/fs/cgroup on a pure v2
// one), and the v1 memory controller's where one is mounted.
type Hierarchies struct {
	V2       string
	V1Memory string // "" without a v1 memory hierarchy
}

// FindHierarchies reads /proc/self/mountinfo.
func FindHierarchies() (Hierarchies, error) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return Hierarchies{}, fmt.Errorf("failed to read mountinfo: %w", err)
	}
	h := ParseMountinfo(b)
	if h.V2 == "" {
		return h, errors.New("failed to find a cgroup2 mount: the benchmarks account CPU time in cgroup2 cpu.stat")
	}
	return h, nil
}

// ParseMountinfo finds the cgroup2 mount and the v1 memory mount in the
// contents of /proc/PID/mountinfo; the first of each wins.
func ParseMountinfo(b []byte) Hierarchies {
	var h Hierarchies
	for line := range bytes.Lines(b) {
		pre, post, ok := bytes.Cut(line, []byte(" - "))
		if !ok {
			continue
		}
		f, g := bytes.Fields(pre), bytes.Fields(post)
		if len(f) < 5 || len(g) < 3 {
			continue
		}
		mnt := string(f[4])
		switch string(g[0]) {
		case "cgroup2":
			if h.V2 == "" {
				h.V2 = mnt
			}
		case "cgroup":
			for o := range bytes.SplitSeq(g[2], []byte(",")) {
				if string(o) == "memory" && h.V1Memory == "" {
					h.V1Memory = mnt
				}
			}
		}
	}
	return h
}

// Cgroup is a cgroup the benchmarks made: always in cgroup2, where its
// cpu.stat accounts the CPU time of every process in it (children and
// exited ones included), and optionally in the v1 memory hierarchy too, as a
// service's cgroup is on a hybrid host.
type Cgroup struct {
	Path     string // as /proc/PID/cgroup shows it, e.g. "/preflight-bench-123/atop"
	V2       string // its cgroup2 directory
	V1Memory string // its v1 memory directory, "" when not made there
}

// MakeCgroup makes the cgroup path (its parent must exist) in cgroup2 and,
// with v1Memory, in the v1 memory hierarchy.
func MakeCgroup(h Hierarchies, path string, v1Memory bool) (*Cgroup, error) {
	cg := &Cgroup{Path: path, V2: filepath.Join(h.V2, path)}
	if err := os.Mkdir(cg.V2, 0o755); err != nil {
		return nil, fmt.Errorf("failed to make cgroup %s: %w", cg.V2, err)
	}
	if v1Memory && h.V1Memory != "" {
		dir := filepath.Join(h.V1Memory, path)
		if err := os.Mkdir(dir, 0o755); err != nil {
			_ = os.Remove(cg.V2)
			return nil, fmt.Errorf("failed to make cgroup %s: %w", dir, err)
		}
		cg.V1Memory = dir
	}
	return cg, nil
}

// Move puts a process into the cgroup, in every hierarchy it was made in.
func (cg *Cgroup) Move(pid int) error {
	for _, d := range cg.dirs() {
		if err := os.WriteFile(filepath.Join(d, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0); err != nil {
			return fmt.Errorf("failed to move %d into %s: %w", pid, d, err)
		}
	}
	return nil
}

func (cg *Cgroup) dirs() []string {
	if cg.V1Memory == "" {
		return []string{cg.V2}
	}
	return []string{cg.V2, cg.V1Memory}
}

// PIDs returns the processes in the cgroup (its cgroup2 cgroup.procs).
func (cg *Cgroup) PIDs() ([]int, error) {
	b, err := os.ReadFile(filepath.Join(cg.V2, "cgroup.procs"))
	if err != nil {
		return nil, fmt.Errorf("failed to read processes of %s: %w", cg.V2, err)
	}
	var pids []int
	for _, f := range bytes.Fields(b) {
		if p, err := strconv.Atoi(string(f)); err == nil {
			pids = append(pids, p)
		}
	}
	return pids, nil
}

// UsageUsec returns the CPU time, user plus system, of everything that ran
// in the cgroup since it was made: cpu.stat usage_usec, which cgroup2 keeps
// without any controller enabled.
func (cg *Cgroup) UsageUsec() (uint64, error) {
	b, err := os.ReadFile(filepath.Join(cg.V2, "cpu.stat"))
	if err != nil {
		return 0, fmt.Errorf("failed to read CPU time of %s: %w", cg.V2, err)
	}
	v, ok := KeyedValue(b, "usage_usec")
	if !ok {
		return 0, fmt.Errorf("failed to read CPU time of %s: no usage_usec in cpu.stat", cg.V2)
	}
	return v, nil
}

// Remove removes the cgroup, waiting up to 5 s for processes that were
// killed to finish exiting. It never moves or ends a process: one still in
// the cgroup after that is an error that names the cgroup.
func (cg *Cgroup) Remove() error {
	var errs []error
	for _, d := range cg.dirs() {
		deadline := time.Now().Add(5 * time.Second)
		for {
			err := os.Remove(d)
			if err == nil || errors.Is(err, os.ErrNotExist) {
				break
			}
			if time.Now().After(deadline) {
				errs = append(errs, fmt.Errorf("failed to remove cgroup %s: %w", d, err))
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return errors.Join(errs...)
}

// KeyedValue returns the first number after key in a file of "key value"
// lines (cpu.stat, memory.events) or "Key: value unit" lines
// (/proc/PID/status, /proc/PID/io).
func KeyedValue(b []byte, key string) (uint64, bool) {
	for line := range bytes.Lines(b) {
		f := bytes.Fields(line)
		if len(f) < 2 || string(bytes.TrimSuffix(f[0], []byte(":"))) != key {
			continue
		}
		v, err := strconv.ParseUint(string(f[1]), 10, 64)
		return v, err == nil
	}
	return 0, false
}
