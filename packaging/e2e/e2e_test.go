package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/preflight-rec/preflight/recorder/capture"
	"github.com/preflight-rec/preflight/recorder/logs"
)

// The test's service and its recorder. The recorder is given the unit by
// an alias (a symlink unit, as Debian's redis package installs
// redis.service for redis-server.service): systemd resolves it.
const (
	service      = "dead-drop"
	unit         = service + ".service"
	alias        = "dd-alias.service"
	ghost        = "ghost" // a recorder whose unit does not exist
	repeats      = 10      // kills and OOM kills measured
	recorderUnit = "preflight@" + service + ".service"
	healthURL    = "http://127.0.0.1:8080/health"
	captureDir   = "/var/lib/preflight"
	memoryMax    = 64 << 20
	waitTimeout  = 20 * time.Second
)

// deadDropUnit is the service the test breaks.
var deadDropUnit = fmt.Sprintf(`[Unit]
Description=dead-drop, the service preflight's end-to-end test breaks
StartLimitIntervalSec=0

[Service]
# Control processes in the service's cgroup, as nginx's unit has them:
# never the service dying or being replaced.
ExecStartPre=/bin/sh -c 'sleep 0.3'
ExecStart=/usr/local/bin/dead-drop serve 127.0.0.1:8080
ExecReload=/bin/sh -c 'sleep 0.3'
ExecStop=/bin/sh -c 'sleep 0.2; kill ${MAINPID} 2>/dev/null || true'
Restart=always
RestartSec=100ms
MemoryMax=%d
`, memoryMax)

// recorderEnv is /etc/preflight/dead-drop.env: fast, so the test is short.
const recorderEnv = `PREFLIGHT_HEALTH_URL=` + healthURL + `
PREFLIGHT_UNIT=` + alias + `
PREFLIGHT_INTERVAL_SECONDS=0.2
PREFLIGHT_BUFFER_SAMPLES=10
PREFLIGHT_LOG_LEVEL=debug
`

const e2eTarget = `[Unit]
Description=preflight end-to-end test: basic.target and no more
Requires=basic.target
After=basic.target
`

