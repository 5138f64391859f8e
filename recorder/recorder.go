// Package recorder is preflight's flight recorder for one service: every
// interval it takes one health check and one sample of the host and the
// service into a ring; when the service fails it writes the ring, plus one
// sample taken at the failure, as a capture file.
//
// # Incidents
//
// A failure opens an incident and writes its capture at once. Triggers:
//
//   - health: FailureThreshold consecutive failed checks after at least one
//     success;
//   - exit: the service's cgroup emptied, or all its processes were replaced
//     (a restart), or, where systemd's word names the main process, that
//     process ended while others live on; seen by package cgroup within
//     milliseconds;
//   - oom: the kernel OOM-killed a process in the service's cgroup (its
//     counter rose; or, where the cgroup was gone before it was read,
//     systemd's word, unit.go, or the kernel's log, kernelword.go).
//
// Later triggers of the same incident append to the same capture and rewrite
// it in place, atomically; a healthy check that started after the incident's
// latest trigger ends the incident. One failure, one file.
//
// At every trigger the recorder takes one more sample at once, so a capture
// ends with the scene at the failure: its samples are the ring as it stood
// before the first trigger, then one sample per trigger.
//
// # The service trace
//
// Between samples, every SERVICE_INTERVAL_SECONDS, a cheap reading of the
// service alone (its cgroup and its processes' stat) goes into a trace of
// the last TRACE_SECONDS; a capture carries it from TRACE_SECONDS before its
// first trigger up to its last. While the trace shows warning signs the host
// is sampled early, bounded (trace.go).
//
// # Concurrency
//
// One goroutine ([Recorder.Run]) owns all state: the ring, the incident and
// the writes. Health checks run in a goroutine of their own, one at a time,
// so a slow check never delays a trigger. Writes are synchronous: when Run's
// context is cancelled, a capture in flight completes before Run returns.
//
// # Nothing lost
//
// A capture that cannot be written (disk full, read-only, directory gone)
// stays pending, also after its incident ends and while later ones come:
// every pending capture is retried at every tick until it lands, and once
// more when Run ends. At most maxPending captures (maxPendingBytes) wait;
// beyond that the oldest is dropped with an error.
//
// # The directory
//
// Every file the recorder touches goes through its [capture.Store]. New
// takes the service's lock (one recorder per service and directory) but
// removes nothing; Run first removes a killed writer's temporary files and
// the captures beyond KEEP.
package recorder

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/preflight-rec/preflight/cgroup"
	"github.com/preflight-rec/preflight/recorder/capture"
	"github.com/preflight-rec/preflight/recorder/health"
	"github.com/preflight-rec/preflight/recorder/logs"
	"github.com/preflight-rec/preflight/recorder/sample"
)

// File modes of the capture directory and files, whatever the umask.
const (
	DirMode  = capture.DirMode
	FileMode = capture.FileMode
)

// maxTriggers bounds the triggers (and trigger samples) one incident
// records; later ones are only counted, so a crash loop cannot grow a capture
// without bound.
const maxTriggers = 20

// Options are what a recorder takes from its process rather than from its
// configuration. Zero values are the real machine's.
type Options struct {
	Logger     zerolog.Logger
	Version    string // preflight_version in captures
	Hostname   string // "": os.Hostname
	ProcRoot   string // "": /proc
	CgroupRoot string // "": /sys/fs/cgroup
	// Ready, if set, is called once the first sample is in the ring (the
	// systemd unit's readiness notification).
	Ready func()
	// NoCgroup disables the service's cgroup scope (captures then have a
	// null service and no exit or oom triggers).
	NoCgroup bool
	// Now is the wall clock of trigger times and the state file (nil:
	// time.Now); tests step it back.
	Now func() time.Time
	// KmsgPath is where the kernel's log is read ("": /dev/kmsg), and
	// Journalctl how the journal is (the zero value: journalctl from PATH
	// over the system journal).
	KmsgPath   string
	Journalctl logs.Journalctl
	// Host, if set, shares the host's readings with the process's other
	// recorders (share.go); ProcRoot is then the Host's. nil: the
	// recorder reads the host alone.
	Host *sample.Host
	// Procs, if set, is told of the recorder's work that may take
	// milliseconds (procs.go). nil: GOMAXPROCS is left as it is.
	Procs *Procs
}

