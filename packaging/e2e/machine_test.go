package e2e

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/procfs"
)

// bootScript makes the new root and execs systemd; see its header.
//
//go:embed testdata/boot.sh
var bootScript string

// launcher moves itself into the cgroups given before "--", then execs the
// rest: the namespaces' cgroup roots are the cgroups it moved into, so
// systemd's init.scope and slices land under them, not at the host's roots.
const launcher = `while [ "$1" != -- ]; do echo $$ > "$1/cgroup.procs"; shift; done; shift; exec "$@"`

// namespaces are the ones systemd gets, as unshare's flags.
var namespaces = []string{"--cgroup", "--pid", "--fork", "--mount", "--uts", "--ipc", "--net", "--kill-child"}

// Timeouts of the machine's life.
const (
	bootTimeout     = 60 * time.Second
	poweroffTimeout = 20 * time.Second
	commandTimeout  = 30 * time.Second
)

// sigRTMin4 is SIGRTMIN+4 as systemd counts (glibc's SIGRTMIN is 34): the
// signal that makes systemd power off.
const sigRTMin4 = syscall.Signal(38)

// machine is a systemd booted in namespaces of its own.
type machine struct {
	t       *testing.T
	pid     int // the namespaces' PID 1 (systemd), as the host sees it
	launch  *exec.Cmd
	exited  chan struct{} // closed when the launcher (unshare) has exited
	console string        // file with boot.sh's and systemd's output
}

// requireNamespaces skips the test where the machine cannot be booted.
func requireNamespaces(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: skipping the real-systemd end-to-end test")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root: it boots systemd as PID 1 in new namespaces (run make e2e as root)")
	}
	for _, tool := range []string{"unshare", "nsenter", "setpriv", "make", "mount"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s: %v", tool, err)
		}
	}
	if _, err := os.Stat("/lib/systemd/systemd"); err != nil {
		t.Skipf("needs systemd installed: %v", err)
	}
	if _, err := os.Stat("/sys/fs/cgroup/unified/cgroup.controllers"); err != nil {
		t.Skip("boot.sh is written for hybrid cgroups (cgroup2 at /sys/fs/cgroup/unified, v1 controllers), which this machine does not have")
	}
	dir := t.TempDir()
	probe := `mount -t tmpfs e2e-probe "$1" && mkdir "$1/u" "$1/w" "$1/m" && mount -t overlay -o "lowerdir=/,upperdir=$1/u,workdir=$1/w" e2e-probe "$1/m"`
	cmd := exec.Command("unshare", append(slices.Clone(namespaces), "--", "/bin/sh", "-c", probe, "sh", dir)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Skipf("namespaces or an overlay of / are refused here: unshare: %v: %s", err, bytes.TrimSpace(out))
	}
}

