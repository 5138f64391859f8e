package main

// The page of one capture ('last --html', 'show --html'): one
// self-contained HTML file to open in a browser, print, or attach to a
// postmortem. docs/readers.md describes it.
//
// Manners: nothing is fetched and nothing runs (no scripts, fonts, images
// or links out: the charts are inline SVG drawn here); every string from
// the capture, which is untrusted input, is escaped by html/template; times
// are UTC, or relative to the failure. The page reads at phone width and
// printed (CSS only).

import (
	"cmp"
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/preflight-rec/preflight/recorder/capture"
	"github.com/preflight-rec/preflight/recorder/findings"
)

//go:embed html.tmpl
var htmlSource string

var htmlPage = template.Must(template.New("page").Parse(htmlSource))

// Chart geometry, in the SVG's user units: every chart has the same plot
// area, so one x is one time in every chart.
const (
	chartW       = 640.0
	chartH       = 170.0
	plotLeft     = 58.0
	plotRight    = chartW - 12
	plotTop      = 18.0
	plotBottom   = chartH - 22
	markLabelGap = 60.0 // triggers closer than this share one label
	maxDisks     = 4    // filesystems charted, the fullest first
	maxProcRows  = 10   // rows of a process table
)

// htmlData is what the template shows; every field is already formatted.
type htmlData struct {
	Title, Headline string
	Fields          []htmlField
	Triggers        []htmlTrigger
	TriggersOmitted int
	Findings        []findings.Finding
	Charts          []htmlChart
	Axis            string // what the charts' x axis is
	Systemd         []htmlField
	Checks          string
	Tables          []htmlTable
	Logs            []logSection
	Path            string
	W, H            float64
}

type htmlField struct{ Label, Value string }

type htmlTrigger struct{ Kind, At, Offset, Detail string }

type htmlTable struct {
	Title string
	Rows  []htmlProc
}

type htmlProc struct {
	PID, Threads                   int
	Name, State, CPU, RSS, Cmdline string
	Service                        bool
}

type htmlChart struct {
	Title, Note    string
	Series         []htmlSeries
	YTicks, XTicks []htmlTick
	Marks          []htmlTick  // the triggers
	MarkLabels     []htmlLabel // their kinds, those close together in one label
	X0, X1, Y0, Y1 float64     // the plot area
}

type htmlSeries struct {
	Name, Class string
	Lines       []string // SVG points, one polyline per run of known values
	Dots        []htmlPoint
}

type htmlPoint struct{ X, Y string }

type htmlLabel struct {
	Pos           float64
	Label, Anchor string
}

type htmlTick struct {
	Pos   float64
	Label string
}

// writeHTML writes the page of capture c, read from path.
func writeHTML(w io.Writer, c *capture.Capture, path string) error {
	d := htmlData{
		Title:    fmt.Sprintf("%s failed at %s", c.Service, htmlTime(c.TransitionTime)),
		Headline: fmt.Sprintf("%s failed at %s on %s", c.Service, htmlTime(c.TransitionTime), or(c.Host, "an unknown host")),
		Path:     path,
		W:        chartW,
		H:        chartH,
	}
	field := func(label, value string) {
		if value != "" {
			d.Fields = append(d.Fields, htmlField{label, value})
		}
	}
	field("Service", c.Service)
	field("Unit", c.Unit)
	if s := lastService(c.Samples); s != nil {
		field("Cgroup", s.Cgroup)
	}
	field("Host", c.Host)
	field("Health check", c.HealthURL)
	field("Error", c.HealthError)
	if n := len(c.Samples); n > 0 {
		field("Samples", fmt.Sprintf("%d, every %s, from %s to %s", n, findings.Duration(time.Duration(c.IntervalSeconds*float64(time.Second))),
			findings.Offset(c.Samples[0].At.Sub(c.TransitionTime)), findings.Offset(c.Samples[n-1].At.Sub(c.TransitionTime))))
	}
	field("Recorder", strings.TrimSpace("preflight "+c.PreflightVersion))
	for _, t := range c.Triggers {
		at := t.At.UTC().Format("15:04:05.000")
		if t.At.UTC().Format(time.DateOnly) != c.TransitionTime.UTC().Format(time.DateOnly) {
			at = htmlTime(t.At)
		}
		d.Triggers = append(d.Triggers, htmlTrigger{t.Kind, at, findings.Offset(t.At.Sub(c.TransitionTime)), t.Detail})
	}
	d.TriggersOmitted = c.TriggersOmitted
	d.Findings = findings.Explain(findings.FromCapture(c), findings.Default)
	d.Checks = checksSummary(c.Health)
	if sd := c.Systemd; sd != nil {
		add := func(label, value string) {
			if value != "" {
				d.Systemd = append(d.Systemd, htmlField{label, value})
			}
		}
		add("Unit", sd.Unit)
		add("Result", sd.Result)
		add("ExecMainCode", sd.ExecMainCode)
		add("ExecMainStatus", intText(sd.ExecMainStatus))
		add("NRestarts", intText(sd.NRestarts))
		add("MainPID", intText(sd.MainPID))
		if sd.ActiveState != "" || sd.SubState != "" {
			add("State", strings.Trim(sd.ActiveState+"/"+sd.SubState, "/"))
		}
		add("ControlGroup", sd.ControlGroup)
	}
	d.Charts, d.Axis = charts(c)
	d.Tables = procTables(c)
	d.Logs = logSections(c)
	return htmlPage.Execute(w, d)
}

