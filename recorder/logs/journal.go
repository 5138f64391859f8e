package logs

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/preflight-rec/preflight/recorder/capture"
	"github.com/preflight-rec/preflight/recorder/sample"
)

// Why a journal could not be read.
var (
	ErrNoJournal = errors.New("no journal on this machine")
	ErrNoAccess  = errors.New("no access to the system journal (the recorder's user needs the group systemd-journal)")
)

// Grace is how long after a trigger the service's last lines may still
// arrive (a crash's last words on stderr reach the journal as the process
// dies) and count as said before it: lines of the failed run only, never of
// the restarted one.
const Grace = time.Second

// Entry is one journal entry, as journalctl -o json prints it.
type Entry struct {
	At         time.Time
	Priority   int
	Text       string
	Invocation string // the unit's run (_SYSTEMD_INVOCATION_ID, or systemd's INVOCATION_ID about it)
	Transport  string // _TRANSPORT: kernel, stdout, journal, syslog…
	// Mono is the kernel's own stamp of a kernel entry
	// (_SOURCE_MONOTONIC_TIMESTAMP, µs of CLOCK_MONOTONIC); 0 when absent.
	// At is when journald read it, which for the backlog it reads at its
	// start is long after.
	Mono uint64
}

// ParseJournalJSON parses journalctl -o json output: one object a line.
// MESSAGE is a string, an array of bytes (not UTF-8) or null. Lines
// that are not an entry are skipped.
func ParseJournalJSON(data []byte) []Entry {
	var out []Entry
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var raw map[string]json.RawMessage
		if json.Unmarshal(sc.Bytes(), &raw) != nil {
			continue
		}
		us, err := strconv.ParseInt(jsonString(raw["__REALTIME_TIMESTAMP"]), 10, 64)
		if err != nil {
			continue
		}
		e := Entry{
			At:         time.UnixMicro(us).UTC(),
			Priority:   6, // journald's default, as journalctl shows an entry without one
			Text:       jsonString(raw["MESSAGE"]),
			Invocation: cmpOr(jsonString(raw["_SYSTEMD_INVOCATION_ID"]), jsonString(raw["INVOCATION_ID"])),
			Transport:  jsonString(raw["_TRANSPORT"]),
		}
		e.Mono, _ = strconv.ParseUint(jsonString(raw["_SOURCE_MONOTONIC_TIMESTAMP"]), 10, 64)
		if p, err := strconv.Atoi(jsonString(raw["PRIORITY"])); err == nil && p >= 0 && p <= 7 {
			e.Priority = p
		}
		out = append(out, e)
	}
	return out
}