// Recorder records one service. Create it with [New], then call [Recorder.Run].
type Recorder struct {
	cfg     Config
	opt     Options
	log     zerolog.Logger
	store   *capture.Store // the capture directory: every file the recorder touches
	lock    *capture.Lock  // held from New until Run returns (or Close)
	checker *health.Checker
	sampler *sample.Sampler
	scope   *scope // nil without cgroup scoping
	// testCgroupEmpty, set by a test, stands in for the watcher's last look
	// (cgroupEmpty).
	testCgroupEmpty func() bool
	words           *lastWords
	trace           *trace       // the service's fine trace; nil when disabled or unscoped (trace.go)
	sight           cgroup.Sight // what the watcher's last look asked for saw (look)

	samples *ring[capture.Sample]
	checks  *ring[capture.Check]

	healthyOnce bool // at least one check succeeded
	unhealthy   bool // the threshold was crossed and no check has succeeded since
	failures    int  // consecutive failed checks
	lastError   string
	neverError  string // the error of the never-healthy warning logged last
	checking    bool   // a check is in flight
	checkDone   chan capture.Check

	inc     *incident
	pending []pendingCapture // captures of closed incidents not yet written, oldest first
	// settling holds closed incidents whose triggers' systemd word is not
	// final yet (settleWords).
	settling []*incident

	unit unitTrack // systemd's word, where the unit is followed

	started  time.Time
	stopped  bool
	stateErr bool      // the last state write failed (logged once)
	lockErr  bool      // the lock could not be taken again (logged once)
	stateKey string    // what the state file says, to rewrite it only on change
	stateAt  time.Time // when it was last written
}

// incident is the open failure and its capture.
type incident struct {
	name    string // capture file name
	capture capture.Capture
	pre     int  // samples taken before the first trigger
	dirty   bool // the file does not yet hold the latest state
	// wordFinal[i]: systemd's word on trigger i is final (unitTrack).
	wordFinal []bool
	// gone[i]: the PIDs the watcher saw vanish at trigger i (an exit's).
	gone [][]int
	// ooms are the OOM kills in the kernel's lines last read for the
	// incident (kernelword.go); rereads counts the readings after the
	// first.
	ooms       []logs.OOMReport
	kernelRead bool
	rereads    int
}

// pendingCapture is the capture of a closed incident that could not be
// written yet: retried at every tick until it lands.
type pendingCapture struct {
	name string
	data []byte
}

// Bounds of the captures kept in memory while the disk refuses them
// (besides the open incident's): past either, the oldest is dropped with
// an error. The count is what an operator would want to inspect; the
// bytes keep a recorder's memory in check.
const (
	maxPending      = 16
	maxPendingBytes = 64 << 20
)

