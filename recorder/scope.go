package recorder

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/preflight-rec/preflight/cgroup"
	"github.com/preflight-rec/preflight/recorder/capture"
	"github.com/preflight-rec/preflight/recorder/sample"
)

// scope is the service's cgroup as the recorder sees it: the seam between
// the recorder and package cgroup. Its methods other than start run on the
// recorder's goroutine.
type scope struct {
	fs   *cgroup.FS
	w    *cgroup.Watcher
	tr   *cgroup.Tracer // the cgroup's files held open, for samples and the trace
	unit string
	log  zerolog.Logger
	wg   sync.WaitGroup

	cpu sample.Counter // the service's CPU percent, on the monotonic clock

	systemdWarned bool // the failure to read systemd's view was logged

	root        string
	procRoot    string           // the proc filesystem, for the processes' file descriptors
	explicit    bool             // the cgroup path was configured, not looked up
	follow      *cgroup.Follower // systemd's word over D-Bus; nil where not reachable
	noUnit      string           // why systemd could not resolve the unit, "" when it did (or is not asked)
	noSystemd   bool             // systemd is not init here: a unit without a cgroup is today's normal
	ctx         context.Context  // start's: ends with the watcher
	unseenSince time.Time        // since when the cgroup is unseen; zero while seen
	warned      string           // the unscoped reason last logged
	warnedAt    time.Time        // when
}

// unscopedWarnEvery is how often a lasting unscoped service is logged
// again; unscopedGrace how long a cgroup may be unseen before it counts
// (the watcher looks a unit up again every second).
const (
	unscopedWarnEvery = 10 * time.Minute
	unscopedGrace     = 3 * time.Second
)

// newScope returns the scope of cfg's service, or nil (logged) when this
// machine has no cgroup file system the recorder can read.
func newScope(cfg Config, root string, log zerolog.Logger) *scope {
	fs, err := cgroup.NewFS(root)
	if err != nil {
		log.Warn().Err(err).Str("path", root).Msg("no cgroups: recording without the service's cgroup")
		return nil
	}
	s := &scope{fs: fs, tr: fs.NewTracer(), unit: cfg.Unit, log: log, root: root, explicit: cfg.Cgroup != ""}
	target := cgroup.Target{Unit: cfg.Unit, Path: cfg.Cgroup}
	// systemd's own answer: the unit's real id (an alias resolved), its
	// cgroup, and its state as it changes.
	f, err := cgroup.FollowUnit(context.Background(), cfg.Unit)
	switch {
	case errors.Is(err, cgroup.ErrNoSystemd):
		s.noSystemd = true
		log.Debug().Msg("systemd is not init here: no systemd word on the unit")
	case errors.Is(err, cgroup.ErrNoUnit):
		if !s.explicit {
			s.noUnit = fmt.Sprintf("systemd has no unit %s (load state %s)", cfg.Unit, f.Info().LoadState)
		}
		log.Debug().Err(err).Str("unit", cfg.Unit).Msg("systemd cannot load the unit")
	case err != nil:
		log.Debug().Err(err).Str("unit", cfg.Unit).Msg("no D-Bus: systemd's view read with systemctl show")
	default:
		s.follow = f
		if id := f.Info().ID; id != "" && id != cfg.Unit {
			log.Info().Str("unit", cfg.Unit).Str("id", id).Msg("unit resolved by systemd")
			s.unit = id
		}
		target.Unit = s.unit
		target.Find = func() (string, error) {
			p, err := f.ControlGroup(context.Background())
			if err != nil && !errors.Is(err, cgroup.ErrNotFound) {
				return fs.Find(s.unit) // the bus went away: the walk still knows the real id
			}
			return p, err
		}
	}
	s.w = fs.NewWatcher(target, cgroup.WatchOptions{Logger: &s.log})
	return s
}

// unscoped returns why the service's cgroup is not seen when it should
// be: no such unit, or no cgroup for it for unscopedGrace; "" when it is
// seen, or its unit is simply not running or changing state (systemd says
// so).
func (s *scope) unscoped() string {
	r := s.unseen()
	switch {
	case r == "" || s.noUnit != "":
		s.unseenSince = time.Time{}
		return r
	case s.unseenSince.IsZero():
		s.unseenSince = time.Now()
	}
	if time.Since(s.unseenSince) < unscopedGrace {
		return ""
	}
	return r
}

