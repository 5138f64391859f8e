// Package logs reads the last words about one service when it fails: what
// the kernel logged about it (an OOM kill, a segfault, a trap, a hung task)
// and the unit's own last journal lines.
//
// Parsing is separate from reading. [ParseOOMKill], [ParseSegfault] and
// [Filter] are pure and work on one line of kernel text as the kernel
// prints it; [ReadKmsg] reads /dev/kmsg, [ReadKernelJournal] and
// [ReadJournal] run journalctl. Every reader is bounded in lines and bytes
// ([MaxKernelLines], [MaxLineBytes]).
package logs

import (
	"regexp"
	"strconv"
	"strings"
)

// Bounds of what a capture keeps of the logs.
const (
	MaxKernelLines = 32       // kernel lines kept (the newest)
	MaxLineBytes   = 512      // a line longer than this is cut
	MaxKernelBytes = 8 << 10  // kernel text kept in all (the newest lines)
	MaxJournalByte = 16 << 10 // journal text kept in all (the newest lines)
)

// OOMKill is the OOM killer's report of one victim: "Memory cgroup out of
// memory: Killed process 9352 (dead-drop) total-vm:1330856kB,
// anon-rss:63744kB, file-rss:0kB, shmem-rss:4408kB, UID:0 …".
type OOMKill struct {
	PID           int
	Name          string
	Memcg         bool // a cgroup's limit ("Memory cgroup out of memory"), not the host's
	TotalVMBytes  uint64
	AnonRSSBytes  uint64
	FileRSSBytes  uint64
	ShmemRSSBytes uint64
}

var oomKillRe = regexp.MustCompile(`^(.*?): Killed process (\d+) \((.*)\) total-vm:(\d+)kB, anon-rss:(\d+)kB, file-rss:(\d+)kB, shmem-rss:(\d+)kB`)

// ParseOOMKill parses the OOM killer's "Killed process" line.
func ParseOOMKill(text string) (OOMKill, bool) {
	m := oomKillRe.FindStringSubmatch(text)
	if m == nil {
		return OOMKill{}, false
	}
	k := OOMKill{Name: m[3], Memcg: m[1] == "Memory cgroup out of memory"}
	var ok bool
	if k.PID, ok = atoi(m[2]); !ok {
		return OOMKill{}, false
	}
	for i, p := range []*uint64{&k.TotalVMBytes, &k.AnonRSSBytes, &k.FileRSSBytes, &k.ShmemRSSBytes} {
		kb, err := strconv.ParseUint(m[4+i], 10, 64)
		if err != nil || kb > 1<<50 {
			return OOMKill{}, false
		}
		*p = kb << 10
	}
	return k, true
}

// Segfault is the kernel's report of an unhandled fault or trap in user
// space: "python3[11622]: segfault at 0 ip 00007f5866585ad8 sp
// 00007ffd410b7858 error 4 in libc.so.6[167ad8,7f5866444000+156000]", or
// "traps: app[1234] trap divide error ip:… sp:… error:0 in app[…]".
type Segfault struct {
	PID     int
	Name    string
	Kind    string // "segfault at 0", "trap divide error", "general protection fault", …
	Library string // the mapping the instruction pointer was in ("libc.so.6"); "" when the kernel did not say
}

var (
	segfaultRe = regexp.MustCompile(`^(.+)\[(\d+)\]: (segfault at [0-9a-f]+) ip [0-9a-f]+ sp [0-9a-f]+ error [0-9a-f]+(?: in (.+?)\[[0-9a-f,+]+\])?`)
	trapRe     = regexp.MustCompile(`^traps: (.+)\[(\d+)\] (.+?) ip[: ][0-9a-f]+ sp[: ][0-9a-f]+ error[: ][0-9a-f]+(?: in (.+?)\[[0-9a-f,+]+\])?`)
)

// ParseSegfault parses a segfault or trap line.
func ParseSegfault(text string) (Segfault, bool) {
	m := segfaultRe.FindStringSubmatch(text)
	if m == nil {
		if m = trapRe.FindStringSubmatch(text); m == nil {
			return Segfault{}, false
		}
	}
	pid, ok := atoi(m[2])
	if !ok {
		return Segfault{}, false
	}
	return Segfault{PID: pid, Name: m[1], Kind: m[3], Library: m[4]}, true
}

// pidRe finds the PIDs a kernel line names in words: the OOM killer's
// "Killed process N", "reaped process N" and "pid=N", a hung task's "task
// name:N blocked", the "PID: N" of a dump's CPU line. A task's "name[N]:"
// or "traps: name[N]" at the start of a line is found by bracketPID.
var pidRe = regexp.MustCompile(`(?:Killed process |reaped process |[,:]pid=|\bPID: |^INFO: task .+:)(\d+)\b`)

