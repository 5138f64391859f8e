package e2e

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/preflight-rec/preflight/recorder/capture"
)

// debsDir holds Debian's packages of the third-party services, downloaded
// (never installed on the host) by packaging/e2e/fetch-debs, which `make
// test` runs; PREFLIGHT_E2E_DEBS names another directory.
const debsDir = "/var/cache/preflight-e2e-debs"

// thirdParty are the recorders of Debian's own services: each env file
// under /etc/preflight, as an operator writes it.
var thirdParty = map[string]string{
	// No PREFLIGHT_UNIT: the unit is redis.service, the alias Debian's
	// package installs for redis-server.service.
	"redis": "PREFLIGHT_HEALTH_URL=tcp://127.0.0.1:6379\n",
	"nginx": "PREFLIGHT_HEALTH_URL=http://127.0.0.1/\n",
	// Debian runs a PostgreSQL cluster in postgresql@VERSION-CLUSTER.
	"postgres": "PREFLIGHT_HEALTH_URL=tcp://127.0.0.1:5432\nPREFLIGHT_UNIT=postgresql@15-main.service\n",
	// postgresql.service runs /bin/true and remains: no process at all.
	"pg-umbrella": "PREFLIGHT_HEALTH_URL=tcp://127.0.0.1:5432\nPREFLIGHT_UNIT=postgresql.service\n",
}

