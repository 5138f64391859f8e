package cgroup

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/preflight-rec/preflight/cgroup/cgrouptest"
)

// notificationsOnly turns the periodic look off: what a watcher with these
// options sees, a notification made it see.
var notificationsOnly = WatchOptions{Poll: time.Hour, Safety: time.Hour}

// TestRealRestartSeenByPidfd replaces the cgroup's only process while the
// cgroup never empties (cgroup.events does not change) and no periodic look
// runs: only the pidfd of the process that exits can wake the watcher.
func TestRealRestartSeenByPidfd(t *testing.T) {
	f := realFS(t)
	cg := newRealCgroup(t, f)
	a := cgrouptest.StartSleep(t)
	cg.Move(t, a.PID)
	w := f.NewWatcher(Target{Path: cg.Path}, notificationsOnly)
	runWatcher(t, w)
	settle(w)
	if !slices.Equal(w.PIDs(), []int{a.PID}) {
		t.Fatalf("first look: pids %v, want [%d]", w.PIDs(), a.PID)
	}
	old := a
	for round := 1; round <= 2; round++ {
		next := cgrouptest.StartSleep(t)
		cg.Move(t, next.PID)       // unseen: nothing notifies a process joining
		time.Sleep(minReplacedAge) // a set replaced sooner is start-up forking
		if !slices.Equal(w.PIDs(), []int{old.PID}) {
			t.Fatalf("round %d: the watcher looked without cause: pids %v", round, w.PIDs())
		}
		killed := time.Now()
		old.Kill()
		e := nextEvent(t, w, 5*time.Second)
		want := fmt.Sprintf("all processes replaced (%d → %d)", old.PID, next.PID)
		if e.Kind != KindExit || e.Detail != want {
			t.Errorf("round %d: event %+v, want exit %q", round, e, want)
		}
		t.Logf("round %d: kill -9 of the old process → exit event seen %v (Poll and Safety 1 h: the pidfd)", round, e.At.Sub(killed))
		onRun(w, func() {}) // the look that sent it has ended: next's pidfd is open
		old = next
	}
	expectQuiet(t, w, 100*time.Millisecond)
}

// TestRealOOMSeenByEventfd has a child the watcher never saw (it joined
// after the last look, so it has no pidfd) OOM-killed under a v1 memory
// limit, with no periodic look: only the v1 OOM notification (an eventfd
// registered through cgroup.event_control) can wake the watcher.
func TestRealOOMSeenByEventfd(t *testing.T) {
	f := realFS(t)
	cg := newRealCgroup(t, f)
	if cg.V1Memory == "" {
		t.Skip("no v1 memory hierarchy: the OOM counter is v2 memory.events, watched by inotify")
	}
	cg.LimitMemory(t, 32<<20)
	main := cgrouptest.StartSleep(t)
	cg.Move(t, main.PID)
	before, err := f.Stats(cg.Path)
	if err != nil || before.OOMKills == nil {
		t.Fatalf("Stats: %v, oom_kill %s", err, show(before.OOMKills))
	}
	w := f.NewWatcher(Target{Path: cg.Path}, notificationsOnly)
	runWatcher(t, w)
	settle(w)
	var notified bool
	onRun(w, func() { notified = w.cur.notify != nil })
	if !notified {
		t.Fatalf("no v1 OOM notification registered for %s", cg.V1Memory)
	}

	child, stdin, out := startAllocChild(t, cg)
	if !slices.Equal(w.PIDs(), []int{main.PID}) {
		t.Fatalf("the watcher saw the child join: pids %v", w.PIDs())
	}
	started := time.Now()
	if _, err := stdin.Write([]byte("\n")); err != nil { // go: allocate
		t.Fatal(err)
	}
	e := nextEvent(t, w, 20*time.Second)
	want := fmt.Sprintf("oom_kill %d → %d", *before.OOMKills, *before.OOMKills+1)
	if e.Kind != KindOOM || e.Detail != want {
		t.Errorf("event %+v, want oom %q", e, want)
	}
	t.Logf("allocation started → oom event seen %v (Poll and Safety 1 h: the eventfd)", e.At.Sub(started))
	exited(t, child, 10*time.Second)
	if ws, ok := child.Cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
		t.Errorf("allocating child ended with %v (%s), want SIGKILL", child.Cmd.ProcessState, out.String())
	}
	expectQuiet(t, w, 300*time.Millisecond) // the main process lives: no exit
}

