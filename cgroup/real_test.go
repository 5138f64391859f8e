package cgroup

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// helperEnv selects a helper mode of the test binary, re-executed as a
// child process (see TestMain).
const helperEnv = "PREFLIGHT_CGROUP_TEST_HELPER"

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) == "alloc" {
		allocHelper()
		return
	}
	os.Exit(m.Run())
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

// realCgroup is a cgroup a test made by hand on this machine, in the v2
// hierarchy (unified in hybrid) and, where mounted, the v1 memory one.
type realCgroup struct {
	path string   // "/preflight-test-…"
	dirs []string // its directories, v2 first
	v1   string   // the v1 memory directory, "" without one
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

// newRealCgroup makes a fresh cgroup and removes it in Cleanup, after
// moving any process left in it back to the parent.
func newRealCgroup(t testing.TB, f *FS) *realCgroup {
	t.Helper()
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	cg := &realCgroup{path: "/preflight-test-" + hex.EncodeToString(rnd[:])}
	parents := []string{f.v2}
	if f.memory != "" {
		parents = append(parents, f.memory)
	}
	for _, p := range parents {
		dir := filepath.Join(p, cg.path)
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Skipf("the kernel refuses a test cgroup: %v", err)
		}
		cg.dirs = append(cg.dirs, dir)
		if p == f.memory {
			cg.v1 = dir
		}
		t.Cleanup(func() { removeRealCgroup(t, dir) })
	}
	return cg
}

// removeRealCgroup empties dir into its parent and removes it, retrying
// while killed processes finish exiting.
func removeRealCgroup(t testing.TB, dir string) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
		if errors.Is(err, os.ErrNotExist) {
			return
		}
		pids, _ := appendPIDs(nil, b)
		for _, pid := range pids {
			_ = os.WriteFile(filepath.Join(filepath.Dir(dir), "cgroup.procs"), []byte(strconv.Itoa(pid)), 0)
		}
		err = os.Remove(dir)
		if err == nil || errors.Is(err, os.ErrNotExist) {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("failed to remove test cgroup %s: %v", dir, err)
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// limitMemory sets a memory limit on the cgroup: v1 memory.limit_in_bytes,
// else v2 memory.max (with swap off).
func (cg *realCgroup) limitMemory(t testing.TB, bytes int) {
	t.Helper()
	v := []byte(strconv.Itoa(bytes))
	if cg.v1 != "" {
		if err := os.WriteFile(filepath.Join(cg.v1, "memory.limit_in_bytes"), v, 0); err != nil {
			t.Skipf("the kernel refuses a v1 memory limit: %v", err)
		}
		return
	}
	if err := os.WriteFile(filepath.Join(cg.dirs[0], "memory.max"), v, 0); err != nil {
		t.Skipf("no memory controller for the test cgroup: %v", err)
	}
	_ = os.WriteFile(filepath.Join(cg.dirs[0], "memory.swap.max"), []byte("0"), 0)
}

// move puts a process into the cgroup in every hierarchy it was made in.
func (cg *realCgroup) move(t testing.TB, pid int) {
	t.Helper()
	for _, d := range cg.dirs {
		if err := os.WriteFile(filepath.Join(d, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0); err != nil {
			t.Fatalf("failed to move %d into %s: %v", pid, d, err)
		}
	}
}

// proc is a child process of the test, reaped in the background.
type proc struct {
	cmd  *exec.Cmd
	pid  int
	done chan struct{}
}

// start runs a command; Cleanup kills it by PID (if still running) and reaps it.
func start(t testing.TB, cmd *exec.Cmd) *proc {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatalf("failed to start %s: %v", cmd.Path, err)
	}
	p := &proc{cmd: cmd, pid: cmd.Process.Pid, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.kill()
		<-p.done
	})
	return p
}

func startSleep(t testing.TB) *proc {
	return start(t, exec.Command("sleep", "300"))
}

func (p *proc) kill() {
	select {
	case <-p.done:
	default:
		_ = p.cmd.Process.Kill() // SIGKILL to this PID only
	}
}

func (p *proc) exited(t testing.TB, within time.Duration) {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(within):
		t.Fatalf("process %d still running after %v", p.pid, within)
	}
}

// runWatcher runs w until the test ends.
func runWatcher(t testing.TB, w *Watcher) {
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
	a := startSleep(t)
	cg.move(t, a.pid)
	w := f.NewWatcher(Target{Path: cg.path}, WatchOptions{})
	runWatcher(t, w)
	waitFor(t, "the sleep in the watched cgroup", func() bool { return slices.Equal(w.PIDs(), []int{a.pid}) })

	// A process killed in its first milliseconds takes ~10 ms more to exit;
	// let it settle so that the latency logged is the watcher's.
	time.Sleep(100 * time.Millisecond)
	killed := time.Now()
	a.kill()
	e := nextEvent(t, w, 5*time.Second)
	received := time.Since(killed)
	want := fmt.Sprintf("cgroup emptied (last pids %d)", a.pid)
	if e.Kind != KindExit || e.Detail != want || e.Path != cg.path {
		t.Errorf("event %+v, want exit %q", e, want)
	}
	t.Logf("kill -9 → exit event: seen %v, received %v (poll %v)", e.At.Sub(killed), received, DefaultPoll)
	expectQuiet(t, w, 3*DefaultPoll)
}