// TestThirdParty runs preflight beside Debian's own packages under a real
// systemd, as installed from Debian: redis-server (named by its alias),
// nginx (control processes check and reload it; its unit never restarts)
// and a PostgreSQL 15 cluster (a forking unit of many processes), and the
// umbrella postgresql.service, which runs none.
func TestThirdParty(t *testing.T) {
	requireNamespaces(t)
	dir := debsDir
	if d := os.Getenv("PREFLIGHT_E2E_DEBS"); d != "" {
		dir = d
	}
	debs, _ := filepath.Glob(filepath.Join(dir, "*.deb"))
	_, err := os.Stat("/usr/bin/redis-server") // the host's, in the machine too
	if err != nil && !slices.ContainsFunc(debs, func(p string) bool { return strings.HasPrefix(filepath.Base(p), "redis-server_") }) {
		t.Skipf("no redis-server package in %s: make test downloads Debian's redis-server and nginx there (packaging/e2e/fetch-debs)", dir)
	}
	b := build(t)
	work := t.TempDir()
	stage := filepath.Join(work, "stage")
	makeInstall(t, stage, b.preflight)
	stageThirdParty(t, stage)
	m := boot(t, work, stage)
	t.Cleanup(func() {
		if t.Failed() {
			j, _ := m.run("journalctl", "--no-pager", "-o", "short-precise", "-n", "300")
			t.Logf("journal:\n%s", j)
		}
	})
	m.must("sh", "/usr/local/share/preflight-e2e/postinst", "configure")
	// Installed in the machine only (its root is an overlay of the
	// host's). The packages' scripts enable their services; the host's
	// policy-rc.d (Debian's images have one) keeps them from starting.
	if len(debs) > 0 {
		m.must(append([]string{"dpkg", "-i"}, debs...)...)
	}

	t.Run("redis by its alias: kill -9 is an exit capture of redis-server", func(t *testing.T) {
		const svc, real = "redis", "redis-server.service"
		pid, cg := startBoth(t, m, svc, real)
		m.must("kill", "-9", strconv.Itoa(pid))
		c := waitCapture(t, m, svc, map[string]bool{}) // Restart=always: healthy again ends it
		exitOf(t, c, real, cg, pid, "redis-server", "signal")
	})

	t.Run("nginx: a reload or a binary upgrade is no capture, kill -9 of its master is", func(t *testing.T) {
		const svc, real = "nginx", "nginx.service"
		pid, cg := startBoth(t, m, svc, real)
		// ExecReload runs `nginx -s reload` in the unit's cgroup, and the
		// master replaces its workers: neither is the service failing.
		m.must("systemctl", "reload", real)
		workers := func() error {
			if n := len(strings.Fields(m.must("pgrep", "-P", strconv.Itoa(pid)))); n == 0 {
				return errors.New("no worker yet")
			}
			return nil
		}
		waitFor(t, "nginx's new workers", workers)
		time.Sleep(2 * time.Second) // ten recorder intervals
		if names := captureNames(t, m, svc); len(names) > 0 {
			t.Fatalf("captures after a reload: %v", names)
		}
		if st := waitState(t, m, svc, func(*capture.State) bool { return true }); st.State != capture.StateHealthy || st.OpenIncident != "" {
			t.Fatalf("after a reload: state %s, open incident %q", st.State, st.OpenIncident)
		}
		// The binary upgrade (nginx's own, without systemd): USR2 starts
		// a new master, QUIT ends the old one, and systemd re-reads the
		// PID file and takes the new master for the main process, without
		// a word on the bus. The old master's end (or, the watcher late,
		// every process replaced) is a hand-over, as systemd says when
		// asked, and the new master is the main process watched.
		m.must("kill", "-USR2", strconv.Itoa(pid))
		var upgraded int
		waitFor(t, "nginx's new master in /run/nginx.pid", func() error {
			out, err := m.run("cat", "/run/nginx.pid") // renamed to nginx.pid.oldbin until the new master writes its own
			if err != nil {
				return err
			}
			n, err := strconv.Atoi(strings.TrimSpace(out))
			if err != nil || n == pid {
				return fmt.Errorf("pid file says %d (%v)", n, err)
			}
			upgraded = n
			return nil
		})
		m.must("kill", "-QUIT", strconv.Itoa(pid))
		waitFor(t, "systemd's new main process", func() error {
			if n := mainPID(t, m, real); n != upgraded {
				return fmt.Errorf("MainPID %d, want %d", n, upgraded)
			}
			return nil
		})
		time.Sleep(3 * time.Second) // past the second the old master's end waits for systemd's word, and its answer when asked
		if names := captureNames(t, m, svc); len(names) > 0 {
			t.Fatalf("captures after a binary upgrade: %v", names)
		}
		if st := waitState(t, m, svc, func(*capture.State) bool { return true }); st.State != capture.StateHealthy || st.OpenIncident != "" {
			t.Fatalf("after a binary upgrade: state %s, open incident %q", st.State, st.OpenIncident)
		}
		m.must("kill", "-9", strconv.Itoa(upgraded))
		// nginx.service has no Restart=: the incident stays open, so the
		// capture is read once systemd's word is in it.
		c := capturedWithWord(t, m, svc)
		exitOf(t, c, real, cg, upgraded, "nginx", "signal")
	})

	t.Run("postgresql@15-main: kill -9 of the postmaster is an exit capture", func(t *testing.T) {
		const svc, real = "postgres", "postgresql@15-main.service"
		if _, err := os.Stat("/etc/postgresql/15/main/postgresql.conf"); err != nil {
			t.Skipf("no PostgreSQL 15 cluster main on this host (%v): Debian's postgresql package makes it", err)
		}
		pid, cg := startBoth(t, m, svc, real)
		m.must("kill", "-9", strconv.Itoa(pid))
		c := capturedWithWord(t, m, svc)
		// Systemd then runs ExecStop (pg_ctlcluster stop), which fails on
		// a dead cluster: its word is "success" while that runs, then
		// "exit-code"; the main process's end is killed by 9 in both.
		pre := exitOf(t, c, real, cg, pid, "postgres", "")
		// The postmaster, its checkpointer, writers and launchers.
		if n := len(pre[len(pre)-1].Service.Processes); n < 4 {
			t.Errorf("the sample before the kill lists %d processes of the cluster, want its postmaster and background workers", n)
		}
	})

	t.Run("postgresql.service runs no process: unscoped, saying which unit to watch", func(t *testing.T) {
		const svc = "pg-umbrella"
		requireUnit(t, m, "postgresql.service")
		m.must("systemctl", "start", "postgresql.service")
		if s := strings.TrimSpace(m.must("systemctl", "show", "-p", "SubState", "--value", "postgresql.service")); s != "exited" {
			t.Fatalf("postgresql.service is %s, want active (exited)", s)
		}
		m.must("systemctl", "start", "preflight@"+svc+".service")
		st := waitState(t, m, svc, func(s *capture.State) bool { return s.Unit != nil && s.Unit.State == capture.UnitUnscoped })
		if !strings.Contains(st.Unit.Reason, "active (exited) and runs no process") || !strings.Contains(st.Unit.Reason, "PREFLIGHT_UNIT") {
			t.Errorf("unscoped because %q: want it to say the unit runs no process, and what to set", st.Unit.Reason)
		}
		out := m.must("preflight", "list", "--dir", captureDir)
		if !strings.Contains(out, svc) || !strings.Contains(out, "unscoped") {
			t.Errorf("preflight list does not show %s unscoped:\n%s", svc, out)
		}
	})
}

