package main

// The readers against frozen captures the recorder made (testdata/README.md):
// golden outputs of last, show and list, the findings each capture must lead
// with, the width and colour manners.
//
//	go test ./cmd/preflight -run 'Golden' -update   # rewrite the golden files

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"golang.org/x/sys/unix"

	"github.com/preflight-rec/preflight/recorder/capture"
)

var update = flag.Bool("update", false, "rewrite the golden files of the reader tests")

// fixtures is the frozen capture directory: six services, five recorder
// state files.
const fixtures = "testdata/captures"

// fixedNow is the readers' clock in these tests: about two hours after the
// fixtures were made.
var fixedNow = time.Date(2026, 11, 26, 23, 30, 0, 0, time.UTC)

type readerResult struct {
	code           int
	stdout, stderr string
}

// readerRun runs a command in-process, as main does, with the readers'
// clock at fixedNow and their zone UTC.
func readerRun(t testing.TB, environ []string, args ...string) readerResult {
	t.Helper()
	fixReaderClock(t)
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), args, env{stdout: &stdout, stderr: &stderr, environ: environ})
	code := report(&stderr, err)
	return readerResult{code, stdout.String(), stderr.String()}
}

func fixReaderClock(t testing.TB) {
	oldNow, oldZone := now, zone
	now, zone = func() time.Time { return fixedNow }, time.UTC
	t.Cleanup(func() { now, zone = oldNow, oldZone })
}

// checkGolden compares got with testdata/golden/name, or rewrites it with
// -update.
func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to write it)", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s (run with -update to rewrite it after checking):\n%s", path, lineDiff(string(want), got))
	}
}

// lineDiff shows the first lines where want and got differ.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	shown := 0
	for i := 0; i < max(len(w), len(g)) && shown < 8; i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			b.WriteString("line " + strconv.Itoa(i+1) + ":\n  want " + wl + "\n  got  " + gl + "\n")
			shown++
		}
	}
	return b.String()
}

func fixturePath(t *testing.T, service string) string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(fixtures, service, "*.json"))
	if err != nil || len(m) == 0 {
		t.Fatalf("no fixture capture of %s: %v", service, err)
	}
	return m[len(m)-1]
}

func TestGolden(t *testing.T) {
	cols80 := []string{"COLUMNS=80"}
	for _, tc := range []struct {
		golden  string
		environ []string
		args    []string
	}{
		{"last-oom-drop.txt", nil, []string{"last", "oom-drop"}},
		{"last-oom-drop-80.txt", cols80, []string{"last", "oom-drop"}},
		{"last-leaky.txt", nil, []string{"last", "leaky"}},
		{"last-leaky-80.txt", cols80, []string{"last", "leaky"}},
		{"last-ledger.txt", nil, []string{"last", "ledger"}},
		{"last-calm.txt", nil, []string{"last", "calm"}},
		{"last-calm-80.txt", cols80, []string{"last", "calm"}},
		{"last-balloon.txt", nil, []string{"last", "balloon"}},
		{"show-flappy-2.txt", nil, []string{"show", "flappy@2"}},
		{"list.txt", nil, []string{"list"}},
		{"list-80.txt", cols80, []string{"list"}},
		{"list.json", nil, []string{"list", "--json"}},
		{"list-flappy.txt", nil, []string{"list", "flappy"}},
		{"list-flappy-80.txt", cols80, []string{"list", "flappy"}},
		{"list-flappy.json", nil, []string{"list", "--json", "flappy"}},
	} {
		t.Run(tc.golden, func(t *testing.T) {
			r := readerRun(t, tc.environ, append(tc.args, "--dir", fixtures)...)
			if r.code != 0 || r.stderr != "" {
				t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
			}
			checkGolden(t, tc.golden, r.stdout)
			if strings.Contains(tc.golden, "-80") {
				for i, line := range strings.Split(r.stdout, "\n") {
					if n := utf8.RuneCountInString(line); n > 80 {
						t.Errorf("line %d is %d columns wide: %q", i+1, n, line)
					}
				}
			}
		})
	}
}

