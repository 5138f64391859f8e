package main

import (
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/preflight-rec/preflight/bench/internal/kit"
)

// Subjects of the scale run: the same services recorded three ways.
const (
	scaleOne    = "1 service, one process"
	scaleShared = "20 services, one process (--config)"
	scaleApart  = "20 services, 20 processes (template instances)"
	// scaleOneBeside is scaleOne measured again, beside scaleApart.
	scaleOneBeside = "1 service, one process, beside the 20 processes"
	scaleService   = 20
)

// baselineSuffix names a subject run by the -baseline binary.
const baselineSuffix = ", baseline binary"

// Subjects of the idle run at the default interval.
const (
	idle30         = "the recorder at the default 30 s interval"
	idle30Ten      = "the same, its service of 10 processes"
	idle30Missing  = "the same, its unit not found"
	idle30NoTrace  = "the same as the first, without the service trace (SERVICE_INTERVAL_SECONDS=0)"
	idle30MaxProcs = "the same as the first, GOMAXPROCS=1"
	idle30Tick     = "a Go process that wakes once a second and does nothing"
)

// scale measures, side by side, the CPU per second of one process
// recording one service, one process recording 20 (a YAML file), and 20
// processes recording one each, as the template unit runs them: tcp health
// checks on loopback, interval 1 s, each service a cgroup holding one
// `sleep`.
func (s *session) scale(tag string) ([]kit.IdleCost, error) {
	u, err := url.Parse(s.health)
	if err != nil {
		return nil, err
	}
	health := "tcp://" + u.Host
	svcs := make([]*kit.Cgroup, scaleService)
	for i := range svcs {
		if svcs[i], err = s.cgroup(fmt.Sprintf("scale-svc-%s-%d", tag, i), true); err != nil {
			return nil, err
		}
		p, err := kit.Start(exec.Command("sleep", "3600"), svcs[i])
		if err != nil {
			return nil, err
		}
		defer p.Stop(0)
	}
	dir := filepath.Join(s.scratch, "scale-"+tag)
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, err
	}
	yaml := func(name string, n int) (string, error) {
		var b strings.Builder
		b.WriteString("services:\n")
		for i := range n {
			fmt.Fprintf(&b, "  - name: %s-%d\n    health_url: %s\n    interval_seconds: 1\n    cgroup: %s\n", name, i, health, svcs[i].Path)
		}
		path := filepath.Join(dir, name+".yaml")
		return path, os.WriteFile(path, []byte(b.String()), 0o644)
	}
	var started []*kit.Proc
	defer func() {
		for _, p := range started {
			p.Stop(10 * time.Second)
		}
	}()
	start := func(rc kit.RecorderConfig, cg *kit.Cgroup) (*kit.Proc, error) {
		r, err := kit.StartRecorder(rc, cg)
		if err != nil {
			return nil, err
		}
		go func() { // keep its log flowing
			for range r.Lines {
			}
		}()
		return r.Proc, nil
	}
	fromFile := func(bin, name string, n int) func(cg *kit.Cgroup) (*kit.Proc, error) {
		return func(cg *kit.Cgroup) (*kit.Proc, error) {
			path, err := yaml(name, n)
			if err != nil {
				return nil, err
			}
			d := filepath.Join(dir, name)
			if err := os.Mkdir(d, 0o755); err != nil {
				return nil, err
			}
			return start(kit.RecorderConfig{Bin: bin, Config: path, Dir: d, LogFile: filepath.Join(dir, name+".log")}, cg)
		}
	}
	apart := func(cg *kit.Cgroup) (*kit.Proc, error) {
		d := filepath.Join(dir, "apart")
		if err := os.Mkdir(d, 0o755); err != nil {
			return nil, err
		}
		var first *kit.Proc
		for i := range scaleService {
			p, err := start(kit.RecorderConfig{
				Bin: s.c.preflight, Service: fmt.Sprintf("apart-%d", i), HealthURL: health, Interval: 1,
				Cgroup: svcs[i].Path, Dir: d,
			}, cg)
			if err != nil {
				return nil, err
			}
			if first == nil {
				first = p // Idle ends it; the others are ended here
			} else {
				started = append(started, p)
			}
		}
		return first, nil
	}
	// Two runs: the 20 template instances scan the host 20 times a second,
	// which would load the CPUs under the 1 vs 20 comparison at random
	// phases; so they run in a second run, beside one service again.
	shared := []kit.IdleSubject{
		{Name: scaleOne, Start: fromFile(s.c.preflight, "one", 1)},
		{Name: scaleShared, Start: fromFile(s.c.preflight, "shared", scaleService)},
	}
	if s.c.baseline != "" {
		shared = append(shared,
			kit.IdleSubject{Name: scaleOne + baselineSuffix, Start: fromFile(s.c.baseline, "one-baseline", 1)},
			kit.IdleSubject{Name: scaleShared + baselineSuffix, Start: fromFile(s.c.baseline, "shared-baseline", scaleService)})
	}
	apartRun := []kit.IdleSubject{
		{Name: scaleOneBeside, Start: fromFile(s.c.preflight, "one-beside", 1)},
		{Name: scaleApart, Start: apart},
	}
	var out []kit.IdleCost
	for i, run := range [][]kit.IdleSubject{shared, apartRun} {
		for j := range run {
			if run[j].Cg, err = s.cgroup(fmt.Sprintf("scale-%s-%d-%d", tag, i, j), false); err != nil {
				return nil, err
			}
		}
		// Their host scans, some 20 ms each, do not overlap and
		// compete for the CPUs.
		kit.Stagger(run)
		costs, err := kit.Idle(run, 5*time.Second, s.c.scaleWindow, s.c.scaleWindows, os.Stderr)
		if err != nil {
			return nil, err
		}
		out = append(out, costs...)
	}
	return out, nil
}

