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
//     (a restart), seen by package cgroup within milliseconds;
//   - oom: the kernel OOM-killed a process in the service's cgroup.
//
// Later triggers of the same incident append to the same capture and rewrite
// it in place, atomically; a healthy check that started after the incident's
// latest trigger ends the incident. One failure, one file.
//
// At every trigger the recorder takes one more sample at once, so a capture
// ends with the scene at the failure: its samples are the ring as it stood
// before the first trigger, then one sample per trigger.
//
// # Concurrency
//
// One goroutine ([Recorder.Run]) owns all state: the ring, the incident and
// the writes. Health checks run in a goroutine of their own, one at a time,
// so a slow check never delays a trigger. Writes are synchronous: when Run's
// context is cancelled, a capture in flight completes before Run returns.
package recorder

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/rs/zerolog"

	"github.com/preflight-rec/preflight/atomicfile"
	"github.com/preflight-rec/preflight/cgroup"
	"github.com/preflight-rec/preflight/recorder/capture"
	"github.com/preflight-rec/preflight/recorder/health"
	"github.com/preflight-rec/preflight/recorder/sample"
)

// File modes of the capture directory and files, whatever the umask.
const (
	DirMode  os.FileMode = 0o750
	FileMode os.FileMode = 0o640
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
}

// Recorder records one service. Create it with [New], then call [Recorder.Run].
type Recorder struct {
	cfg     Config
	opt     Options
	log     zerolog.Logger
	dir     string // cfg.CaptureDir/cfg.Service
	checker *health.Checker
	sampler *sample.Sampler
	scope   *scope // nil without cgroup scoping

	samples *ring[capture.Sample]
	checks  *ring[capture.Check]

	healthyOnce bool // at least one check succeeded
	unhealthy   bool // the threshold was crossed and no check has succeeded since
	failures    int  // consecutive failed checks
	lastError   string
	checking    bool // a check is in flight
	checkDone   chan capture.Check

	inc *incident

	unit unitTrack // systemd's word, where the unit is followed

	started  time.Time
	stopped  bool
	stateErr bool      // the last state write failed (logged once)
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
}

// New prepares a recorder: it validates cfg, creates the capture directory
// (mode 0750) and proves it writable, removes temporary files a killed writer
// left there, and takes the baseline reading of the host.
func New(cfg Config, opt Options) (*Recorder, error) {
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
	r := &Recorder{
		cfg:       cfg,
		opt:       opt,
		log:       opt.Logger.With().Str("service", cfg.Service).Logger(),
		dir:       filepath.Join(cfg.CaptureDir, cfg.Service),
		samples:   newRing[capture.Sample](cfg.BufferSamples),
		checks:    newRing[capture.Check](cfg.BufferSamples),
		checkDone: make(chan capture.Check, 1),
	}
	if err := r.prepareDir(); err != nil {
		return nil, err
	}
	r.cleanStale(r.dir, func(name string) bool {
		_, ok := capture.ParseFileName(name)
		return ok || name == probeName[1:] // prepareDir's probe, if killed before removing it
	})
	r.cleanStale(r.stateDir(), func(name string) bool { return name == r.cfg.Service+capture.Ext })
	// A writer killed between a capture's rename and its retention pass
	// left KEEP+1 captures (or KEEP was lowered): restore the bound now.
	r.retain("")
	var err error
	if r.checker, err = health.New(cfg.HealthURL, cfg.Timeout()); err != nil {
		return nil, &ConfigError{Name: cfg.Name("HealthURL"), Msg: err.Error()}
	}
	if r.sampler, err = sample.New(opt.ProcRoot, cfg.TopProcesses); err != nil {
		return nil, fmt.Errorf("failed to start sampling %s: %w", opt.ProcRoot, err)
	}
	if !opt.NoCgroup {
		r.scope = newScope(cfg, opt.CgroupRoot, r.log)
	}
	return r, nil
}

