package e2ev2

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/preflight-rec/preflight/recorder/capture"
)

// minPeak is the least memory.peak an OOM's trigger sample must show: 90 %
// of MemoryMax.
const minPeak = MemoryMax * 9 / 10

// TestPureV2 boots the guest, runs the scenarios there and judges them;
// see the package doc.
func TestPureV2(t *testing.T) {
	deb := requireGuest(t)
	start := time.Now()
	repeat := 3
	if v := os.Getenv("PREFLIGHT_E2E_V2_REPEAT"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("PREFLIGHT_E2E_V2_REPEAT=%q: want a count ≥ 1", v)
		}
		repeat = n
	}
	want := wantRuns(repeat)
	b := build(t)
	base := rootfs(t)
	img := image(t, base, deb, b)
	t.Logf("image ready after %s", time.Since(start).Round(time.Second))
	// Generous: about 15 s a run here; a run that waits out the guest's
	// bounds takes minutes, and the results stop at the first that cannot
	// settle.
	limit := 5*time.Minute + time.Duration(len(want))*150*time.Second
	res, dir := boot(t, base, img, repeat, limit)

	if !res.Cgroup.Pure() {
		t.Fatalf("the guest is not pure cgroup v2: %+v", res.Cgroup)
	}
	t.Logf("guest: kernel %s, %s, cgroup2 controllers %q; booted in %.0f s, installed the .deb in %.1f s",
		res.Kernel, res.Systemd, res.Cgroup.Controllers, res.UptimeAtStart, res.InstallSeconds)
	if res.Error != "" {
		t.Errorf("the guest program stopped: %s", res.Error)
	}
	// A void run (systemd did not act as the scenario needs) is made
	// again: want counts the runs that tested what they name.
	var got []string
	for _, r := range res.Runs {
		if r.Void == "" {
			got = append(got, fmt.Sprintf("%s#%d", r.Scenario, r.Repeat))
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("the guest ran %v, want %v (a run missing after void attempts: systemd never acted as the scenario needs)", got, want)
	}

	var summary []string
	var failed []Run
	var latencies []float64
	var oomRuns, oomComplete, voids int
	for _, r := range res.Runs {
		name := fmt.Sprintf("%s#%d", r.Scenario, r.Repeat)
		if r.Void != "" {
			name += fmt.Sprintf("-void%d", r.Attempt)
			voids++
		}
		var evidence string
		ok := t.Run(name, func(t *testing.T) {
			j := &judge{t: t, run: r, dir: dir}
			j.captures()
			switch r.Scenario {
			case Kill:
				j.kill()
			case Health:
				j.health()
			case Restart:
				j.restart()
			default:
				oomRuns++
				if j.oom() {
					oomComplete++
				}
			}
			if r.Error != "" {
				t.Errorf("in the guest: %s", r.Error)
			}
			evidence = strings.Join(j.evidence, "; ")
			t.Log(evidence)
		})
		if r.Scenario == Kill && r.CaptureLatencyMS != nil {
			latencies = append(latencies, *r.CaptureLatencyMS)
		}
		verdict := "PASS"
		if r.Void != "" {
			verdict = "VOID"
			evidence = "void: " + r.Void + "; " + evidence
		}
		if !ok {
			verdict = "FAIL"
			failed = append(failed, r)
		}
		summary = append(summary, fmt.Sprintf("%s %-22s %5.1fs  %s", verdict, name, r.Seconds, evidence))
	}
	t.Logf("results (%s of %s):\n%s", filepath.Base(deb), res.Systemd, strings.Join(summary, "\n"))
	t.Logf("OOM evidence complete (trigger sample: oom_kills ≥ 1 and memory_peak ≥ 90 %% of MemoryMax) in %d of %d OOM runs (%d void runs, made again)", oomComplete, oomRuns, voids)
	if len(latencies) > 0 {
		slices.Sort(latencies)
		t.Logf("kill -9 → durable capture in the guest, %d runs: median %.0f ms, worst %.0f ms", len(latencies), median(latencies), latencies[len(latencies)-1])
	}
	t.Logf("e2e-v2 ran %s (guest program %s, boot %.0f s)", time.Since(start).Round(time.Second),
		res.Ended.Sub(res.Started).Round(time.Second), res.UptimeAtStart)
	if len(failed) > 0 {
		journal, _ := os.ReadFile(filepath.Join(dir, JournalFile))
		for _, r := range failed {
			t.Logf("the guest's journal during %s#%d (dead-drop, its recorder, the kernel's OOM kills):\n%s",
				r.Scenario, r.Repeat, during(journal, r.At.Add(-time.Second), r.At.Add(time.Duration(r.Seconds*float64(time.Second))+time.Second)))
		}
	}
}

