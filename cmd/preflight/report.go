package main

import (
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/preflight-rec/preflight/recorder/capture"
)

// writeReport prints a capture for a person: what failed and when, the
// samples as a timeline, the top processes at the failure, the file's path.
// It fits 80 columns for the usual values.
func writeReport(w io.Writer, c *capture.Capture, path string) error {
	b := &strings.Builder{}
	t0 := c.TransitionTime
	fmt.Fprintf(b, "%s failed at %s (%s) on %s\n", c.Service,
		t0.Local().Format("2006-01-02 15:04:05.000 MST"), ago(time.Now(), t0), orDash(c.Host))

	for i, t := range c.Triggers {
		label := ""
		if i == 0 {
			label = "trigger"
		}
		fmt.Fprintf(b, "  %-8s %-6s %-7s %s\n", label, t.Kind, "+"+fmtRel(t.At.Sub(t0)), t.Detail)
	}
	if c.TriggersOmitted > 0 {
		fmt.Fprintf(b, "  %-8s (%d more triggers not recorded)\n", "", c.TriggersOmitted)
	}
	fmt.Fprintf(b, "  %-8s %s\n", "error", orDash(c.HealthError))
	fmt.Fprintf(b, "  %-8s %s\n", "health", c.HealthURL)
	if c.Unit != "" {
		fmt.Fprintf(b, "  %-8s %s\n", "unit", c.Unit)
	}
	if cg := cgroupOf(c); cg != "" {
		fmt.Fprintf(b, "  %-8s %s\n", "cgroup", cg)
	}
	if s := c.Systemd; s != nil {
		fmt.Fprintf(b, "  %-8s %s\n", "systemd", systemdLine(s))
	}

	pre, at := splitSamples(c)
	fmt.Fprintf(b, "\nTimeline (every %ss, relative to the failure)\n", fmtFloat(c.IntervalSeconds))
	writeTimeline(b, c.Samples, t0)

	// The last sample before the failure has CPU figures over a whole
	// interval; the one at the failure may follow it by milliseconds, so its
	// CPU figures cover only that moment.
	if pre != nil {
		when := fmtRel(pre.At.Sub(t0))
		writeProcs(b, "Top CPU before the failure ("+when+")", pre.TopCPU)
		writeProcs(b, "Top memory before the failure ("+when+")", pre.TopMemory)
		if pre.Service != nil {
			writeProcs(b, "Service processes before the failure ("+when+")", pre.Service.Processes)
		}
	}
	if at != nil {
		writeProcs(b, "Top memory at the failure", at.TopMemory)
		if at.Service != nil {
			writeProcs(b, "Service processes at the failure", at.Service.Processes)
		}
	}
	fmt.Fprintf(b, "\nfile %s\n", path)
	_, err := io.WriteString(w, b.String())
	return err
}

// splitSamples returns the last sample before the failure and the first one
// at or after it (the sample taken at the first trigger). Either may be nil.
func splitSamples(c *capture.Capture) (pre, at *capture.Sample) {
	for i := range c.Samples {
		s := &c.Samples[i]
		if s.At.Before(c.TransitionTime) {
			pre = s
		} else if at == nil {
			at = s
		}
	}
	return pre, at
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
		return fmt.Sprint(*p)
	}
	add("result", s.Result)
	add("restarts", itoa(s.NRestarts))
	add("exit", strings.TrimSpace(s.ExecMainCode+" "+itoa(s.ExecMainStatus)))
	add("main-pid", itoa(s.MainPID))
	add("state", strings.Trim(s.ActiveState+"/"+s.SubState, "/"))
	return strings.Join(parts, " ")
}

