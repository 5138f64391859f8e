package health

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"syscall"
	"testing"
	"time"
)

// get wraps err the way net/http's client does.
func get(err error) error {
	return &url.Error{Op: "Get", URL: "http://127.0.0.1:8080/health", Err: err}
}

// dial wraps err the way a failed dial does.
func dial(err error) error {
	return &net.OpError{Op: "dial", Net: "tcp",
		Addr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8080},
		Err:  &os.SyscallError{Syscall: "connect", Err: err}}
}

// read wraps err the way a failed read does.
func read(err error) error {
	return &net.OpError{Op: "read", Net: "tcp", Err: &os.SyscallError{Syscall: "read", Err: err}}
}

func TestDescribe(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"nil", nil, ""},
		{"refused", get(dial(syscall.ECONNREFUSED)), "connection refused"},
		{"refused tcp check", dial(syscall.ECONNREFUSED), "connection refused"},
		{"reset", get(read(syscall.ECONNRESET)), "connection reset"},
		{"broken pipe", get(&net.OpError{Op: "write", Net: "tcp", Err: &os.SyscallError{Syscall: "write", Err: syscall.EPIPE}}),
			"connection closed before response"},
		{"no route", get(dial(syscall.EHOSTUNREACH)), "no route to host"},
		{"network unreachable", dial(syscall.ENETUNREACH), "network is unreachable"},
		{"own deadline", get(errCheckTimeout), "timeout after 2s"},
		{"context deadline", get(context.DeadlineExceeded), "timeout after 2s"},
		{"dial i/o timeout", get(&net.OpError{Op: "dial", Net: "tcp", Err: os.ErrDeadlineExceeded}), "timeout after 2s"},
		{"other net timeout", get(timeoutErr{}), "timeout after 2s"},
		{"canceled", get(context.Canceled), "canceled"},
		{"status", statusError(503), "HTTP 503"},
		{"status 404", statusError(404), "HTTP 404"},
		{"too many redirects", get(errTooManyRedirects), "too many redirects"},
		{"EOF", get(io.EOF), "connection closed before response"},
		{"unexpected EOF", get(io.ErrUnexpectedEOF), "connection closed before response"},
		{"EOF in body", &bodyError{io.ErrUnexpectedEOF}, "connection closed before end of body"},
		{"reset in body", &bodyError{read(syscall.ECONNRESET)}, "connection reset"},
		{"timeout in body", &bodyError{errCheckTimeout}, "timeout after 2s"},
		{"no such host", get(dial(&net.DNSError{Err: "no such host", Name: "x.invalid", Server: "10.0.0.53:53", IsNotFound: true})),
			"no such host"},
		{"dns other", get(&net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "server misbehaving", Name: "svc.internal"}}),
			"lookup svc.internal: server misbehaving"},
		{"dns own timeout", get(&net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "i/o timeout", Name: "svc.internal", IsTimeout: true}}),
			"lookup svc.internal: i/o timeout"},
		{"unknown authority", get(&tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}),
			"tls: certificate signed by unknown authority"},
		{"bare unknown authority", get(x509.UnknownAuthorityError{}), "tls: certificate signed by unknown authority"},
		{"hostname", get(&tls.CertificateVerificationError{Err: x509.HostnameError{
			Certificate: &x509.Certificate{DNSNames: []string{"svc.example"}}, Host: "other.example"}}),
			"tls: certificate is valid for svc.example, not other.example"},
		{"expired", get(&tls.CertificateVerificationError{Err: x509.CertificateInvalidError{Reason: x509.Expired,
			Detail: "current time 2026-11-26T03:12:04Z is after 2026-01-01T00:00:00Z"}}),
			"tls: certificate has expired or is not yet valid: current time 2026-11-26T03:12:04Z is after 2026-01-01T00:00:00Z"},
		{"expired no detail", get(x509.CertificateInvalidError{Reason: x509.Expired}),
			"tls: certificate has expired or is not yet valid"},
		{"record header", get(tls.RecordHeaderError{Msg: "first record does not look like a TLS handshake"}),
			"tls: first record does not look like a TLS handshake"},
		{"plain HTTP to HTTPS client", get(http.ErrSchemeMismatch), "tls: server gave HTTP response to HTTPS client"},
		{"remote alert", get(&net.OpError{Op: "remote error", Err: tls.AlertError(42)}), "tls: remote error: bad certificate"},
		{"innermost", get(fmt.Errorf("net/http: HTTP/1.x transport connection broken: %w", errors.New(`malformed HTTP response "SSH-2.0"`))),
			`malformed HTTP response "SSH-2.0"`},
		{"net/http prefix", get(errors.New("net/http: something odd")), "something odd"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := describe(tt.err, 2*time.Second); got != tt.want {
				t.Errorf("describe(%v) = %q, want %q", tt.err, got, tt.want)
			}
		})
	}
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "some i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func TestFormatDuration(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{2 * time.Second, "2s"},
		{500 * time.Millisecond, "500ms"},
		{1500 * time.Millisecond, "1.5s"},
		{300 * time.Millisecond, "300ms"},
		{10 * time.Second, "10s"},
		{90 * time.Second, "1m30s"},
		{2 * time.Minute, "2m"},
		{time.Hour, "1h"},
		{90 * time.Minute, "1h30m"},
		{time.Hour + time.Second, "1h0m1s"},
	}
	for _, tt := range tests {
		if got := formatDuration(tt.d); got != tt.want {
			t.Errorf("formatDuration(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
}

func TestLatencyMS(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want float64
	}{
		{0, 0},
		{1234567 * time.Nanosecond, 1.235},
		{2 * time.Second, 2000},
		{1400 * time.Nanosecond, 0.001},
	}
	for _, tt := range tests {
		if got := latencyMS(tt.d); got != tt.want {
			t.Errorf("latencyMS(%v) = %v, want %v", tt.d, got, tt.want)
		}
	}
}
