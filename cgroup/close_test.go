package cgroup

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// TestWatcherOOMFromEvidenceBeforeTheLook: the evidence read at a
// notified wake-up holds the OOM kill, then systemd removes the cgroup
// before the look reads the counter (e2e-v2, OOMPolicy=stop): the kill is
// reported, with that evidence, before the removal.
func TestWatcherOOMFromEvidenceBeforeTheLook(t *testing.T) {
	f, root := v2Tree(t)
	const path = "/system.slice/dead-drop.service"
	dir := filepath.Join(root, path)
	writeTree(t, dir, map[string]string{"cgroup.procs": "1313\n1371\n", "memory.events": "max 90\noom 0\noom_kill 0\n",
		"memory.current": "67108864\n", "memory.max": "67108864\n", "memory.peak": "67108864\n"})
	w := f.NewWatcher(Target{Path: path}, WatchOptions{})
	w.setPath(path)
	w.look()
	writeTree(t, dir, map[string]string{"memory.events": "max 95\noom 1\noom_kill 1\n"})
	preAt := time.Now()
	pre, err := f.Stats(path)
	if err != nil || pre.OOMKills == nil || *pre.OOMKills != 1 {
		t.Fatalf("evidence %+v, %v: want oom_kill 1", pre, err)
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	w.lookWith(&pre, preAt)
	var got []Event
	for len(w.events) > 0 {
		got = append(got, <-w.events)
	}
	kinds := func() (k []string) {
		for _, e := range got {
			k = append(k, e.Kind+": "+e.Detail)
		}
		return k
	}
	want := []string{"oom: oom_kill 0 → 1", "exit: cgroup removed (last pids 1313,1371)"}
	if !slices.Equal(kinds(), want) {
		t.Fatalf("events %q, want %q", kinds(), want)
	}
	if st := got[0].Stats; st == nil || *st.OOMKills != 1 || *st.MemoryPeakBytes != 67108864 || !got[0].StatsAt.Equal(preAt) {
		t.Errorf("the oom's evidence %+v at %v: want the read before the look, at %v", st, got[0].StatsAt, preAt)
	}
}

// TestWatcherCloseWatch: the close watch is on only while the latest
// evidence shows the memory within 10 % of its limit, and slows after
// closeFast.
func TestWatcherCloseWatch(t *testing.T) {
	f, root := v2Tree(t)
	const path = "/system.slice/dead-drop.service"
	dir := filepath.Join(root, path)
	writeTree(t, dir, map[string]string{"cgroup.procs": "1313\n", "memory.events": "oom_kill 0\n",
		"memory.current": "10485760\n", "memory.max": "67108864\n"})
	w := f.NewWatcher(Target{Path: path}, WatchOptions{})
	w.setPath(path)
	w.look()
	t0 := time.Date(2026, 12, 1, 15, 40, 33, 0, time.UTC)
	w.lookNotified()
	if d := w.closeEvery(t0); d != 0 {
		t.Errorf("at 16 %% of the limit: close watch every %v, want off", d)
	}
	// 90 % of 64 MiB, and the evidence closeEvidence old.
	writeTree(t, dir, map[string]string{"memory.current": "60397978\n"})
	w.lastEvAt = time.Time{}
	w.lookClose()
	if d := w.closeEvery(t0); d != closeEvery {
		t.Errorf("at 90 %% of the limit: close watch every %v, want %v", d, closeEvery)
	}
	if d := w.closeEvery(t0.Add(closeFast)); d != closeSlow {
		t.Errorf("after %v near the limit: every %v, want %v", closeFast, d, closeSlow)
	}
	writeTree(t, dir, map[string]string{"memory.current": "33554432\n"})
	w.lastEvAt = time.Time{}
	w.lookClose()
	if d := w.closeEvery(t0.Add(closeFast)); d != 0 {
		t.Errorf("back at 50 %%: close watch every %v, want off", d)
	}
	writeTree(t, dir, map[string]string{"memory.max": "max\n", "memory.current": "67108864\n"})
	w.lastEvAt = time.Time{}
	w.lookClose()
	if d := w.closeEvery(t0); d != 0 {
		t.Errorf("no limit: close watch every %v, want off", d)
	}
}

// TestEvidenceMostKnown: a read racing the removal (memory.current still
// there, memory.peak gone) gives way to the read before the look.
func TestEvidenceMostKnown(t *testing.T) {
	f, root := v2Tree(t)
	const path = "/system.slice/dead-drop.service"
	dir := filepath.Join(root, path)
	writeTree(t, dir, map[string]string{"cgroup.procs": "2981\n", "memory.events": "oom_kill 0\n",
		"memory.current": "67059712\n", "memory.max": "67108864\n", "memory.peak": "67112960\n"})
	w := f.NewWatcher(Target{Path: path}, WatchOptions{})
	w.setPath(path)
	w.look()
	writeTree(t, dir, map[string]string{"memory.events": "oom_kill 1\n"})
	preAt := time.Now()
	pre, err := f.Stats(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"memory.peak", "memory.max"} {
		if err := os.Remove(filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	writeTree(t, dir, map[string]string{"memory.current": "28672\n"})
	w.lookWith(&pre, preAt)
	e := <-w.events
	if e.Kind != KindOOM || e.Stats == nil || e.Stats.MemoryPeakBytes == nil || *e.Stats.MemoryPeakBytes != 67112960 || !e.StatsAt.Equal(preAt) {
		t.Errorf("event %s %q, evidence %+v at %v: want the oom with the fuller read before the look (at %v)", e.Kind, e.Detail, e.Stats, e.StatsAt, preAt)
	}
}

// TestOOMInExitEvidence: the look's read of the counter failed as the
// cgroup emptied, but the evidence read for the exit holds the kill: it
// is reported, first, with that evidence.
func TestOOMInExitEvidence(t *testing.T) {
	f, root := v2Tree(t)
	const path = "/system.slice/dead-drop.service"
	dir := filepath.Join(root, path)
	writeTree(t, dir, map[string]string{"cgroup.procs": "1571\n", "memory.events": "oom_kill 0\n", "memory.peak": "67112960\n"})
	w := f.NewWatcher(Target{Path: path}, WatchOptions{})
	w.setPath(path)
	w.look()
	writeTree(t, dir, map[string]string{"cgroup.procs": "", "memory.events": "oom_kill 1\n"})
	w.cur.oomFile = "" // as dropOOM leaves it after a failed read
	w.look()
	var got []string
	var oomStats *Stats
	for len(w.events) > 0 {
		e := <-w.events
		got = append(got, e.Kind+": "+e.Detail)
		if e.Kind == KindOOM {
			oomStats = e.Stats
		}
	}
	want := []string{"oom: oom_kill 0 → 1", "exit: cgroup emptied (last pids 1571)"}
	if !slices.Equal(got, want) {
		t.Fatalf("events %q, want %q", got, want)
	}
	if oomStats == nil || *oomStats.OOMKills != 1 || *oomStats.MemoryPeakBytes != 67112960 {
		t.Errorf("the oom's evidence %+v: want the exit's read, oom_kill 1", oomStats)
	}
}

// TestOOMReadAsTheCgroupGoes: the look reads the OOM counter first, so a
// look that then finds the cgroup removed still reports the kill, before
// the removal.
func TestOOMReadAsTheCgroupGoes(t *testing.T) {
	f, root := v2Tree(t)
	const path = "/system.slice/dead-drop.service"
	dir := filepath.Join(root, path)
	writeTree(t, dir, map[string]string{"cgroup.procs": "3275\n", "memory.events": "oom_kill 0\n"})
	w := f.NewWatcher(Target{Path: path}, WatchOptions{})
	w.setPath(path)
	w.look()
	writeTree(t, dir, map[string]string{"memory.events": "oom_kill 1\n"})
	// Going: cgroup.procs already gone, memory.events not yet.
	if err := os.Remove(filepath.Join(dir, "cgroup.procs")); err != nil {
		t.Fatal(err)
	}
	w.look()
	var got []string
	for len(w.events) > 0 {
		e := <-w.events
		got = append(got, e.Kind+": "+e.Detail)
	}
	want := []string{"oom: oom_kill 0 → 1", "exit: cgroup removed (last pids 3275)"}
	if !slices.Equal(got, want) {
		t.Errorf("events %q, want %q", got, want)
	}
}

// TestEvidenceKeepsTheFullerRead: a close-watch read racing the removal
// (the OOM counter read, the memory files gone) does not replace the full
// read of a moment before, but raises its counter: the OOM kill's event
// has the full read and the kill.
func TestEvidenceKeepsTheFullerRead(t *testing.T) {
	f, root := v2Tree(t)
	const path = "/system.slice/dead-drop.service"
	dir := filepath.Join(root, path)
	writeTree(t, dir, map[string]string{"cgroup.procs": "2981\n", "memory.events": "oom_kill 0\n",
		"memory.current": "67059712\n", "memory.max": "67108864\n", "memory.peak": "67112960\n"})
	w := f.NewWatcher(Target{Path: path}, WatchOptions{})
	w.setPath(path)
	w.look()
	full := time.Now()
	w.lookEvidence(true) // the close watch's read
	writeTree(t, dir, map[string]string{"memory.events": "oom_kill 1\n"})
	for _, name := range []string{"memory.peak", "memory.current", "memory.max"} {
		if err := os.Remove(filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	w.lookEvidence(true) // racing the removal: the counter alone; the look sees the kill
	if w.lastEv.MemoryPeakBytes == nil || w.lastEvAt.Before(full) {
		t.Fatalf("kept evidence %+v: the read racing the removal replaced the full one", w.lastEv)
	}
	var e Event
	select {
	case e = <-w.events:
	default:
		t.Fatal("no event")
	}
	if e.Kind != KindOOM || e.Stats == nil || e.Stats.MemoryPeakBytes == nil || *e.Stats.MemoryPeakBytes != 67112960 ||
		e.Stats.OOMKills == nil || *e.Stats.OOMKills != 1 {
		t.Errorf("event %s %q, evidence %+v: want the oom with the full read and the kill", e.Kind, e.Detail, e.Stats)
	}

	// Older than Safety, a poorer read is the latest word.
	w.lastEvAt = time.Now().Add(-2 * w.safety)
	w.keepEvidence(&Stats{OOMKills: e.Stats.OOMKills}, time.Now())
	if w.lastEv.MemoryPeakBytes != nil {
		t.Errorf("kept evidence %+v: a full read older than Safety still stands", w.lastEv)
	}
}

func TestRaised(t *testing.T) {
	n := func(v uint64) *uint64 { return &v }
	full := &Stats{OOMKills: n(0), MemoryPeakBytes: n(100), MemoryBytes: n(90)}
	if got := raised(full, &Stats{OOMKills: n(0)}); got != full {
		t.Errorf("nothing higher: got a copy %+v", got)
	}
	got := raised(full, &Stats{OOMKills: n(2), MemoryPeakBytes: n(50)})
	if got == full || *got.OOMKills != 2 || *got.MemoryPeakBytes != 100 || *got.MemoryBytes != 90 || *full.OOMKills != 0 {
		t.Errorf("raised = %+v (full now %+v): want a copy with 2 kills, the peak and memory kept", got, full)
	}
	if got := raised(&Stats{MemoryBytes: n(1)}, &Stats{MemoryPeakBytes: n(7)}); got.MemoryPeakBytes == nil || *got.MemoryPeakBytes != 7 {
		t.Errorf("a peak where there was none: %+v", got)
	}
}