// htmlTime is t in UTC to the millisecond, as the capture's names are.
func htmlTime(t time.Time) string {
	return t.UTC().Format("Mon 2006-01-02 15:04:05.000 UTC")
}

func or(s, alt string) string {
	if s == "" {
		return alt
	}
	return s
}

func intText(p *int) string {
	if p == nil {
		return ""
	}
	return fmt.Sprint(*p)
}

func lastService(ss []capture.Sample) *capture.Service {
	for i := len(ss) - 1; i >= 0; i-- {
		if ss[i].Service != nil {
			return ss[i].Service
		}
	}
	return nil
}

// checksSummary sums up the health checks: how many, how many failed, the
// latency range.
func checksSummary(cs []capture.Check) string {
	if len(cs) == 0 {
		return ""
	}
	ok, lo, hi := 0, math.Inf(1), math.Inf(-1)
	for _, c := range cs {
		if c.OK {
			ok++
		}
		lo, hi = min(lo, c.LatencyMS), max(hi, c.LatencyMS)
	}
	return fmt.Sprintf("%d checks: %d ok, %d failed; latency %.1fms to %.1fms", len(cs), ok, len(cs)-ok, lo, hi)
}

// timeAxis maps times to x in every chart: from the first sample (or
// trigger) to the last.
type timeAxis struct{ t0, t1, failure time.Time }

func newTimeAxis(c *capture.Capture) timeAxis {
	a := timeAxis{failure: c.TransitionTime}
	var ts []time.Time
	for _, s := range c.Samples {
		ts = append(ts, s.At)
	}
	for _, t := range c.Triggers {
		ts = append(ts, t.At)
	}
	for _, p := range c.ServiceTrace {
		ts = append(ts, p.At)
	}
	a.t0, a.t1 = slices.MinFunc(ts, time.Time.Compare), slices.MaxFunc(ts, time.Time.Compare)
	if !a.t1.After(a.t0) {
		a.t0, a.t1 = a.t0.Add(-time.Second), a.t1.Add(time.Second)
	}
	a.t1 = a.t1.Add(a.t1.Sub(a.t0) / 30) // room for the triggers, at the end
	return a
}

// x is t's x, to a tenth of a unit (a page of short numbers).
func (a timeAxis) x(t time.Time) float64 {
	return tenth(plotLeft + (plotRight-plotLeft)*float64(t.Sub(a.t0))/float64(a.t1.Sub(a.t0)))
}

func tenth(v float64) float64 { return math.Round(v*10) / 10 }

// ticks are round offsets from the failure, about six across.
func (a timeAxis) ticks() []htmlTick {
	step := niceStep(float64(a.t1.Sub(a.t0)) / 6)
	var out []htmlTick
	for k := math.Ceil(float64(a.t0.Sub(a.failure)) / step); ; k++ {
		t := a.failure.Add(time.Duration(k * step))
		if t.After(a.t1) {
			return out
		}
		out = append(out, htmlTick{a.x(t), findings.Offset(t.Sub(a.failure))})
	}
}

// niceStep is the least 1, 2 or 5 times a power of ten that is at least v.
func niceStep(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

// niceCeil is the least 1, 2, 2.5, 5 or 10 times a power of ten that is at
// least v (and at least floor).
func niceCeil(v, floor float64) float64 {
	v = max(v, floor)
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*p >= v*(1-1e-9) {
			return m * p
		}
	}
	return 10 * p
}

