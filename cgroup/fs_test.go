package cgroup

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func fixture(t *testing.T, name string) *FS {
	t.Helper()
	f, err := NewFS(filepath.Join("testdata", name))
	if err != nil {
		t.Fatalf("NewFS(%s): %v", name, err)
	}
	return f
}

func TestNewFSLayouts(t *testing.T) {
	tests := []struct {
		dir     string
		want    Layout
		memory  string
		cpu     string
		cpuacct string
		order   []string
	}{
		{"v2", Unified, "", "", "", []string{""}},
		{"hybrid", Hybrid, "memory", "cpu", "cpuacct",
			[]string{"unified", "systemd", "memory", "pids", "cpu", "cpuacct", "blkio"}},
		{"v1", Legacy, "memory", "cpu,cpuacct", "cpu,cpuacct",
			[]string{"systemd", "memory", "pids", "cpu,cpuacct"}},
	}
	for _, tt := range tests {
		f := fixture(t, tt.dir)
		if f.Layout() != tt.want {
			t.Errorf("%s: layout %v, want %v", tt.dir, f.Layout(), tt.want)
		}
		base := func(d string) string {
			if d == "" {
				return ""
			}
			return filepath.Base(d)
		}
		if base(f.memory) != tt.memory || base(f.cpu) != tt.cpu || base(f.cpuacct) != tt.cpuacct {
			t.Errorf("%s: memory %q cpu %q cpuacct %q", tt.dir, f.memory, f.cpu, f.cpuacct)
		}
		var order []string
		for _, h := range f.order {
			order = append(order, h.name)
		}
		if !slices.Equal(order, tt.order) {
			t.Errorf("%s: hierarchies %q, want %q", tt.dir, order, tt.order)
		}
	}
	if got := fmt.Sprint(Unified, Hybrid, Legacy, Layout(0)); got != "unified hybrid legacy Layout(0)" {
		t.Errorf("Layout strings: %s", got)
	}
}