// TestRealOOMWithoutEventfd is the OOM of a child under a v1 memory limit
// where cgroup.event_control refuses the eventfd (as for a recorder that is
// not root): the child's pidfd stands in, with no periodic look.
func TestRealOOMWithoutEventfd(t *testing.T) {
	f := realFS(t)
	cg := newRealCgroup(t, f)
	if cg.V1Memory == "" {
		t.Skip("no v1 memory hierarchy: the OOM counter is v2 memory.events, watched by inotify")
	}
	cg.LimitMemory(t, 32<<20)
	main := cgrouptest.StartSleep(t)
	cg.Move(t, main.PID)
	child, stdin, _ := startAllocChild(t, cg)
	before, err := f.Stats(cg.Path)
	if err != nil || before.OOMKills == nil {
		t.Fatalf("Stats: %v, oom_kill %s", err, show(before.OOMKills))
	}

	w := f.NewWatcher(Target{Path: cg.Path}, notificationsOnly)
	w.testNoEventfd = true
	runWatcher(t, w)
	settle(w)
	var every time.Duration
	var pidfds int
	onRun(w, func() { every, pidfds = w.lookEvery(), len(w.procs.cur) })
	if every != time.Hour || pidfds != 2 {
		t.Fatalf("without the eventfd: looks every %v with %d pidfds, want the safety cadence and 2", every, pidfds)
	}
	if _, err := stdin.Write([]byte("\n")); err != nil { // go: allocate
		t.Fatal(err)
	}
	e := nextEvent(t, w, 20*time.Second)
	want := fmt.Sprintf("oom_kill %d → %d", *before.OOMKills, *before.OOMKills+1)
	if e.Kind != KindOOM || e.Detail != want {
		t.Errorf("event %+v, want oom %q", e, want)
	}
	exited(t, child, 10*time.Second)
	expectQuiet(t, w, 300*time.Millisecond)
}

// TestRealCadence checks when the watcher falls back to the short poll:
// never while every process has a pidfd and inotify watches the cgroup;
// beyond maxPidfds processes; and which tickers run for an absent cgroup.
func TestRealCadence(t *testing.T) {
	f := realFS(t)
	cg := newRealCgroup(t, f)
	a := cgrouptest.StartSleep(t)
	cg.Move(t, a.PID)
	w := f.NewWatcher(Target{Path: cg.Path}, WatchOptions{})
	runWatcher(t, w)
	<-w.Ready()
	type state struct {
		look, resolve time.Duration
		pidfds        int
		notify        bool
	}
	stateOf := func(w *Watcher) (s state) {
		onRun(w, func() {
			w.look()
			s = state{w.lookEvery(), w.resolveEvery(), len(w.procs.cur), w.cur.notify != nil}
		})
		return s
	}
	want := state{look: DefaultSafety, pidfds: 1, notify: cg.V1Memory != ""}
	if got := stateOf(w); got != want {
		t.Errorf("one process: %+v, want %+v", got, want)
	}

	var more []*cgrouptest.Proc
	for range maxPidfds {
		p := cgrouptest.StartSleep(t)
		cg.Move(t, p.PID)
		more = append(more, p)
	}
	want = state{look: DefaultPoll, pidfds: 0, notify: want.notify}
	if got := stateOf(w); got != want {
		t.Errorf("%d processes: %+v, want %+v", maxPidfds+1, got, want)
	}
	more[0].Kill()
	exited(t, more[0], 5*time.Second)
	want = state{look: DefaultSafety, pidfds: maxPidfds, notify: want.notify}
	if got := stateOf(w); got != want {
		t.Errorf("%d processes: %+v, want %+v", maxPidfds, got, want)
	}
	for _, p := range more[1:] {
		p.Kill()
		exited(t, p, 5*time.Second)
	}
	want.pidfds = 1
	if got := stateOf(w); got != want {
		t.Errorf("one process again: %+v, want %+v", got, want)
	}

	// An absent cgroup given as a path: its parent directory is watched.
	absent := f.NewWatcher(Target{Path: cg.Path + "/absent"}, WatchOptions{})
	runWatcher(t, absent)
	<-absent.Ready()
	if got, want := stateOf(absent), (state{look: DefaultSafety}); got != want {
		t.Errorf("absent path: %+v, want %+v", got, want)
	}
	// A unit without a cgroup: only the lookup ticks.
	unit := f.NewWatcher(Target{Unit: "preflight-test-never-" + strconv.Itoa(os.Getpid()) + ".service"}, WatchOptions{})
	runWatcher(t, unit)
	<-unit.Ready()
	if got, want := stateOf(unit), (state{resolve: DefaultResolve}); got != want {
		t.Errorf("absent unit: %+v, want %+v", got, want)
	}
}