// A chart in the making: its series' values, scaled when done.
type chartSpec struct {
	title, note string
	floor       float64 // the least top of the y axis
	bytes       bool    // values are bytes: the top is a round number of MiB
	fixedTop    float64 // the top of the y axis, if fixed (percentages)
	label       func(float64) string
	series      []seriesSpec
	trace       []traceSpec // drawn over the samples' series
}

type seriesSpec struct {
	name, class string
	value       func(*capture.Sample) (float64, bool)
}

// traceSpec is a series of the service trace's readings.
type traceSpec struct {
	name, class string
	value       func(*capture.TracePoint) (float64, bool)
}

// seriesPoints is a series' values with their times.
type seriesPoints struct {
	name, class string
	ts          []time.Time
	vs          []float64
	ok          []bool
}

// points are the values of sp's series: the samples', then the trace's.
func (sp chartSpec) points(c *capture.Capture) []seriesPoints {
	var out []seriesPoints
	for _, se := range sp.series {
		out = append(out, pointsOf(se.name, se.class, c.Samples, func(s *capture.Sample) time.Time { return s.At }, se.value))
	}
	for _, se := range sp.trace {
		out = append(out, pointsOf(se.name, se.class, c.ServiceTrace, func(p *capture.TracePoint) time.Time { return p.At }, se.value))
	}
	return out
}

// pointsOf is one series over items: their times and values.
func pointsOf[T any](name, class string, items []T, at func(*T) time.Time, value func(*T) (float64, bool)) seriesPoints {
	p := seriesPoints{name: name, class: class}
	for i := range items {
		v, has := value(&items[i])
		p.ts, p.vs, p.ok = append(p.ts, at(&items[i])), append(p.vs, v), append(p.ok, has)
	}
	return p
}

// charts draws the capture's samples, every chart on one time axis, each
// only where the capture has its data.
func charts(c *capture.Capture) ([]htmlChart, string) {
	if len(c.Samples) == 0 {
		return nil, ""
	}
	ax := newTimeAxis(c)
	percent := func(v float64) string { return fmt.Sprintf("%g%%", v) }
	svc := func(get func(*capture.Service) (float64, bool)) func(*capture.Sample) (float64, bool) {
		return func(s *capture.Sample) (float64, bool) {
			if s.Service == nil {
				return 0, false
			}
			return get(s.Service)
		}
	}
	u64 := func(p *uint64) (float64, bool) {
		if p == nil {
			return 0, false
		}
		return float64(*p), true
	}

	var specs []chartSpec

	mem := chartSpec{title: "Service memory", floor: 1 << 20, bytes: true, label: func(v float64) string { return findings.Bytes(uint64(v)) }}
	mem.series = append(mem.series, seriesSpec{"memory", "s1", svc(func(s *capture.Service) (float64, bool) { return u64(s.MemoryBytes) })})
	if len(c.ServiceTrace) > 0 {
		mem.trace = append(mem.trace, traceSpec{"trace, every " + fmtSeconds(c.ServiceIntervalSeconds), "s3",
			func(p *capture.TracePoint) (float64, bool) { return u64(p.MemoryBytes) }})
	}
	if limit := lastLimit(c.Samples); limit > 0 {
		mem.series = append(mem.series, seriesSpec{"limit", "limit", svc(func(s *capture.Service) (float64, bool) { return u64(s.MemoryMaxBytes) })})
		mem.note = "limit " + findings.Bytes(limit)
	} else {
		mem.note = "no limit"
	}
	specs = append(specs, mem)

	// A rate over too short a window is no point on the chart (findings.ShortWindow).
	short := map[*capture.Sample]bool{}
	for i := range c.Samples {
		if findings.ShortWindow(c.Samples, i, c.IntervalSeconds) {
			short[&c.Samples[i]] = true
		}
	}
	cpu := chartSpec{title: "CPU", note: "percent of all CPUs", floor: 10, label: percent}
	cpu.series = append(cpu.series,
		seriesSpec{"host", "s2", func(s *capture.Sample) (float64, bool) {
			if s.CPU.Percent == nil || short[s] {
				return 0, false
			}
			return *s.CPU.Percent, true
		}},
		seriesSpec{"service", "s1", func(s *capture.Sample) (float64, bool) {
			if s.Service == nil || s.Service.CPUPercent == nil || short[s] {
				return 0, false
			}
			return *s.Service.CPUPercent / float64(max(s.CPU.CPUs, 1)), true
		}})
	specs = append(specs, cpu)

	psi := func(get func(*capture.Pressure) float64) func(*capture.Sample) (float64, bool) {
		return func(s *capture.Sample) (float64, bool) {
			if s.Pressure == nil {
				return 0, false
			}
			return get(s.Pressure), true
		}
	}
	specs = append(specs, chartSpec{title: "Pressure", note: "host, some avg10, percent of wall time", floor: 10, label: percent,
		series: []seriesSpec{
			{"cpu", "s2", psi(func(p *capture.Pressure) float64 { return p.CPUSomeAvg10 })},
			{"memory", "s1", psi(func(p *capture.Pressure) float64 { return p.MemorySomeAvg10 })},
			{"io", "s3", psi(func(p *capture.Pressure) float64 { return p.IOSomeAvg10 })},
		}})

	host := chartSpec{title: "Host memory", note: "percent used", fixedTop: 100, label: percent,
		series: []seriesSpec{{"memory", "s1", func(s *capture.Sample) (float64, bool) { return s.Memory.UsedPercent, true }}}}
	if slices.ContainsFunc(c.Samples, func(s capture.Sample) bool { return s.Memory.SwapTotalBytes > 0 }) {
		host.series = append(host.series, seriesSpec{"swap", "s4", func(s *capture.Sample) (float64, bool) {
			if s.Memory.SwapTotalBytes == 0 {
				return 0, false
			}
			return 100 * float64(s.Memory.SwapUsedBytes) / float64(s.Memory.SwapTotalBytes), true
		}})
	}
	specs = append(specs, host)

	disks := chartSpec{title: "Disks", note: "percent used", fixedTop: 100, label: percent}
	for i, mount := range fullestMounts(c.Samples) {
		disks.series = append(disks.series, seriesSpec{mount, fmt.Sprintf("s%d", i+1), func(s *capture.Sample) (float64, bool) {
			for _, d := range s.Disks {
				if d.Mount == mount {
					return d.UsedPercent, true
				}
			}
			return 0, false
		}})
	}
	specs = append(specs, disks)

	var out []htmlChart
	for _, sp := range specs {
		if ch, ok := drawChart(c, ax, sp); ok {
			out = append(out, ch)
		}
	}
	axis := fmt.Sprintf("Time relative to the failure (0s, %s); triggers in red.", htmlTime(c.TransitionTime))
	return out, axis
}

