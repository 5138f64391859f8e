package main

// The readers' output: the report of one capture ('last', 'show'), and the
// table renderer 'list' shares with it. docs/readers.md describes the layout.
//
// Output manners: the width is $COLUMNS, else the terminal's, else unlimited
// (a pipe gets whole lines); colour only on a terminal and never with
// NO_COLOR set or TERM=dumb. Every time is shown in the local zone and
// relative to now (headline, list) or to the failure (everything else).

import (
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/mattn/go-isatty"
	"golang.org/x/sys/unix"

	"github.com/preflight-rec/preflight/recorder/capture"
	"github.com/preflight-rec/preflight/recorder/findings"
	"github.com/preflight-rec/preflight/recorder/health"
)

// The clock and zone of the readers; tests fix them.
var (
	now  = time.Now
	zone = time.Local
)

// maxTimelineRows is how many samples before the failure the timeline
// shows at most: the most recent ones.
const maxTimelineRows = 40

// maxServiceProcs is how many of the service's processes a report lists.
const maxServiceProcs = 10

// out is how the readers print.
type out struct {
	width int // columns; 0: unlimited
	color bool
	now   time.Time
}

func newOut(e env) out {
	o := out{now: now()}
	f, isFile := e.stdout.(*os.File)
	if n, err := strconv.Atoi(e.getenv("COLUMNS")); err == nil && n > 0 {
		o.width = n
	} else if isFile {
		if ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ); err == nil && ws.Col > 0 {
			o.width = int(ws.Col)
		}
	}
	o.color = isFile && isatty.IsTerminal(f.Fd()) && e.getenv("NO_COLOR") == "" && e.getenv("TERM") != "dumb"
	return o
}

// SGR attributes.
const (
	bold   = "1"
	dim    = "2"
	red    = "31"
	green  = "32"
	yellow = "33"
)

// paint wraps s in an SGR sequence when colour is on.
func (o out) paint(sgr, s string) string {
	if !o.color || sgr == "" || s == "" {
		return s
	}
	return "\x1b[" + sgr + "m" + s + "\x1b[0m"
}

// fit cuts s to the width available after indent columns; unlimited width
// leaves it whole.
func (o out) fit(s string, indent int) string {
	if o.width == 0 {
		return s
	}
	return cut(s, max(o.width-indent, 10))
}

// writeReport prints a capture for a person: the header (what failed, when,
// where), the findings, the samples as a timeline, the top processes before
// and at the failure, and the file's path last.
func writeReport(w io.Writer, c *capture.Capture, path string, o out) error {
	b := &strings.Builder{}
	t0 := c.TransitionTime
	head := fmt.Sprintf("%s failed at %s (%s) on %s", safe(c.Service), fmtTime(t0, true), ago(o.now, t0), safe(orDash(c.Host)))
	fmt.Fprintln(b, o.paint(bold, o.fit(head, 0)))
	b.WriteString("\n")
	writeHeader(b, c, o)

	b.WriteString("\n" + o.paint(bold, "Findings") + "\n")
	writeFindings(b, findings.Explain(findings.FromCapture(c), findings.Default), o)

	pre, at := splitSamples(c)
	b.WriteString("\n" + o.paint(bold, fmt.Sprintf("Timeline (every %s, relative to the failure)", fmtSeconds(c.IntervalSeconds))) + "\n")
	writeTimeline(b, c, o)
	if traceFiner(c) {
		b.WriteString("\n" + o.paint(bold, fmt.Sprintf("Service trace (every %s, relative to the failure)", fmtSeconds(c.ServiceIntervalSeconds))) + "\n")
		writeTrace(b, c, o)
	}

	// The last sample before the failure has CPU figures over a whole
	// interval; the one at the failure may follow it by milliseconds, so its
	// CPU figures cover only that moment.
	svc := servicePIDs(pre, at)
	switch {
	case pre != nil:
		writeProcs(b, o, "Top CPU before the failure ("+findings.Offset(pre.At.Sub(t0))+")", noneBusy, busy(c, pre), svc, 0, true)
	case at != nil:
		writeProcs(b, o, "Top CPU at the failure", noneBusy, busy(c, at), svc, 0, true)
	}
	if at != nil {
		writeProcs(b, o, "Top memory at the failure ("+findings.Offset(at.At.Sub(t0))+")", "none", at.TopMemory, svc, 0, false)
	} else if pre != nil {
		writeProcs(b, o, "Top memory before the failure ("+findings.Offset(pre.At.Sub(t0))+")", "none", pre.TopMemory, svc, 0, true)
	}
	var preProcs []capture.Process
	if pre != nil && pre.Service != nil {
		preProcs = pre.Service.Processes
		writeProcs(b, o, "Service processes before the failure ("+findings.Offset(pre.At.Sub(t0))+")", "none", preProcs, nil, maxServiceProcs, true)
	}
	if at != nil && at.Service != nil && (pre == nil || pre.Service == nil || !samePIDs(preProcs, at.Service.Processes)) {
		writeProcs(b, o, "Service processes at the failure ("+findings.Offset(at.At.Sub(t0))+")", "none", at.Service.Processes, nil, maxServiceProcs, false)
	}
	writeLogs(b, c, o)
	fmt.Fprintf(b, "\nFile: %s\n", safe(path))
	_, err := io.WriteString(w, b.String())
	return err
}