func TestRealExitOnReplacement(t *testing.T) {
	f := realFS(t)
	cg := newRealCgroup(t, f)
	a, b := startSleep(t), startSleep(t)
	cg.move(t, a.pid)
	// The test drives the looks, so that B's arrival and A's death fall
	// between two of them for sure.
	w := f.NewWatcher(Target{Path: cg.path}, WatchOptions{Poll: time.Hour})
	w.testPoll = make(chan chan struct{})
	lookNow := func() {
		done := make(chan struct{})
		w.testPoll <- done
		<-done
	}
	runWatcher(t, w)
	lookNow()
	if !slices.Equal(w.PIDs(), []int{a.pid}) {
		t.Fatalf("first look: pids %v, want [%d]", w.PIDs(), a.pid)
	}

	cg.move(t, b.pid) // the cgroup never empties: no cgroup.events change
	a.kill()
	a.exited(t, 5*time.Second)
	lookNow()
	e := nextEvent(t, w, 5*time.Second)
	want := fmt.Sprintf("all processes replaced (%d → %d)", a.pid, b.pid)
	if e.Kind != KindExit || e.Detail != want {
		t.Errorf("event %+v, want exit %q", e, want)
	}
	lookNow()
	expectQuiet(t, w, 100*time.Millisecond)
}

func TestRealOOMOfAChild(t *testing.T) {
	f := realFS(t)
	cg := newRealCgroup(t, f)
	cg.limitMemory(t, 32<<20)
	main := startSleep(t) // lives on: the OOM kill takes only the child
	cg.move(t, main.pid)

	helper := exec.Command(os.Args[0], "-test.run=^$")
	helper.Env = append(os.Environ(), helperEnv+"=alloc")
	stdin, err := helper.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	helper.Stdout = &out
	child := start(t, helper)
	cg.move(t, child.pid)

	before, err := f.Stats(cg.path)
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	if before.OOMKills == nil {
		t.Skip("this kernel has no oom_kill counter")
	}
	w := f.NewWatcher(Target{Path: cg.path}, WatchOptions{})
	runWatcher(t, w)
	waitFor(t, "both processes in the watched cgroup", func() bool {
		return slices.Equal(w.PIDs(), sorted(main.pid, child.pid))
	})

	if _, err := stdin.Write([]byte("\n")); err != nil { // go: allocate
		t.Fatal(err)
	}
	e := nextEvent(t, w, 20*time.Second)
	want := fmt.Sprintf("oom_kill %d → %d", *before.OOMKills, *before.OOMKills+1)
	if e.Kind != KindOOM || e.Detail != want {
		t.Errorf("event %+v, want oom %q", e, want)
	}
	child.exited(t, 10*time.Second)
	if ws, ok := child.cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
		t.Errorf("allocating child ended with %v (%s), want SIGKILL", child.cmd.ProcessState, out.String())
	}
	after, err := f.Stats(cg.path)
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	if after.OOMKills == nil || *after.OOMKills <= *before.OOMKills {
		t.Errorf("OOMKills %s → %s, want a rise", show(before.OOMKills), show(after.OOMKills))
	}
	if after.MemoryMaxBytes == nil || *after.MemoryMaxBytes != 32<<20 {
		t.Errorf("MemoryMaxBytes %s, want %d", show(after.MemoryMaxBytes), 32<<20)
	}
	waitFor(t, "the main process alone", func() bool { return slices.Equal(w.PIDs(), []int{main.pid}) })
	expectQuiet(t, w, 3*DefaultPoll) // the main process lives: no exit
}

func TestRealRecreated(t *testing.T) {
	f := realFS(t)
	cg := newRealCgroup(t, f)
	a := startSleep(t)
	cg.move(t, a.pid)
	w := f.NewWatcher(Target{Path: cg.path}, WatchOptions{})
	runWatcher(t, w)
	waitFor(t, "the first sleep", func() bool { return slices.Equal(w.PIDs(), []int{a.pid}) })
	a.kill()
	if e := nextEvent(t, w, 5*time.Second); e.Kind != KindExit {
		t.Errorf("first death: event %+v", e)
	}
	a.exited(t, 5*time.Second)

	// systemd removes a dead unit's cgroup and makes it again on restart.
	for _, d := range slices.Backward(cg.dirs) {
		if err := os.Remove(d); err != nil {
			t.Fatalf("rmdir %s: %v", d, err)
		}
	}
	time.Sleep(3 * DefaultPoll) // let the watcher see it gone
	if len(w.PIDs()) != 0 || w.Path() != cg.path {
		t.Errorf("cgroup gone: pids %v path %q", w.PIDs(), w.Path())
	}
	for _, d := range cg.dirs {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatalf("mkdir %s: %v", d, err)
		}
	}
	c := startSleep(t)
	cg.move(t, c.pid)
	waitFor(t, "the sleep in the re-created cgroup", func() bool { return slices.Equal(w.PIDs(), []int{c.pid}) })
	killed := time.Now()
	c.kill()
	e := nextEvent(t, w, 5*time.Second)
	want := fmt.Sprintf("cgroup emptied (last pids %d)", c.pid)
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
	a := startSleep(t)
	cg.move(t, a.pid)
	pids, err := f.Procs(cg.path)
	if err != nil || !slices.Equal(pids, []int{a.pid}) {
		t.Errorf("Procs = %v, %v; want [%d]", pids, err, a.pid)
	}
	s, err := f.Stats(cg.path)
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	if s.CPUUsageUsec == nil || s.Pressure == nil {
		t.Errorf("Stats lacks v2 cpu.stat or pressure: %+v", s)
	}
	if cg.v1 != "" && (s.MemoryBytes == nil || s.OOMKills == nil || s.MemoryMaxBytes != nil) {
		t.Errorf("Stats lacks v1 memory: memory %s oom %s max %s (want nil: unlimited)",
			show(s.MemoryBytes), show(s.OOMKills), show(s.MemoryMaxBytes))
	}
	if _, err := f.Procs(cg.path + "-missing"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Procs(missing) = %v", err)
	}
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
