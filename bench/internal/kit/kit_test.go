package kit

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"testing"
	"time"
)

func TestParseMountinfo(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want Hierarchies
	}{
		{"hybrid", `25 30 0:22 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755
26 25 0:23 / /sys/fs/cgroup/unified rw,relatime shared:5 - cgroup2 cgroup2 rw,nsdelegate
28 25 0:25 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:7 - cgroup cgroup rw,cpu,cpuacct
31 25 0:28 / /sys/fs/cgroup/memory rw,relatime shared:10 - cgroup cgroup rw,memory
`, Hierarchies{V2: "/sys/fs/cgroup/unified", V1Memory: "/sys/fs/cgroup/memory"}},
		{"pure v2", `30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
`, Hierarchies{V2: "/sys/fs/cgroup"}},
		{"legacy v1, memory named among others", `31 25 0:28 / /sys/fs/cgroup/mem rw - cgroup cgroup rw,memory,hugetlb
`, Hierarchies{V1Memory: "/sys/fs/cgroup/mem"}},
		{"memory_recursiveprot is not memory", `30 23 0:26 / /x rw - cgroup cgroup rw,memory_recursiveprot
`, Hierarchies{}},
		{"malformed lines", "garbage\n1 2 3 - cgroup2\n\n", Hierarchies{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ParseMountinfo([]byte(tc.in)); got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestKeyedValue(t *testing.T) {
	for _, tc := range []struct {
		in, key string
		want    uint64
		ok      bool
	}{
		{"usage_usec 1234\nuser_usec 1000\n", "usage_usec", 1234, true},
		{"usage_usec 1234\nuser_usec 1000\n", "user_usec", 1000, true},
		{"Name:\tatop\nVmHWM:\t    5540 kB\nVmRSS:\t5296 kB\n", "VmHWM", 5540, true},
		{"rchar: 10\nwchar: 20\nwrite_bytes: 4096\n", "wchar", 20, true},
		{"rchar: 10\nwchar: 20\nwrite_bytes: 4096\n", "write_bytes", 4096, true},
		{"usage_usec_total 5\n", "usage_usec", 0, false},
		{"usage_usec x\n", "usage_usec", 0, false},
		{"", "usage_usec", 0, false},
	} {
		got, ok := KeyedValue([]byte(tc.in), tc.key)
		if got != tc.want || ok != tc.ok {
			t.Errorf("KeyedValue(%q, %q) = %d, %v; want %d, %v", tc.in, tc.key, got, ok, tc.want, tc.ok)
		}
	}
}

func TestParseStatTimes(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want StatTimes
		err  bool
	}{
		{"plain", "1234 (sleep) S 1 1234 1234 0 -1 4194560 100 0 0 0 7 3 2 1 20 0 1 0 9 37613568 2714 18446744073709551615",
			StatTimes{UTime: 7, STime: 3, CUTime: 2, CSTime: 1}, false},
		{"name with spaces and parentheses", "99 (a) b (c) R 1 99 99 0 -1 0 0 0 0 0 11 12 13 14 20 0 1 0 9 0 0 0",
			StatTimes{UTime: 11, STime: 12, CUTime: 13, CSTime: 14}, false},
		{"no name", "1234 sleep S 1", StatTimes{}, true},
		{"short", "1 (x) S 1 2 3", StatTimes{}, true},
		{"not a number", "1 (x) S 1 1 1 0 -1 0 0 0 0 0 x 3 2 1 20", StatTimes{}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseStatTimes([]byte(tc.in))
			if (err != nil) != tc.err || got != tc.want {
				t.Errorf("got %+v, %v; want %+v, error %v", got, err, tc.want, tc.err)
			}
		})
	}
}

func TestMedianMax(t *testing.T) {
	for _, tc := range []struct {
		in       []float64
		med, max float64
	}{
		{nil, 0, 0},
		{[]float64{3}, 3, 3},
		{[]float64{5, 1, 3}, 3, 5},
		{[]float64{4, 1, 3, 2}, 2.5, 4},
	} {
		if got := Median(tc.in); got != tc.med {
			t.Errorf("Median(%v) = %v, want %v", tc.in, got, tc.med)
		}
		if got := Max(tc.in); got != tc.max {
			t.Errorf("Max(%v) = %v, want %v", tc.in, got, tc.max)
		}
	}
	in := []float64{2, 1}
	Median(in)
	if in[0] != 2 {
		t.Error("Median sorted its argument")
	}
}

func TestCostBetween(t *testing.T) {
	t0 := time.Unix(100, 0)
	a := Reading{At: t0, UsageUsec: 1000, Ticks: 10, Wchar: 100, WriteBytes: 4096}
	b := Reading{At: t0.Add(20 * time.Second), UsageUsec: 21000, Ticks: 12, Wchar: 500, WriteBytes: 4096 * 3}
	got := CostBetween(a, b, 20)
	want := Cost{Samples: 20, CPUPerSample: time.Millisecond, TicksPerSample: 0.1, WcharPerSample: 20, StoragePerSample: 409.6, Elapsed: 20 * time.Second}
	if got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
	if got := CostBetween(b, a, 20); got.CPUPerSample != 0 || got.WcharPerSample != 0 {
		t.Errorf("counters going back: %+v, want zero costs", got)
	}
	if got := CostBetween(a, b, 0); got.CPUPerSample != 0 {
		t.Errorf("no samples: %+v, want zero cost", got)
	}
}

// TestStartAccountsCPU starts a busy shell straight into a fresh cgroup and
// checks that its CPU time lands in the cgroup's cpu.stat.
func TestStartAccountsCPU(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to make cgroups")
	}
	h, err := FindHierarchies()
	if err != nil {
		t.Skip(err)
	}
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	cg, err := MakeCgroup(h, "/preflight-kit-test-"+hex.EncodeToString(rnd[:]), true)
	if err != nil {
		t.Skipf("the kernel refuses a test cgroup: %v", err)
	}
	t.Cleanup(func() {
		if err := cg.Remove(); err != nil {
			t.Error(err)
		}
	})
	p, err := Start(exec.Command("sh", "-c", `i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; exec sleep 60`), cg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Kill(); <-p.Done })
	deadline := time.Now().Add(10 * time.Second)
	for {
		pids, err := cg.PIDs()
		if err != nil {
			t.Fatal(err)
		}
		u, err := cg.UsageUsec()
		if err != nil {
			t.Fatal(err)
		}
		r, err := Read(cg)
		if err != nil {
			t.Fatal(err)
		}
		if len(pids) == 1 && pids[0] == p.PID && u > 1000 && r.Procs == 1 && r.HWMKiB > 0 {
			break // the loop ran in the cgroup and the shell became sleep
		}
		if time.Now().After(deadline) {
			t.Fatalf("cgroup holds %v (want [%d]), usage %d µs, reading %+v", pids, p.PID, u, r)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if cg.V1Memory != "" {
		b, err := os.ReadFile(cg.V1Memory + "/cgroup.procs")
		if err != nil || len(b) == 0 {
			t.Errorf("v1 memory cgroup.procs: %q, %v; want the process", b, err)
		}
	}
	p.Stop(time.Second)
	if p.Exited.IsZero() {
		t.Error("Stop returned before the process was reaped")
	}
}
