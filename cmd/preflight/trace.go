package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/preflight-rec/preflight/recorder/capture"
	"github.com/preflight-rec/preflight/recorder/findings"
)

// maxTraceRows is how many trace readings before the failure the report
// shows; the file holds them all.
const maxTraceRows = 30

// traceFiner reports whether c has a service trace finer than its ring:
// readings more often than samples.
func traceFiner(c *capture.Capture) bool {
	return len(c.ServiceTrace) > 0 && c.ServiceIntervalSeconds > 0 &&
		(c.IntervalSeconds == 0 || c.ServiceIntervalSeconds < c.IntervalSeconds)
}

// writeTrace prints the service trace of this incident's scene (the last
// maxTraceRows readings before the failure, then those at its triggers).
func writeTrace(b *strings.Builder, c *capture.Capture, o out) {
	ps := findings.FromCapture(c).Trace
	t0 := c.TransitionTime
	nPre := 0
	for nPre < len(ps) && ps[nPre].At.Before(t0) {
		nPre++
	}
	skipped := max(nPre-maxTraceRows, 0)
	ps = ps[skipped:]
	limit := uint64(0)
	for i := len(c.Samples) - 1; i >= 0 && limit == 0; i-- {
		if s := c.Samples[i].Service; s != nil && s.MemoryMaxBytes != nil {
			limit = *s.MemoryMaxBytes
		}
	}
	f1 := func(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }
	type tcol struct {
		head string
		cell func(p *capture.TracePoint) string
	}
	all := []tcol{
		{"SVC MEM", func(p *capture.TracePoint) string {
			if p.MemoryBytes == nil {
				return ""
			}
			return findings.Bytes(*p.MemoryBytes)
		}},
		{"LIMIT%", func(p *capture.TracePoint) string {
			if p.MemoryBytes == nil || limit == 0 {
				return ""
			}
			return fmt.Sprintf("%.0f", 100*float64(*p.MemoryBytes)/float64(limit))
		}},
		{"RSS", func(p *capture.TracePoint) string { return findings.Bytes(p.RSSBytes) }},
		{"SVC CPU%", func(p *capture.TracePoint) string {
			if p.CPUPercent == nil {
				return ""
			}
			return f1(*p.CPUPercent)
		}},
		{"MEMPSI", func(p *capture.TracePoint) string {
			if p.MemorySomeAvg10 == nil {
				return ""
			}
			return f1(*p.MemorySomeAvg10)
		}},
		{"OOM", func(p *capture.TracePoint) string {
			if p.OOMKills == nil {
				return ""
			}
			return strconv.FormatUint(*p.OOMKills, 10)
		}},
		{"PROCS", func(p *capture.TracePoint) string { return strconv.Itoa(p.Pids) }},
	}
	var cols []tcol
	for _, cl := range all {
		for i := range ps {
			if cl.cell(&ps[i]) != "" {
				cols = append(cols, cl)
				break
			}
		}
	}
	t := &table{indent: 2, gap: 2, flex: -1, tight: true}
	t.cols = append(t.cols, col{head: "TIME", right: true})
	for _, cl := range cols {
		t.cols = append(t.cols, col{head: cl.head, right: true})
	}
	t.cols = append(t.cols, col{head: ""})
	for i := range ps {
		p := &ps[i]
		row := []cell{{s: findings.Offset(p.At.Sub(t0))}}
		for _, cl := range cols {
			row = append(row, cell{s: orDash(cl.cell(p))})
		}
		mark := ""
		if p.Trigger != "" {
			mark = "← " + p.Trigger
		}
		row = append(row, cell{s: mark, sgr: red})
		t.rows = append(t.rows, row)
	}
	if skipped > 0 {
		fmt.Fprintf(b, "  (%d earlier readings not shown: see the file)\n", skipped)
	}
	t.write(b, o)
}
