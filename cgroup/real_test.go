package cgroup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/preflight-rec/preflight/cgroup/cgrouptest"
)

// helperEnv selects a helper mode of the test binary, re-executed as a
// child process (see TestMain).
const helperEnv = "PREFLIGHT_CGROUP_TEST_HELPER"

func TestMain(m *testing.M) {
	switch os.Getenv(helperEnv) {
	case "alloc":
		allocHelper()
		return
	case "watch":
		os.Exit(watchHelper())
	}
	os.Exit(m.Run())
}

// startAllocChild starts the test binary as allocHelper inside cg; writing
// a byte to stdin sets it allocating. out collects what it prints.
func startAllocChild(t *testing.T, cg *cgrouptest.Cgroup) (*cgrouptest.Proc, io.Writer, *strings.Builder) {
	t.Helper()
	helper := exec.Command(os.Args[0], "-test.run=^$")
	helper.Env = append(os.Environ(), helperEnv+"=alloc")
	stdin, err := helper.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out := new(strings.Builder)
	helper.Stdout = out
	child := cgrouptest.Start(t, helper)
	cg.Move(t, child.PID)
	return child, stdin, out
}

// allocHelper waits for one line on stdin (sent once the test has moved it
// into its cgroup), offers itself to the OOM killer first, then allocates
// and touches 200 MB.
func allocHelper() {
	_, _ = io.ReadFull(os.Stdin, make([]byte, 1))
	_ = os.WriteFile("/proc/self/oom_score_adj", []byte("1000"), 0)
	b := make([]byte, 200<<20)
	for i := 0; i < len(b); i += 4096 {
		b[i] = 1
	}
	runtime.KeepAlive(b)
	fmt.Println("allocated 200 MB: no limit was enforced")
	os.Exit(3)
}

// realFS returns the machine's cgroups, or skips.
func realFS(t testing.TB) *FS {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to make cgroups")
	}
	f, err := NewFS("/sys/fs/cgroup")
	if err != nil {
		t.Skipf("no cgroups here: %v", err)
	}
	if f.v2 == "" {
		t.Skipf("no cgroup2 hierarchy in the %v layout: the tests watch cgroup.events", f.Layout())
	}
	return f
}

// newRealCgroup makes a fresh cgroup, removed at Cleanup.
func newRealCgroup(t testing.TB, _ *FS) *cgrouptest.Cgroup {
	return cgrouptest.New(t, "preflight-test")
}

// exited waits for p to end.
func exited(t testing.TB, p *cgrouptest.Proc, within time.Duration) {
	t.Helper()
	select {
	case <-p.Done:
	case <-time.After(within):
		t.Fatalf("process %d still running after %v", p.PID, within)
	}
}

