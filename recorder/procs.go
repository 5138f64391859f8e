package recorder

import (
	"runtime"
	"sync"
)

// Procs runs the process's Go code on one P (GOMAXPROCS) while it is idle
// and on more while a long piece of work runs: a host scan and the health
// check that follows it (a TLS handshake), a capture's encoding and
// write, the reading of the kernel's and the journal's last words.
//
// Idle, a recorder wakes once a second for its trace. On two Ps each
// wake-up also wakes a second thread, which spins on the idle P and sleeps
// again; on this project's virtual machine that was a tenth of an idle
// recorder's CPU (docs/benchmarks.md). On one P, though, a goroutine woken
// while another holds the P waits for it: the cgroup watcher, woken by an
// exit or an OOM kill whose evidence lasts only until systemd removes the
// cgroup, would wait behind a host scan (25 ms at 2,000 processes, and
// preempted only after 10 ms). So every piece of work that may take
// milliseconds is marked (Enter, Leave) and runs with a second P beside it:
// a thread then waits in the network poller, and the watcher runs at once.
// What runs unmarked on the one P is short: a trace tick, a look, a
// check's result (a fraction of a millisecond). Each switch stops the
// world for some tens of microseconds: twice a sample.
//
// A nil *Procs does nothing: GOMAXPROCS stays as it was set.
type Procs struct {
	mu         sync.Mutex
	idle, busy int
	n          int // marked pieces of work running
	entered    int // marked pieces of work so far (tests)
}

// NewProcs sets GOMAXPROCS to idle and returns the Procs that raise it to
// busy while marked work runs.
func NewProcs(idle, busy int) *Procs {
	runtime.GOMAXPROCS(idle)
	return &Procs{idle: idle, busy: busy}
}

// Enter marks the start of a piece of work that may take milliseconds;
// Leave marks its end. Pieces may overlap and nest.
func (p *Procs) Enter() {
	if p == nil {
		return
	}
	p.mu.Lock()
	if p.n == 0 {
		runtime.GOMAXPROCS(p.busy)
	}
	p.n++
	p.entered++
	p.mu.Unlock()
}

// Leave marks the end of a piece of work started with Enter.
func (p *Procs) Leave() {
	if p == nil {
		return
	}
	p.mu.Lock()
	if p.n == 0 {
		p.mu.Unlock()
		panic("recorder: Procs.Leave without Enter")
	}
	p.n--
	if p.n == 0 {
		runtime.GOMAXPROCS(p.idle)
	}
	p.mu.Unlock()
}