// TestRealNoDescriptorLeft runs a watcher that holds every kind of
// descriptor (inotify, pidfds, the v1 OOM eventfd, held cgroup files) and
// checks that the process has exactly the descriptors it had before once
// Run has returned.
func TestRealNoDescriptorLeft(t *testing.T) {
	f := realFS(t)
	cg := newRealCgroup(t, f)
	for range 3 {
		p := cgrouptest.StartSleep(t) // before the count: os.Process holds a pidfd of its own
		cg.Move(t, p.PID)
	}
	r, wp, err := os.Pipe() // the netpoller's own descriptors are made once, at its first use
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	wp.Close()

	before := openFDs(t)
	w := f.NewWatcher(Target{Path: cg.Path}, WatchOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w.testDo = make(chan func())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	<-w.Ready()
	var pidfds int
	var notify bool
	onRun(w, func() { pidfds, notify = len(w.procs.cur), w.cur.notify != nil })
	during := openFDs(t)
	if pidfds != 3 || cg.V1Memory != "" && !notify {
		t.Errorf("while running: %d pidfds (want 3), v1 oom eventfd %v", pidfds, notify)
	}
	t.Logf("descriptors: %d before, %d while running (%d pidfds)", len(before), len(during), pidfds)
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	after := openFDs(t)
	if !maps.Equal(before, after) {
		for fd, target := range after {
			if before[fd] != target {
				t.Errorf("left open after Run: fd %d → %s", fd, target)
			}
		}
		for fd, target := range before {
			if _, ok := after[fd]; !ok {
				t.Errorf("closed by Run, not its own: fd %d → %s", fd, target)
			}
		}
	}
}

// openFDs returns the process's open descriptors and what they refer to,
// leaving out the one that reads the list.
func openFDs(t *testing.T) map[int]string {
	t.Helper()
	d, err := os.Open("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		t.Fatal(err)
	}
	fds := map[int]string{}
	for _, n := range names {
		fd, err := strconv.Atoi(n)
		if err != nil || uintptr(fd) == d.Fd() {
			continue
		}
		target, err := os.Readlink(filepath.Join("/proc/self/fd", n))
		if err != nil {
			continue // closed meanwhile
		}
		fds[fd] = target
	}
	return fds
}

// A daemon that forks and lets its parent exit right after start-up
// (systemd's Type=forking) is not a restart, though its parent's pidfd
// wakes the watcher to a set it never saw.
func TestRealStartupForkIsNotARestart(t *testing.T) {
	f := realFS(t)
	cg := newRealCgroup(t, f)
	// Become the daemon's reaper, so that the test can reap what it made.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		t.Skipf("cannot reap the daemon: %v", err)
	}
	t.Cleanup(func() { _ = unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0) })
	sh := exec.Command("sh", "-c", "read x; sleep 300 >/dev/null 2>&1 & echo $!")
	stdin, err := sh.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	sh.Stdout = &out
	parent := cgrouptest.Start(t, sh)
	cg.Move(t, parent.PID)
	w := f.NewWatcher(Target{Path: cg.Path}, notificationsOnly)
	runWatcher(t, w)
	settle(w)
	stdin.Write([]byte("go\n")) // fork the daemon, then exit
	exited(t, parent, 5*time.Second)
	child, err := strconv.Atoi(strings.TrimSpace(out.String()))
	if err != nil {
		t.Fatalf("no daemon pid from the parent: %q", out.String())
	}
	t.Cleanup(func() { // the daemon this test made: kill and reap it
		_ = syscall.Kill(child, syscall.SIGKILL)
		_, _ = syscall.Wait4(child, nil, 0, nil)
	})
	waitFor(t, "the daemon alone", func() bool { return slices.Equal(w.PIDs(), []int{child}) })
	expectQuiet(t, w, 200*time.Millisecond)
}

// TestRealLookAskedFor: a process joining is not notified, so the periodic
// look finds it; with the periodic look an hour away, a look asked for
// (Look, as the recorder makes at each of its wake-ups, in its goroutine)
// has found it when Look returns. The periodic cadence is still there.
func TestRealLookAskedFor(t *testing.T) {
	f := realFS(t)
	cg := newRealCgroup(t, f)
	a := cgrouptest.StartSleep(t)
	cg.Move(t, a.PID)
	w := f.NewWatcher(Target{Path: cg.Path}, notificationsOnly)
	runWatcher(t, w)
	settle(w)
	b := cgrouptest.StartSleep(t)
	cg.Move(t, b.PID) // unseen: nothing notifies a process joining
	time.Sleep(100 * time.Millisecond)
	if !slices.Equal(w.PIDs(), []int{a.PID}) {
		t.Fatalf("the watcher looked without cause: pids %v", w.PIDs())
	}
	w.Look()
	want := []int{min(a.PID, b.PID), max(a.PID, b.PID)}
	if got := w.PIDs(); !slices.Equal(got, want) {
		t.Fatalf("after Look returned: pids %v, want %v", got, want)
	}
	var every time.Duration
	onRun(w, func() { every = w.lookEvery() })
	if every != time.Hour {
		t.Errorf("after an asked look: the periodic look every %v, want the safety cadence (1 h here)", every)
	}
	expectQuiet(t, w, 100*time.Millisecond)
}

