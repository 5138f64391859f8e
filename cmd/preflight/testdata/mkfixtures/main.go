// Command mkfixtures makes the fixture captures of cmd/preflight's reader
// tests with the real recorder: it runs small loopback services that fail
// (in throw-away cgroups, v2 and v1, as root) under 'preflight start', and
// copies each capture into testdata/captures. See ../README.md.
//
//	make build
//	go run ./cmd/preflight/testdata/mkfixtures -preflight bin/preflight -out cmd/preflight/testdata/captures
//
// It ends only the processes it started and removes the cgroups it made.
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/preflight-rec/preflight/recorder/capture"
	"github.com/preflight-rec/preflight/recorder/findings"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "serve" {
		serve(os.Args[2:])
		return
	}
	bin := flag.String("preflight", "bin/preflight", "the preflight binary")
	out := flag.String("out", "cmd/preflight/testdata/captures", "where the fixtures go")
	only := flag.String("only", "", "make only this scenario")
	attempts = flag.Int("attempts", 3, "tries per scenario")
	flag.Parse()
	for _, sc := range scenarios {
		if *only != "" && sc.service != *only {
			continue
		}
		if err := make1(*bin, *out, sc); err != nil {
			fmt.Fprintf(os.Stderr, "mkfixtures: %s: %v\n", sc.service, err)
			os.Exit(1)
		}
	}
}

var attempts *int

// scenario is one failing service.
type scenario struct {
	service  string
	limitMiB int      // v1 memory limit; 0: none
	serve    []string // flags of the service (serve)
	env      []string // PREFLIGHT_* beyond service, URL, cgroup
	settle   time.Duration
	captures int // how many captures to wait for; 0: 1
	// check says what the fixture must show; a machine too busy to make
	// it (a neighbour's compile during "calm") is tried again.
	check func(c *capture.Capture) error
	edit  func(c *capture.Capture)
}

var scenarios = []scenario{
	{
		// Healthy for 2 s, then allocates 2 MiB every 100 ms under a 32 MiB
		// limit until the kernel OOM-kills it.
		service: "oom-drop", limitMiB: 32,
		serve:  []string{"-leak-after", "2s", "-leak-mib", "2", "-tick", "100ms"},
		env:    []string{"PREFLIGHT_INTERVAL_SECONDS=0.25", "PREFLIGHT_BUFFER_SAMPLES=12"},
		settle: 1500 * time.Millisecond,
		check:  firstRule("oom-kill"),
	},
	{
		// Leaks 1 MiB every 200 ms from the start under a 64 MiB limit; turns
		// unhealthy (503) at 50 MiB allocated, and stops there.
		service: "leaky", limitMiB: 64,
		serve:  []string{"-leak-mib", "1", "-tick", "200ms", "-leak-max-mib", "50", "-fail-at-mib", "50"},
		env:    []string{"PREFLIGHT_INTERVAL_SECONDS=0.5", "PREFLIGHT_BUFFER_SAMPLES=20"},
		settle: 600 * time.Millisecond,
		check:  firstRule("memory-limit"),
	},
	{
		// Healthy for 4 s, then HTTP 500; no leak, no load.
		service: "calm",
		serve:   []string{"-fail-after", "4s", "-fail-status", "500"},
		env:     []string{"PREFLIGHT_INTERVAL_SECONDS=0.5", "PREFLIGHT_BUFFER_SAMPLES=10"},
		settle:  600 * time.Millisecond,
		check:   noFindings,
	},
	{
		// Like calm, failing with 507; its disk numbers are then edited to a
		// root filesystem filling up (see edit).
		service: "ledger",
		serve:   []string{"-fail-after", "4s", "-fail-status", "507"},
		env:     []string{"PREFLIGHT_INTERVAL_SECONDS=0.5", "PREFLIGHT_BUFFER_SAMPLES=10"},
		settle:  600 * time.Millisecond,
		check:   noFindings,
		edit:    fillRootDisk,
	},
	{
		// Flaps: healthy 2 s, failing (502) 1 s, again and again: one
		// capture per failure, three of them.
		service: "flappy",
		serve:   []string{"-flap", "2s", "-fail-status", "502"},
		env:     []string{"PREFLIGHT_INTERVAL_SECONDS=0.25", "PREFLIGHT_BUFFER_SAMPLES=4"},
		settle:  300 * time.Millisecond, captures: 3,
		check: noFindings,
	},
	{
		// No memory limit: grows 4 MiB every 100 ms, 503 after 2.5 s, exits
		// with status 1 at 3.5 s (the demo's story).
		service: "balloon",
		serve:   []string{"-leak-mib", "4", "-tick", "100ms", "-fail-after", "2500ms", "-fail-status", "503", "-crash-after", "3500ms"},
		env:     []string{"PREFLIGHT_INTERVAL_SECONDS=0.25", "PREFLIGHT_BUFFER_SAMPLES=12"},
		settle:  1500 * time.Millisecond,
		check:   firstRule("memory-growth"),
	},
}