// PIDs returns the PIDs text names.
func PIDs(text string) []int {
	var out []int
	if pid, ok := bracketPID(text); ok {
		out = append(out, pid)
	}
	// The regexp only where one of its words is: most kernel lines name
	// no process, and a full ring is thousands of lines.
	if !strings.Contains(text, " process ") && !strings.Contains(text, "pid=") && !strings.Contains(text, "PID: ") &&
		!strings.HasPrefix(text, "INFO: task ") {
		return out
	}
	for _, m := range pidRe.FindAllStringSubmatch(text, 8) {
		if pid, ok := atoi(m[1]); ok {
			out = append(out, pid)
		}
	}
	return out
}

// bracketPID reads the N of "name[N]" or "traps: name[N]" at the start of
// a line: a name of at least one byte, without '['.
func bracketPID(text string) (int, bool) {
	i := strings.IndexByte(text, '[')
	if i <= 0 {
		return 0, false
	}
	j := i + 1
	for j < len(text) && text[j] >= '0' && text[j] <= '9' {
		j++
	}
	if j == i+1 || j >= len(text) || text[j] != ']' {
		return 0, false
	}
	return atoi(text[i+1 : j])
}

// Filter selects the kernel lines about one service: those that name one
// of its PIDs or its cgroup. A line that names the cgroup adds the PIDs it
// names (the OOM killer's "task_memcg=CG,task=x,pid=N" line makes its next
// "Killed process N" line count, for a victim no sample saw).
//
// The kernel prints cgroup paths from its own root, so a service in a
// container's cgroup namespace (/system.slice/x.service) shows under its
// host path (/machine/c1/system.slice/x.service): a path that ends with the
// cgroup counts too, unless a line names it exactly. Where lines name it
// under several such prefixes (two containers running the same unit), the
// prefix of the latest one counts: the one whose service just failed.
type Filter struct {
	PIDs    map[int]bool
	Cgroups []string // paths as in /proc/PID/cgroup; "/" never matches

	prefix map[string]string // the chosen host prefix of each cgroup; nil: any
}

// Select returns the indexes of the lines about the service; texts are
// in the order the kernel logged them.
func (f *Filter) Select(texts []string) []int {
	f.prefix = map[string]string{}
	for _, cg := range f.Cgroups {
		exact, last := false, ""
		for _, t := range texts {
			if p, ok := cgroupPrefix(t, cg); ok {
				exact = exact || p == ""
				last = p
			}
		}
		if exact {
			last = ""
		}
		f.prefix[cg] = last
	}
	var out []int
	for i, t := range texts {
		if f.About(t) {
			out = append(out, i)
		}
	}
	return out
}

// About reports whether text is about the service. Call it on the lines in
// the order the kernel logged them (Select does).
func (f *Filter) About(text string) bool {
	for _, cg := range f.Cgroups {
		p, ok := cgroupPrefix(text, cg)
		if !ok {
			continue
		}
		if want, chosen := f.prefix[cg]; chosen && p != want {
			continue
		}
		if f.PIDs == nil {
			f.PIDs = map[int]bool{}
		}
		for _, pid := range PIDs(text) {
			f.PIDs[pid] = true
		}
		return true
	}
	for _, pid := range PIDs(text) {
		if f.PIDs[pid] {
			return true
		}
	}
	return false
}

// cgroupPrefix finds the cgroup cg in text as a whole path, ending before
// a ',', ' ', ':' or the line's end, and returns what the kernel printed
// before it in the same path ("" when it names cg itself).
func cgroupPrefix(text, cg string) (string, bool) {
	cg = strings.TrimSuffix(cg, "/")
	if cg == "" || !strings.HasPrefix(cg, "/") {
		return "", false
	}
	for i := 0; ; {
		j := strings.Index(text[i:], cg)
		if j < 0 {
			return "", false
		}
		start, end := i+j, i+j+len(cg)
		if end == len(text) || strings.IndexByte(", :\n", text[end]) >= 0 {
			from := strings.LastIndexAny(text[:start], "=, :") + 1
			return text[from:start], true
		}
		i = start + 1
	}
}

// Cut returns s cut at a rune boundary to at most MaxLineBytes bytes,
// ending with "…" when cut.
func Cut(s string) string {
	if len(s) <= MaxLineBytes {
		return s
	}
	const ellipsis = "…"
	n := MaxLineBytes - len(ellipsis)
	for n > 0 && !isRuneStart(s[n]) {
		n--
	}
	return s[:n] + ellipsis
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }

func atoi(s string) (int, bool) {
	n, err := strconv.Atoi(s)
	return n, err == nil && n > 0 && n <= 1<<22
}