// New prepares a recorder. It validates cfg, builds the health checker, the
// sampler and the cgroup scope, then opens the capture directory (creating
// it, mode 0750), takes the service's lock (a second recorder of the same
// service and directory is refused with a *capture.LockedError naming the
// first's PID) and proves the service's directory writable. It removes
// nothing: a killed writer's temporary files and captures beyond KEEP are
// removed when Run starts. A recorder that never runs must be Closed.
func New(cfg Config, opt Options) (*Recorder, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if opt.ProcRoot == "" {
		opt.ProcRoot = "/proc"
	}
	if opt.CgroupRoot == "" {
		opt.CgroupRoot = "/sys/fs/cgroup"
	}
	if opt.Hostname == "" {
		opt.Hostname, _ = os.Hostname()
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	r := &Recorder{
		cfg:       cfg,
		opt:       opt,
		log:       opt.Logger.With().Str("service", cfg.Service).Logger(),
		samples:   newRing[capture.Sample](cfg.BufferSamples),
		checks:    newRing[capture.Check](cfg.BufferSamples),
		checkDone: make(chan capture.Check, 1),
	}
	var err error
	if r.checker, err = health.New(cfg.HealthURL, cfg.Timeout()); err != nil {
		return nil, &ConfigError{Name: cfg.Name("HealthURL"), Msg: err.Error()}
	}
	if r.sampler, err = newSampler(opt, cfg.TopProcesses); err != nil {
		r.checker.Close()
		return nil, fmt.Errorf("start sampling %s: %w", opt.ProcRoot, err)
	}
	if !opt.NoCgroup {
		r.scope = newScope(cfg, opt.CgroupRoot, r.log)
		if r.scope != nil {
			r.scope.procRoot = opt.ProcRoot
		}
		r.trace = newTrace(cfg, r.scope, opt.ProcRoot, opt.Procs)
	}
	r.words = newLastWords(cfg, opt, r.log)
	// The directory last: it is created and locked, nothing in it removed.
	if r.store, err = capture.Create(cfg.CaptureDir); err != nil {
		r.checker.Close()
		return nil, err
	}
	if r.lock, err = r.store.Lock(cfg.Service); err == nil {
		err = r.store.Prepare(cfg.Service)
	}
	if err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

// Close releases what New took: the lock, the directory, the checker. Run
// does it itself when it returns; Close is for a recorder that never ran.
func (r *Recorder) Close() {
	r.words.stop() // a reading of the logs in flight
	if r.lock != nil {
		r.lock.Unlock()
		r.lock = nil
	}
	if r.store != nil {
		r.store.Close()
	}
	r.checker.Close()
}

// cleanup removes what a killed writer of this service left (temporary
// files) and the captures beyond KEEP (a writer killed between a capture's
// rename and its retention pass left KEEP+1, or KEEP was lowered). Run does
// it first, under the lock.
func (r *Recorder) cleanup() {
	removed, err := r.store.CleanStale(r.cfg.Service)
	if err != nil {
		r.log.Warn().Err(err).Msg("failed to clean stale temporary files")
	}
	if len(removed) > 0 {
		r.log.Info().Strs("files", removed).Msg("removed temporary files of a killed writer")
	}
	r.retain()
}

// Run records until ctx is done. It returns nil on cancellation, after any
// capture in flight is written.
func (r *Recorder) Run(ctx context.Context) error {
	defer r.Close()
	r.cleanup()
	var events <-chan trigger
	var unitStates <-chan cgroup.UnitState
	if r.scope != nil {
		events = r.scope.start(ctx)
		defer r.scope.wait()
		if r.scope.follow != nil {
			r.unit.name = r.scope.unit
			unitStates = r.scope.follow.Updates()
			r.unit.answers = make(chan stateAnswer, 1)
			r.unit.ask = func() bool { return r.scope.askState(r.unit.answers) }
			r.followFrom(r.scope.follow.Current())
		}
	}
	r.log.Info().
		Str("health_url", health.ShownURL(r.cfg.HealthURL)).
		Float64("interval_seconds", r.cfg.IntervalSeconds).
		Int("buffer_samples", r.cfg.BufferSamples).
		Str("path", r.Dir()).
		Msg("recorder started")

	r.started = r.opt.Now()
	r.writeState(true)
	defer func() { r.stopped = true; r.writeState(true) }()
	r.tick(ctx, time.Now())
	if r.opt.Ready != nil {
		r.opt.Ready()
	}
	sampleT := newTicker(r.cfg.Interval())
	defer sampleT.Stop()
	// The trace's ticks fall on the samples' grid (share.go): a sample
	// tick is also a trace tick, and the recorders of one process read
	// their traces at the same instants, so one wake-up of the process
	// serves them all.
	var traceT tickSource
	var traceC <-chan time.Time
	if r.trace != nil {
		if t, err := newFDTicker(r.trace.every); err == nil {
			traceT, traceC = t, t.C
		} else {
			r.log.Debug().Err(err).Msg("the trace ticks on a Go timer")
			t := newTicker(r.trace.every)
			traceT, traceC = t, t.C
		}
		defer traceT.Stop()
		defer r.trace.close()
	}
	for {
		select {
		case <-ctx.Done():
			r.flush(true)
			r.log.Info().Msg("recorder stopped")
			return nil
		case now := <-sampleT.C:
			sampleT.next()
			r.tick(ctx, now)
		case now := <-traceC:
			traceT.next()
			r.traceTick(now)
		case c := <-r.checkDone:
			r.checking = false
			if ctx.Err() != nil {
				continue // cut short by shutdown: says nothing about the service
			}
			r.takeEvents(events) // seen before this result: theirs come first
			r.onCheck(c)
			r.writeState(false)
		case t := <-events:
			// Its sample, record and write each run on two Ps: one switch
			// for all of them, as each stops the world (procs.go).
			r.opt.Procs.Enter()
			r.onTrigger(t)
			r.opt.Procs.Leave()
		case st, ok := <-unitStates:
			if !ok {
				unitStates = nil
				r.log.Warn().Err(r.scope.follow.Err()).Msg("lost systemd's word on the unit: held triggers are recorded")
				r.unit.on = false
				r.scope.w.SetMain(0) // its end could no more be told from a hand-over
				r.releaseHeld(true)
				continue
			}
			r.onUnitState(st)
		case now := <-r.holdC():
			r.decideHeld(now)
		case a := <-r.unit.answers:
			r.onAnswer(a)
		case w := <-r.words.done:
			r.onLastWords(w)
		}
	}
}

// tick takes the interval's sample, starts its health check, and retries a
// capture that could not be written.
func (r *Recorder) tick(ctx context.Context, now time.Time) {
	// The sample and the health check (a TLS handshake may take
	// milliseconds of CPU) run on two Ps (procs.go): one Enter for both.
	r.opt.Procs.Enter()
	r.samples.push(r.takeSample(now, r.look()))
	r.checkHeld(now)
	if len(r.settling) > 0 {
		r.settleWords(now) // words final by time let their incidents go
	}
	if !r.checking {
		r.checking = true
		go func() {
			c := r.checker.Check(ctx)
			r.opt.Procs.Leave()
			r.checkDone <- c
		}()
	} else {
		r.opt.Procs.Leave()
	}
	r.flush(false)
	r.relock()
	r.writeState(false)
}

// look makes the cgroup watcher's periodic look on this wake-up of the
// recorder, in its goroutine (cgroup.Watcher.Look): the watcher's own
// timer then fires only when the recorder did not wake within its period,
// and an idle recorder wakes one goroutine a second, not two. It returns
// what the look saw, valid until the next look; nil when the watcher did
// not look.
func (r *Recorder) look() *cgroup.Sight {
	if r.scope == nil || !r.scope.w.Look() {
		return nil
	}
	r.scope.w.Seen(&r.sight)
	return &r.sight
}

// relock takes the service's lock again if its lock file was removed
// under the recorder (with the whole capture directory, say), so that a
// second recorder is still refused. If another recorder got it first, that
// is logged as an error: two recorders now write the same service.
func (r *Recorder) relock() {
	if r.store.Holds(r.lock, r.cfg.Service) {
		return
	}
	l, err := r.store.Lock(r.cfg.Service)
	if err != nil {
		if !r.lockErr {
			r.log.Error().Err(err).Msg("lost the service's lock: its lock file was removed")
		}
		r.lockErr = true
		return
	}
	r.lock.Unlock()
	r.lock, r.lockErr = l, false
	r.log.Info().Str("path", capture.LockPath(r.cfg.CaptureDir, r.cfg.Service)).Msg("service's lock file re-created")
}

// takeSample takes the interval's sample; seen, if not nil, is the look
// made just before it, whose processes stand for the service's.
func (r *Recorder) takeSample(now time.Time, seen *cgroup.Sight) capture.Sample {
	r.opt.Procs.Enter()
	defer r.opt.Procs.Leave()
	var pids []int
	path := ""
	if r.scope != nil {
		path, pids = r.scope.procs(seen)
	}
	s, procs := r.sampler.SampleDue(now, now.UTC(), pids)
	if r.scope != nil && path != "" {
		s.Service = r.scope.service(path, now, procs)
	}
	return s
}

// triggerSample is the sample of a trigger: the service's evidence first
// (as the watcher read it at a cgroup event; its processes alone), then the
// host's scan.
func (r *Recorder) triggerSample(t trigger) capture.Sample {
	now := time.Now()
	r.opt.Procs.Enter()
	defer r.opt.Procs.Leave()
	var svc *capture.Service
	if r.scope != nil {
		svc = r.scope.atTrigger(now, t.ev, r.sampler)
	}
	s, _ := r.sampler.SampleFresh(now.UTC(), nil)
	s.Service = svc
	return s
}

// onCheck applies the contract's health rule to one check result.
func (r *Recorder) onCheck(c capture.Check) {
	r.checks.push(c)
	if r.trace != nil {
		r.trace.onCheck(c, r.cfg.Timeout())
	}
	if !c.OK && r.quiet() {
		r.log.Debug().Str("error", c.Error).Msg("health check failed while the service is down on request")
		return
	}
	if c.OK {
		r.failures = 0
		r.lastError = ""
		if r.unhealthy {
			r.log.Info().Msg("service healthy again")
		}
		r.healthyOnce, r.unhealthy = true, false
		if r.inc != nil && c.At.After(r.inc.lastTrigger()) {
			r.closeIncident()
		}
		return
	}
	r.failures++
	r.lastError = c.Error
	r.log.Debug().Str("error", c.Error).Int("failures", r.failures).Msg("health check failed")
	if !r.healthyOnce && r.failures >= r.cfg.FailureThreshold && c.Error != r.neverError {
		// Failures before any success never trigger (the service may still
		// be starting), so a check that can never succeed would stay silent.
		r.neverError = c.Error
		r.log.Warn().Str("error", c.Error).Int("failures", r.failures).
			Msg("health check has never succeeded: no health capture until one does")
	}
	if r.healthyOnce && !r.unhealthy && r.failures >= r.cfg.FailureThreshold {
		r.unhealthy = true
		r.onTrigger(trigger{kind: capture.TriggerHealth, at: r.opt.Now(), detail: c.Error})
	}
}

// trigger is one failure seen: a health transition or a cgroup event.
type trigger struct {
	kind   string
	at     time.Time
	detail string
	ev     *cgroup.Event // the cgroup event, with the evidence read at it; nil for health
}

// main is the main process whose end the trigger is (cgroup.Event.Main),
// 0 for any other.
func (t trigger) main() int {
	if t.ev == nil {
		return 0
	}
	return t.ev.Main
}

// onTrigger takes the trigger's sample at once, then records it, or holds
// an exit trigger for systemd's word (unitTrack).
func (r *Recorder) onTrigger(t trigger) {
	if r.inc != nil && len(r.inc.capture.Triggers) >= maxTriggers {
		r.inc.capture.TriggersOmitted++
		r.inc.dirty = true
		r.log.Debug().Str("trigger", t.kind).Msg("trigger counted, not recorded: incident holds the most triggers")
		return
	}
	s := r.triggerSample(t)
	if main := t.main(); main > 0 {
		t.detail = r.namedMain(main, t.detail)
	}
	if r.holdExit(t, s) {
		return
	}
	if len(r.unit.held) > 0 && r.unit.deliberate == "" {
		r.unit.oomNext = t.kind == capture.TriggerOOM // its own, not one on systemd's word
		r.releaseHeld(true)                           // an oom or health trigger: the held exits were failures
		r.unit.oomNext = false
	}
	r.record(t, s)
}

// namedMain puts the name the newest sample gives the main process pid
// (gone by now) into the detail of its exit: "main process 483 (postgres)
// ended …".
func (r *Recorder) namedMain(pid int, detail string) string {
	s, ok := r.samples.newest()
	if !ok || s.Service == nil {
		return detail
	}
	i := slices.IndexFunc(s.Service.Processes, func(p capture.Process) bool { return p.PID == pid })
	if i < 0 || s.Service.Processes[i].Name == "" {
		return detail
	}
	num := strconv.Itoa(pid)
	return strings.Replace(detail, " "+num+" ", " "+num+" ("+s.Service.Processes[i].Name+") ", 1)
}

// record opens an incident with the trigger and its sample, or adds them
// to the open one, and writes it.
func (r *Recorder) record(t trigger, s capture.Sample) {
	r.opt.Procs.Enter() // it writes, and may ask systemctl (procs.go)
	defer r.opt.Procs.Leave()
	log := r.log.With().Str("trigger", t.kind).Str("detail", t.detail).Logger()
	if r.inc != nil && len(r.inc.capture.Triggers) >= maxTriggers {
		r.inc.capture.TriggersOmitted++
		r.inc.dirty = true
		log.Debug().Msg("trigger counted, not recorded: incident holds the most triggers")
		return
	}
	s.Trigger = t.kind
	first := r.inc == nil
	pre := r.samples.snapshot()
	r.samples.push(s)
	tr := capture.Trigger{Kind: t.kind, At: t.at.UTC(), Detail: t.detail}
	if r.inc == nil {
		r.inc = r.newIncident(tr, pre)
	} else {
		r.inc.capture.Triggers = append(r.inc.capture.Triggers, tr)
	}
	var gone []int
	if t.ev != nil {
		gone = t.ev.Gone
	}
	r.inc.gone = append(r.inc.gone, gone)
	r.inc.capture.Samples = append(r.inc.capture.Samples, s)
	r.traceInto(&r.inc.capture, &s)
	r.inc.dirty = true
	if r.scope != nil && s.Service == nil {
		r.inc.capture.ServiceMissing = r.scope.missing()
	}
	log.Warn().Msg("service failed")
	r.write()
	r.writeState(false) // list shows the open incident at once
	if first {
		r.askLastWords() // the kernel's and the journal's words, once durable
	} else if r.inc.kernelRead && t.kind != capture.TriggerHealth {
		r.afterKernelLines(r.inc) // the kernel's lines came before this trigger
	}
	if r.unit.on {
		r.updateWords(time.Now()) // systemd's word as it stands; updated as systemd reports
		return
	}
	// Without systemd's word over D-Bus, its view costs a subprocess; it is
	// added after the capture is durable, never before, and read once:
	// right after the first trigger it still shows how the service ended
	// (Result=signal, status 9); later it shows the restarted service.
	if r.scope != nil && r.inc.capture.Systemd == nil && r.scope.addSystemd(&r.inc.capture) {
		r.inc.dirty = true
		r.write()
	}
}

func (r *Recorder) newIncident(tr capture.Trigger, pre []capture.Sample) *incident {
	// Names never go backwards, never collide: after the newest capture on
	// disk or pending (a clock stepped back, two incidents in one ms).
	taken := make([]string, 0, len(r.pending))
	for _, p := range r.pending {
		taken = append(taken, p.name)
	}
	name, err := r.store.NextName(r.cfg.Service, tr.At, taken)
	if err != nil {
		// The directory is unreadable now: name it by the clock, after
		// every pending one; the write will say what is wrong.
		r.log.Warn().Err(err).Msg("failed to list captures to name a new one")
		name = capture.FileName(tr.At)
		for _, n := range taken {
			if n >= name {
				t, _ := capture.ParseFileName(n)
				name = capture.FileName(t.Add(time.Millisecond))
			}
		}
	}
	return &incident{
		name: name,
		pre:  len(pre),
		capture: capture.Capture{
			Schema:           capture.Schema,
			Service:          r.cfg.Service,
			Host:             r.opt.Hostname,
			HealthURL:        health.ShownURL(r.cfg.HealthURL),
			Unit:             r.cfg.Unit,
			TransitionTime:   tr.At,
			Triggers:         []capture.Trigger{tr},
			Samples:          pre,
			IntervalSeconds:  r.cfg.IntervalSeconds,
			PreflightVersion: r.opt.Version,
		},
	}
}

func (i *incident) lastTrigger() time.Time {
	return i.capture.Triggers[len(i.capture.Triggers)-1].At
}

func (r *Recorder) closeIncident() {
	inc := r.inc
	if inc.dirty {
		r.write() // a last try while it is the open incident
	}
	r.log.Info().Str("path", r.store.Path(r.cfg.Service, inc.name)).Msg("incident over")
	r.inc = nil
	if r.unit.on && !inc.wordsFinal() {
		r.settling = append(r.settling, inc) // systemd's word may still come
	}
	if !inc.dirty {
		return
	}
	// Not written: it stays pending, retried at every tick.
	r.opt.Procs.Enter()
	data, err := capture.Encode(&inc.capture)
	r.opt.Procs.Leave()
	if err != nil {
		r.log.Error().Err(err).Str("path", r.store.Path(r.cfg.Service, inc.name)).Msg("failed to encode capture")
		return
	}
	r.pending = append(r.pending, pendingCapture{name: inc.name, data: data})
	r.boundPending()
}

// rewriteClosed rewrites the capture of a closed incident that learnt
// more (systemd's word, the last words): in place, or in its pending copy
// while the disk refuses it.
func (r *Recorder) rewriteClosed(inc *incident) {
	r.opt.Procs.Enter()
	defer r.opt.Procs.Leave()
	data, err := capture.Encode(&inc.capture)
	if err != nil {
		r.log.Error().Err(err).Str("path", r.store.Path(r.cfg.Service, inc.name)).Msg("failed to encode capture")
		return
	}
	for i := range r.pending {
		if r.pending[i].name == inc.name {
			r.pending[i].data = data // written at the next tick
			return
		}
	}
	if r.writeFile(inc.name, data, "", false) != nil {
		r.pending = append(r.pending, pendingCapture{name: inc.name, data: data})
		r.boundPending()
	}
}

// boundPending drops the oldest pending captures beyond maxPending or
// maxPendingBytes, each with an error.
func (r *Recorder) boundPending() {
	total := 0
	for _, p := range r.pending {
		total += len(p.data)
	}
	for len(r.pending) > 0 && (len(r.pending) > maxPending || total > maxPendingBytes) {
		p := r.pending[0]
		r.pending = r.pending[1:]
		total -= len(p.data)
		r.log.Error().Str("path", r.store.Path(r.cfg.Service, p.name)).Int("bytes", len(p.data)).
			Int("pending", len(r.pending)).Msg("capture dropped: too many captures waiting for the disk")
	}
}

// flush retries every capture not yet written: the pending ones, oldest
// first, then the open incident's. At the end (final) what still cannot be
// written is logged, each as an error.
func (r *Recorder) flush(final bool) {
	if len(r.pending) > 0 {
		r.opt.Procs.Enter()
		defer r.opt.Procs.Leave()
	}
	left := r.pending[:0]
	var firstErr error
	for _, p := range r.pending {
		if err := r.writeFile(p.name, p.data, "", true); err != nil {
			left = append(left, p)
			firstErr = cmp.Or(firstErr, err)
		}
	}
	clear(r.pending[len(left):])
	r.pending = left
	if firstErr != nil { // one line a tick, however many wait
		r.log.Error().Err(firstErr).Str("path", r.store.Path(r.cfg.Service, left[0].name)).Int("pending", len(left)).
			Msg("failed to write pending captures, will retry")
	}
	if r.inc != nil && r.inc.dirty {
		r.write()
	}
	if !final {
		return
	}
	for _, p := range r.pending {
		r.log.Error().Str("path", r.store.Path(r.cfg.Service, p.name)).Int("bytes", len(p.data)).Msg("capture lost at exit: it could not be written")
	}
	if r.inc != nil && r.inc.dirty {
		r.log.Error().Str("path", r.store.Path(r.cfg.Service, r.inc.name)).Msg("capture lost at exit: it could not be written")
	}
}

// write writes the open incident's capture. A failure is logged and the
// capture stays dirty, to be retried at the next tick: the recorder never
// stops sampling because the disk is full.
func (r *Recorder) write() {
	r.opt.Procs.Enter()
	defer r.opt.Procs.Leave()
	inc := r.inc
	inc.capture.Health = r.checks.snapshot()
	if r.lastError != "" { // a healthy check that ends the incident keeps its error
		inc.capture.HealthError = r.lastError
	}
	data, err := capture.Encode(&inc.capture)
	if err != nil {
		r.log.Error().Err(err).Str("path", r.store.Path(r.cfg.Service, inc.name)).Msg("failed to encode capture")
		return
	}
	if r.writeFile(inc.name, data, inc.capture.Triggers[len(inc.capture.Triggers)-1].Kind, false) == nil {
		inc.dirty = false
	}
}

// writeFile writes one capture through the store, logs the outcome (a
// failure only unless quiet), and after a new file removes the captures
// beyond KEEP. The error it returns is the reason alone.
func (r *Recorder) writeFile(name string, data []byte, trigger string, quiet bool) error {
	log := r.log.With().Str("path", r.store.Path(r.cfg.Service, name)).Logger()
	if trigger != "" {
		log = log.With().Str("trigger", trigger).Logger()
	}
	created, err := r.store.Write(r.cfg.Service, name, data)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err // the path is logged on its own
		}
		if !quiet {
			log.Error().Err(err).Msg("failed to write capture, will retry")
		}
		return err
	}
	if !created {
		log.Info().Str("capture", r.capturePath(name)).Int("bytes", len(data)).Msg("capture updated")
		return nil
	}
	log.Info().Str("capture", r.capturePath(name)).Int("bytes", len(data)).Msg("capture written")
	r.retain()
	return nil
}

