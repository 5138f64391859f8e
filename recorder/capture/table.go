package capture

import (
	"strconv"
)

// ProcessInfo is what the samples of a capture share about one process:
// its name and command line.
type ProcessInfo struct {
	Name    string `json:"name"`
	Cmdline string `json:"cmdline"`
}

// share returns c as it is written: a process's name and cmdline, when they
// equal its PID's entry in the capture's process_table, are left out of the
// samples older than the last one before the failure (the samples today's
// readers show command lines from keep them). The table holds, per PID, the
// first name and command line the samples show, and only PIDs left out
// somewhere. c itself is not changed; the copy shares what it does not
// change.
func share(c *Capture) *Capture {
	keepFrom := len(c.Samples) // samples from here on keep everything inline
	for i := range c.Samples {
		if !c.Samples[i].At.Before(c.TransitionTime) {
			break
		}
		keepFrom = i
	}
	first := map[int]ProcessInfo{}
	for i := range c.Samples {
		forProcs(&c.Samples[i], func(p *Process) {
			if _, ok := first[p.PID]; !ok {
				first[p.PID] = ProcessInfo{Name: p.Name, Cmdline: p.Cmdline}
			}
		})
	}
	out := *c
	out.Samples = make([]Sample, len(c.Samples))
	copy(out.Samples, c.Samples)
	table := map[string]ProcessInfo{}
	elide := func(ps []Process) []Process {
		if len(ps) == 0 {
			return ps
		}
		ps = append([]Process(nil), ps...)
		for j := range ps {
			p := &ps[j]
			if info := first[p.PID]; p.Name != "" && info == (ProcessInfo{p.Name, p.Cmdline}) {
				table[strconv.Itoa(p.PID)] = info
				p.Name, p.Cmdline = "", ""
			}
		}
		return ps
	}
	for i := 0; i < keepFrom; i++ {
		s := &out.Samples[i]
		s.TopCPU, s.TopMemory = elide(s.TopCPU), elide(s.TopMemory)
		if s.Service != nil {
			svc := *s.Service
			svc.Processes = elide(svc.Processes)
			s.Service = &svc
		}
	}
	if len(table) > 0 {
		out.ProcessTable = table
	}
	return &out
}

// resolve fills in the names and command lines share left out: a process
// without a name takes its PID's entry in the process table.
func resolve(c *Capture) {
	if len(c.ProcessTable) == 0 {
		return
	}
	for i := range c.Samples {
		forProcs(&c.Samples[i], func(p *Process) {
			if p.Name != "" {
				return
			}
			if info, ok := c.ProcessTable[strconv.Itoa(p.PID)]; ok {
				p.Name, p.Cmdline = info.Name, info.Cmdline
			}
		})
	}
}

// forProcs calls f with every process object of s.
func forProcs(s *Sample, f func(*Process)) {
	for j := range s.TopCPU {
		f(&s.TopCPU[j])
	}
	for j := range s.TopMemory {
		f(&s.TopMemory[j])
	}
	if s.Service != nil {
		for j := range s.Service.Processes {
			f(&s.Service.Processes[j])
		}
	}
}
