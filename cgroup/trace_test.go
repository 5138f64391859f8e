package cgroup

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// The trace's reading and memory.stat's breakdown, v2 and v1 (hybrid: the
// v1 memory hierarchy beside a cgroup2 one without the memory controller).
func TestTraceAndMemoryStat(t *testing.T) {
	v2 := t.TempDir()
	writeTree(t, v2, map[string]string{
		"cgroup.controllers":        "memory pids cpu\n",
		"x.service/cgroup.procs":    "12\n34\n",
		"x.service/memory.current":  "104857600\n",
		"x.service/memory.max":      "134217728\n",
		"x.service/memory.peak":     "110000000\n",
		"x.service/memory.events":   "low 0\nhigh 7\nmax 3\noom 1\noom_kill 1\noom_group_kill 0\n",
		"x.service/cpu.stat":        "usage_usec 5000\nuser_usec 4000\nsystem_usec 1000\n",
		"x.service/pids.current":    "9\n",
		"x.service/memory.pressure": "some avg10=12.50 avg60=1.00 avg300=0.00 total=1\nfull avg10=3.25 avg60=0.00 avg300=0.00 total=1\n",
		"x.service/memory.stat":     "anon 20971520\nfile 78643200\nkernel 2097152\nkernel_stack 16384\nshmem 1048576\nsock 4096\n",
	})
	f, err := NewFS(v2)
	if err != nil {
		t.Fatal(err)
	}
	tr := f.NewTracer()
	st, err := tr.Read("/x.service")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name      string
		got, want *uint64
	}{
		{"memory", st.MemoryBytes, u64(104857600)}, {"max", st.MemoryMaxBytes, u64(134217728)},
		{"peak", st.MemoryPeakBytes, u64(110000000)}, {"oom_kill", st.OOMKills, u64(1)},
		{"high", st.MemoryHighEvents, u64(7)}, {"max events", st.MemoryMaxEvents, u64(3)},
		{"cpu", st.CPUUsageUsec, u64(5000)},
	} {
		if !equalPtr(c.got, c.want) {
			t.Errorf("%s = %s, want %s", c.name, show(c.got), show(c.want))
		}
	}
	if st.MemorySomeAvg10 == nil || *st.MemorySomeAvg10 != 12.5 || st.MemoryFullAvg10 == nil || *st.MemoryFullAvg10 != 3.25 {
		t.Errorf("pressure %v %v", st.MemorySomeAvg10, st.MemoryFullAvg10)
	}
	if !slices.Equal(st.PIDs, []int{12, 34}) {
		t.Errorf("pids %v", st.PIDs)
	}
	if _, err := tr.Read("/gone.service"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Read(gone) = %v, want ErrNotFound", err)
	}
	// ReadSeen takes the processes of the look made just before: the
	// rest as Read reads it, cgroup.procs not read (the fixture's says 12,
	// 34). A look that did not find the cgroup (it may have failed for
	// another reason) has the Tracer look for it as Read does.
	seen, err := tr.ReadSeen(Sight{Path: "/x.service", ID: 1, Exists: true, PIDs: []int{7}})
	if err != nil || !slices.Equal(seen.PIDs, []int{7}) || !equalPtr(seen.MemoryBytes, st.MemoryBytes) || !equalPtr(seen.OOMKills, st.OOMKills) {
		t.Errorf("ReadSeen([7]) = %+v, %v; want the PIDs given, the rest read", seen, err)
	}
	// and the look's OOM counter: memory.events is not read again (the
	// fixture's says 1 oom_kill, 7 high, 3 max).
	given := Sight{Path: "/x.service", ID: 1, Exists: true, OOMFile: filepath.Join(v2, "x.service", "memory.events"), OOM: []byte("high 8\nmax 4\noom_kill 2\n")}
	if seen, err = tr.ReadSeen(given); err != nil || !equalPtr(seen.OOMKills, u64(2)) || !equalPtr(seen.MemoryHighEvents, u64(8)) || !equalPtr(seen.MemoryMaxEvents, u64(4)) {
		t.Errorf("ReadSeen with the look's memory.events = oom_kill %s high %s max %s, %v; want 2, 8, 4",
			show(seen.OOMKills), show(seen.MemoryHighEvents), show(seen.MemoryMaxEvents), err)
	}
	if seen, err = tr.ReadSeen(Sight{Path: "/x.service", ID: 1, Exists: true}); err != nil || len(seen.PIDs) != 0 || seen.MemoryBytes == nil || !equalPtr(seen.OOMKills, u64(1)) {
		t.Errorf("ReadSeen of an empty cgroup = %+v, %v; want no PIDs, the rest read", seen, err)
	}
	if seen, err = tr.ReadSeen(Sight{Path: "/x.service"}); err != nil || !slices.Equal(seen.PIDs, []int{12, 34}) {
		t.Errorf("ReadSeen of a cgroup the look did not find = %+v, %v; want it read as Read does", seen, err)
	}
	if _, err := tr.ReadSeen(Sight{Path: "/gone.service"}); !errors.Is(err, ErrNotFound) {
		t.Errorf("ReadSeen(gone) = %v, want ErrNotFound", err)
	}
	s, err := f.Stats("/x.service")
	if err != nil {
		t.Fatal(err)
	}
	m := s.MemoryStat
	if m == nil || !equalPtr(m.Anon, u64(20971520)) || !equalPtr(m.File, u64(78643200)) || !equalPtr(m.Kernel, u64(2097152)) ||
		!equalPtr(m.Shmem, u64(1048576)) || !equalPtr(m.Sock, u64(4096)) {
		t.Errorf("v2 memory_stat %+v", m)
	}

	hy := t.TempDir()
	writeTree(t, hy, map[string]string{
		"unified/cgroup.controllers":                      "\n",
		"unified/x.service/cgroup.procs":                  "56\n",
		"memory/cgroup.procs":                             "1\n",
		"memory/x.service/cgroup.procs":                   "56\n",
		"memory/x.service/memory.usage_in_bytes":          "4096000\n",
		"memory/x.service/memory.limit_in_bytes":          "9223372036854771712\n",
		"memory/x.service/memory.failcnt":                 "5\n",
		"memory/x.service/memory.oom_control":             "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
		"memory/x.service/memory.stat":                    "cache 100\nrss 200\ntotal_cache 3000\ntotal_rss 1000\ntotal_shmem 10\n",
		"memory/x.service/memory.kmem.usage_in_bytes":     "500\n",
		"memory/x.service/memory.kmem.tcp.usage_in_bytes": "0\n",
	})
	f, err = NewFS(hy)
	if err != nil {
		t.Fatal(err)
	}
	st, err = f.NewTracer().Read("/x.service")
	if err != nil {
		t.Fatal(err)
	}
	if !equalPtr(st.MemoryBytes, u64(4096000)) || st.MemoryMaxBytes != nil || !equalPtr(st.MemoryMaxEvents, u64(5)) ||
		st.MemoryHighEvents != nil || !equalPtr(st.OOMKills, u64(2)) || !slices.Equal(st.PIDs, []int{56}) {
		t.Errorf("v1 trace %+v", st)
	}
	st, err = f.NewTracer().ReadSeen(Sight{Path: "/x.service", ID: 1, Exists: true, PIDs: []int{56},
		OOMFile: filepath.Join(hy, "memory", "x.service", "memory.oom_control"), OOM: []byte("oom_kill_disable 0\nunder_oom 0\noom_kill 3\n")})
	if err != nil || !equalPtr(st.OOMKills, u64(3)) || !equalPtr(st.MemoryBytes, u64(4096000)) {
		t.Errorf("v1 ReadSeen with the look's memory.oom_control: oom_kill %s memory %s, %v; want 3 (the look's), the rest read",
			show(st.OOMKills), show(st.MemoryBytes), err)
	}
	s, _ = f.Stats("/x.service")
	m = s.MemoryStat
	if m == nil || !equalPtr(m.Anon, u64(1000)) || !equalPtr(m.File, u64(3000)) || !equalPtr(m.Shmem, u64(10)) ||
		!equalPtr(m.Kernel, u64(500)) || !equalPtr(m.Sock, u64(0)) {
		t.Errorf("v1 memory_stat %+v", m)
	}
}

