// Command guest runs the scenarios of `make e2e-v2` inside the qemu guest
// (package e2ev2 builds it, bakes it into the image as e2e-v2-guest and
// runs it at boot). It installs the package, starts dead-drop.service and
// preflight@dead-drop.service, breaks dead-drop in every scenario's way,
// waits for the recorder to settle, and leaves what it did and every
// capture written under e2ev2.ResultsDir. It asserts nothing: the host
// test judges the results. Every wait is bounded; the guest is 5–20×
// slower than a host, so the bounds are generous and nothing here is a
// timing assertion.
package main

import (
	"bytes"
	"context"
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
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/preflight-rec/preflight/atomicfile"
	"github.com/preflight-rec/preflight/packaging/e2ev2"
	"github.com/preflight-rec/preflight/recorder/capture"
)

// Bounds of the waits, in guest time.
const (
	commandTimeout = 60 * time.Second
	startTimeout   = 120 * time.Second // a unit to answer, the recorder to be healthy
	captureTimeout = 120 * time.Second // a failure's capture to appear
	settleTimeout  = 180 * time.Second // the incident to end and the service to be back
	// quiet is how long the service must have been healthy, with no
	// incident open, before a run counts as settled and before the next
	// act: stragglers of an incident (a later exit) show in it.
	quiet = 3 * time.Second
	// observe is how long a run that must write no capture (a restart)
	// watches for one once the service is back: 20 recorder intervals.
	observe = 10 * time.Second
	// poll is how often the capture directory is listed while waiting
	// for a capture: the resolution of Run.CaptureLatencyMS.
	poll = 5 * time.Millisecond
	// maxAttempts bounds the runs of one repeat when systemd did not act
	// as the scenario needs (void).
	maxAttempts = 3
	// lastWordsTimeout bounds the wait for a run's captures to be final:
	// the recorder rewrites a capture with the kernel's and the journal's
	// last words (and an oom on the kernel's word) about a second after
	// the trigger, in guest time several.
	lastWordsTimeout = 60 * time.Second
	// stable is how long a capture must be unchanged, its last words in,
	// before it is taken as final; restable where the recorder reads the
	// kernel's lines again (an exit at the memory limit with no oom
	// trigger yet: up to 3 more readings, a second apart, each a rewrite
	// whether or not it finds the kill), longer than the gap between two
	// of those rewrites in guest time.
	stable   = time.Second
	restable = 5 * time.Second
)

func main() {
	start := time.Now()
	res := &e2ev2.Results{Started: start.UTC(), Repeat: 3}
	err := run(res)
	if err != nil {
		res.Error = err.Error()
		say("error: %v", err)
	}
	res.Ended = time.Now().UTC()
	if werr := writeResults(res); werr != nil {
		say("error: %v", werr)
		err = werr
	}
	journal()
	syscall.Sync()
	say("done in %s", time.Since(start).Round(time.Second))
	if err != nil {
		os.Exit(1)
	}
}

// say prints one line on the console (the host shows it) and the journal.
func say(format string, args ...any) {
	fmt.Printf("e2e-v2: "+format+"\n", args...)
}

