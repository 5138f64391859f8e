package health

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/preflight-rec/preflight/recorder/capture"
)

// bound is the generous correctness bound on how far past its timeout a
// check may return (not a performance assertion).
const bound = 2 * time.Second

// ---- servers ----

// httpServer is an httptest server that counts connections opened and closed.
type httpServer struct {
	*httptest.Server
	opened, closed atomic.Int64
}

func startHTTP(t *testing.T, h http.Handler, useTLS bool) *httpServer {
	t.Helper()
	s := &httpServer{Server: httptest.NewUnstartedServer(h)}
	s.Config.ErrorLog = log.New(io.Discard, "", 0) // TLS handshake and broken-pipe noise
	s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		switch st {
		case http.StateNew:
			s.opened.Add(1)
		case http.StateClosed, http.StateHijacked:
			s.closed.Add(1)
		}
	}
	if useTLS {
		s.StartTLS()
	} else {
		s.Start()
	}
	t.Cleanup(s.Close)
	return s
}

func status(code int) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(code) })
}

// rawServer is a loopback TCP server running handle on every connection; it
// counts connections accepted and connections whose handler has returned.
type rawServer struct {
	addr             string
	accepted, closed atomic.Int64
}

func startRaw(t *testing.T, handle func(net.Conn)) *rawServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &rawServer{addr: ln.Addr().String()}
	var (
		mu    sync.Mutex
		conns = map[net.Conn]bool{}
		wg    sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.accepted.Add(1)
			mu.Lock()
			conns[c] = true
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				handle(c)
				c.Close()
				mu.Lock()
				delete(conns, c)
				mu.Unlock()
				s.closed.Add(1)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return s
}

// hang accepts and never answers; it returns when the client closes.
func hang(c net.Conn) { io.Copy(io.Discard, c) }

// readHead reads an HTTP request head from c.
func readHead(c net.Conn) {
	r := bufio.NewReader(c)
	for {
		line, err := r.ReadString('\n')
		if err != nil || line == "\r\n" {
			return
		}
	}
}

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// ---- helpers ----

func newChecker(t *testing.T, rawURL string, timeout time.Duration) *Checker {
	t.Helper()
	c, err := New(rawURL, timeout)
	if err != nil {
		t.Fatalf("New(%q): %v", rawURL, err)
	}
	t.Cleanup(c.Close)
	return c
}

func check(t *testing.T, rawURL string, timeout time.Duration) capture.Check {
	t.Helper()
	return newChecker(t, rawURL, timeout).Check(context.Background())
}

func wantOK(t *testing.T, got capture.Check, code int) {
	t.Helper()
	if !got.OK || got.Error != "" || got.StatusCode != code {
		t.Errorf("check = %+v, want OK with status %d", got, code)
	}
}

func wantFail(t *testing.T, got capture.Check, code int, msg string) {
	t.Helper()
	if got.OK || got.Error != msg || got.StatusCode != code {
		t.Errorf("check = %+v, want failure %q with status %d", got, msg, code)
	}
}

// eventually polls cond for up to 5 seconds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Errorf("gave up waiting: %s", what)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// countConn counts bytes read and whether it was closed.
type countConn struct {
	net.Conn
	read   *atomic.Int64
	open   *atomic.Int64
	closed atomic.Bool
}

func (c *countConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.read.Add(int64(n))
	return n, err
}

func (c *countConn) Close() error {
	if c.closed.CompareAndSwap(false, true) {
		c.open.Add(-1)
	}
	return c.Conn.Close()
}

// countDials makes c's HTTP connections count bytes read and connections
// still open into read and open.
func countDials(c *Checker, read, open *atomic.Int64) {
	c.transport.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := c.dialer.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		open.Add(1)
		return &countConn{Conn: conn, read: read, open: open}, nil
	}
}

// ---- New ----

