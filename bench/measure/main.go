// Command measure is the body of bench/overhead: on this machine it
// measures preflight's recorder side by side with atop and sysstat's sadc,
// with the host's processes as they are and with extra idle ones, the floors
// of reading /proc, the idle recorder's cost per second, and the time from
// kill -9 of a service's last process to its durable capture; then it
// prints a markdown report and writes it to -out.
//
// It runs as root (it makes cgroups). Everything it starts it ends by PID,
// every cgroup and directory it makes it removes, also when interrupted.
//
//	go run ./bench/measure -preflight bin/preflight -out docs/benchmarks.md
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/preflight-rec/preflight/bench/internal/kit"
	"github.com/preflight-rec/preflight/cgroup"
)

type config struct {
	preflight   string
	atop, sadc  string
	out         string
	work        string
	reps        int
	warmup      int
	samples     int
	extra       int
	latencyRuns int
	idleWindow  time.Duration
	idleWindows int
	scaleWindow time.Duration
	// scaleWindows is the number of windows of each scale run.
	scaleWindows int
	// idleDefaultWindows is the number of 30 s windows of the idle run at
	// the default interval.
	idleDefaultWindows int
	// baseline, if set, is another preflight binary whose recorders run
	// beside the first two of the idle run at the default interval, and
	// beside the 1 and 20 services of the scale run.
	baseline string
	// scaleOnly runs the scale run alone, at the second process count.
	scaleOnly bool
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "child" {
		os.Exit(child(os.Args[2:]))
	}
	var c config
	flag.StringVar(&c.preflight, "preflight", "bin/preflight", "the preflight binary")
	flag.StringVar(&c.atop, "atop", "atop", "the atop binary")
	flag.StringVar(&c.sadc, "sadc", "/usr/lib/sysstat/sadc", "sysstat's sadc binary")
	flag.StringVar(&c.out, "out", "docs/benchmarks.md", "the markdown report to write (\"\": print only)")
	flag.StringVar(&c.work, "work", "/var/tmp", "where to make the scratch directory (a real disk: captures are fsynced)")
	flag.IntVar(&c.reps, "reps", 3, "repetitions of the side-by-side run per process count")
	flag.IntVar(&c.warmup, "warmup", 3, "samples before the measured window")
	flag.IntVar(&c.samples, "samples", 20, "samples in the measured window")
	flag.IntVar(&c.extra, "procs", 2000, "extra idle processes of the second process count (0: skip it)")
	flag.IntVar(&c.latencyRuns, "latency-runs", 50, "kill -9 → capture runs per process count")
	flag.DurationVar(&c.idleWindow, "idle-window", 10*time.Second, "length of one idle measurement window")
	flag.IntVar(&c.idleWindows, "idle-windows", 3, "idle measurement windows")
	flag.DurationVar(&c.scaleWindow, "scale-window", 20*time.Second, "length of one window of the 1 vs 20 services run")
	flag.IntVar(&c.scaleWindows, "scale-windows", 6, "windows of each of the two scale runs: a host scan's CPU time moves by a tenth from window to window")
	flag.IntVar(&c.idleDefaultWindows, "idle30-windows", 6, "30 s windows of the idle run at the default interval (0: skip it)")
	flag.StringVar(&c.baseline, "baseline", "", "another preflight binary (an older build) measured beside it in the idle run at the default interval and the scale run")
	flag.BoolVar(&c.scaleOnly, "scale-only", false, "run only the 1 vs 20 services run, at -procs extra processes (with -baseline: A/B of two builds)")
	flag.Parse()
	if err := run(c); err != nil {
		fmt.Fprintln(os.Stderr, "measure:", err)
		os.Exit(1)
	}
}

// session owns what a run made, for its cleanup.
type session struct {
	c       config
	h       kit.Hierarchies
	root    *kit.Cgroup
	cgroups []*kit.Cgroup // in creation order; removed in reverse
	scratch string
	health  string
}