// TestRealLookNeverWaits: Look does not wait behind the watcher's own
// wake-up (which may be asking a slow systemd for the unit's cgroup): it
// returns without looking, and looks again once the watcher is free.
// Before Run and after it returned, Look does nothing: the watcher's
// descriptors are not open, and Events is closed.
func TestRealLookNeverWaits(t *testing.T) {
	f := realFS(t)
	cg := newRealCgroup(t, f)
	a := cgrouptest.StartSleep(t)
	cg.Move(t, a.PID)
	w := f.NewWatcher(Target{Path: cg.Path}, notificationsOnly)
	if w.Look() {
		t.Fatal("Look before Run looked")
	}
	w.testDo = make(chan func())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	defer func() { // on failure too: the watcher is released and ends
		cancel()
		<-done
	}()
	settle(w)

	release := make(chan struct{})
	busy := make(chan struct{})
	go func() {
		w.testDo <- func() { close(busy); <-release } // holds the watcher's turn
	}()
	<-busy
	b := cgrouptest.StartSleep(t)
	cg.Move(t, b.PID)
	looked := make(chan struct{})
	go func() { w.Look(); close(looked) }()
	select {
	case <-looked:
	case <-time.After(10 * time.Second):
		close(release)
		t.Fatal("Look waited behind the watcher's busy turn")
	}
	if got := w.PIDs(); !slices.Equal(got, []int{a.PID}) {
		t.Errorf("Look while the watcher was busy: pids %v, want %v (no look)", got, []int{a.PID})
	}
	close(release)
	want := []int{min(a.PID, b.PID), max(a.PID, b.PID)}
	waitFor(t, "a look once the watcher is free", func() bool {
		w.Look()
		return slices.Equal(w.PIDs(), want)
	})

	// Looks racing Run's end (under -race, a data race or a send on the
	// closed Events fails the test), then after it: nothing is looked at
	// with descriptors closed.
	stopLooking := lookLoop(w, 0)
	time.Sleep(20 * time.Millisecond)
	cancel()
	err := <-done
	stopLooking()
	done <- nil // for the deferred cleanup
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	c := cgrouptest.StartSleep(t)
	cg.Move(t, c.PID)
	if w.Look() {
		t.Error("Look after Run returned looked")
	}
	if got := w.PIDs(); !slices.Equal(got, want) {
		t.Errorf("Look after Run returned: pids %v, want %v (no look)", got, want)
	}
}