// during returns the lines of a short-iso-precise journal logged between
// from and to.
func during(journal []byte, from, to time.Time) string {
	var b strings.Builder
	for line := range strings.Lines(string(journal)) {
		stamp, _, _ := strings.Cut(line, " ")
		at, err := time.Parse("2006-01-02T15:04:05.999999-0700", stamp)
		if err == nil && !at.Before(from) && !at.After(to) {
			b.WriteString(line)
		}
	}
	return b.String()
}

// wantRuns are the runs the guest must make, in order.
func wantRuns(repeat int) []string {
	var runs []string
	for _, sc := range []struct {
		name  string
		times int
	}{{Kill, repeat}, {Health, 1}, {Restart, 1}, {OOMChildStop, repeat}, {OOMMainStop, repeat}, {OOMChildContinue, repeat}, {OOMMainContinue, repeat}} {
		for i := 1; i <= sc.times; i++ {
			runs = append(runs, fmt.Sprintf("%s#%d", sc.name, i))
		}
	}
	return runs
}

// judge checks one run and collects its evidence.
type judge struct {
	t        *testing.T
	run      Run
	dir      string
	caps     []*capture.Capture
	evidence []string
}

func (j *judge) say(format string, args ...any) {
	j.evidence = append(j.evidence, fmt.Sprintf(format, args...))
}

// captures reads the run's captures.
func (j *judge) captures() {
	for _, name := range j.run.Captures {
		c, _, err := capture.Read(filepath.Join(j.dir, CapturesDir, name))
		if err != nil {
			j.t.Errorf("capture %s: %v", name, err)
			continue
		}
		if c.KernelLog == nil && c.KernelLogMissing == "" {
			j.t.Errorf("capture %s has no last words (kernel_log nor kernel_log_missing): the guest copied it before it was final", name)
		}
		j.caps = append(j.caps, c)
	}
	var kinds []string
	for _, c := range j.caps {
		kinds = append(kinds, triggerKinds(c))
	}
	j.say("%d capture(s) %s", len(j.caps), strings.Join(kinds, " "))
	if j.run.CaptureLatencyMS != nil {
		j.say("first after %.0f ms", *j.run.CaptureLatencyMS)
	}
}

// with returns the first capture with a trigger of kind, and its index.
func (j *judge) with(kind string) (*capture.Capture, int) {
	for _, c := range j.caps {
		if i := slices.IndexFunc(c.Triggers, func(tr capture.Trigger) bool { return tr.Kind == kind }); i >= 0 {
			return c, i
		}
	}
	return nil, -1
}

func (j *judge) kill() {
	r := j.run
	if r.After.NRestarts <= r.Before.NRestarts {
		j.t.Errorf("NRestarts %d → %d: kill -9 of %d did not restart dead-drop", r.Before.NRestarts, r.After.NRestarts, r.Before.MainPID)
	}
	c, i := j.with(capture.TriggerExit)
	if c == nil {
		j.t.Errorf("no capture with an exit trigger after kill -9 of the main process %d", r.Before.MainPID)
		return
	}
	j.ownResult(c, i)
}

