package capture

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// Head is what 'preflight list' shows of a capture, read from the head of
// its file.
type Head struct {
	TransitionTime time.Time
	HealthError    string
	Triggers       []Trigger
	Size           int64 // the file's size in bytes
}

// head is the part of a capture file ReadHead decodes.
type head struct {
	Schema         string     `json:"schema"`
	TransitionTime *time.Time `json:"transition_time"`
	HealthError    *string    `json:"health_error"`
	Triggers       []Trigger  `json:"triggers"`
}

// headSize is how much of a file ReadHead reads at once: the head of a
// capture written by the recorder, whose triggers are at most 20.
const headSize = 8 << 10

// ReadHead reads the head of a capture, with the guarantees of [Store.Read]
// (no links, no FIFOs, at most MaxFileSize) at a fraction of its cost: the
// recorder writes the fields a Head holds before "health", so the first
// headSize bytes hold them, and one read and one small decode suffice. A
// file in another key order is decoded field by field from its start until
// they are all seen. A file whose last bytes are not the end of a JSON
// object is truncated: [ErrNotCapture]. Errors name the file.
func (s *Store) ReadHead(e Entry) (Head, error) {
	r, done, err := s.readSubdir(e.Service)
	if err != nil {
		return Head{}, err
	}
	defer done()
	f, err := openFile(r, e.Name, e.Path)
	if err != nil {
		return Head{}, err
	}
	defer f.Close()
	h, err := s.readHead(f)
	if err != nil {
		return Head{}, fmt.Errorf("%s: %w", e.Path, err)
	}
	return h, nil
}

func (s *Store) readHead(f *os.File) (Head, error) {
	st, err := f.Stat()
	if err != nil {
		return Head{}, err
	}
	size := st.Size()
	if size > MaxFileSize {
		return Head{}, fmt.Errorf("%w (%d bytes, limit %d)", ErrTooLarge, size, MaxFileSize)
	}
	if s.buf == nil {
		s.buf = make([]byte, headSize)
	}
	n, err := f.ReadAt(s.buf, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return Head{}, unwrapPath(err)
	}
	var tail [16]byte
	tn, _ := f.ReadAt(tail[:], max(size-int64(len(tail)), 0))
	if t := bytes.TrimRight(tail[:tn], " \t\r\n"); len(t) == 0 || t[len(t)-1] != '}' {
		return Head{}, fmt.Errorf("%w: truncated (%d bytes)", ErrNotCapture, size)
	}
	var h head
	fast := false
	if i := bytes.Index(s.buf[:n], []byte(`,"health":`)); i > 0 {
		s.buf[i] = '}'
		fast = json.Unmarshal(s.buf[:i+1], &h) == nil && h.Schema != "" && h.TransitionTime != nil &&
			h.HealthError != nil && h.Triggers != nil
	}
	if !fast {
		h = head{}
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return Head{}, unwrapPath(err)
		}
		if err := decodeHead(f, &h); err != nil {
			return Head{}, err
		}
	}
	switch {
	case h.Schema == Schema:
	case strings.HasPrefix(h.Schema, "preflight.capture/"):
		return Head{}, fmt.Errorf("%w %q (this preflight reads %q)", ErrNewerSchema, h.Schema, Schema)
	default:
		return Head{}, fmt.Errorf("%w: schema %q", ErrNotCapture, h.Schema)
	}
	if h.TransitionTime == nil {
		return Head{}, fmt.Errorf("%w: no transition_time", ErrNotCapture)
	}
	if err := ValidateHead(*h.TransitionTime, h.Triggers); err != nil {
		return Head{}, err
	}
	out := Head{TransitionTime: *h.TransitionTime, Triggers: h.Triggers, Size: size}
	if h.HealthError != nil {
		out.HealthError = *h.HealthError
	}
	return out, nil
}

// decodeHead decodes the top-level fields of head from r, skipping the
// others, until it has them all or the schema is not a capture's.
func decodeHead(r io.Reader, h *head) error {
	dec := json.NewDecoder(bufio.NewReaderSize(io.LimitReader(r, MaxFileSize), headSize))
	bad := func(err error) error { return fmt.Errorf("%w: %v", ErrNotCapture, err) }
	if tok, err := dec.Token(); err != nil {
		return bad(err)
	} else if tok != json.Delim('{') {
		return fmt.Errorf("%w: not a JSON object", ErrNotCapture)
	}
	var seen struct{ schema, time, err, triggers bool }
	for !(seen.schema && seen.time && seen.err && seen.triggers) && dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return bad(err)
		}
		var dst any
		switch tok {
		case "schema":
			dst, seen.schema = &h.Schema, true
		case "transition_time":
			dst, seen.time = &h.TransitionTime, true
		case "health_error":
			dst, seen.err = &h.HealthError, true
		case "triggers":
			dst, seen.triggers = &h.Triggers, true
		default:
			dst = new(json.RawMessage)
		}
		if err := dec.Decode(dst); err != nil {
			return bad(err)
		}
		if seen.schema && h.Schema != Schema {
			break
		}
	}
	return nil
}