func firstRule(rule string) func(c *capture.Capture) error {
	return func(c *capture.Capture) error {
		fs := findings.Explain(findings.FromCapture(c), findings.Default)
		if len(fs) == 0 || fs[0].Rule != rule {
			return fmt.Errorf("first finding is not %s: %+v", rule, fs)
		}
		return nil
	}
}

func noFindings(c *capture.Capture) error {
	if fs := findings.Explain(findings.FromCapture(c), findings.Default); len(fs) > 0 {
		return fmt.Errorf("the machine was not calm: %+v", fs)
	}
	return nil
}

// fillRootDisk edits the capture of a calm machine into one whose root
// filesystem fills from 97% to 99.9% over the samples, as a log flood would.
func fillRootDisk(c *capture.Capture) {
	n := len(c.Samples)
	for i := range c.Samples {
		for j := range c.Samples[i].Disks {
			d := &c.Samples[i].Disks[j]
			if d.Mount != "/" {
				continue
			}
			p := 97 + 2.9*float64(i)/float64(max(n-1, 1))
			d.UsedPercent = float64(int(p*100+0.5)) / 100
			d.UsedBytes = uint64(float64(d.TotalBytes) * d.UsedPercent / 100)
		}
	}
}

func make1(bin, outDir string, sc scenario) error {
	for attempt := 1; ; attempt++ {
		cs, err := record(bin, sc)
		if err == nil && sc.check != nil {
			err = sc.check(cs[len(cs)-1])
		}
		if err == nil {
			return save(outDir, cs, sc.edit)
		}
		if attempt == *attempts {
			return err
		}
		fmt.Fprintf(os.Stderr, "mkfixtures: %s: attempt %d: %v; again\n", sc.service, attempt, err)
	}
}