// TestRealLookDrives: a caller that looks every period drives the safety
// look. Then the watcher's own timer is silent for periods on end (it
// ticks every watchdog periods, and only looks if the caller stopped); a
// caller that keeps looking keeps it silent; a caller that stops has the
// watcher look on its own again, every period. A slower caller does not
// drive it.
func TestRealLookDrives(t *testing.T) {
	const safety = 400 * time.Millisecond // the watchdog: 2 s
	f := realFS(t)
	cg := newRealCgroup(t, f)
	a := cgrouptest.StartSleep(t)
	cg.Move(t, a.PID)
	w := f.NewWatcher(Target{Path: cg.Path}, WatchOptions{Poll: time.Hour, Safety: safety})
	runWatcher(t, w)
	settle(w)
	state := func() (driven bool, made uint64) {
		onRun(w, func() { driven, made = w.looks.driven, w.made })
		return driven, made
	}
	// look makes a Look that looks: one made while the watcher's own
	// wake-up holds the turn does nothing, and would not count.
	look := func() {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for !w.Look() {
			if time.Now().After(deadline) {
				t.Fatal("Look did nothing for 5s")
			}
			time.Sleep(time.Millisecond)
		}
	}
	var every time.Duration
	onRun(w, func() { every = w.lookEvery() })
	if d, _ := state(); every != safety || d {
		t.Fatalf("before any Look: look every %v, driven %v; want %v, not driven", every, d, safety)
	}

	// A caller slower than a period and a quarter does not drive it.
	look()
	time.Sleep(safety * 2)
	look()
	if d, _ := state(); d {
		t.Fatal("Looks 2 periods apart drive the safety look")
	}

	// Two Looks within a period drive it: nothing looks for 2.5 periods
	// but the caller.
	look()
	_, before := state()
	start := time.Now()
	b := cgrouptest.StartSleep(t)
	cg.Move(t, b.PID) // not notified: only a look sees it
	time.Sleep(safety * 5 / 2)
	d, after := state()
	if time.Since(start) < watchdog*safety && after != before {
		t.Fatalf("driven by Look: the watcher made %d looks of its own within %v", after-before, safety*5/2)
	}
	if !d {
		t.Fatal("after two Looks within a period: the safety look is not driven")
	}

	// The caller stops: the watchdog looks, and the watcher looks every
	// period again.
	ab := []int{min(a.PID, b.PID), max(a.PID, b.PID)}
	waitFor(t, "the watchdog's look", func() bool { return slices.Equal(w.PIDs(), ab) })
	if d, _ := state(); d {
		t.Error("after the watchdog's look: still driven")
	}
	c := cgrouptest.StartSleep(t)
	cg.Move(t, c.PID)
	waitFor(t, "the watcher's own look", func() bool { return len(w.PIDs()) == 3 })

	// A caller that keeps looking, past the watchdog's tick: every look
	// made is one of the caller's.
	look()
	_, before = state()
	stopLooking := lookLoop(w, safety/4)
	time.Sleep(watchdog*safety + safety)
	asked := stopLooking()
	d, after = state()
	if !d || after-before != asked {
		t.Errorf("a caller looking every quarter period: driven %v, %d looks made for its %d", d, after-before, asked)
	}
}

// lookLoop calls w.Look every period (0: back to back) until the function
// it returns is called, which returns how many of them looked.
func lookLoop(w *Watcher, every time.Duration) func() uint64 {
	stop := make(chan struct{})
	done := make(chan uint64)
	go func() {
		var looked uint64
		for {
			select {
			case <-stop:
				done <- looked
				return
			case <-time.After(every):
				if w.Look() {
					looked++
				}
			}
		}
	}()
	return func() uint64 {
		close(stop)
		return <-done
	}
}

// TestRealTracerHoldsFiles: a Tracer holds the cgroup's files open between
// readings, reads a cgroup re-created at the same path (its held files fail
// with ENODEV and are opened again), and Close leaves no descriptor.
func TestRealTracerHoldsFiles(t *testing.T) {
	f := realFS(t)
	cg := newRealCgroup(t, f)
	a := cgrouptest.StartSleep(t)
	cg.Move(t, a.PID)
	// The descriptors of the cgroup's files.
	ofCgroup := func() int { return fdsOf(t, cg.Path) }
	tr := f.NewTracer()
	st, err := tr.Read(cg.Path)
	if err != nil || !slices.Equal(st.PIDs, []int{a.PID}) || st.MemoryBytes == nil || st.CPUUsageUsec == nil {
		t.Fatalf("first reading: %+v, %v", st, err)
	}
	held := len(tr.held.fds)
	if held == 0 || ofCgroup() != held {
		t.Errorf("after a reading: %d files held, %d descriptors of the cgroup's files", held, ofCgroup())
	}
	if st, err = tr.Read(cg.Path); err != nil || !slices.Equal(st.PIDs, []int{a.PID}) || len(tr.held.fds) != held {
		t.Errorf("second reading: %+v, %v, %d files held (want %d)", st, err, len(tr.held.fds), held)
	}

	// systemd removes a dead unit's cgroup and makes it again on restart.
	a.Kill()
	exited(t, a, 5*time.Second)
	removeDirs(t, cg)
	if _, err := tr.Read(cg.Path); !errors.Is(err, ErrNotFound) {
		t.Errorf("reading of the removed cgroup: %v, want ErrNotFound", err)
	}
	if n := ofCgroup(); n != 0 || len(tr.held.fds) != 0 {
		t.Errorf("after a reading found the cgroup gone: %d descriptors of its files, %d files held; want none", n, len(tr.held.fds))
	}
	makeDirs(t, cg)
	c := cgrouptest.StartSleep(t)
	cg.Move(t, c.PID)
	st, err = tr.Read(cg.Path)
	if err != nil || !slices.Equal(st.PIDs, []int{c.PID}) || st.MemoryBytes == nil {
		t.Errorf("reading of the re-created cgroup: %+v, %v", st, err)
	}
	tr.Close()
	if n := ofCgroup(); n != 0 {
		t.Errorf("after Close: %d descriptors of the cgroup's files", n)
	}
}

