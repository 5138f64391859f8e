package kit

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
)

// LatencyConfig is a run of the exit-trigger latency benchmark.
type LatencyConfig struct {
	Recorder RecorderConfig // Cgroup is set by Latency
	Svc      *Cgroup        // the service's cgroup, empty
	Runs     int
	Settle   time.Duration // after a new process enters the cgroup, before it is killed: the watcher must have seen it
	Progress io.Writer
}

// LatencyResult holds one value per run, each measured from just before
// kill(2) of the cgroup's only process.
type LatencyResult struct {
	Detected []time.Duration // to the watcher's look that saw the cgroup empty (the trigger's "at" in the capture)
	Renamed  []time.Duration // to the capture's name appearing in the directory (inotify IN_MOVED_TO)
	Durable  []time.Duration // to the recorder's "capture written" log line, logged after fsync(file), rename and fsync(dir)
	Bytes    []int
}

// Latency runs one recorder watching cfg.Svc and, Runs times: puts a fresh
// `sleep` into the cgroup, waits Settle, kills it with SIGKILL and times the
// capture. One recorder serves every run: after a capture the benchmark
// waits for its "incident over" (a healthy check that started after the
// trigger), so that each run is a fresh incident with a file of its own.
func Latency(c LatencyConfig) (LatencyResult, error) {
	var res LatencyResult
	c.Recorder.Cgroup = c.Svc.Path
	dir := filepath.Join(c.Recorder.Dir, c.Recorder.Service)

	first, err := Start(exec.Command("sleep", "3600"), c.Svc)
	if err != nil {
		return res, err
	}
	defer first.Stop(0)
	rec, err := StartRecorder(c.Recorder, nil)
	if err != nil {
		return res, err
	}
	defer rec.Stop(10 * time.Second)
	if _, err := rec.WaitFor("recorder started", 10*time.Second); err != nil {
		return res, err
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return res, fmt.Errorf("failed to start inotify: %w", err)
	}
	defer w.Close()
	if err := w.Add(dir); err != nil {
		return res, fmt.Errorf("failed to watch %s: %w", dir, err)
	}
	sleep := first
	for i := range c.Runs {
		if sleep == nil {
			if sleep, err = Start(exec.Command("sleep", "3600"), c.Svc); err != nil {
				return res, err
			}
		}
		time.Sleep(c.Settle)
		drain(w.Events)
		t0 := time.Now()
		sleep.Kill()
		renamed, err := waitCreate(w, 10*time.Second)
		if err != nil {
			return res, fmt.Errorf("run %d: %w", i+1, err)
		}
		l, err := rec.WaitFor("capture written", 10*time.Second)
		if err != nil {
			return res, fmt.Errorf("run %d: %w", i+1, err)
		}
		<-sleep.Done
		sleep = nil
		at, err := firstTrigger(l.Path, "exit")
		if err != nil {
			return res, fmt.Errorf("run %d: %w", i+1, err)
		}
		res.Detected = append(res.Detected, at.Sub(t0))
		res.Renamed = append(res.Renamed, renamed.Sub(t0))
		res.Durable = append(res.Durable, l.Read.Sub(t0))
		res.Bytes = append(res.Bytes, l.Bytes)
		if c.Progress != nil {
			fmt.Fprintf(c.Progress, "  run %2d: detected %6.2f ms, renamed %6.2f ms, durable %6.2f ms\n", i+1,
				ms(at.Sub(t0)), ms(renamed.Sub(t0)), ms(l.Read.Sub(t0)))
		}
		if _, err := rec.WaitFor("incident over", 30*time.Second); err != nil {
			return res, fmt.Errorf("run %d: %w", i+1, err)
		}
	}
	return res, nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func drain(ch <-chan fsnotify.Event) {
	for {
		select {
		case <-ch:
		default:
			return
		}
	}
}

// waitCreate waits for a capture's name to appear: a *.json name that is
// not a hidden temporary file (fsnotify reports IN_MOVED_TO as Create).
func waitCreate(w *fsnotify.Watcher, timeout time.Duration) (time.Time, error) {
	deadline := time.After(timeout)
	for {
		select {
		case e := <-w.Events:
			name := filepath.Base(e.Name)
			if e.Has(fsnotify.Create) && strings.HasSuffix(name, ".json") && !strings.HasPrefix(name, ".") {
				return time.Now(), nil
			}
		case err := <-w.Errors:
			return time.Time{}, fmt.Errorf("failed to watch the capture directory: %w", err)
		case <-deadline:
			return time.Time{}, fmt.Errorf("failed to see a capture appear: %w after %v", ErrTimeout, timeout)
		}
	}
}

// firstTrigger reads a capture and returns its first trigger's time,
// checking its kind.
func firstTrigger(path, kind string) (time.Time, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return time.Time{}, fmt.Errorf("failed to read capture: %w", err)
	}
	var c struct {
		Triggers []struct {
			Kind string    `json:"kind"`
			At   time.Time `json:"at"`
		} `json:"triggers"`
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return time.Time{}, fmt.Errorf("failed to parse capture %s: %w", path, err)
	}
	if len(c.Triggers) == 0 || c.Triggers[0].Kind != kind {
		return time.Time{}, fmt.Errorf("capture %s: triggers %+v, want %s first", path, c.Triggers, kind)
	}
	return c.Triggers[0].At, nil
}
