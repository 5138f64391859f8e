package main

// Hostile and broken captures: nothing from a capture reaches a terminal as
// a control sequence, and a capture that cannot be believed is skipped
// with a warning naming the file and the field, never told as a failure.

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/preflight-rec/preflight/recorder/capture"
)

// evil is what a hostile certificate name or hand-edited capture carries:
// an OSC title change, a colour, a CSI from C1, a bell, a newline, a
// carriage return and a bidirectional override.
const evil = "\x1b]0;pwned\x07\x1b[31mred\x1b[0m\u009b2J\r\nfake line\u202e"

// ourSGR are the colour codes the readers add themselves.
var ourSGR = regexp.MustCompile(`\x1b\[[0-9;]*m`)

// controls returns the first control character of out once our own colour
// codes are removed, or "".
func controls(out string) string {
	out = ourSGR.ReplaceAllString(out, "")
	for i, r := range out {
		switch {
		case r == '\n':
		case r == utf8.RuneError && !strings.HasPrefix(out[i:], "\uFFFD"):
			return "invalid UTF-8"
		case r < 0x20, r == 0x7f, r >= 0x80 && r < 0xa0, r == '\u202e':
			return strings.ToValidUTF8(out[max(i-20, 0):min(i+20, len(out))], "?")
		}
	}
	return ""
}

func hostileCapture(service string, at time.Time) *capture.Capture {
	pct := func(v float64) *float64 { return &v }
	u := func(v uint64) *uint64 { return &v }
	p := capture.Process{PID: 4242, Name: "srv" + evil, Cmdline: "/usr/bin/srv " + evil, State: "S" + evil,
		CPUPercent: pct(12), RSSBytes: 1 << 20, Threads: 1}
	s := capture.Sample{At: at.Add(-time.Second), CPU: capture.CPU{Percent: pct(10), CPUs: 2},
		Memory: capture.Memory{TotalBytes: 1 << 30, AvailableBytes: 1 << 29, UsedPercent: 50},
		Disks:  []capture.Disk{{Mount: "/mnt/" + evil, Device: "/dev/" + evil, FSType: "ext4" + evil, TotalBytes: 1 << 30, UsedBytes: 1 << 29, UsedPercent: 50}},
		TopCPU: []capture.Process{p}, TopMemory: []capture.Process{p},
		Service: &capture.Service{Cgroup: "/system.slice/" + evil, MemoryBytes: u(1 << 20), Pids: 1, Processes: []capture.Process{p}}}
	s2 := s
	s2.At, s2.Trigger = at.Add(2*time.Millisecond), capture.TriggerHealth
	return &capture.Capture{Schema: capture.Schema, Service: service, Host: "host" + evil, HealthURL: "https://" + evil + "/health",
		Unit: "unit" + evil, TransitionTime: at, HealthError: "x509: certificate is valid for " + evil,
		Triggers: []capture.Trigger{{Kind: "health" + evil, At: at, Detail: "detail " + evil}},
		Health:   []capture.Check{{At: at.Add(-time.Second), OK: true, LatencyMS: 2}, {At: at, Error: "err " + evil}},
		Samples:  []capture.Sample{s, s2}, IntervalSeconds: 1, PreflightVersion: "v" + evil,
		Systemd: &capture.Systemd{Unit: "u" + evil, Result: "r" + evil, ExecMainCode: "c" + evil, ActiveState: "a" + evil, SubState: "s" + evil}}
}

func putCapture(t *testing.T, dir, svc string, c *capture.Capture) string {
	t.Helper()
	data, err := capture.Encode(c)
	if err != nil {
		t.Fatal(err)
	}
	return putFile(t, dir, svc, capture.FileName(c.TransitionTime), data)
}

func putFile(t *testing.T, dir, svc, name string, data []byte) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, svc), 0o750); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, svc, name)
	if err := os.WriteFile(path, data, 0o640); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestNoControlSequences(t *testing.T) {
	dir := t.TempDir()
	path := putCapture(t, dir, "evil", hostileCapture("evil", fixedNow.Add(-time.Hour)))
	putState(t, dir, "evil", capture.StateFailing, time.Second)
	for _, args := range [][]string{{"last", "evil"}, {"show", "evil@1"}, {"show", path}, {"list"}, {"list", "evil"}} {
		args = append(args, "--dir", dir)
		for _, environ := range [][]string{nil, {"COLUMNS=80"}} {
			r := readerRun(t, environ, args...)
			if r.code != 0 {
				t.Fatalf("%v: exit %d: %s", args, r.code, r.stderr)
			}
			if c := controls(r.stdout + r.stderr); c != "" {
				t.Errorf("%v %v, off a terminal: a control character near %q", args, environ, c)
			}
		}
		out := onTerminal(t, []string{"TERM=xterm", "COLUMNS="}, args...)
		if c := controls(out); c != "" {
			t.Errorf("%v on a terminal: a control character near %q", args, c)
		}
		if !strings.Contains(out, `\x1b]0;pwned\x07`) && args[0] != "list" {
			t.Errorf("%v: the escape is not shown visibly:\n%s", args, out)
		}
	}
	// --json stays the file's bytes, exactly.
	data, _ := os.ReadFile(path)
	for _, args := range [][]string{{"last", "evil", "--json"}, {"show", path, "--json"}} {
		if r := readerRun(t, nil, append(args, "--dir", dir)...); r.stdout != string(data) {
			t.Errorf("%v is not the file's bytes", args)
		}
	}
}