func TestNewInvalid(t *testing.T) {
	tests := []struct{ url, want string }{
		{"", "empty health URL"},
		{"ftp://example.com/x", `invalid health URL "ftp://example.com/x": unsupported scheme "ftp" (want http, https or tcp)`},
		{"http:///health", `invalid health URL "http:///health": no host`},
		{"http://:8080/health", `invalid health URL "http://:8080/health": no host`},
		{"https:example.com", `invalid health URL "https:example.com": no host`},
		{"tcp://127.0.0.1", `invalid health URL "tcp://127.0.0.1": tcp URL needs a port (tcp://host:port)`},
		{"tcp://127.0.0.1:5432/health", `invalid health URL "tcp://127.0.0.1:5432/health": tcp URL takes no path, got "/health"`},
		{"tcp://127.0.0.1:5432?x=1", `invalid health URL "tcp://127.0.0.1:5432?x=1": tcp URL takes only host:port`},
		{"tcp://:5432", `invalid health URL "tcp://:5432": no host`},
		{"http://127.0.0.1:99999/", `invalid health URL "http://127.0.0.1:99999/": port "99999" out of range 1-65535`},
		{"tcp://127.0.0.1:0", `invalid health URL "tcp://127.0.0.1:0": port "0" out of range 1-65535`},
		{"http://127.0.0.1:abc/", `invalid health URL "http://127.0.0.1:abc/": invalid port ":abc" after host`},
		{"localhost:8080", `invalid health URL "localhost:8080": unsupported scheme "localhost" (want http, https or tcp)`},
		{"not a url", `invalid health URL "not a url": no scheme (want http, https or tcp)`},
		{"::::", `invalid health URL "::::": missing protocol scheme`},
		{"http://user:hunter2@:80/", `invalid health URL "http://user:xxxxx@:80/": no host`},
		{"http://user:hunter2@host:abc/", `invalid health URL "http://user:xxxxx@host:abc/": invalid port`},
		{"http://host:abc/h?token=hunter2&v=1", `invalid health URL "http://host:abc/h?token=xxxxx&v=1": invalid port`},
		{"ftp://host/h?api_key=hunter2", `invalid health URL "ftp://host/h?api_key=xxxxx": unsupported scheme`},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			c, err := New(tt.url, time.Second)
			if err == nil {
				t.Fatalf("New(%q) = %+v, want error", tt.url, c)
			}
			if !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("New(%q) error = %q, want prefix %q", tt.url, err, tt.want)
			}
		})
	}
}

func TestShownURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"http://127.0.0.1/health", "http://127.0.0.1/health"},
		{"http://user@host/", "http://user@host/"},
		{"http://user:pw@host/", "http://user:xxxxx@host/"},
		{"https://user:p@ss:w@rd@host:1/x@y", "https://user:xxxxx@host:1/x@y"},
		{"http://host/path?u=a:b@c", "http://host/path?u=a:b@c"},
		{"not a url", "not a url"},
		{"http://h/health?token=s3cr3t&verbose=1", "http://h/health?token=xxxxx&verbose=1"},
		{"https://u:pw@h/health?api_key=k", "https://u:xxxxx@h/health?api_key=xxxxx"},
		{"http://127.0.0.1:8080/health", "http://127.0.0.1:8080/health"},
		{"http://user:hunter2@127.0.0.1/x?a=b", "http://user:xxxxx@127.0.0.1/x?a=b"},
		{"https://u:p%40ss@h.internal:8443/health", "https://u:xxxxx@h.internal:8443/health"},
		{"tcp://127.0.0.1:5432", "tcp://127.0.0.1:5432"},
		{"HTTP://Host/", "HTTP://Host/"},
	}
	for _, tt := range tests {
		if got := ShownURL(tt.in); got != tt.want {
			t.Errorf("ShownURL(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestNewValid(t *testing.T) {
	for _, u := range []string{
		"http://127.0.0.1/health",
		"http://localhost:8080",
		"HTTPS://svc.internal:8443/health?full=1",
		"http://[::1]:8080/",
		"tcp://127.0.0.1:5432",
		"tcp://localhost:5432/",
		"tcp://[::1]:5432",
	} {
		c, err := New(u, time.Second)
		if err != nil {
			t.Errorf("New(%q): %v", u, err)
			continue
		}
		c.Close()
	}
}

func TestNewTimeout(t *testing.T) {
	for _, d := range []time.Duration{0, -time.Second} {
		if _, err := New("http://127.0.0.1/", d); err == nil {
			t.Errorf("New with timeout %v: want error", d)
		}
	}
}

// ---- HTTP ----

func TestCheckOK(t *testing.T) {
	var ua atomic.Value
	var closeReq atomic.Bool
	srv := startHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ua.Store(r.UserAgent())
		closeReq.Store(r.Close)
		io.WriteString(w, "ok\n")
	}), false)
	c := newChecker(t, srv.URL+"/health", 2*time.Second)
	if c.transport.Proxy != nil {
		t.Error("transport uses a proxy")
	}

	before := time.Now()
	got := c.Check(context.Background())
	after := time.Now()
	wantOK(t, got, 200)
	if got.At.Location() != time.UTC {
		t.Errorf("At %v is not UTC", got.At)
	}
	if got.At.Before(before.Truncate(time.Microsecond)) || got.At.After(after) {
		t.Errorf("At %v not within [%v, %v]", got.At, before, after)
	}
	if got.LatencyMS <= 0 || got.LatencyMS > float64(after.Sub(before))/1e6+0.001 {
		t.Errorf("LatencyMS = %v, want in (0, %v]", got.LatencyMS, after.Sub(before))
	}
	if ua.Load() != "preflight/health" {
		t.Errorf("User-Agent = %q", ua.Load())
	}
	if !closeReq.Load() {
		t.Error("request did not ask to close the connection")
	}

	// Every check is a fresh connection, closed afterwards.
	wantOK(t, c.Check(context.Background()), 200)
	eventually(t, "server connections closed", func() bool { return srv.closed.Load() == 2 })
	if n := srv.opened.Load(); n != 2 {
		t.Errorf("server saw %d connections for 2 checks, want 2", n)
	}
}

func TestCheckStatus(t *testing.T) {
	mux := http.NewServeMux()
	mux.Handle("/204", status(204))
	mux.Handle("/304", status(304))
	mux.Handle("/302-no-location", status(302))
	mux.Handle("/404", status(404))
	mux.Handle("/503", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(503)
		io.WriteString(w, "down for maintenance\n")
	}))
	mux.Handle("/199", status(199)) // informational: the client waits for a final status
	mux.Handle("/old", http.RedirectHandler("/new", http.StatusMovedPermanently))
	mux.Handle("/new", status(200))
	mux.Handle("/to-503", http.RedirectHandler("/503", http.StatusFound))
	srv := startHTTP(t, mux, false)

	tests := []struct {
		path string
		code int
		err  string
	}{
		{"/204", 204, ""},
		{"/304", 304, ""},
		{"/302-no-location", 302, ""}, // a 3xx that is not followed counts as its status
		{"/old", 200, ""},             // 301 followed: the final status counts
		{"/404", 404, "HTTP 404"},
		{"/503", 503, "HTTP 503"},
		{"/to-503", 503, "HTTP 503"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			got := check(t, srv.URL+tt.path, 2*time.Second)
			if tt.err == "" {
				wantOK(t, got, tt.code)
			} else {
				wantFail(t, got, tt.code, tt.err)
			}
		})
	}
}