func (j *judge) health() {
	c, _ := j.with(capture.TriggerHealth)
	if c == nil {
		j.t.Error("no capture with a health trigger after /health answered 503")
		return
	}
	if first := c.Triggers[0]; first.Kind != capture.TriggerHealth || first.Detail != "HTTP 503" {
		j.t.Errorf("first trigger %+v, want health HTTP 503", first)
	}
	if c.HealthError != "HTTP 503" {
		j.t.Errorf("health_error %q, want HTTP 503", c.HealthError)
	}
	j.say("health_error %q", c.HealthError)
}

func (j *judge) restart() {
	r := j.run
	if r.After.MainPID == r.Before.MainPID || r.After.ActiveState != "active" {
		j.t.Errorf("dead-drop %+v → %+v: systemctl restart did not restart it", r.Before, r.After)
	}
	j.say("MainPID %d → %d", r.Before.MainPID, r.After.MainPID)
	for i, c := range j.caps {
		j.t.Errorf("systemctl restart wrote %s, triggers %s; a deliberate restart is no failure", r.Captures[i], triggerDetails(c))
	}
}

// oom checks an OOM run and reports whether every oom trigger's own sample
// carried the evidence.
func (j *judge) oom() bool {
	r := j.run
	main := strings.Contains(r.Scenario, "-main-")
	stop := strings.HasSuffix(r.Scenario, "-stop")
	j.say("OOMPolicy=%s, kernel killed %v (MainPID was %d, eater %d, cgroup %v)", r.OOMPolicy, r.OOMVictims, r.Before.MainPID, r.Eater, r.Procs)
	wantPolicy := "continue"
	if stop {
		wantPolicy = "stop"
	}
	// That the scenario happened as named.
	if r.OOMPolicy != wantPolicy {
		j.t.Errorf("dead-drop's OOMPolicy is %q, want %s", r.OOMPolicy, wantPolicy)
	}
	if len(r.OOMVictims) == 0 {
		j.t.Error("the kernel logged no OOM kill: the scenario did not happen")
	}
	// The victim: in a main scenario the main process is the cgroup's
	// only process and the only victim; in a child's, the eater (its
	// oom_score_adj is 1000) is, and the main process is not. A void run
	// (the kernel killed again) is judged on its captures only.
	victims := make([]int, len(r.OOMVictims))
	for i, v := range r.OOMVictims {
		victims[i] = v.PID
	}
	switch {
	case r.Void != "":
	case main:
		if !slices.Equal(r.Procs, []int{r.Before.MainPID}) {
			j.t.Errorf("dead-drop's cgroup held %v before the act, want the main process %d alone", r.Procs, r.Before.MainPID)
		}
		if !slices.Equal(victims, []int{r.Before.MainPID}) {
			j.t.Errorf("the OOM killer's victims %v, want the main process %d alone", r.OOMVictims, r.Before.MainPID)
		}
	default:
		if r.Eater == 0 || !slices.Equal(victims, []int{r.Eater}) {
			j.t.Errorf("the OOM killer's victims %v, want the eater %d alone (the main process is %d)", r.OOMVictims, r.Eater, r.Before.MainPID)
		}
		if !stop && (r.After.MainPID != r.Before.MainPID || r.After.NRestarts != r.Before.NRestarts) {
			j.t.Errorf("dead-drop %+v → %+v: under OOMPolicy=continue a child's OOM kill must not restart it", r.Before, r.After)
		}
	}

	c, _ := j.with(capture.TriggerOOM)
	if c == nil {
		j.t.Error("no capture with an oom trigger")
		return false
	}
	complete := true
	for i, tr := range c.Triggers {
		if tr.Kind != capture.TriggerOOM {
			continue
		}
		s := triggerSample(c, i)
		if s == nil || s.Service == nil {
			j.t.Errorf("oom trigger %d (%s): its sample has no service", i, tr.At.Format(time.RFC3339Nano))
			j.say("oom trigger %d: sample has no service", i)
			complete = false
			continue
		}
		svc := s.Service
		j.say("oom trigger %d sample: oom_kills=%s memory_peak_bytes=%s (%s of MemoryMax) memory_bytes=%s",
			i, fmtUint(svc.OOMKills), fmtUint(svc.MemoryPeakBytes), percent(svc.MemoryPeakBytes), fmtUint(svc.MemoryBytes))
		if svc.OOMKills == nil || *svc.OOMKills < 1 {
			j.t.Errorf("oom trigger %d: its sample's service.oom_kills = %s, want ≥ 1", i, fmtUint(svc.OOMKills))
			complete = false
		}
		if svc.MemoryPeakBytes == nil || *svc.MemoryPeakBytes < minPeak {
			j.t.Errorf("oom trigger %d: its sample's service.memory_peak_bytes = %s, want ≥ %d (90 %% of MemoryMax)", i, fmtUint(svc.MemoryPeakBytes), minPeak)
			complete = false
		}
	}
	for i, tr := range c.Triggers {
		if tr.Kind != capture.TriggerOOM {
			continue
		}
		if !stop || r.Void != "" {
			// Under continue, or where systemd let the kill pass under
			// stop: systemd's own word, whatever it was.
			j.ownResult(c, i)
			continue
		}
		j.say("oom trigger %d systemd %s; systemd said %v", i, fmtSystemd(tr.Systemd), r.SystemdResults)
		if tr.Systemd == nil || tr.Systemd.Result != "oom-kill" {
			j.t.Errorf("oom trigger %d: its systemd object %s, want result oom-kill (systemd itself said %v)", i, fmtSystemd(tr.Systemd), r.SystemdResults)
		}
	}
	return complete
}

