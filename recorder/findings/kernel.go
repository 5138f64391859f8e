package findings

import (
	"fmt"

	"github.com/preflight-rec/preflight/recorder/capture"
	"github.com/preflight-rec/preflight/recorder/logs"
)

// OOMVictim fires when the kernel's log names the OOM killer's victim in
// the service (capture kernel_log): which process, and the anonymous memory
// it held (the memory a leak grows; page cache is file-rss). With several
// victims it names the last and counts them.
func OOMVictim(in Incident, _ Thresholds) *Finding {
	var kills []logs.OOMKill
	var lines []capture.KernelLine
	for _, l := range in.KernelLog {
		if k, ok := logs.ParseOOMKill(l.Text); ok {
			kills, lines = append(kills, k), append(lines, l)
		}
	}
	if len(kills) == 0 {
		return nil
	}
	k, l := kills[len(kills)-1], lines[len(lines)-1]
	where := "the host's memory ran out"
	if k.Memcg {
		where = "its cgroup's memory limit"
	}
	f := &Finding{Summary: fmt.Sprintf("The OOM killer's victim: %s (PID %d) with %s of anonymous memory (%s)",
		k.Name, k.PID, Bytes(k.AnonRSSBytes), where)}
	if len(kills) > 1 {
		f.Summary = fmt.Sprintf("The OOM killer killed %d processes, the last %s (PID %d) with %s of anonymous memory (%s)",
			len(kills), k.Name, k.PID, Bytes(k.AnonRSSBytes), where)
	}
	f.Evidence = append(f.Evidence, fmt.Sprintf("kernel at %s: anon-rss %s, file-rss %s, shmem-rss %s, total-vm %s",
		in.rel(l.At), Bytes(k.AnonRSSBytes), Bytes(k.FileRSSBytes), Bytes(k.ShmemRSSBytes), Bytes(k.TotalVMBytes)))
	return f
}

// Segfault fires when the kernel's log has a segfault or trap of a service
// process: which process, what, and the library the instruction pointer
// was in (where the bug is, or what it called).
func Segfault(in Incident, _ Thresholds) *Finding {
	for i := len(in.KernelLog) - 1; i >= 0; i-- {
		l := in.KernelLog[i]
		s, ok := logs.ParseSegfault(l.Text)
		if !ok {
			continue
		}
		what := s.Kind
		if s.Library != "" {
			what += " in " + s.Library
		}
		f := &Finding{Summary: fmt.Sprintf("%s (PID %d) crashed: %s", s.Name, s.PID, what)}
		f.Evidence = append(f.Evidence, fmt.Sprintf("kernel at %s: %s", in.rel(l.At), logs.Cut(l.Text)))
		return f
	}
	return nil
}