// drawChart scales a chart's series; a chart without a single value is
// left out.
func drawChart(c *capture.Capture, ax timeAxis, sp chartSpec) (htmlChart, bool) {
	top, seen := sp.floor, false
	all := sp.points(c)
	for _, se := range all {
		for i, v := range se.vs {
			if se.ok[i] {
				top, seen = max(top, v), true
			}
		}
	}
	if !seen {
		return htmlChart{}, false
	}
	switch {
	case sp.fixedTop > 0:
		top = sp.fixedTop
	case sp.bytes:
		top = niceCeil(top/(1<<20), 1) * (1 << 20)
	default:
		top = niceCeil(top, sp.floor)
	}
	y := func(v float64) float64 { return plotBottom - (plotBottom-plotTop)*min(max(v, 0), top)/top }
	ch := htmlChart{Title: sp.title, Note: sp.note, XTicks: ax.ticks(), X0: plotLeft, X1: plotRight, Y0: plotTop, Y1: plotBottom}
	for _, f := range []float64{0, 0.5, 1} {
		ch.YTicks = append(ch.YTicks, htmlTick{tenth(y(top * f)), sp.label(top * f)})
	}
	for _, t := range c.Triggers {
		x := ax.x(t.At)
		ch.Marks = append(ch.Marks, htmlTick{x, t.Kind})
		if n := len(ch.MarkLabels); n > 0 && x-ch.MarkLabels[n-1].Pos < markLabelGap {
			ch.MarkLabels[n-1].Label += ", " + t.Kind
			continue
		}
		ch.MarkLabels = append(ch.MarkLabels, htmlLabel{Pos: x, Label: t.Kind})
	}
	for i := range ch.MarkLabels { // kept inside the chart at its edges
		switch l := &ch.MarkLabels[i]; {
		case l.Pos > plotRight-markLabelGap:
			l.Anchor = "end"
		case l.Pos < plotLeft+markLabelGap:
			l.Anchor = "start"
		default:
			l.Anchor = "middle"
		}
	}
	for _, se := range all {
		hs := htmlSeries{Name: se.name, Class: se.class}
		var run []string
		end := func() {
			switch len(run) {
			case 0:
			case 1: // a lone value: a dot, as a line of one point is not drawn
				x, yy, _ := strings.Cut(run[0], ",")
				hs.Dots = append(hs.Dots, htmlPoint{x, yy})
			default:
				hs.Lines = append(hs.Lines, strings.Join(run, " "))
			}
			run = nil
		}
		for i, v := range se.vs {
			if !se.ok[i] {
				end()
				continue
			}
			run = append(run, fmt.Sprintf("%.1f,%.1f", ax.x(se.ts[i]), y(v)))
		}
		end()
		if len(hs.Lines)+len(hs.Dots) > 0 {
			ch.Series = append(ch.Series, hs)
		}
	}
	return ch, true
}

