package recorder

import (
	"context"
	"errors"
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
	unit string
	log  zerolog.Logger
	wg   sync.WaitGroup

	// The previous CPU usage reading, for the service's CPU percent.
	cpuPath string
	cpuUsec uint64
	cpuAt   time.Time

	systemdWarned bool // the failure to read systemd's view was logged
}

// newScope returns the scope of cfg's service, or nil (logged) when this
// machine has no cgroup file system the recorder can read.
func newScope(cfg Config, root string, log zerolog.Logger) *scope {
	fs, err := cgroup.NewFS(root)
	if err != nil {
		log.Warn().Err(err).Str("path", root).Msg("no cgroups: recording without the service's cgroup")
		return nil
	}
	s := &scope{fs: fs, unit: cfg.Unit, log: log}
	s.w = fs.NewWatcher(cgroup.Target{Unit: cfg.Unit, Path: cfg.Cgroup}, cgroup.WatchOptions{Logger: &s.log})
	return s
}

// start runs the watcher until ctx is done and returns its events as
// triggers.
func (s *scope) start(ctx context.Context) <-chan trigger {
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

func (s *scope) wait() { s.wg.Wait() }

// procs returns the cgroup watched now and its processes.
func (s *scope) procs() (string, []int) {
	path := s.w.Path()
	if path == "" {
		return "", nil
	}
	pids, err := s.fs.Procs(path)
	if err != nil && !errors.Is(err, cgroup.ErrNotFound) {
		s.log.Debug().Err(err).Str("cgroup", path).Msg("failed to read cgroup processes")
	}
	return path, pids
}

// service reads the cgroup's evidence for a sample.
func (s *scope) service(path string, now time.Time, procs []capture.Process) *capture.Service {
	st, err := s.fs.Stats(path)
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
	path, pids := s.procs()
	if path == "" {
		return nil
	}
	at := time.Now()
	st, err := s.fs.Stats(path)
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
	if u := st.CPUUsageUsec; u != nil {
		// Samples less than a microsecond apart would divide by zero, and a
		// NaN or Inf makes the whole capture unencodable.
		if us := at.Sub(s.cpuAt).Microseconds(); s.cpuPath == path && *u >= s.cpuUsec && us > 0 {
			pct := float64(*u-s.cpuUsec) / float64(us) * 100
			svc.CPUPercent = &pct
		}
		if at.After(s.cpuAt) {
			s.cpuPath, s.cpuUsec, s.cpuAt = path, *u, at
		}
	}
	return svc
}

// addSystemd adds systemd's view of the unit to c, where systemd runs, and
// reports whether it did.
func (s *scope) addSystemd(c *capture.Capture) bool {
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
