// Package cgrouptest makes real, throw-away cgroups on the test machine
// (root only) and runs processes in them, for the tests of every package
// that watches a service's cgroup.
//
// A cgroup is made in the cgroup2 hierarchy (/sys/fs/cgroup/unified on a
// hybrid host, /sys/fs/cgroup on a pure v2 one) and, where mounted, in the
// v1 memory hierarchy, under the same path. Cleanup moves any process left
// in it to the parent and removes it, also when the test fails. Tests skip
// with the reason when the machine refuses.
package cgrouptest

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// Root is the cgroup file system's mount point.
const Root = "/sys/fs/cgroup"

// Cgroup is a cgroup a test made.
type Cgroup struct {
	Path     string   // as /proc/PID/cgroup shows it: "/preflight-test-…"
	Dirs     []string // its directories, cgroup2 first
	V1Memory string   // its v1 memory directory, "" without one
}

// New makes a fresh cgroup named prefix-<random> and removes it at Cleanup.
func New(t testing.TB, prefix string) *Cgroup {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to make cgroups")
	}
	var v2 string
	for _, d := range []string{filepath.Join(Root, "unified"), Root} {
		if _, err := os.Stat(filepath.Join(d, "cgroup.controllers")); err == nil {
			v2 = d
			break
		}
	}
	if v2 == "" {
		t.Skip("no cgroup2 hierarchy here (legacy v1 host): nothing to watch cgroup.events in")
	}
	parents := []string{v2}
	mem := filepath.Join(Root, "memory")
	if _, err := os.Stat(filepath.Join(mem, "memory.limit_in_bytes")); err == nil {
		parents = append(parents, mem)
	}
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	cg := &Cgroup{Path: "/" + prefix + "-" + hex.EncodeToString(rnd[:])}
	for _, p := range parents {
		dir := filepath.Join(p, cg.Path)
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Skipf("the kernel refuses a test cgroup: %v", err)
		}
		cg.Dirs = append(cg.Dirs, dir)
		if p == mem {
			cg.V1Memory = dir
		}
		t.Cleanup(func() { remove(t, dir) })
	}
	return cg
}

// remove empties dir into its parent and removes it, retrying while killed
// processes finish exiting.
func remove(t testing.TB, dir string) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
		if errors.Is(err, os.ErrNotExist) {
			return
		}
		for _, f := range bytes.Fields(b) {
			_ = os.WriteFile(filepath.Join(filepath.Dir(dir), "cgroup.procs"), f, 0)
		}
		err = os.Remove(dir)
		if err == nil || errors.Is(err, os.ErrNotExist) {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("failed to remove test cgroup %s: %v", dir, err)
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Remove removes the cgroup now, as systemd does once a unit's processes
// are gone: its processes, if any are left, are moved to the parent first.
func (cg *Cgroup) Remove(t testing.TB) {
	t.Helper()
	for _, d := range cg.Dirs {
		remove(t, d)
	}
}

// LimitMemory sets a memory limit: v1 memory.limit_in_bytes where the
// cgroup has a v1 memory directory, else v2 memory.max with swap off.
func (cg *Cgroup) LimitMemory(t testing.TB, bytes int) {
	t.Helper()
	v := []byte(strconv.Itoa(bytes))
	if cg.V1Memory != "" {
		if err := os.WriteFile(filepath.Join(cg.V1Memory, "memory.limit_in_bytes"), v, 0); err != nil {
			t.Skipf("the kernel refuses a v1 memory limit: %v", err)
		}
		return
	}
	if err := os.WriteFile(filepath.Join(cg.Dirs[0], "memory.max"), v, 0); err != nil {
		t.Skipf("no memory controller for the test cgroup: %v", err)
	}
	_ = os.WriteFile(filepath.Join(cg.Dirs[0], "memory.swap.max"), []byte("0"), 0)
}

// Move puts a process into the cgroup in every hierarchy it was made in.
func (cg *Cgroup) Move(t testing.TB, pid int) {
	t.Helper()
	for _, d := range cg.Dirs {
		if err := os.WriteFile(filepath.Join(d, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0); err != nil {
			t.Fatalf("failed to move %d into %s: %v", pid, d, err)
		}
	}
}

// Proc is a child process of the test, reaped in the background.
type Proc struct {
	Cmd  *exec.Cmd
	PID  int
	Done chan struct{} // closed when the process has exited and been reaped
}

// Start runs cmd; Cleanup kills it by PID, if still running, and reaps it.
func Start(t testing.TB, cmd *exec.Cmd) *Proc {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatalf("failed to start %s: %v", cmd.Path, err)
	}
	p := &Proc{Cmd: cmd, PID: cmd.Process.Pid, Done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(p.Done)
	}()
	t.Cleanup(func() {
		p.Kill()
		<-p.Done
	})
	return p
}

// StartSleep runs `sleep 300`.
func StartSleep(t testing.TB) *Proc { return Start(t, exec.Command("sleep", "300")) }

// Kill sends SIGKILL to this process only, if it is still running.
func (p *Proc) Kill() {
	select {
	case <-p.Done:
	default:
		_ = p.Cmd.Process.Kill()
	}
}
