// Package health checks whether the recorded service still answers.
//
// A [Checker] is built once from the configured URL by [New] and then runs
// one check per [Checker.Check] call, returning a [capture.Check]:
//
//   - http:// and https://: one GET (User-Agent "preflight/health") over a
//     fresh connection, without any proxy, following at most 5 redirects, with
//     normal TLS verification. The check is OK iff the final status is
//     200–399. At most 64 KiB of the body is read, then the connection is
//     closed.
//   - tcp://host:port: OK iff a TCP connection can be opened; it is closed at
//     once.
//
// A check never lasts longer than the configured timeout (plus scheduling
// noise), whatever the server does and whether or not the caller's context
// has a deadline. A failed check carries a short, human error such as
// "connection refused", "timeout after 2s" or "HTTP 503"; a check cut short
// by the caller's context reports "canceled". StatusCode is the last HTTP
// status received, also on failure (the 3xx of "too many redirects", the 200
// of a body that timed out), and 0 when there was none. A Checker is safe for
// concurrent use and sends nothing anywhere but the configured URL and its
// redirects.
package health

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/preflight-rec/preflight/recorder/capture"
	"github.com/preflight-rec/preflight/recorder/secret"
)

const (
	userAgent    = "preflight/health"
	maxRedirects = 5
	maxBodyBytes = 64 << 10
	maxHeader    = 64 << 10
)

var (
	// errCheckTimeout is the cause of a check's context when its own
	// deadline fires; net/http hands it back from Do and from body reads.
	errCheckTimeout     = errors.New("health check timeout")
	errTooManyRedirects = errors.New("too many redirects")
)

// Checker checks one URL. Build it with [New].
type Checker struct {
	url       string // as configured, for requests
	tcp       bool   // tcp:// connect check
	addr      string // host:port for tcp
	timeout   time.Duration
	dialer    *net.Dialer
	transport *http.Transport
	client    *http.Client
}

// New validates rawURL and returns a Checker. Accepted: http://host[:port]/path,
// https://..., and tcp://host:port (a plain TCP connect check; port required,
// no path). Any other scheme, a missing host, or a tcp URL without port is an
// error whose text names the problem and the URL. timeout is one check's
// whole deadline and must be > 0.
func New(rawURL string, timeout time.Duration) (*Checker, error) {
	u, err := parseURL(rawURL)
	if err != nil {
		return nil, err
	}
	if timeout <= 0 {
		return nil, fmt.Errorf("invalid health check timeout %v for %q: must be > 0", timeout, ShownURL(rawURL))
	}
	dialer := &net.Dialer{KeepAlive: -1} // one-shot connections: no TCP keep-alive probes
	c := &Checker{
		url:     rawURL,
		tcp:     u.Scheme == "tcp",
		addr:    u.Host,
		timeout: timeout,
		dialer:  dialer,
	}
	c.transport = &http.Transport{
		Proxy:                  nil, // never the environment's proxy: the check is local
		DialContext:            dialer.DialContext,
		DisableKeepAlives:      true, // every check proves the listener still accepts
		MaxResponseHeaderBytes: maxHeader,
	}
	c.client = &http.Client{
		Transport: c.transport,
		CheckRedirect: func(_ *http.Request, via []*http.Request) error {
			// len(via) is the number of requests made so far, i.e. the
			// number of the redirect about to be followed.
			if len(via) > maxRedirects {
				return errTooManyRedirects
			}
			return nil
		},
	}
	return c, nil
}

// parseURL returns rawURL parsed, or an error naming what is wrong with it.
func parseURL(rawURL string) (*url.URL, error) {
	if rawURL == "" {
		return nil, errors.New("empty health URL (want http://, https:// or tcp://host:port)")
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // url.Error repeats the URL; we name it ourselves
		}
		return nil, fmt.Errorf("invalid health URL %q: %w", ShownURL(rawURL), err)
	}
	shown := ShownURL(rawURL)
	bad := func(format string, args ...any) error {
		return fmt.Errorf("invalid health URL %q: %s", shown, fmt.Sprintf(format, args...))
	}
	switch u.Scheme {
	case "http", "https", "tcp":
	case "":
		return nil, bad("no scheme (want http, https or tcp)")
	default:
		return nil, bad("unsupported scheme %q (want http, https or tcp)", u.Scheme)
	}
	if u.Opaque != "" || u.Hostname() == "" {
		return nil, bad("no host")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return nil, bad("port %q out of range 1-65535", p)
		}
	}
	if u.Scheme == "tcp" {
		switch {
		case u.Port() == "":
			return nil, bad("tcp URL needs a port (tcp://host:port)")
		case u.Path != "" && u.Path != "/":
			return nil, bad("tcp URL takes no path, got %q", u.Path)
		case u.RawQuery != "" || u.Fragment != "" || u.User != nil:
			return nil, bad("tcp URL takes only host:port")
		}
	}
	return u, nil
}

