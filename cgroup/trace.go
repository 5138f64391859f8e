package cgroup

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

// TraceStats is the cheap part of a cgroup's evidence, read every second
// for the service's fine trace: what moves before a failure. A nil field
// means this kernel or layout has no such file.
type TraceStats struct {
	MemoryBytes     *uint64 // v2 memory.current; v1 memory.usage_in_bytes
	MemoryMaxBytes  *uint64 // v2 memory.max; v1 memory.limit_in_bytes; nil when unlimited
	MemoryPeakBytes *uint64 // v2 memory.peak; v1 memory.max_usage_in_bytes
	OOMKills        *uint64 // v2 memory.events oom_kill; v1 memory.oom_control oom_kill
	// MemoryHighEvents and MemoryMaxEvents count the times the cgroup hit
	// its memory.high (throttled) and memory.max (reclaim failed to stay
	// under it): v2 memory.events high and max; v1 has no high, and
	// memory.failcnt for max.
	MemoryHighEvents *uint64
	MemoryMaxEvents  *uint64
	CPUUsageUsec     *uint64  // v2 cpu.stat usage_usec; v1 cpuacct.usage (ns → µs)
	MemorySomeAvg10  *float64 // memory.pressure some avg10 (v2 and hybrid's unified only)
	MemoryFullAvg10  *float64
	PIDs             []int // cgroup.procs, reusing the slice of the previous read
}

// Tracer reads [TraceStats] of one cgroup at a time with one reused buffer
// and the cgroup's directories joined once: about ten small reads. On a
// real cgroupfs it holds the cgroup's files open between readings (not
// v1 cgroup.procs, whose PID list is cached per open file): a kernfs file
// read from offset 0 is generated afresh, so a reading is one pread a
// file, not an open, two reads and a close. A reading that finds the
// cgroup gone closes them; a held file of a cgroup removed and re-created
// between two readings fails with ENODEV and is opened again by its path.
// Close releases them. Not safe for concurrent use.
type Tracer struct {
	fs   *FS
	sr   statReader
	path string // the cgroup the dirs are of, as given
	cp   string // and cleaned
	d    dirs   // its directories
	held heldFiles
	out  TraceStats
	// seenID is the identity of the cgroup of the last ReadSeen.
	seenID uint64
	calm   bool // Calm
}

// NewTracer returns a Tracer over f.
func (f *FS) NewTracer() *Tracer {
	t := &Tracer{fs: f}
	for _, h := range f.order {
		if h.cgroupfs {
			t.held.roots = append(t.held.roots, h.dir)
		}
	}
	t.sr.held = &t.held
	return t
}

// Close closes the files the Tracer holds open. It may be used again
// afterwards, and opens them again.
func (t *Tracer) Close() { t.held.close() }

// Calm says whether the cgroup showed no warning signs at the last
// reading: while it is calm, Read and ReadSeen read its cpu.stat and
// memory.pressure with raw system calls (readsRawInTrace in read.go says
// why, and why not otherwise). A new Tracer is not calm.
func (t *Tracer) Calm(calm bool) { t.calm = calm }

// Read reads the trace evidence of the cgroup at p. It returns ErrNotFound
// when no hierarchy has the cgroup. Like [FS.Stats], a file that cannot be
// read or parsed for another reason is in the error, the rest still filled.
// The result's PIDs are valid until the next Read.
func (t *Tracer) Read(p string) (TraceStats, error) { return t.read(p, nil, false) }

// ReadSeen is Read of the cgroup a look has just seen ([Watcher.Look],
// then [Watcher.Seen]): its cgroup.procs and OOM counter file are not read
// again, the look's PIDs and counter stand. A cgroup the look did not find
// is looked for as Read does (the look may have failed for another
// reason). A new identity (the cgroup re-created) forgets the files and
// directories found absent in the one before.
func (t *Tracer) ReadSeen(s Sight) (TraceStats, error) {
	if s.Exists && s.ID != t.seenID {
		t.held.forget()
		t.seenID = s.ID
	}
	if s.Exists && s.OOMFile != "" {
		t.sr.given.file, t.sr.given.b = s.OOMFile, s.OOM
		defer func() { t.sr.given.file, t.sr.given.b = "", nil }()
	}
	return t.read(s.Path, s.PIDs, s.Exists)
}

