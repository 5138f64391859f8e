package main

// Reliability and security of the real binary (issue 6): kill -9 and
// SIGTERM during writes, a full or vanished disk, flapping, bad variables,
// a hostile capture directory, redaction end to end, file modes whatever
// the umask. Counts the closing note quotes are logged with t.Logf.

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/preflight-rec/preflight/atomicfile"
	"github.com/preflight-rec/preflight/cgroup/cgrouptest"
	"github.com/preflight-rec/preflight/recorder/capture"
)

// flappingServer answers 200 and 503 in turn, per URL path, so a recorder
// with FAILURE_THRESHOLD=1 that starts on a fresh path writes a capture ~50
// ms after it starts (interval 0.05 s) and a new one every ~100 ms after
// that. hits counts every request.
func flappingServer(t *testing.T) (srv *httptest.Server, hits *atomic.Int64) {
	hits = new(atomic.Int64)
	var mu sync.Mutex
	perPath := map[string]int{}
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		mu.Lock()
		perPath[r.URL.Path]++
		n := perPath[r.URL.Path]
		mu.Unlock()
		if n%2 == 0 {
			w.WriteHeader(503)
		}
	}))
	t.Cleanup(srv.Close)
	return srv, hits
}

// tempFiles returns the names of atomicfile's temporary files in dir.
func tempFiles(dir string) []string {
	des, _ := os.ReadDir(dir)
	var out []string
	for _, de := range des {
		if _, ok := atomicfile.TempTarget(de.Name()); ok {
			out = append(out, de.Name())
		}
	}
	return out
}

// checkCaptures requires every *.json directly in svcDir to be a complete,
// decodable capture, and returns how many there are.
func checkCaptures(svcDir string) (int, error) {
	files, err := filepath.Glob(filepath.Join(svcDir, "*.json"))
	if err != nil {
		return 0, err
	}
	for _, f := range files {
		c, data, err := capture.Read(f)
		if err != nil {
			return 0, fmt.Errorf("%s is not a complete capture: %w\n%.200q", f, err, data)
		}
		if len(c.Triggers) == 0 || len(c.Samples) == 0 || data[len(data)-1] != '\n' {
			return 0, fmt.Errorf("%s: %d triggers, %d samples: not a whole capture", f, len(c.Triggers), len(c.Samples))
		}
	}
	return len(files), nil
}

// readStateFile reads the live state file: nil if there is none; a
// partial one is an error.
func readStateFile(dir, service string) (*capture.State, error) {
	st, err := capture.ReadState(dir, service)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return st, err
}