// Mask replaces a secret in a shown health URL.
const Mask = "xxxxx"

// ShownURL is the health URL as preflight shows and stores it everywhere
// (captures, the state file, logs, errors, 'start --check'): as the
// operator wrote it, but for the password of its user info and the values
// of its secret-looking query parameters (?token=…, ?api_key=…, by
// [secret.IsKey], the rule of command-line redaction), each replaced by
// [Mask]. It works on unparsable URLs too, and masking twice changes
// nothing.
func ShownURL(rawURL string) string { return secret.URL(rawURL, Mask) }

// Check runs one check now and returns its result: At is the start time in
// UTC, LatencyMS the time it took (monotonic clock), StatusCode the final
// HTTP status (0 when there was no HTTP response), Error "" when OK.
// Safe for concurrent use; never blocks longer than the timeout plus a small
// margin, even when ctx has no deadline.
func (c *Checker) Check(ctx context.Context) capture.Check {
	start := time.Now()
	cctx, cancel := context.WithTimeoutCause(ctx, c.timeout, errCheckTimeout)
	defer cancel()

	var status int
	var err error
	if c.tcp {
		err = c.connect(cctx)
	} else {
		status, err = c.get(cctx)
	}
	res := capture.Check{
		At:         start.UTC(),
		OK:         err == nil,
		LatencyMS:  latencyMS(time.Since(start)),
		StatusCode: status,
	}
	if err != nil {
		// A net/http error may quote the URL or a redirect's: never its secrets.
		res.Error = secret.URLsIn(c.describeCheck(ctx, cctx, err), Mask)
	}
	return res
}

// describeCheck turns a failed check's error into its Error text. Once the
// check's own deadline or the caller's context has ended, that is the reason,
// whatever error the aborted I/O happened to return.
func (c *Checker) describeCheck(parent, cctx context.Context, err error) string {
	switch {
	case parent.Err() != nil:
		return "canceled"
	case errors.Is(context.Cause(cctx), errCheckTimeout):
		return "timeout after " + formatDuration(c.timeout)
	}
	return describe(err, c.timeout)
}

func (c *Checker) connect(ctx context.Context) error {
	conn, err := c.dialer.DialContext(ctx, "tcp", c.addr)
	if err != nil {
		return err
	}
	return conn.Close()
}

// get performs the GET and returns the final status, and an error when the
// check failed (a transport error, an unhealthy status, a broken body).
func (c *Checker) get(ctx context.Context) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("User-Agent", userAgent)
	resp, err := c.client.Do(req)
	if err != nil {
		status := 0
		if resp != nil { // a redirect we refused to follow: the body is closed already
			status = resp.StatusCode
		}
		return status, err
	}
	_, bodyErr := io.CopyN(io.Discard, resp.Body, maxBodyBytes)
	resp.Body.Close() // without keep-alive this closes the connection, unread bytes and all
	if resp.StatusCode < 200 || resp.StatusCode > 399 {
		return resp.StatusCode, statusError(resp.StatusCode)
	}
	if bodyErr != nil && bodyErr != io.EOF {
		return resp.StatusCode, &bodyError{bodyErr}
	}
	return resp.StatusCode, nil
}

// Close releases idle resources (idle connections).
func (c *Checker) Close() {
	c.transport.CloseIdleConnections()
}

// statusError is an HTTP status outside 200–399.
type statusError int

func (e statusError) Error() string { return "HTTP " + strconv.Itoa(int(e)) }

// bodyError is a failure to read the body of an otherwise healthy response.
type bodyError struct{ err error }

func (e *bodyError) Error() string { return "failed to read body: " + e.err.Error() }
func (e *bodyError) Unwrap() error { return e.err }

// latencyMS returns d in milliseconds, rounded to the microsecond.
func latencyMS(d time.Duration) float64 {
	return math.Round(float64(d)/float64(time.Microsecond)) / 1000
}
