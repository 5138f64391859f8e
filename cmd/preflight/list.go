package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/preflight-rec/preflight/recorder/capture"
)

const listUsage = `Usage: preflight list [SERVICE] [--json] [--dir DIR]

Without SERVICE: one row per instance in the capture directory, each
service with captures and each recorder that keeps a state file there (a
running recorder with no capture yet too): its live state (healthy,
unhealthy, failing, starting, or not running), its number of captures,
and its newest capture's time, triggers and error.

With SERVICE: one row per capture of that service, newest last, with a
short id that 'preflight show' accepts: SERVICE@1 is the newest capture,
SERVICE@2 the one before, and so on.

Files that are not readable captures are skipped with a warning on stderr.
When there is nothing to list it says so on stderr and exits 1 (with
--json, after printing []). docs/readers.md describes the --json objects.

Examples:
  preflight list
  preflight list dead-drop
  preflight show dead-drop@2
  preflight list --json | jq -r '.[] | select(.state != "healthy") | .service'
`

// listedService is one object of 'preflight list --json'.
type listedService struct {
	Service  string          `json:"service"`
	State    string          `json:"state"`            // healthy, unhealthy, failing, starting, stopped, unscoped, not running
	Reason   string          `json:"reason,omitempty"` // why the service is stopped or unscoped
	Recorder *listedRecorder `json:"recorder"`
	Captures int             `json:"captures"`
	Newest   *listedCapture  `json:"newest"` // null when no capture could be read
}

// listedRecorder is what an instance's state file says; null without one.
type listedRecorder struct {
	PID          int       `json:"pid"`
	State        string    `json:"state"` // as written: starting, healthy, unhealthy, failing, stopped
	Stale        bool      `json:"stale"` // not updated for too long: the recorder is gone
	StartedAt    time.Time `json:"started_at"`
	UpdatedAt    time.Time `json:"updated_at"`
	OpenIncident string    `json:"open_incident"`
}

// listedCapture is one object of 'preflight list SERVICE --json'.
type listedCapture struct {
	ID             string    `json:"id"`
	Service        string    `json:"service"`
	File           string    `json:"file"`
	Path           string    `json:"path"`
	TransitionTime time.Time `json:"transition_time"`
	Triggers       []string  `json:"triggers"`
	HealthError    string    `json:"health_error"`
	Bytes          int64     `json:"bytes"`
}

// notRunning is the live state of an instance whose recorder is stopped,
// stale or without a state file.
const notRunning = "not running"

func runList(args []string, e env) error {
	c := newCommand("list", listUsage, e)
	asJSON := c.fs.Bool("json", false, "print JSON")
	pos, err := c.parse(args, e)
	if err != nil {
		return helpOK(err)
	}
	if err := c.positional(pos, 0, 1); err != nil {
		return err
	}
	o := newOut(e)
	if len(pos) == 1 {
		return listService(c.dir, pos[0], *asJSON, e, o)
	}
	rows, err := instances(c.dir, e, o.now)
	if err != nil {
		return err
	}
	if *asJSON {
		if err := printJSON(e, rows); err != nil {
			return err
		}
	}
	if len(rows) == 0 {
		return fmt.Errorf("no captures in %s, and no recorder keeps state there", c.dir)
	}
	if *asJSON {
		return nil
	}
	t := &table{gap: 2, flex: 6, drop: []int{3}}
	t.cols = []col{{head: "SERVICE"}, {head: "STATE"}, {head: "CAPTURES", right: true}, {head: "NEWEST"}, {head: "AGO"}, {head: "TRIGGERS"}, {head: "ERROR"}}
	for _, r := range rows {
		when, rel, trig, herr := "-", "-", "-", "-"
		if n := r.Newest; n != nil {
			when, rel = fmtTime(n.TransitionTime, false), ago(o.now, n.TransitionTime)
			trig, herr = strings.Join(n.Triggers, ","), orDash(n.HealthError)
		}
		if r.State == capture.UnitUnscoped {
			herr = r.Reason // the service is not seen: that matters more
		}
		t.rows = append(t.rows, []cell{{s: r.Service}, {s: r.State, sgr: stateColor(r.State)}, {s: strconv.Itoa(r.Captures)},
			{s: when}, {s: rel}, {s: trig}, {s: herr}})
	}
	b := &strings.Builder{}
	t.write(b, o)
	_, err = io.WriteString(e.stdout, b.String())
	return err
}

func stateColor(s string) string {
	switch s {
	case capture.StateHealthy:
		return green
	case capture.StateUnhealthy, capture.StateFailing, capture.UnitUnscoped:
		return red
	case capture.StateStarting:
		return yellow
	}
	return dim
}