// unseen is unscoped's reason, without the grace.
func (s *scope) unseen() string {
	switch {
	case s.noUnit != "":
		return s.noUnit
	case s.w.Found():
		return ""
	case s.explicit:
		return fmt.Sprintf("cgroup %s not found under %s", s.w.Path(), s.root)
	case s.follow != nil:
		return unitUnseen(s.unit, s.follow.Current(), s.root)
	case s.noSystemd:
		return ""
	}
	return fmt.Sprintf("no cgroup found for unit %s under %s (no such unit, or not running)", s.unit, s.root)
}

// unitUnseen is why the cgroup of a unit systemd reports in state st is
// not seen, "" when the unit is not running or on its way (not the
// recorder's blind spot). An active unit whose sub-state is "exited" runs
// no process at all: a oneshot that remains after exit, as Debian's
// postgresql.service, whose servers run in postgresql@VERSION-CLUSTER.
func unitUnseen(unit string, st cgroup.UnitState, root string) string {
	switch {
	case st.ActiveState != "active" || st.JobID != 0:
		return ""
	case st.SubState == "exited":
		return fmt.Sprintf("unit %s is active (exited) and runs no process: a oneshot unit that remains after exit "+
			"(Debian's postgresql.service runs its clusters in postgresql@VERSION-CLUSTER.service); "+
			"set PREFLIGHT_UNIT to the unit that runs the service", unit)
	}
	return fmt.Sprintf("cgroup of unit %s (%s) not found under %s", unit, st.ActiveState, root)
}

// missing returns why a sample now has no service object.
func (s *scope) missing() string {
	if r := s.unscoped(); r != "" {
		return r
	}
	if s.follow != nil {
		st := s.follow.Current()
		return fmt.Sprintf("unit %s has no cgroup now (%s/%s)", s.unit, st.ActiveState, st.SubState)
	}
	return ""
}

// warnUnscoped logs an unscoped service at warn: when it starts, every
// unscopedWarnEvery while it lasts, and when it ends (info).
func (s *scope) warnUnscoped(now time.Time) string {
	r := s.unscoped()
	switch {
	case r != "" && (r != s.warned || now.Sub(s.warnedAt) >= unscopedWarnEvery):
		s.log.Warn().Str("unit", s.unit).Str("reason", r).Msg("service's cgroup not seen: captures will lack the service, exit and oom triggers")
		s.warned, s.warnedAt = r, now
	case r == "" && s.warned != "":
		s.log.Info().Str("unit", s.unit).Msg("service's cgroup found")
		s.warned = ""
	}
	return r
}