// heldFiles: a file read once is held; a file found absent is taken for
// absent for absentRetry readings, then looked for again; a held file that
// fails is opened again by its path and makes every absent file be looked
// for again.
func TestHeldFiles(t *testing.T) {
	dir := t.TempDir()
	h := &heldFiles{roots: []string{dir}}
	t.Cleanup(h.close)
	var r reader
	if !h.holds(dir) || !h.holds(dir+"/x.service") || h.holds(dir+"x") {
		t.Errorf("holds: %v %v %v, want true true false", h.holds(dir), h.holds(dir+"/x.service"), h.holds(dir+"x"))
	}
	writeTree(t, dir, map[string]string{"memory.current": "4096\n"})
	b, err := h.read(&r, dir, "memory.current", maxFileSize, true)
	if err != nil || string(b) != "4096\n" || len(h.fds) != 1 {
		t.Fatalf("first read: %q, %v, %d held", b, err, len(h.fds))
	}
	if _, err := h.read(&r, dir, "pids.current", maxFileSize, true); !errors.Is(err, fs.ErrNotExist) || errors.Is(err, errAbsent) {
		t.Errorf("absent file: %v, want ENOENT from its open", err)
	}
	writeTree(t, dir, map[string]string{"pids.current": "3\n"})
	for i := 1; i < absentRetry; i++ {
		h.tick()
		if _, err := h.read(&r, dir, "pids.current", maxFileSize, true); !errors.Is(err, errAbsent) {
			t.Fatalf("reading %d after it was absent: %v, want errAbsent", i, err)
		}
	}
	h.tick()
	if b, err := h.read(&r, dir, "pids.current", maxFileSize, true); err != nil || string(b) != "3\n" {
		t.Errorf("after %d readings: %q, %v, want it read", absentRetry, b, err)
	}

	// A held file that fails (here: its descriptor closed behind its back,
	// as a removed cgroup's fails with ENODEV) is opened again by its path,
	// and every file found absent is looked for again at once.
	if _, err := h.read(&r, dir, "memory.peak", maxFileSize, true); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("memory.peak: %v, want absent", err)
	}
	writeTree(t, dir, map[string]string{"memory.peak": "8192\n", "memory.current": "2048\n"})
	fd := h.fds[[2]string{dir, "memory.current"}]
	unix.Close(fd)
	if b, err := h.read(&r, dir, "memory.current", maxFileSize, true); err != nil || string(b) != "2048\n" {
		t.Errorf("after its descriptor failed: %q, %v", b, err)
	}
	if b, err := h.read(&r, dir, "memory.peak", maxFileSize, true); err != nil || string(b) != "8192\n" {
		t.Errorf("an absent file after a held one failed: %q, %v, want it read", b, err)
	}
	h.close()
	if len(h.fds) != 0 || len(h.absent) != 0 {
		t.Errorf("after close: %d held, %d absent", len(h.fds), len(h.absent))
	}
}

