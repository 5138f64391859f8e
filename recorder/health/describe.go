package health

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"time"
)

// describe returns the short, human text of a failed check's error: no
// `Get "http://...": dial tcp ...:` noise, only the reason. timeout is the
// configured deadline, named in timeout errors. describe is pure.
func describe(err error, timeout time.Duration) string {
	if err == nil {
		return ""
	}
	var (
		status  statusError
		body    *bodyError
		dnsErr  *net.DNSError
		opErr   *net.OpError
		netErr  net.Error
		verify  *tls.CertificateVerificationError
		record  tls.RecordHeaderError
		unknown x509.UnknownAuthorityError
		host    x509.HostnameError
		invalid x509.CertificateInvalidError
	)
	switch {
	case errors.As(err, &status):
		return status.Error()
	case errors.Is(err, errTooManyRedirects):
		return "too many redirects"
	case errors.Is(err, errCheckTimeout), errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, os.ErrDeadlineExceeded):
		return "timeout after " + formatDuration(timeout)
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.As(err, &dnsErr):
		if dnsErr.IsNotFound {
			return "no such host"
		}
		return "lookup " + dnsErr.Name + ": " + dnsErr.Err
	case errors.Is(err, http.ErrSchemeMismatch):
		return "tls: " + strings.TrimPrefix(http.ErrSchemeMismatch.Error(), "http: ")
	case errors.As(err, &verify):
		return tlsText(verify.Err)
	case errors.As(err, &unknown):
		return tlsText(unknown)
	case errors.As(err, &host):
		return tlsText(host)
	case errors.As(err, &invalid):
		return tlsText(invalid)
	case errors.As(err, &record):
		return "tls: " + record.Msg
	case errors.As(err, &opErr) && opErr.Op == "remote error":
		// A TLS alert from the server: "remote error: tls: bad certificate".
		return "tls: remote error: " + strings.TrimPrefix(innermost(opErr.Err), "tls: ")
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.As(err, &body) && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)):
		return "connection closed before end of body"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.EPIPE):
		return "connection closed before response"
	case errors.As(err, &netErr) && netErr.Timeout():
		return "timeout after " + formatDuration(timeout)
	}
	return innermost(err)
}

// tlsText returns a certificate error as "tls: <reason>", without the
// "x509: " prefix and the dangling ": " of an empty detail.
func tlsText(err error) string {
	s := strings.TrimPrefix(err.Error(), "x509: ")
	return "tls: " + strings.TrimSuffix(s, ": ")
}

// innermost returns the text of the deepest error of err's single-wrap
// chain, with net/http's "net/http: " / "http: " prefixes cut.
func innermost(err error) string {
	for {
		next := errors.Unwrap(err)
		if next == nil {
			break
		}
		err = next
	}
	s := err.Error()
	for _, p := range []string{"net/http: ", "http: "} {
		s = strings.TrimPrefix(s, p)
	}
	return s
}

// formatDuration formats d compactly: 2s, 500ms, 1.5s, 2m, 1h30m.
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