// TestSystemd runs preflight@dead-drop.service under a real systemd and
// breaks dead-drop three ways; see the package doc.
func TestSystemd(t *testing.T) {
	requireNamespaces(t)
	start := time.Now()
	b := build(t)
	work := t.TempDir()
	stage := filepath.Join(work, "stage")
	makeInstall(t, stage, b.preflight)
	stageTest(t, stage, b.deadDrop)

	m := boot(t, work, stage)
	t.Logf("booted in %s", time.Since(start).Round(time.Millisecond))
	t.Cleanup(func() {
		if t.Failed() {
			j, _ := m.run("journalctl", "--no-pager", "-o", "short-precise", "-n", "200", "-u", unit, "-u", recorderUnit)
			t.Logf("journal:\n%s", j)
		}
	})

	// What the package's postinst does; `make install` users run the same.
	m.must("sh", "/usr/local/share/preflight-e2e/postinst", "configure")
	m.must("systemctl", "start", unit)
	waitFor(t, "dead-drop to answer", func() error {
		_, err := m.run("dead-drop", "get", healthURL)
		return err
	})
	// Type=notify: this returns once the first sample is in the ring.
	m.must("systemctl", "start", recorderUnit)
	if s := strings.TrimSpace(m.must("systemctl", "is-active", recorderUnit)); s != "active" {
		t.Fatalf("%s is %s", recorderUnit, s)
	}
	waitState(t, m, service, func(s *capture.State) bool { return s.State == capture.StateHealthy })
	time.Sleep(time.Second) // a few more samples of the healthy service in the ring
	seen := map[string]bool{}

	t.Run("kill -9 is an exit capture", func(t *testing.T) {
		pid := mainPID(t, m, unit)
		restartsBefore := restarts(t, m)
		m.must("kill", "-9", strconv.Itoa(pid))
		c := waitCapture(t, m, service, seen)
		// The exit is seen within milliseconds; a health check that fails
		// in those milliseconds may come first, in the same incident.
		if !hasTrigger(c, capture.TriggerExit) {
			t.Errorf("triggers %s, want exit", kinds(c))
		}
		pre := before(c)
		if len(pre) == 0 {
			t.Fatal("no sample before the failure")
		}
		if !slices.ContainsFunc(pre, func(s capture.Sample) bool { return hasProcess(s.Service, pid, "dead-drop") }) {
			t.Errorf("no sample before the failure lists dead-drop's process %d", pid)
		}
		if svc := pre[len(pre)-1].Service; svc == nil || svc.Cgroup != "/system.slice/"+unit {
			t.Errorf("service before the failure = %+v, want the cgroup /system.slice/%s", svc, unit)
		}
		// dead-drop runs as root: its open files are counted under the
		// hardened unit only by its CAP_DAC_READ_SEARCH.
		if !slices.ContainsFunc(pre, func(s capture.Sample) bool {
			return s.Service != nil && slices.ContainsFunc(s.Service.Processes, func(p capture.Process) bool {
				return p.PID == pid && p.FDs != nil && *p.FDs > 0 && p.FDLimit != nil
			})
		}) {
			t.Errorf("no sample before the failure has fds and fd_limit of dead-drop's process %d", pid)
		}
		if len(c.ServiceTrace) == 0 || c.ServiceIntervalSeconds != 1 {
			t.Errorf("no service trace (%d points, every %vs)", len(c.ServiceTrace), c.ServiceIntervalSeconds)
		}
		seesHost(t, c)
		if len(c.Triggers) == 0 || c.Triggers[0].Kind != capture.TriggerExit {
			t.Fatalf("triggers %s, want exit first", kinds(c))
		}
		// systemd's word on this failure, as it reported it over D-Bus
		// (the recorder reads the system bus under the hardened unit):
		// the kill, never the restarted unit.
		sd := c.Triggers[0].Systemd
		if sd == nil || sd.At == nil {
			t.Fatalf("exit trigger without systemd's word (%+v): D-Bus unreachable under the unit?", sd)
		}
		t.Logf("exit: triggers %s; systemd at +%s: result=%s n_restarts=%s exec_main_code=%s exec_main_status=%s %s/%s job=%s",
			kinds(c), sd.At.Sub(c.Triggers[0].At), sd.Result, fmtInt(sd.NRestarts), sd.ExecMainCode, fmtInt(sd.ExecMainStatus), sd.ActiveState, sd.SubState, sd.Job)
		// NRestarts counts the restart systemd scheduled for this failure;
		// the restarted unit (a new MainPID, Result reset) is never the word.
		if sd.Unit != unit || sd.Result != "signal" || sd.ExecMainCode != "killed" || fmtInt(sd.ExecMainStatus) != "9" ||
			sd.NRestarts == nil || *sd.NRestarts > restartsBefore+1 || fmtInt(sd.MainPID) != "0" {
			t.Errorf("systemd = %s, want %s killed by signal 9, no new MainPID, restarts ≤ %d", asJSON(sd), unit, restartsBefore+1)
		}
		if asJSON(c.Systemd) != asJSON(sd) {
			t.Errorf("the capture's systemd object %s is not the first trigger's", asJSON(c.Systemd))
		}
		for _, tr := range c.Triggers[1:] {
			if tr.Kind == capture.TriggerExit {
				t.Errorf("a second exit trigger %q: ExecStop=/ExecStartPre= helpers are not the service", tr.Detail)
			}
		}
		if n := restarts(t, m); n < 1 {
			t.Errorf("NRestarts = %d after kill -9", n)
		}
	})

	t.Run("HTTP 503 is a health capture", func(t *testing.T) {
		m.must("dead-drop", "get", "http://127.0.0.1:8080/sick?for=1s")
		c := waitCapture(t, m, service, seen)
		if c.Triggers[0].Kind != capture.TriggerHealth || c.Triggers[0].Detail != "HTTP 503" {
			t.Errorf("first trigger = %+v, want health HTTP 503", c.Triggers[0])
		}
		if slices.ContainsFunc(c.Triggers, func(tr capture.Trigger) bool { return tr.Kind != capture.TriggerHealth }) {
			t.Errorf("triggers %s: the service did not exit", kinds(c))
		}
		if c.HealthError != "HTTP 503" {
			t.Errorf("health_error = %q, want HTTP 503", c.HealthError)
		}
		t.Logf("health: triggers %s, health_error %q, %d samples", kinds(c), c.HealthError, len(c.Samples))
	})

	t.Run("allocating past MemoryMax is an oom capture", func(t *testing.T) {
		pid := mainPID(t, m, unit)
		m.must("dead-drop", "get", "http://127.0.0.1:8080/eat?mb=256")
		c := waitCapture(t, m, service, seen)
		if !hasTrigger(c, capture.TriggerOOM) {
			t.Errorf("triggers %s, want oom", kinds(c))
		}
		i := slices.IndexFunc(c.Triggers, func(tr capture.Trigger) bool { return tr.Kind == capture.TriggerOOM })
		if i < 0 {
			t.Fatalf("triggers %s, want oom", kinds(c))
		}
		last := c.Samples[len(c.Samples)-len(c.Triggers)+i].Service // the oom trigger's own sample
		if last == nil {
			t.Fatal("no service in the oom trigger's sample")
		}
		if last.MemoryPeakBytes == nil || *last.MemoryPeakBytes < memoryMax*9/10 {
			t.Errorf("memory_peak_bytes at the oom trigger = %s, want ≥ 90%% of %d", fmtUint(last.MemoryPeakBytes), memoryMax)
		}
		if last.OOMKills == nil || *last.OOMKills < 1 {
			t.Errorf("oom_kills at the failure = %s, want >= 1", fmtUint(last.OOMKills))
		}
		if last.MemoryMaxBytes == nil || *last.MemoryMaxBytes != memoryMax {
			t.Errorf("memory_max_bytes = %s, want %d", fmtUint(last.MemoryMaxBytes), memoryMax)
		}
		if after := mainPID(t, m, unit); after != pid {
			t.Errorf("MainPID %d → %d: the OOM killer took the main process, not the eater", pid, after)
		}
		t.Logf("oom: triggers %s, oom_kills %s, memory_max_bytes %s", kinds(c), fmtUint(last.OOMKills), fmtUint(last.MemoryMaxBytes))
		// The kernel's own report of the kill, read under the hardened unit
		// from the journal (no /dev/kmsg there): the eater, by the cgroup
		// the oom-kill line names (the kernel prints the host's PIDs).
		c = withWords(t, m, service, c)
		if c.KernelLog == nil {
			t.Fatalf("kernel_log absent: %s", c.KernelLogMissing)
		}
		if !slices.ContainsFunc(c.KernelLog, func(l capture.KernelLine) bool {
			k, ok := logs.ParseOOMKill(l.Text)
			return ok && k.Memcg && k.Name == "dead-drop" && k.AnonRSSBytes > memoryMax/2
		}) {
			t.Errorf("kernel_log lacks the eater's \"Killed process\" line: %s", asJSON(c.KernelLog))
		}
		memcgs := map[string]bool{} // earlier runs of this test left their own dead-drop's kills in the kernel's log
		for _, l := range c.KernelLog {
			t.Logf("kernel_log %s: %s", l.At.Sub(c.TransitionTime).Round(time.Millisecond), l.Text)
			if _, rest, ok := strings.Cut(l.Text, ",oom_memcg="); ok {
				memcg, _, _ := strings.Cut(rest, ",")
				memcgs[memcg] = true
			}
		}
		if len(memcgs) != 1 {
			t.Errorf("kernel_log names %d cgroups, want this machine's dead-drop only: %v", len(memcgs), memcgs)
		}
	})

	t.Run("operators of the group preflight read captures", func(t *testing.T) {
		gid := lookupID(t, m.path("/etc/group"), "preflight")
		operator := []string{"setpriv", "--reuid=65534", "--regid=65534", "--groups=" + strconv.Itoa(gid), "--", "preflight"}
		out := m.must(append(operator, "list")...)
		if !strings.Contains(out, service) {
			t.Errorf("preflight list:\n%s\nwant %s", out, service)
		}
		var rows []map[string]any
		if err := json.Unmarshal([]byte(m.must(append(operator, "list", service, "--json")...)), &rows); err != nil || len(rows) != 3 {
			t.Errorf("preflight list %s --json: %d rows, %v; want 3", service, len(rows), err)
		}
		out = m.must(append(operator, "last", service)...)
		if !strings.Contains(out, "oom") {
			t.Errorf("preflight last %s:\n%s\nwant the oom capture", service, out)
		}
		t.Logf("preflight list, as nobody in group preflight:\n%s", m.must(append(operator, "list")...))

		out, err := m.run("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--", "preflight", "list")
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(err.Error(), "permission denied") {
			t.Errorf("preflight list outside the group: %q, %v; want exit 1, permission denied", out, err)
		}
	})

	t.Run("a service that logs then panics: its last lines in journal", func(t *testing.T) {
		m.run("dead-drop", "get", "http://127.0.0.1:8080/crash?say=about%20to%20crash%20with%20api_token=s3cr3t") // cut short by the crash
		c := withWords(t, m, service, waitCapture(t, m, service, seen))
		if c.Journal == nil {
			t.Fatalf("journal absent: %s", c.JournalMissing)
		}
		var texts []string
		for _, l := range c.Journal {
			texts = append(texts, l.Text)
			if l.At.After(c.TransitionTime.Add(logs.Grace)) {
				t.Errorf("journal line at %s, after the trigger's grace: %q", l.At.Sub(c.TransitionTime), l.Text)
			}
		}
		all := strings.Join(texts, "\n")
		for _, want := range []string{"about to crash with api_token=<redacted>", "panic: dead-drop: crash on request"} {
			if !strings.Contains(all, want) {
				t.Errorf("journal lacks %q:\n%s", want, all)
			}
		}
		if strings.Contains(all, "s3cr3t") || strings.LastIndex(all, "listening on") > strings.LastIndex(all, "panic:") {
			t.Errorf("journal has the secret, or the restarted run's lines:\n%s", all)
		}
		if len(c.Journal) > 20 {
			t.Errorf("%d journal lines, want at most JOURNAL_LINES (20)", len(c.Journal))
		}
		for _, l := range c.Journal {
			t.Logf("journal %s %d: %s", l.At.Sub(c.TransitionTime).Round(time.Millisecond), l.Priority, l.Text)
		}
	})

	t.Run("ten kills: each capture durable at once, with systemd's word", func(t *testing.T) {
		var lat, held []time.Duration
		for i := range repeats {
			pid := mainPID(t, m, unit)
			killed := time.Now()
			m.must("kill", "-9", strconv.Itoa(pid))
			c := waitCapture(t, m, service, seen)
			// The exit, wherever it is: a health check that connects
			// between the kernel closing the dead process's socket and
			// its pidfd waking the watcher is refused first (seen once
			// in 100 kills here).
			j := slices.IndexFunc(c.Triggers, func(tr capture.Trigger) bool { return tr.Kind == capture.TriggerExit })
			if j < 0 {
				t.Errorf("kill %d: triggers %s; want an exit", i+1, kinds(c))
				continue
			}
			w := c.Triggers[j].Systemd
			if w == nil || w.Result != "signal" || fmtInt(w.ExecMainStatus) != "9" || fmtInt(w.MainPID) != "0" {
				t.Errorf("kill %d: triggers %s, the exit's systemd %s; want signal 9", i+1, kinds(c), asJSON(w))
			}
			w8n := written(t, m, c)
			lat = append(lat, w8n.Sub(killed))
			held = append(held, w8n.Sub(c.Triggers[0].At))
		}
		slices.Sort(lat)
		slices.Sort(held)
		// The first figure includes nsenter starting kill(1) inside the
		// machine; the second is the recorder's own: from the first trigger
		// (the look that saw the cgroup empty), through systemd's word, to
		// the durable file.
		t.Logf("kill -9 → durable capture over %d kills: median %s, worst %s; exit seen → durable: median %s, worst %s",
			len(lat), lat[len(lat)/2].Round(time.Millisecond), lat[len(lat)-1].Round(time.Millisecond),
			held[len(held)/2].Round(time.Millisecond), held[len(held)-1].Round(time.Millisecond))
	})

	t.Run("ten OOM kills: each oom trigger's sample holds the kill at the limit", func(t *testing.T) {
		complete := 0
		for i := range repeats {
			m.must("dead-drop", "get", "http://127.0.0.1:8080/eat?mb=256")
			c := waitCapture(t, m, service, seen)
			j := slices.IndexFunc(c.Triggers, func(tr capture.Trigger) bool { return tr.Kind == capture.TriggerOOM })
			if j < 0 {
				t.Errorf("OOM %d: triggers %s, want oom", i+1, kinds(c))
				continue
			}
			svc := c.Samples[len(c.Samples)-len(c.Triggers)+j].Service
			if svc == nil || svc.OOMKills == nil || *svc.OOMKills < 1 || svc.MemoryPeakBytes == nil || *svc.MemoryPeakBytes < memoryMax*9/10 {
				t.Errorf("OOM %d: the oom trigger's sample %s lacks the kill or the peak", i+1, asJSON(svc))
				continue
			}
			complete++
		}
		t.Logf("OOM evidence complete in %d of %d oom triggers' samples (oom_kills ≥ 1, memory_peak_bytes ≥ 90%% of MemoryMax)", complete, repeats)
	})

	t.Run("reload, restart and stop on request write no capture", func(t *testing.T) {
		count := func() int {
			files, _ := filepath.Glob(m.path(filepath.Join(captureDir, service, "*"+capture.Ext)))
			return len(files)
		}
		n := count()
		m.must("systemctl", "reload", unit)
		pid := mainPID(t, m, unit)
		m.must("systemctl", "restart", unit)
		waitFor(t, "a new MainPID", func() error {
			if p := mainPID(t, m, unit); p == pid {
				return errors.New("same MainPID")
			}
			return nil
		})
		waitState(t, m, service, func(s *capture.State) bool { return s.State == capture.StateHealthy && s.Unit == nil })
		m.must("systemctl", "stop", unit)
		st := waitState(t, m, service, func(s *capture.State) bool { return s.Unit != nil && s.Unit.State == capture.UnitStopped })
		out := m.must("preflight", "list")
		if !strings.Contains(out, service) || !strings.Contains(out, capture.UnitStopped) {
			t.Errorf("preflight list while %s is stopped:\n%s", unit, out)
		}
		t.Logf("stopped: %+v; preflight list:\n%s", *st.Unit, out)
		time.Sleep(time.Second) // health checks fail meanwhile: not a failure
		m.must("systemctl", "start", unit)
		waitState(t, m, service, func(s *capture.State) bool { return s.State == capture.StateHealthy && s.Unit == nil })
		time.Sleep(time.Second)
		if got := count(); got != n {
			t.Errorf("%d captures after reload, restart, stop and start; want %d", got, n)
		}
		journal := m.must("journalctl", "--no-pager", "-o", "cat", "-u", recorderUnit)
		for _, want := range []string{"systemd runs a requested restart", "systemd runs a requested stop", "recording resumes with a fresh ring", "unit resolved by systemd", "requested reload done; the service stayed up"} {
			if !strings.Contains(journal, want) {
				t.Errorf("the recorder's journal lacks %q", want)
			}
		}
	})

	t.Run("a unit systemd does not have is unscoped and loud", func(t *testing.T) {
		ghostUnit := "preflight@" + ghost + ".service"
		m.must("systemctl", "start", ghostUnit)
		var st *capture.State
		waitFor(t, "the ghost's state", func() error {
			var err error
			if st, err = capture.ReadState(m.path(captureDir), ghost); err != nil {
				return err
			}
			if st.Unit == nil || st.Unit.State != capture.UnitUnscoped {
				return fmt.Errorf("state %s, unit %+v", st.State, st.Unit)
			}
			return nil
		})
		if !strings.Contains(st.Unit.Reason, ghost+".service") {
			t.Errorf("reason %q does not name %s.service", st.Unit.Reason, ghost)
		}
		out := m.must("preflight", "list")
		if !strings.Contains(out, capture.UnitUnscoped) || !strings.Contains(out, ghost+".service") {
			t.Errorf("preflight list:\n%s\nwant %s unscoped with the reason", out, ghost)
		}
		warned := false
		for _, e := range journalJSON(t, m, "-p", "warning", "-u", ghostUnit) {
			warned = warned || strings.Contains(fmt.Sprint(e["MESSAGE"]), ghost+".service")
		}
		if !warned {
			t.Errorf("no warning naming %s.service in the journal:\n%s", ghost, m.must("journalctl", "--no-pager", "-o", "cat", "-u", ghostUnit))
		}
		t.Logf("preflight list:\n%s", out)
		m.must("systemctl", "stop", ghostUnit)
	})

	t.Run("the recorder can write nowhere but its capture directory", func(t *testing.T) {
		pid := mainPID(t, m, recorderUnit)
		uid := lookupID(t, m.path("/etc/passwd"), "preflight")
		gid := lookupID(t, m.path("/etc/group"), "preflight")
		status := m.must("cat", fmt.Sprintf("/proc/%d/status", pid))
		// One capability: CAP_DAC_READ_SEARCH (bit 2), to count the
		// service's open files in /proc/PID/fd.
		for _, want := range []string{fmt.Sprintf("Uid:\t%d\t%d\t%d\t%d", uid, uid, uid, uid), "CapEff:\t0000000000000004",
			"CapBnd:\t0000000000000004", "NoNewPrivs:\t1"} {
			if !strings.Contains(status, want) {
				t.Errorf("recorder's /proc/%d/status lacks %q", pid, want)
			}
		}
		// find in the recorder's mount namespace, with its credentials:
		// -writable asks access(2), which also says EROFS.
		out, _ := m.run("nsenter", "-t", strconv.Itoa(pid), "-m", "--",
			"setpriv", "--reuid="+strconv.Itoa(uid), "--regid="+strconv.Itoa(gid), "--clear-groups", "--",
			"find", "/", "-path", "/proc", "-prune", "-o", "(", "-type", "d", "-o", "-type", "f", ")", "-writable", "-print")
		writable := strings.Fields(out)
		if !slices.Contains(writable, captureDir+"/"+service) {
			t.Errorf("writable paths %v lack %s/%s", writable, captureDir, service)
		}
		for _, p := range writable {
			if p != captureDir && !strings.HasPrefix(p, captureDir+"/") {
				t.Errorf("the recorder's user can write %s", p)
			}
		}
		t.Logf("writable by the recorder: %v", writable)
	})
	t.Run("the journal lists every capture and the failures", func(t *testing.T) {
		id := captureWrittenID(t)
		var written []map[string]any
		waitFor(t, "an entry of every capture in the journal", func() error {
			written = journalJSON(t, m, "MESSAGE_ID="+id)
			if len(written) < len(seen) {
				return fmt.Errorf("%d entries, want %d", len(written), len(seen))
			}
			return nil
		})
		paths := map[string]bool{}
		for _, e := range written {
			paths[fmt.Sprint(e["PREFLIGHT_CAPTURE"])] = true
			if e["PREFLIGHT_SERVICE"] != service || e["_SYSTEMD_UNIT"] != recorderUnit || e["PRIORITY"] != "6" ||
				!strings.HasPrefix(fmt.Sprint(e["MESSAGE"]), "capture written") {
				t.Errorf("journalctl MESSAGE_ID=%s: entry %v", id, e)
			}
		}
		for name := range seen {
			if p := captureDir + "/" + service + "/" + name; !paths[p] {
				t.Errorf("journalctl MESSAGE_ID=%s -o json: no PREFLIGHT_CAPTURE=%s among %v", id, p, paths)
			}
		}
		t.Logf("journalctl MESSAGE_ID=%s: %d captures: %v", id, len(written), paths)

		// -p warning: the failures, and nothing else but the warning of a
		// health check that never succeeded (while dead-drop starts).
		triggers := map[string]bool{}
		for _, e := range journalJSON(t, m, "-p", "warning", "-u", recorderUnit) {
			msg := fmt.Sprint(e["MESSAGE"])
			if strings.HasPrefix(msg, "health check has never succeeded") && e["PRIORITY"] == "4" {
				continue
			}
			if !strings.HasPrefix(msg, "service failed") || e["PRIORITY"] != "4" {
				t.Errorf("journalctl -p warning -u %s: PRIORITY=%v %s", recorderUnit, e["PRIORITY"], msg)
				continue
			}
			triggers[fmt.Sprint(e["PREFLIGHT_TRIGGER"])] = true
		}
		for _, k := range []string{capture.TriggerExit, capture.TriggerHealth, capture.TriggerOOM} {
			if !triggers[k] {
				t.Errorf("journalctl -p warning -u %s: no service failed with PREFLIGHT_TRIGGER=%s (%v)", recorderUnit, k, triggers)
			}
		}

		// journalctl -x explains a capture with the catalog the postinst compiled.
		out := m.must("journalctl", "--no-pager", "-x", "-n", "1", "MESSAGE_ID="+id)
		if !strings.Contains(out, "preflight last "+service) || !strings.Contains(out, captureDir+"/"+service+"/") {
			t.Errorf("journalctl -x MESSAGE_ID=%s lacks the catalog's text:\n%s", id, out)
		}
		t.Logf("journalctl -x -n 1 MESSAGE_ID=%s:\n%s", id, out)
	})
	t.Logf("TestSystemd ran %s", time.Since(start).Round(time.Millisecond))
}