// idleDefault measures, side by side, recorders at the default 30 s
// interval over idleDefaultWindows windows of 30 s: each window holds one
// sample of each.
func (s *session) idleDefault() ([]kit.IdleCost, error) {
	svc, err := s.cgroup("idle30-svc", true)
	if err != nil {
		return nil, err
	}
	sleep, err := kit.Start(exec.Command("sleep", "3600"), svc)
	if err != nil {
		return nil, err
	}
	defer sleep.Stop(0)
	ten, err := s.cgroup("idle30-svc10", true)
	if err != nil {
		return nil, err
	}
	for range 10 {
		p, err := kit.Start(exec.Command("sleep", "3600"), ten)
		if err != nil {
			return nil, err
		}
		defer p.Stop(0)
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(s.scratch, "idle30")
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, err
	}
	recorderOf := func(bin, name, cgroup string, env ...string) func(cg *kit.Cgroup) (*kit.Proc, error) {
		return func(cg *kit.Cgroup) (*kit.Proc, error) {
			r, err := kit.StartRecorder(kit.RecorderConfig{
				Bin: bin, Service: name, HealthURL: s.health, Interval: defaultInterval, Cgroup: cgroup,
				Dir: dir, LogFile: filepath.Join(dir, name+".log"), Env: env,
			}, cg)
			if err != nil {
				return nil, err
			}
			go func() { // keep its log flowing
				for range r.Lines {
				}
			}()
			return r.Proc, nil
		}
	}
	recorder := func(name, cgroup string, env ...string) func(cg *kit.Cgroup) (*kit.Proc, error) {
		return recorderOf(s.c.preflight, name, cgroup, env...)
	}
	subjects := []kit.IdleSubject{
		{Name: idle30, Start: recorder("idle30", svc.Path)},
		{Name: idle30Ten, Start: recorder("idle30-ten", ten.Path)},
		{Name: idle30Missing, Start: recorder("idle30-missing", "")},
		{Name: idle30NoTrace, Start: recorder("idle30-notrace", svc.Path, "PREFLIGHT_SERVICE_INTERVAL_SECONDS=0")},
		{Name: idle30MaxProcs, Start: recorder("idle30-gomaxprocs1", svc.Path, "GOMAXPROCS=1")},
		{Name: idle30Tick, Start: func(cg *kit.Cgroup) (*kit.Proc, error) {
			return kit.Start(exec.Command(self, "child", "tick"), cg)
		}},
	}
	if s.c.baseline != "" {
		subjects = append(subjects,
			kit.IdleSubject{Name: idle30 + baselineSuffix, Start: recorderOf(s.c.baseline, "idle30-baseline", svc.Path)},
			kit.IdleSubject{Name: idle30Ten + baselineSuffix, Start: recorderOf(s.c.baseline, "idle30-ten-baseline", ten.Path)})
	}
	for i := range subjects {
		if subjects[i].Cg, err = s.cgroup("idle30-"+fmt.Sprint(i), false); err != nil {
			return nil, err
		}
	}
	// The first window starts 5 s after the start, so that each 30 s
	// window holds exactly one of the recorders' ticks.
	kit.Stagger(subjects)
	return kit.Idle(subjects, 5*time.Second, time.Duration(defaultInterval*float64(time.Second)), s.c.idleDefaultWindows, os.Stderr)
}
