package logs

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Entries as journalctl -o json prints them (systemd 252), trimmed of
// fields nothing reads.
const journalJSON = `{"__REALTIME_TIMESTAMP":"1764601200000000","PRIORITY":"6","_TRANSPORT":"stdout","_SYSTEMD_INVOCATION_ID":"aaa","MESSAGE":"listening on :8080"}
{"__REALTIME_TIMESTAMP":"1764601201000000","PRIORITY":"3","_TRANSPORT":"stdout","_SYSTEMD_INVOCATION_ID":"aaa","MESSAGE":"connecting with --password=hunter2 to db"}
{"__REALTIME_TIMESTAMP":"1764601202000000","PRIORITY":"4","_TRANSPORT":"stdout","_SYSTEMD_INVOCATION_ID":"aaa","MESSAGE":[98,97,100,255,33]}
{"__REALTIME_TIMESTAMP":"1764601202500000","PRIORITY":"2","_TRANSPORT":"stdout","_SYSTEMD_INVOCATION_ID":"aaa","MESSAGE":"panic: runtime error: invalid memory address"}
{"__REALTIME_TIMESTAMP":"1764601202600000","PRIORITY":"5","_TRANSPORT":"journal","INVOCATION_ID":"aaa","MESSAGE":"dead-drop.service: Main process exited, code=exited, status=2/INVALIDARGUMENT"}
{"__REALTIME_TIMESTAMP":"1764601202700000","PRIORITY":"6","_TRANSPORT":"stdout","_SYSTEMD_INVOCATION_ID":"bbb","MESSAGE":"listening on :8080 (restarted)"}
{"__REALTIME_TIMESTAMP":"1764601209000000","PRIORITY":"6","_TRANSPORT":"stdout","_SYSTEMD_INVOCATION_ID":"aaa","MESSAGE":"too late"}
{"__REALTIME_TIMESTAMP":"1764601203000000","_TRANSPORT":"stdout","MESSAGE":null}
not json
`

func TestParseJournalJSON(t *testing.T) {
	es := ParseJournalJSON([]byte(journalJSON))
	if len(es) != 8 {
		t.Fatalf("%d entries, want 8", len(es))
	}
	if e := es[2]; e.Text != "bad\uFFFD!" || e.Priority != 4 || !e.At.Equal(time.UnixMicro(1764601202000000)) {
		t.Errorf("byte-array MESSAGE: %+v", e)
	}
	if e := es[4]; e.Invocation != "aaa" || e.Transport != "journal" {
		t.Errorf("systemd's entry: %+v", e)
	}
	if e := es[7]; e.Text != "" || e.Priority != 6 {
		t.Errorf("null MESSAGE, no PRIORITY: %+v", e)
	}
}

func TestLastWords(t *testing.T) {
	trigger := time.UnixMicro(1764601202400000)
	got := LastWords(ParseJournalJSON([]byte(journalJSON)), trigger, 4)
	want := []string{"connecting with --password=<redacted> to db", "bad\uFFFD!",
		"panic: runtime error: invalid memory address", // within Grace, same run
		"dead-drop.service: Main process exited, code=exited, status=2/INVALIDARGUMENT"}
	var texts []string
	for _, l := range got {
		texts = append(texts, l.Text)
	}
	if strings.Join(texts, "\n") != strings.Join(want, "\n") {
		t.Errorf("last words:\n%s\nwant:\n%s", strings.Join(texts, "\n"), strings.Join(want, "\n"))
	}
	if got[0].Priority != 3 || !got[0].At.Equal(time.UnixMicro(1764601201000000)) {
		t.Errorf("first line %+v", got[0])
	}
	if l := LastWords(nil, trigger, 20); l == nil || len(l) != 0 {
		t.Errorf("no entries: %#v, want []", l)
	}
}