// journalJSON runs journalctl -o json with args in the machine and returns
// its entries.
func journalJSON(t *testing.T, m *machine, args ...string) []map[string]any {
	t.Helper()
	out := m.must(append([]string{"journalctl", "--no-pager", "-o", "json"}, args...)...)
	var entries []map[string]any
	for line := range strings.Lines(out) {
		var e map[string]any
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("journalctl -o json %v: %v: %q", args, err, line)
		}
		entries = append(entries, e)
	}
	return entries
}

// captureWrittenID is preflight's MESSAGE_ID for "capture written", read
// from its one definition, and checked against the catalog's.
func captureWrittenID(t *testing.T) string {
	t.Helper()
	src, err := os.ReadFile(filepath.Join(repoRoot(t), "cmd/preflight/journal.go"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`const CaptureWrittenID = "([0-9a-f]{32})"`).FindSubmatch(src)
	if m == nil {
		t.Fatal("cmd/preflight/journal.go: no CaptureWrittenID")
	}
	return string(m[1])
}

// binaries are the freshly built programs.
type binaries struct{ preflight, deadDrop string }

var (
	buildOnce sync.Once
	built     binaries
	buildErr  error
	buildDir  string
)

// build builds preflight and deaddrop once per test binary.
func build(t *testing.T) binaries {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "preflight-e2e-bin-")
		if buildErr != nil {
			return
		}
		built = binaries{filepath.Join(buildDir, "preflight"), filepath.Join(buildDir, "dead-drop")}
		for _, b := range []struct{ out, pkg string }{{built.preflight, "./cmd/preflight"}, {built.deadDrop, "./packaging/e2e/deaddrop"}} {
			cmd := exec.Command("go", "build", "-ldflags", "-X main.Version=e2e", "-o", b.out, b.pkg)
			cmd.Dir = repoRoot(t)
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
			if out, err := cmd.CombinedOutput(); err != nil {
				buildErr = fmt.Errorf("go build %s: %v\n%s", b.pkg, err, out)
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return built
}

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// repoRoot is the repository's root: the test runs in packaging/e2e.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err == nil {
		_, err = os.Stat(filepath.Join(root, "go.mod"))
	}
	if err != nil {
		t.Fatalf("failed to find the repository root: %v", err)
	}
	return root
}

