package recorder

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/preflight-rec/preflight/cgroup"
	"github.com/preflight-rec/preflight/recorder/capture"
	"github.com/preflight-rec/preflight/recorder/findings"
	"github.com/preflight-rec/preflight/recorder/sample"
)

// The service's fine trace: every SERVICE_INTERVAL_SECONDS a cheap reading
// of the service alone (its cgroup's memory, OOM kills, CPU, pids, memory
// pressure; its processes' RSS and threads), kept for TRACE_SECONDS. A
// capture carries the points from TRACE_SECONDS before its first trigger up
// to its last trigger, plus one point per trigger from the trigger's own
// evidence.
//
// Adaptive sampling: when the trace shows warning signs (signs), the host
// samples are taken early, at the trace's readings but at most one a
// second, each marked with why (capture.Sample.Early), until the signs fall
// or the episode has taken half the ring (so the ring keeps its older
// history); a new episode needs the signs to fall first.

// The warning signs' thresholds are the findings': memory at
// MemoryNearLimitPercent (90 %) of its limit, memory pressure at
// MemoryPressurePercent (10 %). Early samples come at most every earlyEvery.
var (
	signMemoryFraction = findings.Default.MemoryNearLimitPercent / 100
	signMemoryPressure = findings.Default.MemoryPressurePercent
)

const earlyEvery = time.Second

// manyProcs is how many processes a trace reading sums on the one P of an
// idle recorder (procs.go); more take milliseconds, and run on two.
const manyProcs = 64

// trace is the recorder's service trace and its warning signs. Owned by the
// recorder's goroutine.
type trace struct {
	every, keep time.Duration
	tr          *cgroup.Tracer
	procs       *sample.ProcSum
	cpu         sample.Counter
	busy        *Procs               // told of a reading of many processes
	points      []capture.TracePoint // oldest first, within keep of the newest

	prevHigh, prevMax *uint64 // memory.events high, max at the previous reading
	prevPath          string
	healthSlow        string // the last check's latency past half its timeout, said; ""

	signs     string    // the warning signs now; "" when none
	episode   bool      // an adaptive episode is on (until the signs fall)
	early     int       // early samples taken in this episode
	lastEarly time.Time // monotonic time of the last early sample
}

// newTrace returns the trace of cfg's service over sc, nil when disabled or
// without a cgroup scope.
func newTrace(cfg Config, sc *scope, procRoot string, busy *Procs) *trace {
	if sc == nil || cfg.ServiceIntervalSeconds == 0 {
		return nil
	}
	return &trace{
		every: cfg.ServiceInterval(),
		keep:  cfg.TraceWindow(),
		tr:    sc.tr,
		procs: sample.NewProcSum(procRoot),
		busy:  busy,
	}
}

// close closes the files the trace holds open.
func (t *trace) close() {
	t.tr.Close()
	t.procs.Close()
}