func run(res *e2ev2.Results) error {
	if b, err := os.ReadFile("/proc/uptime"); err == nil {
		f := strings.Fields(string(b))
		if len(f) > 0 {
			res.UptimeAtStart, _ = strconv.ParseFloat(f[0], 64)
		}
	}
	if err := os.MkdirAll(filepath.Join(e2ev2.ResultsDir, e2ev2.CapturesDir), 0o755); err != nil {
		return err
	}
	cmdline, err := os.ReadFile("/proc/cmdline")
	if err != nil {
		return err
	}
	for _, w := range strings.Fields(string(cmdline)) {
		if v, ok := strings.CutPrefix(w, e2ev2.CmdlineRepeat+"="); ok {
			if res.Repeat, err = strconv.Atoi(v); err != nil || res.Repeat < 1 {
				return fmt.Errorf("%s=%q: want a count ≥ 1", e2ev2.CmdlineRepeat, v)
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		res.Kernel = strings.TrimSpace(string(b))
	}
	if out, err := sh("systemctl", "--version"); err == nil {
		res.Systemd, _, _ = strings.Cut(out, "\n")
	}
	res.Cgroup = cgroupLayout()
	say("booted in %.0f s; kernel %s, %s; /sys/fs/cgroup is %s (%s); repeat %d",
		res.UptimeAtStart, res.Kernel, res.Systemd, res.Cgroup.FSType, strings.TrimSpace(res.Cgroup.Controllers), res.Repeat)
	if !res.Cgroup.Pure() {
		return fmt.Errorf("not pure cgroup v2: %+v", res.Cgroup)
	}

	t0 := time.Now()
	if _, err := sh("dpkg", "-i", filepath.Join(e2ev2.Dir, e2ev2.DebFile)); err != nil {
		return err
	}
	res.InstallSeconds = time.Since(t0).Seconds()
	say("installed the package in %.1f s", res.InstallSeconds)

	t0 = time.Now()
	if _, err := sh("systemctl", "start", e2ev2.Unit); err != nil {
		return err
	}
	if err := waitFor(startTimeout, "dead-drop to answer", func() error { return get(e2ev2.HealthURL) }); err != nil {
		return err
	}
	t1 := time.Now()
	// Type=notify: this returns once the first sample is in the ring.
	if _, err := sh("systemctl", "start", e2ev2.RecorderUnit); err != nil {
		return err
	}
	t2 := time.Now()
	if err := settle(quiet); err != nil {
		return err
	}
	say("dead-drop answered after %.1f s, its recorder started in %.1f s and settled in %.1f s",
		t1.Sub(t0).Seconds(), t2.Sub(t1).Seconds(), time.Since(t2).Seconds())

	type scenario struct {
		name    string
		times   int
		capture bool // the act is a failure: it must write a capture
		act     func(r *e2ev2.Run) error
	}
	// eat makes the main process (self) or a child it starts allocate
	// past MemoryMax; the child's PID is the run's Eater.
	eat := func(self bool) func(*e2ev2.Run) error {
		url := "http://" + e2ev2.Addr + "/eat?mb=256"
		if self {
			url += "&self=1"
		}
		return func(r *e2ev2.Run) error {
			out, err := sh(filepath.Join("/usr/local/bin", e2ev2.Service), "get", url)
			if err != nil || self {
				return err
			}
			// "200 eater PID"
			if f := strings.Fields(out); len(f) == 3 && f[1] == "eater" {
				r.Eater, err = strconv.Atoi(f[2])
			} else {
				err = fmt.Errorf("/eat answered %q, want \"200 eater PID\"", out)
			}
			return err
		}
	}
	scenarios := []scenario{
		{e2ev2.Kill, res.Repeat, true, func(r *e2ev2.Run) error {
			if r.Before.MainPID <= 1 {
				return fmt.Errorf("dead-drop has no MainPID (%d)", r.Before.MainPID)
			}
			return syscall.Kill(r.Before.MainPID, syscall.SIGKILL)
		}},
		{e2ev2.Health, 1, true, func(*e2ev2.Run) error { return get("http://" + e2ev2.Addr + "/sick?for=2s") }},
		{e2ev2.Restart, 1, false, func(*e2ev2.Run) error { _, err := sh("systemctl", "restart", e2ev2.Unit); return err }},
		{e2ev2.OOMChildStop, res.Repeat, true, eat(false)},
		{e2ev2.OOMMainStop, res.Repeat, true, eat(true)},
		{e2ev2.OOMChildContinue, res.Repeat, true, eat(false)},
		{e2ev2.OOMMainContinue, res.Repeat, true, eat(true)},
	}
	for _, sc := range scenarios {
		if sc.name == e2ev2.OOMChildContinue {
			if err := oomContinue(); err != nil {
				return err
			}
		}
		for i := 1; i <= sc.times; i++ {
			for attempt := 1; ; attempt++ {
				r := do(sc.name, i, sc.capture, sc.act)
				r.Attempt = attempt
				r.Void = void(r)
				res.Runs = append(res.Runs, r)
				if err := writeResults(res); err != nil {
					return err
				}
				if r.Error != "" {
					// The next run starts from a known state, or not at all.
					if err := settle(quiet); err != nil {
						return fmt.Errorf("after %s #%d: %w", sc.name, i, err)
					}
				}
				if r.Void == "" || attempt == maxAttempts {
					break
				}
				say("%s #%d attempt %d is void (%s): once more", sc.name, i, attempt, r.Void)
			}
		}
	}
	return nil
}

// do runs one scenario once: the act, then the wait for its capture (or
// for the quiet that shows there is none), and what systemd and the kernel
// said about it.
func do(name string, repeat int, wantCapture bool, act func(*e2ev2.Run) error) e2ev2.Run {
	r := e2ev2.Run{Scenario: name, Repeat: repeat, SystemdResults: []string{}, OOMVictims: []e2ev2.Victim{}, Captures: []string{}}
	r.Before, r.OOMPolicy = unitState()
	r.Procs = procs()
	known := captures()
	begin := time.Now()
	r.At = begin.UTC()
	err := act(&r)
	if err == nil && wantCapture {
		var seen time.Time
		if seen, err = waitCapture(known); err == nil {
			ms := float64(seen.Sub(begin).Microseconds()) / 1000
			r.CaptureLatencyMS = &ms
		}
	}
	if err == nil {
		// No capture expected: watch long enough for the recorder to
		// have seen the act many times over.
		quietFor := quiet
		if !wantCapture {
			quietFor = observe
		}
		err = settle(quietFor)
	}
	var written []string
	for _, name := range captures() {
		if !slices.Contains(known, name) {
			written = append(written, name)
		}
	}
	if err == nil {
		err = final(written)
	}
	if err != nil {
		r.Error = err.Error()
	}
	r.After, _ = unitState()
	for _, name := range written {
		dst := fmt.Sprintf("%s-%d-%s", r.Scenario, r.Repeat, name)
		if err := copyCapture(name, dst); err != nil {
			r.Error = strings.TrimSpace(r.Error + "; " + err.Error())
		}
		r.Captures = append(r.Captures, dst)
	}
	r.SystemdResults, r.OOMVictims = journalSince(begin)
	r.Seconds = time.Since(begin).Seconds()
	latency := "-"
	if r.CaptureLatencyMS != nil {
		latency = fmt.Sprintf("%.0f ms", *r.CaptureLatencyMS)
	}
	say("%s #%d: %d capture(s), first after %s; systemd %v; OOM victims %v; %.1f s %s",
		r.Scenario, r.Repeat, len(r.Captures), latency, r.SystemdResults, r.OOMVictims, r.Seconds, r.Error)
	return r
}

// void says why a run did not test what its scenario names, or "".
//
// Under OOMPolicy=stop the scenario is systemd stopping the unit for the
// OOM kill (Result=oom-kill); systemd 252 now and then lets a child's kill
// pass unnoticed (no result logged, the unit keeps running), and then
// there is no oom-kill for a capture to report.
//
// In a child's scenario the eater is the OOM killer's first victim (its
// oom_score_adj is 1000), but the kernel now and then kills again, the
// main process, before the eater's memory is freed (a second OOM: the
// eater, already a victim, is passed over; seen once in 141 runs): then
// the main process died of an OOM kill too, and the run is not a child's.
func void(r e2ev2.Run) string {
	if r.Error != "" || len(r.OOMVictims) == 0 {
		return ""
	}
	if r.Eater != 0 && r.OOMVictims[0].PID == r.Eater && len(r.OOMVictims) > 1 {
		return fmt.Sprintf("the kernel killed more than the eater %d: %v", r.Eater, r.OOMVictims)
	}
	if strings.HasSuffix(r.Scenario, "-stop") && !slices.Contains(r.SystemdResults, "oom-kill") {
		return fmt.Sprintf("systemd did not act on the OOM kill: it logged results %v, NRestarts %d → %d", r.SystemdResults, r.Before.NRestarts, r.After.NRestarts)
	}
	return ""
}

// final waits until every capture named is final: the recorder has
// rewritten it with the last words (kernel_log or the reason it is
// missing), which it reads a grace after the trigger and which may add an
// oom trigger on the kernel's word, and the file has not changed for
// stable since. The host judges the captures as they are then.
func final(names []string) error {
	if len(names) == 0 {
		return nil
	}
	changed := map[string]time.Time{}
	return waitFor(lastWordsTimeout, "the captures' last words", func() error {
		for _, name := range names {
			p := filepath.Join(e2ev2.CaptureDir, e2ev2.Service, name)
			fi, err := os.Stat(p)
			if err != nil {
				return err
			}
			c, _, err := capture.Read(p)
			if err != nil {
				return err
			}
			if c.KernelLog == nil && c.KernelLogMissing == "" {
				return fmt.Errorf("%s has no last words yet", name)
			}
			if mt := fi.ModTime(); !mt.Equal(changed[name]) {
				changed[name] = mt
				return fmt.Errorf("%s changed at %s", name, mt.Format(time.RFC3339Nano))
			}
			if time.Since(fi.ModTime()) < stableFor(c) {
				return fmt.Errorf("%s changed %s ago", name, time.Since(fi.ModTime()).Round(time.Millisecond))
			}
		}
		return nil
	})
}

// stableFor is how long c must be unchanged to be final: restable while
// the recorder may still be reading the kernel's lines again for an OOM
// kill (recorder/kernelword.go wantKernelAgain), else stable.
func stableFor(c *capture.Capture) time.Duration {
	k := len(c.Samples) - len(c.Triggers)
	for i, tr := range c.Triggers {
		if tr.Kind == capture.TriggerOOM {
			return stable
		}
		if tr.Kind != capture.TriggerExit || k+i < 0 || k+i >= len(c.Samples) {
			continue
		}
		svc := c.Samples[k+i].Service
		if svc != nil && svc.MemoryBytes != nil && svc.MemoryMaxBytes != nil && *svc.MemoryMaxBytes > 0 &&
			*svc.MemoryBytes >= *svc.MemoryMaxBytes-*svc.MemoryMaxBytes/10 {
			return restable
		}
	}
	return stable
}

// procs are the processes in dead-drop's cgroup.
func procs() []int {
	b, _ := os.ReadFile(filepath.Join("/sys/fs/cgroup/system.slice", e2ev2.Unit, "cgroup.procs"))
	pids := []int{}
	for _, f := range strings.Fields(string(b)) {
		if pid, err := strconv.Atoi(f); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

// settle waits until dead-drop is active and answers, and its recorder is
// healthy with no incident open and a healthy check after the latest
// trigger of the newest capture, all of it without a break for quietFor:
// an incident's stragglers (a later trigger, a second capture) show in it.
func settle(quietFor time.Duration) error {
	var since time.Time
	return waitFor(settleTimeout, "the service and its recorder to settle", func() error {
		if err := settled(); err != nil {
			since = time.Time{}
			return err
		}
		if since.IsZero() {
			since = time.Now()
		}
		if time.Since(since) < quietFor {
			return errors.New("settled, waiting for quiet")
		}
		return nil
	})
}

// settled is one look at what settle waits for. The recorder rewrites its
// state file when the state changes (and every 30 s), not at every check.
func settled() error {
	u, _ := unitState()
	if u.ActiveState != "active" || u.MainPID == 0 {
		return fmt.Errorf("dead-drop is %s/%s", u.ActiveState, u.SubState)
	}
	if err := get(e2ev2.HealthURL); err != nil {
		return err
	}
	st, err := capture.ReadState(e2ev2.CaptureDir, e2ev2.Service)
	if err != nil {
		return err
	}
	if st.State != capture.StateHealthy || st.OpenIncident != "" || st.LastCheck == nil || !st.LastCheck.OK {
		return fmt.Errorf("recorder state %s, open incident %q", st.State, st.OpenIncident)
	}
	if names := captures(); len(names) > 0 {
		c, _, err := capture.Read(filepath.Join(e2ev2.CaptureDir, e2ev2.Service, names[len(names)-1]))
		if err != nil {
			return err
		}
		if last := c.Triggers[len(c.Triggers)-1].At; !st.LastCheck.At.After(last) {
			return fmt.Errorf("no healthy check since the trigger at %s", last)
		}
	}
	return nil
}

// waitCapture waits for a capture not in known and returns when it was
// seen.
func waitCapture(known []string) (time.Time, error) {
	deadline := time.Now().Add(captureTimeout)
	for {
		for _, name := range captures() {
			if !slices.Contains(known, name) {
				return time.Now(), nil
			}
		}
		if time.Now().After(deadline) {
			return time.Time{}, fmt.Errorf("no capture in %s", captureTimeout)
		}
		time.Sleep(poll)
	}
}

// captures lists the capture files of dead-drop, oldest first.
func captures() []string {
	entries, _ := os.ReadDir(filepath.Join(e2ev2.CaptureDir, e2ev2.Service))
	var names []string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), capture.Ext) && e.Type().IsRegular() {
			names = append(names, e.Name())
		}
	}
	return names // ReadDir sorts by name: chronological
}

// oomContinue switches dead-drop to OOMPolicy=continue.
func oomContinue() error {
	dir := "/etc/systemd/system/" + e2ev2.Unit + ".d"
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "oom-continue.conf"), []byte(e2ev2.ContinueDropIn), 0o644); err != nil {
		return err
	}
	if _, err := sh("systemctl", "daemon-reload"); err != nil {
		return err
	}
	if _, policy := unitState(); policy != "continue" {
		return fmt.Errorf("OOMPolicy is %q after daemon-reload, want continue", policy)
	}
	return settle(quiet)
}