// ownResult checks that trigger i's systemd object has this failure's
// result as systemd logged it ("Failed with result 'X'"), where systemd
// logged one: systemd runs in the guest, so the object must be there.
func (j *judge) ownResult(c *capture.Capture, i int) {
	tr := c.Triggers[i]
	said := j.run.SystemdResults
	j.say("%s trigger %d systemd %s; systemd said %v", tr.Kind, i, fmtSystemd(tr.Systemd), said)
	if len(said) > 0 && (tr.Systemd == nil || !slices.Contains(said, tr.Systemd.Result)) {
		j.t.Errorf("%s trigger %d: its systemd object %s, want this failure's own result: systemd said %v", tr.Kind, i, fmtSystemd(tr.Systemd), said)
	}
}

// triggerSample is trigger i's own sample: a capture's samples are the
// ring before the first trigger, then one per trigger.
func triggerSample(c *capture.Capture, i int) *capture.Sample {
	k := len(c.Samples) - len(c.Triggers) + i
	if k < 0 || k >= len(c.Samples) {
		return nil
	}
	return &c.Samples[k]
}

func triggerKinds(c *capture.Capture) string {
	var k []string
	for _, tr := range c.Triggers {
		k = append(k, tr.Kind)
	}
	return "[" + strings.Join(k, " ") + "]"
}

func triggerDetails(c *capture.Capture) string {
	var k []string
	for _, tr := range c.Triggers {
		k = append(k, fmt.Sprintf("%s (%s) systemd %s", tr.Kind, tr.Detail, fmtSystemd(tr.Systemd)))
	}
	return strings.Join(k, ", ")
}

func fmtSystemd(sd *capture.Systemd) string {
	if sd == nil {
		return "absent"
	}
	return fmt.Sprintf("{result=%s exec_main_code=%s exec_main_status=%s n_restarts=%s active=%s/%s job=%s}",
		sd.Result, sd.ExecMainCode, fmtInt(sd.ExecMainStatus), fmtInt(sd.NRestarts), sd.ActiveState, sd.SubState, sd.Job)
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

func percent(p *uint64) string {
	if p == nil {
		return "-"
	}
	return fmt.Sprintf("%.0f %%", float64(*p)*100/MemoryMax)
}

func median(sorted []float64) float64 {
	n := len(sorted)
	if n%2 == 1 {
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}