func TestCheckRedirects(t *testing.T) {
	mux := http.NewServeMux()
	// /chain/N redirects N more times, then answers 200.
	mux.HandleFunc("/chain/{n}", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.PathValue("n"))
		if n == 0 {
			if r.UserAgent() != userAgent {
				w.WriteHeader(400)
			}
			return
		}
		http.Redirect(w, r, "/chain/"+strconv.Itoa(n-1), http.StatusFound)
	})
	mux.Handle("/loop", http.RedirectHandler("/loop", http.StatusFound))
	srv := startHTTP(t, mux, false)

	wantOK(t, check(t, srv.URL+"/chain/5", 2*time.Second), 200)
	wantFail(t, check(t, srv.URL+"/chain/6", 2*time.Second), 302, "too many redirects")
	wantFail(t, check(t, srv.URL+"/loop", 2*time.Second), 302, "too many redirects")
}

// A failed check's error never quotes the URL, nor a redirect's: its
// secrets stay out of captures and logs whatever goes wrong.
func TestCheckErrorsHideURLSecrets(t *testing.T) {
	const secret = "s3cr3t-tok"
	mux := http.NewServeMux()
	mux.Handle("/loop", http.RedirectHandler("/loop?token="+secret, http.StatusFound))
	mux.Handle("/ftp", http.RedirectHandler("ftp://127.0.0.1/x?token="+secret, http.StatusFound))
	mux.Handle("/bad", http.RedirectHandler("http://127.0.0.1:abc/?token="+secret, http.StatusFound))
	mux.Handle("/503", status(503))
	srv := startHTTP(t, mux, false)
	for _, url := range []string{
		srv.URL + "/loop?token=" + secret,
		srv.URL + "/ftp?token=" + secret,
		srv.URL + "/bad?token=" + secret,
		srv.URL + "/503?token=" + secret,
		"http://u:" + secret + "@" + closedPort(t) + "/?api_key=" + secret,
		"http://" + closedPort(t) + "/?token=" + secret,
	} {
		c := check(t, url, 2*time.Second)
		if c.OK || c.Error == "" {
			t.Errorf("%s: want a failed check, got %+v", ShownURL(url), c)
		}
		if strings.Contains(c.Error, secret) {
			t.Errorf("%s: the check's error quotes a secret: %q", ShownURL(url), c.Error)
		}
	}
}

func TestCheckHangingServer(t *testing.T) {
	srv := startRaw(t, hang)
	const timeout = 300 * time.Millisecond
	start := time.Now()
	got := check(t, "http://"+srv.addr+"/health", timeout)
	elapsed := time.Since(start)
	wantFail(t, got, 0, "timeout after 300ms")
	if elapsed > timeout+bound {
		t.Errorf("check took %v, want < %v", elapsed, timeout+bound)
	}
	if got.LatencyMS < 300 {
		t.Errorf("LatencyMS = %v, want >= 300 (the check cannot time out early)", got.LatencyMS)
	}
	eventually(t, "server saw the connection closed", func() bool {
		return srv.accepted.Load() == 1 && srv.closed.Load() == 1
	})
}

func TestCheckDrippingBody(t *testing.T) {
	srv := startHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100")
		w.WriteHeader(200)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for range 100 {
			if _, err := w.Write([]byte("x")); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-tick.C:
			case <-r.Context().Done():
				return
			}
		}
	}), false)
	const timeout = 300 * time.Millisecond
	start := time.Now()
	got := check(t, srv.URL, timeout)
	if elapsed := time.Since(start); elapsed > timeout+bound {
		t.Errorf("check took %v, want < %v", elapsed, timeout+bound)
	}
	wantFail(t, got, 200, "timeout after 300ms")
}

func TestCheckLargeBody(t *testing.T) {
	chunk := make([]byte, 32<<10)
	mux := http.NewServeMux()
	mux.HandleFunc("/10mb", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(10<<20))
		for range (10 << 20) / len(chunk) {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	})
	mux.HandleFunc("/endless", func(w http.ResponseWriter, _ *http.Request) {
		for {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	})
	srv := startHTTP(t, mux, false)

	for _, path := range []string{"/10mb", "/endless"} {
		t.Run(path, func(t *testing.T) {
			c := newChecker(t, srv.URL+path, 5*time.Second)
			var read, open atomic.Int64
			countDials(c, &read, &open)
			wantOK(t, c.Check(context.Background()), 200)
			// The body is cut at 64 KiB; allow for headers and buffering.
			if n := read.Load(); n > 256<<10 {
				t.Errorf("client read %d bytes, want at most ~64 KiB", n)
			}
			eventually(t, "client connection closed", func() bool { return open.Load() == 0 })
		})
	}
}