// A Tracer's Stats and Procs read what FS.Stats and FS.Procs read: v2, v1
// and hybrid fixtures (hybrid's unified without the memory controller, whose
// files it does not look for there), the second reading from the files the
// first one held (held here although a fixture is no cgroupfs: its files
// are not changed during the test).
func TestTracerStatsAsFSStats(t *testing.T) {
	for _, fixture := range []string{"testdata/v2", "testdata/v1", "testdata/hybrid"} {
		root := t.TempDir()
		if err := os.CopyFS(root, os.DirFS(fixture)); err != nil {
			t.Fatal(err)
		}
		f, err := NewFS(root)
		if err != nil {
			t.Fatal(err)
		}
		const p = "/system.slice/dead-drop.service"
		want, werr := f.Stats(p)
		if werr != nil {
			t.Fatalf("%s: FS.Stats: %v", fixture, werr)
		}
		if want.CPUUsageUsec == nil || want.MemoryBytes == nil {
			t.Fatalf("%s: the fixture lacks cpu or memory: %+v", fixture, want)
		}
		tr := heldTracer(f)
		t.Cleanup(tr.Close)
		for i := range 2 {
			got, err := tr.Stats(p)
			if err != nil || !reflect.DeepEqual(got, want) {
				t.Errorf("%s: reading %d: Tracer.Stats = %s, %v; want %s", fixture, i, showStats(got), err, showStats(want))
			}
			if len(tr.held.fds) < 5 {
				t.Errorf("%s: reading %d: %d files held, want every file Stats read", fixture, i, len(tr.held.fds))
			}
		}
		wantPIDs, werr := f.Procs(p)
		if pids, err := tr.Procs(p); werr != nil || len(wantPIDs) == 0 || err != nil || !slices.Equal(pids, wantPIDs) {
			t.Errorf("%s: Tracer.Procs = %v, %v; FS.Procs = %v, %v", fixture, pids, err, wantPIDs, werr)
		}
		if _, err := tr.Procs("/system.slice/gone.service"); !errors.Is(err, ErrNotFound) {
			t.Errorf("%s: Procs(gone) = %v, want ErrNotFound", fixture, err)
		}
		if _, err := tr.Stats("/system.slice/gone.service"); !errors.Is(err, ErrNotFound) {
			t.Errorf("%s: Stats(gone) = %v, want ErrNotFound", fixture, err)
		}
	}
}