func run(c config) (err error) {
	if os.Geteuid() != 0 {
		return errors.New("must run as root: it makes cgroups")
	}
	for _, bin := range []*string{&c.preflight, &c.atop, &c.sadc} {
		p, err := exec.LookPath(*bin)
		if err != nil {
			return fmt.Errorf("failed to find %s (bench/overhead installs atop and sysstat): %w", *bin, err)
		}
		if *bin, err = filepath.Abs(p); err != nil {
			return err
		}
	}
	s := &session{c: c}
	if s.h, err = kit.FindHierarchies(); err != nil {
		return err
	}
	defer func() { err = errors.Join(err, s.cleanup()) }()

	// A closed output pipe must not kill the run before its cleanup.
	signal.Ignore(syscall.SIGPIPE)
	// Interrupted: end what was started, remove what was made, exit 1.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		if errors.Is(context.Cause(ctx), context.Canceled) {
			return
		}
		fmt.Fprintln(os.Stderr, "measure: interrupted, cleaning up")
		kit.KillAll()
		_ = s.cleanup()
		os.Exit(1)
	}()

	if s.scratch, err = os.MkdirTemp(c.work, "preflight-bench-"); err != nil {
		return fmt.Errorf("failed to make scratch directory: %w", err)
	}
	if s.root, err = s.cgroup("/"+filepath.Base(s.scratch), true); err != nil {
		return err
	}
	url, stopHealth, err := kit.ServeHealth()
	if err != nil {
		return fmt.Errorf("failed to start health server: %w", err)
	}
	defer stopHealth()
	s.health = url

	res := &results{cfg: c, machine: describeMachine(c), started: time.Now().UTC()}
	pops := []int{0}
	if c.extra > 0 {
		pops = append(pops, c.extra)
	}
	if c.scaleOnly {
		if c.out == "docs/benchmarks.md" {
			c.out = "" // a part of the report: printed, never written over the whole
		}
		if c.extra == 0 {
			return errors.New("-scale-only needs -procs > 0: the scale run is at the second process count")
		}
		pops = pops[1:]
	}
	for _, extra := range pops {
		p, err := s.population(extra, extra == 0)
		if err != nil {
			return err
		}
		res.pops = append(res.pops, p)
	}
	if len(res.pops) > 0 && res.pops[0].idle != nil {
		res.idle = res.pops[0].idle
		res.idle30 = res.pops[0].idle30
	}
	for _, p := range res.pops {
		if p.scale != nil {
			res.scale, res.scaleProcs = p.scale, p.procs
		}
	}
	report := res.markdown()
	fmt.Print(report)
	if c.out != "" {
		if err := writeReport(c.out, report); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "measure: wrote %s\n", c.out)
	}
	return nil
}

// cgroup makes a cgroup under the run's root (or the root itself).
func (s *session) cgroup(path string, v1Memory bool) (*kit.Cgroup, error) {
	if s.root != nil {
		path = s.root.Path + "/" + path
	}
	cg, err := kit.MakeCgroup(s.h, path, v1Memory)
	if err != nil {
		return nil, err
	}
	s.cgroups = append(s.cgroups, cg)
	return cg, nil
}

func (s *session) cleanup() error {
	var errs []error
	for i := len(s.cgroups) - 1; i >= 0; i-- {
		errs = append(errs, s.cgroups[i].Remove())
	}
	s.cgroups = nil
	if s.scratch != "" {
		errs = append(errs, os.RemoveAll(s.scratch))
		s.scratch = ""
	}
	return errors.Join(errs...)
}

// popResult is everything measured at one process count.
type popResult struct {
	extra   int
	procs   int          // processes on the host during the side-by-side runs (median of the counts)
	floors  []kit.Floors // one per repetition, each the median of its window's passes
	warm    []kit.Floors // one per repetition, 5 passes back to back before the window
	reps    [][]kit.ToolCost
	idle    []kit.IdleCost
	idle30  []kit.IdleCost // at the default interval
	scale   []kit.IdleCost // 1 vs 20 services
	latency kit.LatencyResult
}