// writeHeader prints the coredumpctl-style fields: right-aligned labels,
// values from column 15.
func writeHeader(b *strings.Builder, c *capture.Capture, o out) {
	const indent = 15
	field := func(label, value string) {
		if value != "" {
			fmt.Fprintf(b, "%13s: %s\n", label, o.fit(safe(value), indent))
		}
	}
	t0 := c.TransitionTime
	field("Service", c.Service)
	field("Unit", c.Unit)
	field("Cgroup", cgroupOf(c))
	field("Host", c.Host)
	for i, t := range c.Triggers {
		label := ""
		if i == 0 {
			label = "Trigger:"
			if len(c.Triggers) > 1 {
				label = "Triggers:"
			}
		}
		line := fmt.Sprintf("%-7s %s  %-7s %s", safe(t.Kind), fmtClock(t.At, t0), findings.Offset(t.At.Sub(t0)), safe(t.Detail))
		fmt.Fprintf(b, "%14s %s\n", label, o.paint(red, o.fit(line, indent)))
	}
	if c.TriggersOmitted > 0 {
		fmt.Fprintf(b, "%14s (%d more triggers not recorded)\n", "", c.TriggersOmitted)
	}
	field("Health check", health.ShownURL(c.HealthURL)) // masked again: older captures may not be
	field("Error", orDash(c.HealthError))
	field("Checks", checksLine(c.Health))
	if s := c.Systemd; s != nil {
		field("systemd", systemdLine(s))
	}
	if n := len(c.Samples); n > 0 {
		field("Samples", fmt.Sprintf("%d, from %s to %s", n,
			findings.Offset(c.Samples[0].At.Sub(t0)), findings.Offset(c.Samples[n-1].At.Sub(t0))))
	} else {
		field("Samples", "none")
	}
	field("Recorder", "preflight "+orDash(c.PreflightVersion))
}

// checksLine summarises the health history: runs of ok and failed checks,
// and the range of their latencies.
func checksLine(hs []capture.Check) string {
	if len(hs) == 0 {
		return ""
	}
	var runs []string
	lo, hi := math.Inf(1), 0.0
	for i := 0; i < len(hs); {
		j := i
		for j < len(hs) && hs[j].OK == hs[i].OK {
			lo, hi = math.Min(lo, hs[j].LatencyMS), math.Max(hi, hs[j].LatencyMS)
			j++
		}
		word := "ok"
		if !hs[i].OK {
			word = "failed"
		}
		runs = append(runs, fmt.Sprintf("%d %s", j-i, word))
		i = j
	}
	return fmt.Sprintf("%s; latency %s to %s", strings.Join(runs, ", then "), findings.Latency(lo), findings.Latency(hi))
}

func writeFindings(b *strings.Builder, fs []findings.Finding, o out) {
	if len(fs) == 0 {
		b.WriteString(o.paint(green, "  Nothing in the samples stands out.") + "\n")
		wrap(b, o, "  ", "  ", "No OOM kill, memory limit, full disk, swap, pressure, throttling, overload, busy neighbour or change in the service's processes: the cause is likely inside the service. Look at its own logs.")
		return
	}
	for i, f := range fs {
		num := fmt.Sprintf("%2d. ", i+1)
		fmt.Fprintf(b, "%s%s\n", num, o.paint(red, o.fit(safe(f.Summary), len(num))))
		for _, ev := range f.Evidence {
			wrap(b, o, "      ", "        ", safe(ev))
		}
	}
}

