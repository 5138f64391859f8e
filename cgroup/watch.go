package cgroup

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
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
	DefaultSafety  = time.Second
	DefaultResolve = time.Second
)

// minEvidenceGap bounds how often a notified wake-up reads the cgroup's
// evidence before its look (BenchmarkNotifiedLook): a storm of
// notifications (memory.events at a limit, which the kernel already rate
// limits to one per 10 ms) reuses the read of the last 10 ms.
const minEvidenceGap = 10 * time.Millisecond

// The close watch: while the cgroup's memory is within a tenth of its limit
// (memory.current ≥ 90 % of memory.max, as the latest evidence read says),
// the watcher looks every closeEvery, notified or not, and reads its
// evidence before the look every closeEvidence. An OOM kill's evidence
// (memory.events oom_kill, memory.peak) lives only as long as the
// cgroup, and systemd, notified of the same kill,
// may remove the cgroup tens of milliseconds later (OOMPolicy=stop): the
// kernel's memory.events notification can reach the watcher after that
// (it goes through a workqueue and a 10 ms rate limit, and on a loaded
// host waits for a CPU). Polling close to the limit leaves the last read
// before the removal holding the kill, and a look that sees the counter
// rise reads the evidence at once. It is bounded: a spell near the limit
// is watched every closeEvery for closeFast, then every closeSlow until
// the memory falls below 90 %. Its cost (BenchmarkPollOnce: a look;
// BenchmarkNotifiedLook: a read and a look; on the 2-CPU development VM
// 3 µs and 140 µs of CPU) is about 3 ms of CPU per second near the limit.
const (
	closeEvery    = 10 * time.Millisecond
	closeEvidence = 50 * time.Millisecond
	closeSlow     = 100 * time.Millisecond
	closeFast     = 30 * time.Second
)

// eventBuffer is the capacity of [Watcher.Events].
const eventBuffer = 64

// Target is what a [Watcher] watches: the cgroup of Unit, or the explicit
// cgroup Path, which overrides the unit lookup.
type Target struct {
	Unit string // e.g. "dead-drop.service", "demo@x.service"
	Path string // e.g. "/system.slice/dead-drop.service"
	// Find, if set, finds the unit's cgroup instead of [FS.Find]: systemd's
	// own answer ([Follower.ControlGroup]). ErrNotFound: none now.
	Find func() (string, error)
}

// Event is one transition of the watched cgroup, with the cgroup's own
// evidence read by the watcher at the wake-up that saw it,
// before anything else: systemd may remove the cgroup a millisecond later.
type Event struct {
	Kind   string    // KindExit or KindOOM
	At     time.Time // when the look that saw it ran
	Path   string    // the cgroup path
	Detail string    // e.g. "cgroup emptied (last pids 1234)", "oom_kill 0 → 1"
	PIDs   []int     // the cgroup's processes at that look (after a replacement, the new ones)
	Gone   []int     // KindExit: the processes that vanished or were replaced
	// Main is, for the exit of the main process named by [Watcher.SetMain]
	// while others lived on, its PID (Gone holds it, with any other that
	// vanished since the last look); 0 for any other event.
	Main int
	// Replaced: KindExit of every process replaced between two looks, the
	// cgroup never seen empty (a fast restart, or a daemon that handed
	// over to new processes of its own: only systemd can tell which).
	Replaced bool
	// Stats is the cgroup's evidence at the event: read right after the
	// look, or, when the cgroup was gone by then, right before it (at the
	// notification that woke the watcher). Its OOMKills is never below the
	// counter the look read. Nil when neither read found the cgroup.
	Stats   *Stats
	StatsAt time.Time // when Stats was read
}

// WatchOptions tune a [Watcher]. Zero values mean the defaults.
type WatchOptions struct {
	Poll    time.Duration   // cadence of the look where notifications do not cover the cgroup; default 50 ms
	Safety  time.Duration   // cadence of the look where they do; default 1 s
	Resolve time.Duration   // cadence of the unit lookup while its cgroup is unknown or gone; default 1 s
	Logger  *zerolog.Logger // nil: silent
}