// start runs the watcher until ctx is done and returns its events as
// triggers.
func (s *scope) start(ctx context.Context) <-chan trigger {
	s.ctx = ctx
	out := make(chan trigger, 16)
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		if err := s.w.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
			s.log.Error().Err(err).Msg("cgroup watcher stopped")
		}
	}()
	go func() {
		defer s.wg.Done()
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-s.w.Events():
				if !ok {
					return // the watcher stopped
				}
				select {
				case out <- trigger{kind: ev.Kind, at: ev.At, detail: ev.Detail, ev: &ev}:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	// The first sample must already know the service's cgroup: wait for the
	// watcher's first look (milliseconds; bounded for a hung cgroupfs).
	select {
	case <-s.w.Ready():
	case <-ctx.Done():
	case <-time.After(2 * time.Second):
		s.log.Warn().Msg("cgroup watcher slow to start: first samples may lack the service")
	}
	return out
}

// askState asks systemd, in the background, for the unit's state now
// (cgroup.Follower.State), and sends the answer on out. It reports false
// where it cannot ask.
func (s *scope) askState(out chan<- stateAnswer) bool {
	if s.follow == nil || s.ctx == nil {
		return false
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		st, err := s.follow.State(s.ctx)
		select {
		case out <- stateAnswer{st, err}:
		case <-s.ctx.Done():
		}
	}()
	return true
}

func (s *scope) wait() {
	s.wg.Wait()
	s.tr.Close()
	if s.follow != nil {
		s.follow.Close()
	}
}

// procs returns the cgroup watched now and its processes: those of seen,
// the look made just before, where it found the cgroup.
func (s *scope) procs(seen *cgroup.Sight) (string, []int) {
	if seen != nil && seen.Exists {
		return seen.Path, slices.Clone(seen.PIDs) // the look made just before: its cgroup.procs is not read twice
	}
	path := s.w.Path()
	if path == "" {
		return "", nil
	}
	pids, err := s.tr.Procs(path)
	if err != nil && !errors.Is(err, cgroup.ErrNotFound) {
		s.log.Debug().Err(err).Str("cgroup", path).Msg("failed to read cgroup processes")
	}
	return path, pids
}

// service reads the cgroup's evidence for a sample.
func (s *scope) service(path string, now time.Time, procs []capture.Process) *capture.Service {
	st, err := s.tr.Stats(path)
	if err != nil && !errors.Is(err, cgroup.ErrNotFound) {
		s.log.Debug().Err(err).Str("cgroup", path).Msg("failed to read cgroup")
	}
	var stp *cgroup.Stats
	if err == nil || !errors.Is(err, cgroup.ErrNotFound) {
		stp = &st
	}
	return s.fill(path, stp, now, procs)
}

// atTrigger reads the service's evidence at a trigger, before anything
// else: the cgroup's (as the watcher read it at the event, when the trigger
// is one) and its processes' (alone, before the host's scan). The host
// sample follows; systemd may remove the cgroup in between.
func (s *scope) atTrigger(now time.Time, ev *cgroup.Event, sm *sample.Sampler) *capture.Service {
	if ev != nil {
		svc := s.fill(ev.Path, ev.Stats, ev.StatsAt, sm.Processes(now, ev.PIDs))
		if ev.Stats != nil {
			at := ev.StatsAt.UTC()
			svc.ReadAt = &at
		}
		return svc
	}
	path, pids := s.procs(nil)
	if path == "" {
		return nil
	}
	at := time.Now()
	st, err := s.fs.Stats(path) // afresh, every file opened now: a trigger is rare, and its reading must not miss a file
	var stp *cgroup.Stats
	if err == nil || !errors.Is(err, cgroup.ErrNotFound) {
		stp = &st
	}
	svc := s.fill(path, stp, at, sm.Processes(now, pids))
	if stp != nil {
		at = at.UTC()
		svc.ReadAt = &at
	}
	return svc
}

// fill makes the service object of a sample from the cgroup's evidence st
// (nil: the cgroup was not there), read at at.
func (s *scope) fill(path string, st *cgroup.Stats, at time.Time, procs []capture.Process) *capture.Service {
	if procs == nil {
		procs = []capture.Process{}
	}
	if s.procRoot != "" {
		sample.AddFDs(s.procRoot, procs)
	}
	svc := &capture.Service{Cgroup: path, Processes: procs, Pids: len(procs)}
	if st == nil {
		return svc
	}
	svc.MemoryBytes = st.MemoryBytes
	svc.MemoryMaxBytes = st.MemoryMaxBytes
	svc.MemoryPeakBytes = st.MemoryPeakBytes
	svc.SwapBytes = st.SwapBytes
	svc.OOMKills = st.OOMKills
	svc.CPUUsageUsec = st.CPUUsageUsec
	svc.CPUThrottledUsec = st.CPUThrottledUsec
	svc.Tasks = st.PidsCurrent
	svc.PidsMax = st.PidsMax
	if p := st.Pressure; p != nil {
		svc.Pressure = &capture.Pressure{
			CPUSomeAvg10:    p.CPUSomeAvg10,
			MemorySomeAvg10: p.MemorySomeAvg10,
			MemoryFullAvg10: p.MemoryFullAvg10,
			IOSomeAvg10:     p.IOSomeAvg10,
			IOFullAvg10:     p.IOFullAvg10,
		}
	}
	if m := st.MemoryStat; m != nil {
		svc.MemoryStat = &capture.MemoryStat{AnonBytes: m.Anon, FileBytes: m.File, KernelBytes: m.Kernel, ShmemBytes: m.Shmem, SockBytes: m.Sock}
	}
	if u := st.CPUUsageUsec; u != nil {
		svc.CPUPercent = s.cpu.PercentAt(path, *u, 1e6, at) // null over too short a window
	}
	return svc
}

// addSystemd adds systemd's view of the unit to c, where systemd runs, and
// reports whether it did.
func (s *scope) addSystemd(c *capture.Capture) bool {
	if s.noUnit != "" {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	u, err := cgroup.ShowUnit(ctx, s.unit)
	if err != nil {
		if !errors.Is(err, cgroup.ErrNoSystemd) && !s.systemdWarned {
			s.systemdWarned = true
			s.log.Warn().Err(err).Str("unit", s.unit).Msg("failed to read systemd's view of the unit: captures will lack it")
		}
		return false
	}
	c.Systemd = &capture.Systemd{
		Unit:           s.unit,
		Result:         u.Result,
		NRestarts:      u.NRestarts,
		ExecMainStatus: u.ExecMainStatus,
		ExecMainCode:   u.ExecMainCode,
		MainPID:        u.MainPID,
		ControlGroup:   u.ControlGroup,
		ActiveState:    u.ActiveState,
		SubState:       u.SubState,
	}
	return true
}