// wrap prints text indented, wrapped at the width (unlimited: one line),
// continuation lines indented by cont.
func wrap(b *strings.Builder, o out, indent, cont, text string) {
	words := strings.Fields(text)
	if o.width == 0 || len(words) == 0 {
		b.WriteString(indent + text + "\n")
		return
	}
	line, n := indent+words[0], utf8.RuneCountInString(indent+words[0])
	for _, w := range words[1:] {
		wn := utf8.RuneCountInString(w)
		if n+1+wn > o.width {
			b.WriteString(line + "\n")
			line, n = cont+w, utf8.RuneCountInString(cont)+wn
			continue
		}
		line, n = line+" "+w, n+1+wn
	}
	b.WriteString(line + "\n")
}

// splitSamples returns the last sample of this incident's scene before the
// failure and the first one at or after it (the sample taken at the first
// trigger). Either may be nil.
func splitSamples(c *capture.Capture) (pre, at *capture.Sample) {
	for i := findings.Scene(c); i < len(c.Samples); i++ {
		s := &c.Samples[i]
		if s.At.Before(c.TransitionTime) {
			pre = s
		} else if at == nil {
			at = s
		}
	}
	return pre, at
}

// servicePIDs returns the PIDs of the service's processes in the given
// samples, to mark them in the host's top lists.
func servicePIDs(ss ...*capture.Sample) map[int]bool {
	m := map[int]bool{}
	for _, s := range ss {
		if s != nil && s.Service != nil {
			for _, p := range s.Service.Processes {
				m[p.PID] = true
			}
		}
	}
	return m
}

// busy returns the processes of s's top-CPU list that used any CPU, by a
// rate over a window long enough to tell: 0 % rows are noise.
func busy(c *capture.Capture, s *capture.Sample) []capture.Process {
	for i := range c.Samples {
		if &c.Samples[i] == s && findings.ShortWindow(c.Samples, i, c.IntervalSeconds) {
			return nil
		}
	}
	var out []capture.Process
	for _, p := range s.TopCPU {
		if p.CPUPercent != nil && *p.CPUPercent >= 0.05 {
			out = append(out, p)
		}
	}
	return out
}

func samePIDs(a, b []capture.Process) bool {
	return slices.EqualFunc(a, b, func(x, y capture.Process) bool { return x.PID == y.PID })
}

func cgroupOf(c *capture.Capture) string {
	for i := len(c.Samples) - 1; i >= 0; i-- {
		if s := c.Samples[i].Service; s != nil && s.Cgroup != "" {
			return s.Cgroup
		}
	}
	return ""
}

func systemdLine(s *capture.Systemd) string {
	var parts []string
	add := func(k, v string) {
		if v != "" {
			parts = append(parts, k+"="+v)
		}
	}
	itoa := func(p *int) string {
		if p == nil {
			return ""
		}
		return strconv.Itoa(*p)
	}
	add("Result", s.Result)
	add("NRestarts", itoa(s.NRestarts))
	add("ExecMainStatus", strings.TrimSpace(itoa(s.ExecMainStatus)))
	add("ExecMainCode", s.ExecMainCode)
	add("MainPID", itoa(s.MainPID))
	add("state", strings.Trim(s.ActiveState+"/"+s.SubState, "/"))
	return strings.Join(parts, " ")
}

// column is one optional column of the timeline.
type column struct {
	head string
	cell func(s *capture.Sample) string // "" when the sample has no value
}