// unitState is systemd's view of dead-drop, and its OOMPolicy.
func unitState() (e2ev2.UnitState, string) {
	out, _ := sh("systemctl", "show", "-p", "ActiveState,SubState,Result,MainPID,NRestarts,OOMPolicy", e2ev2.Unit)
	p := map[string]string{}
	for line := range strings.Lines(out) {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), "="); ok {
			p[k] = v
		}
	}
	u := e2ev2.UnitState{ActiveState: p["ActiveState"], SubState: p["SubState"], Result: p["Result"]}
	u.MainPID, _ = strconv.Atoi(p["MainPID"])
	u.NRestarts, _ = strconv.Atoi(p["NRestarts"])
	return u, p["OOMPolicy"]
}

var (
	failedWith = regexp.MustCompile(`Failed with result '([^']+)'`)
	killed     = regexp.MustCompile(`Killed process (\d+) \(([^)]*)\)`)
	oomLine    = regexp.MustCompile(`invoked oom-killer|Killed process`)
)

// journalSince returns systemd's results for dead-drop and the kernel's
// OOM victims logged since t.
func journalSince(t time.Time) ([]string, []e2ev2.Victim) {
	since := fmt.Sprintf("@%.6f", float64(t.UnixMicro())/1e6)
	results := []string{}
	victims := []e2ev2.Victim{}
	// The journal may lag a moment behind.
	time.Sleep(200 * time.Millisecond)
	out, _ := sh("journalctl", "--no-pager", "-o", "cat", "--since", since, "-u", e2ev2.Unit)
	for _, m := range failedWith.FindAllStringSubmatch(out, -1) {
		results = append(results, m[1])
	}
	out, _ = sh("journalctl", "--no-pager", "-o", "cat", "-k", "--since", since)
	for _, m := range killed.FindAllStringSubmatch(out, -1) {
		pid, _ := strconv.Atoi(m[1])
		victims = append(victims, e2ev2.Victim{PID: pid, Name: m[2]})
	}
	return results, victims
}