// cleanStale removes the temporary files a killed writer left in dir.
func (r *Recorder) cleanStale(dir string, isTarget func(string) bool) {
	removed, err := atomicfile.CleanStale(dir, isTarget)
	if err != nil {
		r.log.Warn().Err(err).Str("path", dir).Msg("failed to clean stale temporary files")
	} else if len(removed) > 0 {
		r.log.Info().Strs("files", removed).Str("path", dir).Msg("removed temporary files of a killed writer")
	}
}

// probeName is the prefix of the file prepareDir creates to prove the
// directory writable: "." + "probe" + random digits, a temporary file that
// [atomicfile.CleanStale] recognizes.
const probeName = ".probe"

// prepareDir creates the service's capture directory and proves that a file
// can be created in it.
func (r *Recorder) prepareDir() error {
	for _, d := range []string{r.cfg.CaptureDir, r.dir} {
		if err := mkdir(d); err != nil && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("failed to create capture directory %s: %w", d, unwrapPath(err))
		}
	}
	// The service name cannot climb out of the capture directory; a link
	// in its place must not lead the writes elsewhere either.
	if st, err := os.Lstat(r.dir); err == nil && !st.IsDir() {
		return fmt.Errorf("capture directory %s is not a directory (%v)", r.dir, st.Mode().Type())
	}
	if err := os.Chmod(r.dir, DirMode); err != nil {
		return fmt.Errorf("failed to set mode of capture directory %s: %w", r.dir, unwrapPath(err))
	}
	f, err := os.CreateTemp(r.dir, probeName)
	if err != nil {
		return fmt.Errorf("capture directory %s is not writable: %w", r.dir, unwrapPath(err))
	}
	f.Close()
	return os.Remove(f.Name())
}

// Run records until ctx is done. It returns nil on cancellation, after any
// capture in flight is written.
func (r *Recorder) Run(ctx context.Context) error {
	defer r.checker.Close()
	var events <-chan trigger
	var unitStates <-chan cgroup.UnitState
	if r.scope != nil {
		events = r.scope.start(ctx)
		defer r.scope.wait()
		if r.scope.follow != nil {
			r.unit.on, r.unit.name = true, r.scope.unit
			unitStates = r.scope.follow.Updates()
			r.unit.hist = append(r.unit.hist, r.scope.follow.Current())
			if st := r.scope.follow.Current(); !isUp(st) {
				r.unit.stopped = st.ActiveState == "inactive"
			}
		}
	}
	r.log.Info().
		Str("health_url", shownURL(r.cfg.HealthURL)).
		Float64("interval_seconds", r.cfg.IntervalSeconds).
		Int("buffer_samples", r.cfg.BufferSamples).
		Str("path", r.dir).
		Msg("recorder started")

	r.started = time.Now()
	r.writeState(true)
	defer func() { r.stopped = true; r.writeState(true) }()
	r.tick(ctx, time.Now())
	if r.opt.Ready != nil {
		r.opt.Ready()
	}
	ticker := time.NewTicker(r.cfg.Interval())
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			r.log.Info().Msg("recorder stopped")
			return nil
		case now := <-ticker.C:
			r.tick(ctx, now)
		case c := <-r.checkDone:
			r.checking = false
			if ctx.Err() != nil {
				continue // cut short by shutdown: says nothing about the service
			}
			r.onCheck(c)
			r.writeState(false)
		case t := <-events:
			r.onTrigger(t)
		case st, ok := <-unitStates:
			if !ok {
				unitStates = nil
				r.log.Warn().Err(r.scope.follow.Err()).Msg("lost systemd's word on the unit: held triggers are recorded")
				r.unit.on = false
				r.releaseHeld(true)
				continue
			}
			r.onUnitState(st)
		case now := <-r.holdC():
			r.decideHeld(now)
		}
	}
}

// tick takes the interval's sample, starts its health check, and retries a
// capture that could not be written.
func (r *Recorder) tick(ctx context.Context, now time.Time) {
	r.samples.push(r.takeSample(now))
	r.checkHeld(now)
	if !r.checking {
		r.checking = true
		go func() { r.checkDone <- r.checker.Check(ctx) }()
	}
	if r.inc != nil && r.inc.dirty {
		r.write()
	}
	r.writeState(false)
}