func TestCheckTLS(t *testing.T) {
	srv := startHTTP(t, status(200), true)

	t.Run("untrusted", func(t *testing.T) {
		got := check(t, srv.URL, 2*time.Second)
		wantFail(t, got, 0, "tls: certificate signed by unknown authority")
	})

	trust := func(c *Checker) {
		pool := x509.NewCertPool()
		pool.AddCert(srv.Certificate())
		c.transport.TLSClientConfig = &tls.Config{RootCAs: pool}
	}
	t.Run("trusted", func(t *testing.T) {
		c := newChecker(t, srv.URL, 2*time.Second)
		trust(c)
		wantOK(t, c.Check(context.Background()), 200)
	})
	t.Run("wrong name", func(t *testing.T) {
		c := newChecker(t, strings.Replace(srv.URL, "127.0.0.1", "localhost", 1), 2*time.Second)
		trust(c)
		got := c.Check(context.Background())
		if got.OK || !strings.HasPrefix(got.Error, "tls: certificate is valid for ") || !strings.HasSuffix(got.Error, ", not localhost") {
			t.Errorf("check = %+v, want a tls name mismatch", got)
		}
	})
	t.Run("plain HTTP server", func(t *testing.T) {
		plain := startHTTP(t, status(200), false)
		got := check(t, strings.Replace(plain.URL, "http://", "https://", 1), 2*time.Second)
		wantFail(t, got, 0, "tls: server gave HTTP response to HTTPS client")
	})
	t.Run("not HTTP at all", func(t *testing.T) {
		raw := startRaw(t, func(c net.Conn) { io.WriteString(c, "SSH-2.0-OpenSSH_9.2\r\n") })
		got := check(t, "https://"+raw.addr+"/", 2*time.Second)
		wantFail(t, got, 0, "tls: first record does not look like a TLS handshake")
	})
}