// read takes one trace point of the cgroup at path at now (a time.Now
// reading), appends it and drops the points older than keep. It returns
// false when the cgroup is not there. With seen, the cgroup and its
// processes are those of the watcher's look, made just before
// (cgroup.Watcher.Seen): its cgroup.procs is not read twice.
func (t *trace) read(path string, now time.Time, seen *cgroup.Sight) bool {
	var st cgroup.TraceStats
	var err error
	// Calm, it reads raw what a wrapped call would wake sysmon for each
	// second (cgroup readsRawInTrace). With warning signs (memory near its
	// limit, pressure: reclaim, when those reads wait longest) it reads
	// them wrapped and pays the wake-up, which its early samples, each a
	// switch to two Ps, pay anyway.
	t.tr.Calm(t.signs == "")
	if seen != nil {
		st, err = t.tr.ReadSeen(*seen)
	} else {
		st, err = t.tr.Read(path)
	}
	if errors.Is(err, cgroup.ErrNotFound) {
		return false
	}
	// A point is small (a capture holds 120 of them): its time to the
	// millisecond, and the counters that are mostly 0 left out when 0.
	p := capture.TracePoint{
		At:               now.UTC().Round(time.Millisecond),
		MemoryBytes:      st.MemoryBytes,
		MemoryPeakBytes:  st.MemoryPeakBytes,
		OOMKills:         st.OOMKills,
		MemoryHighEvents: nonzero(st.MemoryHighEvents),
		MemoryMaxEvents:  nonzero(st.MemoryMaxEvents),
		MemorySomeAvg10:  nonzero(st.MemorySomeAvg10),
		MemoryFullAvg10:  nonzero(st.MemoryFullAvg10),
		Pids:             len(st.PIDs),
	}
	if st.CPUUsageUsec != nil {
		p.CPUPercent = t.cpu.PercentAt(path, *st.CPUUsageUsec, 1e6, now) // null over too short a window
	}
	if len(st.PIDs) > manyProcs {
		t.busy.Enter() // a /proc/PID/stat each: milliseconds (procs.go)
	}
	p.RSSBytes, p.Threads, _ = t.procs.Sum(st.PIDs)
	if len(st.PIDs) > manyProcs {
		t.busy.Leave()
	}
	t.push(p)
	t.signs = t.warning(path, &st)
	return true
}

// nonzero is v, or nil when it is 0.
func nonzero[T uint64 | float64](v *T) *T {
	if v == nil || *v == 0 {
		return nil
	}
	return v
}

// push appends p and drops the points older than keep before it.
func (t *trace) push(p capture.TracePoint) {
	t.points = append(t.points, p)
	cut := 0
	for cut < len(t.points) && p.At.Sub(t.points[cut].At) > t.keep {
		cut++
	}
	if cut > 0 {
		t.points = append(t.points[:0], t.points[cut:]...)
	}
}

// warning says which warning signs st shows, "" when none.
func (t *trace) warning(path string, st *cgroup.TraceStats) string {
	var signs []string
	if m, limit := st.MemoryBytes, st.MemoryMaxBytes; m != nil && limit != nil && *limit > 0 &&
		float64(*m) >= signMemoryFraction*float64(*limit) {
		signs = append(signs, fmt.Sprintf("memory within %.0f%% of its limit", 100-100*signMemoryFraction))
	}
	rose := func(prev, now *uint64) bool { return prev != nil && now != nil && *now > *prev }
	if path == t.prevPath {
		if rose(t.prevHigh, st.MemoryHighEvents) {
			signs = append(signs, "memory.events high rising")
		}
		if rose(t.prevMax, st.MemoryMaxEvents) {
			signs = append(signs, "memory.events max rising")
		}
	}
	t.prevPath, t.prevHigh, t.prevMax = path, st.MemoryHighEvents, st.MemoryMaxEvents
	if v := st.MemorySomeAvg10; v != nil && *v >= signMemoryPressure {
		signs = append(signs, fmt.Sprintf("memory pressure %.1f%% (some avg10)", *v))
	}
	if t.healthSlow != "" {
		signs = append(signs, t.healthSlow)
	}
	return strings.Join(signs, "; ")
}

// onCheck notes a check whose latency passed half its timeout: a warning
// sign until a faster check.
func (t *trace) onCheck(c capture.Check, timeout time.Duration) {
	t.healthSlow = ""
	if c.LatencyMS > float64(timeout.Milliseconds())/2 {
		t.healthSlow = fmt.Sprintf("health check took %.0f ms of its %.0f ms timeout", c.LatencyMS, float64(timeout.Milliseconds()))
	}
}

// earlyDue reports whether a host sample should be taken now, early, and
// why; it counts the episode's early samples against limit.
func (t *trace) earlyDue(now time.Time, interval time.Duration, limit int) (string, bool) {
	if t.signs == "" {
		t.episode, t.early = false, 0
		return "", false
	}
	if interval <= earlyEvery || t.early >= limit || now.Sub(t.lastEarly) < earlyEvery {
		return "", false
	}
	t.episode = true
	t.early++
	t.lastEarly = now
	return t.signs, true
}

