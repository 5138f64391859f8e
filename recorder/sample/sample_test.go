package sample

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/preflight-rec/preflight/recorder/capture"
)

// copyTree copies the fixture tree src over dst (creating it).
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o644)
	})
	if err != nil {
		t.Fatalf("failed to copy %s: %v", src, err)
	}
}

// fixture returns a writable copy of testdata/proc.
func fixture(t *testing.T) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), "proc")
	copyTree(t, "testdata/proc", root)
	return root
}

// fakeStatfs answers statfs from a table; a missing mount point fails.
func fakeStatfs(table map[string]unix.Statfs_t) func(string, *unix.Statfs_t) error {
	return func(path string, st *unix.Statfs_t) error {
		v, ok := table[path]
		if !ok {
			return unix.ENOENT
		}
		*st = v
		return nil
	}
}

var fixtureStatfs = map[string]unix.Statfs_t{
	"/":            {Bsize: 4096, Frsize: 4096, Blocks: 1000000, Bfree: 400000, Bavail: 350000, Files: 100000, Ffree: 75000},
	"/boot":        {Bsize: 1024, Frsize: 1024, Blocks: 100000, Bfree: 50000, Bavail: 50000},
	"/home":        {Bsize: 4096, Frsize: 4096, Blocks: 1000000, Bfree: 400000, Bavail: 350000, Files: 100000, Ffree: 75000},
	"/run":         {Bsize: 4096, Frsize: 4096, Blocks: 25, Bfree: 24, Bavail: 24, Files: 1000, Ffree: 900},
	"/data":        {Bsize: 4096, Frsize: 4096, Blocks: 200, Bfree: 150, Bavail: 150, Files: 1000, Ffree: 999},
	"/mnt/my disk": {Bsize: 512, Frsize: 512, Blocks: 1000, Bfree: 250, Bavail: 250},
	"/mnt/empty":   {Bsize: 4096, Frsize: 4096},
	"/mnt/stacked": {Bsize: 4096, Frsize: 4096, Blocks: 10, Bfree: 10, Bavail: 10, Files: 10, Ffree: 10},
	"/mnt/vdc":     {Bsize: 4096, Frsize: 4096, Blocks: 10, Bfree: 5, Bavail: 5, Files: 10, Ffree: 5},
	"/srv":         {Bsize: 4096, Frsize: 4096, Blocks: 10, Bfree: 5, Bavail: 5, Files: 10, Ffree: 5},
	// /mnt/gone is missing: its statfs fails.
}

var fixtureDisks = []capture.Disk{
	{Mount: "/", Device: "/dev/vda1", FSType: "ext4", TotalBytes: 4096000000, UsedBytes: 2457600000, UsedPercent: 63.16, InodesUsedPercent: 25},
	{Mount: "/boot", Device: "/dev/vda2", FSType: "ext4", TotalBytes: 102400000, UsedBytes: 51200000, UsedPercent: 50},
	{Mount: "/run", Device: "tmpfs", FSType: "tmpfs", TotalBytes: 102400, UsedBytes: 4096, UsedPercent: 4, InodesUsedPercent: 10},
	{Mount: "/data", Device: "/dev/vdb", FSType: "xfs", TotalBytes: 819200, UsedBytes: 204800, UsedPercent: 25, InodesUsedPercent: 0.1},
	{Mount: "/mnt/my disk", Device: "/dev/sda1", FSType: "vfat", TotalBytes: 512000, UsedBytes: 384000, UsedPercent: 75},
	{Mount: "/mnt/stacked", Device: "tmpfs", FSType: "tmpfs", TotalBytes: 40960},
	{Mount: "/mnt/vdc", Device: "/dev/vdc", FSType: "ext4", TotalBytes: 40960, UsedBytes: 20480, UsedPercent: 50, InodesUsedPercent: 50},
}

var fixturePressure = &capture.Pressure{
	CPUSomeAvg10: 1.5, MemorySomeAvg10: 2.25, MemoryFullAvg10: 1.25, IOSomeAvg10: 3.5, IOFullAvg10: 2.75,
}

var t0 = time.Date(2026, 11, 26, 3, 12, 4, 0, time.UTC)

// fakeClock is the sampler's monotonic clock in tests; the wall time a
// sample is stamped with is passed to Sample apart from it.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