// heldTracer is f's Tracer holding the files of every hierarchy, a
// fixture's too.
func heldTracer(f *FS) *Tracer {
	tr := f.NewTracer()
	tr.held.roots = tr.held.roots[:0]
	for _, h := range f.order {
		tr.held.roots = append(tr.held.roots, h.dir)
	}
	return tr
}

// hybridCopy returns an FS over a copy of the hybrid fixture, which a test
// may change, and its root.
func hybridCopy(t *testing.T) (*FS, string) {
	t.Helper()
	root := t.TempDir()
	if err := os.CopyFS(root, os.DirFS("testdata/hybrid")); err != nil {
		t.Fatal(err)
	}
	f, err := NewFS(root)
	if err != nil {
		t.Fatal(err)
	}
	return f, root
}

// On hybrid and v1 hosts systemd makes a unit's cgroup one hierarchy after
// another: a reading that finds it in one (name=systemd, unified) but not
// yet in another (memory) must not take that hierarchy's files for absent
// for absentRetry readings, or the service's memory, OOM kills and peak
// are missing from every sample until then.
func TestTracerCgroupMadeHierarchyByHierarchy(t *testing.T) {
	f, root := hybridCopy(t)
	const p = "/system.slice/dead-drop.service"
	want, err := f.Stats(p)
	if err != nil || want.MemoryBytes == nil || want.OOMKills == nil {
		t.Fatalf("FS.Stats: %s, %v; the fixture lacks v1 memory", showStats(want), err)
	}
	mem := filepath.Join(root, "memory", p)
	if err := os.Rename(mem, mem+".later"); err != nil {
		t.Fatal(err)
	}
	tr := heldTracer(f)
	t.Cleanup(tr.Close)
	got, err := tr.Stats(p)
	if err != nil || got.MemoryBytes != nil || got.CPUUsageUsec == nil {
		t.Fatalf("before the memory hierarchy has it: %s, %v; want no memory, the rest read", showStats(got), err)
	}
	if err := os.Rename(mem+".later", mem); err != nil {
		t.Fatal(err)
	}
	if got, err = tr.Stats(p); err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("at the next reading: %s, %v; want %s", showStats(got), err, showStats(want))
	}
}

// showStats prints every value of s.
func showStats(s Stats) string {
	var b strings.Builder
	v := reflect.ValueOf(s)
	for i := range v.NumField() {
		fmt.Fprintf(&b, "%s=", v.Type().Field(i).Name)
		if f := v.Field(i); f.IsNil() {
			b.WriteString("nil ")
		} else {
			fmt.Fprintf(&b, "%+v ", f.Elem().Interface())
		}
	}
	return b.String()
}

