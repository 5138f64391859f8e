package findings

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/preflight-rec/preflight/recorder/capture"
)

// stuckStates are the process states that leave a service unable to
// answer, in the order they are told.
var stuckStates = []struct {
	states string // the one-letter states of /proc/PID/stat
	what   string
}{
	{"Tt", "stopped (state T)"},
	{"D", "in uninterruptible sleep (state D)"},
	{"Z", "zombies (state Z)"},
}

// ProcessesStuck fires when a process of the service was stopped (T or t),
// in uninterruptible sleep (D) or a zombie (Z) in each of the last
// StuckSamples samples up to the failure (the sample at the failure
// included): a frozen service answers nothing, and only its processes'
// states show why.
func ProcessesStuck(in Incident, th Thresholds) *Finding {
	n := len(in.before())
	if n < len(in.Samples) {
		n++ // the sample taken at the failure
	}
	var last []*capture.Sample
	for i := n - 1; i >= 0 && len(last) < max(th.StuckSamples, 1); i-- {
		if s := &in.Samples[i]; s.Service != nil && len(s.Service.Processes) > 0 {
			last = append(last, s)
		}
	}
	if len(last) < max(th.StuckSamples, 1) {
		return nil
	}
	newest, oldest := last[0], last[len(last)-1]
	var f *Finding
	for _, st := range stuckStates {
		var stuck []capture.Process
		for _, p := range newest.Service.Processes {
			if inState(p, st.states) && stuckIn(last[1:], p.PID, st.states) {
				stuck = append(stuck, p)
			}
		}
		if len(stuck) == 0 {
			continue
		}
		total := len(newest.Service.Processes)
		if f == nil {
			f = &Finding{Summary: fmt.Sprintf("%d of the service's %d processes were %s", len(stuck), total, st.what)}
			if len(stuck) == total {
				f.Summary = fmt.Sprintf("The service's processes were all %s", st.what)
				if total == 1 {
					f.Summary = fmt.Sprintf("The service's process was %s", st.what)
				}
			}
		}
		sort.SliceStable(stuck, func(i, j int) bool { return stuck[i].PID < stuck[j].PID })
		var names []string
		for i, p := range stuck {
			if i == 3 {
				names = append(names, fmt.Sprintf("%d more", len(stuck)-3))
				break
			}
			names = append(names, procName(p))
		}
		f.Evidence = append(f.Evidence, fmt.Sprintf("%s: %s, from %s to %s (%d samples)", st.what,
			strings.Join(names, ", "), in.rel(oldest.At), in.rel(newest.At), len(last)))
	}
	return f
}

func inState(p capture.Process, states string) bool {
	return p.State != "" && strings.Contains(states, p.State)
}

// stuckIn reports whether pid is in one of states in every sample of ss.
func stuckIn(ss []*capture.Sample, pid int, states string) bool {
	for _, s := range ss {
		found := false
		for _, p := range s.Service.Processes {
			if p.PID == pid {
				found = inState(p, states)
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// HealthLatency fires when the health check's latency climbed before the
// failure: the last successful check before it took LatencyFactor times
// as long as the fastest of the first half, and LatencyMinMS more, rising
// in LatencySteadyPercent of the steps after that one, none slower than the
// last (a spike that passed is no climb). The failing check
// that follows is the evidence of where the climb ended (its timeout).
func HealthLatency(in Incident, th Thresholds) *Finding {
	var ok []capture.Check
	for _, c := range in.Checks {
		if c.OK && c.At.Before(in.Failure) {
			ok = append(ok, c)
		}
	}
	if len(ok) < 3 {
		return nil
	}
	base := 0
	for i := 1; i < len(ok)/2; i++ {
		if ok[i].LatencyMS < ok[base].LatencyMS {
			base = i
		}
	}
	last := ok[len(ok)-1]
	lo := ok[base].LatencyMS
	if last.LatencyMS < th.LatencyFactor*lo || last.LatencyMS-lo < th.LatencyMinMS {
		return nil
	}
	steps, rising := 0, 0
	for i := base + 1; i < len(ok); i++ {
		steps++
		if ok[i].LatencyMS > ok[i-1].LatencyMS {
			rising++
		}
		if ok[i].LatencyMS > last.LatencyMS {
			return nil // a spike that passed, not a climb
		}
	}
	if 100*float64(rising) < th.LatencySteadyPercent*float64(steps) {
		return nil
	}
	f := &Finding{Summary: "The health check's latency climbed before the failure"}
	f.Evidence = append(f.Evidence, fmt.Sprintf("latency %s at %s → %s at %s, slower than the check before in %d of %d checks",
		Latency(lo), in.rel(ok[base].At), Latency(last.LatencyMS), in.rel(last.At), rising, steps))
	for _, c := range in.Checks {
		if !c.OK && !c.At.Before(last.At) {
			line := fmt.Sprintf("then the check at %s failed after %s", in.rel(c.At), Latency(c.LatencyMS))
			if c.Error != "" {
				line += ": " + c.Error
			}
			f.Evidence = append(f.Evidence, line)
			break
		}
	}
	return f
}

// Latency formats a latency in milliseconds: 0.4ms, 12ms, 2.0s.
func Latency(v float64) string {
	switch {
	case v < 10:
		return fmt.Sprintf("%.1fms", v)
	case v < 1000:
		return fmt.Sprintf("%.0fms", v)
	}
	return Duration(time.Duration(v * float64(time.Millisecond)))
}

// RestartLoop fires when the service is in a restart loop: systemd
// restarted the unit RestartLoopRestarts times or more (its NRestarts), or
// this incident saw RestartLoopExits exit triggers (the service's
// processes emptied or replaced again and again).
func RestartLoop(in Incident, th Thresholds) *Finding {
	var exits []capture.Trigger
	for _, t := range in.Triggers {
		if t.Kind == capture.TriggerExit {
			exits = append(exits, t)
		}
	}
	restarts := -1
	if in.Systemd != nil && in.Systemd.NRestarts != nil {
		restarts = *in.Systemd.NRestarts
	}
	if restarts < th.RestartLoopRestarts && len(exits) < th.RestartLoopExits {
		return nil
	}
	f := &Finding{Summary: "The service is in a restart loop"}
	if restarts >= th.RestartLoopRestarts {
		line := fmt.Sprintf("systemd restarted %s %d times (NRestarts)", orUnit(in.Systemd.Unit), restarts)
		if r := in.Systemd.Result; r != "" && r != "success" {
			line += ", last result " + r
		}
		f.Evidence = append(f.Evidence, line)
	}
	if len(exits) >= 2 {
		var at []string
		for i, t := range exits {
			if i == 5 {
				at = append(at, fmt.Sprintf("%d more", len(exits)-5))
				break
			}
			at = append(at, in.rel(t.At))
		}
		f.Evidence = append(f.Evidence, fmt.Sprintf("%d exit triggers in this incident, at %s", len(exits), strings.Join(at, ", ")))
	}
	return f
}

func orUnit(u string) string {
	if u == "" {
		return "the unit"
	}
	return u
}
