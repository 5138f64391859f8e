package sample

import (
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"sync"
	"testing"
	"time"
)

// Samplers of one Host share a reading started within ShareWithin, each
// with its own top lists and its own rate window; SampleFresh never shares
// an earlier reading.
func TestHostShares(t *testing.T) {
	root := fixture(t)
	clk := &fakeClock{t: t0}
	h, err := newHost(root, clk.now, fakeStatfs(fixtureStatfs))
	if err != nil {
		t.Fatal(err)
	}
	a, err := h.Sampler(3)
	if err != nil {
		t.Fatal(err)
	}
	b, err := h.Sampler(1)
	if err != nil {
		t.Fatal(err)
	}
	clk.at(5 * time.Second)
	c, err := h.Sampler(2) // its baseline 5 s after a's and b's
	if err != nil {
		t.Fatal(err)
	}

	copyTree(t, "testdata/proc-next", root)
	ga, sa := a.Sample(clk.at(20*time.Second), []int{2000})
	// A change after a's reading is not seen by a Sampler sharing it.
	stat := "2000 (web server) R 1 2000 2000 0 -1 4194304 100 0 0 0 7200 1800 0 0 20 0 8 0 600 123456789 200000 0\n"
	if err := os.WriteFile(filepath.Join(root, "2000", "stat"), []byte(stat), 0o644); err != nil {
		t.Fatal(err)
	}
	gb, _ := b.Sample(clk.at(20*time.Second+ShareWithin/2), nil)
	gc, sc := c.Sample(clk.at(20*time.Second+ShareWithin), []int{2000})

	if len(ga.TopCPU) != 3 || len(gb.TopCPU) != 1 || len(gc.TopCPU) != 2 || len(gc.TopMemory) != 2 {
		t.Fatalf("top lists of %d, %d, %d processes, want 3, 1, 2", len(ga.TopCPU), len(gb.TopCPU), len(gc.TopCPU))
	}
	if !reflect.DeepEqual(ga.TopCPU[:1], gb.TopCPU) || !reflect.DeepEqual(ga.Memory, gc.Memory) || !reflect.DeepEqual(ga.Disks, gc.Disks) {
		t.Errorf("a and b differ on one reading:\n a %+v\n b %+v", ga.TopCPU[0], gb.TopCPU[0])
	}
	// a's window is 20 s, c's 15 s: 2000's 15 s of CPU since t0 (the fixture
	// at t0 and at 5 s is the same) are 75 % and 100 % of one CPU.
	if *ga.CPU.WindowSeconds != 20 || *gc.CPU.WindowSeconds != 15 {
		t.Errorf("windows %v s and %v s, want 20 and 15", *ga.CPU.WindowSeconds, *gc.CPU.WindowSeconds)
	}
	if got := *ga.TopCPU[0].CPUPercent; ga.TopCPU[0].PID != 2000 || got != 75 {
		t.Errorf("a: top CPU %d at %v%%, want 2000 at 75%%", ga.TopCPU[0].PID, got)
	}
	if got := *gc.TopCPU[0].CPUPercent; gc.TopCPU[0].PID != 2000 || got != 100 {
		t.Errorf("c: top CPU %d at %v%%, want 2000 at 100%%", gc.TopCPU[0].PID, got)
	}
	if len(sa) != 1 || len(sc) != 1 || *sa[0].CPUPercent != 75 || *sc[0].CPUPercent != 100 {
		t.Errorf("service processes %+v and %+v, want 2000 at 75%% and 100%%", sa, sc)
	}

	// Fresh: a reading of its own, which sees the change.
	gf, _ := b.SampleFresh(clk.at(20*time.Second+ShareWithin), nil)
	if gf.TopCPU[0].PID != 2000 || *gf.TopCPU[0].CPUPercent <= *gb.TopCPU[0].CPUPercent {
		t.Errorf("fresh sample's top CPU %+v: want 2000 busier than in the shared reading (%v%%)", gf.TopCPU[0], *gb.TopCPU[0].CPUPercent)
	}
	// Past ShareWithin, a new reading.
	gn, _ := c.Sample(clk.at(20*time.Second+3*ShareWithin), nil)
	if *gn.TopCPU[0].CPUPercent <= *gc.TopCPU[0].CPUPercent {
		t.Errorf("a later sample's top CPU %+v: want 2000 busier than in the shared reading", gn.TopCPU[0])
	}
}

// Samplers of one Host sample the real /proc at once from their own
// goroutines (go test -race).
func TestHostConcurrent(t *testing.T) {
	h, err := NewHost("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	counts := make([]int, 4)
	for i := range counts {
		s, err := h.Sampler(i + 1)
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			for range 5 {
				got, procs := s.Sample(time.Now(), []int{os.Getpid()})
				if len(got.TopMemory) != i+1 || len(procs) != 1 {
					t.Errorf("sampler %d: top memory of %d, %d service processes", i, len(got.TopMemory), len(procs))
				}
				got, _ = s.SampleFresh(time.Now(), nil)
				counts[i] += got.Processes
			}
		})
	}
	wg.Wait()
	for i, n := range counts {
		if n == 0 {
			t.Errorf("sampler %d saw no processes", i)
		}
	}
}

// BenchmarkSharedSample is one reading shared by n Samplers of one Host,
// each with its own rates, top lists and a service process: the cost of a
// tick of n recorders in one process (n=1 is one recorder on a Host).
func BenchmarkSharedSample(b *testing.B) {
	benchPopulation(b)
	for _, n := range []int{1, 20} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			h, err := NewHost("/proc")
			if err != nil {
				b.Fatal(err)
			}
			ss := make([]*Sampler, n)
			for i := range ss {
				if ss[i], err = h.Sampler(5); err != nil {
					b.Fatal(err)
				}
			}
			pids := []int{os.Getpid()}
			procs := 0
			b.ReportAllocs()
			for b.Loop() {
				due := time.Now()
				got, _ := ss[0].SampleDue(due, due, pids) // a new reading, then shared
				for _, s := range ss[1:] {
					s.SampleDue(due, time.Now(), pids)
				}
				procs = got.Processes
			}
			countProcs(b, procs)
		})
	}
}
