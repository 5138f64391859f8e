package kit

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Tool names in the side-by-side run.
const (
	ToolPreflight = "preflight"
	ToolAtop      = "atop"
	ToolSadc      = "sadc"
)

// OverheadConfig is one repetition of the side-by-side run: preflight's
// recorder, `atop -w` and sysstat's `sadc`, each in a cgroup of its own, at a
// 1 s interval, started a third of a second apart so that their samples do
// not compete for the CPUs. In the same window, once a second each, the
// benchmark itself takes the floors' two passes, while no tool samples, so
// that they meet the same machine as the tools.
type OverheadConfig struct {
	Recorder RecorderConfig // Interval 1; Cgroup is set from Svc
	Atop     string         // the atop binary
	Sadc     string         // the sadc binary
	Work     string         // a directory for atop's and sadc's files
	Warmup   int            // samples before the window: start-up is not measured
	Samples  int            // samples in the measured window
	Tools    map[string]*Cgroup
	Svc      *Cgroup // the service's cgroup, empty
	Progress io.Writer
}

// ToolCost is one tool's cost in one repetition.
type ToolCost struct {
	Tool string
	Cost
	HWMKiB uint64
	// The recorder only: its capture at the end of the run (the service's
	// process killed, so the ring is full), as its log reports it.
	CaptureBytes   int
	CaptureSamples int
}

// OverheadResult is one repetition's costs, the recorder's first, and the
// floors measured in the same window.
type OverheadResult struct {
	Tools  []ToolCost
	Floors Floors
}