// Watcher watches one cgroup and reports its exits and OOM kills on
// [Watcher.Events]. Create it with [FS.NewWatcher]; [Watcher.Run] does the
// work. Path, PIDs and Dropped are safe for concurrent use.
type Watcher struct {
	fs      *FS
	target  Target
	poll    time.Duration
	safety  time.Duration
	resolve time.Duration
	log     zerolog.Logger

	events  chan Event
	found   atomic.Bool  // the cgroup existed at the last look
	main    atomic.Int64 // SetMain's PID; 0: none
	dropped atomic.Uint64
	started atomic.Bool
	// testDo, set before Run, lets a test run a function on Run's
	// goroutine, e.g. a look (nil, never ready, otherwise).
	testDo chan func()
	// testNoEventfd, set before Run, acts as if cgroup.event_control
	// refused the v1 OOM eventfd.
	testNoEventfd bool

	ready chan struct{} // closed after the first look

	// turn serialises the work on the watcher's state below: Run's
	// goroutine holds it while it handles a wake-up, Look while it looks.
	turn                        sync.Mutex
	live                        bool      // Run made its first look and has not stopped: Look may look
	asked                       time.Time // when Look last looked
	looks, resolves, closeLooks *cadence

	mu   sync.Mutex
	path string // the cgroup path watched, "" when unknown
	pids []int  // the PIDs of the last look
	oom  []byte // the OOM counter file of the last look, as it read it
	seen Sight  // the rest of the last look (its PIDs are pids, its OOM oom)
	made uint64 // looks made, under turn (tests count them)

	// Held under turn.
	runPath   string
	cands     []candidate // where the cgroup may be, in Procs order
	cur       attachment  // where it was found at the last look
	m         machine
	r         reader
	pidBuf    []int
	prevBuf   []int  // the machine's last PID set before a look
	oomBuf    []byte // the OOM counter file of the attached cgroup, as a look read it
	oomBufOf  string // the file oomBuf holds; "" when none this look
	out       []change
	fsw       *fsnotify.Watcher
	watched   []string // files under inotify watch
	watchedID uint64   // the cgroup identity they belong to; 0: none
	eventsOK  bool     // cgroup.events is among them
	oomOK     bool     // the v2 OOM counter (memory.events) is among them
	parent    string   // the v2 directory holding the cgroup's, watched for its mkdir and rmdir; "" for none
	parentOK  bool     // parent is under inotify watch
	procs     procSet  // a pidfd per process of the last look
	oomNotes  chan struct{}
	bg        sync.WaitGroup // the goroutines of v1 OOM notifications
	oomSought time.Time      // when maintain last looked for a missing OOM counter
	// The latest evidence read of the cgroup (at an event or a notified
	// wake-up): it stands in for a cgroup removed before the next read.
	lastEv     *Stats
	lastEvAt   time.Time
	lastEvPath string
	nearSince  time.Time // when the close watch began; zero when off
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
	id       uint64       // the cgroup's identity: the inode of its cgroup.procs
	procsFD  int          // v2 cgroup.procs held open; -1 for v1 (its PID list is cached per open file) and fixtures
	events   string       // v2 cgroup.events; "" outside v2
	oomFile  string       // v2 memory.events or v1 memory.oom_control; "" when neither exists
	oomFD    int          // oomFile held open; -1 when none or on a fixture
	oomRead  bool         // oomFD read once: its next reads are raw (readsRaw)
	oomWatch bool         // oomFile notifies (v2 memory.events)
	notify   *oomNotifier // v1 memory.oom_control's eventfd; nil when none
}

// NewWatcher returns a watcher of t. Nothing happens until Run.
func (f *FS) NewWatcher(t Target, o WatchOptions) *Watcher {
	w := &Watcher{
		fs:         f,
		target:     t,
		poll:       o.Poll,
		safety:     o.Safety,
		resolve:    o.Resolve,
		log:        zerolog.Nop(),
		events:     make(chan Event, eventBuffer),
		ready:      make(chan struct{}),
		looks:      newCadence(),
		resolves:   newCadence(),
		closeLooks: newCadence(),
		cur:        attachment{procsFD: -1, oomFD: -1},
		oomNotes:   make(chan struct{}, 1),
	}
	w.procs.exited = make(chan struct{}, 1)
	if w.poll <= 0 {
		w.poll = DefaultPoll
	}
	if w.safety <= 0 {
		w.safety = DefaultSafety
	}
	if w.resolve <= 0 {
		w.resolve = DefaultResolve
	}
	if o.Logger != nil {
		w.log = *o.Logger
	}
	w.procs.log = w.log
	return w
}

// Events returns the channel of events. It is buffered; when the reader
// falls behind, events are dropped and counted ([Watcher.Dropped]) rather
// than delaying the watch. Run closes it when it returns.
func (w *Watcher) Events() <-chan Event { return w.events }

// Ready is closed once Run has resolved the target and made its first look,
// so that Path and PIDs answer for the cgroup as it is, not "unknown".
func (w *Watcher) Ready() <-chan struct{} { return w.ready }