// timelineColumns returns the columns that have data in samples, and a note
// on what DISK% is. A rate over too short a window is no data.
func timelineColumns(samples []capture.Sample, interval float64) ([]column, string) {
	f1 := func(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }
	short := map[*capture.Sample]bool{}
	for i := range samples {
		short[&samples[i]] = findings.ShortWindow(samples, i, interval)
	}
	all := []column{
		{"CPU%", func(s *capture.Sample) string {
			if s.CPU.Percent == nil || short[s] {
				return ""
			}
			return f1(*s.CPU.Percent)
		}},
		{"MEM%", func(s *capture.Sample) string {
			if s.Memory.TotalBytes == 0 {
				return ""
			}
			return f1(s.Memory.UsedPercent)
		}},
		{"SWAP%", func(s *capture.Sample) string {
			if s.Memory.SwapTotalBytes == 0 {
				return ""
			}
			return f1(100 * float64(s.Memory.SwapUsedBytes) / float64(s.Memory.SwapTotalBytes))
		}},
		{"LOAD1", func(s *capture.Sample) string { return strconv.FormatFloat(s.Load.Load1, 'f', 2, 64) }},
	}
	note := ""
	if mount := fullestMount(samples); mount != "" {
		all = append(all, column{"DISK%", func(s *capture.Sample) string {
			for _, d := range s.Disks {
				if d.Mount == mount {
					return f1(d.UsedPercent)
				}
			}
			return ""
		}})
		note = "DISK% is " + mount + ", the fullest filesystem"
	}
	// Pressure columns appear when some pressure was recorded: a column of
	// zeros only takes room.
	psi := func(get func(*capture.Pressure) float64) func(s *capture.Sample) string {
		return func(s *capture.Sample) string {
			if s.Pressure == nil {
				return ""
			}
			return f1(get(s.Pressure))
		}
	}
	memPSI := psi(func(p *capture.Pressure) float64 { return p.MemorySomeAvg10 })
	ioPSI := psi(func(p *capture.Pressure) float64 { return p.IOSomeAvg10 })
	all = append(all, column{"MEMPSI", memPSI}, column{"IOPSI", ioPSI},
		column{"SVC MEM", func(s *capture.Sample) string {
			if s.Service == nil || s.Service.MemoryBytes == nil {
				return ""
			}
			return findings.Bytes(*s.Service.MemoryBytes)
		}},
		column{"LIMIT%", func(s *capture.Sample) string {
			if s.Service == nil || s.Service.MemoryBytes == nil || s.Service.MemoryMaxBytes == nil || *s.Service.MemoryMaxBytes == 0 {
				return ""
			}
			return fmt.Sprintf("%.0f", 100*float64(*s.Service.MemoryBytes)/float64(*s.Service.MemoryMaxBytes))
		}},
		column{"SVC CPU%", func(s *capture.Sample) string {
			if s.Service == nil || s.Service.CPUPercent == nil || short[s] {
				return ""
			}
			return f1(*s.Service.CPUPercent)
		}},
		column{"PROCS", func(s *capture.Sample) string {
			if s.Service == nil {
				return ""
			}
			return strconv.Itoa(s.Service.Pids)
		}},
	)
	var keep []column
	for _, col := range all {
		zeroOK := col.head != "MEMPSI" && col.head != "IOPSI"
		for i := range samples {
			if v := col.cell(&samples[i]); v != "" && (zeroOK || v != "0.0") {
				keep = append(keep, col)
				break
			}
		}
	}
	return keep, note
}

// fullestMount is the mount with the highest used_percent in the last
// sample that has disks.
func fullestMount(samples []capture.Sample) string {
	for i := len(samples) - 1; i >= 0; i-- {
		best, mount := -1.0, ""
		for _, d := range samples[i].Disks {
			if d.TotalBytes > 0 && d.UsedPercent > best {
				best, mount = d.UsedPercent, d.Mount
			}
		}
		if mount != "" {
			return mount
		}
	}
	return ""
}