// at moves the clock to t0+d and returns that time.
func (c *fakeClock) at(d time.Duration) time.Time { c.t = t0.Add(d); return c.t }

func pf(v float64) *float64 { return &v }

func TestSampleFixture(t *testing.T) {
	root := fixture(t)
	page := uint64(os.Getpagesize())
	clk := &fakeClock{t: t0}
	s, err := newSampler(root, 3, clk.now, fakeStatfs(fixtureStatfs))
	if err != nil {
		t.Fatal(err)
	}

	// First sample: nothing changed since the baseline.
	got, service := s.Sample(clk.at(10*time.Second), []int{3000, 1234, 77777, 1234})
	want := capture.Sample{
		At:       t0.Add(10 * time.Second),
		CPU:      capture.CPU{CPUs: 2, WindowSeconds: pf(10)},
		Load:     capture.Load{Load1: 0.5, Load5: 0.75, Load15: 1},
		Memory:   capture.Memory{TotalBytes: 16384000000, AvailableBytes: 12288000000, UsedPercent: 25, SwapTotalBytes: 2048000000, SwapUsedBytes: 512000000},
		Disks:    fixtureDisks,
		Pressure: fixturePressure,
		TopCPU: []capture.Process{ // all idle: ties go to the lower PID
			{PID: 1, Name: "systemd", Cmdline: "/sbin/init splash", State: "S", CPUPercent: pf(0), RSSBytes: 3000 * page, Threads: 1},
			{PID: 42, Name: "kworker/0:1-events", State: "I", CPUPercent: pf(0), Threads: 1},
			{PID: 1234, Name: "a) b)", Cmdline: "/usr/bin/db --password=<redacted> --port 5432", State: "S", CPUPercent: pf(0), RSSBytes: 50000 * page, Threads: 4},
		},
		TopMemory: []capture.Process{
			{PID: 2000, Name: "web server", Cmdline: "web --token <redacted> --listen :8080", State: "R", CPUPercent: pf(0), RSSBytes: 200000 * page, Threads: 8},
			{PID: 1234, Name: "a) b)", Cmdline: "/usr/bin/db --password=<redacted> --port 5432", State: "S", CPUPercent: pf(0), RSSBytes: 50000 * page, Threads: 4},
			{PID: 1, Name: "systemd", Cmdline: "/sbin/init splash", State: "S", CPUPercent: pf(0), RSSBytes: 3000 * page, Threads: 1},
		},
		Processes: 6, // 999 has no stat: vanished mid-read
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("first sample:\n got %+v\nwant %+v", got, want)
	}
	wantService := []capture.Process{
		{PID: 1234, Name: "a) b)", Cmdline: "/usr/bin/db --password=<redacted> --port 5432", State: "S", CPUPercent: pf(0), RSSBytes: 50000 * page, Threads: 4},
		{PID: 3000, Name: "batch", Cmdline: "batch --job=nightly", State: "S", CPUPercent: pf(0), RSSBytes: 1000 * page, Threads: 1},
	}
	if !reflect.DeepEqual(service, wantService) {
		t.Errorf("first service processes:\n got %+v\nwant %+v", service, wantService)
	}

	// Second sample, 10s later: CPU moved, 5000 exited, 3000 is a new
	// process with a reused PID, 4000 is new.
	copyTree(t, "testdata/proc-next", root)
	if err := os.RemoveAll(filepath.Join(root, "5000")); err != nil {
		t.Fatal(err)
	}
	got, service = s.Sample(clk.at(20*time.Second), []int{3000, 1234, 5000})
	want.At = t0.Add(20 * time.Second)
	want.CPU = capture.CPU{Percent: pf(30), User: pf(15), System: pf(10), IOWait: pf(5), Steal: pf(5), CPUs: 2, WindowSeconds: pf(10)}
	want.TopCPU = []capture.Process{
		{PID: 2000, Name: "web server", Cmdline: "web --token <redacted> --listen :8080", State: "R", CPUPercent: pf(150), RSSBytes: 200000 * page, Threads: 8},
		{PID: 1234, Name: "a) b)", Cmdline: "/usr/bin/db --password=<redacted> --port 5432", State: "R", CPUPercent: pf(50), RSSBytes: 50000 * page, Threads: 4},
		{PID: 3000, Name: "batch2", Cmdline: "batch2 --retry", State: "S", CPUPercent: pf(10), RSSBytes: 1000 * page, Threads: 2},
	}
	want.TopMemory = []capture.Process{
		want.TopCPU[0],
		want.TopCPU[1],
		{PID: 1, Name: "systemd", Cmdline: "/sbin/init splash", State: "S", CPUPercent: pf(2), RSSBytes: 3000 * page, Threads: 1},
	}
	want.Processes = 6
	if !reflect.DeepEqual(got, want) {
		t.Errorf("second sample:\n got %+v\nwant %+v", got, want)
	}
	wantService = []capture.Process{want.TopCPU[1], want.TopCPU[2]}
	if !reflect.DeepEqual(service, wantService) {
		t.Errorf("second service processes:\n got %+v\nwant %+v", service, wantService)
	}
	wantPIDs := []int{1, 42, 1234, 2000, 3000, 4000}
	if len(s.procs) != len(wantPIDs) {
		t.Errorf("state holds %d PIDs, want %d: %v", len(s.procs), len(wantPIDs), s.procs)
	}
	for _, pid := range wantPIDs {
		if _, ok := s.procs[pid]; !ok {
			t.Errorf("state lacks PID %d", pid)
		}
	}
	byPID := map[int]float64{}
	for _, r := range s.recs {
		byPID[r.pid] = r.cpu
	}
	if byPID[4000] != 3 || byPID[42] != 0 {
		t.Errorf("new process 4000 at %v%%, idle 42 at %v%%; want 3 and 0", byPID[4000], byPID[42])
	}

	// Third sample 1s later: 15s of CPU in 1s is capped at 100 × CPUs.
	stat := "2000 (web server) R 1 2000 2000 0 -1 4194304 100 0 0 0 7200 1800 0 0 20 0 8 0 600 123456789 200000 0\n"
	if err := os.WriteFile(filepath.Join(root, "2000", "stat"), []byte(stat), 0o644); err != nil {
		t.Fatal(err)
	}
	got, _ = s.Sample(clk.at(21*time.Second), nil)
	if got.TopCPU[0].PID != 2000 || *got.TopCPU[0].CPUPercent != 200 {
		t.Errorf("top CPU %+v, want PID 2000 capped at 200%%", got.TopCPU[0])
	}
	if got.CPU.Percent != nil || got.CPU.CPUs != 2 || *got.CPU.WindowSeconds != 1 {
		t.Errorf("CPU without /proc/stat change = %+v, want zero percents", got.CPU)
	}
}