// between returns the points after after, from start up to end
// (inclusive).
func (t *trace) between(start, after, end time.Time) []capture.TracePoint {
	var out []capture.TracePoint
	for _, p := range t.points {
		if !p.At.Before(start) && p.At.After(after) && !p.At.After(end) {
			out = append(out, p)
		}
	}
	return out
}

// pointOf is the trace point of a trigger's sample: the cgroup's evidence
// as read at the trigger.
func pointOf(s *capture.Sample) (capture.TracePoint, bool) {
	svc := s.Service
	if svc == nil {
		return capture.TracePoint{}, false
	}
	at := s.At
	if svc.ReadAt != nil {
		at = *svc.ReadAt
	}
	p := capture.TracePoint{
		At:              at.Round(time.Millisecond),
		MemoryBytes:     svc.MemoryBytes,
		MemoryPeakBytes: svc.MemoryPeakBytes,
		OOMKills:        svc.OOMKills,
		CPUPercent:      svc.CPUPercent,
		Pids:            svc.Pids,
		Trigger:         s.Trigger,
	}
	if pr := svc.Pressure; pr != nil {
		p.MemorySomeAvg10, p.MemoryFullAvg10 = nonzero(&pr.MemorySomeAvg10), nonzero(&pr.MemoryFullAvg10)
	}
	for _, proc := range svc.Processes {
		p.RSSBytes += proc.RSSBytes
		p.Threads += proc.Threads
	}
	return p, true
}

// traceTick takes a trace point and, while the trace shows warning signs,
// an early host sample (at most half the ring in one episode), logged once
// per episode.
func (r *Recorder) traceTick(now time.Time) {
	t := r.trace
	path := ""
	seen := r.look()
	if seen != nil {
		path = seen.Path
	} else {
		path = r.scope.w.Path()
	}
	if seen != nil && seen.Events > 0 {
		// The look saw the service fail: the point of that moment is its
		// trigger's sample's, read at the event. One read now, after the
		// look, stamped at the tick before it, would stand in the trace
		// as the last point before the failure, of a service already gone.
		return
	}
	if path == "" || !t.read(path, now, seen) {
		t.signs = ""
	}
	was := t.episode
	why, due := t.earlyDue(now, r.cfg.Interval(), max(1, r.cfg.BufferSamples/2))
	if !due {
		if was && !t.episode {
			r.log.Debug().Msg("warning signs fell: host samples back on the interval")
		}
		return
	}
	if !was {
		r.log.Info().Str("signs", why).Int("most", max(1, r.cfg.BufferSamples/2)).
			Msg("warning signs in the service trace: host samples every second")
	}
	s := r.takeSample(now, seen)
	s.Early = why
	r.samples.push(s)
}

// traceInto adds to c the trace points it lacks: from TRACE_SECONDS before
// its first trigger up to the trigger's sample s (not the readings taken
// while an exit trigger waited for systemd's word), and the point of s.
func (r *Recorder) traceInto(c *capture.Capture, s *capture.Sample) {
	if r.trace == nil {
		return
	}
	c.ServiceIntervalSeconds = r.cfg.ServiceIntervalSeconds
	start := c.TransitionTime.Add(-r.trace.keep)
	var after time.Time
	if n := len(c.ServiceTrace); n > 0 {
		after = c.ServiceTrace[n-1].At
	}
	add := r.trace.between(start, after, s.At)
	if p, ok := pointOf(s); ok && p.At.After(after) && len(s.Service.FromKernelLog) == 0 { // a point is a read, never the kernel's word
		// The evidence read at the event may precede a reading taken
		// before the recorder handled it: oldest first all the same.
		add = append(add, p)
		slices.SortStableFunc(add, func(a, b capture.TracePoint) int { return a.At.Compare(b.At) })
	}
	c.ServiceTrace = append(c.ServiceTrace, add...)
}