func writeTimeline(b *strings.Builder, c *capture.Capture, o out) {
	scene := findings.Scene(c)
	samples := c.Samples[scene:]
	if len(samples) == 0 {
		b.WriteString("  no samples\n")
		return
	}
	t0 := c.TransitionTime
	nPre := 0
	for nPre < len(samples) && samples[nPre].At.Before(t0) {
		nPre++
	}
	skipped := max(nPre-maxTimelineRows, 0)
	cols, note := timelineColumns(samples, c.IntervalSeconds)
	t := &table{indent: 2, gap: 2, flex: -1, tight: true}
	t.cols = append(t.cols, col{head: "TIME", right: true})
	for _, cl := range cols {
		t.cols = append(t.cols, col{head: cl.head, right: true})
	}
	t.cols = append(t.cols, col{head: ""}) // the triggers at this sample
	marks := triggerMarks(c)
	early := false
	for i := skipped; i < len(samples); i++ {
		s := &samples[i]
		row := []cell{{s: findings.Offset(s.At.Sub(t0))}}
		for _, cl := range cols {
			row = append(row, cell{s: orDash(cl.cell(s))})
		}
		mark := marks[scene+i]
		if s.Early != "" && mark == "" {
			mark, early = "early", true
		}
		row = append(row, cell{s: mark, sgr: red})
		t.rows = append(t.rows, row)
	}
	if scene > 0 {
		e := c.Samples[scene-1]
		fmt.Fprintf(b, "  (%d samples up to an earlier incident's %s trigger at %s not shown: that failure is not this one; see the file)\n",
			scene, orDash(e.Trigger), findings.Offset(e.At.Sub(t0)))
	}
	if skipped > 0 {
		fmt.Fprintf(b, "  (%d earlier samples not shown: see the file)\n", skipped)
	}
	t.write(b, o)
	if note != "" {
		b.WriteString("  " + safe(note) + "\n")
	}
	if hasDash(t.rows) {
		b.WriteString("  '-': no value, or a rate over a window too short to mean anything\n")
	}
	if early {
		b.WriteString("  early: taken before its interval, while the service trace showed warning signs (see the file's \"early\")\n")
	}
}

// hasDash reports whether a row has a "-" cell.
func hasDash(rows [][]cell) bool {
	for _, r := range rows {
		for _, c := range r {
			if c.s == "-" {
				return true
			}
		}
	}
	return false
}

// triggerMarks labels the sample taken at each trigger: "← health". The
// recorder appends one sample per recorded trigger, in order, so the last
// len(triggers) samples are theirs; a capture that does not add up is
// marked by time instead.
func triggerMarks(c *capture.Capture) map[int]string {
	m := map[int]string{}
	n, k := len(c.Samples), len(c.Triggers)
	if k > 0 && n >= k && !c.Samples[n-k].At.Before(c.TransitionTime) {
		for j, t := range c.Triggers {
			m[n-k+j] = "← " + t.Kind
		}
		return m
	}
	kinds := map[int][]string{}
	for _, t := range c.Triggers {
		for i := range c.Samples {
			if !c.Samples[i].At.Before(t.At) {
				kinds[i] = append(kinds[i], t.Kind)
				break
			}
		}
	}
	for i, ks := range kinds {
		m[i] = "← " + strings.Join(ks, ",")
	}
	return m
}

// noneBusy is what an empty top-CPU list says.
const noneBusy = "none busy, or no CPU figures over a long enough window"