// TestRealTracerUnifiedRecreated: on the cgroup2 hierarchy alone (pure v2,
// where no v1 cgroup.procs answers for the cgroup), a Tracer that found
// the cgroup gone, as while systemd restarts its unit, holds none of the
// removed cgroup's files and reads the cgroup at its first reading after
// it is made again, not absentRetry readings later.
func TestRealTracerUnifiedRecreated(t *testing.T) {
	v2, err := NewFS(realFS(t).v2)
	if err != nil {
		t.Fatalf("the cgroup2 hierarchy alone: %v", err)
	}
	if v2.Layout() != Unified {
		t.Fatalf("the cgroup2 hierarchy alone is %v, want unified", v2.Layout())
	}
	cg := newRealCgroup(t, v2)
	dir := cg.Dirs[0] // cgroup2's
	a := cgrouptest.StartSleep(t)
	cg.Move(t, a.PID)
	ofCgroup := func() int { return fdsOf(t, cg.Path) }
	tr := v2.NewTracer()
	t.Cleanup(tr.Close)
	for range 2 {
		if st, err := tr.Read(cg.Path); err != nil || !slices.Equal(st.PIDs, []int{a.PID}) {
			t.Fatalf("reading: %+v, %v", st, err)
		}
	}
	if len(tr.held.fds) == 0 {
		t.Fatal("no file held after two readings: nothing to test")
	}

	a.Kill()
	exited(t, a, 5*time.Second)
	cg.Remove(t)
	if _, err := tr.Read(cg.Path); !errors.Is(err, ErrNotFound) {
		t.Fatalf("reading of the removed cgroup: %v, want ErrNotFound", err)
	}
	if n := ofCgroup(); n != 0 || len(tr.held.fds) != 0 {
		t.Errorf("after a reading found the cgroup gone: %d descriptors of its files, %d files held; want none", n, len(tr.held.fds))
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Skipf("the kernel refuses to make the cgroup again: %v", err)
	}
	// Removed at Cleanup by cgrouptest, which registered dir.
	c := cgrouptest.StartSleep(t)
	if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(c.PID)), 0); err != nil {
		t.Fatalf("failed to move %d into %s: %v", c.PID, dir, err)
	}
	st, err := tr.Read(cg.Path)
	if err != nil || !slices.Equal(st.PIDs, []int{c.PID}) {
		t.Errorf("first reading of the re-created cgroup: %+v, %v; want PID %d", st, err, c.PID)
	}
}

