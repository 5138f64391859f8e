package recorder

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/preflight-rec/preflight/recorder/capture"
	"github.com/preflight-rec/preflight/recorder/logs"
)

// The kernel's word on an OOM kill: where the service's cgroup was gone
// before the watcher read its oom_kill counter after the kill (systemd
// removes it within milliseconds; a loaded host may not schedule the
// watcher in time), and systemd's word does not say oom-kill either
// (OOMPolicy=continue: Result=signal), the kernel's own log still does.
//
// A kill the kernel logged counts for an exit trigger of the incident
// when
//
//   - its "Killed process PID" names a process the watcher saw vanish at
//     that exit (cgroup.Event.Gone), or its summary (oom-kill:…) names the
//     service's cgroup as oom_memcg or task_memcg; and
//   - the kernel stamped it after the read behind the exit's oom_kills
//     (the trigger sample's read_at; without one, the capture's latest
//     read before the exit), less kernelEarly, and no later than
//     kernelLate after the exit: the kernel's clock (local_clock) drifts
//     from the recorder's by tens of milliseconds, and the victim can be
//     gone before its "Killed process" line is printed (SIGKILL first,
//     then the line, behind a slow console). A kill of an earlier
//     incident came before a healthy check, long before that read.
//
// Each kill counts once, for the first exit it fits (a vanished PID
// first). Nothing else counts: a line that names neither a vanished PID
// nor the cgroup adds nothing.
const (
	kernelEarly = 250 * time.Millisecond
	kernelLate  = time.Second
	// kernelNoRead is how far before an exit a kill may be when the
	// capture holds no read of the counter before it (the watcher's
	// safety look).
	kernelNoRead = time.Second
	// kernelRereads bounds the readings of the kernel's lines after the
	// first (a Grace apart) where an exit at the memory limit has no OOM
	// kill yet: the journal may lag the kernel by hundreds of ms.
	kernelRereads = 3
)

// kernelKills returns the kills the kernel reported, by the index of the
// exit trigger of c they count for (gone[i]: the PIDs that vanished at
// trigger i).
func kernelKills(c *capture.Capture, gone [][]int, reports []logs.OOMReport) map[int][]logs.OOMReport {
	type window struct {
		i        int
		from, to time.Time
		gone     []int
		cgroup   string
	}
	var ws []window
	for i, tr := range c.Triggers {
		k := triggerSample(c, i)
		if tr.Kind != capture.TriggerExit || k < 0 || c.Samples[k].Service == nil {
			continue // no cgroup seen: nothing to attribute a kill to
		}
		w := window{i: i, to: tr.At.Add(kernelLate), cgroup: c.Samples[k].Service.Cgroup}
		if i < len(gone) {
			w.gone = gone[i]
		}
		readAt, _ := lastRead(c, i)
		w.from = readAt.Add(-kernelEarly)
		ws = append(ws, w)
	}
	out := map[int][]logs.OOMReport{}
	used := make([]bool, len(reports))
	for _, byPID := range []bool{true, false} {
		for j, rep := range reports {
			if used[j] {
				continue
			}
			for _, w := range ws {
				if rep.At.Before(w.from) || rep.At.After(w.to) {
					continue
				}
				if byPID && slices.Contains(w.gone, rep.Kill.PID) || !byPID && w.cgroup != "" && rep.Names(w.cgroup) {
					out[w.i] = append(out[w.i], rep)
					used[j] = true
					break
				}
			}
		}
	}
	return out
}

// triggerSample returns the index in c.Samples of trigger i's sample, -1
// when there is none.
func triggerSample(c *capture.Capture, i int) int {
	k := len(c.Samples) - len(c.Triggers) + i
	if k < 0 || k >= len(c.Samples) {
		return -1
	}
	return k
}

// lastRead returns when the counter behind exit trigger i's oom_kills was
// read, and its count (nil: never read): the trigger sample's own read,
// else the capture's latest read before the exit (a sample or a trace
// point) and after the incident's previous exit (a read before it is of
// the cgroup before a restart: another counter), else kernelNoRead before
// the exit.
func lastRead(c *capture.Capture, i int) (time.Time, *uint64) {
	at := c.Triggers[i].At
	k := triggerSample(c, i)
	if svc := c.Samples[k].Service; svc != nil && svc.OOMKills != nil {
		if svc.ReadAt != nil {
			return *svc.ReadAt, svc.OOMKills
		}
		return c.Samples[k].At, svc.OOMKills
	}
	best := prevExit(c, i) // reads at or before it are ignored
	var count *uint64
	if s, t := latestRead(c, i, func(svc *capture.Service) bool { return svc.OOMKills != nil }); s != nil {
		best, count = t, s.Service.OOMKills
	}
	for _, p := range c.ServiceTrace {
		if p.OOMKills != nil && !p.At.After(at) && p.At.After(best) {
			best, count = p.At, p.OOMKills
		}
	}
	if count == nil {
		return at.Add(-kernelNoRead), nil
	}
	return best, count
}

