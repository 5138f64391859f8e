// Command preflight-demo runs preflight against a small service of its own
// that fails, then prints the capture: `make demo`.
//
// The demo service listens on loopback, grows its memory by 4 MiB every
// 100 ms, turns unhealthy (HTTP 503) after about 3 s and crashes 1.5 s later.
// The recorder samples every 0.25 s into a capture directory under demo/.
// As root on a machine with cgroup2, the service runs in a cgroup of its own
// that the recorder is scoped to, so the capture also shows the service's
// processes and the exit; without root it runs without one.
//
//	preflight-demo -preflight bin/preflight -dir demo/captures
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
	"syscall"
	"time"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "serve" {
		serve()
		return
	}
	bin := flag.String("preflight", "bin/preflight", "the preflight binary")
	dir := flag.String("dir", "demo/captures", "capture directory")
	flag.Parse()
	if err := run(*bin, *dir); err != nil {
		fmt.Fprintf(os.Stderr, "preflight-demo: %v\n", err)
		os.Exit(1)
	}
}

// serve is the demo service.
func serve() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(ln.Addr().String())
	start := time.Now()
	var heap [][]byte
	go func() {
		for range time.Tick(100 * time.Millisecond) {
			b := make([]byte, 4<<20)
			for i := 0; i < len(b); i += 4096 {
				b[i] = 1 // touch every page: resident, not just reserved
			}
			heap = append(heap, b)
			if time.Since(start) > 4500*time.Millisecond {
				fmt.Fprintln(os.Stderr, "demo service: out of memory budget, crashing")
				os.Exit(1)
			}
		}
	}()
	http.HandleFunc("/health", func(w http.ResponseWriter, _ *http.Request) {
		if time.Since(start) > 3*time.Second {
			http.Error(w, "memory budget exceeded", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	_ = http.Serve(ln, nil)
}

func run(bin, dir string) error {
	if _, err := os.Stat(bin); err != nil {
		return fmt.Errorf("no preflight binary at %s (run 'make build')", bin)
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	svc := exec.Command(self, "serve")
	svc.Stderr = os.Stderr
	out, err := svc.StdoutPipe()
	if err != nil {
		return err
	}
	if err := svc.Start(); err != nil {
		return fmt.Errorf("failed to start the demo service: %w", err)
	}
	exited := make(chan struct{})
	cleanup := func() {}
	defer func() {
		_ = svc.Process.Kill() // ends only the service this demo started
		<-exited
		cleanup()
	}()
	addr, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		go func() { _ = svc.Wait(); close(exited) }()
		return fmt.Errorf("demo service did not start: %w", err)
	}
	addr = strings.TrimSpace(addr)
	go func() { _ = svc.Wait(); close(exited) }()
	fmt.Printf("demo service (pid %d) on http://%s/health: grows its memory, fails after ~3s, crashes after ~4.5s\n", svc.Process.Pid, addr)

	env := append(os.Environ(),
		"PREFLIGHT_SERVICE=demo",
		"PREFLIGHT_HEALTH_URL=http://"+addr+"/health",
		"PREFLIGHT_INTERVAL_SECONDS=0.25",
		"PREFLIGHT_BUFFER_SAMPLES=12",
		"PREFLIGHT_UNIT=preflight-demo.service",
	)
	if cg, undo, err := demoCgroup(svc.Process.Pid); err != nil {
		fmt.Printf("running without a cgroup for the service (%v)\n", err)
	} else {
		cleanup = undo
		env = append(env, "PREFLIGHT_CGROUP="+cg)
		fmt.Printf("demo service in cgroup %s\n", cg)
	}

	if err := os.MkdirAll(dir, 0o750); err != nil {
		return err
	}
	logPath := filepath.Join(filepath.Dir(dir), "recorder.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logf.Close()
	rec := exec.Command(bin, "start", "--dir", dir)
	rec.Env = env
	rec.Stderr = logf
	if err := rec.Start(); err != nil {
		return fmt.Errorf("failed to start the recorder: %w", err)
	}
	fmt.Printf("recorder (pid %d) sampling every 0.25s, logging to %s\n", rec.Process.Pid, logPath)

	// Wait for the service to crash, then give the recorder a moment to
	// add the exit to the capture.
	select {
	case <-exited:
		time.Sleep(700 * time.Millisecond)
	case <-time.After(30 * time.Second):
		fmt.Println("demo service did not crash within 30s")
	}
	_ = rec.Process.Signal(syscall.SIGTERM)
	if err := rec.Wait(); err != nil {
		return fmt.Errorf("recorder exited with %v (see %s)", err, logPath)
	}
	fmt.Printf("\n$ preflight last demo --dir %s\n\n", dir)
	last := exec.Command(bin, "last", "demo", "--dir", dir)
	last.Stdout, last.Stderr = os.Stdout, os.Stderr
	return last.Run()
}

// demoCgroup puts pid into a cgroup of its own (cgroup2, plus the v1 memory
// hierarchy where it exists), for root on a machine that allows it.
func demoCgroup(pid int) (string, func(), error) {
	if os.Geteuid() != 0 {
		return "", nil, errors.New("not root")
	}
	name := "/preflight-demo-" + strconv.Itoa(os.Getpid())
	var made []string
	cleanup := func() {
		for i := len(made) - 1; i >= 0; i-- {
			for range 50 { // the killed service leaves the cgroup a moment later
				if err := os.Remove(made[i]); err == nil || errors.Is(err, os.ErrNotExist) {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
	}
	for _, root := range []string{"/sys/fs/cgroup/unified", "/sys/fs/cgroup/memory", "/sys/fs/cgroup"} {
		if _, err := os.Stat(filepath.Join(root, "cgroup.procs")); err != nil {
			continue
		}
		if root == "/sys/fs/cgroup" && len(made) > 0 {
			break // hybrid: the unified hierarchy is enough for cgroup2
		}
		d := root + name
		if err := os.Mkdir(d, 0o755); err != nil {
			continue
		}
		made = append(made, d)
		if err := os.WriteFile(filepath.Join(d, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0); err != nil {
			cleanup()
			return "", nil, err
		}
	}
	if len(made) == 0 {
		return "", nil, errors.New("no writable cgroup hierarchy")
	}
	return name, cleanup, nil
}