// Look makes the periodic look now, in the caller's goroutine, and
// returns when it is done, true; its events are on Events as from any
// look, and PIDs, Seen and Found answer for it until the next.
// A caller that wakes up anyway as often as Safety (the recorder's service
// trace, every second) looks at its wake-up, so that the periodic look
// rides on it instead of waking the watcher's goroutine on a timer of its
// own (on an idle host, a second thread). Where the periodic look is the
// Safety one and the caller looks at least every period and a quarter,
// the caller's looks drive it: the watcher's own timer ticks only every 5
// periods, and looks only if no look was made within the last period and a
// quarter; then it looks every period again, until the caller's looks
// drive it again. A slower caller's looks, and any caller's where Poll
// looks (notifications do not cover the cgroup), are looks besides the
// watcher's own.
//
// Look never waits behind the watcher's goroutine: while that handles a
// wake-up of its own (which may ask systemd for the unit's cgroup, and
// systemd may be slow exactly when the service is in trouble), Look does
// nothing. Before Run's first look, after Run returns, and while the
// cadence has no periodic look (the unit not found: Resolve looks it up),
// Look does nothing either. It returns false when it did nothing.
func (w *Watcher) Look() bool {
	if !w.turn.TryLock() {
		return false
	}
	defer w.turn.Unlock()
	if !w.live || w.looks.d == 0 {
		return false
	}
	w.periodicLook()
	now := time.Now()
	// A caller that looks at least every period and a quarter drives the
	// safety look; a slower one (a host sample's 30 s, a trace of 2 s)
	// looks besides it. Poll's looks, where notifications do not cover the
	// cgroup, are never driven.
	if w.looks.d == w.safety && w.safety != w.poll && !w.asked.IsZero() && now.Sub(w.asked) <= w.safety+w.safety/4 {
		w.looks.drive()
	}
	w.asked = now
	w.setCadences()
	return true
}

// SetMain names the service's main process, as systemd does (its
// MainPID), 0 for none: from the next look on, that process ending while
// others live on in the cgroup is an exit event of its own ([Event.Main]),
// seen by its pidfd within a millisecond (at the next Poll look where
// pidfds do not cover the cgroup), where otherwise only the last of them
// going would be (a forking daemon's workers, its ExecStop= command, may
// take seconds). Whether it was a failure or a hand-over to another main
// process is the caller's to tell. A look that finds the cgroup without
// it forgets it (its PID may be reused). Safe for concurrent use.
func (w *Watcher) SetMain(pid int) { w.main.Store(int64(max(pid, 0))) }

// Found reports whether the cgroup existed at the last look.
func (w *Watcher) Found() bool { return w.found.Load() }

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

// Sight is what the last look saw ([Watcher.Seen]): all of one look.
type Sight struct {
	Path   string // the cgroup path it looked at; "" while unknown
	ID     uint64 // the cgroup's identity (the inode of its cgroup.procs): another after a re-creation; 0 when absent
	Exists bool
	PIDs   []int // ascending, as PIDs
	// OOMFile is the cgroup's OOM counter file the look read (v2
	// memory.events, v1 memory.oom_control), OOM its content; "" and nil
	// when the look read none. A reading of the cgroup just after the
	// look takes it from here ([Tracer.ReadSeen]).
	OOMFile string
	OOM     []byte
	// Events is how many events the look sent: an exit or an OOM kill it
	// saw, whose evidence the event carries.
	Events int
}

// Seen sets *s to what the last look saw, reusing the buffers of its PIDs
// and OOM.
func (w *Watcher) Seen(s *Sight) {
	w.mu.Lock()
	defer w.mu.Unlock()
	pids, oom := s.PIDs[:0], s.OOM[:0]
	*s = w.seen
	s.PIDs = append(pids, w.pids...)
	s.OOM = nil
	if s.OOMFile != "" {
		s.OOM = append(oom, w.oom...)
	}
}

// Run watches until ctx is done, then closes Events and returns nil. It
// fails when the target names neither a unit nor a path, or when it is
// called a second time. Without inotify (no instance left) it still works,
// by polling alone. Every descriptor it opened is closed when it returns.
func (w *Watcher) Run(ctx context.Context) error {
	if !w.started.CompareAndSwap(false, true) {
		return errors.New("failed to run cgroup watcher: already running or run")
	}
	defer close(w.events)
	defer w.stop()
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

	w.turn.Lock()
	w.maintain()
	w.look()
	w.live = true
	w.setCadences()
	w.turn.Unlock()
	close(w.ready)
	// After a v1 OOM notification: look again at oomRechecks until the
	// oom_kill counter moves.
	recheck := time.NewTimer(time.Hour)
	recheck.Stop()
	defer recheck.Stop()
	var noteAt time.Time
	var noteBase uint64
	step := 0
	for {
		var wake func() // what this wake-up does, with the turn held
		select {
		case <-ctx.Done():
			return nil
		case <-w.closeLooks.t.C:
			wake = w.lookClose
		case <-w.looks.t.C:
			wake = w.periodicTick
		case <-w.procs.exited:
			wake = w.lookNotified
		case <-w.oomNotes:
			wake = func() {
				noteAt, noteBase, step = time.Now(), w.m.oom, 0
				w.lookNotified()
				if w.m.oom == noteBase {
					recheck.Reset(time.Until(noteAt.Add(oomRechecks[0])))
				}
			}
		case <-recheck.C:
			wake = func() {
				w.look()
				if step++; w.m.oom == noteBase && step < len(oomRechecks) {
					recheck.Reset(time.Until(noteAt.Add(oomRechecks[step])))
				}
			}
		case f := <-w.testDo:
			wake = f
		case e, ok := <-fsEvents:
			if !ok {
				fsEvents = nil
				continue
			}
			wake = func() {
				if w.parentOK && filepath.Dir(e.Name) == w.parent && e.Name != w.cands[0].dir {
					return // a sibling cgroup came or went
				}
				switch {
				case !e.Has(fsnotify.Remove) && !e.Has(fsnotify.Rename):
				case e.Name == w.parent:
					w.parentOK = false // gone with its slice: added again by a look
				default:
					w.watchedID = 0 // the watch is gone with its file
				}
				w.lookNotified()
			}
		case err, ok := <-fsErrors:
			if !ok {
				fsErrors = nil
				continue
			}
			wake = func() {
				w.log.Debug().Err(err).Msg("inotify error")
				w.look() // an overflow loses events
			}
		case <-w.resolves.t.C:
			wake = w.maintain
		}
		w.turn.Lock()
		wake()
		w.setCadences()
		w.turn.Unlock()
	}
}