func writeTimeline(b *strings.Builder, samples []capture.Sample, t0 time.Time) {
	if len(samples) == 0 {
		b.WriteString("  no samples\n")
		return
	}
	svc := false
	for _, s := range samples {
		svc = svc || s.Service != nil
	}
	tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', tabwriter.AlignRight)
	head := "TIME\tCPU%\tMEM%\tSWAP\tLOAD1\tDISK%\t"
	if svc {
		head += "SVC MEM\tSVC CPU%\tPROCS\t"
	}
	fmt.Fprintln(tw, head)
	for _, s := range samples {
		swap := "-"
		if s.Memory.SwapTotalBytes > 0 {
			swap = bytesIEC(s.Memory.SwapUsedBytes)
		}
		row := fmt.Sprintf("%s\t%.1f\t%.1f\t%s\t%.2f\t%s\t", fmtRel(s.At.Sub(t0)), s.CPU.Percent,
			s.Memory.UsedPercent, swap, s.Load.Load1, fullestDisk(s.Disks))
		if svc {
			row += serviceCols(s.Service)
		}
		fmt.Fprintln(tw, row)
	}
	tw.Flush()
}

func serviceCols(s *capture.Service) string {
	if s == nil {
		return "-\t-\t-\t"
	}
	mem, cpu := "-", "-"
	if s.MemoryBytes != nil {
		mem = bytesIEC(*s.MemoryBytes)
		if s.MemoryMaxBytes != nil && *s.MemoryMaxBytes > 0 {
			mem += fmt.Sprintf(" %.0f%%", 100*float64(*s.MemoryBytes)/float64(*s.MemoryMaxBytes))
		}
	}
	if s.CPUPercent != nil {
		cpu = fmt.Sprintf("%.1f", *s.CPUPercent)
	}
	return fmt.Sprintf("%s\t%s\t%d\t", mem, cpu, len(s.Processes))
}

func fullestDisk(ds []capture.Disk) string {
	best := -1.0
	for _, d := range ds {
		best = math.Max(best, d.UsedPercent)
	}
	if best < 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f", best)
}

func writeProcs(b *strings.Builder, title string, ps []capture.Process) {
	fmt.Fprintf(b, "\n%s\n", title)
	if len(ps) == 0 {
		b.WriteString("  none\n")
		return
	}
	tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  PID\tCPU%\tRSS\tS\tCOMMAND")
	for _, p := range ps {
		cmd := p.Cmdline
		if cmd == "" {
			cmd = "[" + p.Name + "]"
		}
		fmt.Fprintf(tw, "  %d\t%.1f\t%s\t%s\t%s\n", p.PID, p.CPUPercent, bytesIEC(p.RSSBytes), p.State, cut(cmd, 48))
	}
	tw.Flush()
}

// fmtRel formats an offset from the failure compactly: -4m30s, -1.2s,
// -250ms, 0s.
func fmtRel(d time.Duration) string {
	sign := ""
	if d < 0 {
		sign, d = "-", -d
	}
	switch {
	case d < time.Millisecond:
		return "0s"
	case d < time.Second:
		return fmt.Sprintf("%s%dms", sign, d.Milliseconds())
	case d < 10*time.Second:
		return fmt.Sprintf("%s%.1fs", sign, d.Seconds())
	case d < time.Minute:
		return fmt.Sprintf("%s%ds", sign, int(d.Round(time.Second).Seconds()))
	case d < time.Hour:
		d = d.Round(time.Second)
		return fmt.Sprintf("%s%dm%02ds", sign, int(d.Minutes()), int(d.Seconds())%60)
	default:
		d = d.Round(time.Minute)
		return fmt.Sprintf("%s%dh%02dm", sign, int(d.Hours()), int(d.Minutes())%60)
	}
}

func fmtFloat(f float64) string { return strings.TrimSuffix(fmt.Sprintf("%.3g", f), ".0") }

// bytesIEC formats a byte count with a binary unit: 512B, 1.5KiB, 120MiB.
func bytesIEC(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%dB", n)
	}
	v, i := float64(n), -1
	for v >= unit && i < 4 {
		v /= unit
		i++
	}
	suffix := []string{"KiB", "MiB", "GiB", "TiB", "PiB"}[i]
	if v < 10 {
		return fmt.Sprintf("%.1f%s", v, suffix)
	}
	return fmt.Sprintf("%.0f%s", v, suffix)
}