// runWatcher runs w until the test ends.
func runWatcher(t testing.TB, w *Watcher) {
	if w.testDo == nil {
		w.testDo = make(chan func())
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

func TestRealExitOnKill(t *testing.T) {
	f := realFS(t)
	cg := newRealCgroup(t, f)
	a := cgrouptest.StartSleep(t)
	cg.Move(t, a.PID)
	w := f.NewWatcher(Target{Path: cg.Path}, WatchOptions{})
	runWatcher(t, w)
	waitFor(t, "the sleep in the watched cgroup", func() bool { return slices.Equal(w.PIDs(), []int{a.PID}) })

	// A process killed in its first milliseconds takes ~10 ms more to exit;
	// let it settle so that the latency logged is the watcher's.
	time.Sleep(100 * time.Millisecond)
	killed := time.Now()
	a.Kill()
	e := nextEvent(t, w, 5*time.Second)
	received := time.Since(killed)
	want := fmt.Sprintf("cgroup emptied (last pids %d)", a.PID)
	if e.Kind != KindExit || e.Detail != want || e.Path != cg.Path {
		t.Errorf("event %+v, want exit %q", e, want)
	}
	t.Logf("kill -9 → exit event: seen %v, received %v (poll %v)", e.At.Sub(killed), received, DefaultPoll)
	expectQuiet(t, w, 3*DefaultPoll)
}

// TestRealMainExit: the main process named by SetMain killed while a
// worker lives on is an exit event at once (its pidfd wakes the watcher:
// no periodic look here), naming it alone; a worker's end is none; the
// cgroup emptying later is the usual exit.
func TestRealMainExit(t *testing.T) {
	f := realFS(t)
	cg := newRealCgroup(t, f)
	main, worker, child := cgrouptest.StartSleep(t), cgrouptest.StartSleep(t), cgrouptest.StartSleep(t)
	for _, p := range []*cgrouptest.Proc{main, worker, child} {
		cg.Move(t, p.PID)
	}
	w := f.NewWatcher(Target{Path: cg.Path}, WatchOptions{Poll: time.Hour, Safety: time.Hour})
	w.SetMain(main.PID)
	runWatcher(t, w)
	settle(w)
	onRun(w, w.look)
	if want := sorted(main.PID, worker.PID, child.PID); !slices.Equal(w.PIDs(), want) {
		t.Fatalf("first look: pids %v, want %v", w.PIDs(), want)
	}

	child.Kill()
	exited(t, child, 5*time.Second)
	waitFor(t, "the look at the child's end", func() bool { return !slices.Contains(w.PIDs(), child.PID) })
	expectQuiet(t, w, 100*time.Millisecond)

	killed := time.Now()
	main.Kill()
	e := nextEvent(t, w, 5*time.Second)
	want := fmt.Sprintf("main process %d ended (left pids %d)", main.PID, worker.PID)
	if e.Kind != KindExit || e.Detail != want || e.Main != main.PID || !slices.Equal(e.Gone, []int{main.PID}) || !slices.Equal(e.PIDs, []int{worker.PID}) {
		t.Errorf("event %+v, want exit %q of main %d", e, want, main.PID)
	}
	t.Logf("kill -9 of the main process → exit event: seen %v", e.At.Sub(killed))

	worker.Kill()
	e = nextEvent(t, w, 5*time.Second)
	if want := fmt.Sprintf("cgroup emptied (last pids %d)", worker.PID); e.Kind != KindExit || e.Detail != want || e.Main != 0 {
		t.Errorf("event %+v, want exit %q", e, want)
	}
}

func TestRealExitOnReplacement(t *testing.T) {
	f := realFS(t)
	cg := newRealCgroup(t, f)
	a, b := cgrouptest.StartSleep(t), cgrouptest.StartSleep(t)
	cg.Move(t, a.PID)
	// No periodic look: B's arrival and A's death fall between two looks
	// for sure (the test's, and the one A's pidfd makes when it dies).
	w := f.NewWatcher(Target{Path: cg.Path}, WatchOptions{Poll: time.Hour, Safety: time.Hour})
	lookNow := func() { onRun(w, w.look) }
	runWatcher(t, w)
	settle(w)
	lookNow()
	if !slices.Equal(w.PIDs(), []int{a.PID}) {
		t.Fatalf("first look: pids %v, want [%d]", w.PIDs(), a.PID)
	}

	time.Sleep(minReplacedAge) // a set replaced sooner is start-up forking
	cg.Move(t, b.PID)          // the cgroup never empties: no cgroup.events change
	a.Kill()
	exited(t, a, 5*time.Second)
	lookNow()
	e := nextEvent(t, w, 5*time.Second)
	want := fmt.Sprintf("all processes replaced (%d → %d)", a.PID, b.PID)
	if e.Kind != KindExit || e.Detail != want {
		t.Errorf("event %+v, want exit %q", e, want)
	}
	lookNow()
	expectQuiet(t, w, 100*time.Millisecond)
}

func TestRealOOMOfAChild(t *testing.T) {
	f := realFS(t)
	cg := newRealCgroup(t, f)
	cg.LimitMemory(t, 32<<20)
	main := cgrouptest.StartSleep(t) // lives on: the OOM kill takes only the child
	cg.Move(t, main.PID)

	child, stdin, out := startAllocChild(t, cg)

	before, err := f.Stats(cg.Path)
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	if before.OOMKills == nil {
		t.Skip("this kernel has no oom_kill counter")
	}
	w := f.NewWatcher(Target{Path: cg.Path}, WatchOptions{})
	runWatcher(t, w)
	waitFor(t, "both processes in the watched cgroup", func() bool {
		return slices.Equal(w.PIDs(), sorted(main.PID, child.PID))
	})

	if _, err := stdin.Write([]byte("\n")); err != nil { // go: allocate
		t.Fatal(err)
	}
	e := nextEvent(t, w, 20*time.Second)
	want := fmt.Sprintf("oom_kill %d → %d", *before.OOMKills, *before.OOMKills+1)
	if e.Kind != KindOOM || e.Detail != want {
		t.Errorf("event %+v, want oom %q", e, want)
	}
	exited(t, child, 10*time.Second)
	if ws, ok := child.Cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
		t.Errorf("allocating child ended with %v (%s), want SIGKILL", child.Cmd.ProcessState, out.String())
	}
	after, err := f.Stats(cg.Path)
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	if after.OOMKills == nil || *after.OOMKills <= *before.OOMKills {
		t.Errorf("OOMKills %s → %s, want a rise", show(before.OOMKills), show(after.OOMKills))
	}
	if after.MemoryMaxBytes == nil || *after.MemoryMaxBytes != 32<<20 {
		t.Errorf("MemoryMaxBytes %s, want %d", show(after.MemoryMaxBytes), 32<<20)
	}
	waitFor(t, "the main process alone", func() bool { return slices.Equal(w.PIDs(), []int{main.PID}) })
	expectQuiet(t, w, 3*DefaultPoll) // the main process lives: no exit
}

// TestRealOOMEvidenceOutlivesRemoval OOM-kills the cgroup's only process
// and removes the cgroup the moment the process is reaped, as systemd does:
// the events still carry what the cgroup said at the kill.
func TestRealOOMEvidenceOutlivesRemoval(t *testing.T) {
	const limit = 32 << 20
	f := realFS(t)
	cg := newRealCgroup(t, f)
	cg.LimitMemory(t, limit)
	child, stdin, out := startAllocChild(t, cg)
	if st, err := f.Stats(cg.Path); err != nil || st.OOMKills == nil || st.MemoryPeakBytes == nil {
		t.Skipf("this kernel lacks the oom_kill counter or the memory peak (%v)", err)
	}
	w := f.NewWatcher(Target{Path: cg.Path}, WatchOptions{})
	runWatcher(t, w)
	waitFor(t, "the child in the watched cgroup", func() bool { return slices.Equal(w.PIDs(), []int{child.PID}) })

	if _, err := stdin.Write([]byte("\n")); err != nil { // go: allocate
		t.Fatal(err)
	}
	exited(t, child, 20*time.Second)
	cg.Remove(t) // systemd's rmdir, as soon as the cgroup is empty
	if ws, ok := child.Cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("allocating child ended with %v (%s), want SIGKILL", child.Cmd.ProcessState, out.String())
	}

	seen := map[string]bool{}
	for len(seen) < 2 {
		e := nextEvent(t, w, 5*time.Second)
		seen[e.Kind] = true
		if e.Stats == nil {
			t.Fatalf("%s event %q without the cgroup's evidence", e.Kind, e.Detail)
		}
		st := e.Stats
		if st.OOMKills == nil || *st.OOMKills < 1 {
			t.Errorf("%s event: oom_kills %s, want ≥ 1", e.Kind, show(st.OOMKills))
		}
		if st.MemoryPeakBytes == nil || *st.MemoryPeakBytes < limit*9/10 {
			t.Errorf("%s event: memory peak %s, want ≥ 90%% of %d", e.Kind, show(st.MemoryPeakBytes), limit)
		}
		if e.StatsAt.After(e.At.Add(time.Second)) || e.StatsAt.IsZero() {
			t.Errorf("%s event at %v: evidence read at %v", e.Kind, e.At, e.StatsAt)
		}
		if e.Kind == KindExit && !slices.Equal(e.Gone, []int{child.PID}) {
			t.Errorf("exit event: gone %v, want [%d]", e.Gone, child.PID)
		}
	}
	if !seen[KindOOM] || !seen[KindExit] {
		t.Errorf("events %v, want oom and exit", seen)
	}
}