// makeInstall runs `make install` of bin into stage, as the .deb lays it out.
func makeInstall(t *testing.T, stage, bin string) {
	t.Helper()
	cmd := exec.Command("make", "-s", "install", "DESTDIR="+stage, "PREFIX=/usr", "BIN="+bin)
	cmd.Dir = repoRoot(t)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make install: %v\n%s", err, out)
	}
}

// stageTest adds the test's own files to the stage: dead-drop, the
// recorder's env file, the postinst, e2e.target, and masks of every service
// the host enables (the overlay shares the host's /etc).
func stageTest(t *testing.T, stage, deadDrop string) {
	t.Helper()
	bin, err := os.ReadFile(deadDrop)
	if err != nil {
		t.Fatal(err)
	}
	postinst, err := os.ReadFile(filepath.Join(repoRoot(t), "packaging/deb/postinst"))
	if err != nil {
		t.Fatal(err)
	}
	files := []struct {
		path string
		mode os.FileMode
		data []byte
	}{
		{"usr/local/bin/dead-drop", 0o755, bin},
		{"usr/local/share/preflight-e2e/postinst", 0o755, postinst},
		{"etc/systemd/system/" + unit, 0o644, []byte(deadDropUnit)},
		{"etc/systemd/system/e2e.target", 0o644, []byte(e2eTarget)},
		{"etc/preflight/" + service + ".env", 0o644, []byte(recorderEnv)},
		{"etc/preflight/" + ghost + ".env", 0o644, []byte("PREFLIGHT_HEALTH_URL=" + healthURL + "\nPREFLIGHT_INTERVAL_SECONDS=0.2\n")},
	}
	for _, f := range files {
		p := filepath.Join(stage, f.path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, f.data, f.mode); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("/etc/systemd/system/"+unit, filepath.Join(stage, "etc/systemd/system", alias)); err != nil {
		t.Fatal(err)
	}
	for _, name := range hostServices(t) {
		if err := os.Symlink("/dev/null", filepath.Join(stage, "etc/systemd/system", name)); err != nil && !errors.Is(err, os.ErrExist) {
			t.Fatal(err)
		}
	}
}

// hostServices are the units the host enables (its /etc/systemd/system/
// *.wants and SysV rc links without a native unit): masked in the overlay,
// so that booting starts none of the host's daemons.
func hostServices(t *testing.T) []string {
	var names []string
	wants, _ := filepath.Glob("/etc/systemd/system/*.wants/*")
	for _, w := range wants {
		switch filepath.Ext(w) {
		case ".service", ".timer", ".socket", ".path":
			names = append(names, filepath.Base(w))
		}
	}
	rc, _ := filepath.Glob("/etc/rc[2-5].d/S*")
	for _, l := range rc {
		name := strings.TrimLeft(strings.TrimPrefix(filepath.Base(l), "S"), "0123456789") + ".service"
		if _, err := os.Stat(filepath.Join("/lib/systemd/system", name)); err == nil {
			continue // a native unit: started only if enabled, above
		}
		names = append(names, name)
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// waitFor polls f until it succeeds or waitTimeout passes.
func waitFor(t *testing.T, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s: %v", what, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitState waits until the state file of service's recorder satisfies ok.
func waitState(t *testing.T, m *machine, service string, ok func(*capture.State) bool) *capture.State {
	t.Helper()
	var st *capture.State
	waitFor(t, "the recorder's state", func() error {
		var err error
		if st, err = capture.ReadState(m.path(captureDir), service); err != nil {
			return err
		}
		if !ok(st) {
			return fmt.Errorf("state %s, open incident %q", st.State, st.OpenIncident)
		}
		return nil
	})
	return st
}

// waitCapture waits for a capture not in seen, then for its incident to
// end (a healthy check), and returns it as it stands then.
func waitCapture(t *testing.T, m *machine, service string, seen map[string]bool) *capture.Capture {
	t.Helper()
	var name string
	waitFor(t, "a new capture", func() error {
		entries, err := os.ReadDir(m.path(filepath.Join(captureDir, service)))
		if err != nil {
			return err
		}
		for _, e := range entries {
			if strings.HasSuffix(e.Name(), capture.Ext) && !seen[e.Name()] {
				name = e.Name()
				return nil
			}
		}
		return errors.New("none yet")
	})
	seen[name] = true
	path := m.path(filepath.Join(captureDir, service, name))
	var c *capture.Capture
	waitFor(t, "the incident to end", func() error {
		var err error
		if c, _, err = capture.Read(path); err != nil {
			return err
		}
		st, err := capture.ReadState(m.path(captureDir), service)
		if err != nil {
			return err
		}
		// A state written after a healthy check that started after the
		// incident's latest trigger: the incident is over.
		last := c.Triggers[len(c.Triggers)-1].At
		if st.OpenIncident != "" || st.LastCheck == nil || !st.LastCheck.OK || !st.LastCheck.At.After(last) {
			return fmt.Errorf("state %s, open incident %q", st.State, st.OpenIncident)
		}
		return nil
	})
	c, _, err := capture.Read(path)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// withWords waits until c's file holds the logs read after it was first
// written (kernel_log, journal, or why not), and returns it.
func withWords(t *testing.T, m *machine, service string, c *capture.Capture) *capture.Capture {
	t.Helper()
	dir := m.path(filepath.Join(captureDir, service))
	path := filepath.Join(dir, capture.FileName(c.TransitionTime)) // unless named after a newer one (NextName)
	if files, _ := filepath.Glob(filepath.Join(dir, "*"+capture.Ext)); !slices.Contains(files, path) {
		for _, f := range files {
			if o, _, err := capture.Read(f); err == nil && o.TransitionTime.Equal(c.TransitionTime) {
				path = f
			}
		}
	}
	waitFor(t, "the capture rewritten with the logs", func() error {
		var err error
		if c, _, err = capture.Read(path); err != nil {
			return err
		}
		if c.Journal == nil && c.JournalMissing == "" {
			return errors.New("not yet")
		}
		return nil
	})
	return c
}

// before returns the samples taken before the incident's first trigger.
func before(c *capture.Capture) []capture.Sample {
	var pre []capture.Sample
	for _, s := range c.Samples {
		if s.At.Before(c.TransitionTime) {
			pre = append(pre, s)
		}
	}
	return pre
}

func hasProcess(svc *capture.Service, pid int, name string) bool {
	return svc != nil && slices.ContainsFunc(svc.Processes, func(p capture.Process) bool { return p.PID == pid && p.Name == name })
}

// seesHost checks that the recorder saw the host's processes, not only its
// own user's: PID 1 (root's systemd) in a top list.
func seesHost(t *testing.T, c *capture.Capture) {
	t.Helper()
	for _, s := range c.Samples {
		for _, p := range append(slices.Clone(s.TopCPU), s.TopMemory...) {
			if p.PID == 1 && p.Name == "systemd" {
				return
			}
		}
	}
	t.Errorf("no sample lists PID 1 (systemd) among its top processes: the recorder does not see the host's processes")
}

func mainPID(t *testing.T, m *machine, u string) int {
	t.Helper()
	n, err := strconv.Atoi(strings.TrimSpace(m.must("systemctl", "show", "-p", "MainPID", "--value", u)))
	if err != nil || n == 0 {
		t.Fatalf("%s has no MainPID (%v)", u, err)
	}
	return n
}

func restarts(t *testing.T, m *machine) int {
	t.Helper()
	n, err := strconv.Atoi(strings.TrimSpace(m.must("systemctl", "show", "-p", "NRestarts", "--value", unit)))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// lookupID finds name's ID (the third field) in an /etc/passwd or
// /etc/group file.
func lookupID(t *testing.T, file, name string) int {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		f := strings.Split(line, ":")
		if len(f) > 2 && f[0] == name {
			id, err := strconv.Atoi(f[2])
			if err != nil {
				t.Fatal(err)
			}
			return id
		}
	}
	t.Fatalf("%s has no %s", file, name)
	return 0
}

func hasTrigger(c *capture.Capture, kind string) bool {
	return slices.ContainsFunc(c.Triggers, func(tr capture.Trigger) bool { return tr.Kind == kind })
}

func kinds(c *capture.Capture) string {
	var k []string
	for _, tr := range c.Triggers {
		k = append(k, tr.Kind)
	}
	return "[" + strings.Join(k, " ") + "]"
}

func fmtInt(p *int) string {
	if p == nil {
		return "null"
	}
	return strconv.Itoa(*p)
}

func fmtUint(p *uint64) string {
	if p == nil {
		return "null"
	}
	return strconv.FormatUint(*p, 10)
}

func asJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// written returns when the recorder logged c's file as written (the rename
// and the directory's fsync are done by then), from the journal's own
// timestamp.
func written(t *testing.T, m *machine, c *capture.Capture) time.Time {
	t.Helper()
	name := capture.FileName(c.TransitionTime)
	for _, e := range journalJSON(t, m, "-u", recorderUnit) {
		if !strings.HasPrefix(fmt.Sprint(e["MESSAGE"]), "capture written") || !strings.HasSuffix(fmt.Sprint(e["PREFLIGHT_CAPTURE"]), "/"+name) {
			continue
		}
		us, err := strconv.ParseInt(fmt.Sprint(e["__REALTIME_TIMESTAMP"]), 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		return time.UnixMicro(us)
	}
	t.Fatalf("no \"capture written\" of %s in the journal", name)
	return time.Time{}
}