// population measures at the host's processes plus extra idle ones.
func (s *session) population(extra int, idle bool) (*popResult, error) {
	c := s.c
	tag := strconv.Itoa(extra)
	res := &popResult{extra: extra}
	fmt.Fprintf(os.Stderr, "== host processes + %d idle ones\n", extra)
	if extra > 0 {
		cg, err := s.cgroup("population-"+tag, false)
		if err != nil {
			return nil, err
		}
		pop, err := kit.StartPopulation(extra, cg)
		if err != nil {
			return nil, err
		}
		defer pop.Stop()
		time.Sleep(time.Second) // let the new processes settle into sleep
	}

	tools := map[string]*kit.Cgroup{}
	for _, t := range []string{kit.ToolPreflight, kit.ToolAtop, kit.ToolSadc} {
		cg, err := s.cgroup(t+"-"+tag, false)
		if err != nil {
			return nil, err
		}
		tools[t] = cg
	}
	svc, err := s.cgroup("svc-"+tag, true)
	if err != nil {
		return nil, err
	}
	var counts []float64
	reps := c.reps
	if c.scaleOnly {
		reps, c.latencyRuns = 0, 0
		res.procs = kit.CountProcesses()
	}
	for rep := range reps {
		fmt.Fprintf(os.Stderr, "-- repetition %d/%d\n", rep+1, reps)
		work := filepath.Join(s.scratch, fmt.Sprintf("side-%s-%d", tag, rep))
		if err := os.Mkdir(work, 0o755); err != nil {
			return nil, err
		}
		warm, err := kit.WarmFloors("/proc", 5)
		if err != nil {
			return nil, err
		}
		res.warm = append(res.warm, warm)
		var o kit.OverheadResult
		for try := 1; ; try++ {
			o, err = kit.Overhead(kit.OverheadConfig{
				Recorder: kit.RecorderConfig{Bin: c.preflight, Service: "bench", HealthURL: s.health, Dir: work, LogFile: filepath.Join(work, "recorder.log")},
				Atop:     c.atop,
				Sadc:     c.sadc,
				Work:     work,
				Warmup:   c.warmup,
				Samples:  c.samples,
				Tools:    tools,
				Svc:      svc,
				Progress: os.Stderr,
			})
			if err == nil {
				break
			}
			if try == 5 {
				return nil, fmt.Errorf("side-by-side run with %d extra processes, 5 tries: %w", extra, err)
			}
			fmt.Fprintf(os.Stderr, "   repetition failed, again in 10 s: %v\n", err)
			time.Sleep(10 * time.Second)
			work += "-again"
			if err := os.Mkdir(work, 0o755); err != nil {
				return nil, err
			}
		}
		res.reps = append(res.reps, o.Tools)
		res.floors = append(res.floors, o.Floors)
		counts = append(counts, float64(o.Floors.Procs))
	}
	if len(counts) > 0 {
		res.procs = int(kit.Median(counts))
	}

	if idle {
		fmt.Fprintln(os.Stderr, "-- idle cost per second")
		if res.idle, err = s.idle(); err != nil {
			return nil, err
		}
		if c.idleDefaultWindows > 0 {
			fmt.Fprintf(os.Stderr, "-- idle at the default interval, %d windows of 30 s\n", c.idleDefaultWindows)
			if res.idle30, err = s.idleDefault(); err != nil {
				return nil, err
			}
		}
	} else {
		fmt.Fprintf(os.Stderr, "-- 1 vs %d services, %d windows of %v\n", scaleService, c.scaleWindows, c.scaleWindow)
		if res.scale, err = s.scale(tag); err != nil {
			return nil, err
		}
	}
	if c.latencyRuns > 0 {
		fmt.Fprintf(os.Stderr, "-- kill -9 → durable capture, %d runs\n", c.latencyRuns)
		lat, err := s.cgroup("latency-svc-"+tag, true)
		if err != nil {
			return nil, err
		}
		dir := filepath.Join(s.scratch, "latency-"+tag)
		if err := os.Mkdir(dir, 0o755); err != nil {
			return nil, err
		}
		res.latency, err = kit.Latency(kit.LatencyConfig{
			Recorder: kit.RecorderConfig{Bin: c.preflight, Service: "bench", HealthURL: s.health, Interval: 1, Dir: dir, LogFile: filepath.Join(dir, "recorder.log")},
			Svc:      lat,
			Runs:     c.latencyRuns,
			Settle:   250 * time.Millisecond,
			Progress: os.Stderr,
		})
		if err != nil {
			return nil, fmt.Errorf("latency with %d extra processes: %w", extra, err)
		}
	}
	return res, nil
}

