// Command deaddrop is the end-to-end test's service: a tiny HTTP server that
// the test makes fail on demand, and the client the test uses to poke it
// from inside the test's namespaces (which have no curl).
//
//	deaddrop serve ADDR    serve GET /health (200, or 503 while sick),
//	                       /sick?for=DURATION (503 for that long),
//	                       /eat?mb=N (start a child that allocates N MiB),
//	                       /crash?say=TEXT (print TEXT, then panic)
//	                       /eat?mb=N&self=1 (allocate N MiB in the server itself)
//	deaddrop get URL       GET the URL, print the status; exit 0 on 2xx
//	deaddrop eat MB        raise its own oom_score_adj to 1000, allocate
//	                       and touch MB MiB, then sleep
//
// It is built by packaging/e2e and installed there as dead-drop.service;
// nothing ships it.
package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"sync/atomic"
	"time"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: deaddrop serve ADDR | get URL | eat MB")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "serve":
		err = serve(os.Args[2])
	case "get":
		err = get(os.Args[2])
	case "eat":
		err = eat(os.Args[2])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "deaddrop: %v\n", err)
		os.Exit(1)
	}
}

func serve(addr string) error {
	var sickUntil atomic.Int64 // unix nanoseconds
	mux := http.NewServeMux()
	mux.HandleFunc("/health", func(w http.ResponseWriter, r *http.Request) {
		if time.Now().UnixNano() < sickUntil.Load() {
			http.Error(w, "sick", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/sick", func(w http.ResponseWriter, r *http.Request) {
		d, err := time.ParseDuration(r.URL.Query().Get("for"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		sickUntil.Store(time.Now().Add(d).UnixNano())
		fmt.Fprintf(w, "sick for %s\n", d)
	})
	mux.HandleFunc("/crash", func(w http.ResponseWriter, r *http.Request) {
		fmt.Println(r.URL.Query().Get("say"))
		go panic("dead-drop: crash on request")
	})
	mux.HandleFunc("/eat", func(w http.ResponseWriter, r *http.Request) {
		mb := r.URL.Query().Get("mb")
		n, err := strconv.Atoi(mb)
		if err != nil {
			http.Error(w, "mb: "+err.Error(), http.StatusBadRequest)
			return
		}
		if r.URL.Query().Get("self") != "" {
			go func() { h := allocate(n); eaten.Store(&h) }()
			fmt.Fprintf(w, "eating %d MiB in %d\n", n, os.Getpid())
			return
		}
		self, err := os.Executable()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		cmd := exec.Command(self, "eat", mb)
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Start(); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		go cmd.Wait() // reap it when the kernel kills it
		fmt.Fprintf(w, "eater %d\n", cmd.Process.Pid)
	})
	fmt.Printf("dead-drop listening on %s\n", addr)
	return http.ListenAndServe(addr, mux)
}

func get(url string) error {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	fmt.Printf("%d %s", resp.StatusCode, body)
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return nil
}

// eat allocates mb MiB, then sleeps: past the unit's MemoryMax the kernel
// kills it. It first raises its own oom_score_adj to the most, so that the
// OOM killer picks the eater, never the server that started it (both are
// dead-drop, and a server with a large heap could otherwise outscore an
// eater that has just begun). Raising one's own score needs no privilege.
func eat(mb string) error {
	n, err := strconv.Atoi(mb)
	if err != nil {
		return err
	}
	if err := os.WriteFile("/proc/self/oom_score_adj", []byte("1000"), 0); err != nil {
		return fmt.Errorf("oom_score_adj: %w", err)
	}
	heap := allocate(n)
	fmt.Printf("ate %d MiB\n", len(heap))
	time.Sleep(time.Hour)
	return nil
}

// eaten keeps what the server allocated for /eat?self=1.
var eaten atomic.Pointer[[][]byte]

// allocate allocates n MiB one MiB at a time, touching every page so that
// it is resident.
func allocate(n int) [][]byte {
	heap := make([][]byte, 0, n)
	for range n {
		b := make([]byte, 1<<20)
		for i := 0; i < len(b); i += 4096 {
			b[i] = 1
		}
		heap = append(heap, b)
	}
	return heap
}