// fakeJournalctl writes a script that prints out and err and exits rc.
func fakeJournalctl(t *testing.T, out, errText string, rc int) Journalctl {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "out"), []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
	script := "#!/bin/sh\necho \"$@\" > " + filepath.Join(dir, "args") + "\ncat " + filepath.Join(dir, "out") +
		"\nprintf '%s' '" + errText + "' >&2\nexit " + string(rune('0'+rc)) + "\n"
	p := filepath.Join(dir, "journalctl")
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	files := filepath.Join(dir, "journal", "0123")
	if err := os.MkdirAll(files, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(files, "system.journal"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	return Journalctl{Path: p, Dirs: []string{filepath.Join(dir, "journal")}}
}

func TestReadJournal(t *testing.T) {
	trigger := time.UnixMicro(1764601202400000)
	j := fakeJournalctl(t, journalJSON, "", 0)
	lines, err := j.ReadJournal(context.Background(), "dead-drop.service", 2, trigger)
	if err != nil || len(lines) != 2 || !strings.HasPrefix(lines[1].Text, "dead-drop.service: Main process exited") {
		t.Fatalf("ReadJournal = %+v, %v", lines, err)
	}
	args, _ := os.ReadFile(filepath.Join(filepath.Dir(j.Path), "args"))
	if want := "--no-pager -o json --output-fields=" + outputFields + " -u dead-drop.service -n 66 --until @1764601203.400000"; strings.TrimSpace(string(args)) != want {
		t.Errorf("journalctl %s, want %s", args, want)
	}
	for _, tc := range []struct {
		stderr string
		rc     int
		want   error
	}{
		{"No journal files were found.\n", 0, ErrNoJournal},
		{"Hint: You are currently not seeing messages from other users and the system.\n", 0, ErrNoAccess},
		{"No journal files were opened due to insufficient permissions.\n", 1, ErrNoAccess},
	} {
		_, err := fakeJournalctl(t, "", tc.stderr, tc.rc).ReadJournal(context.Background(), "x.service", 20, trigger)
		if !errors.Is(err, tc.want) {
			t.Errorf("stderr %q: %v, want %v", tc.stderr, err, tc.want)
		}
	}
	_, err = fakeJournalctl(t, "", "Failed to parse timestamp", 1).ReadJournal(context.Background(), "x.service", 20, trigger)
	if err == nil || !strings.Contains(err.Error(), "Failed to parse timestamp") {
		t.Errorf("a failing journalctl: %v", err)
	}
	nowhere := fakeJournalctl(t, "", "", 0)
	nowhere.Path = filepath.Join(t.TempDir(), "nowhere")
	_, err = nowhere.ReadJournal(context.Background(), "x.service", 20, trigger)
	if !errors.Is(err, ErrNoJournal) {
		t.Errorf("no journalctl: %v, want ErrNoJournal", err)
	}
	nofiles := fakeJournalctl(t, journalJSON, "", 0)
	nofiles.Dirs = []string{t.TempDir()}
	_, err = nofiles.ReadJournal(context.Background(), "x.service", 20, trigger)
	if !errors.Is(err, ErrNoJournal) || !strings.Contains(err.Error(), "no system journal files in ") {
		t.Errorf("no journal files: %v, want ErrNoJournal", err)
	}
	if os.Geteuid() != 0 {
		unreadable := fakeJournalctl(t, journalJSON, "", 0)
		os.Chmod(filepath.Join(unreadable.Dirs[0], "0123", "system.journal"), 0)
		if _, err = unreadable.ReadJournal(context.Background(), "x.service", 20, trigger); !errors.Is(err, ErrNoAccess) {
			t.Errorf("unreadable journal files: %v, want ErrNoAccess", err)
		}
	}
}

func TestReadKernelJournal(t *testing.T) {
	out := `{"__REALTIME_TIMESTAMP":"1764601200000000","PRIORITY":"3","_TRANSPORT":"kernel","MESSAGE":"` + oomKillLine + `"}
{"__REALTIME_TIMESTAMP":"1764601200000100","PRIORITY":"3","_TRANSPORT":"kernel","MESSAGE":"` + oomKill61 + `"}
{"__REALTIME_TIMESTAMP":"1764601200000200","PRIORITY":"6","_TRANSPORT":"kernel","MESSAGE":"usb 1-1: new device"}
`
	j := fakeJournalctl(t, out, "", 0)
	lines, err := j.ReadKernelJournal(context.Background(), time.UnixMicro(1764601100000000), time.UnixMicro(1764601300000000),
		&Filter{Cgroups: []string{"/system.slice/dead-drop.service"}})
	if err != nil || len(lines) != 2 || lines[1].Text != oomKill61 {
		t.Fatalf("ReadKernelJournal = %+v, %v", lines, err)
	}
	// An entry journald read from the kernel's backlog at its start: its
	// receive time is recent, the kernel's stamp (µs since boot) is not.
	now, mono, err := clocks()
	if err != nil {
		t.Fatal(err)
	}
	stamp := func(d time.Duration) string { return strconv.FormatInt((mono - d).Microseconds(), 10) }
	out = `{"__REALTIME_TIMESTAMP":"` + strconv.FormatInt(now.UnixMicro(), 10) + `","_SOURCE_MONOTONIC_TIMESTAMP":"` + stamp(time.Hour) + `","_TRANSPORT":"kernel","MESSAGE":"` + oomKill61 + `"}
{"__REALTIME_TIMESTAMP":"` + strconv.FormatInt(now.UnixMicro(), 10) + `","_SOURCE_MONOTONIC_TIMESTAMP":"` + stamp(10*time.Second) + `","_TRANSPORT":"kernel","MESSAGE":"` + oomKillLine + `"}
`
	j = fakeJournalctl(t, out, "", 0)
	lines, err = j.ReadKernelJournal(context.Background(), now.Add(-2*time.Minute), now.Add(time.Second), &Filter{Cgroups: []string{"/system.slice/dead-drop.service"}})
	if err != nil || len(lines) != 1 || lines[0].Text != oomKillLine {
		t.Fatalf("ReadKernelJournal of the backlog = %+v, %v; want only the line the kernel logged 10s ago", lines, err)
	}
	if d := now.Sub(lines[0].At) - 10*time.Second; d < -time.Second || d > time.Second {
		t.Errorf("the line's time is %s before now, want 10s", now.Sub(lines[0].At))
	}
}