// journal leaves the journal of dead-drop, its recorder, this program and
// the kernel's OOM kills in the results, in one timeline.
func journal() {
	args := []string{"--no-pager", "-o", "short-iso-precise"}
	for _, u := range []string{e2ev2.Unit, e2ev2.RecorderUnit, e2ev2.GuestUnit} {
		args = append(args, "_SYSTEMD_UNIT="+u, "+", "UNIT="+u, "+")
	}
	out, _ := sh(append(append([]string{"journalctl"}, args...), "_TRANSPORT=kernel")...)
	var b strings.Builder
	for line := range strings.Lines(out) {
		if !strings.Contains(line, " kernel: ") || oomLine.MatchString(line) {
			b.WriteString(line)
		}
	}
	os.WriteFile(filepath.Join(e2ev2.ResultsDir, e2ev2.JournalFile), []byte(b.String()), 0o644)
}

func cgroupLayout() e2ev2.CgroupLayout {
	var l e2ev2.CgroupLayout
	var st unix.Statfs_t
	if err := unix.Statfs("/sys/fs/cgroup", &st); err == nil {
		switch st.Type {
		case unix.CGROUP2_SUPER_MAGIC:
			l.FSType = "cgroup2"
		case unix.TMPFS_MAGIC: // a hybrid or v1 layout
			l.FSType = "tmpfs"
		default:
			l.FSType = fmt.Sprintf("0x%x", st.Type)
		}
	}
	b, _ := os.ReadFile("/sys/fs/cgroup/cgroup.controllers")
	l.Controllers = strings.TrimSpace(string(b))
	_, err := os.Stat("/sys/fs/cgroup/unified")
	l.Unified = err == nil
	_, err = os.Stat("/sys/fs/cgroup/memory")
	l.MemoryV1 = err == nil
	return l
}