// TestKill9DuringWrites kills recorders with SIGKILL at random moments
// (fixed seeds) while each writes a capture every ~100 ms: no file under a
// capture name is ever partial, and the next recorder removes the killed
// one's temporary files before it records. Three recorders run side by side
// (services k9-0..2 sharing one directory and its .state), each killed and
// restarted 70 times; every other kill is aimed at a write: a random
// 0-500 µs after its temporary file appears.
func TestKill9DuringWrites(t *testing.T) {
	const workers, iterations, keep = 3, 70, 5
	dir := t.TempDir()
	srv, _ := flappingServer(t) // a fresh path per start

	type counts struct{ started, checked, aimed, midWrite, cleaned int }
	results := make([]counts, workers)
	names := make([]map[string]bool, workers)
	var wg sync.WaitGroup
	for w := range workers {
		names[w] = map[string]bool{}
		wg.Go(func() {
			c := &results[w]
			service := fmt.Sprintf("k9-%d", w)
			svcDir := filepath.Join(dir, service)
			stateDir := filepath.Join(dir, capture.StateDir)
			temps := func() []string {
				var out []string
				for _, n := range tempFiles(svcDir) {
					out = append(out, filepath.Join(svcDir, n))
				}
				for _, n := range tempFiles(stateDir) {
					if target, _ := atomicfile.TempTarget(n); target == service+capture.Ext {
						out = append(out, filepath.Join(stateDir, n))
					}
				}
				return out
			}
			rng := rand.New(rand.NewPCG(6, uint64(w)))
			for i := range iterations {
				before := temps()
				cmd := exec.Command(binary, "start", "--dir", dir)
				cmd.Env = append(cleanEnv(), "PREFLIGHT_SERVICE="+service,
					fmt.Sprintf("PREFLIGHT_HEALTH_URL=%s/%s/%d", srv.URL, service, i),
					"PREFLIGHT_INTERVAL_SECONDS=0.05", "PREFLIGHT_BUFFER_SAMPLES=10", "PREFLIGHT_TOP_PROCESSES=20",
					fmt.Sprintf("PREFLIGHT_KEEP=%d", keep), "PREFLIGHT_LOG_LEVEL=warn")
				var stderr lockedBuffer
				stderr.mu = make(chan struct{}, 1)
				cmd.Stderr = &stderr
				if err := cmd.Start(); err != nil {
					t.Error(err)
					return
				}
				if i%2 == 0 {
					time.Sleep(time.Duration(rng.IntN(150)) * time.Millisecond)
				} else {
					c.aimed++
					waitForTemp(svcDir, 2*time.Second)
					time.Sleep(time.Duration(rng.IntN(500)) * time.Microsecond)
				}
				_ = cmd.Process.Kill()
				err := cmd.Wait()
				if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
					t.Errorf("%s iteration %d: recorder ended with %v before the kill; log:\n%s", service, i, err, stderr.String())
					return
				}

				n, err := checkCaptures(svcDir)
				if err != nil {
					t.Errorf("%s iteration %d: %v", service, i, err)
					return
				}
				c.checked += n
				files, _ := filepath.Glob(filepath.Join(svcDir, "*.json"))
				for _, f := range files {
					names[w][filepath.Base(f)] = true
				}
				if n > keep+1 { // a kill between a rename and its retention pass leaves one more
					t.Errorf("%s iteration %d: %d captures, KEEP is %d", service, i, n, keep)
					return
				}
				st, err := readStateFile(dir, service)
				if err != nil {
					t.Errorf("%s iteration %d: %v", service, i, err)
					return
				}
				if st != nil && st.PID == cmd.Process.Pid {
					// This recorder got as far as recording: it must have
					// removed the killed one's temporary files first.
					c.started++
					for _, p := range before {
						if _, err := os.Lstat(p); err == nil {
							t.Errorf("%s iteration %d: temporary file %s of a killed writer survived a start", service, i, p)
							return
						}
					}
					c.cleaned += len(before)
				} else if st == nil && c.started > 0 {
					t.Errorf("%s iteration %d: the state file is gone", service, i)
					return
				}
				if len(temps()) > 0 {
					c.midWrite++
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}

	// A last, clean start of each removes whatever the last kills left.
	var total counts
	distinct := 0
	for w := range workers {
		service := fmt.Sprintf("k9-%d", w)
		svcDir := filepath.Join(dir, service)
		left := tempFiles(svcDir)
		cmd, log := startRecorder(t, []string{"PREFLIGHT_SERVICE=" + service, "PREFLIGHT_HEALTH_URL=" + srv.URL + "/final/" + service,
			"PREFLIGHT_INTERVAL_SECONDS=5", fmt.Sprintf("PREFLIGHT_KEEP=%d", keep)}, "--dir", dir)
		waitFor(t, 10*time.Second, service+"'s last recorder started", func() bool {
			st, _ := readStateFile(dir, service)
			return st != nil && st.PID == cmd.Process.Pid && st.State == capture.StateHealthy
		})
		for _, name := range left {
			if _, err := os.Lstat(filepath.Join(svcDir, name)); err == nil {
				t.Errorf("temporary file %s survived a start; log:\n%s", name, log)
			}
		}
		n, err := checkCaptures(svcDir)
		if err != nil {
			t.Error(err)
		}
		if n > keep {
			t.Errorf("%s: %d captures after a clean start, KEEP is %d", service, n, keep)
		}
		r := results[w]
		total.started += r.started
		total.checked += r.checked + n
		total.aimed += r.aimed
		total.midWrite += r.midWrite
		total.cleaned += r.cleaned + len(left)
		distinct += len(names[w])
	}
	if distinct < 50 || total.midWrite == 0 {
		t.Errorf("the kills did not exercise the writes: %d distinct captures, %d kills left a temporary file", distinct, total.midWrite)
	}
	t.Logf("kill -9: %d iterations (%d aimed at a write; %d reached recording), %d distinct captures written, "+
		"%d capture files checked complete, %d kills left a writer's temporary file, %d such files removed by the next start",
		workers*iterations, total.aimed, total.started, distinct, total.checked, total.midWrite, total.cleaned)
}

// waitForTemp returns once a temporary file of a capture appears in dir, or
// after within.
func waitForTemp(dir string, within time.Duration) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return
	}
	defer w.Close()
	for w.Add(dir) != nil { // not created yet
		if within -= 5 * time.Millisecond; within <= 0 {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	timeout := time.After(within)
	for {
		select {
		case ev := <-w.Events:
			if target, ok := atomicfile.TempTarget(filepath.Base(ev.Name)); ok && ev.Has(fsnotify.Create) {
				if _, ok := capture.ParseFileName(target); ok {
					return
				}
			}
		case <-w.Errors:
		case <-timeout:
			return
		}
	}
}

// startUmask is startRecorder with the process's umask set first.
func startUmask(t *testing.T, umask string, env []string, args ...string) (*exec.Cmd, *lockedBuffer) {
	t.Helper()
	return startCommand(t, exec.Command("/bin/sh", append([]string{"-c", `umask "$0" && exec "$@"`, umask, binary, "start"}, args...)...), env)
}

// waitState waits until service's state file, written by pid, is in state.
func waitState(t *testing.T, dir, service string, pid int, state string) {
	t.Helper()
	waitFor(t, 10*time.Second, service+" "+state, func() bool {
		st, _ := readStateFile(dir, service)
		return st != nil && st.PID == pid && st.State == state
	})
}

// failOnce turns h unhealthy until a new capture appears in svcDir, then
// healthy again until the recorder has seen it.
func failOnce(t *testing.T, h *healthServer, svcDir string, had int) {
	t.Helper()
	h.status.Store(503)
	waitFor(t, 10*time.Second, "a new capture", func() bool { return len(captures(t, svcDir)) > had })
	h.status.Store(200)
	n := h.hits.Load()
	waitFor(t, 10*time.Second, "healthy again", func() bool { return h.hits.Load() >= n+2 })
}

func perm(t *testing.T, path string) os.FileMode {
	t.Helper()
	st, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Mode().Perm()
}

// TestModesWhateverTheUmask: directories the recorder creates are 0750,
// captures and state files 0640, under umask 0 and 077, also when the
// whole capture directory is removed under it and re-created.
func TestModesWhateverTheUmask(t *testing.T) {
	for _, umask := range []string{"0", "077"} {
		t.Run("umask "+umask, func(t *testing.T) {
			h := newHealthServer(t)
			dir := filepath.Join(t.TempDir(), "captures") // the recorder creates it
			cmd, log := startUmask(t, umask, []string{"PREFLIGHT_SERVICE=m", "PREFLIGHT_HEALTH_URL=" + h.URL,
				"PREFLIGHT_INTERVAL_SECONDS=0.05", "PREFLIGHT_BUFFER_SAMPLES=3"}, "--dir", dir)
			waitState(t, dir, "m", cmd.Process.Pid, capture.StateHealthy)
			svcDir := filepath.Join(dir, "m")
			failOnce(t, h, svcDir, 0)
			// The whole capture directory vanishes; the next capture re-creates it.
			if err := os.RemoveAll(dir); err != nil {
				t.Fatal(err)
			}
			failOnce(t, h, svcDir, 0)
			waitFor(t, 5*time.Second, "the state file back", func() bool {
				_, err := os.Lstat(capture.StatePath(dir, "m"))
				return err == nil
			})
			for path, want := range map[string]os.FileMode{
				dir:                          0o750,
				svcDir:                       0o750,
				filepath.Join(dir, ".state"): 0o750,
				capture.StatePath(dir, "m"):  0o640,
				capture.LockPath(dir, "m"):   0o640,
				captures(t, svcDir)[0]:       0o640,
			} {
				if got := perm(t, path); got != want {
					t.Errorf("%s: mode %v, want %v; log:\n%s", path, got, want, log)
				}
			}
		})
	}
}

// TestFullDisk: a capture directory on a full 512 KiB tmpfs. The failed
// write is logged with its reason, the recorder keeps checking and
// sampling, and the capture lands at a tick once space is freed.
func TestFullDisk(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a tmpfs")
	}
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=512k,mode=0750"); err != nil {
		t.Skipf("cannot mount a tmpfs here: %v", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
			_ = syscall.Unmount(dir, syscall.MNT_DETACH)
		}
	})
	h := newHealthServer(t)
	cmd, log := startRecorder(t, []string{"PREFLIGHT_SERVICE=full", "PREFLIGHT_HEALTH_URL=" + h.URL,
		"PREFLIGHT_INTERVAL_SECONDS=0.05", "PREFLIGHT_BUFFER_SAMPLES=5"}, "--dir", dir)
	waitState(t, dir, "full", cmd.Process.Pid, capture.StateHealthy)

	filler := filepath.Join(dir, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 4096)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("filling the tmpfs: %v", err)
			}
			break
		}
	}
	f.Close()

	h.status.Store(503)
	svcDir := filepath.Join(dir, "full")
	waitFor(t, 5*time.Second, "the failed write logged", func() bool {
		return strings.Contains(log.String(), "failed to write capture, will retry")
	})
	hits := h.hits.Load()
	waitFor(t, 5*time.Second, "checks going on", func() bool { return h.hits.Load() >= hits+5 })
	var failed map[string]any
	for _, line := range strings.Split(log.String(), "\n") {
		if strings.Contains(line, "failed to write capture") {
			if err := json.Unmarshal([]byte(line), &failed); err != nil {
				t.Fatal(err)
			}
			break
		}
	}
	if failed["error"] != "no space left on device" || !strings.HasPrefix(failed["path"].(string), svcDir) || failed["level"] != "error" {
		t.Errorf("the failed write's log line %v should give the reason and the path", failed)
	}
	if n := len(captures(t, svcDir)); n != 0 {
		t.Fatalf("%d captures on a full disk", n)
	}
	if cmd.ProcessState != nil {
		t.Fatal("the recorder exited on a full disk")
	}

	freed := time.Now()
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the capture once space is freed", func() bool { return len(captures(t, svcDir)) == 1 })
	t.Logf("capture landed %v after space was freed", time.Since(freed).Round(time.Millisecond))
	n, err := checkCaptures(svcDir)
	if err != nil || n != 1 {
		t.Fatalf("%d captures: %v", n, err)
	}
	c, _, _ := capture.Read(captures(t, svcDir)[0])
	if c.Triggers[0].Kind != capture.TriggerHealth || c.HealthError != "HTTP 503" {
		t.Errorf("capture triggers %+v, health_error %q", c.Triggers, c.HealthError)
	}
	// The retried capture holds the checks made while the disk was full.
	if last := c.Health[len(c.Health)-1]; last.At.Before(freed.Add(-time.Second)) {
		t.Errorf("the retried capture's last check is from %v, before the disk was freed at %v", last.At, freed)
	}
	if m, _ := filepath.Glob(filepath.Join(svcDir, ".*")); len(m) != 0 {
		t.Errorf("temporary files left on the full disk: %v", m)
	}
}

