package recorder

import (
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"
)

// procsRestored restores GOMAXPROCS when the test ends.
func procsRestored(t *testing.T) {
	was := runtime.GOMAXPROCS(0)
	t.Cleanup(func() { runtime.GOMAXPROCS(was) })
}

func TestProcs(t *testing.T) {
	procsRestored(t)
	var none *Procs
	runtime.GOMAXPROCS(3)
	none.Enter()
	none.Leave()
	if n := runtime.GOMAXPROCS(0); n != 3 {
		t.Fatalf("a nil Procs set GOMAXPROCS to %d", n)
	}
	p := NewProcs(1, 2)
	want := func(n int, when string) {
		t.Helper()
		if got := runtime.GOMAXPROCS(0); got != n {
			t.Fatalf("%s: GOMAXPROCS %d, want %d", when, got, n)
		}
	}
	want(1, "idle")
	p.Enter()
	want(2, "in a piece of work")
	p.Enter()
	p.Leave()
	want(2, "in a piece of work, after a nested one")
	p.Leave()
	want(1, "after it")
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				p.Enter()
				if n := runtime.GOMAXPROCS(0); n != 2 {
					t.Errorf("GOMAXPROCS %d in overlapping pieces of work", n)
				}
				p.Leave()
			}
		})
	}
	wg.Wait()
	want(1, "after overlapping pieces of work")
	defer func() {
		if recover() == nil {
			t.Error("Leave without Enter did not panic")
		}
	}()
	p.Leave()
}

// A recorder runs its long work with a second P and is on one P again
// after it: a tick's host scan, a trigger's sample and the capture's
// write, the reading of the last words (seen while the journal is read).
func TestProcsMarkLongWork(t *testing.T) {
	procsRestored(t)
	procs := NewProcs(1, 2)
	now := time.Now()
	j := fakeJournal(t, now, "bye")
	release := filepath.Join(t.TempDir(), "release")
	script := "#!/bin/sh\nwhile [ ! -e " + release + " ]; do sleep 0.01; done\n"
	old, err := os.ReadFile(j.Path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(j.Path, append([]byte(script), old[len("#!/bin/sh\n"):]...), 0o755); err != nil {
		t.Fatal(err)
	}
	opt := Options{KmsgPath: filepath.Join(t.TempDir(), "kmsg"), Journalctl: j, Procs: procs}
	r := newTestRecorderOpt(t, func(c *Config) { c.FailureThreshold, c.JournalLines = 1, 1 }, opt)
	idle := func(when string) {
		t.Helper()
		procs.mu.Lock()
		n := procs.n
		procs.mu.Unlock()
		if got := runtime.GOMAXPROCS(0); got != 1 || n != 0 {
			t.Fatalf("%s: GOMAXPROCS %d, %d pieces of work running; want 1 and none", when, got, n)
		}
	}
	entered := func() int {
		procs.mu.Lock()
		defer procs.mu.Unlock()
		return procs.entered
	}
	idle("before")
	r.tick(t.Context(), now)
	<-r.checkDone
	r.checking = false
	if entered() == 0 {
		t.Fatal("the tick's host scan ran unmarked")
	}
	idle("after a tick")
	before := entered()
	r.onCheck(check(true, ""))
	r.onCheck(check(false, "HTTP 503"))
	if r.inc == nil {
		t.Fatal("no incident")
	}
	if got := entered() - before; got < 2 {
		t.Fatalf("the trigger marked %d pieces of work, want its sample and its capture's write", got)
	}
	idle("after the trigger's capture")
	deadline := time.Now().Add(10 * time.Second)
	for runtime.GOMAXPROCS(0) != 2 {
		if time.Now().After(deadline) {
			t.Fatal("the last words' reading did not run on 2 Ps within 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := os.WriteFile(release, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	select {
	case w := <-r.words.done:
		r.onLastWords(w)
	case <-time.After(10 * time.Second):
		t.Fatal("no last words within 10s")
	}
	if _, c := readOnly(t, r); len(c.Journal) != 1 {
		t.Fatalf("journal %+v, want its one line", c.Journal)
	}
	idle("after the last words")
}