// setCadences sets the periods of the periodic look, the unit lookup and
// the close watch from what the last look found. The turn is held.
func (w *Watcher) setCadences() {
	w.looks.set(w.lookEvery())
	w.resolves.set(w.resolveEvery())
	w.closeLooks.set(w.closeEvery(time.Now()))
}

// lookEvery returns the period of the periodic look: Safety where
// notifications report every change a look can find, Poll where they do
// not, 0 when no look is due (the unit is not found: Resolve looks it up).
//
// Notifications cover a cgroup that inotify watches (its cgroup.events;
// its memory.events where that is the OOM counter) and whose processes
// each have a pidfd; v1 memory.oom_control is covered by its eventfd and,
// where cgroup.event_control refuses one, by the pidfds, as an OOM victim
// is one of the watched processes. An absent cgroup is covered by the
// inotify watch on its parent directory, which reports its mkdir.
func (w *Watcher) lookEvery() time.Duration {
	switch {
	case w.runPath == "":
		return 0
	case w.fsw == nil:
		return w.poll
	case !w.cur.ok:
		switch {
		case !w.parentOK:
			return w.poll
		case w.target.Path == "":
			return 0 // each Resolve looks the unit up, then looks
		}
		return w.safety
	case !w.eventsOK, !w.procs.covered, w.cur.oomWatch && !w.oomOK:
		return w.poll
	}
	return w.safety
}

// resolveEvery returns the period of the unit lookup: Resolve while the
// target is a unit whose cgroup is unknown or gone, else 0.
func (w *Watcher) resolveEvery() time.Duration {
	if w.target.Path == "" && (w.runPath == "" || !w.m.known) {
		return w.resolve
	}
	return 0
}

// cadence is a ticker that can change its period or stop; setting the
// period it has keeps its phase.
type cadence struct {
	t *time.Ticker
	d time.Duration // 0: stopped
	// driven: a caller looks every d (Look), and t ticks only every
	// watchdog periods, to notice a caller that stopped.
	driven bool
}

// watchdog is how many periods apart the ticks of a driven cadence are:
// a caller that stops looking (its goroutine stalled) leaves the cgroup
// without a periodic look for at most watchdog+1¼ periods (a tick that
// finds a look within the last period and a quarter waits for the next),
// and each tick costs a wake-up of the watcher's goroutine.
const watchdog = 5

func newCadence() *cadence {
	t := time.NewTicker(time.Hour)
	t.Stop()
	return &cadence{t: t}
}

func (c *cadence) set(d time.Duration) {
	if d == c.d {
		return
	}
	c.d, c.driven = d, false
	if d <= 0 {
		c.t.Stop() // since Go 1.23 no stale tick is left in t.C
		return
	}
	c.t.Reset(d)
}

// drive has the ticker tick every watchdog periods: a caller looks every
// period. Its timer is reset once, not at each of the caller's looks: a
// timer moved later stays in the runtime's heap at its old time until
// then, and wakes the process for nothing at that time.
func (c *cadence) drive() {
	if c.d > 0 && !c.driven {
		c.t.Reset(watchdog * c.d)
		c.driven = true
	}
}

// undrive has the ticker tick every period again.
func (c *cadence) undrive() {
	if c.driven {
		c.t.Reset(c.d)
		c.driven = false
	}
}

func (c *cadence) stop() { c.t.Stop() }

// periodicTick is the tick of the periodic cadence: a look, unless a
// caller drives the cadence (Look) and looked within the period and a
// quarter. A driven cadence whose caller stopped looks again on its own.
func (w *Watcher) periodicTick() {
	if w.looks.driven {
		if time.Since(w.asked) <= w.looks.d+w.looks.d/4 {
			return
		}
		w.looks.undrive()
	}
	w.periodicLook()
}