// TestSIGTERMDuringWrites: SIGTERM at random moments (half of them aimed
// at a capture write) → exit 0, every capture complete, no temporary file
// left, state "stopped".
func TestSIGTERMDuringWrites(t *testing.T) {
	const iterations = 40
	rng := rand.New(rand.NewPCG(6, 6))
	srv, _ := flappingServer(t) // a fresh path per start
	dir := t.TempDir()
	svcDir := filepath.Join(dir, "term")
	checked, aimed := 0, 0
	for i := range iterations {
		cmd := exec.Command(binary, "start", "--dir", dir)
		// GORACE: the race-enabled binary would sleep 1 s at every exit.
		cmd.Env = append(cleanEnv(), "GORACE=atexit_sleep_ms=0", "PREFLIGHT_SERVICE=term", fmt.Sprintf("PREFLIGHT_HEALTH_URL=%s/%d", srv.URL, i),
			"PREFLIGHT_INTERVAL_SECONDS=0.05", "PREFLIGHT_BUFFER_SAMPLES=20", "PREFLIGHT_TOP_PROCESSES=40",
			"PREFLIGHT_KEEP=5", "PREFLIGHT_LOG_LEVEL=warn")
		stderr := &lockedBuffer{mu: make(chan struct{}, 1)}
		cmd.Stderr = stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Signals are handled once the recorder has started recording.
		waitFor(t, 10*time.Second, "recording", func() bool {
			st, _ := readStateFile(dir, "term")
			return st != nil && st.PID == cmd.Process.Pid
		})
		if i%2 == 0 {
			time.Sleep(time.Duration(rng.IntN(150)) * time.Millisecond)
		} else {
			aimed++
			waitForTemp(svcDir, 2*time.Second)
			time.Sleep(time.Duration(rng.IntN(500)) * time.Microsecond)
		}
		_ = cmd.Process.Signal(syscall.SIGTERM)
		if err := cmd.Wait(); err != nil {
			t.Fatalf("iteration %d: exit after SIGTERM: %v; log:\n%s", i, err, stderr)
		}
		n, err := checkCaptures(svcDir)
		if err != nil {
			t.Fatalf("iteration %d: %v", i, err)
		}
		checked += n
		if left := append(tempFiles(svcDir), tempFiles(filepath.Join(dir, capture.StateDir))...); len(left) > 0 {
			t.Fatalf("iteration %d: SIGTERM left temporary files %v", i, left)
		}
		if st, err := readStateFile(dir, "term"); err != nil || st.State != capture.StateStopped {
			t.Fatalf("iteration %d: state %+v, %v; want stopped", i, st, err)
		}
	}
	t.Logf("SIGTERM: %d iterations (%d aimed at a write), all exit 0, %d capture files checked complete", iterations, aimed, checked)
}

