package kit

import (
	"fmt"
	"io"
	"os/exec"
	"time"
)

// IdleSubject is a process whose CPU time per second of running is
// measured while it has nothing to do but wait.
type IdleSubject struct {
	Name  string
	Start func(cg *Cgroup) (*Proc, error)
	Cg    *Cgroup
}

// IdleCost is a subject's CPU time per second of wall time: the median of
// the windows, and each window's value.
type IdleCost struct {
	Name      string
	PerSecond time.Duration
	Windows   []time.Duration
}

// Idle starts every subject at once, lets them settle for warmup, then
// reads their cgroups' CPU time at the start and end of `windows`
// consecutive windows of length window.
func Idle(subjects []IdleSubject, warmup, window time.Duration, windows int, progress io.Writer) ([]IdleCost, error) {
	procs := make([]*Proc, 0, len(subjects))
	defer func() {
		for _, p := range procs {
			p.Stop(10 * time.Second)
		}
	}()
	for _, s := range subjects {
		p, err := s.Start(s.Cg)
		if err != nil {
			return nil, fmt.Errorf("failed to start %s: %w", s.Name, err)
		}
		procs = append(procs, p)
	}
	time.Sleep(warmup)
	prev := make([]Reading, len(subjects))
	out := make([]IdleCost, len(subjects))
	for w := 0; w <= windows; w++ {
		if w > 0 {
			time.Sleep(window)
		}
		for i, s := range subjects {
			select {
			case <-procs[i].Done:
				return nil, fmt.Errorf("%s exited (%v)", s.Name, procs[i].Cmd.ProcessState)
			default:
			}
			r, err := Read(s.Cg)
			if err != nil {
				return nil, err
			}
			if w > 0 {
				d := time.Duration(float64(sub(r.UsageUsec, prev[i].UsageUsec)) * float64(time.Microsecond) / r.At.Sub(prev[i].At).Seconds())
				out[i].Windows = append(out[i].Windows, d)
			}
			prev[i] = r
		}
	}
	for i, s := range subjects {
		out[i].Name = s.Name
		out[i].PerSecond = time.Duration(Median(Durations(out[i].Windows)))
		if progress != nil {
			fmt.Fprintf(progress, "  %-40s %8.1f µs CPU per second (windows %v)\n", s.Name, float64(out[i].PerSecond)/1e3, out[i].Windows)
		}
	}
	return out, nil
}

// Stagger has Idle start each subject after the first 1/len(subjects) s
// after the one before. A process ticks on a grid of its own from its
// start: started together, the subjects wake at the same instants, and
// the first to run pays the CPU's wake-up from idle for all of them (the
// first subject of an idle run measured a third more than the same binary
// last); staggered, each wakes alone, as on a host of its own.
func Stagger(subjects []IdleSubject) {
	gap := time.Second / time.Duration(max(len(subjects), 1))
	for i := 1; i < len(subjects); i++ {
		start := subjects[i].Start
		subjects[i].Start = func(cg *Cgroup) (*Proc, error) {
			time.Sleep(gap)
			return start(cg)
		}
	}
}

// CommandSubject is an IdleSubject that runs a command.
func CommandSubject(name string, cg *Cgroup, args ...string) IdleSubject {
	return IdleSubject{Name: name, Cg: cg, Start: func(cg *Cgroup) (*Proc, error) {
		return Start(exec.Command(args[0], args[1:]...), cg)
	}}
}