// TestJSONBytes: last --json and show --json print the file byte for byte.
func TestJSONBytes(t *testing.T) {
	for _, svc := range []string{"oom-drop", "leaky", "ledger", "calm", "balloon", "flappy"} {
		path := fixturePath(t, svc)
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, args := range [][]string{
			{"last", svc, "--json", "--dir", fixtures},
			{"show", path, "--json"},
			{"show", "--json", svc + "@1", "--dir", fixtures},
		} {
			if r := readerRun(t, nil, args...); r.code != 0 || r.stdout != string(want) || r.stderr != "" {
				t.Errorf("%v: exit %d, byte-identical %v, stderr %q", args, r.code, r.stdout == string(want), r.stderr)
			}
		}
	}
}

// findingsOf returns the lines of a report's Findings section.
func findingsOf(report string) []string {
	_, rest, _ := strings.Cut(report, "\nFindings\n")
	sec, _, _ := strings.Cut(rest, "\n\n")
	return strings.Split(sec, "\n")
}

// TestFirstFinding is the "done when": what each capture's report
// names first, with its numbers.
func TestFirstFinding(t *testing.T) {
	for _, tc := range []struct {
		service string
		first   []string // in the first finding's summary and evidence
	}{
		{"oom-drop", []string{"1. The kernel OOM-killed a process in the service's cgroup", "oom_kills 0 at", "→ 1 at",
			"of its 32MiB limit", "(oom-drop)"}},
		{"leaky", []string{"1. The service's memory rose toward its cgroup limit", "limit 64MiB", "growing +",
			"at that rate the limit is"}},
		{"ledger", []string{"1. A filesystem was almost full: / at 99.9%", "/ (ext4 on /dev/vda): 99.9% used"}},
		{"calm", []string{"Nothing in the samples stands out."}},
		{"balloon", []string{"1. The service's memory grew steadily (it has no memory limit)"}},
	} {
		r := readerRun(t, nil, "last", tc.service, "--dir", fixtures)
		if r.code != 0 {
			t.Fatalf("last %s: exit %d %s", tc.service, r.code, r.stderr)
		}
		lines := findingsOf(r.stdout)
		first := lines[0]
		for _, l := range lines[1:] {
			if strings.HasPrefix(strings.TrimSpace(l), "2.") {
				break
			}
			first += "\n" + l
		}
		for _, w := range tc.first {
			if !strings.Contains(first, w) {
				t.Errorf("%s: first finding lacks %q:\n%s", tc.service, w, first)
			}
		}
	}
	// The OOM capture's second finding is the memory at the limit.
	r := readerRun(t, nil, "last", "oom-drop", "--dir", fixtures)
	if !strings.Contains(r.stdout, " 2. The service's memory r") {
		t.Errorf("oom-drop: second finding is not the memory at its limit:\n%s", strings.Join(findingsOf(r.stdout), "\n"))
	}
}

// TestReportLayout: the sections in order, the path last, columns without
// data gone.
func TestReportLayout(t *testing.T) {
	r := readerRun(t, nil, "last", "leaky", "--dir", fixtures)
	order := []string{"leaky failed at Thu 2026-11-26 21:24:24.240 UTC (2h ago) on vm", "      Service: leaky",
		"      Trigger: health", "        Error: HTTP 503", "\nFindings\n", "\nTimeline (every 500ms, relative to the failure)\n",
		"← health", "\nTop CPU before the failure (", "\nTop memory at the failure (0s)\n", "\nService processes before the failure ("}
	at := 0
	for _, w := range order {
		i := strings.Index(r.stdout[at:], w)
		if i < 0 {
			t.Fatalf("report lacks %q after byte %d:\n%s", w, at, r.stdout)
		}
		at += i + len(w)
	}
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	if last := lines[len(lines)-1]; last != "File: "+fixturePath(t, "leaky") {
		t.Errorf("last line %q is not the file's path", last)
	}
	// This host has no swap and recorded no memory or I/O pressure: those
	// columns vanish; the service's limit is there.
	_, tl, _ := strings.Cut(r.stdout, "Timeline")
	head := strings.Split(tl, "\n")[1]
	for _, gone := range []string{"SWAP%", "MEMPSI", "IOPSI"} {
		if strings.Contains(head, gone) {
			t.Errorf("timeline header has %s without data: %q", gone, head)
		}
	}
	for _, kept := range []string{"TIME", "CPU%", "MEM%", "LOAD1", "DISK%", "SVC MEM", "LIMIT%", "SVC CPU%", "PROCS"} {
		if !strings.Contains(head, kept) {
			t.Errorf("timeline header lacks %s: %q", kept, head)
		}
	}
	if strings.Contains(r.stdout, "\x1b[") {
		t.Errorf("colour without a terminal")
	}
}

