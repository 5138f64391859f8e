package cgroup

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"
)

// Defaults of [WatchOptions].
const (
	DefaultPoll    = 50 * time.Millisecond
	DefaultResolve = time.Second
)

// eventBuffer is the capacity of [Watcher.Events].
const eventBuffer = 64

// Target is what a [Watcher] watches: the cgroup of Unit, or the explicit
// cgroup Path, which overrides the unit lookup.
type Target struct {
	Unit string // e.g. "dead-drop.service", "demo@x.service"
	Path string // e.g. "/system.slice/dead-drop.service"
}

// Event is one transition of the watched cgroup.
type Event struct {
	Kind   string    // KindExit or KindOOM
	At     time.Time // when the look that saw it ran
	Path   string    // the cgroup path
	Detail string    // e.g. "cgroup emptied (last pids 1234)", "oom_kill 0 → 1"
}

// WatchOptions tune a [Watcher]. Zero values mean the defaults.
type WatchOptions struct {
	Poll    time.Duration   // cadence of the fallback look; default 50 ms
	Resolve time.Duration   // cadence of the unit lookup while its cgroup is unknown; default 1 s
	Logger  *zerolog.Logger // nil: silent
}

// Watcher watches one cgroup and reports its exits and OOM kills on
// [Watcher.Events]. Create it with [FS.NewWatcher]; [Watcher.Run] does the
// work. Path, PIDs and Dropped are safe for concurrent use.
type Watcher struct {
	fs      *FS
	target  Target
	poll    time.Duration
	resolve time.Duration
	log     zerolog.Logger

	events  chan Event
	dropped atomic.Uint64
	started atomic.Bool
	// testPoll, set before Run, lets a test ask for a look and wait for its
	// end (nil, never ready, otherwise).
	testPoll chan chan struct{}

	ready chan struct{} // closed after the first look

	mu   sync.Mutex
	path string // the cgroup path watched, "" when unknown
	pids []int  // the PIDs of the last look

	// Owned by Run's goroutine.
	runPath   string
	cands     []candidate // where the cgroup may be, in Procs order
	cur       attachment  // where it was found at the last look
	m         machine
	r         reader
	pidBuf    []int
	out       []change
	fsw       *fsnotify.Watcher
	watched   []string // files under inotify watch
	watchedID uint64   // the cgroup identity they belong to; 0: none
}

// candidate is the cgroup's directory in one hierarchy.
type candidate struct {
	dir, procs string
	v2         bool
	hold       bool // keep cgroup.procs open: v2 on a real cgroupfs
}

// attachment is the hierarchy where the cgroup was found, with the files a
// look reads there: held open where a fresh read from offset 0 regenerates
// them (v2 cgroup.procs, the OOM counters): a look then costs a fifth of
// opening them each time.
type attachment struct {
	ok       bool
	cand     candidate
	id       uint64 // the cgroup's identity: the inode of its cgroup.procs
	procsFD  int    // v2 cgroup.procs held open; -1 for v1 (its PID list is cached per open file) and fixtures
	events   string // v2 cgroup.events; "" outside v2
	oomFile  string // v2 memory.events or v1 memory.oom_control; "" when neither exists
	oomFD    int    // oomFile held open; -1 when none or on a fixture
	oomWatch bool   // oomFile notifies (v2 memory.events)
}

// NewWatcher returns a watcher of t. Nothing happens until Run.
func (f *FS) NewWatcher(t Target, o WatchOptions) *Watcher {
	w := &Watcher{
		fs:      f,
		target:  t,
		poll:    o.Poll,
		resolve: o.Resolve,
		log:     zerolog.Nop(),
		events:  make(chan Event, eventBuffer),
		ready:   make(chan struct{}),
		cur:     attachment{procsFD: -1, oomFD: -1},
	}
	if w.poll <= 0 {
		w.poll = DefaultPoll
	}
	if w.resolve <= 0 {
		w.resolve = DefaultResolve
	}
	if o.Logger != nil {
		w.log = *o.Logger
	}
	return w
}

// Events returns the channel of events. It is buffered; when the reader
// falls behind, events are dropped and counted ([Watcher.Dropped]) rather
// than delaying the watch. Run closes it when it returns.
func (w *Watcher) Events() <-chan Event { return w.events }

// Ready is closed once Run has resolved the target and made its first look,
// so that Path and PIDs answer for the cgroup as it is, not "unknown".
func (w *Watcher) Ready() <-chan struct{} { return w.ready }

// Dropped returns how many events were dropped because Events was full.
func (w *Watcher) Dropped() uint64 { return w.dropped.Load() }

// Path returns the cgroup path currently watched, "" while unknown.
func (w *Watcher) Path() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.path
}

// PIDs returns a copy of the PIDs seen at the last look, ascending; empty
// when the cgroup was empty or absent.
func (w *Watcher) PIDs() []int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.pids)
}