// instances returns every instance in dir, by name: services with captures
// and recorders with a state file. Reading a service's captures costs one
// directory listing and the head of its newest readable capture.
func instances(dir string, e env, at time.Time) ([]listedService, error) {
	services, err := capture.Services(dir)
	if err != nil {
		return nil, err
	}
	states := readStates(dir, e)
	rows := []listedService{}
	seen := map[string]bool{}
	for _, svc := range services {
		files, err := capture.Files(dir, svc)
		if err != nil {
			e.warnf("skipping %s: %v", filepath.Join(dir, svc), err)
			continue
		}
		if len(files) == 0 && states[svc] == nil {
			continue
		}
		seen[svc] = true
		row := listedService{Service: svc, Captures: len(files), Newest: newestReadable(files, e)}
		rows = append(rows, row)
	}
	for svc := range states {
		if !seen[svc] {
			rows = append(rows, listedService{Service: svc})
		}
	}
	for i := range rows {
		st := states[rows[i].Service]
		rows[i].State = liveState(st, at)
		if st != nil && st.Unit != nil && rows[i].State == st.Unit.State {
			rows[i].Reason = st.Unit.Reason
		}
		if st != nil {
			rows[i].Recorder = &listedRecorder{PID: st.PID, State: st.State, Stale: st.State != capture.StateStopped && st.Stale(at),
				StartedAt: st.StartedAt, UpdatedAt: st.UpdatedAt, OpenIncident: st.OpenIncident}
		}
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].Service < rows[j].Service })
	return rows, nil
}

// liveState is an instance's state for list: the state file's, unless the
// recorder stopped or has not updated it for too long.
func liveState(st *capture.State, at time.Time) string {
	if st == nil || st.State == capture.StateStopped || st.State == "" || st.Stale(at) {
		return notRunning
	}
	if st.Unit != nil && st.Unit.State != "" {
		return st.Unit.State // stopped on request, or not seen
	}
	return st.State
}

// readStates reads the state files in dir/.state, by service; unreadable
// ones are warned about and left out.
func readStates(dir string, e env) map[string]*capture.State {
	des, err := os.ReadDir(filepath.Join(dir, capture.StateDir))
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			e.warnf("skipping recorder states: %v", err)
		}
		return nil
	}
	out := map[string]*capture.State{}
	for _, de := range des {
		svc, ok := strings.CutSuffix(de.Name(), ".json")
		if !ok || capture.ValidService(svc) != nil {
			continue
		}
		st, err := capture.ReadState(dir, svc)
		if err != nil {
			e.warnf("skipping %v", withPath(err, capture.StatePath(dir, svc)))
			continue
		}
		out[svc] = st
	}
	return out
}

func listService(dir, svc string, asJSON bool, e env, o out) error {
	if err := capture.ValidService(svc); err != nil {
		return usageErr(err.Error())
	}
	files, err := capture.Files(dir, svc)
	if err != nil {
		return err
	}
	rows := []listedCapture{}
	hr := &headReader{}
	for i, f := range files {
		lc, err := readListed(f, hr)
		if err != nil {
			e.warnf("skipping %v", err)
			continue
		}
		lc.ID = shortID(svc, len(files)-i)
		rows = append(rows, *lc)
	}
	if asJSON {
		if err := printJSON(e, rows); err != nil {
			return err
		}
	}
	if len(rows) == 0 {
		msg := fmt.Sprintf("no captures of %s in %s", svc, dir)
		if st, err := capture.ReadState(dir, svc); err == nil {
			msg += fmt.Sprintf("\nits recorder is %s", liveState(st, o.now))
		}
		return errors.New(msg)
	}
	if asJSON {
		return nil
	}
	t := &table{gap: 2, flex: 4, drop: []int{5, 2}}
	t.cols = []col{{head: "ID"}, {head: "TIME"}, {head: "AGO"}, {head: "TRIGGERS"}, {head: "ERROR"}, {head: "FILE"}}
	for _, r := range rows {
		t.rows = append(t.rows, []cell{{s: r.ID}, {s: fmtTime(r.TransitionTime, true)}, {s: ago(o.now, r.TransitionTime)},
			{s: strings.Join(r.Triggers, ",")}, {s: orDash(r.HealthError)}, {s: r.File}})
	}
	b := &strings.Builder{}
	t.write(b, o)
	_, err = io.WriteString(e.stdout, b.String())
	return err
}

// shortID is the id of the n-th newest capture of svc: "dead-drop@1" is the
// newest. Ids count every file named as a capture, readable or not, so that
// show can resolve one from the directory listing alone.
func shortID(svc string, n int) string { return svc + "@" + strconv.Itoa(n) }

// newestReadable returns the newest capture of files that reads, warning
// about each newer one that does not.
func newestReadable(files []capture.Entry, e env) *listedCapture {
	hr := &headReader{}
	for i := len(files) - 1; i >= 0; i-- {
		lc, err := readListed(files[i], hr)
		if err == nil {
			lc.ID = shortID(files[i].Service, len(files)-i)
			return lc
		}
		e.warnf("skipping %v", err)
	}
	return nil
}