// lastLimit is the service's memory limit in the newest sample that has one.
func lastLimit(ss []capture.Sample) uint64 {
	for i := len(ss) - 1; i >= 0; i-- {
		if s := ss[i].Service; s != nil && s.MemoryMaxBytes != nil {
			return *s.MemoryMaxBytes
		}
	}
	return 0
}

// fullestMounts are the filesystems to chart: the fullest at any sample
// first, at most maxDisks.
func fullestMounts(ss []capture.Sample) []string {
	peak := map[string]float64{}
	for _, s := range ss {
		for _, d := range s.Disks {
			peak[d.Mount] = max(peak[d.Mount], d.UsedPercent)
		}
	}
	var mounts []string
	for m := range peak {
		mounts = append(mounts, m)
	}
	slices.SortFunc(mounts, func(a, b string) int {
		if peak[a] != peak[b] {
			if peak[a] > peak[b] {
				return -1
			}
			return 1
		}
		return strings.Compare(a, b)
	})
	return mounts[:min(len(mounts), maxDisks)]
}

// procTables are the top processes before and at the failure, and the
// service's own, the service's marked in the host's lists.
func procTables(c *capture.Capture) []htmlTable {
	var pre, at *capture.Sample
	for i := range c.Samples {
		s := &c.Samples[i]
		if s.At.Before(c.TransitionTime) {
			pre = s
		} else if at == nil {
			at = s
		}
	}
	inService := map[int]bool{}
	for _, s := range []*capture.Sample{pre, at} {
		if s != nil && s.Service != nil {
			for _, p := range s.Service.Processes {
				inService[p.PID] = true
			}
		}
	}
	when := func(s *capture.Sample) string {
		if s.At.Before(c.TransitionTime) {
			return "before the failure (" + findings.Offset(s.At.Sub(c.TransitionTime)) + ")"
		}
		return "at the failure (" + findings.Offset(s.At.Sub(c.TransitionTime)) + ")"
	}
	table := func(title string, ps []capture.Process, mark bool) htmlTable {
		t := htmlTable{Title: title}
		for _, p := range ps[:min(len(ps), maxProcRows)] {
			t.Rows = append(t.Rows, htmlProc{PID: p.PID, Threads: p.Threads, Name: p.Name, State: p.State,
				CPU: cpuPercent(p.CPUPercent), RSS: findings.Bytes(p.RSSBytes), Cmdline: p.Cmdline,
				Service: mark && inService[p.PID]})
		}
		return t
	}
	var out []htmlTable
	// CPU figures over a whole interval come from the last sample before
	// the failure; the one at the failure may follow it by milliseconds.
	if s := cmp.Or(pre, at); s != nil {
		out = append(out, table("Top CPU "+when(s), s.TopCPU, true))
	}
	if s := cmp.Or(at, pre); s != nil {
		out = append(out, table("Top memory "+when(s), s.TopMemory, true))
	}
	if pre != nil && pre.Service != nil && len(pre.Service.Processes) > 0 {
		out = append(out, table("Service processes "+when(pre), pre.Service.Processes, false))
	}
	if at != nil && at.Service != nil && len(at.Service.Processes) > 0 &&
		(pre == nil || pre.Service == nil || !slices.EqualFunc(pre.Service.Processes, at.Service.Processes,
			func(a, b capture.Process) bool { return a.PID == b.PID })) {
		out = append(out, table("Service processes "+when(at), at.Service.Processes, false))
	}
	return out
}

// oneFormat refuses --json with --html: one output at a time.
func oneFormat(c *command, asJSON, asHTML bool) error {
	if asJSON && asHTML {
		return usageErr(fmt.Sprintf("%s: --json and --html conflict: choose one", c.fs.Name()))
	}
	return nil
}

// cpuPercent is a process's CPU percent as the tables show it: "-" where the
// capture has no rate.
func cpuPercent(p *float64) string {
	if p == nil {
		return "-"
	}
	return fmt.Sprintf("%.1f", *p)
}