func TestSafe(t *testing.T) {
	for in, want := range map[string]string{
		"plain text, ünïcode ✓": "plain text, ünïcode ✓",
		"a\x1b[31mb":            `a\x1b[31mb`,
		"tab\there\nnext\r":     `tab\there\nnext\r`,
		"bell\x07del\x7f":       `bell\x07del\x7f`,
		"c1\u009bx\u0085":       `c1\u009bx\u0085`,
		"rlo\u202eabc\u200b":    `rlo\u202eabc\u200b`,
		"bad\xffutf8\xc2":       `bad\xffutf8\xc2`,
		"keep \uFFFD":           "keep \uFFFD",
	} {
		if got := safe(in); got != want {
			t.Errorf("safe(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzRenderers: whatever a capture's strings hold, the report and the
// tables print no control character but their own colour codes.
func FuzzRenderers(f *testing.F) {
	for _, s := range []string{evil, "", "plain", "\x9b\xc2\x9b", "\u2028\u2029", "\x00\x01\x1f"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		at := time.Date(2026, 11, 26, 3, 12, 4, 0, time.UTC)
		c := hostileCapture(s, at)
		// Every string field of the capture carries s.
		c.Host, c.HealthURL, c.Unit, c.HealthError, c.PreflightVersion = s, s, s, s, s
		c.Triggers[0].Kind, c.Triggers[0].Detail, c.Health[1].Error = s, s, s
		for i := range c.Samples {
			sm := &c.Samples[i]
			sm.Disks[0].Mount, sm.Disks[0].Device, sm.Disks[0].FSType, sm.Service.Cgroup = s, s, s, s
			for _, l := range [][]capture.Process{sm.TopCPU, sm.TopMemory, sm.Service.Processes} {
				for j := range l {
					l[j].Name, l[j].Cmdline, l[j].State = s, s, s
				}
			}
		}
		for _, o := range []out{{now: at}, {now: at, color: true, width: 80}, {now: at, color: true, width: 12}} {
			var b bytes.Buffer
			if err := writeReport(&b, c, "/x/"+s+".json", o); err != nil {
				t.Fatal(err)
			}
			if bad := controls(b.String()); bad != "" {
				t.Fatalf("report (%+v) prints a control character near %q", o, bad)
			}
			tb := &table{gap: 2, flex: 1, cols: []col{{head: "A"}, {head: "B"}}, rows: [][]cell{{{s: s, sgr: red}, {s: s}}}}
			var sb strings.Builder
			tb.write(&sb, o)
			if bad := controls(sb.String()); bad != "" {
				t.Fatalf("table prints a control character near %q", bad)
			}
		}
	})
}

// Broken captures newer than a good one: last skips each with a one-line
// warning naming the file and the field, and tells the good one.
func TestBrokenCapturesSkipped(t *testing.T) {
	dir := t.TempDir()
	at := fixedNow.Add(-2 * time.Hour)
	good := hostileCapture("b", at)
	good.Host = "good-host"
	putCapture(t, dir, "b", good)
	enc := func(c *capture.Capture) string {
		data, err := capture.Encode(c)
		if err != nil {
			t.Fatal(err)
		}
		return string(data)
	}
	base := enc(hostileCapture("b", at))
	cases := []struct{ data, field string }{
		{strings.Replace(base, `"transition_time":"`+at.Format(time.RFC3339Nano)+`",`, ``, 1), "transition_time: missing"},
		{strings.Replace(base, `"service":"b",`, `"service":"b","service":"other",`, 1), "service: duplicate key"},
		{strings.Replace(base, `"load1":0`, `"load1":1e308`, 1), "samples[0].load.load1: 1e+308 outside"},
		{enc(hostileCapture("other", at)), `service: "other" disagrees with its directory "b"`},
	}
	var paths []string
	for i, tc := range cases {
		if tc.data == base {
			t.Fatalf("case %d changes nothing", i)
		}
		paths = append(paths, putFile(t, dir, "b", capture.FileName(at.Add(time.Duration(i+1)*time.Minute)), []byte(tc.data)))
	}
	r := readerRun(t, nil, "last", "b", "--dir", dir)
	if r.code != 0 || !strings.Contains(r.stdout, "on good-host") {
		t.Fatalf("exit %d, want the good capture told:\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	warnings := strings.Split(strings.TrimSpace(r.stderr), "\n")
	if len(warnings) != len(cases) {
		t.Fatalf("%d warning lines, want %d:\n%s", len(warnings), len(cases), r.stderr)
	}
	for i, tc := range cases {
		w := warnings[len(cases)-1-i] // newest first
		if !strings.Contains(w, paths[i]) || !strings.Contains(w, tc.field) || !strings.HasPrefix(w, "preflight: warning: skipping ") {
			t.Errorf("warning %q, want one naming %s and %q", w, paths[i], tc.field)
		}
	}
	// show of a file the user names tells it, under its own service's name.
	if r := readerRun(t, nil, "show", paths[3], "--dir", dir); r.code != 0 || !strings.HasPrefix(r.stdout, "other failed at ") {
		t.Errorf("show of another service's capture in b/: exit %d, stdout %.40q, stderr %q", r.code, r.stdout, r.stderr)
	}
	// list reads only heads: a zero transition time is refused there too.
	zero := strings.Replace(base, `"transition_time":"`+at.Format(time.RFC3339Nano)+`"`, `"transition_time":"0001-01-01T00:00:00Z"`, 1)
	zpath := putFile(t, dir, "z", capture.FileName(at), []byte(zero))
	if r := readerRun(t, nil, "list", "z", "--dir", dir); r.code != 1 || !strings.Contains(r.stderr, zpath+": invalid capture: transition_time: missing") {
		t.Errorf("list of a capture failed in year 1: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	// show names the field too, and exits 1.
	if r := readerRun(t, nil, "show", paths[0]); r.code != 1 || !strings.Contains(r.stderr, "transition_time: missing") || r.stdout != "" {
		t.Errorf("show of a capture without transition_time: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
}