// Overhead runs one repetition. The recorder's counters are read half an
// interval after its Warmup-th and (Warmup+Samples)-th tick (a Go ticker
// keeps its phase). atop and sadc can slip a second under load, so theirs
// are read just after their Warmup-th and (Warmup+Samples)-th record lands
// in their file (inotify), so the window holds exactly Samples samples of
// each.
func Overhead(c OverheadConfig) (OverheadResult, error) {
	var res OverheadResult
	const interval = time.Second
	total := c.Warmup + c.Samples + 5 // atop and sadc end by themselves after this many
	svcProc, err := Start(exec.Command("sleep", "3600"), c.Svc)
	if err != nil {
		return res, err
	}
	defer svcProc.Stop(0)

	type running struct {
		name    string
		cg      *Cgroup
		proc    *Proc
		file    string         // the file it writes a record to per sample; "" for the recorder
		records chan time.Time // when each record began to land in file
		reads   [2]Reading     // at the start and the end of the window
		err     error
	}
	var tools []*running
	defer func() {
		for _, t := range tools {
			t.proc.Stop(10 * time.Second)
		}
	}()
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return res, fmt.Errorf("failed to start inotify: %w", err)
	}
	defer fw.Close()
	if err := fw.Add(c.Work); err != nil {
		return res, fmt.Errorf("failed to watch %s: %w", c.Work, err)
	}

	c.Recorder.Interval = 1
	c.Recorder.Cgroup = c.Svc.Path
	rec, err := StartRecorder(c.Recorder, c.Tools[ToolPreflight])
	if err != nil {
		return res, err
	}
	tools = append(tools, &running{name: ToolPreflight, cg: c.Tools[ToolPreflight], proc: rec.Proc})
	n := strconv.Itoa(total)
	atopFile, sadcFile := filepath.Join(c.Work, "atop.raw"), filepath.Join(c.Work, "sa.data")
	others := []struct {
		name, file string
		cmd        *exec.Cmd
	}{
		{ToolAtop, atopFile, exec.Command(c.Atop, "-w", atopFile, "1", n)},
		{ToolSadc, sadcFile, exec.Command(c.Sadc, "-S", "DISK", "1", n, sadcFile)},
	}
	for i, o := range others {
		time.Sleep(interval/3*time.Duration(i+1) - time.Since(tools[0].proc.Started))
		t := &running{name: o.name, cg: c.Tools[o.name], file: o.file, records: make(chan time.Time, total+64)}
		tools = append(tools, t) // before the start: its first record may land at once
		if t.proc, err = Start(o.cmd, t.cg); err != nil {
			tools = tools[:len(tools)-1]
			return res, err
		}
	}
	// A record is a burst of writes; a new burst starts after 300 ms of
	// quiet.
	go func() {
		for err := range fw.Errors {
			if c.Progress != nil {
				fmt.Fprintf(c.Progress, "  inotify error: %v\n", err)
			}
		}
	}()
	go func() {
		last := map[string]time.Time{}
		for e := range fw.Events {
			if !e.Has(fsnotify.Write) {
				continue
			}
			now := time.Now()
			if now.Sub(last[e.Name]) > 300*time.Millisecond {
				for _, t := range tools[1:] {
					if t.file == e.Name {
						t.records <- now
					}
				}
			}
			last[e.Name] = now
		}
	}()

	// The floors, in the window, at phases where no tool samples: 0.15 s
	// after the recorder's samples for stat, 0.85 s for stat+status (atop's
	// sample runs from 0.33 s).
	floors := make(chan Floors, 1)
	go func() {
		var st, ss, n []float64
		base := tools[0].proc.Started
		for k := c.Warmup; k < c.Warmup+c.Samples; k++ {
			for _, pass := range []struct {
				phase time.Duration
				files []string
				out   *[]float64
			}{{150 * time.Millisecond, StatOnly, &st}, {850 * time.Millisecond, StatStatus, &ss}} {
				time.Sleep(time.Until(base.Add(time.Duration(k)*interval + pass.phase)))
				d, procs, err := FloorPass("/proc", pass.files)
				if err == nil {
					*pass.out = append(*pass.out, float64(d))
					n = append(n, float64(procs))
				}
			}
		}
		floors <- Floors{Procs: int(Median(n)), Stat: time.Duration(Median(st)), StatStatus: time.Duration(Median(ss))}
	}()

	var wg sync.WaitGroup
	for _, t := range tools {
		wg.Go(func() {
			for i, k := range []int{c.Warmup, c.Warmup + c.Samples} {
				// at is when the k-th sample began; the reading must come
				// before the next one.
				var at time.Time
				if t.file == "" {
					at = t.proc.Started.Add(time.Duration(k) * interval)
				} else {
					for range k - i*c.Warmup { // the records since the last reading
						select {
						case at = <-t.records:
						case <-t.proc.Done:
							t.err = fmt.Errorf("%s exited early (%v)", t.name, t.proc.Cmd.ProcessState)
							return
						case <-time.After(15 * interval):
							t.err = fmt.Errorf("%s wrote no record in %v (%.1f s after its start)", t.name, 15*interval, time.Since(t.proc.Started).Seconds())
							return
						}
					}
				}
				settle := interval / 2 // the recorder's sample takes well under half an interval
				if t.file != "" {
					settle = interval / 10 // the record is written at the end of the sample
				}
				time.Sleep(time.Until(at.Add(settle)))
				select {
				case <-t.proc.Done:
					t.err = fmt.Errorf("%s exited early (%v)", t.name, t.proc.Cmd.ProcessState)
					return
				default:
				}
				if t.reads[i], t.err = Read(t.cg); t.err != nil {
					return
				}
				if late := t.reads[i].At.Sub(at); late > interval*9/10 {
					t.err = fmt.Errorf("%s: a reading came %v after its sample, too late to be sure of the window (the machine is overloaded)", t.name, late.Round(time.Millisecond))
					return
				}
			}
		})
	}
	wg.Wait()
	for _, t := range tools {
		if t.err != nil {
			return res, t.err
		}
	}

	// The recorder's capture: kill the service's process.
	svcProc.Kill()
	l, err := rec.WaitFor("capture written", 10*time.Second)
	if err != nil {
		return res, err
	}
	res.Floors = <-floors
	for _, t := range tools {
		res.Tools = append(res.Tools, ToolCost{Tool: t.name, Cost: CostBetween(t.reads[0], t.reads[1], c.Samples), HWMKiB: t.reads[1].HWMKiB})
	}
	samples, err := captureSamples(l.Path)
	if err != nil {
		return res, err
	}
	res.Tools[0].CaptureBytes, res.Tools[0].CaptureSamples = l.Bytes, samples
	if c.Progress != nil {
		fmt.Fprintf(c.Progress, "  floors    %7.3f ms stat, %.3f ms stat+status, %d processes\n", ms(res.Floors.Stat), ms(res.Floors.StatStatus), res.Floors.Procs)
		for _, t := range res.Tools {
			fmt.Fprintf(c.Progress, "  %-9s %7.3f ms/sample (stat ticks %.2f) over %v, RSS peak %5.1f MiB, %6.0f B/sample written, %6.0f B/sample to storage\n",
				t.Tool, ms(t.CPUPerSample), t.TicksPerSample, t.Elapsed.Round(time.Millisecond), float64(t.HWMKiB)/1024, t.WcharPerSample, t.StoragePerSample)
		}
	}
	return res, nil
}

// captureSamples counts the samples of the capture file at path (the
// recorder's log line names the file, not its samples).
func captureSamples(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("read the capture: %w", err)
	}
	var c struct {
		Samples []json.RawMessage `json:"samples"`
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return 0, fmt.Errorf("read the capture %s: %w", path, err)
	}
	return len(c.Samples), nil
}