// periodicLook is the look of the periodic cadence, on its timer or asked
// for (Look); it also looks for an OOM counter that was missing, at most
// once per Resolve.
func (w *Watcher) periodicLook() {
	w.look()
	if w.cur.ok && w.cur.oomFile == "" && time.Since(w.oomSought) >= w.resolve {
		w.maintain() // the memory controller may have been enabled since
	}
}

// stop closes every descriptor the watcher holds and waits for the
// goroutines that wait on them.
func (w *Watcher) stop() {
	w.turn.Lock()
	w.live = false
	w.looks.stop()
	w.resolves.stop()
	w.closeLooks.stop()
	w.detach()
	w.turn.Unlock()
	w.procs.wait()
	w.bg.Wait()
}

// maintain runs at the Resolve cadence: it looks the unit up again while
// its cgroup is unknown or gone, and finds an OOM counter that was not there
// when the cgroup was first seen.
func (w *Watcher) maintain() {
	w.oomSought = time.Now()
	if w.target.Path == "" && (w.runPath == "" || !w.m.known) {
		find := w.target.Find
		if find == nil {
			find = func() (string, error) { return w.fs.Find(w.target.Unit) }
		}
		p, err := find()
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

// closeEvery returns the period of the close watch: closeEvery while the
// latest evidence read of the watched cgroup shows its memory within a
// tenth of its limit (closeSlow after closeFast of that), else 0.
func (w *Watcher) closeEvery(now time.Time) time.Duration {
	st := w.lastEv
	near := w.cur.ok && w.lastEvPath == w.runPath && st != nil && st.MemoryBytes != nil &&
		st.MemoryMaxBytes != nil && *st.MemoryMaxBytes > 0 && *st.MemoryBytes >= *st.MemoryMaxBytes-*st.MemoryMaxBytes/10
	switch {
	case !near:
		if !w.nearSince.IsZero() {
			w.log.Debug().Str("path", w.runPath).Msg("memory below 90 % of its limit: close watch off")
		}
		w.nearSince = time.Time{}
		return 0
	case w.nearSince.IsZero():
		w.nearSince = now
		w.log.Debug().Str("path", w.runPath).Msg("memory within 10 % of its limit: close watch on")
	case now.Sub(w.nearSince) >= closeFast:
		return closeSlow
	}
	return closeEvery
}

// lookClose is the look of the close watch: every closeEvidence with the
// evidence read first, as at a notified wake-up.
func (w *Watcher) lookClose() {
	if time.Since(w.lastEvAt) >= closeEvidence {
		w.lookEvidence(true)
		return
	}
	w.look()
}

// lookNotified is the look of a wake-up by a notification (a process
// exited, the cgroup's files changed, the v1 OOM eventfd): the cgroup is
// likely to have news, and systemd may remove it at any moment, so its
// evidence is read first, to stand in for the read after the look if the
// cgroup is gone by then.
func (w *Watcher) lookNotified() { w.lookEvidence(false) }

// lookEvidence reads the cgroup's evidence (unless one was read within
// minEvidenceGap and force is false), then looks.
func (w *Watcher) lookEvidence(force bool) {
	var pre *Stats
	var preAt time.Time
	if w.cur.ok && (force || w.lastEvPath != w.runPath || time.Since(w.lastEvAt) >= minEvidenceGap) {
		preAt = time.Now()
		st, err := w.fs.Stats(w.runPath)
		if err != nil && !errors.Is(err, ErrNotFound) {
			w.log.Debug().Err(err).Str("path", w.runPath).Msg("cgroup evidence partly unreadable")
		}
		if err == nil || !errors.Is(err, ErrNotFound) {
			pre = &st
			w.keepEvidence(pre, preAt)
		}
	}
	w.lookWith(pre, preAt)
}

// preOOM appends the OOM kill the evidence read just before the look holds
// when the look itself could not read it: systemd removed the cgroup (or
// its memory.events) between the two reads. pre is taken for the
// machine's cgroup: were the cgroup removed and created again in between,
// the new one's counter would have to pass the old one's, which a fresh
// cgroup's does not do that fast.
func (w *Watcher) preOOM(l look, pre *Stats, out []change) []change {
	m := &w.m
	var n uint64
	if pre != nil && pre.OOMKills != nil {
		n = *pre.OOMKills
	}
	if l.goneOK && l.gone > n {
		n = l.gone // read by the look before it found the cgroup gone
	}
	if !m.known || !m.hasOOM || n <= m.oom {
		return out
	}
	if l.exists && l.id == m.id && l.hasOOM && l.oom >= n {
		return out // the look has it: the machine reports it
	}
	out = append(out, change{kind: KindOOM, detail: "oom_kill " + strconv.FormatUint(m.oom, 10) + " → " + strconv.FormatUint(n, 10)})
	m.oom = n
	return out
}

// look reads the cgroup once, feeds the machine and sends what it found.
func (w *Watcher) look() { w.lookWith(nil, time.Time{}) }

// lookWith is look, with the evidence read just before it, if any.
func (w *Watcher) lookWith(pre *Stats, preAt time.Time) {
	var l look
	w.oomBufOf = ""
	main := int(w.main.Load()) // before the read: a SetMain after it is for the next look
	if w.runPath != "" {
		l = w.read()
	}
	l.at = time.Now()
	l.main = main
	w.prevBuf = append(w.prevBuf[:0], w.m.last...)
	base, baseOK, id := w.m.oom, w.m.known && w.m.hasOOM, w.m.id
	w.out = w.m.step(l, w.preOOM(l, pre, w.out[:0]))
	if l.main > 0 && l.exists && !slices.Contains(l.pids, l.main) {
		// Gone, its end reported or not: forgotten, so that its PID,
		// reused, is never taken for it. Unless SetMain named another
		// meanwhile.
		w.main.CompareAndSwap(int64(l.main), 0)
	}
	w.made++
	w.mu.Lock()
	w.found.Store(l.exists)
	w.pids = append(w.pids[:0], l.pids...)
	if w.oomBufOf != "" {
		w.oom = append(w.oom[:0], w.oomBuf...)
	}
	w.seen = Sight{Path: w.runPath, ID: l.id, Exists: l.exists, Events: len(w.out), OOMFile: w.oomBufOf} // with pids and oom: Seen returns one look
	w.mu.Unlock()
	if len(w.out) > 0 {
		at := time.Now()
		st, stAt := w.evidence(l, pre, preAt)
		// The evidence of an exit holds an OOM kill the look did not
		// report (its read of the counter failed as the cgroup went):
		// reported first, with that evidence.
		if baseOK && st != nil && st.OOMKills != nil && *st.OOMKills > base &&
			!slices.ContainsFunc(w.out, func(c change) bool { return c.kind == KindOOM }) {
			w.out = slices.Insert(w.out, 0, change{kind: KindOOM, detail: "oom_kill " + strconv.FormatUint(base, 10) + " → " + strconv.FormatUint(*st.OOMKills, 10)})
			if w.m.known && w.m.id == id && w.m.oom < *st.OOMKills {
				w.m.oom = *st.OOMKills
			}
		}
		for _, c := range w.out {
			e := Event{Kind: c.kind, At: at, Path: w.runPath, Detail: c.detail,
				PIDs: slices.Clone(l.pids), Stats: st, StatsAt: stAt, Replaced: c.replaced}
			switch {
			case c.main > 0:
				e.Main, e.Gone = c.main, minus(w.prevBuf, l.pids)
			case c.kind == KindExit:
				e.Gone = slices.Clone(w.prevBuf)
			}
			w.send(e)
		}
	}
	if w.syncWatches(l) {
		// A process that joined between this look's read and the new
		// watch changed cgroup.events unnotified: look once more, now
		// that a change would be notified (TestRealRecreated).
		w.lookWith(nil, time.Time{})
		return
	}
	// pidfds only for PIDs from a real cgroupfs: a fixture's are made up.
	w.procs.sync(l.pids, w.cur.ok && w.cur.cand.hold)
}

// evidence reads the cgroup's evidence at once, after the look l that saw
// an event. Where the cgroup is gone by then (or going: some or all of its
// files read as absent), it falls back to pre, read just before the look,
// then to the evidence of the previous event or notified wake-up of the
// same cgroup, if younger than Safety: whichever holds more values. The look's OOM counter is the floor of OOMKills:
// the counter the event is about is never lost to a removal.
func (w *Watcher) evidence(l look, pre *Stats, preAt time.Time) (*Stats, time.Time) {
	var st *Stats
	now := time.Now()
	at := now
	if w.runPath != "" {
		s, err := w.fs.Stats(w.runPath)
		if err != nil && !errors.Is(err, ErrNotFound) {
			w.log.Debug().Err(err).Str("path", w.runPath).Msg("cgroup evidence partly unreadable")
		}
		if err == nil || !errors.Is(err, ErrNotFound) {
			st = &s
		}
	}
	// The read that holds the most, the fresher of two that hold as much:
	// a read racing the removal finds some files gone (memory.current
	// read, memory.peak no longer), and then an earlier read says more.
	if pre.known() > st.known() {
		st, at = pre, preAt
	}
	if w.lastEv.known() > st.known() && w.lastEvPath == w.runPath && now.Sub(w.lastEvAt) < w.safety {
		st, at = w.lastEv, w.lastEvAt
	}
	floor, ok := l.oom, l.hasOOM
	if !l.exists && l.goneOK {
		floor, ok = l.gone, true
	}
	if st != nil && ok && (st.OOMKills == nil || *st.OOMKills < floor) {
		c, n := *st, floor // st may be shared with an event sent already
		c.OOMKills = &n
		st = &c
	}
	if !st.usable() {
		return nil, time.Time{}
	}
	w.keepEvidence(st, at)
	return st, at
}

// keepEvidence remembers the latest evidence read of the watched cgroup,
// unless it holds less than the one remembered, younger than Safety: a
// read racing the cgroup's removal (the OOM counter read, memory.peak no
// longer there) must not replace the close watch's full read of a moment
// before, which is what an OOM kill's event then falls back to; its
// counters raise that read's (raised).
func (w *Watcher) keepEvidence(st *Stats, at time.Time) {
	if !st.usable() {
		return
	}
	if w.lastEvPath == w.runPath && st.known() < w.lastEv.known() && at.Sub(w.lastEvAt) < w.safety {
		w.lastEv = raised(w.lastEv, st)
		return
	}
	w.lastEv, w.lastEvAt, w.lastEvPath = st, at, w.runPath
}

// raised is full with the values that only grow (the OOM kill counter, the
// memory peak) raised to later's where later's are higher: the kill a read
// racing the removal holds is not lost with the rest of that read. It is a
// copy when anything changes (full may be an event's, sent already).
func raised(full, later *Stats) *Stats {
	c := *full
	up := func(dst **uint64, v *uint64) bool {
		if v == nil || *dst != nil && **dst >= *v {
			return false
		}
		*dst = v
		return true
	}
	oom := up(&c.OOMKills, later.OOMKills)
	if peak := up(&c.MemoryPeakBytes, later.MemoryPeakBytes); !oom && !peak {
		return full
	}
	return &c
}

// known counts the values s holds (0 for nil).
func (s *Stats) known() int {
	if s == nil {
		return 0
	}
	n := 0
	for _, v := range []*uint64{s.MemoryBytes, s.MemoryMaxBytes, s.MemoryPeakBytes, s.SwapBytes, s.OOMKills,
		s.CPUUsageUsec, s.CPUThrottledUsec, s.PidsCurrent, s.PidsMax} {
		if v != nil {
			n++
		}
	}
	if s.Pressure != nil {
		n++
	}
	return n
}

// usable reports whether s says anything: a cgroup being removed reads as
// absent files, every field nil.
func (s *Stats) usable() bool {
	return s != nil && (s.MemoryBytes != nil || s.OOMKills != nil || s.CPUUsageUsec != nil || s.PidsCurrent != nil)
}

// read is one look: the OOM counter, then cgroup.procs (with its inode as
// the cgroup's identity).
func (w *Watcher) read() look {
	var b []byte
	var err error
	// The OOM counter first, of the cgroup as last seen: where the look
	// then finds it removed (or re-created), the counter it read is kept
	// (gone): the kill that had systemd remove it is not lost to the race.
	var gone uint64
	var goneOK bool
	if w.cur.ok {
		gone, goneOK = w.readOOM()
		id := w.cur.id
		if w.cur.procsFD >= 0 {
			b, err = w.r.readFD(w.cur.procsFD, w.cur.cand.procs, maxProcsSize, true) // held, read at attach: raw (readsRaw)
		} else {
			b, id, err = w.r.read(w.cur.cand.procs, maxProcsSize, true)
		}
		if err != nil || id != w.cur.id {
			w.detach() // removed (ENODEV, ENOENT) or re-created: find it again
			w.oomBufOf = ""
		}
	}
	if w.cur.ok {
		l := w.lookAt(b)
		l.oom, l.hasOOM = gone, goneOK
		return l
	}
	for _, c := range w.cands {
		if b, err = w.attach(c); err == nil {
			break
		}
	}
	if !w.cur.ok {
		return look{gone: gone, goneOK: goneOK}
	}
	l := w.lookAt(b)
	l.gone, l.goneOK = gone, goneOK
	l.oom, l.hasOOM = w.readOOM()
	return l
}

// lookAt is the look at the attached cgroup whose cgroup.procs read b.
func (w *Watcher) lookAt(b []byte) look {
	l := look{exists: true, id: w.cur.id, primary: w.cur.cand.dir == w.cands[0].dir}
	pids, err := appendPIDs(w.pidBuf[:0], b)
	if err != nil {
		w.log.Debug().Err(err).Str("path", w.cur.cand.procs).Msg("malformed cgroup.procs")
	}
	if len(pids) == 0 {
		pids = descendantPIDs(&w.r, w.cur.cand.dir, w.cur.cand.v2, pids)
	}
	slices.Sort(pids)
	w.pidBuf, l.pids = pids, pids
	return l
}

// readOOM reads the attached cgroup's OOM counter; false when it has none
// or the read failed.
func (w *Watcher) readOOM() (uint64, bool) {
	if !w.cur.ok || w.cur.oomFile == "" {
		return 0, false
	}
	var b []byte
	var err error
	if w.cur.oomFD >= 0 {
		b, err = w.r.readAt0(w.cur.oomFD, w.cur.oomFile, maxFileSize, oneRecord, w.cur.oomRead)
		w.cur.oomRead = err == nil
	} else {
		b, _, err = w.r.read(w.cur.oomFile, maxFileSize, false)
	}
	switch {
	case err == nil:
		w.oomBuf, w.oomBufOf = append(w.oomBuf[:0], b...), w.cur.oomFile
		v, ok, _ := parseKeyed(b, "oom_kill")
		return v, ok
	case isAbsent(err):
		w.dropOOM() // maintain looks for it again
	default: // kept: the next look reads it again
		w.log.Debug().Err(err).Str("path", w.cur.oomFile).Msg("OOM counter unreadable")
	}
	return 0, false
}

// attach opens the cgroup's files in the hierarchy of c and returns the
// content of its cgroup.procs; an error when c lacks the cgroup.
func (w *Watcher) attach(c candidate) ([]byte, error) {
	fd, id, err := openFile(c.procs, true)
	if err != nil {
		return nil, err
	}
	b, err := w.r.readFD(fd, c.procs, maxProcsSize, false) // a first read
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
		w.cur.oomFile, w.cur.oomFD, w.cur.oomWatch, w.cur.oomRead = f, fd, h.v2, false
		if !h.v2 && fd >= 0 && !w.testNoEventfd {
			n, err := notifyOOM(filepath.Dir(f), fd, w.oomNotes, &w.bg)
			if err != nil {
				w.log.Debug().Err(err).Str("path", w.runPath).Msg("no v1 oom notification, the pidfds stand in")
			}
			w.cur.notify = n
		}
		return
	}
}

// dropOOM closes the OOM counter and its notification.
func (w *Watcher) dropOOM() {
	if w.cur.notify != nil {
		w.cur.notify.close()
	}
	if w.cur.oomFD >= 0 {
		unix.Close(w.cur.oomFD)
	}
	w.cur.oomFile, w.cur.oomFD, w.cur.oomWatch, w.cur.oomRead, w.cur.notify = "", -1, false, false, nil
}

// syncWatches keeps the inotify watch on the v2 files of the cgroup the last
// look saw, re-adding it when the cgroup was re-created, and on the
// directory that holds the cgroup's. It reports whether it added the
// watch on cgroup.events of a cgroup new to it, which the look read before.
func (w *Watcher) syncWatches(l look) (added bool) {
	w.syncParent()
	if l.exists && w.watchedID == l.id || !l.exists && w.watchedID == 0 {
		return false
	}
	for _, f := range w.watched {
		_ = w.fsw.Remove(f) // often gone with a removed cgroup already
	}
	w.watched = w.watched[:0]
	w.watchedID, w.eventsOK, w.oomOK = 0, false, false
	if !l.exists {
		w.log.Debug().Str("path", w.runPath).Msg("cgroup absent")
		return false
	}
	w.watchedID = l.id
	w.log.Debug().Str("path", w.runPath).Str("procs", w.cur.cand.procs).Str("oom", w.cur.oomFile).Msg("watching cgroup")
	if w.fsw == nil {
		return false
	}
	files := []string{w.cur.events}
	if w.cur.oomWatch {
		files = append(files, w.cur.oomFile)
	}
	for i, f := range files {
		if f == "" {
			continue
		}
		if err := w.fsw.Add(f); err != nil {
			w.log.Debug().Err(err).Str("file", f).Msg("failed to watch cgroup file, polling it")
			continue
		}
		w.watched = append(w.watched, f)
		if i == 0 {
			w.eventsOK = true
		} else {
			w.oomOK = true
		}
	}
	return w.eventsOK
}

// syncParent keeps the inotify watch on the v2 directory that holds the
// cgroup's on a real cgroupfs, which reports the cgroup's mkdir and rmdir
// (and its siblings', ignored). A parent that is absent is tried again at
// the next look.
func (w *Watcher) syncParent() {
	if w.fsw == nil {
		return
	}
	want := ""
	if len(w.cands) > 0 && w.cands[0].hold && w.runPath != "/" {
		want = filepath.Dir(w.cands[0].dir)
	}
	if want == w.parent && (want == "" || w.parentOK) {
		return
	}
	if w.parentOK {
		_ = w.fsw.Remove(w.parent)
	}
	w.parent, w.parentOK = want, false
	if want == "" {
		return
	}
	if err := w.fsw.Add(want); err != nil {
		w.log.Debug().Err(err).Str("dir", want).Msg("failed to watch the cgroup's parent, polling")
		return
	}
	w.parentOK = true
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