// read is Read, or ReadSeen of a cgroup that exists with pids.
func (t *Tracer) read(p string, pids []int, exists bool) (TraceStats, error) {
	if err := t.at(p); err != nil {
		return TraceStats{}, err
	}
	d := &t.d
	sr := &t.sr
	sr.errs = sr.errs[:0]
	t.held.tick()
	t.held.trace = t.calm
	defer func() { t.held.trace = false }()
	pidsBuf := t.out.PIDs[:0]
	t.out = TraceStats{}
	found := exists
	if exists {
		pidsBuf = append(pidsBuf, pids...)
	} else {
		pidsBuf, found = t.procs(pidsBuf)
	}
	if !found && len(sr.errs) == 0 {
		// Gone (systemd restarting the unit): its held files are of a
		// removed cgroup, and its cgroup.procs is marked absent, which
		// would keep a cgroup made again unseen for absentRetry readings
		// where no other hierarchy answers (pure v2). Forget both.
		t.held.close()
		return TraceStats{}, fmt.Errorf("failed to read trace of cgroup %s: %w", p, ErrNotFound)
	}
	t.out.PIDs = pidsBuf
	o := &t.out
	o.MemoryBytes = sr.memoryBytes(d.v2mem, d.memory)
	o.MemoryMaxBytes = sr.memoryMax(d.v2mem, d.memory)
	o.MemoryPeakBytes = sr.memoryPeak(d.v2mem, d.memory)
	if b := sr.file(d.v2mem, "memory.events"); b != nil {
		o.OOMKills = sr.key(d.v2mem, "memory.events", b, "oom_kill")
		o.MemoryHighEvents = sr.key(d.v2mem, "memory.events", b, "high")
		o.MemoryMaxEvents = sr.key(d.v2mem, "memory.events", b, "max")
	}
	if o.OOMKills == nil {
		o.OOMKills = sr.keyed(d.memory, "memory.oom_control", "oom_kill", 1)
	}
	if o.MemoryMaxEvents == nil {
		o.MemoryMaxEvents = sr.uint(d.memory, "memory.failcnt", 1)
	}
	o.CPUUsageUsec = sr.cpuUsage(d.v2, d.cpuacct)
	if b := sr.file(d.v2, "memory.pressure"); b != nil {
		if v, err := parsePressure(b); err != nil {
			sr.parseErr(d.v2, "memory.pressure", err)
		} else {
			o.MemorySomeAvg10, o.MemoryFullAvg10 = &v.some, &v.full
		}
	}
	var err error
	if len(sr.errs) > 0 {
		err = errors.Join(sr.errs...)
	}
	return *o, err
}

// procs appends the cgroup's processes to buf, as [FS.Procs] finds them
// (those of the cgroups below where it has none: a delegated unit's, as
// the watcher's look counts them), and reports whether the cgroup exists.
func (t *Tracer) procs(buf []int) ([]int, bool) {
	pids, err := t.fs.procs(&t.sr, t.cp)
	switch {
	case errors.Is(err, ErrNotFound):
		return buf, false
	case err != nil:
		t.sr.errs = append(t.sr.errs, err)
		return buf, false
	}
	return append(buf, pids...), true
}

// Stats reads the whole evidence of the cgroup at p, as [FS.Stats] does,
// from the files the Tracer holds: a recorder's sample reads the same
// cgroup its trace does, one pread a file. It returns ErrNotFound when no
// hierarchy has the cgroup (and closes the held files, as Read does).
func (t *Tracer) Stats(p string) (Stats, error) {
	if err := t.at(p); err != nil {
		return Stats{}, err
	}
	if !t.fs.exists(t.cp) {
		t.held.close()
		return Stats{}, fmt.Errorf("failed to read stats of cgroup %s: %w", p, ErrNotFound)
	}
	sr := &t.sr
	sr.errs = sr.errs[:0]
	t.held.tick()
	s := sr.stats(t.d)
	var err error
	if len(sr.errs) > 0 {
		err = errors.Join(sr.errs...)
	}
	return s, err
}