func TestNewFSRejects(t *testing.T) {
	empty := t.TempDir()
	if _, err := NewFS(empty); err == nil {
		t.Errorf("NewFS(empty dir) succeeded")
	}
	if _, err := NewFS(filepath.Join(empty, "missing")); err == nil {
		t.Errorf("NewFS(missing dir) succeeded")
	}
	// v1 controllers without name=systemd: nothing systemd manages.
	if err := os.MkdirAll(filepath.Join(empty, "memory"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(empty, "memory", "cgroup.procs"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := NewFS(empty); err == nil {
		t.Errorf("NewFS(memory only) succeeded")
	}
}

func TestFind(t *testing.T) {
	tests := []struct {
		layout, unit, want string
		err                error
	}{
		{"v2", "dead-drop.service", "/system.slice/dead-drop.service", nil},
		{"v2", "dead-drop", "/system.slice/dead-drop.service", nil},
		{"v2", "demo@x.service", "/system.slice/system-demo.slice/demo@x.service", nil},
		{"v2", "my-app@blue.service", `/system.slice/system-my\x2dapp.slice/my-app@blue.service`, nil},
		{"v2", "walker.service", "/user.slice/user-1000.slice/user@1000.service/app.slice/walker.service", nil},
		{"v2", "missing.service", "", ErrNotFound},
		{"v2", "demo@y.service", "", ErrNotFound},
		{"hybrid", "dead-drop.service", "/system.slice/dead-drop.service", nil},
		{"hybrid", "demo@x.service", "/system.slice/system-demo.slice/demo@x.service", nil},
		{"hybrid", "old.service", "/system.slice/old.service", nil}, // name=systemd only
		{"hybrid", "missing.service", "", ErrNotFound},
		{"v1", "dead-drop.service", "/system.slice/dead-drop.service", nil},
		{"v1", "demo@x.service", "/system.slice/system-demo.slice/demo@x.service", nil},
		{"v1", "missing.service", "", ErrNotFound},
	}
	for _, tt := range tests {
		got, err := fixture(t, tt.layout).Find(tt.unit)
		if got != tt.want || !errors.Is(err, tt.err) || (err == nil) != (tt.err == nil) {
			t.Errorf("%s: Find(%q) = %q, %v; want %q, %v", tt.layout, tt.unit, got, err, tt.want, tt.err)
		}
	}
	for _, bad := range []string{"", "..", "../etc/passwd"} {
		if _, err := fixture(t, "v2").Find(bad); err == nil || errors.Is(err, ErrNotFound) {
			t.Errorf("Find(%q) = %v, want a usage error", bad, err)
		}
	}
}

func TestProcs(t *testing.T) {
	tests := []struct {
		layout, path string
		want         []int
		err          error
	}{
		{"v2", "/system.slice/dead-drop.service", []int{1234, 1240}, nil},
		{"v2", "system.slice/system-demo.slice/demo@x.service", []int{2001}, nil},
		{"v2", "/system.slice/delegated.service", []int{5001, 5002}, nil},       // from its sub-cgroup
		{"v2", "/system.slice", []int{1234, 1240, 2001, 3001, 5001, 5002}, nil}, // a slice: its descendants
		{"v2", "/system.slice/missing.service", nil, ErrNotFound},
		{"hybrid", "/system.slice/dead-drop.service", []int{1234, 1240}, nil},
		{"hybrid", "/system.slice/old.service", []int{6001}, nil}, // from name=systemd
		{"v1", "/system.slice/dead-drop.service", []int{1234, 1240}, nil},
		{"v1", "/system.slice/system-demo.slice/demo@x.service", []int{2001}, nil},
		{"v1", "/system.slice/missing.service", nil, ErrNotFound},
	}
	for _, tt := range tests {
		got, err := fixture(t, tt.layout).Procs(tt.path)
		if !slices.Equal(got, tt.want) || !errors.Is(err, tt.err) || (err == nil) != (tt.err == nil) {
			t.Errorf("%s: Procs(%q) = %v, %v; want %v, %v", tt.layout, tt.path, got, err, tt.want, tt.err)
		}
	}
}

func u64(v uint64) *uint64 { return &v }

func TestStats(t *testing.T) {
	fullPressure := &Pressure{CPUSomeAvg10: 1.5, MemorySomeAvg10: 2.25, MemoryFullAvg10: 1.75, IOSomeAvg10: 0.5, IOFullAvg10: 0.25}
	tests := []struct {
		layout, path string
		want         Stats
	}{
		{"v2", "/system.slice/dead-drop.service", Stats{
			MemoryBytes: u64(52428800), MemoryMaxBytes: nil, MemoryPeakBytes: u64(73400320), SwapBytes: u64(4096),
			OOMKills: u64(2), CPUUsageUsec: u64(123456), CPUThrottledUsec: u64(7890),
			PidsCurrent: u64(7), PidsMax: nil, Pressure: fullPressure,
		}},
		{"v2", "/system.slice/system-demo.slice/demo@x.service", Stats{ // an older kernel: no peak, no swap
			MemoryBytes: u64(1048576), MemoryMaxBytes: u64(536870912), OOMKills: u64(0), CPUUsageUsec: u64(42),
			PidsCurrent: u64(1), PidsMax: u64(4915), Pressure: &Pressure{CPUSomeAvg10: 0.1},
		}},
		{"v2", "/system.slice/delegated.service", Stats{}},
		{"hybrid", "/system.slice/dead-drop.service", Stats{
			MemoryBytes: u64(52428800), MemoryMaxBytes: u64(33554432), MemoryPeakBytes: u64(73400320), SwapBytes: nil,
			OOMKills: u64(3), CPUUsageUsec: u64(123456), CPUThrottledUsec: u64(7890),
			PidsCurrent: u64(7), PidsMax: u64(4915), Pressure: fullPressure,
		}},
		{"hybrid", "/system.slice/system-demo.slice/demo@x.service", Stats{}},
		{"v1", "/system.slice/dead-drop.service", Stats{
			MemoryBytes: u64(52428800), MemoryMaxBytes: nil, MemoryPeakBytes: u64(73400320), SwapBytes: u64(8192),
			OOMKills: u64(1), CPUUsageUsec: u64(123456), CPUThrottledUsec: u64(7890),
			PidsCurrent: u64(7), PidsMax: nil, Pressure: nil,
		}},
		{"v1", "/system.slice/system-demo.slice/demo@x.service", Stats{}},
	}
	for _, tt := range tests {
		got, err := fixture(t, tt.layout).Stats(tt.path)
		if err != nil {
			t.Errorf("%s: Stats(%s): %v", tt.layout, tt.path, err)
			continue
		}
		if d := diffStats(got, tt.want); d != "" {
			t.Errorf("%s: Stats(%s): %s", tt.layout, tt.path, d)
		}
	}
	if _, err := fixture(t, "v2").Stats("/system.slice/missing.service"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Stats(missing) = %v, want ErrNotFound", err)
	}
}

func TestStatsReportsMalformedFiles(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, map[string]string{
		"cgroup.controllers":       "memory pids\n",
		"x.service/cgroup.procs":   "1\n",
		"x.service/memory.current": "lots\n",
		"x.service/pids.current":   "3\n",
	})
	f, err := NewFS(root)
	if err != nil {
		t.Fatal(err)
	}
	s, err := f.Stats("/x.service")
	if err == nil || errors.Is(err, ErrNotFound) {
		t.Errorf("Stats with a malformed memory.current: err = %v", err)
	}
	if s.MemoryBytes != nil || !equalPtr(s.PidsCurrent, u64(3)) {
		t.Errorf("Stats kept the wrong fields: memory %s pids %s", show(s.MemoryBytes), show(s.PidsCurrent))
	}
}

func diffStats(got, want Stats) string {
	var d string
	field := func(name string, g, w *uint64) {
		if !equalPtr(g, w) {
			d += fmt.Sprintf("%s = %s, want %s; ", name, show(g), show(w))
		}
	}
	field("MemoryBytes", got.MemoryBytes, want.MemoryBytes)
	field("MemoryMaxBytes", got.MemoryMaxBytes, want.MemoryMaxBytes)
	field("MemoryPeakBytes", got.MemoryPeakBytes, want.MemoryPeakBytes)
	field("SwapBytes", got.SwapBytes, want.SwapBytes)
	field("OOMKills", got.OOMKills, want.OOMKills)
	field("CPUUsageUsec", got.CPUUsageUsec, want.CPUUsageUsec)
	field("CPUThrottledUsec", got.CPUThrottledUsec, want.CPUThrottledUsec)
	field("PidsCurrent", got.PidsCurrent, want.PidsCurrent)
	field("PidsMax", got.PidsMax, want.PidsMax)
	if !equalPtr(got.Pressure, want.Pressure) {
		d += fmt.Sprintf("Pressure = %+v, want %+v", got.Pressure, want.Pressure)
	}
	return d
}

// writeTree writes files (relative path → content) under root.
func writeTree(t testing.TB, root string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
