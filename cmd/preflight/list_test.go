package main

// list and show ids: instances from captures and state files, live states,
// robust reading of bad files, short ids, and the cost of 10,000 captures.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/preflight-rec/preflight/recorder/capture"
)

// copyFixtures copies the fixture captures of the given services into a
// new capture directory, without state files.
func copyFixtures(t testing.TB, services ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, svc := range services {
		m, _ := filepath.Glob(filepath.Join(fixtures, svc, "*.json"))
		if len(m) == 0 {
			t.Fatalf("no fixture of %s", svc)
		}
		if err := os.MkdirAll(filepath.Join(dir, svc), 0o750); err != nil {
			t.Fatal(err)
		}
		for _, f := range m {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, svc, filepath.Base(f)), data, 0o640); err != nil {
				t.Fatal(err)
			}
		}
	}
	return dir
}

// putState writes a recorder state file, updated `age` before fixedNow.
func putState(t *testing.T, dir, svc, state string, age time.Duration) {
	t.Helper()
	st := capture.State{Service: svc, PID: 77, Host: "vm", State: state, UpdatedAt: fixedNow.Add(-age),
		StartedAt: fixedNow.Add(-time.Hour), IntervalSeconds: 30, TimeoutSeconds: 10}
	data, _ := json.Marshal(st)
	if err := os.MkdirAll(filepath.Join(dir, capture.StateDir), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(capture.StatePath(dir, svc), data, 0o640); err != nil {
		t.Fatal(err)
	}
}

func TestListLiveStates(t *testing.T) {
	dir := copyFixtures(t, "calm", "leaky")
	putState(t, dir, "calm", capture.StateUnhealthy, time.Second)
	putState(t, dir, "leaky", capture.StateHealthy, 66*time.Second) // 2×30 + 10 + 5 = 75 s of grace
	putState(t, dir, "idle", capture.StateStarting, 0)              // running, no capture yet
	putState(t, dir, "gone", capture.StateHealthy, 76*time.Second)  // stale
	putState(t, dir, "done", capture.StateStopped, 0)
	os.WriteFile(capture.StatePath(dir, "junk"), []byte("{not json"), 0o640)
	os.MkdirAll(filepath.Join(dir, "empty"), 0o750) // a service directory without captures or state

	r := readerRun(t, nil, "list", "--json", "--dir", dir)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	var rows []listedService
	if err := json.Unmarshal([]byte(r.stdout), &rows); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, row := range rows {
		got[row.Service] = fmt.Sprintf("%s/%d/%v", row.State, row.Captures, row.Newest != nil)
	}
	want := map[string]string{
		"calm": "unhealthy/1/true", "leaky": "healthy/1/true", "idle": "starting/0/false",
		"gone": "not running/0/false", "done": "not running/0/false",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("instances:\n got %v\nwant %v", got, want)
	}
	if !strings.Contains(r.stderr, "preflight: warning: skipping "+capture.StatePath(dir, "junk")) {
		t.Errorf("no warning about the broken state file: %q", r.stderr)
	}
	for _, row := range rows {
		if row.Service == "gone" && (row.Recorder == nil || !row.Recorder.Stale) {
			t.Errorf("gone: recorder %+v, want stale", row.Recorder)
		}
	}
}

// TestListRunningRecorder: a real recorder that has no capture yet is
// listed from its state file, healthy; after SIGTERM it is not running.
func TestListRunningRecorder(t *testing.T) {
	h := newHealthServer(t)
	dir := t.TempDir()
	cmd, _ := startRecorder(t, []string{"PREFLIGHT_SERVICE=quiet", "PREFLIGHT_HEALTH_URL=" + h.URL,
		"PREFLIGHT_INTERVAL_SECONDS=0.1"}, "--dir", dir)
	var r result
	waitFor(t, 5*time.Second, "list to show quiet healthy", func() bool {
		r = preflight(t, nil, "list", "--dir", dir)
		return r.code == 0 && strings.Contains(r.stdout, "quiet") && strings.Contains(r.stdout, "healthy")
	})
	if lines := strings.Split(strings.TrimSpace(r.stdout), "\n"); len(lines) != 2 || !strings.Contains(lines[1], " 0 ") {
		t.Errorf("list:\n%s", r.stdout)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	waitFor(t, 5*time.Second, "list to show quiet not running", func() bool {
		r = preflight(t, nil, "list", "--dir", dir)
		return strings.Contains(r.stdout, "not running")
	})
}

// TestBadFiles: foreign, truncated, newer-schema, huge, FIFO and link
// files are warned about by path and skipped by every reader.
func TestBadFiles(t *testing.T) {
	dir := copyFixtures(t, "calm")
	sdir := filepath.Join(dir, "calm")
	good := fixturePath(t, "calm")
	data, _ := os.ReadFile(good)
	bad := map[string]string{} // name → what the warning says (alternatives split by |)
	put := func(name string, content []byte, says string) {
		os.WriteFile(filepath.Join(sdir, name), content, 0o640)
		bad[name] = says
	}
	put("2026-11-27T01-00-00.000Z.json", data[:len(data)/2], truncated)
	put("2026-11-27T02-00-00.000Z.json", data[:300], truncated)
	put("2026-11-27T03-00-00.000Z.json", []byte(`{"hello":"world"}`), "not a preflight capture")
	put("2026-11-27T04-00-00.000Z.json", []byte(`{"schema":"preflight.capture/v2","service":"calm"}`), "newer capture schema")
	put("2026-11-27T05-00-00.000Z.json", []byte("\x00\x01binary}"), "not a preflight capture")
	huge := filepath.Join(sdir, "2026-11-27T06-00-00.000Z.json")
	if f, err := os.Create(huge); err == nil {
		f.Write(data[:100])
		f.Truncate(capture.MaxFileSize + 1) // sparse: costs no disk
		f.Close()
	}
	bad["2026-11-27T06-00-00.000Z.json"] = "too large"
	syscall.Mkfifo(filepath.Join(sdir, "2026-11-27T07-00-00.000Z.json"), 0o640)
	bad["2026-11-27T07-00-00.000Z.json"] = "not a regular file"
	os.Symlink(good, filepath.Join(sdir, "2026-11-27T08-00-00.000Z.json"))
	bad["2026-11-27T08-00-00.000Z.json"] = "symbolic link"
	os.WriteFile(filepath.Join(sdir, "notes.txt"), []byte("not a capture name: ignored"), 0o640)

	checkWarned := func(what string, r readerResult) {
		t.Helper()
		for name, says := range bad {
			found := false
			for _, line := range strings.Split(r.stderr, "\n") {
				if strings.HasPrefix(line, "preflight: warning: skipping "+filepath.Join(sdir, name)) && containsAny(line, says) {
					found = true
				}
			}
			if !found {
				t.Errorf("%s: no warning naming %s (%s) in:\n%s", what, name, says, r.stderr)
			}
		}
	}
	r := readerRun(t, nil, "list", "calm", "--dir", dir)
	if r.code != 0 || strings.Count(r.stdout, "\n") != 2 || !strings.Contains(r.stdout, "calm@7") {
		t.Errorf("list calm: exit %d\n%s", r.code, r.stdout)
	}
	checkWarned("list calm", r)
	for _, args := range [][]string{{"last", "calm"}, {"list"}} {
		r := readerRun(t, nil, append(args, "--dir", dir)...)
		if r.code != 0 || !strings.Contains(r.stdout, "HTTP 500") {
			t.Errorf("%v: exit %d\n%s\n%s", args, r.code, r.stdout, r.stderr)
		}
		checkWarned(strings.Join(args, " "), r)
	}
	// show names the file in its one-line error.
	for name, says := range bad {
		r := readerRun(t, nil, "show", filepath.Join(sdir, name))
		if r.code != 1 || strings.Count(r.stderr, "\n") != 1 || !containsAny(r.stderr, says) {
			t.Errorf("show %s: exit %d, stderr %q (want one line with %q)", name, r.code, r.stderr, says)
		}
	}
}

// truncated is what readers say of a truncated file: list (reading the
// head) says so, last and show (decoding all of it) hit its end.
const truncated = "truncated|unexpected end of JSON input"

func containsAny(s, alts string) bool {
	for _, a := range strings.Split(alts, "|") {
		if strings.Contains(s, a) {
			return true
		}
	}
	return false
}

func TestShowIDs(t *testing.T) {
	dir := copyFixtures(t, "flappy")
	files, _ := filepath.Glob(filepath.Join(dir, "flappy", "*.json"))
	// An instance of a template service: its name holds an '@'.
	os.MkdirAll(filepath.Join(dir, "web@eu"), 0o750)
	data, _ := os.ReadFile(files[0])
	os.WriteFile(filepath.Join(dir, "web@eu", filepath.Base(files[0])), data, 0o640)

	for _, tc := range []struct {
		arg  string
		code int
		want string // the File: line, or the error
	}{
		{"flappy@1", 0, "File: " + files[2]},
		{"flappy@3", 0, "File: " + files[0]},
		{"flappy@" + strings.TrimSuffix(filepath.Base(files[1]), ".json")[:19], 0, "File: " + files[1]},
		{"web@eu@1", 0, "File: " + filepath.Join(dir, "web@eu", filepath.Base(files[0]))},
		{files[1], 0, "File: " + files[1]},
		{"flappy@0", 1, "no capture flappy@0: flappy has 3 captures"},
		{"flappy@4", 1, "no capture flappy@4: flappy has 3 captures"},
		{"flappy@2026-11-26T21-25", 1, "ambiguous capture flappy@2026-11-26T21-25: 3 captures"},
		{"flappy@1999", 1, "no capture flappy@1999: flappy has 3 captures"},
		{"flappy@2020-", 1, "no capture of flappy in " + dir + " is named 2020-…"},
		{"nosuch@1", 1, "nosuch has no captures"},
		{"flappy", 1, "no such file"},
		{"web@eu.json", 1, "no such file"},
	} {
		r := readerRun(t, nil, "show", tc.arg, "--dir", dir)
		out := r.stdout
		if tc.code != 0 {
			out = r.stderr
		}
		if r.code != tc.code || !strings.Contains(out, tc.want) {
			t.Errorf("show %s: exit %d (want %d), want %q in\n%s%s", tc.arg, r.code, tc.code, tc.want, r.stdout, r.stderr)
		}
	}
}

func TestListUsage(t *testing.T) {
	empty := t.TempDir()
	for _, tc := range []struct {
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{[]string{"list", "--dir", empty}, 1, "", "preflight: no captures in " + empty + ", and no recorder keeps state there\n"},
		{[]string{"list", "--json", "--dir", empty}, 1, "[]\n", "preflight: no captures in " + empty},
		{[]string{"list", "x", "--json", "--dir", empty}, 1, "[]\n", "preflight: no captures of x in " + empty},
		{[]string{"list", "../etc", "--dir", empty}, 2, "", "preflight: invalid service name"},
		{[]string{"list", "a/b", "--dir", empty}, 2, "", "preflight: invalid service name"},
		{[]string{"last", "..", "--dir", empty}, 2, "", "preflight: invalid service name"},
		{[]string{"list", "a", "b", "--dir", empty}, 2, "", "preflight: list: wrong number of arguments"},
		{[]string{"list", "--dir", filepath.Join(empty, "none")}, 1, "", "preflight: no capture directory"},
		{[]string{"list", "--json", "--dir", filepath.Join(empty, "none")}, 1, "[]\n", "preflight: no capture directory"},
		{[]string{"list", "x", "--json", "--dir", filepath.Join(empty, "none")}, 1, "[]\n", "preflight: no capture directory"},
	} {
		r := readerRun(t, nil, tc.args...)
		if r.code != tc.code || r.stdout != tc.stdout || !strings.HasPrefix(r.stderr, tc.stderr) {
			t.Errorf("%v: exit %d stdout %q stderr %q; want %d %q %q…", tc.args, r.code, r.stdout, r.stderr, tc.code, tc.stdout, tc.stderr)
		}
	}
	// A recorder with no capture: list SERVICE says how it is.
	putState(t, empty, "idle", capture.StateHealthy, 0)
	r := readerRun(t, nil, "list", "idle", "--dir", empty)
	if r.code != 1 || r.stderr != "preflight: no captures of idle in "+empty+"\nits recorder is healthy\n" {
		t.Errorf("list idle: exit %d stderr %q", r.code, r.stderr)
	}
}

// benchDir makes a capture directory whose service "calm" has n captures:
// hard links to one fixture, each under its own name as the recorder would
// write them.
func benchDir(b *testing.B, n int) (string, string) {
	dir := b.TempDir()
	sdir := filepath.Join(dir, "calm")
	if err := os.MkdirAll(sdir, 0o750); err != nil {
		b.Fatal(err)
	}
	m, _ := filepath.Glob(filepath.Join(fixtures, "calm", "*.json"))
	data, err := os.ReadFile(m[0])
	if err != nil {
		b.Fatal(err)
	}
	first := filepath.Join(sdir, capture.FileName(fixedNow.Add(-time.Duration(n)*time.Minute)))
	if err := os.WriteFile(first, data, 0o640); err != nil {
		b.Fatal(err)
	}
	for i := 1; i < n; i++ {
		name := capture.FileName(fixedNow.Add(-time.Duration(n-i) * time.Minute))
		if err := os.Link(first, filepath.Join(sdir, name)); err != nil {
			b.Fatal(err)
		}
	}
	return dir, "calm"
}

func benchList(b *testing.B, args ...string) {
	dir, _ := benchDir(b, 10000)
	args = append(args, "--dir", dir)
	e := env{stdout: io.Discard, stderr: io.Discard}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := run(context.Background(), args, e); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkList10k: 'preflight list' over a service with 10,000 captures
// reads one directory listing and the head of the newest file.
func BenchmarkList10k(b *testing.B) { benchList(b, "list") }

// BenchmarkListService10k: 'preflight list SERVICE' reads the head of each
// of 10,000 captures (page cache warm).
func BenchmarkListService10k(b *testing.B) { benchList(b, "list", "calm") }

// TestListOtherKeyOrder: a capture rewritten by another tool (keys sorted,
// indented) is listed from a field-by-field decode of its head.
func TestListOtherKeyOrder(t *testing.T) {
	dir := copyFixtures(t, "oom-drop")
	path := filepath.Join(dir, "oom-drop", filepath.Base(fixturePath(t, "oom-drop")))
	data, _ := os.ReadFile(path)
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	sorted, _ := json.MarshalIndent(m, "", "  ") // map keys sorted: "health" before "schema"
	os.WriteFile(path, sorted, 0o640)
	r := readerRun(t, nil, "list", "oom-drop", "--json", "--dir", dir)
	var rows []listedCapture
	if err := json.Unmarshal([]byte(r.stdout), &rows); err != nil || r.code != 0 || len(rows) != 1 {
		t.Fatalf("exit %d, %v: %s %s", r.code, err, r.stdout, r.stderr)
	}
	if got := strings.Join(rows[0].Triggers, ","); got != "oom,exit,health" || rows[0].HealthError != "connection refused" ||
		rows[0].TransitionTime.IsZero() || rows[0].Bytes != int64(len(sorted)) {
		t.Errorf("row %+v", rows[0])
	}
	if r := readerRun(t, nil, "last", "oom-drop", "--dir", dir); r.code != 0 || !strings.Contains(r.stdout, "1. The kernel OOM-killed") {
		t.Errorf("last: exit %d %s", r.code, r.stderr)
	}
}
