package main

import (
	"fmt"
	"strings"

	"github.com/preflight-rec/preflight/recorder/capture"
	"github.com/preflight-rec/preflight/recorder/findings"
)

// The last words of a capture (kernel_log, journal) in the report and the
// page: each under its own heading, a line per entry with its offset from
// the failure; a log not read says why, a capture from before them shows
// neither.

// logLine is one shown line of a log.
type logLine struct{ Offset, Priority, Text string }

// logSection is one log as the readers show it.
type logSection struct {
	Title string
	Lines []logLine
	Empty string // shown instead of lines: why there are none
}

// syslogPriority names a journal priority as journalctl -o verbose does.
var syslogPriority = [...]string{"emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"}

func priorityName(p int) string {
	if p >= 0 && p < len(syslogPriority) {
		return syslogPriority[p]
	}
	return fmt.Sprint(p)
}

// logSections returns the capture's kernel lines and journal lines, each
// when the capture says anything about it.
func logSections(c *capture.Capture) []logSection {
	var out []logSection
	if c.KernelLog != nil || c.KernelLogMissing != "" {
		s := logSection{Title: "Kernel log about the service"}
		for _, l := range c.KernelLog {
			s.Lines = append(s.Lines, logLine{Offset: findings.Offset(l.At.Sub(c.TransitionTime)), Text: l.Text})
		}
		switch {
		case c.KernelLog == nil:
			s.Empty = "not read: " + c.KernelLogMissing
		case len(c.KernelLog) == 0:
			s.Empty = "the kernel said nothing about the service"
		}
		out = append(out, s)
	}
	if c.Journal != nil || c.JournalMissing != "" {
		s := logSection{Title: fmt.Sprintf("Journal: the unit's last %d lines", len(c.Journal))}
		for _, l := range c.Journal {
			s.Lines = append(s.Lines, logLine{Offset: findings.Offset(l.At.Sub(c.TransitionTime)), Priority: priorityName(l.Priority), Text: l.Text})
		}
		switch {
		case c.Journal == nil:
			s.Title = "Journal of the unit"
			s.Empty = "not read: " + c.JournalMissing
		case len(c.Journal) == 0:
			s.Title = "Journal of the unit"
			s.Empty = "no lines before the failure"
		}
		out = append(out, s)
	}
	return out
}

// writeLogs prints the capture's log sections.
func writeLogs(b *strings.Builder, c *capture.Capture, o out) {
	for _, s := range logSections(c) {
		b.WriteString("\n" + o.paint(bold, s.Title) + "\n")
		if s.Empty != "" {
			wrap(b, o, "  ", "  ", safe(s.Empty))
			continue
		}
		for _, l := range s.Lines {
			head := fmt.Sprintf("  %7s  ", l.Offset)
			if l.Priority != "" {
				head += fmt.Sprintf("%-7s ", l.Priority)
			}
			sgr := ""
			if l.Priority == "emerg" || l.Priority == "alert" || l.Priority == "crit" || l.Priority == "err" {
				sgr = red
			}
			b.WriteString(head + o.paint(sgr, o.fit(safe(l.Text), len(head))) + "\n")
		}
	}
}