// A hierarchy that has no cgroup for the unit (its controller not enabled
// for it) is looked at again after 1, 2, 4, 8 and then every absentRetry
// readings, not at every one; a held file that fails (its cgroup removed,
// maybe made again) has it looked at again at the next reading.
func TestTracerHierarchyWithoutTheCgroup(t *testing.T) {
	f, root := hybridCopy(t)
	const p = "/system.slice/dead-drop.service"
	mem := filepath.Join(root, "memory", p)
	hide := func() {
		if err := os.Rename(mem, mem+".away"); err != nil {
			t.Fatal(err)
		}
	}
	show := func() {
		if err := os.Rename(mem+".away", mem); err != nil {
			t.Fatal(err)
		}
	}
	hide()
	tr := heldTracer(f)
	t.Cleanup(tr.Close)
	// read makes reading n (1-based), as a recorder's sample does, and
	// reports whether it had memory.
	read := func(n int) bool {
		t.Helper()
		if _, err := tr.Procs(p); err != nil {
			t.Fatalf("reading %d: Procs: %v", n, err)
		}
		st, err := tr.Stats(p)
		if err != nil || st.CPUUsageUsec == nil {
			t.Fatalf("reading %d: %s, %v", n, showStats(st), err)
		}
		return st.MemoryBytes != nil
	}
	// Missing at readings 1, 2, 4, 8, 16, 26: each miss waits twice as
	// long as the one before, at most absentRetry readings.
	looks := []int{1, 2, 4, 8, 16, 16 + absentRetry, 16 + 2*absentRetry}
	for n := 1; n <= looks[len(looks)-1]; n++ {
		if n == looks[len(looks)-1] {
			show() // after the reading before: seen at this one, due
		}
		if got, want := read(n), n == looks[len(looks)-1]; got != want {
			t.Fatalf("reading %d: memory read %v, want %v", n, got, want)
		}
		if n == 16+absentRetry+1 {
			show() // not due: unseen at the next reading
		}
		if n == 16+absentRetry+2 {
			hide()
		}
	}
	// Missing again, for a while (a new Tracer: the held files of memory
	// would still read the fixture's): then a held file fails, as every
	// file of a removed cgroup does. The next reading looks for the
	// hierarchy.
	tr.Close()
	hide()
	tr = heldTracer(f)
	t.Cleanup(tr.Close)
	for n := 1; n <= 5; n++ {
		if read(n) {
			t.Fatalf("reading %d after hiding memory: memory read", n)
		}
	}
	show()
	if read(6) {
		t.Fatal("reading 6: memory read before its miss was due")
	}
	procs := [2]string{filepath.Join(root, "unified", p), "cgroup.procs"}
	fd, ok := tr.held.fds[procs]
	if !ok {
		t.Fatalf("cgroup.procs not held: %v", tr.held.fds)
	}
	// Its next read fails, as a removed cgroup's does (ENODEV): a
	// directory in its place (EISDIR), the number still the Tracer's.
	dfd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Dup3(dfd, fd, unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	unix.Close(dfd)
	if !read(7) {
		t.Error("after a held file failed: memory not read at the next reading")
	}

	// Missing for a long while (readings in the thousands): looked for
	// every absentRetry readings all the same. Then a look that sees the
	// cgroup made again (another identity) has it looked for at once.
	tr.Close()
	hide()
	tr = heldTracer(f)
	t.Cleanup(tr.Close)
	for n := 1; n <= 2000; n++ {
		if read(n) {
			t.Fatalf("reading %d: memory read while hidden", n)
		}
	}
	if m := tr.held.missing[mem]; m.due()-m.at != absentRetry {
		t.Errorf("after 2000 readings missing: looked for again %d readings after the last look, want %d", m.due()-m.at, absentRetry)
	}
	show()
	seenAt := 0
	for n := 2001; n <= 2001+absentRetry && seenAt == 0; n++ {
		if read(n) {
			seenAt = n
		}
	}
	if seenAt == 0 {
		t.Fatalf("after 2000 readings missing: memory not read within %d readings of its return", absentRetry)
	}
	tr.Close()
	hide()
	tr = heldTracer(f)
	t.Cleanup(tr.Close)
	sight := Sight{Path: p, ID: 1, Exists: true}
	for n := 1; n <= 20; n++ {
		if st, err := tr.ReadSeen(sight); err != nil || st.MemoryBytes != nil {
			t.Fatalf("ReadSeen %d while hidden: %s, %v", n, showStats(Stats{MemoryBytes: st.MemoryBytes}), err)
		}
	}
	show()
	sight.ID = 2 // made again
	if st, err := tr.ReadSeen(sight); err != nil || st.MemoryBytes == nil {
		t.Errorf("ReadSeen of the cgroup made again: memory %v, %v; want it read at once", st.MemoryBytes, err)
	}
}
