package cgroup

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// drain returns the events waiting on w, without blocking.
func drain(w *Watcher) []string {
	var got []string
	for {
		select {
		case e := <-w.events:
			got = append(got, e.Kind+": "+e.Detail)
		default:
			return got
		}
	}
}

// v2Tree makes a pure v2 fixture root in a temporary directory.
func v2Tree(t *testing.T) (*FS, string) {
	t.Helper()
	root := t.TempDir()
	writeTree(t, root, map[string]string{"cgroup.controllers": "memory pids\n", "cgroup.procs": "1\n"})
	f, err := NewFS(root)
	if err != nil {
		t.Fatal(err)
	}
	return f, root
}

// TestWatcherLooks drives the watcher's looks by hand over a fixture tree:
// unit resolution, every kind of event, removal and re-creation.
func TestWatcherLooks(t *testing.T) {
	f, root := v2Tree(t)
	const unit = "demo@x.service"
	const path = "/system.slice/system-demo.slice/demo@x.service"
	dir := filepath.Join(root, path)
	w := f.NewWatcher(Target{Unit: unit}, WatchOptions{})
	write := func(name, content string) {
		t.Helper()
		writeTree(t, dir, map[string]string{name: content})
	}
	expect := func(step string, want ...string) {
		t.Helper()
		w.look()
		if got := drain(w); !slices.Equal(got, want) {
			t.Errorf("%s: events %q, want %q", step, got, want)
		}
	}

	w.maintain()
	if w.Path() != "" || len(w.PIDs()) != 0 {
		t.Fatalf("before the unit runs: path %q pids %v", w.Path(), w.PIDs())
	}
	expect("no cgroup")

	writeTree(t, dir, map[string]string{"cgroup.procs": "100\n", "memory.events": "oom 0\noom_kill 0\n"})
	w.maintain() // finds the unit and looks
	if w.Path() != path || !slices.Equal(w.PIDs(), []int{100}) {
		t.Fatalf("after start: path %q pids %v", w.Path(), w.PIDs())
	}
	if w.cur.oomFile != filepath.Join(dir, "memory.events") || !w.cur.oomWatch {
		t.Errorf("oom counter %q (watched %v)", w.cur.oomFile, w.cur.oomWatch)
	}
	expect("steady")

	write("cgroup.procs", "100\n101\n")
	expect("child forked")
	write("cgroup.procs", "100\n")
	write("memory.events", "oom 1\noom_kill 1\n")
	expect("child OOM-killed", "oom: oom_kill 0 → 1")

	write("cgroup.procs", "")
	expect("main died", "exit: cgroup emptied (last pids 100)")
	expect("seen again")

	write("cgroup.procs", "200\n")
	expect("restarted after emptying")
	time.Sleep(minReplacedAge) // a set replaced sooner is start-up forking
	write("cgroup.procs", "300\n301\n")
	expect("fast restart", "exit: all processes replaced (200 → 300,301)")
	// Seen tells a look that sent events (the trace takes no point of its
	// own at the failure) from one that did not.
	var s Sight
	if w.Seen(&s); s.Events != 1 || !s.Exists || s.Path != path || !slices.Equal(s.PIDs, []int{300, 301}) {
		t.Errorf("Seen after the look that saw the restart: %+v, want 1 event, the cgroup and its PIDs", s)
	}
	expect("steady after the restart")
	if w.Seen(&s); s.Events != 0 {
		t.Errorf("Seen after a quiet look: %d events, want 0", s.Events)
	}
	// and the OOM counter as the look read it, for the trace to reuse.
	if s.OOMFile != filepath.Join(dir, "memory.events") || string(s.OOM) != "oom 1\noom_kill 1\n" {
		t.Errorf("Seen's OOM counter: %q %q, want the look's memory.events", s.OOMFile, s.OOM)
	}

	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	expect("cgroup removed", "exit: cgroup removed (last pids 300,301)")
	if w.Seen(&s); s.Exists || s.OOMFile != "" || s.OOM != nil {
		t.Errorf("Seen after the look that found the cgroup gone: %+v, want no OOM counter", s)
	}
	if w.Path() != path || len(w.PIDs()) != 0 {
		t.Errorf("after removal: path %q pids %v", w.Path(), w.PIDs())
	}
	w.maintain() // looks the unit up again: not found, path kept
	if w.Path() != path {
		t.Errorf("path dropped while the unit is away: %q", w.Path())
	}

	write("cgroup.procs", "400\n")
	expect("re-created: picked up again")
	if !slices.Equal(w.PIDs(), []int{400}) {
		t.Errorf("after re-creation: pids %v", w.PIDs())
	}

	// Re-created between two looks: a new inode.
	tmp := filepath.Join(root, "procs.new")
	if err := os.WriteFile(tmp, []byte("500\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, "cgroup.procs")); err != nil {
		t.Fatal(err)
	}
	expect("re-created unseen", "exit: cgroup re-created (400 → 500)")

	// The unit moves to another slice: found there after it leaves this one.
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	expect("removed again", "exit: cgroup removed (last pids 500)")
	writeTree(t, root, map[string]string{"system.slice/" + unit + "/cgroup.procs": "600\n"})
	w.maintain()
	if w.Path() != "/system.slice/"+unit || !slices.Equal(w.PIDs(), []int{600}) {
		t.Errorf("after the move: path %q pids %v", w.Path(), w.PIDs())
	}
	if got := drain(w); len(got) != 0 {
		t.Errorf("moved unit: events %q", got)
	}
}

// TestWatcherRunInotify runs a watcher whose poll never fires: the unit is
// found by the resolver and every event comes through inotify on
// cgroup.events and memory.events.
func TestWatcherRunInotify(t *testing.T) {
	f, root := v2Tree(t)
	dir := filepath.Join(root, "system.slice", "dead-drop.service")
	w := f.NewWatcher(Target{Unit: "dead-drop"}, WatchOptions{Poll: time.Hour, Resolve: 10 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})

	// The cgroup appears whole, as mkdir makes it on cgroupfs.
	staging := filepath.Join(root, "staging")
	writeTree(t, staging, map[string]string{
		"cgroup.procs":  "100\n",
		"cgroup.events": "populated 1\nfrozen 0\n",
		"memory.events": "oom 0\noom_kill 0\n",
	})
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(staging, dir); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the unit's cgroup", func() bool { return slices.Equal(w.PIDs(), []int{100}) })
	if w.Path() != "/system.slice/dead-drop.service" {
		t.Errorf("path %q", w.Path())
	}

	// Same length, written in place: no truncated read is possible.
	fd, err := os.OpenFile(filepath.Join(dir, "memory.events"), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = fd.WriteAt([]byte("oom 1\noom_kill 1\n"), 0)
	fd.Close()
	if err != nil {
		t.Fatal(err)
	}
	e := nextEvent(t, w, 5*time.Second)
	if e.Kind != KindOOM || e.Detail != "oom_kill 0 → 1" || e.Path != "/system.slice/dead-drop.service" {
		t.Errorf("oom event %+v", e)
	}

	writeTree(t, dir, map[string]string{"cgroup.procs": ""})
	writeTree(t, dir, map[string]string{"cgroup.events": "populated 0\nfrozen 0\n"})
	e = nextEvent(t, w, 5*time.Second)
	if e.Kind != KindExit || e.Detail != "cgroup emptied (last pids 100)" {
		t.Errorf("exit event %+v", e)
	}
	if e.At.IsZero() {
		t.Errorf("event without time")
	}
	select {
	case e := <-w.Events():
		t.Errorf("duplicate event %+v", e)
	case <-time.After(100 * time.Millisecond):
	}

	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
	done <- nil // for the cleanup
	if _, ok := <-w.Events(); ok {
		t.Errorf("Events not closed after Run")
	}
	if err := w.Run(context.Background()); err == nil {
		t.Errorf("second Run succeeded")
	}
}

func TestWatcherRunRejectsEmptyTarget(t *testing.T) {
	f, _ := v2Tree(t)
	if err := f.NewWatcher(Target{}, WatchOptions{}).Run(context.Background()); err == nil {
		t.Errorf("Run with no unit and no path succeeded")
	}
	if err := f.NewWatcher(Target{Unit: "../x"}, WatchOptions{}).Run(context.Background()); err == nil {
		t.Errorf("Run with a bad unit succeeded")
	}
}

func TestWatcherDropsWhenFull(t *testing.T) {
	f, _ := v2Tree(t)
	w := f.NewWatcher(Target{Path: "/x"}, WatchOptions{})
	for i := 0; i < eventBuffer+3; i++ {
		w.send(Event{Kind: KindExit})
	}
	if w.Dropped() != 3 || len(w.events) != eventBuffer {
		t.Errorf("dropped %d, queued %d", w.Dropped(), len(w.events))
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func nextEvent(t *testing.T, w *Watcher, within time.Duration) Event {
	t.Helper()
	select {
	case e := <-w.Events():
		return e
	case <-time.After(within):
		t.Fatalf("no event within %v", within)
	}
	return Event{}
}

// TestWatcherMain drives looks by hand over a fixture: the main process
// named by SetMain gone with a worker, others living on, is one exit
// naming it, whose Gone holds both; the watcher then forgets it, so that
// its PID, back in the cgroup, is no main process; a look that finds the
// cgroup without the process SetMain names forgets it too.
func TestWatcherMain(t *testing.T) {
	f, root := v2Tree(t)
	const path = "/system.slice/forking.service"
	dir := filepath.Join(root, path)
	w := f.NewWatcher(Target{Path: path}, WatchOptions{})
	procs := func(s string) { t.Helper(); writeTree(t, dir, map[string]string{"cgroup.procs": s}) }
	look := func() []Event {
		t.Helper()
		w.look()
		var out []Event
		for {
			select {
			case e := <-w.events:
				out = append(out, e)
			default:
				return out
			}
		}
	}
	procs("10\n11\n12\n13\n")
	w.setPath(path)
	w.look()
	w.SetMain(10)
	if e := look(); len(e) != 0 {
		t.Fatalf("steady: events %+v", e)
	}
	procs("11\n13\n") // 10, the main process, and its worker 12
	e := look()
	if len(e) != 1 || e[0].Main != 10 || !slices.Equal(e[0].Gone, []int{10, 12}) || !slices.Equal(e[0].PIDs, []int{11, 13}) ||
		e[0].Detail != "main process 10 ended (left pids 11,13)" || e[0].Replaced {
		t.Fatalf("main gone: events %+v, want one exit of main 10, gone 10,12", e)
	}
	if m := w.main.Load(); m != 0 {
		t.Errorf("main %d after its end, want it forgotten", m)
	}
	procs("10\n11\n13\n") // the PID reused in the cgroup
	look()
	procs("11\n13\n")
	if e := look(); len(e) != 0 {
		t.Errorf("a reused PID of the old main process: events %+v", e)
	}

	w.SetMain(20) // named, not in the cgroup (not yet, or no more)
	look()
	if m := w.main.Load(); m != 0 {
		t.Errorf("main %d named but not in the cgroup at a look, want it forgotten", m)
	}
	w.SetMain(13)
	w.m.since = time.Now().Add(-minReplacedAge) // running long enough for a replacement to be a restart
	procs("20\n21\n")
	if e := look(); len(e) != 1 || !e[0].Replaced || e[0].Main != 0 {
		t.Errorf("all replaced: events %+v, want one exit marked replaced", e)
	}
}