// readListed reads what list shows of a capture from the head of its file:
// the fields before "health" and "samples", which the recorder writes first.
// A file whose last byte is not the end of a JSON object is truncated.
func readListed(f capture.Entry, hr *headReader) (*listedCapture, error) {
	h, size, err := hr.read(f.Path)
	if err != nil {
		return nil, withPath(err, f.Path)
	}
	lc := &listedCapture{
		Service:        f.Service,
		File:           f.Name,
		Path:           f.Path,
		TransitionTime: *h.TransitionTime,
		Triggers:       []string{},
		Bytes:          size,
	}
	if h.HealthError != nil {
		lc.HealthError = *h.HealthError
	}
	for _, t := range h.Triggers {
		lc.Triggers = append(lc.Triggers, t.Kind)
	}
	return lc, nil
}

// head is the part of a capture list reads.
type head struct {
	Schema         string            `json:"schema"`
	TransitionTime *time.Time        `json:"transition_time"`
	HealthError    *string           `json:"health_error"`
	Triggers       []capture.Trigger `json:"triggers"`
}

// headSize is how much of a file readHead reads at once: the head of a
// capture written by the recorder, whose triggers are at most 20.
const headSize = 8 << 10

// headReader reads the heads of capture files, with one buffer for all.
type headReader struct{ buf []byte }

// read reads the head of the capture file at path, with the guarantees of
// capture.ReadFile (no links, no FIFOs, at most capture.MaxFileSize). The
// recorder writes the fields list needs before "health": the first
// headSize bytes hold them, and one read and one small decode suffice. A
// file in another key order is decoded field by field from its start until
// they are all seen.
func (hr *headReader) read(path string) (head, int64, error) {
	var h head
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		if errors.Is(err, syscall.ELOOP) {
			return h, 0, fmt.Errorf("%w (symbolic link)", capture.ErrNotRegular)
		}
		return h, 0, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return h, 0, err
	}
	if !st.Mode().IsRegular() {
		return h, 0, capture.ErrNotRegular
	}
	size := st.Size()
	if size > capture.MaxFileSize {
		return h, 0, fmt.Errorf("%w (%d bytes, limit %d)", capture.ErrTooLarge, size, capture.MaxFileSize)
	}
	if hr.buf == nil {
		hr.buf = make([]byte, headSize)
	}
	n, err := f.ReadAt(hr.buf, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return h, 0, err
	}
	var tail [16]byte
	tn, _ := f.ReadAt(tail[:], max(size-int64(len(tail)), 0))
	if t := bytes.TrimRight(tail[:tn], " \t\r\n"); len(t) == 0 || t[len(t)-1] != '}' {
		return h, 0, fmt.Errorf("%w: truncated (%d bytes)", capture.ErrNotCapture, size)
	}
	fast := false
	if i := bytes.Index(hr.buf[:n], []byte(`,"health":`)); i > 0 {
		hr.buf[i] = '}'
		fast = json.Unmarshal(hr.buf[:i+1], &h) == nil && h.Schema != "" && h.TransitionTime != nil &&
			h.HealthError != nil && h.Triggers != nil
	}
	if !fast {
		h = head{}
		if err := decodeHead(f, &h); err != nil {
			return h, 0, err
		}
	}
	switch {
	case h.Schema == capture.Schema:
	case strings.HasPrefix(h.Schema, "preflight.capture/"):
		return h, 0, fmt.Errorf("%w %q (this preflight reads %q)", capture.ErrNewerSchema, h.Schema, capture.Schema)
	default:
		return h, 0, fmt.Errorf("%w: schema %q", capture.ErrNotCapture, h.Schema)
	}
	if h.TransitionTime == nil {
		return h, 0, fmt.Errorf("%w: no transition_time", capture.ErrNotCapture)
	}
	return h, size, nil
}

// decodeHead decodes the top-level fields of head from r, skipping the
// others, until it has them all or the schema is not a capture's.
func decodeHead(r io.Reader, h *head) error {
	dec := json.NewDecoder(bufio.NewReaderSize(io.LimitReader(r, capture.MaxFileSize), headSize))
	bad := func(err error) error { return fmt.Errorf("%w: %v", capture.ErrNotCapture, err) }
	if tok, err := dec.Token(); err != nil {
		return bad(err)
	} else if tok != json.Delim('{') {
		return fmt.Errorf("%w: not a JSON object", capture.ErrNotCapture)
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
		if seen.schema && h.Schema != capture.Schema {
			break
		}
	}
	return nil
}

// withPath makes sure err names path.
func withPath(err error, path string) error {
	if strings.Contains(err.Error(), path) {
		return err
	}
	return fmt.Errorf("%s: %w", path, err)
}

func printJSON(e env, v any) error {
	enc := json.NewEncoder(e.stdout)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("failed to encode JSON: %w", err)
	}
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// cut shortens s to n runes, marking the cut.
func cut(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	if n < 1 {
		return ""
	}
	return string(r[:n-1]) + "…"
}

// ago formats how long before now t was, coarsely: "42s ago", "3h ago".
func ago(now, t time.Time) string {
	d := now.Sub(t)
	if d < 0 {
		return "in the future"
	}
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh ago", int(d.Hours()))
	default:
		return fmt.Sprintf("%dd ago", int(d.Hours()/24))
	}
}