// Run watches until ctx is done, then closes Events and returns nil. It
// fails when the target names neither a unit nor a path, or when it is
// called a second time. Without inotify (no instance left) it still works,
// by polling alone.
func (w *Watcher) Run(ctx context.Context) error {
	if !w.started.CompareAndSwap(false, true) {
		return errors.New("failed to run cgroup watcher: already running or run")
	}
	defer close(w.events)
	defer w.detach()
	if w.target.Path != "" {
		p, err := cleanPath(w.target.Path)
		if err != nil {
			return fmt.Errorf("failed to run cgroup watcher: %w", err)
		}
		w.setPath(p)
	} else if _, err := canonicalUnit(w.target.Unit); err != nil {
		return fmt.Errorf("failed to run cgroup watcher: %w", err)
	}

	var fsEvents <-chan fsnotify.Event
	var fsErrors <-chan error
	if fsw, err := fsnotify.NewWatcher(); err != nil {
		w.log.Warn().Err(err).Msg("no inotify, watching the cgroup by polling only")
	} else {
		w.fsw = fsw
		defer fsw.Close()
		fsEvents, fsErrors = fsw.Events, fsw.Errors
	}

	w.maintain()
	w.look()
	close(w.ready)
	poll := time.NewTicker(w.poll)
	defer poll.Stop()
	resolve := time.NewTicker(w.resolve)
	defer resolve.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-poll.C:
			w.look()
		case done := <-w.testPoll:
			w.look()
			close(done)
		case e, ok := <-fsEvents:
			if !ok {
				fsEvents = nil
				continue
			}
			if e.Has(fsnotify.Remove) || e.Has(fsnotify.Rename) {
				w.watchedID = 0 // the watch is gone with its file
			}
			w.look()
		case err, ok := <-fsErrors:
			if !ok {
				fsErrors = nil
				continue
			}
			w.log.Debug().Err(err).Msg("inotify error")
		case <-resolve.C:
			w.maintain()
		}
	}
}

// maintain runs at the Resolve cadence: it looks the unit up again while
// its cgroup is unknown or gone, and finds an OOM counter that was not there
// when the cgroup was first seen.
func (w *Watcher) maintain() {
	if w.target.Path == "" && (w.runPath == "" || !w.m.known) {
		p, err := w.fs.Find(w.target.Unit)
		switch {
		case errors.Is(err, ErrNotFound):
			w.log.Debug().Str("unit", w.target.Unit).Msg("unit has no cgroup now")
		case err != nil:
			w.log.Warn().Err(err).Str("unit", w.target.Unit).Msg("failed to find the unit's cgroup")
		default:
			if p != w.runPath {
				w.log.Debug().Str("unit", w.target.Unit).Str("path", p).Msg("unit cgroup found")
				w.setPath(p)
			}
			w.look()
		}
	}
	if w.cur.ok && w.cur.oomFile == "" {
		if w.findOOM(); w.cur.oomFile != "" {
			w.watchedID = 0 // add it to the inotify watch
			w.look()        // and take its baseline
		}
	}
}

// setPath switches the watch to another cgroup path.
func (w *Watcher) setPath(p string) {
	w.detach()
	w.runPath = p
	w.m = machine{}
	w.cands = w.cands[:0]
	for _, h := range w.fs.order {
		dir := filepath.Join(h.dir, p)
		w.cands = append(w.cands, candidate{dir: dir, procs: filepath.Join(dir, "cgroup.procs"), v2: h.v2, hold: h.v2 && h.cgroupfs})
	}
	w.mu.Lock()
	w.path = p
	w.mu.Unlock()
}

// look reads the cgroup once, feeds the machine and sends what it found.
func (w *Watcher) look() {
	var l look
	if w.runPath != "" {
		l = w.read()
	}
	w.out = w.m.step(l, w.out[:0])
	w.mu.Lock()
	w.pids = append(w.pids[:0], l.pids...)
	w.mu.Unlock()
	if len(w.out) > 0 {
		at := time.Now()
		for _, c := range w.out {
			w.send(Event{Kind: c.kind, At: at, Path: w.runPath, Detail: c.detail})
		}
	}
	w.syncWatches(l)
}