// TestRealTracerReadsRaw: a Tracer's raw preads (no word to the Go
// scheduler, which then cannot hand the P off or stop the world while the
// kernel works) are of held files read before: those that never wait
// (readsRaw) and, at a trace reading of a calm cgroup only, cpu.stat and
// memory.pressure (readsRawInTrace). memory.stat, the other pressure
// files, every first read, and a sample's reading (Stats) of anything
// that may wait go through the wrapped call.
func TestRealTracerReadsRaw(t *testing.T) {
	f := realFS(t)
	cg := newRealCgroup(t, f)
	a := cgrouptest.StartSleep(t)
	cg.Move(t, a.PID)
	tr := f.NewTracer()
	t.Cleanup(tr.Close)
	tr.Calm(true)
	raw, wrapped := map[string]int{}, map[string]int{}
	name := func(fd int) string {
		target, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
		if err != nil {
			return "?"
		}
		return filepath.Base(target)
	}
	origRaw, origWrapped := preadRaw, preadWrapped
	t.Cleanup(func() { preadRaw, preadWrapped = origRaw, origWrapped })
	preadRaw = func(fd int, b []byte, off int64) (int, error) {
		raw[name(fd)]++
		return origRaw(fd, b, off)
	}
	preadWrapped = func(fd int, b []byte, off int64) (int, error) {
		wrapped[name(fd)]++
		return origWrapped(fd, b, off)
	}
	if _, err := tr.Read(cg.Path); err != nil {
		t.Fatalf("first reading: %v", err)
	}
	if len(raw) != 0 {
		t.Errorf("first reading: raw preads of %v, want none (every descriptor new)", raw)
	}
	firstWrapped := maps.Clone(wrapped)
	clear(wrapped)
	for range 3 {
		if _, err := tr.Read(cg.Path); err != nil {
			t.Fatalf("reading: %v", err)
		}
	}
	t.Logf("first reading: wrapped %v; the next 3: raw %v, wrapped %v", firstWrapped, raw, wrapped)
	for n := range raw {
		if !readsRaw(n) && !readsRawInTrace(n) {
			t.Errorf("%s read raw, %d times: not a file that never waits or waits a moment", n, raw[n])
		}
	}
	for _, n := range []string{"memory.stat", "cpu.pressure", "io.pressure"} {
		if raw[n] > 0 {
			t.Errorf("%s read raw %d times: it may sleep in the kernel", n, raw[n])
		}
	}
	if len(raw) == 0 {
		t.Errorf("no raw pread in 3 readings of held files (wrapped: %v)", wrapped)
	}
	// After the first reading, a trace reading makes no wrapped call: one
	// would wake the runtime's monitor every second (recorder fdTicker).
	if len(wrapped) > 0 {
		t.Errorf("wrapped preads in the 3 readings after the first: %v, want none", wrapped)
	}
	if raw["cpu.stat"] != 3 {
		t.Errorf("cpu.stat read raw %d times in the 3 readings after the first, want 3", raw["cpu.stat"])
	}
	if firstWrapped["memory.pressure"] > 0 && raw["memory.pressure"] != 3 {
		t.Errorf("memory.pressure read raw %d times in the 3 readings after the first, want 3", raw["memory.pressure"])
	}

	// Not calm (warning signs: reclaim, when they wait longest), the trace
	// reads them wrapped.
	clear(raw)
	clear(wrapped)
	tr.Calm(false)
	if _, err := tr.Read(cg.Path); err != nil {
		t.Fatalf("reading: %v", err)
	}
	for _, n := range []string{"cpu.stat", "memory.pressure"} {
		if raw[n] > 0 || firstWrapped[n] > 0 && wrapped[n] != 1 {
			t.Errorf("a reading of a cgroup not calm read %s raw %d times, wrapped %d times; want wrapped once", n, raw[n], wrapped[n])
		}
	}
	if len(raw) == 0 {
		t.Errorf("a reading of a cgroup not calm made no raw pread (wrapped: %v)", wrapped)
	}

	clear(raw)
	clear(wrapped)
	tr.Calm(true)
	if _, err := tr.Stats(cg.Path); err != nil {
		t.Fatalf("stats: %v", err)
	}
	t.Logf("stats: raw %v; wrapped %v", raw, wrapped)
	for _, n := range []string{"cpu.stat", "memory.stat", "memory.pressure", "cpu.pressure", "io.pressure"} {
		if raw[n] > 0 {
			t.Errorf("a sample's reading read %s raw: it may wait, and a sample reads it wrapped", n)
		}
	}
	if wrapped["cpu.stat"] != 1 {
		t.Errorf("a sample's reading read cpu.stat %d times through the wrapped call, want 1", wrapped["cpu.stat"])
	}
	if len(raw) == 0 {
		t.Errorf("a sample's reading made no raw pread of the held files (wrapped: %v)", wrapped)
	}
}