func TestSampleWithoutPressure(t *testing.T) {
	root := fixture(t)
	if err := os.RemoveAll(filepath.Join(root, "pressure")); err != nil {
		t.Fatal(err)
	}
	clk := &fakeClock{t: t0}
	s, err := newSampler(root, 2, clk.now, fakeStatfs(fixtureStatfs))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := s.Sample(clk.at(time.Second), nil)
	if got.Pressure != nil {
		t.Errorf("Pressure = %+v, want nil without pressure/", got.Pressure)
	}
	if got.Memory.TotalBytes == 0 || len(got.TopCPU) != 2 {
		t.Errorf("the rest of the sample is missing: %+v", got)
	}
}

func TestSampleDegrades(t *testing.T) {
	root := fixture(t)
	clk := &fakeClock{t: t0}
	s, err := newSampler(root, 0, clk.now, fakeStatfs(fixtureStatfs))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"stat", "loadavg", "meminfo", "self/mountinfo"} {
		if err := os.Remove(filepath.Join(root, f)); err != nil {
			t.Fatal(err)
		}
	}
	got, service := s.Sample(clk.at(time.Second), []int{1})
	want := capture.Sample{
		At:        t0.Add(time.Second),
		CPU:       capture.CPU{WindowSeconds: pf(1)},
		Disks:     []capture.Disk{},
		Pressure:  fixturePressure,
		TopCPU:    []capture.Process{},
		TopMemory: []capture.Process{},
		Processes: 6,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("sample of a broken tree:\n got %+v\nwant %+v", got, want)
	}
	if len(service) != 1 || service[0].PID != 1 {
		t.Errorf("service processes = %+v, want PID 1", service)
	}

	// The whole root gone: an empty sample, and the last good scan stays
	// the reference for CPU deltas.
	moved := root + ".moved"
	if err := os.Rename(root, moved); err != nil {
		t.Fatal(err)
	}
	got, service = s.Sample(clk.at(2*time.Second), []int{1})
	if got.Processes != 0 || len(got.TopCPU) != 0 || len(service) != 0 || got.Pressure != nil || got.Memory.TotalBytes != 0 {
		t.Errorf("sample of a missing root = %+v, service %+v", got, service)
	}
	if err := os.Rename(moved, root); err != nil {
		t.Fatal(err)
	}
	copyTree(t, "testdata/proc-next", root)
	got, service = s.Sample(clk.at(11*time.Second), []int{1234})
	if got.Processes != 7 || len(service) != 1 || *service[0].CPUPercent != 50 {
		t.Errorf("after the root came back: %d processes, service %+v; want 7 and 1234 at 50%%", got.Processes, service)
	}
}

