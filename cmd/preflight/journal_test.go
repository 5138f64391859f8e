package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"github.com/coreos/go-systemd/v22/journal"
	"github.com/rs/zerolog"
)

type journalEntrySent struct {
	msg  string
	prio journal.Priority
	vars map[string]string
}

// TestJournalWriter: the recorder's log lines as journal entries: PRIORITY
// from the level, the PREFLIGHT_ fields, MESSAGE_ID on "capture written"
// only, the fields readable in MESSAGE; an entry the journal refuses goes to
// stderr as its JSON line.
func TestJournalWriter(t *testing.T) {
	var sent []journalEntrySent
	var fallback bytes.Buffer
	refuse := false
	w := &journalWriter{
		send: func(msg string, prio journal.Priority, vars map[string]string) error {
			if refuse {
				return errors.New("no journal")
			}
			sent = append(sent, journalEntrySent{msg, prio, vars})
			return nil
		},
		fallback: &fallback,
	}
	log := zerolog.New(w).Level(zerolog.DebugLevel).With().Timestamp().Str("service", "dead-drop").Logger()
	path := "/var/lib/preflight/dead-drop/2026-11-26T03-12-04.123Z.json"
	log.Warn().Str("trigger", "exit").Str("detail", "cgroup emptied").Msg("service failed")
	log.Info().Str("path", path).Str("trigger", "exit").Str("capture", path).Int("bytes", 1234).Msg("capture written")
	log.Info().Str("path", path).Str("capture", "/abs"+path).Int("bytes", 1300).Msg("capture updated")
	log.Error().Err(errors.New("no space left on device")).Str("path", path).Msg("failed to write capture, will retry")
	log.Debug().Strs("files", []string{"a", "b"}).Msg("debug line")

	want := []struct {
		prio journal.Priority
		msg  string
		vars map[string]string
	}{
		{journal.PriWarning, `service failed detail="cgroup emptied" service=dead-drop trigger=exit`,
			map[string]string{"PREFLIGHT_SERVICE": "dead-drop", "PREFLIGHT_TRIGGER": "exit", "PREFLIGHT_DETAIL": "cgroup emptied"}},
		{journal.PriInfo, "capture written bytes=1234 path=" + path + " service=dead-drop trigger=exit",
			map[string]string{"MESSAGE_ID": CaptureWrittenID, "PREFLIGHT_CAPTURE": path, "PREFLIGHT_TRIGGER": "exit", "PREFLIGHT_BYTES": "1234", "PREFLIGHT_PATH": path}},
		{journal.PriInfo, "capture updated bytes=1300 capture=/abs" + path + " path=" + path + " service=dead-drop",
			map[string]string{"PREFLIGHT_CAPTURE": "/abs" + path, "MESSAGE_ID": ""}},
		{journal.PriErr, `failed to write capture, will retry error="no space left on device" path=` + path + " service=dead-drop",
			map[string]string{"PREFLIGHT_ERROR": "no space left on device", "PREFLIGHT_CAPTURE": ""}},
		{journal.PriDebug, `debug line files="[\"a\",\"b\"]" service=dead-drop`,
			map[string]string{"PREFLIGHT_FILES": `["a","b"]`}},
	}
	if len(sent) != len(want) {
		t.Fatalf("%d entries sent, want %d: %+v", len(sent), len(want), sent)
	}
	for i, w := range want {
		got := sent[i]
		if got.prio != w.prio || got.msg != w.msg {
			t.Errorf("entry %d: PRIORITY=%d MESSAGE=%q\nwant PRIORITY=%d MESSAGE=%q", i, got.prio, got.msg, w.prio, w.msg)
		}
		if got.vars["SYSLOG_IDENTIFIER"] != "preflight" {
			t.Errorf("entry %d: SYSLOG_IDENTIFIER=%q", i, got.vars["SYSLOG_IDENTIFIER"])
		}
		for k, v := range w.vars {
			if got.vars[k] != v {
				t.Errorf("entry %d: %s=%q, want %q", i, k, got.vars[k], v)
			}
		}
		for k := range got.vars {
			if !regexp.MustCompile(`^[A-Z0-9][A-Z0-9_]*$`).MatchString(k) {
				t.Errorf("entry %d: invalid journal field name %q", i, k)
			}
			if k == "PREFLIGHT_TIME" || k == "PREFLIGHT_LEVEL" || k == "PREFLIGHT_MESSAGE" {
				t.Errorf("entry %d: %s duplicates what the journal has", i, k)
			}
		}
	}
	if fallback.Len() != 0 {
		t.Errorf("fallback written while the journal took every entry: %q", fallback.String())
	}

	refuse = true
	log.Warn().Msg("service failed")
	if !strings.Contains(fallback.String(), `"message":"service failed"`) {
		t.Errorf("refused entry: fallback holds %q, want the JSON line", fallback.String())
	}
}

// TestJournalStderr: the journal is used only when JOURNAL_STREAM names
// stderr's own device and inode.
func TestJournalStderr(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	match := fmt.Sprintf("%d:%d", st.Dev, st.Ino)
	for _, tc := range []struct {
		stderr  io.Writer
		environ []string
		journal bool
	}{
		{f, []string{"JOURNAL_STREAM=" + match}, true},
		{f, nil, false},
		{f, []string{fmt.Sprintf("JOURNAL_STREAM=%d:%d", st.Dev, st.Ino+1)}, false},
		{f, []string{"JOURNAL_STREAM=garbage"}, false},
		{&bytes.Buffer{}, []string{"JOURNAL_STREAM=" + match}, false},
	} {
		if got := journalStderr(env{stderr: tc.stderr, environ: tc.environ}) != nil; got != tc.journal {
			t.Errorf("stderr %T, environ %q: journal %v, want %v", tc.stderr, tc.environ, got, tc.journal)
		}
	}
}

// TestLogMilliseconds: outside the journal, log lines are today's JSON,
// with millisecond times.
func TestLogMilliseconds(t *testing.T) {
	var buf bytes.Buffer
	log := newLogger(env{stderr: &buf}, "info")
	log.Info().Msg("hello")
	if !regexp.MustCompile(`^\{"level":"info","time":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}(Z|[+-]\d\d:\d\d)","message":"hello"\}\n$`).MatchString(buf.String()) {
		t.Errorf("log line %q, want JSON with a millisecond time", buf.String())
	}
}