// read is one look: cgroup.procs (with its inode as the cgroup's identity)
// and the OOM counter.
func (w *Watcher) read() look {
	var b []byte
	var err error
	if w.cur.ok {
		id := w.cur.id
		if w.cur.procsFD >= 0 {
			b, err = w.r.readFD(w.cur.procsFD, w.cur.cand.procs, maxProcsSize)
		} else {
			b, id, err = w.r.read(w.cur.cand.procs, maxProcsSize, true)
		}
		if err != nil || id != w.cur.id {
			w.detach() // removed (ENODEV, ENOENT) or re-created: find it again
		}
	}
	if !w.cur.ok {
		for _, c := range w.cands {
			if b, err = w.attach(c); err == nil {
				break
			}
		}
		if !w.cur.ok {
			return look{}
		}
	}
	l := look{exists: true, id: w.cur.id}
	pids, err := appendPIDs(w.pidBuf[:0], b)
	if err != nil {
		w.log.Debug().Err(err).Str("path", w.cur.cand.procs).Msg("malformed cgroup.procs")
	}
	if len(pids) == 0 {
		pids = descendantPIDs(&w.r, w.cur.cand.dir, w.cur.cand.v2, pids)
	}
	slices.Sort(pids)
	w.pidBuf, l.pids = pids, pids
	if w.cur.oomFile != "" {
		if w.cur.oomFD >= 0 {
			b, err = w.r.readFD(w.cur.oomFD, w.cur.oomFile, maxFileSize)
		} else {
			b, _, err = w.r.read(w.cur.oomFile, maxFileSize, false)
		}
		if err == nil {
			l.oom, l.hasOOM, _ = parseKeyed(b, "oom_kill")
		} else {
			w.dropOOM() // maintain looks for it again
		}
	}
	return l
}

// attach opens the cgroup's files in the hierarchy of c and returns the
// content of its cgroup.procs; an error when c lacks the cgroup.
func (w *Watcher) attach(c candidate) ([]byte, error) {
	fd, id, err := openFile(c.procs, true)
	if err != nil {
		return nil, err
	}
	b, err := w.r.readFD(fd, c.procs, maxProcsSize)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	if !c.hold {
		unix.Close(fd)
		fd = -1
	}
	w.cur = attachment{ok: true, cand: c, id: id, procsFD: fd, oomFD: -1}
	if c.v2 {
		w.cur.events = filepath.Join(c.dir, "cgroup.events")
	}
	w.findOOM()
	return b, nil
}

// detach closes the files of the current attachment.
func (w *Watcher) detach() {
	if w.cur.procsFD >= 0 {
		unix.Close(w.cur.procsFD)
	}
	w.dropOOM()
	w.cur = attachment{procsFD: -1, oomFD: -1}
}

// findOOM finds the OOM counter, v2 memory.events where the memory
// controller is enabled, else v1 memory.oom_control, and holds it open on a
// real cgroupfs.
func (w *Watcher) findOOM() {
	for _, h := range w.fs.order {
		var f string
		switch {
		case h.v2:
			f = filepath.Join(h.dir, w.runPath, "memory.events")
		case h.dir == w.fs.memory:
			f = filepath.Join(h.dir, w.runPath, "memory.oom_control")
		default:
			continue
		}
		fd, _, err := openFile(f, false)
		if err != nil {
			continue
		}
		if !h.cgroupfs {
			unix.Close(fd)
			fd = -1
		}
		w.cur.oomFile, w.cur.oomFD, w.cur.oomWatch = f, fd, h.v2
		return
	}
}

// dropOOM closes the OOM counter.
func (w *Watcher) dropOOM() {
	if w.cur.oomFD >= 0 {
		unix.Close(w.cur.oomFD)
	}
	w.cur.oomFile, w.cur.oomFD, w.cur.oomWatch = "", -1, false
}

// syncWatches keeps the inotify watch on the v2 files of the cgroup the last
// look saw, re-adding it when the cgroup was re-created.
func (w *Watcher) syncWatches(l look) {
	if l.exists && w.watchedID == l.id || !l.exists && w.watchedID == 0 {
		return
	}
	for _, f := range w.watched {
		_ = w.fsw.Remove(f) // often gone with a removed cgroup already
	}
	w.watched = w.watched[:0]
	w.watchedID = 0
	if !l.exists {
		w.log.Debug().Str("path", w.runPath).Msg("cgroup absent")
		return
	}
	w.watchedID = l.id
	w.log.Debug().Str("path", w.runPath).Str("procs", w.cur.cand.procs).Str("oom", w.cur.oomFile).Msg("watching cgroup")
	if w.fsw == nil {
		return
	}
	files := []string{w.cur.events}
	if w.cur.oomWatch {
		files = append(files, w.cur.oomFile)
	}
	for _, f := range files {
		if f == "" {
			continue
		}
		if err := w.fsw.Add(f); err != nil {
			w.log.Debug().Err(err).Str("file", f).Msg("failed to watch cgroup file, polling it")
			continue
		}
		w.watched = append(w.watched, f)
	}
}

// send delivers an event without blocking the watch.
func (w *Watcher) send(e Event) {
	w.log.Debug().Str("trigger", e.Kind).Str("path", e.Path).Str("detail", e.Detail).Msg("cgroup event")
	select {
	case w.events <- e:
	default:
		w.dropped.Add(1)
		w.log.Warn().Str("trigger", e.Kind).Str("path", e.Path).Msg("cgroup event dropped, reader too slow")
	}
}