// TestFlapping: a health endpoint that flips at every check, 200 flips,
// leaves at most KEEP captures, each one incident with one health trigger,
// and a bounded number of bytes.
func TestFlapping(t *testing.T) {
	const keep, flips = 5, 200
	srv, hits := flappingServer(t)
	dir := t.TempDir()
	svcDir := filepath.Join(dir, "flap")
	_, log := startRecorder(t, []string{"PREFLIGHT_SERVICE=flap", "PREFLIGHT_HEALTH_URL=" + srv.URL,
		"PREFLIGHT_INTERVAL_SECONDS=0.05", "PREFLIGHT_BUFFER_SAMPLES=10", fmt.Sprintf("PREFLIGHT_KEEP=%d", keep)}, "--dir", dir)
	start := time.Now()
	var most, mostBytes int
	for hits.Load() < flips+1 {
		files := captures(t, svcDir)
		most = max(most, len(files))
		size := 0
		for _, f := range files {
			if st, err := os.Stat(f); err == nil {
				size += int(st.Size())
			}
		}
		mostBytes = max(mostBytes, size)
		if time.Since(start) > 60*time.Second {
			t.Fatalf("only %d checks in a minute", hits.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
	elapsed := time.Since(start)
	time.Sleep(100 * time.Millisecond)
	written := strings.Count(log.String(), `"message":"capture written"`)
	n, err := checkCaptures(svcDir)
	if err != nil {
		t.Fatal(err)
	}
	// A reader may see KEEP+1 for the moment between a new capture's
	// rename and the retention pass that follows it.
	if most > keep+1 || n > keep {
		t.Errorf("up to %d captures (now %d), KEEP is %d", most, n, keep)
	}
	const bound = keep << 20 // 1 MiB per capture: ~30x the size of one here
	if mostBytes > bound {
		t.Errorf("captures held up to %d bytes, want at most %d", mostBytes, bound)
	}
	if written < flips/4 {
		t.Errorf("%d captures written for %d flips", written, flips)
	}
	for _, f := range captures(t, svcDir) {
		c, _, _ := capture.Read(f)
		if len(c.Triggers) != 1 || c.Triggers[0].Kind != capture.TriggerHealth || len(c.Samples) > 10+1 || len(c.Health) > 10 {
			t.Errorf("%s: triggers %+v, %d samples, %d checks: want one health incident of at most 11 samples", f, c.Triggers, len(c.Samples), len(c.Health))
		}
	}
	t.Logf("flapping: %d flips in %v, %d captures written, at most %d kept at once (%d bytes), %d checked",
		hits.Load(), elapsed.Round(time.Millisecond), written, most, mostBytes, n)
}

// TestCrashLoopMerges: a service restarting 200 times while unhealthy is
// one incident: one capture, at most 20 triggers recorded, the rest
// counted, samples bounded.
func TestCrashLoopMerges(t *testing.T) {
	const restarts = 200
	cg := cgrouptest.New(t, "preflight-crashloop")
	p := cgrouptest.StartSleep(t)
	cg.Move(t, p.PID)
	h := newHealthServer(t)
	dir := t.TempDir()
	cmd, log := startRecorder(t, []string{"PREFLIGHT_SERVICE=loop", "PREFLIGHT_HEALTH_URL=" + h.URL,
		"PREFLIGHT_INTERVAL_SECONDS=0.1", "PREFLIGHT_BUFFER_SAMPLES=5", "PREFLIGHT_CGROUP=" + cg.Path}, "--dir", dir)
	waitState(t, dir, "loop", cmd.Process.Pid, capture.StateHealthy)
	svcDir := filepath.Join(dir, "loop")
	h.status.Store(503)
	waitFor(t, 5*time.Second, "the health capture", func() bool { return len(captures(t, svcDir)) == 1 })
	for range restarts {
		p.Kill()
		<-p.Done
		p = cgrouptest.StartSleep(t)
		cg.Move(t, p.PID)
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // a tick writes the omitted count
	files := captures(t, svcDir)
	if len(files) != 1 {
		t.Fatalf("%d captures for one incident; log:\n%s", len(files), log)
	}
	c, data, err := capture.Read(files[0])
	if err != nil {
		t.Fatal(err)
	}
	exits := 0
	for _, tr := range c.Triggers[1:] {
		if tr.Kind == capture.TriggerExit {
			exits++
		}
	}
	if c.Triggers[0].Kind != capture.TriggerHealth || len(c.Triggers) != 20 || c.TriggersOmitted == 0 || len(c.Triggers)+c.TriggersOmitted > restarts+1 {
		t.Errorf("triggers: %d recorded (first %s), %d omitted; want health first, 20 recorded, the rest counted", len(c.Triggers), c.Triggers[0].Kind, c.TriggersOmitted)
	}
	if len(c.Samples) > 5+20 {
		t.Errorf("%d samples, want at most BUFFER_SAMPLES + 20", len(c.Samples))
	}
	t.Logf("crash loop: %d restarts → 1 capture of %d bytes, %d triggers recorded (%d exit), %d omitted, %d samples",
		restarts, len(data), len(c.Triggers), exits, c.TriggersOmitted, len(c.Samples))
}

// TestEveryVariableInvalid: every variable of the contract with an invalid
// value (negative, zero, huge, not a number, bad URL scheme, bad name) →
// exit 2 and one line on stderr naming the variable and the value.
func TestEveryVariableInvalid(t *testing.T) {
	long := strings.Repeat("a", 5000)
	bad := map[string][]string{
		"PREFLIGHT_SERVICE": {"..", ".", ".hidden", "a/b", "../x", "/abs", "a b", "x;y", "é", strings.Repeat("s", 129)},
		"PREFLIGHT_HEALTH_URL": {"ftp://127.0.0.1/", "127.0.0.1:80", "http://", "https:///x", "tcp://127.0.0.1",
			"tcp://127.0.0.1:0", "http://127.0.0.1:99999/", "file:///etc/passwd", "unix:///run/x.sock", "javascript:alert(1)"},
		"PREFLIGHT_INTERVAL_SECONDS":  {"-1", "0", "0.01", "86401", "1e9", "1e400", "abc", "NaN", "Inf", "-Inf", "5s"},
		"PREFLIGHT_BUFFER_SAMPLES":    {"-1", "0", "10001", "99999999999999999999", "abc", "2.5"},
		"PREFLIGHT_TIMEOUT_SECONDS":   {"-3", "0.0001", "601", "1e400", "abc", "NaN", "Inf"},
		"PREFLIGHT_FAILURE_THRESHOLD": {"-1", "0", "1001", "abc", "1.5"},
		"PREFLIGHT_CAPTURE_DIR":       {"/" + long},
		"PREFLIGHT_UNIT":              {"a/b.service", "a b.service", "a\tb"},
		"PREFLIGHT_CGROUP":            {"relative/path", "/a/../b", "/a/./b", "/a\nb", "/" + long},
		"PREFLIGHT_KEEP":              {"-1", "0", "100001", "abc"},
		"PREFLIGHT_TOP_PROCESSES":     {"-1", "101", "abc"},
		"PREFLIGHT_LOG_LEVEL":         {"loud", "trace", "0"},
		"PREFLIGHT_JOURNAL_LINES":     {"-1", "1001", "abc", "2.5"},
	}
	tried := 0
	for name, values := range bad {
		for _, value := range values {
			tried++
			shown := value
			if len(shown) > 20 {
				shown = shown[:20] + "…"
			}
			t.Run(name+"="+shown, func(t *testing.T) {
				env := []string{"PREFLIGHT_SERVICE=x", "PREFLIGHT_HEALTH_URL=http://127.0.0.1:9/", "PREFLIGHT_CAPTURE_DIR=" + t.TempDir(),
					"GORACE=atexit_sleep_ms=0", name + "=" + value}
				r := preflight(t, env, "start")
				if r.code != 2 {
					t.Fatalf("exit %d, want 2; stderr %q", r.code, r.stderr)
				}
				if !strings.HasPrefix(r.stderr, "preflight: "+name+": ") || strings.Count(r.stderr, "\n") != 1 || !strings.HasSuffix(r.stderr, "\n") {
					t.Errorf("stderr %q: want one line naming %s", r.stderr, name)
				}
				shown := strings.TrimSuffix(fmt.Sprintf("%q", value)[1:], `"`)
				if f, err := strconv.ParseFloat(value, 64); err == nil && !strings.Contains(r.stderr, shown) {
					shown = strconv.FormatFloat(f, 'g', -1, 64) // 1e9 is shown as 1e+09
				}
				if len(value) < 200 && !strings.Contains(r.stderr, shown) {
					t.Errorf("stderr %q does not show the value %q", r.stderr, value)
				}
			})
		}
	}
	t.Logf("bad values: %d tried, each exit 2 with one line", tried)
}

// TestServiceNamesNeverEscape: a service name that would leave the capture
// directory is refused by start (environment and YAML) and by the readers,
// and nothing is created outside the capture directory.
func TestServiceNamesNeverEscape(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "captures")
	if err := os.Mkdir(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	names := []string{"..", "../escaped", "a/../../escaped", "/tmp/escaped", "./x", ".", ".state", "x/..", "a\\..\\b"}
	for _, name := range names {
		r := preflight(t, []string{"PREFLIGHT_SERVICE=" + name, "PREFLIGHT_HEALTH_URL=http://127.0.0.1:9/", "GORACE=atexit_sleep_ms=0"}, "start", "--dir", dir)
		if r.code != 2 || !strings.HasPrefix(r.stderr, "preflight: PREFLIGHT_SERVICE: ") {
			t.Errorf("PREFLIGHT_SERVICE=%q: exit %d, %q", name, r.code, r.stderr)
		}
		yaml := filepath.Join(root, "p.yaml")
		os.WriteFile(yaml, []byte(fmt.Sprintf("services:\n  - name: %q\n    health_url: http://127.0.0.1:9/\n", name)), 0o600)
		r = preflight(t, []string{"GORACE=atexit_sleep_ms=0"}, "start", "--config", yaml, "--dir", dir)
		if r.code != 2 || !strings.Contains(r.stderr, "p.yaml:2: name") {
			t.Errorf("YAML name %q: exit %d, %q", name, r.code, r.stderr)
		}
		for _, cmd := range []string{"last", "list"} {
			r = preflight(t, nil, cmd, name, "--dir", dir)
			if r.code != 2 || !strings.Contains(r.stderr, "invalid service name") {
				t.Errorf("%s %q: exit %d, %q", cmd, name, r.code, r.stderr)
			}
		}
	}
	for _, d := range []string{root, dir} {
		ents, _ := os.ReadDir(d)
		if len(ents) != map[string]int{root: 2, dir: 0}[d] { // root: captures and p.yaml
			t.Errorf("%s holds %v after refused names", d, ents)
		}
	}
}

// runBounded runs the binary like preflight() but fails the test instead
// of hanging if it blocks (on a FIFO, say) for 10 s.
func runBounded(t *testing.T, env []string, args ...string) result {
	t.Helper()
	done := make(chan result, 1)
	go func() { done <- preflight(t, append(env, "GORACE=atexit_sleep_ms=0"), args...) }()
	select {
	case r := <-done:
		return r
	case <-time.After(10 * time.Second):
		t.Fatalf("preflight %v blocked for 10s", args)
		return result{}
	}
}

func writeCapture(t *testing.T, path, service, host string) {
	t.Helper()
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	data, err := capture.Encode(&capture.Capture{Schema: capture.Schema, Service: service, Host: host, HealthURL: "http://127.0.0.1/",
		TransitionTime: at, HealthError: "HTTP 503", Triggers: []capture.Trigger{{Kind: "health", At: at, Detail: "HTTP 503"}},
		Health: []capture.Check{}, Samples: []capture.Sample{{At: at}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o640); err != nil {
		t.Fatal(err)
	}
}

// TestHostileCaptureDirectory: links, FIFOs, directories named like
// captures and files of another owner in the capture directory. The
// readers never follow a link out of it nor block; the recorder's cleaning
// and retention never remove what is not its own capture, and a link in
// place of a service directory is refused.
func TestHostileCaptureDirectory(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give files another owner")
	}
	const nobody = 65534
	dir, outside := t.TempDir(), t.TempDir()
	svc := filepath.Join(dir, "svc")
	os.Mkdir(svc, 0o750)
	p := func(name string) string { return filepath.Join(svc, name) }
	outsideCapture := filepath.Join(outside, "2030-01-01T00-00-00.000Z.json")
	writeCapture(t, outsideCapture, "svc", "OUTSIDE")
	writeCapture(t, p("2026-01-01T00-00-00.000Z.json"), "svc", "OURS") // the recorder's own, oldest
	writeCapture(t, p("2027-01-01T00-00-00.000Z.json"), "svc", "FOREIGN")
	os.Chown(p("2027-01-01T00-00-00.000Z.json"), nobody, nobody)
	os.WriteFile(p(".2027-01-02T00-00-00.000Z.json123"), []byte("{"), 0o640) // another user's temporary file
	os.Chown(p(".2027-01-02T00-00-00.000Z.json123"), nobody, nobody)
	os.Symlink(filepath.Join(outside, "victim"), p(".2027-01-03T00-00-00.000Z.json456"))
	os.WriteFile(filepath.Join(outside, "victim"), []byte("keep me"), 0o600)
	syscall.Mkfifo(p(".2027-01-04T00-00-00.000Z.json789"), 0o640)
	os.Mkdir(p("2028-01-01T00-00-00.000Z.json"), 0o750)
	os.WriteFile(filepath.Join(p("2028-01-01T00-00-00.000Z.json"), "inside"), nil, 0o640)
	syscall.Mkfifo(p("2029-01-01T00-00-00.000Z.json"), 0o640)
	os.Symlink(outsideCapture, p("2030-01-01T00-00-00.000Z.json"))
	os.Symlink(outside, filepath.Join(dir, "linked")) // a service directory that is a link
	syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o640)
	ents := func(d string) []string {
		des, _ := os.ReadDir(d)
		var out []string
		for _, de := range des {
			out = append(out, de.Name())
		}
		return out
	}
	outsideBefore := ents(outside)

	// Readers.
	r := runBounded(t, nil, "list", "--dir", dir, "--json")
	var listed []struct{ Service string }
	if err := json.Unmarshal([]byte(r.stdout), &listed); r.code != 0 || err != nil || len(listed) != 1 || listed[0].Service != "svc" {
		t.Errorf("list: exit %d, %v, %+v, stderr %q; want svc alone", r.code, err, listed, r.stderr)
	}
	r = runBounded(t, nil, "list", "svc", "--dir", dir)
	if r.code != 0 || strings.Contains(r.stdout, "2028") || strings.Contains(r.stdout, "2029") || strings.Contains(r.stdout, "2030") {
		t.Errorf("list svc: exit %d, lists a non-capture:\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = runBounded(t, nil, "last", "svc", "--dir", dir, "--json")
	if r.code != 0 || !strings.Contains(r.stdout, `"host":"FOREIGN"`) {
		t.Errorf("last svc: exit %d, want the newest regular capture (FOREIGN): %.100s %s", r.code, r.stdout, r.stderr)
	}
	for _, args := range [][]string{{"last", "linked", "--dir", dir}, {"list", "linked", "--dir", dir}} {
		if r := runBounded(t, nil, args...); r.code == 0 || strings.Contains(r.stdout, "OUTSIDE") || strings.Contains(r.stdout, "2030") {
			t.Errorf("%v: exit %d followed the link: %s %s", args, r.code, r.stdout, r.stderr)
		}
	}
	for _, name := range []string{"2029-01-01T00-00-00.000Z.json", "2030-01-01T00-00-00.000Z.json", "2028-01-01T00-00-00.000Z.json"} {
		if r := runBounded(t, nil, "show", p(name), "--json"); r.code != 1 || !strings.Contains(r.stderr, "not a regular file") {
			t.Errorf("show %s: exit %d, %q", name, r.code, r.stderr)
		}
	}

	// The recorder: a link in place of its service directory is refused.
	h := newHealthServer(t)
	r = runBounded(t, []string{"PREFLIGHT_SERVICE=linked", "PREFLIGHT_HEALTH_URL=" + h.URL}, "start", "--dir", dir)
	if r.code != 1 || !strings.Contains(r.stderr, filepath.Join(dir, "linked")) {
		t.Errorf("start with a linked service directory: exit %d, %q", r.code, r.stderr)
	}
	// Its cleaning and retention (KEEP=1) remove only its own files.
	cmd, log := startRecorder(t, []string{"PREFLIGHT_SERVICE=svc", "PREFLIGHT_HEALTH_URL=" + h.URL,
		"PREFLIGHT_INTERVAL_SECONDS=0.05", "PREFLIGHT_KEEP=1"}, "--dir", dir)
	waitState(t, dir, "svc", cmd.Process.Pid, capture.StateHealthy)
	h.status.Store(503)
	planted := ents(svc)
	var got []string // all but the new capture
	others := func() []string {
		var out []string
		for _, n := range ents(svc) {
			if _, ok := capture.ParseFileName(n); !ok || slices.Contains(planted, n) {
				out = append(out, n)
			}
		}
		return out
	}
	waitFor(t, 5*time.Second, "a new capture", func() bool { return len(others()) < len(ents(svc)) })
	// Retention follows the new capture's rename: wait for it (bounded),
	// then look at what is left.
	waitFor(t, 5*time.Second, "the recorder's old capture removed (KEEP=1)", func() bool {
		return !slices.Contains(ents(svc), "2026-01-01T00-00-00.000Z.json")
	})
	got = others()
	want := []string{".2027-01-02T00-00-00.000Z.json123", ".2027-01-03T00-00-00.000Z.json456", ".2027-01-04T00-00-00.000Z.json789",
		"2027-01-01T00-00-00.000Z.json", "2028-01-01T00-00-00.000Z.json", "2029-01-01T00-00-00.000Z.json", "2030-01-01T00-00-00.000Z.json"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("after cleaning and retention (KEEP=1) the directory holds\n%v\nwant\n%v + the new capture (the recorder's old one removed); log:\n%s", got, want, log)
	}
	if after := ents(outside); strings.Join(after, " ") != strings.Join(outsideBefore, " ") {
		t.Errorf("outside the capture directory: %v, was %v", after, outsideBefore)
	}
	if _, err := os.Stat(filepath.Join(p("2028-01-01T00-00-00.000Z.json"), "inside")); err != nil {
		t.Errorf("a directory named like a capture was touched: %v", err)
	}
}

// TestRedactionEndToEnd: a real process in the service's cgroup whose
// command line carries secrets, and whose environment does: none of them
// appears anywhere in the capture, the state file, the log or the report;
// its process objects show the redacted command line. Neither does the
// password of the health URL nor its secret-looking query parameter, in
// those and in 'start --check'.
func TestRedactionEndToEnd(t *testing.T) {
	cg := cgrouptest.New(t, "preflight-redact")
	// Distinctive values, so that their absence means something.
	secrets := []string{"hunter2", "abc-tok-7731", "x-env-4410", "p-url-9920", "envsecret-5521", "basic-pw-3141", "qtok-6262"}
	busy := exec.Command("/bin/sh", "-c", "while :; do :; done", "sh",
		"--password=hunter2", "--token", "abc-tok-7731", "PASSWORD=x-env-4410", "https://u:p-url-9920@h/")
	busy.Env = []string{"PATH=/usr/bin:/bin", "DB_PASSWORD=envsecret-5521"}
	p := cgrouptest.Start(t, busy)
	cg.Move(t, p.PID)
	h := newHealthServer(t)
	dir := t.TempDir()
	// The health URL's password is not the capture's to show either.
	healthURL := strings.Replace(h.URL, "http://", "http://probe:basic-pw-3141@", 1) + "/health?token=qtok-6262&v=1"
	environ := []string{"PREFLIGHT_SERVICE=red", "PREFLIGHT_HEALTH_URL=" + healthURL,
		"PREFLIGHT_INTERVAL_SECONDS=0.1", "PREFLIGHT_BUFFER_SAMPLES=10", "PREFLIGHT_TOP_PROCESSES=10", "PREFLIGHT_CGROUP=" + cg.Path}
	checked := preflight(t, environ, "start", "--check", "--dir", dir)
	if checked.code != 0 || !strings.Contains(checked.stdout, "health_url: http://probe:xxxxx@") {
		t.Fatalf("start --check: exit %d\n%s%s", checked.code, checked.stdout, checked.stderr)
	}
	cmd, log := startRecorder(t, environ, "--dir", dir)
	waitState(t, dir, "red", cmd.Process.Pid, capture.StateHealthy)
	// A few samples with the busy loop's CPU: rates need capture.MinRateWindow
	// after the recorder's start.
	time.Sleep(capture.MinRateWindow + 500*time.Millisecond)
	h.status.Store(503)
	svcDir := filepath.Join(dir, "red")
	waitFor(t, 5*time.Second, "a capture", func() bool { return len(captures(t, svcDir)) == 1 })
	path := captures(t, svcDir)[0]
	c, data, err := capture.Read(path)
	if err != nil {
		t.Fatal(err)
	}
	const want = "/bin/sh -c while :; do :; done sh --password=<redacted> --token <redacted> PASSWORD=<redacted> https://u:<redacted>@h/"
	var inService, inTopCPU, objects int
	for _, s := range c.Samples {
		var lists [][]capture.Process
		lists = append(lists, s.TopCPU, s.TopMemory)
		if s.Service != nil {
			lists = append(lists, s.Service.Processes)
		}
		for i, l := range lists {
			for _, pr := range l {
				if pr.PID != p.PID {
					continue
				}
				objects++
				// The top lists cut command lines to sample.MaxTopCmdline;
				// the service's list keeps them whole.
				cut, isCut := strings.CutSuffix(pr.Cmdline, "…")
				if pr.Cmdline != want && (i == 2 || !isCut || !strings.HasPrefix(want, cut)) {
					t.Errorf("process object cmdline %q, want %q", pr.Cmdline, want)
				}
				switch i {
				case 0:
					inTopCPU++
				case 2:
					inService++
				}
			}
		}
	}
	if want := strings.NewReplacer("basic-pw-3141", "xxxxx", "qtok-6262", "xxxxx").Replace(healthURL); c.HealthURL != want {
		t.Errorf("health_url %q, want %q", c.HealthURL, want)
	}
	if inService == 0 || inTopCPU == 0 {
		t.Errorf("the process is in %d service lists and %d top-CPU lists; want both", inService, inTopCPU)
	}
	state, _ := os.ReadFile(capture.StatePath(dir, "red"))
	report := runBounded(t, nil, "last", "red", "--dir", dir)
	for where, b := range map[string]string{"capture": string(data), "state file": string(state), "log": log.String(), "report": report.stdout,
		"start --check": checked.stdout + checked.stderr} {
		for _, s := range secrets {
			if strings.Contains(b, s) {
				t.Errorf("the %s holds the secret %q", where, s)
			}
		}
	}
	t.Logf("redaction: %d process objects of the secret-bearing process checked, %d bytes of capture free of %d secrets", objects, len(data), len(secrets))
}
