package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
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
	LastError    string    `json:"last_error,omitempty"` // the last check's error, when it failed
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
	if len(pos) == 1 {
		if err := capture.ValidService(pos[0]); err != nil {
			return usageErr(err.Error())
		}
	}
	st, err := capture.Open(c.dir)
	if err != nil {
		if *asJSON { // nothing to list is still a JSON list
			if jerr := printJSON(e, []struct{}{}); jerr != nil {
				return jerr
			}
		}
		return err
	}
	defer st.Close()
	o := newOut(e)
	if len(pos) == 1 {
		return listService(st, pos[0], *asJSON, e, o)
	}
	rows, err := instances(st, e, o.now)
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
		// Starting or failing: the reason is the last check's error, now.
		if rc := r.Recorder; rc != nil && rc.LastError != "" && (r.State == capture.StateStarting || r.State == capture.StateFailing) {
			herr = rc.LastError
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

// skipper is the readers' warning about a file or directory they skip.
func skipper(e env) func(error) {
	return func(err error) { e.warnf("skipping %v", err) }
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

// instances returns every instance in the directory, by name: services
// with captures, recorders with a state file and recorders that hold their
// lock. Reading a service's captures costs one directory listing and the
// head of its newest readable capture.
func instances(st *capture.Store, e env, at time.Time) ([]listedService, error) {
	services, err := st.Services()
	if err != nil {
		return nil, err
	}
	warn := skipper(e)
	states := st.States(warn)
	rows := []listedService{}
	seen := map[string]bool{}
	lives := map[string]live{}
	for _, svc := range services {
		files, err := st.Files(svc, warn)
		if err != nil {
			warn(err)
			continue
		}
		lv := liveOf(st, svc)
		if len(files) == 0 && states[svc] == nil && !lv.running {
			continue
		}
		seen[svc], lives[svc] = true, lv
		rows = append(rows, listedService{Service: svc, Captures: len(files), Newest: newestReadable(st, files, warn)})
	}
	for svc := range states {
		if !seen[svc] {
			rows = append(rows, listedService{Service: svc})
			lives[svc] = liveOf(st, svc)
		}
	}
	for i := range rows {
		s, lv := states[rows[i].Service], lives[rows[i].Service]
		var stale bool
		rows[i].State, stale = liveState(s, lv, at)
		if s != nil && s.Unit != nil && s.Unit.State != "" && rows[i].State == s.State {
			// Running, and systemd's word on the unit matters more: stopped
			// on request, or not seen.
			rows[i].State, rows[i].Reason = s.Unit.State, s.Unit.Reason
		}
		if s != nil {
			pid := s.PID
			if lv.pid > 0 {
				pid = lv.pid
			}
			rows[i].Recorder = &listedRecorder{PID: pid, State: s.State, Stale: stale,
				StartedAt: s.StartedAt, UpdatedAt: s.UpdatedAt, OpenIncident: s.OpenIncident}
			if lc := s.LastCheck; lc != nil && !lc.OK {
				rows[i].Recorder.LastError = lc.Error
			}
		}
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].Service < rows[j].Service })
	return rows, nil
}

// live is what a service's lock says of its recorder.
type live struct {
	known   bool // the service has a lock file: running is the truth
	running bool // a recorder holds the lock
	pid     int  // the PID its lock file names
}

func liveOf(st *capture.Store, svc string) live {
	running, pid, err := st.Running(svc)
	return live{known: err == nil, running: running, pid: pid}
}

// liveState is an instance's state for list, and whether its state file is
// stale (says running while no recorder is). A service with a lock file is
// running exactly while a recorder holds the lock: its state is then the
// state file's (starting until it has one). Without a lock file (a
// recorder of an older preflight), the state file alone says, unless it
// is stopped or has not been rewritten for too long.
func liveState(st *capture.State, lv live, at time.Time) (string, bool) {
	if lv.known {
		switch {
		case !lv.running:
			return notRunning, st != nil && st.State != capture.StateStopped
		case st == nil || st.State == capture.StateStopped || st.State == "":
			return capture.StateStarting, false
		default:
			return st.State, false
		}
	}
	if st == nil || st.State == capture.StateStopped || st.State == "" {
		return notRunning, false
	}
	if st.Stale(at) {
		return notRunning, true
	}
	return st.State, false
}

func listService(st *capture.Store, svc string, asJSON bool, e env, o out) error {
	warn := skipper(e)
	files, err := st.Files(svc, warn)
	if err != nil {
		if asJSON {
			if jerr := printJSON(e, []listedCapture{}); jerr != nil {
				return jerr
			}
		}
		return err
	}
	rows := []listedCapture{}
	for i, f := range files {
		h, err := st.ReadHead(f)
		if err != nil {
			warn(err)
			continue
		}
		lc := listed(f, h)
		lc.ID = shortID(svc, len(files)-i)
		rows = append(rows, *lc)
	}
	if asJSON {
		if err := printJSON(e, rows); err != nil {
			return err
		}
	}
	if len(rows) == 0 {
		msg := fmt.Sprintf("no captures of %s in %s", svc, st.Dir())
		s, _ := st.ReadState(svc)
		if lv := liveOf(st, svc); s != nil || lv.known {
			state, _ := liveState(s, lv, o.now)
			msg += fmt.Sprintf("\nits recorder is %s", state)
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
func newestReadable(st *capture.Store, files []capture.Entry, warn func(error)) *listedCapture {
	for i := len(files) - 1; i >= 0; i-- {
		h, err := st.ReadHead(files[i])
		if err == nil {
			lc := listed(files[i], h)
			lc.ID = shortID(files[i].Service, len(files)-i)
			return lc
		}
		warn(err)
	}
	return nil
}

// listed is the row of a capture, from its head.
func listed(f capture.Entry, h capture.Head) *listedCapture {
	lc := &listedCapture{
		Service:        f.Service,
		File:           f.Name,
		Path:           f.Path,
		TransitionTime: h.TransitionTime,
		HealthError:    h.HealthError,
		Triggers:       []string{},
		Bytes:          h.Size,
	}
	for _, t := range h.Triggers {
		lc.Triggers = append(lc.Triggers, t.Kind)
	}
	return lc
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