func save(outDir string, cs []*capture.Capture, edit func(*capture.Capture)) error {
	dir := filepath.Join(outDir, cs[0].Service)
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, c := range cs {
		if edit != nil {
			edit(c)
		}
		data, err := capture.Encode(c)
		if err != nil {
			return err
		}
		path := filepath.Join(dir, capture.FileName(c.TransitionTime))
		fmt.Printf("%s (%d samples, triggers %v)\n", path, len(c.Samples), kinds(c))
		if err := os.WriteFile(path, data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

func kinds(c *capture.Capture) []string {
	var k []string
	for _, t := range c.Triggers {
		k = append(k, t.Kind)
	}
	return k
}

// record runs the scenario and returns its captures, oldest first.
func record(bin string, sc scenario) ([]*capture.Capture, error) {
	tmp, err := os.MkdirTemp("", "mkfixtures-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)

	// The service runs as a copy of this program named after it, started
	// inside its cgroup (a shell moves itself in, then execs), so all of its
	// memory is charged there.
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	exe := filepath.Join(tmp, "bin", sc.service)
	if err := copyFile(self, exe); err != nil {
		return nil, err
	}
	cg, err := newCgroup("preflight-fx-"+sc.service, sc.limitMiB)
	defer cg.remove()
	if err != nil {
		return nil, err
	}
	script := `for d in ` + strings.Join(cg.dirs, " ") + `; do echo $$ > $d/cgroup.procs || exit 1; done; exec "$@"`
	svc := exec.Command("/bin/sh", append([]string{"-c", script, "sh", exe, "serve"}, sc.serve...)...)
	svc.Stderr = os.Stderr
	stdout, err := svc.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := svc.Start(); err != nil {
		return nil, err
	}
	done := make(chan struct{})
	go func() { _ = svc.Wait(); close(done) }()
	defer func() {
		_ = svc.Process.Kill() // the service this scenario started
		<-done
	}()
	addr, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		return nil, fmt.Errorf("service did not start: %w", err)
	}

	rec := exec.Command(bin, "start", "--dir", tmp)
	rec.Env = append(os.Environ(), append([]string{
		"PREFLIGHT_SERVICE=" + sc.service,
		"PREFLIGHT_HEALTH_URL=http://" + strings.TrimSpace(addr) + "/health",
		"PREFLIGHT_CGROUP=" + cg.path,
		"PREFLIGHT_UNIT=" + sc.service + ".service",
		"PREFLIGHT_LOG_LEVEL=warn",
	}, sc.env...)...)
	rec.Stderr = os.Stderr
	if err := rec.Start(); err != nil {
		return nil, err
	}
	recDone := make(chan error, 1)
	go func() { recDone <- rec.Wait() }()
	stopRec := func() error {
		_ = rec.Process.Signal(syscall.SIGTERM) // the recorder this scenario started
		select {
		case err := <-recDone:
			return err
		case <-time.After(10 * time.Second):
			_ = rec.Process.Kill()
			<-recDone
			return errors.New("recorder did not stop on SIGTERM")
		}
	}
	want := max(sc.captures, 1)
	var files []string
	deadline := time.Now().Add(60 * time.Second)
	for len(files) < want {
		if time.Now().After(deadline) {
			_ = stopRec()
			return nil, fmt.Errorf("%d captures within 60s, want %d", len(files), want)
		}
		select {
		case err := <-recDone:
			return nil, fmt.Errorf("recorder exited: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
		files, _ = filepath.Glob(filepath.Join(tmp, sc.service, "*.json"))
	}
	time.Sleep(sc.settle)
	if err := stopRec(); err != nil {
		return nil, fmt.Errorf("recorder: %w", err)
	}
	files, _ = filepath.Glob(filepath.Join(tmp, sc.service, "*.json"))
	if len(files) < want {
		return nil, fmt.Errorf("want %d captures, have %v", want, files)
	}
	var cs []*capture.Capture
	for _, f := range files[:want] {
		c, _, err := capture.Read(f)
		if err != nil {
			return nil, err
		}
		cs = append(cs, c)
	}
	return cs, nil
}

// cgroup is a throw-away cgroup in the v2 hierarchy and the v1 memory, cpu,
// cpuacct and pids ones, under one path.
type cgroup struct {
	path string
	dirs []string
}

const cgRoot = "/sys/fs/cgroup"

func newCgroup(name string, limitMiB int) (*cgroup, error) {
	cg := &cgroup{path: "/" + name}
	for _, h := range []string{"unified", "memory", "cpu", "cpuacct", "pids"} {
		if _, err := os.Stat(filepath.Join(cgRoot, h, "cgroup.procs")); err != nil {
			continue
		}
		dir := filepath.Join(cgRoot, h, name)
		if err := os.Mkdir(dir, 0o755); err != nil {
			return cg, err
		}
		cg.dirs = append(cg.dirs, dir)
		if h == "memory" && limitMiB > 0 {
			if err := os.WriteFile(filepath.Join(dir, "memory.limit_in_bytes"), []byte(strconv.Itoa(limitMiB<<20)), 0); err != nil {
				return cg, err
			}
		}
	}
	if len(cg.dirs) == 0 {
		return cg, errors.New("no cgroup hierarchy to make a cgroup in (needs root)")
	}
	return cg, nil
}

func copyFile(src, dst string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, data, 0o755)
}

// remove removes the cgroup; its processes must be gone.
func (cg *cgroup) remove() {
	for _, d := range cg.dirs {
		for i := 0; i < 50; i++ {
			if err := os.Remove(d); err == nil || os.IsNotExist(err) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// serve is a failing service on loopback: it prints its address, then
// serves /health, allocating memory and failing as its flags say.
func serve(args []string) {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	leakAfter := fs.Duration("leak-after", 0, "start leaking after")
	leakMiB := fs.Int("leak-mib", 0, "MiB allocated (and touched) per tick")
	tick := fs.Duration("tick", 100*time.Millisecond, "leak period")
	leakMax := fs.Int("leak-max-mib", 0, "stop leaking at this many MiB (0: never)")
	failAtMiB := fs.Int("fail-at-mib", 0, "fail health checks once this many MiB are allocated")
	failAfter := fs.Duration("fail-after", 0, "fail health checks after this long")
	failStatus := fs.Int("fail-status", 503, "status of a failing health check")
	crashAfter := fs.Duration("crash-after", 0, "exit 1 after this long")
	flap := fs.Duration("flap", 0, "healthy this long, then failing half as long, over and over")
	_ = fs.Parse(args)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(ln.Addr().String())
	start := time.Now()
	var allocated atomic.Int64
	if *leakMiB > 0 {
		go func() {
			var heap [][]byte
			time.Sleep(*leakAfter)
			for range time.Tick(*tick) {
				if *leakMax > 0 && allocated.Load() >= int64(*leakMax) {
					continue
				}
				b := make([]byte, *leakMiB<<20)
				for i := 0; i < len(b); i += 4096 {
					b[i] = 1 // resident, not just reserved
				}
				heap = append(heap, b)
				allocated.Add(int64(*leakMiB))
			}
		}()
	}
	if *crashAfter > 0 {
		time.AfterFunc(*crashAfter, func() {
			fmt.Fprintln(os.Stderr, "service: crashing")
			os.Exit(1)
		})
	}
	http.HandleFunc("/health", func(w http.ResponseWriter, _ *http.Request) {
		up := time.Since(start)
		flapping := *flap > 0 && up%(*flap*3/2) >= *flap
		if flapping || *failAfter > 0 && up > *failAfter || *failAtMiB > 0 && allocated.Load() >= int64(*failAtMiB) {
			http.Error(w, "failing", *failStatus)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	_ = http.Serve(ln, nil)
}