func (r *Recorder) takeSample(now time.Time) capture.Sample {
	var pids []int
	path := ""
	if r.scope != nil {
		path, pids = r.scope.procs()
	}
	s, procs := r.sampler.Sample(now.UTC(), pids)
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
	var svc *capture.Service
	if r.scope != nil {
		svc = r.scope.atTrigger(now, t.ev, r.sampler)
	}
	s, _ := r.sampler.Sample(now.UTC(), nil)
	s.Service = svc
	return s
}

// onCheck applies the contract's health rule to one check result.
func (r *Recorder) onCheck(c capture.Check) {
	r.checks.push(c)
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
	if r.healthyOnce && !r.unhealthy && r.failures >= r.cfg.FailureThreshold {
		r.unhealthy = true
		r.onTrigger(trigger{kind: capture.TriggerHealth, at: time.Now(), detail: c.Error})
	}
}

// trigger is one failure seen: a health transition or a cgroup event.
type trigger struct {
	kind   string
	at     time.Time
	detail string
	ev     *cgroup.Event // the cgroup event, with the evidence read at it; nil for health
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
	if r.holdExit(t, s) {
		return
	}
	if len(r.unit.held) > 0 && r.unit.deliberate == "" {
		r.releaseHeld(true) // an oom or health trigger: the held exits were failures
	}
	r.record(t, s)
}