// Procs is [FS.Procs] of the cgroup at p, its cgroup2 cgroup.procs read
// from the file the Tracer holds. A cgroup found gone closes the held
// files, as Read does.
func (t *Tracer) Procs(p string) ([]int, error) {
	if err := t.at(p); err != nil {
		return nil, err
	}
	pids, err := t.fs.procs(&t.sr, t.cp) // not a reading of its own: the sample's Stats counts it
	if errors.Is(err, ErrNotFound) {
		t.held.close()
	}
	return pids, err
}

// at points the Tracer at the cgroup p: its directories joined once, the
// files of another cgroup closed.
func (t *Tracer) at(p string) error {
	if p == t.path {
		return nil
	}
	cp, err := cleanPath(p)
	if err != nil {
		return err
	}
	t.held.close() // another cgroup's files
	t.path, t.cp = p, cp
	t.d = t.fs.dirsOf(cp)
	// A cgroup2 hierarchy without the memory or pids controller (hybrid's
	// unified, as a rule) has none of their files anywhere: not looked
	// for at every reading.
	if t.fs.v2 != "" {
		if b, _, err := t.sr.r.read(filepath.Join(t.fs.v2, "cgroup.controllers"), maxFileSize, false); err == nil {
			f := strings.Fields(string(b))
			if !slices.Contains(f, "memory") {
				t.d.v2mem = ""
			}
			if !slices.Contains(f, "pids") {
				t.d.v2pids = ""
			}
		}
	}
	return nil
}

// key returns key of the keyed file b, read from dir/name.
func (sr *statReader) key(dir, name string, b []byte, key string) *uint64 {
	v, ok, err := parseKeyed(b, key)
	if err != nil {
		sr.parseErr(dir, name, err)
		return nil
	}
	if !ok {
		return nil
	}
	return &v
}

// heldFiles are the files a [Tracer] keeps open, by directory and name,
// under roots: the hierarchies on a real cgroupfs (a fixture's files are
// replaced, not regenerated). A file found absent in its cgroup's
// directory is not looked for again until absentRetry readings later, or
// until a held file fails (its cgroup was removed, and may be re-created
// with other files); a file whose directory is missing is looked for
// again as dirThere says. A [Tracer] closes them all when a reading finds
// its cgroup gone.
type heldFiles struct {
	roots   []string
	fds     map[[2]string]int
	absent  map[[2]string]int // the reading at which the file was found absent
	missing map[string]miss   // directories found missing
	n       int               // readings so far (tick)
	trace   bool              // a trace reading of a calm cgroup is being made (readsRawInTrace)
}

// miss is a directory found missing: at the reading at, and at streak
// looks in a row.
type miss struct{ at, streak int }

// due returns the reading from which the directory is looked for again:
// the next one after a first miss (a cgroup that systemd is making
// hierarchy by hierarchy is there by then), then 2, 4 and 8 readings
// later, and at most absentRetry: a hierarchy that has no cgroup for the
// unit (its controller not enabled for it) costs a failed stat a reading
// no more than briefly.
func (m miss) due() int { return m.at + min(1<<min(m.streak-1, 4), absentRetry) }

// absentRetry is how many readings a file found absent is taken for
// absent without looking: at the trace's 1 s, a file that appears (a
// controller enabled later) is read within 10 s.
const absentRetry = 10

// errAbsent is a file found absent at a recent reading.
var errAbsent = fmt.Errorf("cgroup file absent at a recent reading: %w", fs.ErrNotExist)

// tick counts a reading.
func (h *heldFiles) tick() { h.n++ }

