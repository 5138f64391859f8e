package kit

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// live is every process Start started that has not been reaped yet, for
// KillAll.
var live struct {
	sync.Mutex
	procs map[*Proc]struct{}
}

// KillAll sends SIGKILL to every process Start started that is still
// running, by its PID, and waits up to 5 s for them to be reaped: the
// benchmark's way out when it is interrupted.
func KillAll() {
	live.Lock()
	procs := make([]*Proc, 0, len(live.procs))
	for p := range live.procs {
		procs = append(procs, p)
	}
	live.Unlock()
	for _, p := range procs {
		p.Kill()
	}
	for _, p := range procs {
		p.Wait(5 * time.Second)
	}
}

// Proc is a process a benchmark started, reaped in the background.
type Proc struct {
	Cmd     *exec.Cmd
	PID     int
	Started time.Time     // just before the fork
	Done    chan struct{} // closed once it has exited and been reaped
	Exited  time.Time     // when it was reaped; valid after Done
}

// Start starts cmd inside cg (nil: where the caller is): straight into its
// cgroup2 directory at the fork (CLONE_INTO_CGROUP), so that not one
// instruction of the process escapes the cgroup's CPU accounting, then into
// its v1 memory directory. The process gets SIGKILL should the benchmark die
// first.
func Start(cmd *exec.Cmd, cg *Cgroup) (*Proc, error) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	if cg != nil {
		dir, err := os.Open(cg.V2)
		if err != nil {
			return nil, fmt.Errorf("failed to open cgroup %s: %w", cg.V2, err)
		}
		defer dir.Close()
		cmd.SysProcAttr.UseCgroupFD = true
		cmd.SysProcAttr.CgroupFD = int(dir.Fd())
	}
	p := &Proc{Cmd: cmd, Done: make(chan struct{}), Started: time.Now()}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("failed to start %s: %w", strings.Join(cmd.Args, " "), err)
	}
	p.PID = cmd.Process.Pid
	live.Lock()
	if live.procs == nil {
		live.procs = map[*Proc]struct{}{}
	}
	live.procs[p] = struct{}{}
	live.Unlock()
	go func() {
		_ = cmd.Wait()
		p.Exited = time.Now()
		live.Lock()
		delete(live.procs, p)
		live.Unlock()
		close(p.Done)
	}()
	if cg != nil && cg.V1Memory != "" {
		if err := (&Cgroup{V2: cg.V1Memory}).Move(p.PID); err != nil {
			p.Stop(time.Second)
			return nil, err
		}
	}
	return p, nil
}

// Signal sends sig to this process only, unless it has exited already.
func (p *Proc) Signal(sig syscall.Signal) {
	select {
	case <-p.Done:
	default:
		_ = syscall.Kill(p.PID, sig)
	}
}

// Kill sends SIGKILL to the process, by its PID.
func (p *Proc) Kill() { p.Signal(syscall.SIGKILL) }

// Wait waits up to d for the process to exit and reports whether it did.
func (p *Proc) Wait(d time.Duration) bool {
	select {
	case <-p.Done:
		return true
	case <-time.After(d):
		return false
	}
}

// Stop sends SIGTERM, waits up to grace, then SIGKILL, and waits for the
// process to be reaped.
func (p *Proc) Stop(grace time.Duration) {
	p.Signal(syscall.SIGTERM)
	if !p.Wait(grace) {
		p.Kill()
		<-p.Done
	}
}

// Population is a set of idle processes (sleep 3600) that stand for a busy
// host's process table.
type Population struct {
	procs []*Proc
}

// StartPopulation starts n idle processes in cg.
func StartPopulation(n int, cg *Cgroup) (*Population, error) {
	pop := &Population{}
	for range n {
		p, err := Start(exec.Command("sleep", "3600"), cg)
		if err != nil {
			pop.Stop()
			return nil, err
		}
		pop.procs = append(pop.procs, p)
	}
	return pop, nil
}

// Len is the number of processes started.
func (pop *Population) Len() int { return len(pop.procs) }

// Stop kills every process of the population by its PID and reaps it.
func (pop *Population) Stop() {
	for _, p := range pop.procs {
		p.Kill()
	}
	for _, p := range pop.procs {
		<-p.Done
	}
	pop.procs = nil
}

// CountProcesses returns the number of processes on the host (the numeric
// entries of /proc).
func CountProcesses() int {
	names, err := readDirNames("/proc")
	if err != nil {
		return 0
	}
	n := 0
	for _, name := range names {
		if isPID(name) {
			n++
		}
	}
	return n
}

func readDirNames(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.Readdirnames(-1)
}

func isPID(name string) bool {
	if name == "" {
		return false
	}
	for _, c := range name {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