// retain removes the oldest captures beyond KEEP, never the open
// incident's (which names never let be the oldest anyway).
func (r *Recorder) retain() {
	protect := ""
	if r.inc != nil {
		protect = r.inc.name
	}
	removed, err := r.store.Retain(r.cfg.Service, r.cfg.Keep, protect)
	if err != nil {
		r.log.Warn().Err(err).Str("path", r.Dir()).Msg("failed to remove old captures")
	} else if len(removed) > 0 {
		r.log.Info().Strs("files", removed).Int("keep", r.cfg.Keep).Str("path", r.Dir()).Msg("removed old captures")
	}
}

// Dir returns the service's capture directory.
func (r *Recorder) Dir() string { return r.store.Path(r.cfg.Service) }

// stateRefresh is how often an unchanged state file is rewritten, so that
// readers can tell a live recorder from a dead one (capture.State.Stale).
const stateRefresh = 30 * time.Second

// writeState rewrites the recorder's live state file for 'preflight list'
// when what it says changed, when it is stateRefresh old, or when force is
// set. It is atomic but not fsynced.
// It is live state, not evidence: a failure is logged once and never stops
// the recorder.
func (r *Recorder) writeState(force bool) {
	st := capture.State{
		Service:         r.cfg.Service,
		PID:             os.Getpid(),
		Host:            r.opt.Hostname,
		State:           r.liveState(),
		UpdatedAt:       r.opt.Now().UTC(),
		StartedAt:       r.started.UTC(),
		IntervalSeconds: r.cfg.IntervalSeconds,
		TimeoutSeconds:  r.cfg.TimeoutSeconds,
		RefreshSeconds:  stateRefresh.Seconds(),
		HealthURL:       health.ShownURL(r.cfg.HealthURL),
		Version:         r.opt.Version,
	}
	if checks := r.checks.snapshot(); len(checks) > 0 {
		st.LastCheck = &checks[len(checks)-1]
	}
	if r.inc != nil {
		st.OpenIncident = r.inc.name
	}
	if r.scope != nil && !r.stopped {
		if r.unit.stopped {
			st.Unit = &capture.UnitStatus{State: capture.UnitStopped, Reason: "unit " + r.scope.unit + " is inactive on request"}
		} else if reason := r.scope.warnUnscoped(st.UpdatedAt); reason != "" {
			st.Unit = &capture.UnitStatus{State: capture.UnitUnscoped, Reason: reason}
		}
	}
	key := st.State + "\x00" + st.OpenIncident
	if st.Unit != nil {
		key += "\x00" + st.Unit.State + "\x00" + st.Unit.Reason
	}
	if !force && key == r.stateKey && st.UpdatedAt.Sub(r.stateAt) < stateRefresh {
		return
	}
	err := r.store.WriteState(&st)
	if err != nil && !r.stateErr {
		r.log.Warn().Err(err).Msg("failed to write state file")
	}
	r.stateErr = err != nil
	if err == nil {
		r.stateKey, r.stateAt = key, st.UpdatedAt
	}
}

func (r *Recorder) liveState() string {
	switch {
	case r.stopped:
		return capture.StateStopped
	case r.unhealthy:
		return capture.StateUnhealthy
	case r.failures > 0 && r.healthyOnce:
		return capture.StateFailing
	case r.healthyOnce:
		return capture.StateHealthy
	default:
		return capture.StateStarting
	}
}