// holds reports whether files of dir are kept open.
func (h *heldFiles) holds(dir string) bool {
	for _, r := range h.roots {
		if strings.HasPrefix(dir, r) && (len(dir) == len(r) || dir[len(r)] == '/') {
			return true
		}
	}
	return false
}

// read returns the content of dir/name, at most limit bytes, from the file
// held open, or opened now and then held. A held file that fails is closed
// (a removed cgroup's, with ENODEV) and opened again by its path once.
// With single, the file is one seq_file record (every cgroup file but
// cgroup.procs and tasks): a read shorter than the buffer is all of it,
// and the read at EOF is left out.
func (h *heldFiles) read(r *reader, dir, name string, limit int, single bool) ([]byte, error) {
	key := [2]string{dir, name}
	if fd, ok := h.fds[key]; ok {
		// Held, so read before: raw where the file never waits (readsRaw)
		// or, at the trace's reading of a calm cgroup, where a wrapped
		// call would wake sysmon (readsRawInTrace); not a hierarchy's root, whose v1 usage may be
		// flushed statistics and whose flush is the whole tree's.
		raw := (readsRaw(name) || h.trace && readsRawInTrace(name)) && !slices.Contains(h.roots, dir)
		b, err := r.readAt0(fd, "", limit, endOf(name, single), raw) // an error is not returned: the file is opened again
		if err == nil {
			return b, nil
		}
		unix.Close(fd)
		delete(h.fds, key)
		clear(h.absent)  // a removed cgroup: another may have other files
		clear(h.missing) // and be in other hierarchies
	}
	if at, ok := h.absent[key]; ok && h.n-at < absentRetry {
		return nil, errAbsent
	}
	path := filepath.Join(dir, name)
	if h.missingNow(dir) {
		return nil, &fs.PathError{Op: "open", Path: path, Err: unix.ENOENT} // its directory, found missing
	}
	fd, _, err := openFile(path, false)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) && h.dirThere(dir) {
			if h.absent == nil {
				h.absent = make(map[[2]string]int)
			}
			h.absent[key] = h.n
		}
		return nil, err
	}
	delete(h.absent, key)
	delete(h.missing, dir)
	b, err := r.readAt0(fd, path, limit, endOf(name, single), false) // a first read
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	if h.fds == nil {
		h.fds = make(map[[2]string]int)
	}
	h.fds[key] = fd
	return b, nil
}

// dirThere reports whether the cgroup directory dir exists, as a file
// found absent in it is taken for absent only then: a cgroup not there
// (yet) in this hierarchy, as systemd makes a unit's cgroup one hierarchy
// after another on hybrid and v1 hosts, has its files looked for again at
// the next reading, not absentRetry readings later. A directory found
// missing is taken for missing until its miss is due; a held file that
// fails (the cgroup removed, maybe made again) forgets every miss.
func (h *heldFiles) dirThere(dir string) bool {
	m, ok := h.missing[dir]
	if ok && h.n < m.due() {
		return false
	}
	var st unix.Stat_t
	for {
		err := unix.Stat(dir, &st)
		if err == unix.EINTR {
			continue
		}
		if err == nil {
			delete(h.missing, dir)
			return true
		}
		break
	}
	if h.missing == nil {
		h.missing = make(map[string]miss)
	}
	h.missing[dir] = miss{at: h.n, streak: m.streak + 1}
	return false
}

// missingNow reports whether dir was found missing and is not due to be
// looked for again.
func (h *heldFiles) missingNow(dir string) bool {
	m, ok := h.missing[dir]
	return ok && h.n < m.due()
}

// forget forgets the files found absent and the directories found
// missing: they were another cgroup's.
func (h *heldFiles) forget() {
	clear(h.absent)
	clear(h.missing)
}

// close closes every held file and forgets the absent ones.
func (h *heldFiles) close() {
	for _, fd := range h.fds {
		unix.Close(fd)
	}
	clear(h.fds)
	clear(h.absent)
	clear(h.missing)
}