// writeProcs prints a process table (empty: what it says without rows), marking the service's processes with
// '*'. limit > 0 lists at most that many, by resident memory. Without cpu
// the CPU% column is left out: a sample taken at a trigger follows the
// previous one by milliseconds, too short for CPU figures to mean much.
func writeProcs(b *strings.Builder, o out, title, empty string, ps []capture.Process, svc map[int]bool, limit int, cpu bool) {
	fmt.Fprintf(b, "\n%s\n", o.paint(bold, title))
	if len(ps) == 0 {
		b.WriteString("  " + empty + "\n")
		return
	}
	more := 0
	if limit > 0 && len(ps) > limit {
		ps = slices.Clone(ps)
		slices.SortStableFunc(ps, func(x, y capture.Process) int {
			return -cmpUint(x.RSSBytes, y.RSSBytes)
		})
		more, ps = len(ps)-limit, ps[:limit]
	}
	t := &table{gap: 2, flex: 5}
	t.cols = []col{{head: "", gapAfter: 1}, {head: "PID", right: true}, {head: "CPU%", right: true, hide: !cpu},
		{head: "RSS", right: true}, {head: "S"}, {head: "COMMAND"}}
	marked := false
	for _, p := range ps {
		mark := " "
		if svc[p.PID] {
			mark, marked = "*", true
		}
		cmd := p.Cmdline
		if cmd == "" {
			cmd = "[" + p.Name + "]"
		}
		cpu := "-"
		if p.CPUPercent != nil {
			cpu = strconv.FormatFloat(*p.CPUPercent, 'f', 1, 64)
		}
		t.rows = append(t.rows, []cell{{s: mark}, {s: strconv.Itoa(p.PID)}, {s: cpu},
			{s: findings.Bytes(p.RSSBytes)}, {s: p.State}, {s: cmd}})
	}
	t.write(b, o)
	if more > 0 {
		fmt.Fprintf(b, "  (%d more)\n", more)
	}
	if marked {
		b.WriteString("  * the service's\n")
	}
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// table is a plain-text table: columns padded to their widest cell,
// coloured after padding so escape codes never shift a column.
type table struct {
	cols   []col
	rows   [][]cell
	indent int // spaces before each line
	gap    int // spaces between columns
	// flex is the column cut to fit the width (-1: none); its minimum is
	// its header's width or 10. drop lists the columns left out, in this
	// order, while the table is still too wide.
	flex  int
	drop  []int
	tight bool // a gap of 1 when too wide
}

type col struct {
	head     string
	right    bool
	gapAfter int // 0: the table's gap
	hide     bool
}

type cell struct {
	s   string
	sgr string
}

func (t *table) write(b *strings.Builder, o out) {
	for _, r := range t.rows {
		for i := range r {
			r[i].s = safe(r[i].s)
		}
	}
	widths := func() []int {
		w := make([]int, len(t.cols))
		for i, c := range t.cols {
			w[i] = utf8.RuneCountInString(c.head)
		}
		for _, r := range t.rows {
			for i, c := range r {
				w[i] = max(w[i], utf8.RuneCountInString(c.s))
			}
		}
		return w
	}
	w := widths()
	total := func() int {
		n, last := t.indent, -1
		for i := range t.cols {
			if t.cols[i].hide {
				continue
			}
			if last >= 0 {
				n += t.gapOf(last)
			}
			n += w[i]
			last = i
		}
		return n
	}
	if o.width > 0 && total() > o.width && t.tight {
		t.gap = 1
	}
	if o.width > 0 {
		for _, d := range t.drop {
			if t.flex < 0 || total()-w[t.flex]+max(utf8.RuneCountInString(t.cols[t.flex].head), 10) <= o.width {
				break
			}
			t.cols[d].hide = true
		}
		if t.flex >= 0 && total() > o.width {
			w[t.flex] = max(w[t.flex]-(total()-o.width), utf8.RuneCountInString(t.cols[t.flex].head), 10)
		}
	}
	line := func(cells []cell) {
		var sb strings.Builder
		sb.WriteString(strings.Repeat(" ", t.indent))
		last := -1
		for i, c := range t.cols {
			if c.hide {
				continue
			}
			if last >= 0 {
				sb.WriteString(strings.Repeat(" ", t.gapOf(last)))
			}
			last = i
			s := cells[i].s
			if i == t.flex {
				s = cut(s, w[i])
			}
			pad := strings.Repeat(" ", w[i]-utf8.RuneCountInString(s))
			if c.right {
				sb.WriteString(pad + o.paint(cells[i].sgr, s))
			} else {
				sb.WriteString(o.paint(cells[i].sgr, s) + pad)
			}
		}
		b.WriteString(strings.TrimRight(sb.String(), " ") + "\n")
	}
	head := make([]cell, len(t.cols))
	for i, c := range t.cols {
		head[i] = cell{s: c.head}
	}
	line(head)
	for _, r := range t.rows {
		line(r)
	}
}

func (t *table) gapOf(i int) int {
	if t.cols[i].gapAfter > 0 {
		return t.cols[i].gapAfter
	}
	return t.gap
}

// fmtTime formats an absolute time in the readers' zone:
// "Thu 2026-11-26 03:12:04.123 UTC" (ms: with milliseconds).
func fmtTime(t time.Time, ms bool) string {
	if ms {
		return t.In(zone).Format("Mon 2006-01-02 15:04:05.000 MST")
	}
	return t.In(zone).Format("2006-01-02 15:04:05 MST")
}

// fmtClock formats t as a time of day, with the date when it differs from
// the day of ref.
func fmtClock(t, ref time.Time) string {
	t, ref = t.In(zone), ref.In(zone)
	if t.YearDay() != ref.YearDay() || t.Year() != ref.Year() {
		return t.Format("2006-01-02 15:04:05.000")
	}
	return t.Format("15:04:05.000")
}

// fmtSeconds formats an interval in seconds: 30s, 0.25s, 2m.
func fmtSeconds(s float64) string {
	if s <= 0 {
		return "?"
	}
	return findings.Duration(time.Duration(s * float64(time.Second)))
}