// stageThirdParty stages the postinst, e2e.target, the recorders' env
// files, and masks of the host's enabled services but the ones tested.
func stageThirdParty(t *testing.T, stage string) {
	t.Helper()
	postinst, err := os.ReadFile(filepath.Join(repoRoot(t), "packaging/deb/postinst"))
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{
		"usr/local/share/preflight-e2e/postinst": postinst,
		"etc/systemd/system/e2e.target":          []byte(e2eTarget),
	}
	for name, env := range thirdParty {
		files["etc/preflight/"+name+".env"] = []byte(env + "PREFLIGHT_INTERVAL_SECONDS=0.2\nPREFLIGHT_BUFFER_SAMPLES=10\nPREFLIGHT_LOG_LEVEL=debug\n")
	}
	for path, data := range files {
		p := filepath.Join(stage, path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range hostServices(t) {
		if strings.HasPrefix(name, "postgresql") || strings.HasPrefix(name, "redis") || strings.HasPrefix(name, "nginx") {
			continue // tested; e2e.target starts none of them
		}
		if err := os.Symlink("/dev/null", filepath.Join(stage, "etc/systemd/system", name)); err != nil && !errors.Is(err, os.ErrExist) {
			t.Fatal(err)
		}
	}
}

// requireUnit skips unless systemd in m has the unit u.
func requireUnit(t *testing.T, m *machine, u string) {
	t.Helper()
	if s := strings.TrimSpace(m.must("systemctl", "show", "-p", "LoadState", "--value", u)); s != "loaded" {
		t.Skipf("%s is %s here: its Debian package is not installed", u, s)
	}
}

// startBoth starts the unit real and the recorder svc of it, and returns
// the unit's main PID and cgroup; it skips when systemd has no such unit.
func startBoth(t *testing.T, m *machine, svc, real string) (int, string) {
	t.Helper()
	requireUnit(t, m, real)
	m.must("systemctl", "start", real)
	startRecorder(t, m, svc)
	return mainPID(t, m, real), cgroupOf(t, m, real)
}

// startRecorder starts preflight@svc and waits until its service is healthy.
func startRecorder(t *testing.T, m *machine, svc string) {
	t.Helper()
	u := "preflight@" + svc + ".service"
	m.must("systemctl", "start", u)
	waitState(t, m, svc, func(s *capture.State) bool { return s.State == capture.StateHealthy && s.Unit == nil })
	time.Sleep(time.Second) // a few samples of the healthy service in the ring
	if names := captureNames(t, m, svc); len(names) > 0 {
		t.Fatalf("captures of a healthy %s: %v", svc, names)
	}
}

// captureNames lists svc's captures.
func captureNames(t *testing.T, m *machine, svc string) []string {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(m.path(filepath.Join(captureDir, svc)), "*"+capture.Ext))
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// capturedWithWord waits for svc's first capture to hold systemd's word on
// its first trigger, and returns it.
func capturedWithWord(t *testing.T, m *machine, svc string) *capture.Capture {
	t.Helper()
	var c *capture.Capture
	waitFor(t, "a capture with systemd's word", func() error {
		names := captureNames(t, m, svc)
		if len(names) == 0 {
			return errors.New("no capture yet")
		}
		var err error
		if c, _, err = capture.Read(names[0]); err != nil {
			return err
		}
		if len(c.Triggers) == 0 || c.Triggers[0].Systemd == nil {
			return errors.New("no word from systemd yet")
		}
		return nil
	})
	return c
}

// cgroupOf is the cgroup systemd gives the running unit u.
func cgroupOf(t *testing.T, m *machine, u string) string {
	t.Helper()
	cg := strings.TrimSpace(m.must("systemctl", "show", "-p", "ControlGroup", "--value", u))
	if cg == "" {
		t.Fatalf("%s has no cgroup", u)
	}
	return cg
}

// exitOf checks that c is the exit of unit's main process pid, named name,
// in the cgroup cg, with systemd's word of the kill (and its result, unless
// result is ""), and returns the samples before it.
func exitOf(t *testing.T, c *capture.Capture, unit, cg string, pid int, name, result string) []capture.Sample {
	t.Helper()
	if len(c.Triggers) == 0 || c.Triggers[0].Kind != capture.TriggerExit {
		t.Fatalf("triggers %s, want exit first", kinds(c))
	}
	// The kill is told by its own PID: a main process that leaves others
	// behind (nginx's workers, PostgreSQL's background processes) is an
	// exit of its own, named, before the health check that fails meanwhile;
	// where systemd ended the rest before the watcher looked (a loaded
	// host), the emptied cgroup's last pids name it.
	list := fmt.Sprintf(`([0-9]+,)*%d(,[0-9]+)*(,\+[0-9]+)?`, pid) // fmtPIDs naming pid
	named := regexp.MustCompile(fmt.Sprintf(`^main process %d \(%s\) ended \(left pids [0-9,+]+\)$`, pid, name) +
		`|^cgroup (emptied|removed) \(last pids ` + list + `\)$|^(cgroup re-created|all processes replaced) \(` + list + ` → [0-9,+none]+\)$`)
	if d := c.Triggers[0].Detail; !named.MatchString(d) {
		t.Errorf("the first trigger's detail %q is neither main process %d's end nor the cgroup's exit naming it", d, pid)
	}
	pre := before(c)
	if len(pre) == 0 {
		t.Fatal("no sample before the failure")
	}
	last := pre[len(pre)-1].Service
	if last == nil || last.Cgroup != cg {
		t.Fatalf("service before the failure = %+v, want the cgroup %s", last, cg)
	}
	if !hasProcess(last, pid, name) {
		t.Errorf("the sample before the failure does not list %s's process %d %s: %+v", unit, pid, name, last.Processes)
	}
	sd := c.Triggers[0].Systemd
	if sd.Unit != unit || (result != "" && sd.Result != result) || sd.ExecMainCode != "killed" || fmtInt(sd.ExecMainStatus) != "9" {
		t.Errorf("systemd = %s, want %s's main process killed by signal 9, result %q", asJSON(sd), unit, result)
	}
	if sd.MainPID != nil && *sd.MainPID != 0 {
		t.Errorf("systemd's word names MainPID %d: the restarted unit, not the kill of %d", *sd.MainPID, pid)
	}
	t.Logf("%s: triggers %s (%q), %d processes before; systemd at +%s: %s", unit, kinds(c), c.Triggers[0].Detail, len(last.Processes),
		sd.At.Sub(c.Triggers[0].At), fmt.Sprintf("result=%s exec_main=%s/%s", sd.Result, sd.ExecMainCode, fmtInt(sd.ExecMainStatus)))
	return pre
}