// TestRealTracerStats: a Tracer's Stats and Procs of a real cgroup read
// what FS.Stats and FS.Procs read, from the files its readings hold (no more descriptors at
// the second), finds the cgroup gone when systemd removes it (holding none
// of its files), and reads the cgroup made again at the same path, not the
// removed one's values.
func TestRealTracerStats(t *testing.T) {
	f := realFS(t)
	cg := newRealCgroup(t, f)
	a := cgrouptest.StartSleep(t)
	cg.Move(t, a.PID)
	ofCgroup := func() int { return fdsOf(t, cg.Path) }
	tr := f.NewTracer()
	t.Cleanup(tr.Close)
	want, err := f.Stats(cg.Path)
	if err != nil {
		t.Fatalf("FS.Stats: %v", err)
	}
	got, err := tr.Stats(cg.Path)
	if err != nil {
		t.Fatalf("Tracer.Stats: %v", err)
	}
	// The same values are there; the counters move between the two reads.
	if kg, kw := got.known(), want.known(); kg != kw || got.MemoryBytes == nil || got.CPUUsageUsec == nil {
		t.Errorf("Tracer.Stats knows %d values, FS.Stats %d:\n%s\n%s", kg, kw, showStats(got), showStats(want))
	}
	if n := len(tr.held.fds); n < 5 || ofCgroup() != n {
		t.Errorf("after Stats alone: %d files held, %d descriptors of the cgroup's files; want every file it read", n, ofCgroup())
	}
	if pids, err := tr.Procs(cg.Path); err != nil || !slices.Equal(pids, []int{a.PID}) {
		t.Errorf("Procs = %v, %v; want [%d]", pids, err, a.PID)
	}
	held := len(tr.held.fds)
	if held == 0 || ofCgroup() != held {
		t.Errorf("after a reading: %d files held, %d descriptors of the cgroup's files", held, ofCgroup())
	}
	_, err = tr.Stats(cg.Path)
	pids, perr := tr.Procs(cg.Path)
	if err != nil || perr != nil || !slices.Equal(pids, []int{a.PID}) || len(tr.held.fds) != held || ofCgroup() != held {
		t.Errorf("second reading: %v, procs %v %v, %d files held, %d descriptors (want %d)", err, pids, perr, len(tr.held.fds), ofCgroup(), held)
	}

	a.Kill()
	exited(t, a, 5*time.Second)
	removeDirs(t, cg)
	if _, err := tr.Procs(cg.Path); !errors.Is(err, ErrNotFound) {
		t.Errorf("Procs of the removed cgroup: %v, want ErrNotFound", err)
	}
	if n := ofCgroup(); n != 0 || len(tr.held.fds) != 0 || len(tr.held.absent) != 0 {
		t.Errorf("after Procs found the cgroup gone: %d descriptors, %d files held, %d absent; want none", n, len(tr.held.fds), len(tr.held.absent))
	}
	if _, err := tr.Stats(cg.Path); !errors.Is(err, ErrNotFound) {
		t.Errorf("Stats of the removed cgroup: %v, want ErrNotFound", err)
	}
	if n := ofCgroup(); n != 0 || len(tr.held.fds) != 0 {
		t.Errorf("after Stats found the cgroup gone: %d descriptors, %d files held; want none", n, len(tr.held.fds))
	}
	makeDirs(t, cg)
	cg.LimitMemory(t, 64<<20) // the new cgroup's, unlike the removed one's
	c := cgrouptest.StartSleep(t)
	cg.Move(t, c.PID)
	if pids, err := tr.Procs(cg.Path); err != nil || !slices.Equal(pids, []int{c.PID}) {
		t.Errorf("Procs of the re-created cgroup = %v, %v; want [%d]", pids, err, c.PID)
	}
	got, err = tr.Stats(cg.Path)
	if err != nil || got.MemoryMaxBytes == nil || *got.MemoryMaxBytes != 64<<20 {
		t.Errorf("Stats of the re-created cgroup: memory max %s, %v; want %d", show(got.MemoryMaxBytes), err, 64<<20)
	}

	// A restart between two readings: removed and made again, no reading
	// in between. Every held file fails (ENODEV) and is opened again.
	c.Kill()
	exited(t, c, 5*time.Second)
	removeDirs(t, cg)
	makeDirs(t, cg)
	cg.LimitMemory(t, 48<<20)
	e := cgrouptest.StartSleep(t)
	cg.Move(t, e.PID)
	got, err = tr.Stats(cg.Path)
	if err != nil || got.MemoryMaxBytes == nil || *got.MemoryMaxBytes != 48<<20 {
		t.Errorf("Stats after a removal and re-creation between readings: memory max %s, %v; want %d", show(got.MemoryMaxBytes), err, 48<<20)
	}
	if pids, err := tr.Procs(cg.Path); err != nil || !slices.Equal(pids, []int{e.PID}) {
		t.Errorf("Procs after a removal and re-creation between readings = %v, %v; want [%d]", pids, err, e.PID)
	}
	// A removed cgroup's file fails with ENODEV: every held one is the new
	// cgroup's.
	for key, fd := range tr.held.fds {
		if _, err := unix.Pread(fd, make([]byte, 4096), 0); err != nil {
			t.Errorf("held %s/%s: %v (a file of the removed cgroup?)", key[0], key[1], err)
		}
	}
}

// fdsOf counts this process's descriptors of the files of the cgroup at
// path.
func fdsOf(t *testing.T, path string) int {
	n := 0
	for _, target := range openFDs(t) {
		if strings.Contains(target, path+"/") {
			n++
		}
	}
	return n
}

// removeDirs removes cg's directories, as systemd removes a dead unit's
// cgroup; makeDirs makes them again, as at its restart.
func removeDirs(t *testing.T, cg *cgrouptest.Cgroup) {
	t.Helper()
	for _, d := range slices.Backward(cg.Dirs) {
		if err := os.Remove(d); err != nil {
			t.Fatalf("rmdir %s: %v", d, err)
		}
	}
}

func makeDirs(t *testing.T, cg *cgrouptest.Cgroup) {
	t.Helper()
	for _, d := range cg.Dirs {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatalf("mkdir %s: %v", d, err)
		}
	}
}