// idle measures, side by side, the CPU time per second of: a Go process
// that only sleeps (the runtime's own floor), the cgroup watcher alone, and
// the recorder with an interval so long that it takes no sample in the
// window.
func (s *session) idle() ([]kit.IdleCost, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	svc, err := s.cgroup("idle-svc", true)
	if err != nil {
		return nil, err
	}
	sleep, err := kit.Start(exec.Command("sleep", "3600"), svc)
	if err != nil {
		return nil, err
	}
	defer sleep.Stop(0)
	dir := filepath.Join(s.scratch, "idle")
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, err
	}
	recorder := func(name string, env ...string) func(cg *kit.Cgroup) (*kit.Proc, error) {
		return func(cg *kit.Cgroup) (*kit.Proc, error) {
			r, err := kit.StartRecorder(kit.RecorderConfig{
				Bin: s.c.preflight, Service: name, HealthURL: s.health, Interval: 86400, Cgroup: svc.Path,
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
	command := func(args ...string) func(cg *kit.Cgroup) (*kit.Proc, error) {
		return func(cg *kit.Cgroup) (*kit.Proc, error) { return kit.Start(exec.Command(args[0], args[1:]...), cg) }
	}
	subjects := []kit.IdleSubject{
		{Name: "a Go process that only sleeps", Start: command(self, "child", "sleep")},
		{Name: "the cgroup watcher alone (cgroup.Watcher, default options)", Start: command(self, "child", "watch", svc.Path)},
		{Name: "the cgroup watcher alone, WatchOptions.Poll = 1 s", Start: command(self, "child", "watch", svc.Path, "1s")},
		{Name: idleRecorder, Start: recorder("idle")},
		{Name: "the recorder between samples, GOMAXPROCS=1", Start: recorder("idle-gomaxprocs1", "GOMAXPROCS=1")},
	}
	for i := range subjects {
		if subjects[i].Cg, err = s.cgroup("idle-"+strconv.Itoa(i), false); err != nil {
			return nil, err
		}
	}
	kit.Stagger(subjects)
	return kit.Idle(subjects, 3*time.Second, s.c.idleWindow, s.c.idleWindows, os.Stderr)
}

// child runs the processes the idle measurement starts from this binary.
func child(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	switch {
	case len(args) == 1 && args[0] == "sleep":
		<-ctx.Done()
		return 0
	case len(args) == 1 && args[0] == "tick": // the cost of a wake-up alone
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return 0
			case <-t.C:
			}
		}
	case (len(args) == 2 || len(args) == 3) && args[0] == "watch":
		var o cgroup.WatchOptions
		if len(args) == 3 {
			d, err := time.ParseDuration(args[2])
			if err != nil {
				fmt.Fprintln(os.Stderr, "measure child:", err)
				return 2
			}
			o.Poll = d
		}
		fs, err := cgroup.NewFS("/sys/fs/cgroup")
		if err != nil {
			fmt.Fprintln(os.Stderr, "measure child:", err)
			return 1
		}
		w := fs.NewWatcher(cgroup.Target{Path: args[1]}, o)
		go func() {
			for range w.Events() {
			}
		}()
		if err := w.Run(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "measure child:", err)
			return 1
		}
		return 0
	}
	fmt.Fprintln(os.Stderr, "measure child: usage: child sleep | child tick | child watch CGROUP [POLL]")
	return 2
}

// idleRecorder names the idle subject the 30 s figure is computed from.
const idleRecorder = "the recorder between samples"

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// marker separates the generated report from notes kept across runs.
const marker = "<!-- notes: everything below this line is written by hand and kept by bench/overhead -->"

// writeReport writes the report to path, keeping whatever followed the
// marker in the file it replaces.
func writeReport(path, report string) error {
	notes := "\n## Notes\n\n(none yet)\n"
	if old, err := os.ReadFile(path); err == nil {
		if _, after, ok := strings.Cut(string(old), marker); ok {
			notes = after
		}
	}
	if err := os.WriteFile(path, []byte(report+"\n"+marker+notes), 0o644); err != nil {
		return fmt.Errorf("failed to write report: %w", err)
	}
	return nil
}