// TestRealRecreated removes the cgroup and makes it again, with the
// default cadences and with no periodic look at all (Poll and Safety of an
// hour): then only inotify, on the parent directory and on the new
// cgroup.events, can see it come back and empty.
func TestRealRecreated(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    WatchOptions
	}{
		{"defaults", WatchOptions{}},
		{"notifications only", WatchOptions{Poll: time.Hour, Safety: time.Hour}},
	} {
		t.Run(tc.name, func(t *testing.T) { testRecreated(t, tc.o) })
	}
}

func testRecreated(t *testing.T, o WatchOptions) {
	f := realFS(t)
	cg := newRealCgroup(t, f)
	a := cgrouptest.StartSleep(t)
	cg.Move(t, a.PID)
	w := f.NewWatcher(Target{Path: cg.Path}, o)
	runWatcher(t, w)
	waitFor(t, "the first sleep", func() bool { return slices.Equal(w.PIDs(), []int{a.PID}) })
	a.Kill()
	if e := nextEvent(t, w, 5*time.Second); e.Kind != KindExit {
		t.Errorf("first death: event %+v", e)
	}
	exited(t, a, 5*time.Second)

	// systemd removes a dead unit's cgroup and makes it again on restart.
	removeDirs(t, cg)
	waitFor(t, "the watcher to see the cgroup gone", func() bool {
		var attached bool
		onRun(w, func() { attached = w.cur.ok })
		return !attached
	})
	if len(w.PIDs()) != 0 || w.Path() != cg.Path {
		t.Errorf("cgroup gone: pids %v path %q", w.PIDs(), w.Path())
	}
	makeDirs(t, cg)
	c := cgrouptest.StartSleep(t)
	cg.Move(t, c.PID)
	waitFor(t, "the sleep in the re-created cgroup", func() bool { return slices.Equal(w.PIDs(), []int{c.PID}) })
	killed := time.Now()
	c.Kill()
	e := nextEvent(t, w, 5*time.Second)
	want := fmt.Sprintf("cgroup emptied (last pids %d)", c.PID)
	if e.Kind != KindExit || e.Detail != want {
		t.Errorf("second death: event %+v, want exit %q", e, want)
	}
	t.Logf("re-created cgroup: kill -9 → exit event seen %v", e.At.Sub(killed))
	expectQuiet(t, w, 3*DefaultPoll)
}