func TestNewErrors(t *testing.T) {
	if _, err := New(filepath.Join(t.TempDir(), "missing"), 5); err == nil {
		t.Error("New of a missing root succeeded")
	}
	root := fixture(t)
	if _, err := New(root, -1); err == nil {
		t.Error("New with topN -1 succeeded")
	}
	if err := os.Remove(filepath.Join(root, "stat")); err != nil {
		t.Fatal(err)
	}
	_, err := New(root, 5)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("New without stat: %v, want fs.ErrNotExist", err)
	}
}

// A statfs that hangs is abandoned after the timeout; its mount is skipped
// without a new call until the call returns.
func TestStuckStatfs(t *testing.T) {
	root := fixture(t)
	release := make(chan struct{})
	var mu sync.Mutex
	calls := map[string]int{}
	statfs := func(path string, st *unix.Statfs_t) error {
		mu.Lock()
		calls[path]++
		mu.Unlock()
		if path == "/data" {
			<-release
		}
		return fakeStatfs(fixtureStatfs)(path, st)
	}
	clk := &fakeClock{t: t0}
	s, err := newSampler(root, 1, clk.now, statfs)
	if err != nil {
		t.Fatal(err)
	}
	s.statfsTimeout = 50 * time.Millisecond
	released := false
	t.Cleanup(func() {
		if !released {
			close(release)
		}
	})
	mounts := func(ds []capture.Disk) []string {
		var out []string
		for _, d := range ds {
			out = append(out, d.Mount)
		}
		return out
	}
	all := mounts(fixtureDisks)
	var withoutData []string
	for _, m := range all {
		if m != "/data" {
			withoutData = append(withoutData, m)
		}
	}

	for i := range 2 {
		got, _ := s.Sample(clk.at(time.Duration(i+1)*time.Second), nil)
		if m := mounts(got.Disks); !reflect.DeepEqual(m, withoutData) {
			t.Errorf("sample %d: disks %v, want %v", i+1, m, withoutData)
		}
	}
	mu.Lock()
	if calls["/data"] != 1 {
		t.Errorf("statfs of the stuck mount called %d times, want 1", calls["/data"])
	}
	mu.Unlock()

	close(release)
	released = true
	deadline := time.Now().Add(10 * time.Second)
	for {
		s.stuckMu.Lock()
		stuck := s.stuck["/data"]
		s.stuckMu.Unlock()
		if !stuck {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("mount still stuck after its statfs returned")
		}
		time.Sleep(5 * time.Millisecond)
	}
	got, _ := s.Sample(clk.at(3*time.Second), nil)
	if m := mounts(got.Disks); !reflect.DeepEqual(m, all) {
		t.Errorf("after release: disks %v, want %v", m, all)
	}
}

// The scan allocates nothing per process once its buffers and maps have
// grown (the one allocation is the root path handed to open).
func TestScanAllocs(t *testing.T) {
	clk := &fakeClock{t: t0}
	s, err := newSampler(fixture(t), 3, clk.now, fakeStatfs(fixtureStatfs))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.scan(s.procs, 1, 2); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(20, func() { _ = s.scan(s.procs, 1, 2) }); n > 1 {
		t.Errorf("scan of %d processes allocates %v times, want at most 1", len(s.recs), n)
	}
}