// boot boots systemd on the overlay with stage copied in, and returns once
// it is running. The machine is powered off (or killed) and its cgroups
// removed when the test ends.
func boot(t *testing.T, work, stage string) *machine {
	t.Helper()
	for _, d := range []string{"rw", "root"} {
		if err := os.MkdirAll(filepath.Join(work, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	script := filepath.Join(work, "boot.sh")
	if err := os.WriteFile(script, []byte(bootScript), 0o755); err != nil {
		t.Fatal(err)
	}
	cgroups := makeCgroups(t, fmt.Sprintf("preflight-e2e-%d", os.Getpid()))

	m := &machine{t: t, exited: make(chan struct{}), console: filepath.Join(work, "console.log")}
	console, err := os.Create(m.console)
	if err != nil {
		t.Fatal(err)
	}
	defer console.Close()
	args := append([]string{"-c", launcher, "sh"}, cgroups...)
	args = append(args, "--", "unshare")
	args = append(args, namespaces...)
	args = append(args, "--", "/bin/sh", script, work, stage)
	m.launch = exec.Command("/bin/sh", args...)
	m.launch.Stdout, m.launch.Stderr = console, console
	// If the test binary dies, unshare dies, and --kill-child takes systemd.
	m.launch.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := m.launch.Start(); err != nil {
		t.Fatalf("failed to start unshare: %v", err)
	}
	go func() {
		m.launch.Wait()
		close(m.exited)
	}()
	t.Cleanup(m.poweroff)

	deadline := time.Now().Add(bootTimeout)
	for m.pid == 0 {
		if m.pid = m.child(); m.pid != 0 {
			break
		}
		select {
		case <-m.exited:
			t.Fatalf("the machine did not boot: %s", m.consoleTail())
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("unshare started no child in %s", bootTimeout)
		}
	}
	// Wait for the exec of systemd, then for the boot to finish.
	for !m.isSystemd() {
		select {
		case <-m.exited:
			t.Fatalf("the machine did not boot: %s", m.consoleTail())
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("systemd did not start in %s: %s", bootTimeout, m.consoleTail())
		}
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	var state string
	for {
		// "offline" until systemd listens on its private socket.
		out, err := m.runCtx(ctx, "systemctl", "is-system-running", "--wait")
		state = strings.TrimSpace(out)
		if state == "running" || state == "degraded" {
			break
		}
		if time.Now().After(deadline) {
			failed, _ := m.run("systemctl", "--failed", "--no-legend")
			t.Fatalf("systemd did not come up: %q %v; failed units:\n%s\nconsole:\n%s", state, err, failed, m.consoleTail())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if state == "degraded" {
		failed, _ := m.run("systemctl", "--failed", "--no-legend")
		t.Logf("systemd is degraded (failed units do not matter here):\n%s", failed)
	}
	return m
}

// child returns unshare's child, the namespaces' PID 1, or 0.
func (m *machine) child() int {
	pid := m.launch.Process.Pid
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	n, _ := strconv.Atoi(f[0])
	return n
}

func (m *machine) isSystemd() bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", m.pid))
	return err == nil && strings.TrimSpace(string(b)) == "systemd"
}

func (m *machine) consoleTail() string {
	b, _ := os.ReadFile(m.console)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// poweroff stops systemd (SIGRTMIN+4), or kills it after poweroffTimeout,
// and waits for the launcher to exit: with PID 1 gone, every process of
// the namespaces is gone, and with them the mounts.
func (m *machine) poweroff() {
	// Signals from outside its namespace reach PID 1 only once it handles
	// them: resend until systemd is far enough to act on it.
	for deadline := time.Now().Add(poweroffTimeout); m.pid != 0 && time.Now().Before(deadline); {
		syscall.Kill(m.pid, sigRTMin4)
		select {
		case <-m.exited:
			return
		case <-time.After(500 * time.Millisecond):
		}
	}
	m.t.Logf("systemd did not power off in %s; killing it", poweroffTimeout)
	if m.pid != 0 {
		syscall.Kill(m.pid, syscall.SIGKILL)
	}
	m.launch.Process.Kill()
	select {
	case <-m.exited:
	case <-time.After(poweroffTimeout):
		m.t.Errorf("unshare (PID %d) did not exit", m.launch.Process.Pid)
	}
}

// path is a path inside the machine, as the host reaches it.
func (m *machine) path(p string) string {
	return fmt.Sprintf("/proc/%d/root%s", m.pid, p)
}

// run runs a command inside the machine (all its namespaces, its root) and
// returns its stdout; the error carries stderr.
func (m *machine) run(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	return m.runCtx(ctx, args...)
}

func (m *machine) runCtx(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "nsenter", append([]string{"-t", strconv.Itoa(m.pid), "-a", "--"}, args...)...)
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8", "SYSTEMD_PAGER=", "SYSTEMD_COLORS=0"}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		err = fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(stderr.Bytes()))
	}
	return stdout.String(), err
}

// must is run that fails the test on error.
func (m *machine) must(args ...string) string {
	m.t.Helper()
	out, err := m.run(args...)
	if err != nil {
		m.t.Fatal(err)
	}
	return out
}

// makeCgroups makes a child cgroup named name under the test's own cgroup
// in every hierarchy of /proc/self/cgroup, and returns their directories.
// They are removed, deepest first, when the test ends.
func makeCgroups(t *testing.T, name string) []string {
	t.Helper()
	self, err := procfs.Self()
	if err != nil {
		t.Fatal(err)
	}
	groups, err := self.Cgroups()
	if err != nil {
		t.Fatal(err)
	}
	mounts, err := procfs.GetMounts()
	if err != nil {
		t.Fatal(err)
	}
	var dirs []string
	for _, g := range groups {
		mnt := cgroupMount(mounts, g.Controllers)
		if mnt == nil {
			t.Fatalf("no mount of the cgroup hierarchy %v", g.Controllers)
		}
		rel, ok := strings.CutPrefix(g.Path, strings.TrimSuffix(mnt.Root, "/"))
		if !ok {
			t.Fatalf("cgroup %s is outside the mount of %s (%s)", g.Path, mnt.MountPoint, mnt.Root)
		}
		parent := filepath.Join(mnt.MountPoint, rel)
		dir := filepath.Join(parent, name)
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatalf("failed to make cgroup: %v", err)
		}
		t.Cleanup(func() { removeCgroup(t, dir) })
		if slices.Contains(g.Controllers, "cpuset") {
			for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
				b, err := os.ReadFile(filepath.Join(parent, f))
				if err == nil {
					err = os.WriteFile(filepath.Join(dir, f), b, 0o644)
				}
				if err != nil {
					t.Fatalf("failed to set up cpuset cgroup: %v", err)
				}
			}
		}
		dirs = append(dirs, dir)
	}
	return dirs
}

// cgroupMount finds the mount of the hierarchy with these controllers
// (none: cgroup2).
func cgroupMount(mounts []*procfs.MountInfo, controllers []string) *procfs.MountInfo {
	for _, m := range mounts {
		switch {
		case len(controllers) == 0 && m.FSType == "cgroup2":
			return m
		case len(controllers) > 0 && m.FSType == "cgroup":
			all := true
			for _, c := range controllers {
				if _, ok := m.SuperOptions[c]; !ok {
					if name, ok := strings.CutPrefix(c, "name="); !ok || m.SuperOptions["name"] != name {
						all = false
					}
				}
			}
			if all {
				return m
			}
		}
	}
	return nil
}

// removeCgroup removes the cgroup tree at dir, deepest first, retrying
// while the last processes finish exiting.
func removeCgroup(t *testing.T, dir string) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		var dirs []string
		filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		var last error
		for _, d := range slices.Backward(dirs) {
			if err := os.Remove(d); err != nil && !errors.Is(err, fs.ErrNotExist) {
				last = err
			}
		}
		if last == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("failed to remove cgroup: %v", last)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}