func TestCheckConnectionErrors(t *testing.T) {
	tests := []struct {
		name   string
		handle func(net.Conn)
		code   int
		want   string
	}{
		{"closed before response", func(c net.Conn) { readHead(c) }, 0, "connection closed before response"},
		{"reset", func(c net.Conn) {
			readHead(c)
			c.(*net.TCPConn).SetLinger(0)
		}, 0, "connection reset"},
		{"truncated body", func(c net.Conn) {
			readHead(c)
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789")
		}, 200, "connection closed before end of body"},
		{"not HTTP", func(c net.Conn) {
			readHead(c)
			io.WriteString(c, "SSH-2.0-OpenSSH_9.2\r\n")
		}, 0, `malformed HTTP response "SSH-2.0-OpenSSH_9.2"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startRaw(t, tt.handle)
			wantFail(t, check(t, "http://"+srv.addr+"/", 2*time.Second), tt.code, tt.want)
		})
	}

	t.Run("refused", func(t *testing.T) {
		wantFail(t, check(t, "http://"+closedPort(t)+"/health", 2*time.Second), 0, "connection refused")
	})
	t.Run("no such host", func(t *testing.T) {
		got := check(t, "http://preflight-test.invalid/", 2*time.Second)
		if got.OK || (got.Error != "no such host" && got.Error != "timeout after 2s") {
			t.Errorf("check = %+v, want no such host (or a resolver timeout)", got)
		}
	})
}

func TestCheckCanceled(t *testing.T) {
	srv := startRaw(t, hang)
	c := newChecker(t, "http://"+srv.addr+"/", time.Minute)

	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	got := c.Check(ctx)
	if elapsed := time.Since(start); elapsed > bound {
		t.Errorf("canceled check took %v", elapsed)
	}
	wantFail(t, got, 0, "canceled")

	// The caller's deadline is not the check's timeout.
	ctx, cancel = context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	wantFail(t, c.Check(ctx), 0, "canceled")
}

// ---- tcp ----

func TestCheckTCP(t *testing.T) {
	srv := startRaw(t, hang)
	got := check(t, "tcp://"+srv.addr, 2*time.Second)
	wantOK(t, got, 0)
	if got.LatencyMS <= 0 {
		t.Errorf("LatencyMS = %v, want > 0", got.LatencyMS)
	}
	eventually(t, "server saw the connection closed", func() bool {
		return srv.accepted.Load() == 1 && srv.closed.Load() == 1
	})

	wantFail(t, check(t, "tcp://"+closedPort(t), 2*time.Second), 0, "connection refused")
}

// ---- leaks ----

func TestCheckNoLeaks(t *testing.T) {
	ok := startHTTP(t, status(200), false)
	down := startHTTP(t, status(503), false)
	hung := startRaw(t, hang)

	// The answering servers get a deadline no loaded machine reaches (this
	// test is about leaks, not speed); the hanging one a short one, so
	// that its checks all end in a timeout.
	const timeout, answered = 200 * time.Millisecond, 10 * time.Second
	var read, open atomic.Int64
	checkers := []*Checker{
		newChecker(t, ok.URL, answered),
		newChecker(t, down.URL, answered),
		newChecker(t, "http://"+hung.addr+"/", timeout),
	}
	for _, c := range checkers {
		countDials(c, &read, &open)
	}
	want := []string{"", "HTTP 503", "timeout after 200ms"}

	runtime.GC()
	base := runtime.NumGoroutine()

	const total, batch = 1000, 100
	var failures atomic.Int64
	for done := 0; done < total; done += batch {
		var wg sync.WaitGroup
		for i := done; i < done+batch && i < total; i++ {
			wg.Go(func() {
				got := checkers[i%3].Check(context.Background())
				if got.Error != want[i%3] && failures.Add(1) <= 5 {
					t.Errorf("check %d = %+v, want error %q", i, got, want[i%3])
				}
			})
		}
		wg.Wait()
	}
	for _, c := range checkers {
		c.Close()
	}

	eventually(t, "client connections closed", func() bool { return open.Load() == 0 })
	eventually(t, "ok server connections closed", func() bool { return ok.opened.Load() == ok.closed.Load() })
	eventually(t, "503 server connections closed", func() bool { return down.opened.Load() == down.closed.Load() })
	eventually(t, "hanging server connections closed", func() bool { return hung.accepted.Load() == hung.closed.Load() })
	const slack = 5
	eventually(t, "goroutines back to the start", func() bool { return runtime.NumGoroutine() <= base+slack })
	if n := runtime.NumGoroutine(); n > base+slack {
		buf := make([]byte, 1<<20)
		t.Logf("goroutines: %d, started with %d\n%s", n, base, buf[:runtime.Stack(buf, true)])
	}
	t.Logf("servers saw %d + %d + %d connections", ok.opened.Load(), down.opened.Load(), hung.accepted.Load())
}

// ---- benchmarks ----

func BenchmarkCheckOK(b *testing.B) {
	srv := httptest.NewServer(status(200))
	defer srv.Close()
	benchCheck(b, srv.URL)
}

func BenchmarkCheckTCP(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	benchCheck(b, "tcp://"+ln.Addr().String())
}

// benchCheck measures Check of a healthy url.
func benchCheck(b *testing.B, url string) {
	b.Helper()
	c, err := New(url, 2*time.Second)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	for b.Loop() {
		if got := c.Check(context.Background()); !got.OK {
			b.Fatal(got.Error)
		}
	}
}