// record opens an incident with the trigger and its sample, or adds them
// to the open one, and writes it.
func (r *Recorder) record(t trigger, s capture.Sample) {
	log := r.log.With().Str("trigger", t.kind).Str("detail", t.detail).Logger()
	if r.inc != nil && len(r.inc.capture.Triggers) >= maxTriggers {
		r.inc.capture.TriggersOmitted++
		r.inc.dirty = true
		log.Debug().Msg("trigger counted, not recorded: incident holds the most triggers")
		return
	}
	pre := r.samples.snapshot()
	r.samples.push(s)
	tr := capture.Trigger{Kind: t.kind, At: t.at.UTC(), Detail: t.detail}
	if r.inc == nil {
		r.inc = r.newIncident(tr, pre)
	} else {
		r.inc.capture.Triggers = append(r.inc.capture.Triggers, tr)
	}
	r.inc.capture.Samples = append(r.inc.capture.Samples, s)
	r.inc.dirty = true
	if r.scope != nil && s.Service == nil {
		r.inc.capture.ServiceMissing = r.scope.missing()
	}
	log.Warn().Msg("service failed")
	r.write()
	r.writeState(false) // list shows the open incident at once
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
	name := capture.FileName(tr.At)
	// Two incidents in one millisecond, or a clock stepped back: never
	// overwrite another incident's file.
	for t := tr.At; ; {
		if !exists(filepath.Join(r.dir, name)) {
			break
		}
		t = t.Add(time.Millisecond)
		name = capture.FileName(t)
	}
	return &incident{
		name: name,
		pre:  len(pre),
		capture: capture.Capture{
			Schema:           capture.Schema,
			Service:          r.cfg.Service,
			Host:             r.opt.Hostname,
			HealthURL:        shownURL(r.cfg.HealthURL),
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
	if r.inc.dirty {
		r.write() // last chance for a capture that could not be written
	}
	r.log.Info().Str("path", filepath.Join(r.dir, r.inc.name)).Msg("incident over")
	r.inc = nil
}

// write writes the open incident's capture. A failure is logged and the
// capture stays dirty, to be retried at the next tick: the recorder never
// stops sampling because the disk is full.
func (r *Recorder) write() {
	inc := r.inc
	inc.capture.Health = r.checks.snapshot()
	inc.capture.HealthError = r.lastError
	path := filepath.Join(r.dir, inc.name)
	log := r.log.With().Str("path", path).Str("trigger", inc.capture.Triggers[len(inc.capture.Triggers)-1].Kind).Logger()
	data, err := capture.Encode(&inc.capture)
	if err != nil {
		log.Error().Err(err).Msg("failed to encode capture")
		return
	}
	if err := r.ensureDir(); err != nil {
		log.Error().Err(err).Msg("failed to write capture, will retry")
		return
	}
	created := !exists(path)
	if err := atomicfile.WriteFile(r.dir, inc.name, data, FileMode); err != nil {
		log.Error().Err(unwrapPath(err)).Msg("failed to write capture, will retry")
		return
	}
	inc.dirty = false
	if created {
		log.Info().Int("samples", len(inc.capture.Samples)).Int("bytes", len(data)).Msg("capture written")
		r.retain(inc.name)
		return
	}
	log.Info().Int("triggers", len(inc.capture.Triggers)).Int("bytes", len(data)).Msg("capture updated")
}

// retain removes the oldest captures beyond KEEP, never the file protect.
func (r *Recorder) retain(protect string) {
	removed, err := capture.Retain(r.cfg.CaptureDir, r.cfg.Service, r.cfg.Keep, protect)
	if err != nil {
		r.log.Warn().Err(err).Str("path", r.dir).Msg("failed to remove old captures")
	} else if len(removed) > 0 {
		r.log.Info().Strs("files", removed).Int("keep", r.cfg.Keep).Str("path", r.dir).Msg("removed old captures")
	}
}

// ensureDir re-creates the service's capture directory (and the capture
// directory above it) if it was removed. It never follows a link in its
// place.
func (r *Recorder) ensureDir() error {
	if st, err := os.Lstat(r.dir); err == nil {
		if !st.IsDir() {
			return fmt.Errorf("%s is not a directory (%v)", r.dir, st.Mode().Type())
		}
		return nil
	}
	for _, d := range []string{r.cfg.CaptureDir, r.dir} {
		if err := mkdir(d); err != nil && !errors.Is(err, os.ErrExist) {
			return unwrapPath(err)
		}
	}
	return nil
}

// mkdir creates dir with DirMode, whatever the umask. An existing dir is
// an error satisfying errors.Is(err, os.ErrExist), and keeps its mode.
func mkdir(dir string) error {
	if err := os.Mkdir(dir, DirMode); err != nil {
		return err
	}
	return os.Chmod(dir, DirMode)
}

// shownURL is the health URL as captures, the state file and the log show
// it: as configured, but for the password of its user info, replaced by
// "xxxxx" (as health check errors show it). Captures are readable by a
// group; the password is not theirs to hand on.
func shownURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	if _, ok := u.User.Password(); !ok {
		return raw
	}
	return u.Redacted()
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// unwrapPath drops the *PathError's op and path, which the caller's message
// already says, keeping the reason ("permission denied", "no space left on
// device").
func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	var le *os.LinkError
	if errors.As(err, &le) {
		return le.Err
	}
	return err
}

// Dir returns the service's capture directory.
func (r *Recorder) Dir() string { return r.dir }

func (r *Recorder) stateDir() string { return filepath.Join(r.cfg.CaptureDir, capture.StateDir) }

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
		UpdatedAt:       time.Now().UTC(),
		StartedAt:       r.started.UTC(),
		IntervalSeconds: r.cfg.IntervalSeconds,
		TimeoutSeconds:  r.cfg.TimeoutSeconds,
		RefreshSeconds:  stateRefresh.Seconds(),
		HealthURL:       shownURL(r.cfg.HealthURL),
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
	data, err := json.Marshal(st)
	if err == nil {
		dir := r.stateDir()
		if err = mkdir(dir); err == nil || errors.Is(err, os.ErrExist) {
			if st, lerr := os.Lstat(dir); lerr == nil && !st.IsDir() { // never through a link
				err = fmt.Errorf("%s is not a directory (%v)", dir, st.Mode().Type())
			} else {
				err = atomicfile.ReplaceFile(dir, r.cfg.Service+capture.Ext, data, FileMode)
			}
		}
	}
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