// prevExit returns when the exit trigger before trigger i of c was (zero
// without one): a read at or before it is of the cgroup before a restart,
// another cgroup with another counter.
func prevExit(c *capture.Capture, i int) time.Time {
	var prev time.Time
	for _, tr := range c.Triggers[:i] {
		if tr.Kind == capture.TriggerExit && tr.At.After(prev) {
			prev = tr.At
		}
	}
	return prev
}

// latestRead returns the sample before trigger i's in c that read last
// (its read_at, else its at), before the trigger and after the previous
// exit, what want asks of its service, and when it read it; nil without
// one. A sample on the kernel's word is no read.
func latestRead(c *capture.Capture, i int, want func(*capture.Service) bool) (*capture.Sample, time.Time) {
	at, best := c.Triggers[i].At, prevExit(c, i)
	var out *capture.Sample
	for j := range c.Samples[:triggerSample(c, i)] {
		s := &c.Samples[j]
		if s.Service == nil || len(s.Service.FromKernelLog) > 0 || !want(s.Service) {
			continue
		}
		t := s.At
		if s.Service.ReadAt != nil {
			t = *s.Service.ReadAt
		}
		if !t.After(at) && t.After(best) {
			best, out = t, s
		}
	}
	return out, best
}

// withKernelKills returns exit trigger i's sample with the kills the
// kernel reported for it: oom_kills the greater of the count last read
// and the number of distinct kills reported (the counter only rises, one
// a kill, so either is a lower bound; their sum is not: the read may have
// counted a kill stamped before it, kernelEarly), memory_peak_bytes at
// least the usage the kernel printed at a kill of the cgroup, each marked
// in from_kernel_log.
func withKernelKills(c *capture.Capture, i int, reps []logs.OOMReport) capture.Sample {
	s := c.Samples[triggerSample(c, i)]
	svc := new(*s.Service) // kernelKills attributes kills only to exits with a service object
	_, base := lastRead(c, i)
	var pids []int
	for _, rep := range reps {
		if !slices.Contains(pids, rep.Kill.PID) {
			pids = append(pids, rep.Kill.PID)
		}
	}
	n := uint64(len(pids))
	if base != nil {
		n = max(n, *base)
	}
	svc.OOMKills = &n
	svc.FromKernelLog = []string{capture.FieldOOMKills}
	for _, rep := range reps {
		if rep.UsageBytes == nil || !logs.SameCgroup(rep.OOMMemcg, svc.Cgroup) {
			continue
		}
		if svc.MemoryPeakBytes == nil || *svc.MemoryPeakBytes < *rep.UsageBytes {
			peak := *rep.UsageBytes
			svc.MemoryPeakBytes = &peak
			if !slices.Contains(svc.FromKernelLog, capture.FieldMemoryPeakBytes) {
				svc.FromKernelLog = append(svc.FromKernelLog, capture.FieldMemoryPeakBytes)
			}
		}
	}
	s.Service = svc
	return s
}

// kernelSays is the plain words of what the kernel reported: "the kernel
// logged an OOM kill of dead-drop (PID 3406) in /system.slice/x.service".
func kernelSays(reps []logs.OOMReport, cgroup string) string {
	var who []string
	for _, r := range reps {
		who = append(who, fmt.Sprintf("%s (PID %d)", r.Kill.Name, r.Kill.PID))
	}
	what := "an OOM kill of "
	if len(reps) > 1 {
		what = fmt.Sprintf("%d OOM kills: ", len(reps))
	}
	where := ""
	if cgroup != "" {
		where = " in " + cgroup
	}
	return "the kernel logged " + what + strings.Join(who, ", ") + where
}

// kernelDetail is the detail of an oom trigger on the kernel's word (s:
// its sample, withKernelKills').
func kernelDetail(reps []logs.OOMReport, s capture.Sample) string {
	return kernelSays(reps, s.Service.Cgroup) + "; the cgroup was gone before its oom_kill was read: " + fromKernel(s.Service)
}

// fromKernel says which of svc's values are the kernel's report.
func fromKernel(svc *capture.Service) string {
	if len(svc.FromKernelLog) == 1 {
		return svc.FromKernelLog[0] + " here is the kernel's report"
	}
	return strings.Join(svc.FromKernelLog, " and ") + " here are the kernel's report"
}

