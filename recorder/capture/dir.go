package capture

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"
)

// Ext is the extension of capture files.
const Ext = ".json"

// MaxFileSize is the largest capture file the readers will read.
const MaxFileSize = 16 << 20

// nameLayout is a capture's file name without Ext: UTC, millisecond
// precision, no colons, so names sort chronologically.
const nameLayout = "2006-01-02T15-04-05.000Z"

// Sentinel errors of the readers.
var (
	ErrNotCapture   = errors.New("not a preflight capture")
	ErrNewerSchema  = errors.New("newer capture schema")
	ErrNotRegular   = errors.New("not a regular file")
	ErrTooLarge     = errors.New("file too large")
	ErrBadService   = errors.New("invalid service name")
	ErrNoCaptureDir = errors.New("no capture directory")
)

// FileName returns the file name of a capture whose incident began at t.
func FileName(t time.Time) string {
	return t.UTC().Format(nameLayout) + Ext
}

// ParseFileName returns the time in a capture file name, and false for any
// name that is not a capture's.
func ParseFileName(name string) (time.Time, bool) {
	base, ok := strings.CutSuffix(name, Ext)
	if !ok || len(base) != len(nameLayout) {
		return time.Time{}, false
	}
	t, err := time.Parse(nameLayout, base)
	// time.Parse also takes "04,123" for "04.123": only the one name
	// FileName gives is a capture's.
	if err != nil || t.Format(nameLayout) != base {
		return time.Time{}, false
	}
	return t, true
}

// ServiceRule says which names [ValidService] accepts.
const ServiceRule = "must be 1 to 128 letters, digits and _ . @ -, starting with a letter or a digit"

// ValidService reports whether name may be a service (instance) name: 1 to
// 128 letters, digits, '_', '.', '@', '-', starting with a letter or a
// digit (so "." and ".." and hidden directories are out, and no name reads
// as a flag, -x, or as an id, @2, on the readers' command lines). The name
// is a directory under the capture directory, so it can never escape it.
func ValidService(name string) error {
	if name == "" {
		return fmt.Errorf("%w: empty", ErrBadService)
	}
	if len(name) > 128 {
		return fmt.Errorf("%w %q: longer than 128 characters", ErrBadService, name)
	}
	if c := name[0]; !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
		return fmt.Errorf("%w %q: must start with a letter or a digit", ErrBadService, name)
	}
	for _, c := range name {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '_', c == '.', c == '@', c == '-':
		default:
			return fmt.Errorf("%w %q: only letters, digits and _ . @ - are allowed", ErrBadService, name)
		}
	}
	return nil
}

// Encode returns the capture's file contents: compact JSON and a newline,
// never more than [MaxFileSize] bytes, so that the readers take every
// capture the recorder writes: a capture that would be larger is encoded
// without its oldest samples ([fit]). c is not changed.
func Encode(c *Capture) ([]byte, error) {
	c = share(c)
	data, err := encode(c)
	if err != nil || len(data) <= MaxFileSize {
		return data, err
	}
	return fit(c, data, MaxFileSize)
}

// encode is Encode without the size bound.
func encode(c *Capture) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(c); err != nil {
		return nil, fmt.Errorf("failed to encode capture: %w", err)
	}
	return buf.Bytes(), nil
}

// Decode parses a capture file's bytes and validates them ([Validate]). A
// file whose schema is another preflight capture version is
// ErrNewerSchema; anything else that is not a capture, or not one to
// believe ([FieldError]), is ErrNotCapture.
func Decode(data []byte) (*Capture, error) {
	var head struct {
		Schema string `json:"schema"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotCapture, err)
	}
	if head.Schema != Schema {
		if strings.HasPrefix(head.Schema, "preflight.capture/") {
			return nil, fmt.Errorf("%w %q (this preflight reads %q)", ErrNewerSchema, head.Schema, Schema)
		}
		return nil, fmt.Errorf("%w: schema %q", ErrNotCapture, head.Schema)
	}
	c := new(Capture)
	if err := json.Unmarshal(data, c); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotCapture, err)
	}
	if err := Validate(c, data); err != nil {
		return nil, err
	}
	resolve(c)
	return c, nil
}

// ReadFile returns the bytes of the file at path (any path: the one a user
// names to 'preflight show'), refusing to follow a
// symbolic link in the last element, to block on a FIFO or device, or to read
// more than MaxFileSize.
func ReadFile(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		if errors.Is(err, syscall.ELOOP) {
			return nil, fmt.Errorf("%s: %w (symbolic link)", path, ErrNotRegular)
		}
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: %w", path, ErrNotRegular)
	}
	return readOpen(f, path)
}

// Read reads and decodes the capture at path. It returns the file's bytes
// too, for printing them unchanged.
func Read(path string) (*Capture, []byte, error) {
	data, err := ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	c, err := Decode(data)
	if err != nil {
		return nil, data, fmt.Errorf("%s: %w", path, err)
	}
	return c, data, nil
}
