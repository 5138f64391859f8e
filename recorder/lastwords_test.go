package recorder

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/preflight-rec/preflight/recorder/capture"
	"github.com/preflight-rec/preflight/recorder/logs"
)

// fakeJournal is a journalctl that prints the unit's lines, logged
// relative to now, over a fake system journal.
func fakeJournal(t *testing.T, now time.Time, lines ...string) logs.Journalctl {
	t.Helper()
	dir := t.TempDir()
	var out strings.Builder
	for i, l := range lines {
		at := now.Add(time.Duration(i-len(lines)) * time.Second)
		fmt.Fprintf(&out, `{"__REALTIME_TIMESTAMP":"%d","PRIORITY":"3","_SYSTEMD_INVOCATION_ID":"a","MESSAGE":%q}`+"\n", at.UnixMicro(), l)
	}
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(filepath.Join(dir, "out"), []byte(out.String()), 0o644))
	must(os.MkdirAll(filepath.Join(dir, "journal", "m"), 0o755))
	must(os.WriteFile(filepath.Join(dir, "journal", "m", "system.journal"), nil, 0o644))
	p := filepath.Join(dir, "journalctl")
	must(os.WriteFile(p, []byte("#!/bin/sh\ncat "+filepath.Join(dir, "out")+"\n"), 0o755))
	return logs.Journalctl{Path: p, Dirs: []string{filepath.Join(dir, "journal")}}
}

// The capture is written at the trigger without the logs, then rewritten
// with them: the unit's last lines (redacted), and why the kernel's are
// absent (no cgroup here: no PIDs to look for). Also when the incident is
// over before the words come (a service healthy again within a second).
func TestLastWords(t *testing.T) {
	for _, closed := range []bool{false, true} {
		t.Run(fmt.Sprintf("incident over first: %v", closed), func(t *testing.T) {
			now := time.Now()
			opt := Options{KmsgPath: filepath.Join(t.TempDir(), "kmsg"), Journalctl: fakeJournal(t, now, "starting", "db password=hunter2 refused")}
			r := newTestRecorderOpt(t, func(c *Config) { c.FailureThreshold, c.JournalLines = 1, 1 }, opt)
			r.tick(t.Context(), now)
			<-r.checkDone
			r.checking = false
			r.onCheck(check(true, ""))
			r.onCheck(check(false, "HTTP 503"))
			_, c := readOnly(t, r)
			if c.Journal != nil || c.KernelLog != nil || c.JournalMissing != "" || c.KernelLogMissing != "" {
				t.Fatalf("the first write waited for the logs: %+v %+v", c.Journal, c.KernelLog)
			}
			if closed {
				r.onCheck(check(true, ""))
				if r.inc != nil {
					t.Fatal("the incident is still open")
				}
			}
			select {
			case w := <-r.words.done:
				r.onLastWords(w)
			case <-time.After(10 * time.Second):
				t.Fatal("no last words within 10s")
			}
			_, c = readOnly(t, r)
			if len(c.Journal) != 1 || c.Journal[0].Text != "db password=<redacted> refused" || c.Journal[0].Priority != 3 {
				t.Errorf("journal %+v, want the last line, redacted", c.Journal)
			}
			if c.KernelLog != nil || c.KernelLogMissing != "the service's processes and cgroup are unknown" {
				t.Errorf("kernel_log %v, kernel_log_missing %q", c.KernelLog, c.KernelLogMissing)
			}
		})
	}
}

func TestLastWordsDisabled(t *testing.T) {
	r := newTestRecorderOpt(t, func(c *Config) { c.FailureThreshold, c.JournalLines = 1, 0 }, Options{KmsgPath: filepath.Join(t.TempDir(), "kmsg")})
	r.tick(t.Context(), time.Now())
	<-r.checkDone
	r.checking = false
	r.onCheck(check(true, ""))
	r.onCheck(check(false, "HTTP 503"))
	r.onLastWords(<-r.words.done)
	_, c := readOnly(t, r)
	if c.Journal != nil || c.JournalMissing != "disabled (JOURNAL_LINES is 0)" {
		t.Errorf("journal %v, journal_missing %q", c.Journal, c.JournalMissing)
	}
	if _, err := capture.Decode(mustRead(t, r)); err != nil {
		t.Error(err)
	}
}

func mustRead(t *testing.T, r *Recorder) []byte {
	p, _ := readOnly(t, r)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