// openPTY opens a pseudo-terminal of the given size: the controlling side
// and the terminal a child writes to.
func openPTY(t *testing.T, cols uint16) (ptm, pts *os.File) {
	t.Helper()
	fd, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	ptm = os.NewFile(uintptr(fd), "/dev/ptmx")
	t.Cleanup(func() { ptm.Close() })
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetUint32(fd, unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	pts, err = os.OpenFile("/dev/pts/"+strconv.FormatUint(uint64(n), 10), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pts.Close() })
	if err := unix.IoctlSetWinsize(int(pts.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 50, Col: cols}); err != nil {
		t.Fatal(err)
	}
	return ptm, pts
}

// onTerminal runs the binary with its stdout on a 72-column terminal and
// returns what it wrote there.
func onTerminal(t *testing.T, environ []string, args ...string) string {
	t.Helper()
	ptm, pts := openPTY(t, 72)
	// In-process, as readerRun: the readers' clock is fixedNow, so the
	// fixtures' live states do not depend on when the test runs.
	fixReaderClock(t)
	var out bytes.Buffer
	drained := make(chan struct{})
	go func() { // drain as it is written: a full terminal would block the writer
		defer close(drained)
		buf := make([]byte, 64<<10)
		for {
			n, err := ptm.Read(buf)
			out.Write(buf[:n])
			if err != nil { // EIO once the terminal side is closed and drained
				return
			}
		}
	}()
	var stderr bytes.Buffer
	err := run(context.Background(), args, env{stdout: pts, stderr: &stderr, environ: environ})
	pts.Close()
	<-drained
	if code := report(&stderr, err); code != 0 {
		t.Fatalf("%v: exit %d: %s", args, code, stderr.String())
	}
	return strings.ReplaceAll(out.String(), "\r\n", "\n")
}

// TestTerminal: on a terminal the report is coloured and fits its width;
// NO_COLOR and TERM=dumb turn colour off.
func TestTerminal(t *testing.T) {
	noCols := []string{"COLUMNS=", "TERM=xterm"}
	out := onTerminal(t, noCols, "last", "oom-drop", "--dir", fixtures)
	if !strings.Contains(out, "\x1b[1m") || !strings.Contains(out, "\x1b[31m") {
		t.Errorf("no colour on a terminal:\n%q", out[:min(len(out), 300)])
	}
	plain := stripSGR(out)
	for i, line := range strings.Split(plain, "\n") {
		if n := utf8.RuneCountInString(line); n > 72 {
			t.Errorf("line %d is %d columns on a 72-column terminal: %q", i+1, n, line)
		}
	}
	if !strings.Contains(plain, "1. The kernel OOM-killed") {
		t.Errorf("report on a terminal lacks the OOM finding:\n%s", plain)
	}
	for _, env := range [][]string{{"NO_COLOR=1", "TERM=xterm", "COLUMNS="}, {"TERM=dumb", "COLUMNS="}} {
		if out := onTerminal(t, env, "list", "--dir", fixtures); strings.Contains(out, "\x1b[") {
			t.Errorf("%v: colour in %q", env, out)
		}
	}
	if out := onTerminal(t, noCols, "list", "--dir", fixtures); !strings.Contains(out, "\x1b[32mhealthy\x1b[0m") {
		t.Errorf("list on a terminal does not colour the states: %q", out)
	}
}

