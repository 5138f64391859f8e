package logs

import (
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/preflight-rec/preflight/recorder/capture"
)

// OOMReport is what the kernel logged about one OOM kill: the victim's
// "Killed process PID" line, always printed, and what the header before
// it said where the kernel printed one (dump_header is ratelimited, 10
// every 5 s): the summary's cgroups, and the memory cgroup's usage at the
// kill (mem_cgroup_print_oom_meminfo).
type OOMReport struct {
	At   time.Time // the kernel's stamp of the "Killed process" line (its clock, converted: may be skewed)
	Kill OOMKill
	// OOMMemcg and TaskMemcg are the summary's cgroups ("oom-kill:…,
	// oom_memcg=CG,task_memcg=CG,task=NAME,pid=PID,…"): the one whose
	// limit was hit and the victim's; "" without the summary. A global OOM
	// (no limit hit: "…,global_oom,task_memcg=CG,…", the kernel's
	// mem_cgroup_print_oom_context) has TaskMemcg alone.
	OOMMemcg  string
	TaskMemcg string
	// UsageBytes and LimitBytes are the OOMMemcg's "memory: usage NkB,
	// limit NkB" at the kill; nil without the header.
	UsageBytes *uint64
	LimitBytes *uint64
}

var (
	usageRe    = regexp.MustCompile(`^memory: usage (\d+)kB, limit (\d+)kB, failcnt \d+`)
	statsForRe = regexp.MustCompile(`^Memory cgroup stats for (/\S*):`)
	summaryRe  = regexp.MustCompile(`^oom-kill:.*(?:,oom_memcg=([^,]*)|,global_oom),task_memcg=([^,]*),task=.*,pid=(\d+),uid=\d+`)
)

// OOMReports returns the OOM kills the kernel's lines report, in the
// order the kernel logged them. A header's lines count for the kill that
// follows them only when the summary names the victim's PID and the
// memory dump is of the summary's oom_memcg: the OOM killer holds a lock
// over one kill's lines, so they never interleave with another kill's.
func OOMReports(lines []capture.KernelLine) []OOMReport {
	var out []OOMReport
	var (
		usage, limit  *uint64
		statsFor      string
		oomCG, taskCG string
		summaryPID    int
	)
	reset := func() {
		usage, limit, statsFor, oomCG, taskCG, summaryPID = nil, nil, "", "", "", 0
	}
	for _, l := range lines {
		t := l.Text
		switch {
		case strings.Contains(t, " invoked oom-killer: "):
			reset()
		case strings.HasPrefix(t, "memory: usage "):
			if m := usageRe.FindStringSubmatch(t); m != nil {
				usage, limit = kB(m[1]), kB(m[2])
			}
		case strings.HasPrefix(t, "Memory cgroup stats for "):
			if m := statsForRe.FindStringSubmatch(t); m != nil {
				statsFor = m[1]
			}
		case strings.HasPrefix(t, "oom-kill:"):
			if m := summaryRe.FindStringSubmatch(t); m != nil {
				oomCG, taskCG = m[1], m[2]
				summaryPID, _ = atoi(m[3])
			}
		default:
			k, ok := ParseOOMKill(t)
			if !ok {
				continue
			}
			r := OOMReport{At: l.At, Kill: k}
			if summaryPID == k.PID {
				r.OOMMemcg, r.TaskMemcg = oomCG, taskCG
				if statsFor != "" && statsFor == oomCG {
					r.UsageBytes, r.LimitBytes = usage, limit
				}
			}
			out = append(out, r)
			reset()
		}
	}
	return out
}

// Names reports whether the report's summary names the cgroup cg (a path
// as in /proc/PID/cgroup) as the one whose limit was hit or as the
// victim's: the path itself, or under a container's host prefix
// (/machine/c1/system.slice/x.service for /system.slice/x.service).
func (r OOMReport) Names(cg string) bool {
	return SameCgroup(r.OOMMemcg, cg) || SameCgroup(r.TaskMemcg, cg)
}

// SameCgroup reports whether the kernel's path printed is the cgroup cg,
// or cg under a prefix (the kernel prints paths from its own root). "/"
// never matches.
func SameCgroup(printed, cg string) bool {
	cg = strings.TrimSuffix(cg, "/")
	if cg == "" || !strings.HasPrefix(cg, "/") || !strings.HasPrefix(printed, "/") {
		return false
	}
	return strings.HasSuffix(printed, cg)
}

func kB(s string) *uint64 {
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n > 1<<50 {
		return nil
	}
	n <<= 10
	return &n
}