// get GETs url; a status outside 2xx is an error.
func get(url string) error {
	_, err := sh(filepath.Join("/usr/local/bin", e2ev2.Service), "get", url)
	return err
}

// sh runs a command and returns its stdout; the error carries stderr.
func sh(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Env = append(os.Environ(), "SYSTEMD_PAGER=", "SYSTEMD_COLORS=0", "LANG=C.UTF-8", "DEBIAN_FRONTEND=noninteractive")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(stderr.Bytes()))
	}
	return stdout.String(), nil
}

// waitFor polls f every 200 ms (each look costs the slow guest a few
// processes) until it succeeds or timeout passes.
func waitFor(timeout time.Duration, what string, f func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s waiting for %s: %w", timeout, what, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// writeResults rewrites results.json, durably.
func writeResults(res *e2ev2.Results) error {
	data, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	return writeFile(e2ev2.ResultsDir, e2ev2.ResultsFile, data)
}

// writeFile writes dir/name atomically and durably (atomicfile, in an
// os.Root of dir).
func writeFile(dir, name string, data []byte) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	return atomicfile.WriteFile(root, name, data, 0o644)
}

// copyCapture copies capture file name to the results as dst.
func copyCapture(name, dst string) error {
	data, err := os.ReadFile(filepath.Join(e2ev2.CaptureDir, e2ev2.Service, name))
	if err != nil {
		return err
	}
	return writeFile(filepath.Join(e2ev2.ResultsDir, e2ev2.CapturesDir), dst, data)
}