func stripSGR(s string) string {
	var b strings.Builder
	for {
		i := strings.Index(s, "\x1b[")
		if i < 0 {
			return b.String() + s
		}
		b.WriteString(s[:i])
		j := strings.IndexByte(s[i:], 'm')
		if j < 0 {
			return b.String()
		}
		s = s[i+j+1:]
	}
}

// TestReportCrafted: what the fixtures of this machine cannot show (no
// systemd, no swap, no pressure): those parts of the header and columns, a
// ring longer than the timeline shows, a capture without a cgroup or samples.
func TestReportCrafted(t *testing.T) {
	t0 := fixedNow.Add(-time.Hour)
	i3, i9 := 3, 9
	twenty, tenth := 20.0, 0.1
	c := &capture.Capture{
		Schema: capture.Schema, Service: "dead-drop", Host: "h1", HealthURL: "http://127.0.0.1:1/health",
		TransitionTime: t0, HealthError: "timeout after 2s",
		Triggers: []capture.Trigger{{Kind: "health", At: t0, Detail: "timeout after 2s"},
			{Kind: "exit", At: t0.Add(90 * time.Second), Detail: "cgroup emptied"}},
		TriggersOmitted: 2, IntervalSeconds: 30, PreflightVersion: "v9",
		Systemd: &capture.Systemd{Unit: "dead-drop.service", Result: "oom-kill", NRestarts: &i3, ExecMainStatus: &i9,
			ExecMainCode: "killed", ActiveState: "activating", SubState: "auto-restart"},
	}
	for i := 0; i < 45; i++ {
		c.Samples = append(c.Samples, capture.Sample{
			At:       t0.Add(-time.Duration(45-i) * 30 * time.Second),
			CPU:      capture.CPU{Percent: &twenty, CPUs: 4},
			Memory:   capture.Memory{TotalBytes: 8 << 30, AvailableBytes: 2 << 30, UsedPercent: 75, SwapTotalBytes: 1 << 30, SwapUsedBytes: uint64(10*i) << 20},
			Pressure: &capture.Pressure{MemorySomeAvg10: float64(i)},
			TopCPU:   []capture.Process{{PID: 1, Name: "init", CPUPercent: &tenth, RSSBytes: 1 << 20, State: "S"}},
		})
	}
	var b bytes.Buffer
	fixReaderClock(t)
	if err := writeReport(&b, c, "/x.json", out{now: fixedNow}); err != nil {
		t.Fatal(err)
	}
	r := b.String()
	for _, want := range []string{
		"dead-drop failed at Thu 2026-11-26 22:30:00.000 UTC (1h ago) on h1",
		"     Triggers: health  22:30:00.000  0s      timeout after 2s\n               exit    22:31:30.000  +1m30s  cgroup emptied\n",
		"\n               (2 more triggers not recorded)\n",
		"      systemd: Result=oom-kill NRestarts=3 ExecMainStatus=9 ExecMainCode=killed state=activating/auto-restart\n",
		"      Samples: 45, from -22m30s to -30s\n",
		"Timeline (every 30s, relative to the failure)\n  (5 earlier samples not shown: see the file)\n",
		"    TIME  CPU%  MEM%  SWAP%  LOAD1  MEMPSI\n",
		"  -20m00s  20.0  75.0    4.9   0.00     5.0\n",
		"Top CPU before the failure (-30s)",
		"Top memory before the failure (-30s)",
		"Swap was filling",
		"Tasks stalled waiting for memory",
	} {
		if !strings.Contains(r, want) {
			t.Errorf("report lacks %q:\n%s", want, r)
		}
	}
	for _, absent := range []string{"SVC MEM", "Service processes", "* the service's", "DISK%", "IOPSI"} {
		if strings.Contains(r, absent) {
			t.Errorf("report has %q without data:\n%s", absent, r)
		}
	}
	c.Samples, c.Systemd = nil, nil // (3 restarts are a restart loop)
	b.Reset()
	writeReport(&b, c, "/x.json", out{now: fixedNow})
	if !strings.Contains(b.String(), "  no samples\n") || !strings.Contains(b.String(), "Nothing in the samples stands out") {
		t.Errorf("report without samples:\n%s", b.String())
	}
}