// jsonString decodes a journal field: a string, or an array of bytes.
func jsonString(m json.RawMessage) string {
	var s string
	if json.Unmarshal(m, &s) == nil {
		return s
	}
	var b []byte
	var ints []int
	if json.Unmarshal(m, &ints) == nil {
		for _, c := range ints {
			b = append(b, byte(c))
		}
		return strings.ToValidUTF8(string(b), "\uFFFD")
	}
	return ""
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// LastWords returns the last n entries said before trigger: those at or
// before it, and those within Grace after it that belong to the same run
// of the unit as the last one before it. Text is redacted as command lines
// are ([sample.Redact]) and cut; the newest lines within MaxJournalByte are
// kept.
func LastWords(entries []Entry, trigger time.Time, n int) []capture.JournalLine {
	run := ""
	for _, e := range entries {
		if !e.At.After(trigger) {
			run = e.Invocation
		}
	}
	var keep []capture.JournalLine
	for _, e := range entries {
		if e.At.After(trigger) && (e.At.After(trigger.Add(Grace)) || e.Invocation != run) {
			continue
		}
		keep = append(keep, capture.JournalLine{At: e.At, Priority: e.Priority, Text: sample.Redact([]string{e.Text})})
	}
	if len(keep) > n {
		keep = keep[len(keep)-n:]
	}
	total := 0
	for i := len(keep) - 1; i >= 0; i-- {
		total += len(keep[i].Text)
		if total > MaxJournalByte {
			keep = keep[i+1:]
			break
		}
	}
	if keep == nil {
		keep = []capture.JournalLine{}
	}
	return keep
}

// Journalctl runs journalctl. The zero value runs "journalctl" from PATH
// over the system journal's files in /run/log/journal and /var/log/journal.
type Journalctl struct {
	Path      string   // "": journalctl
	Dirs      []string // where the journal's files are; nil: /run/log/journal, /var/log/journal
	Args      []string // added before the query (tests: -D DIR)
	MaxOutput int      // bytes of output read at most; 0: 4 MiB
}

// ReadJournal returns the unit's last n journal lines before trigger
// ([LastWords]). It asks journalctl for the entries up to trigger+Grace,
// so it should run once that has passed.
func (j Journalctl) ReadJournal(ctx context.Context, unit string, n int, trigger time.Time) ([]capture.JournalLine, error) {
	out, err := j.run(ctx, "-u", unit, "-n", strconv.Itoa(n+64), "--until", at(trigger.Add(Grace)))
	if err != nil {
		return nil, err
	}
	return LastWords(ParseJournalJSON(out), trigger, n), nil
}

// ReadKernelJournal returns the kernel's lines of this boot in the journal,
// logged (by the kernel's own stamp) between since and until, that f finds
// about the service, bounded ([Bound]): the source where /dev/kmsg is not
// readable (the hardened unit) and journald keeps the kernel's log.
func (j Journalctl) ReadKernelJournal(ctx context.Context, since, until time.Time, f *Filter) ([]capture.KernelLine, error) {
	lines, err := j.KernelLines(ctx, since, until)
	if err != nil {
		return nil, err
	}
	return Select(lines, f), nil
}

// KernelLines is [Journalctl.ReadKernelJournal] without the selection:
// all the kernel's lines of the journal logged between since and until,
// uncut.
func (j Journalctl) KernelLines(ctx context.Context, since, until time.Time) ([]capture.KernelLine, error) {
	out, err := j.run(ctx, "-b", "_TRANSPORT=kernel", "-n", "4096", "--since", at(since.Add(-time.Minute)), "--until", at(until))
	if err != nil {
		return nil, err
	}
	now, mono, err := clocks()
	if err != nil {
		return nil, err
	}
	var lines []capture.KernelLine
	for _, e := range ParseJournalJSON(out) {
		t := e.At
		if e.Mono > 0 {
			t = WallTime(e.Mono, now, mono).UTC()
		}
		if !t.Before(since) && !t.After(until) {
			lines = append(lines, capture.KernelLine{At: t, Text: e.Text})
		}
	}
	return lines, nil
}

// at formats t for journalctl's --since and --until: "@" and Unix seconds.
func at(t time.Time) string {
	return "@" + strconv.FormatFloat(float64(t.UnixMicro())/1e6, 'f', 6, 64)
}

// available says whether the system journal has files here and whether
// the recorder may read them (journalctl itself shows nothing and says
// nothing when there are none, or only a hint when it may not read them).
func (j Journalctl) available() error {
	dirs := j.Dirs
	if dirs == nil {
		dirs = []string{"/run/log/journal", "/var/log/journal"}
	}
	found := false
	for _, d := range dirs {
		files, _ := filepath.Glob(filepath.Join(d, "*", "system*.journal"))
		for _, f := range files {
			found = true
			if fh, err := os.Open(f); err == nil {
				fh.Close()
				return nil
			}
		}
	}
	if !found {
		return fmt.Errorf("%w: no system journal files in %s", ErrNoJournal, strings.Join(dirs, " or "))
	}
	return ErrNoAccess
}

// outputFields are the fields read of an entry (journalctl adds the
// __REALTIME_TIMESTAMP and cursor fields itself).
const outputFields = "MESSAGE,PRIORITY,_SYSTEMD_INVOCATION_ID,INVOCATION_ID,_TRANSPORT,_SOURCE_MONOTONIC_TIMESTAMP"

func (j Journalctl) run(ctx context.Context, query ...string) ([]byte, error) {
	if err := j.available(); err != nil {
		return nil, err
	}
	path := cmpOr(j.Path, "journalctl")
	args := append(append([]string{"--no-pager", "-o", "json", "--output-fields=" + outputFields}, j.Args...), query...)
	cmd := exec.CommandContext(ctx, path, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &limitWriter{w: &stderr, n: 4 << 10}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("journalctl: %w", err)
	}
	if err := cmd.Start(); err != nil {
		if errors.Is(err, exec.ErrNotFound) || errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w: %s not found", ErrNoJournal, path)
		}
		return nil, fmt.Errorf("journalctl: %w", err)
	}
	max := j.MaxOutput
	if max <= 0 {
		max = 4 << 20
	}
	out, rerr := io.ReadAll(io.LimitReader(stdout, int64(max)))
	_, _ = io.Copy(io.Discard, stdout) // past the bound: drained, not kept
	werr := cmd.Wait()
	msg := strings.TrimSpace(stderr.String())
	switch {
	case strings.Contains(msg, "No journal files were found"):
		return nil, ErrNoJournal
	case strings.Contains(msg, "not seeing messages from other users"), strings.Contains(msg, "No journal files were opened due to insufficient permissions"):
		return nil, ErrNoAccess
	case ctx.Err() != nil:
		return nil, fmt.Errorf("journalctl: %w", ctx.Err())
	case werr != nil:
		if msg != "" {
			return nil, fmt.Errorf("journalctl: %w: %s", werr, firstLine(msg))
		}
		return nil, fmt.Errorf("journalctl: %w", werr)
	case rerr != nil:
		return nil, fmt.Errorf("journalctl: %w", rerr)
	}
	return out, nil
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

// limitWriter keeps the first n bytes written to it.
type limitWriter struct {
	w io.Writer
	n int
}

func (l *limitWriter) Write(p []byte) (int, error) {
	if k := min(len(p), l.n); k > 0 {
		l.w.Write(p[:k])
		l.n -= k
	}
	return len(p), nil
}
