package capture

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
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

// ValidService reports whether name may be a service (instance) name: 1 to
// 128 letters, digits, '_', '.', '@', '-', not starting with '.' (so "." and
// ".." and hidden directories are out). The name is a directory under the
// capture directory, so it can never escape it.
func ValidService(name string) error {
	if name == "" {
		return fmt.Errorf("%w: empty", ErrBadService)
	}
	if len(name) > 128 {
		return fmt.Errorf("%w %q: longer than 128 characters", ErrBadService, name)
	}
	if name[0] == '.' {
		return fmt.Errorf("%w %q: must not start with '.'", ErrBadService, name)
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

// Encode returns the capture's file contents: compact JSON and a newline.
func Encode(c *Capture) ([]byte, error) {
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
	return c, nil
}

// ReadFile returns the bytes of the file at path, refusing to follow a
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
	if st.Size() > MaxFileSize {
		return nil, fmt.Errorf("%s: %w (%d bytes, limit %d)", path, ErrTooLarge, st.Size(), MaxFileSize)
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("%s: %w (limit %d bytes)", path, ErrTooLarge, MaxFileSize)
	}
	return data, nil
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

// Entry is one capture file in the directory, known by its name alone.
type Entry struct {
	Service string
	Name    string // file name
	Path    string
	Time    time.Time // from the name: when the incident began
}

// Files lists the capture files of one service, oldest first, from their
// names alone: regular files directly in dir/service named as captures.
// Anything else there is ignored. A service without a directory has none;
// a symbolic link in place of the service's directory is an error, never
// followed.
func Files(dir, service string) ([]Entry, error) {
	if err := ValidService(service); err != nil {
		return nil, err
	}
	sdir := filepath.Join(dir, service)
	d, err := os.OpenFile(sdir, os.O_RDONLY|syscall.O_DIRECTORY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		if st, lerr := os.Lstat(sdir); lerr == nil && st.Mode()&fs.ModeSymlink != 0 {
			return nil, fmt.Errorf("failed to read capture directory %s: a symbolic link, not followed", sdir)
		}
		return nil, fmt.Errorf("failed to read capture directory: %w", err)
	}
	defer d.Close()
	des, err := d.ReadDir(-1)
	if err != nil {
		return nil, fmt.Errorf("failed to read capture directory: %w", err)
	}
	var out []Entry
	for _, de := range des {
		if !de.Type().IsRegular() {
			continue
		}
		t, ok := ParseFileName(de.Name())
		if !ok {
			continue
		}
		out = append(out, Entry{Service: service, Name: de.Name(), Path: filepath.Join(sdir, de.Name()), Time: t})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Services lists the service directories in dir, sorted: directories (not
// links) whose names are valid service names.
func Services(dir string) ([]string, error) {
	des, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w %s", ErrNoCaptureDir, dir)
		}
		return nil, fmt.Errorf("failed to read capture directory: %w", err)
	}
	var out []string
	for _, de := range des {
		if de.IsDir() && ValidService(de.Name()) == nil {
			out = append(out, de.Name())
		}
	}
	return out, nil
}

// Retain removes the oldest captures of service beyond keep, never the
// file named protect. It counts and removes only its own captures: regular
// files named as captures and owned by the effective user. It never follows
// links, and returns the names it removed.
func Retain(dir, service string, keep int, protect string) ([]string, error) {
	all, err := Files(dir, service)
	if err != nil {
		return nil, err
	}
	var files []Entry
	for _, e := range all {
		if st, err := os.Lstat(e.Path); err == nil && st.Mode().IsRegular() && ownedByMe(st) {
			files = append(files, e)
		}
	}
	excess := len(files) - keep
	var removed []string
	for _, e := range files {
		if excess <= 0 {
			break
		}
		if e.Name == protect {
			continue
		}
		if err := os.Remove(e.Path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return removed, fmt.Errorf("failed to remove old capture: %w", err)
		}
		removed = append(removed, e.Name)
		excess--
	}
	return removed, nil
}

// ownedByMe reports whether the file is the effective user's.
func ownedByMe(st fs.FileInfo) bool {
	sys, ok := st.Sys().(*syscall.Stat_t)
	return ok && int(sys.Uid) == os.Geteuid()
}