// kernelWord applies the kernel's reported kills (inc.ooms) to the
// incident: where it has no oom trigger, one on the kernel's word, its
// sample the exit's with the kills; where its oom trigger is on
// systemd's word, that trigger's sample gets the kills the same way. It
// reports whether the capture changed (the open incident's is written
// already).
func (r *Recorder) kernelWord(inc *incident) bool {
	if len(inc.ooms) == 0 {
		return false
	}
	c := &inc.capture
	kills := kernelKills(c, inc.gone, inc.ooms)
	if len(kills) == 0 {
		return false
	}
	changed, oom := false, false
	for i, tr := range c.Triggers {
		if tr.Kind != capture.TriggerOOM {
			continue
		}
		oom = true
		k := triggerSample(c, i)
		if tr.Detail != oomDetail || k < 0 || c.Samples[k].Service == nil || len(c.Samples[k].Service.FromKernelLog) > 0 {
			continue // the watcher's own (its counter read), or done
		}
		e := slices.IndexFunc(c.Triggers, func(x capture.Trigger) bool { return x.Kind == capture.TriggerExit && x.At.Equal(tr.At) })
		if e < 0 || len(kills[e]) == 0 {
			continue
		}
		s := withKernelKills(c, e, kills[e])
		s.Trigger = capture.TriggerOOM
		c.Samples[k] = s
		c.Triggers[i].Detail = oomDetail + "; " + kernelSays(kills[e], s.Service.Cgroup) + ": " + fromKernel(s.Service)
		changed = true
	}
	if oom || len(c.Triggers) >= maxTriggers { // full: the kill stays in kernel_log and the findings
		if changed {
			inc.dirty = true
		}
		return changed
	}
	e := -1
	for i := range kills {
		if e < 0 || i < e {
			e = i
		}
	}
	s := withKernelKills(c, e, kills[e])
	r.recordBefore(inc, e, trigger{kind: capture.TriggerOOM, at: c.Triggers[e].At, detail: kernelDetail(kills[e], s)}, s)
	return true
}

// recordBefore records an oom trigger t, with its sample s, in inc just
// before its exit trigger e (the kill that emptied the cgroup came before
// the exit; both at the exit's at): triggers stay oldest first, and every
// slice by trigger (the trigger samples, gone, wordFinal) stays aligned.
// The trigger has the exit's systemd word. Its sample is not put in the
// ring: the exit's own is there, and a copy (with the kernel's values)
// would pass as a read in later incidents. The open incident's capture is
// written; a closed one's is the caller's to rewrite.
func (r *Recorder) recordBefore(inc *incident, e int, t trigger, s capture.Sample) {
	c := &inc.capture
	log := r.log.With().Str("trigger", t.kind).Str("detail", t.detail).Logger()
	if len(c.Triggers) >= maxTriggers {
		c.TriggersOmitted++
		inc.dirty = true
		log.Debug().Msg("trigger counted, not recorded: incident holds the most triggers")
		return
	}
	s.Trigger = t.kind // a copy of the exit's sample, no reading of its own: not for the ring
	k := triggerSample(c, e)
	c.Triggers = slices.Insert(c.Triggers, e, capture.Trigger{Kind: t.kind, At: t.at.UTC(), Detail: t.detail, Systemd: c.Triggers[e].Systemd})
	c.Samples = slices.Insert(c.Samples, k, s)
	if e < len(inc.gone) {
		inc.gone = slices.Insert(inc.gone, e, nil)
	}
	if e < len(inc.wordFinal) {
		inc.wordFinal = slices.Insert(inc.wordFinal, e, inc.wordFinal[e]) // the exit's word, at the exit's at
	}
	inc.dirty = true
	log.Warn().Msg("service failed")
	if inc == r.inc {
		r.write()
	}
}

// wantKernelAgain reports whether the kernel's lines should be read again
// for the incident: an exit came while the cgroup's memory was within 10 %
// of its limit (as the exit's sample read it; the cgroup gone: as last
// read before), and no OOM kill is known (no oom trigger, none in the
// kernel's lines read so far), and they could be read at all.
func wantKernelAgain(inc *incident) bool {
	c := &inc.capture
	if inc.rereads >= kernelRereads || c.KernelLogMissing != "" || len(kernelKills(c, inc.gone, inc.ooms)) > 0 {
		return false
	}
	near := false
	for i, tr := range c.Triggers {
		if tr.Kind == capture.TriggerOOM {
			return false
		}
		k := triggerSample(c, i)
		if tr.Kind != capture.TriggerExit || k < 0 || c.Samples[k].Service == nil {
			continue
		}
		svc := c.Samples[k].Service
		mem, max := svc.MemoryBytes, svc.MemoryMaxBytes
		if mem == nil || max == nil { // the cgroup gone: the latest read before the exit
			s, t := latestRead(c, i, func(svc *capture.Service) bool { return svc.MemoryBytes != nil && svc.MemoryMaxBytes != nil })
			if s == nil {
				continue
			}
			mem, max = s.Service.MemoryBytes, s.Service.MemoryMaxBytes
			for _, p := range c.ServiceTrace { // a later trace point's usage, against the sample's limit
				if p.MemoryBytes != nil && p.At.After(t) && !p.At.After(tr.At) {
					mem, t = p.MemoryBytes, p.At
				}
			}
		}
		if *max > 0 && float64(*mem) >= float64(*max)*signMemoryFraction {
			near = true
		}
	}
	return near
}