func TestRealProcsAndStats(t *testing.T) {
	f := realFS(t)
	if f.Layout() != Hybrid && f.Layout() != Unified {
		t.Skipf("layout %v", f.Layout())
	}
	cg := newRealCgroup(t, f)
	a := cgrouptest.StartSleep(t)
	cg.Move(t, a.PID)
	pids, err := f.Procs(cg.Path)
	if err != nil || !slices.Equal(pids, []int{a.PID}) {
		t.Errorf("Procs = %v, %v; want [%d]", pids, err, a.PID)
	}
	s, err := f.Stats(cg.Path)
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	if s.CPUUsageUsec == nil || s.Pressure == nil {
		t.Errorf("Stats lacks v2 cpu.stat or pressure: %+v", s)
	}
	if cg.V1Memory != "" && (s.MemoryBytes == nil || s.OOMKills == nil || s.MemoryMaxBytes != nil) {
		t.Errorf("Stats lacks v1 memory: memory %s oom %s max %s (want nil: unlimited)",
			show(s.MemoryBytes), show(s.OOMKills), show(s.MemoryMaxBytes))
	}
	if _, err := f.Procs(cg.Path + "-missing"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Procs(missing) = %v", err)
	}
}

// settle waits for w's first look and for the inotify event of the
// cgroup's population, which the kernel delivers from a work queue,
// possibly after the look: a test that needs no look to happen until it
// acts must not have that event arrive meanwhile.
func settle(w *Watcher) {
	<-w.Ready()
	time.Sleep(100 * time.Millisecond)
}

// onRun runs f on the goroutine of w's Run (started by runWatcher) and
// waits for its end.
func onRun(w *Watcher, f func()) {
	done := make(chan struct{})
	w.testDo <- func() {
		f()
		close(done)
	}
	<-done
}

// expectQuiet fails on any event within d.
func expectQuiet(t *testing.T, w *Watcher, d time.Duration) {
	t.Helper()
	select {
	case e := <-w.Events():
		t.Errorf("unexpected event %+v", e)
	case <-time.After(d):
	}
}

func sorted(v ...int) []int {
	slices.Sort(v)
	return v
}

// A list of PIDs is read with one pread when it is short, and to EOF when
// the kernel's page-sized buffer cut the first read: 700 processes make a
// cgroup.procs longer than a page.
func TestRealProcsOneRead(t *testing.T) {
	f := realFS(t)
	cg := newRealCgroup(t, f)
	var reads int
	was := preadWrapped
	t.Cleanup(func() { preadWrapped = was })
	preadWrapped = func(fd int, b []byte, off int64) (int, error) {
		reads++
		return was(fd, b, off)
	}
	var want []int
	for _, n := range []int{1, 699} {
		for range n {
			p := cgrouptest.StartSleep(t)
			cg.Move(t, p.PID)
			want = append(want, p.PID)
		}
		slices.Sort(want)
		reads = 0
		var r reader
		b, _, err := r.read(cg.Dirs[0]+"/cgroup.procs", maxProcsSize, false)
		if err != nil {
			t.Fatal(err)
		}
		got, err := appendPIDs(nil, b)
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Fatalf("%d processes: read %d PIDs (%d bytes), want %d", len(want), len(got), len(b), len(want))
		}
		switch {
		case len(b) < 4096-maxPIDLine && reads != 1:
			t.Errorf("%d processes (%d bytes): %d reads, want 1", len(want), len(b), reads)
		case len(b) > 4096 && reads < 2:
			t.Errorf("%d processes (%d bytes): %d reads, want more than one", len(want), len(b), reads)
		}
		t.Logf("%d processes: %d bytes in %d reads", len(want), len(b), reads)
	}
}
