package health

import (
	"context"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// What covers each pathology of issue 6, item 3 (one check each):
//
//	accepts, never answers      TestCheckHangingServer
//	drips one byte a second     TestCheckDrippingBody
//	a 10 MB body                TestCheckLargeBody (200: OK, at most ~64 KiB read)
//	a redirect loop             TestCheckRedirects
//	a bad TLS certificate       TestCheckTLS
//	connection refused          TestCheckConnectionErrors/refused
//	a name that does not resolve TestCheckConnectionErrors/no_such_host
//
// TestCheckNoLeaks runs 1,000 checks against three of them (healthy, 503,
// hanging). TestPathologiesNoLeaks below runs 1,000 against all seven at
// once and counts goroutines, both ends' connections and the process's
// open file descriptors.

// openFDs counts the test process's open file descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	des, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	return len(des)
}

func TestPathologiesNoLeaks(t *testing.T) {
	const timeout = 300 * time.Millisecond
	hung := startRaw(t, hang)
	drip := startHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100")
		w.WriteHeader(200)
		for range 100 {
			if _, err := w.Write([]byte("x")); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-time.After(time.Second):
			case <-r.Context().Done():
				return
			}
		}
	}), false)
	chunk := make([]byte, 32<<10)
	big := startHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(10<<20))
		w.WriteHeader(503) // a failure with a 10 MB body: the error is the status
		for range (10 << 20) / len(chunk) {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}), false)
	loop := startHTTP(t, http.RedirectHandler("/loop", http.StatusFound), false)
	badTLS := startHTTP(t, status(200), true)

	// The pathologies that end in a timeout get 300 ms; the others 2 s, so
	// that a hundred checks at once on a loaded machine (the race detector,
	// other packages' tests) still reach their own error.
	const long = 2 * time.Second
	cases := []struct {
		name, url string
		timeout   time.Duration
		want      string
	}{
		{"never answers", "http://" + hung.addr + "/", timeout, "timeout after 300ms"},
		{"drips", drip.URL, timeout, "timeout after 300ms"},
		{"10 MB body", big.URL, long, "HTTP 503"},
		{"redirect loop", loop.URL + "/loop", long, "too many redirects"},
		{"bad certificate", badTLS.URL, long, "tls: certificate signed by unknown authority"},
		{"refused", "http://" + closedPort(t) + "/", long, "connection refused"},
		{"does not resolve", "http://preflight-test.invalid/", timeout, "no such host"},
	}
	var read, open atomic.Int64
	checkers := make([]*Checker, len(cases))
	for i, c := range cases {
		checkers[i] = newChecker(t, c.url, c.timeout)
		countDials(checkers[i], &read, &open)
	}

	runtime.GC()
	baseG, baseFD := runtime.NumGoroutine(), openFDs(t)

	const total, batch = 1000, 100
	var failures, slowest atomic.Int64
	var mu sync.Mutex
	seen := make([]map[string]int, len(cases)) // errors seen per case
	for k := range seen {
		seen[k] = map[string]int{}
	}
	for done := 0; done < total; done += batch {
		var wg sync.WaitGroup
		for i := done; i < done+batch && i < total; i++ {
			k := i % len(cases)
			wg.Go(func() {
				start := time.Now()
				got := checkers[k].Check(context.Background())
				took := time.Since(start)
				for {
					s := slowest.Load()
					if int64(took) <= s || slowest.CompareAndSwap(s, int64(took)) {
						break
					}
				}
				// Under load any check may time out: that is a clear error
				// too, within the deadline.
				ok := !got.OK && (got.Error == cases[k].want || got.Error == "timeout after "+formatDuration(cases[k].timeout))
				if !ok || took > cases[k].timeout+bound {
					if failures.Add(1) <= 5 {
						t.Errorf("%s: check = %+v after %v, want %q within %v", cases[k].name, got, took, cases[k].want, cases[k].timeout+bound)
					}
					return
				}
				mu.Lock()
				seen[k][got.Error]++
				mu.Unlock()
			})
		}
		wg.Wait()
	}
	for _, c := range checkers {
		c.Close()
	}

	eventually(t, "client connections closed", func() bool { return open.Load() == 0 })
	for _, s := range []*httpServer{drip, big, loop, badTLS} {
		eventually(t, "server connections closed", func() bool { return s.opened.Load() == s.closed.Load() })
	}
	eventually(t, "hanging server connections closed", func() bool { return hung.accepted.Load() == hung.closed.Load() })
	const slack = 5
	eventually(t, "goroutines back to the start", func() bool { return runtime.NumGoroutine() <= baseG+slack })
	eventually(t, "file descriptors back to the start", func() bool { return openFDs(t) <= baseFD+slack })
	if n := runtime.NumGoroutine(); n > baseG+slack {
		buf := make([]byte, 1<<20)
		t.Logf("goroutines: %d, started with %d\n%s", n, baseG, buf[:runtime.Stack(buf, true)])
	}
	if n := read.Load(); n > int64(total/len(cases)+1)*256<<10 {
		t.Errorf("read %d bytes in all: the 10 MB bodies were not cut", n)
	}
	for k, c := range cases {
		if n := seen[k][c.want]; n < total/len(cases)*9/10 && c.name != "does not resolve" {
			t.Errorf("%s: %q only %d times of %d: %v", c.name, c.want, n, total/len(cases), seen[k])
		}
		t.Logf("%-17s %v", c.name, seen[k])
	}
	t.Logf("%d checks, slowest %v; goroutines %d → %d, fds %d → %d, client read %d bytes",
		total, time.Duration(slowest.Load()).Round(time.Millisecond), baseG, runtime.NumGoroutine(), baseFD, openFDs(t), read.Load())
}
