package cgroup

import (
	"slices"
	"strconv"
	"strings"
	"time"
)

// Event kinds.
const (
	KindExit = "exit" // the cgroup emptied, all its processes were replaced, it vanished while populated, or its main process ended
	KindOOM  = "oom"  // the cgroup's oom_kill counter rose
)

// look is what one look at the cgroup saw.
type look struct {
	exists bool
	id     uint64 // identity of the cgroup (inode of its cgroup.procs); a change means re-created
	pids   []int  // ascending
	oom    uint64 // oom_kill counter
	hasOOM bool
	// gone is the OOM counter of the cgroup of the previous look, read
	// just before the look found it removed or re-created.
	gone   uint64
	goneOK bool
	at     time.Time // when the look was made (zero in tests that do not care)
	// primary: the cgroup was found in the first hierarchy looked up (the
	// v2 one on unified and hybrid hosts), not a fallback to a v1
	// hierarchy where the cgroup lingers while systemd removes it.
	primary bool
	main    int // the service's main process as systemd last named it ([Watcher.SetMain]); 0: unknown
}

// minReplacedAge is how long a set of processes must have been seen before
// its replacement counts as a restart. A daemon that forks and lets its
// parent exit at start-up (Type=forking) replaces its processes within
// milliseconds of appearing; a service that had been running and is
// replaced between two looks was restarted.
const minReplacedAge = time.Second

// change is one event the machine found: kind and detail; main is the
// main process whose end it is, 0 for any other.
type change struct {
	kind, detail string
	main         int
	replaced     bool // every process replaced, the cgroup never seen empty
}

// machine turns successive looks into events, one per transition. It is a
// pure state machine: the watcher feeds it looks from inotify wake-ups and
// polls alike, so a transition seen by both is reported once.
type machine struct {
	known     bool      // the cgroup existed at the last look
	id        uint64    // its identity then
	populated bool      // it had processes then
	last      []int     // the last non-empty PID set since the last exit
	since     time.Time // when the cgroup was first seen populated since the last exit
	oom       uint64
	hasOOM    bool
	// offPrimary: the last look did not find the cgroup in its primary
	// hierarchy (it survives a reset); born: this cgroup then appeared
	// there while watched, so its counters started at 0 under the
	// watcher's eyes (a counter first read later is not a baseline).
	offPrimary, born bool
}

// step feeds one look and appends the events it implies to out.
func (m *machine) step(l look, out []change) []change {
	if m.known && (!l.exists || l.id != m.id) {
		if m.populated {
			if !l.exists {
				out = append(out, change{kind: KindExit, detail: "cgroup removed (last pids " + fmtPIDs(m.last) + ")"})
			} else {
				out = append(out, change{kind: KindExit, detail: "cgroup re-created (" + fmtPIDs(m.last) + " → " + fmtPIDs(l.pids) + ")"})
			}
		}
		*m = machine{last: m.last[:0], offPrimary: m.offPrimary}
	}
	off := m.offPrimary
	m.offPrimary = !l.exists || !l.primary
	if !l.exists {
		return out
	}
	if !m.known {
		m.born = off && l.primary
	}
	populated := len(l.pids) > 0
	if l.hasOOM {
		// An unreadable counter keeps the last value as the baseline. A
		// cgroup that appeared while watched counts from 0, also when its
		// counter could first be read only later (hybrid: the v1 memory
		// directory follows the cgroup2 one).
		base, ok := m.oom, m.known && m.hasOOM
		if !m.hasOOM && m.born {
			base, ok = 0, true
		}
		if ok && l.oom > base {
			out = append(out, change{kind: KindOOM, detail: "oom_kill " + strconv.FormatUint(base, 10) + " → " + strconv.FormatUint(l.oom, 10)})
		}
		m.oom, m.hasOOM = l.oom, true
	}
	if m.known {
		switch {
		case m.populated && !populated:
			out = append(out, change{kind: KindExit, detail: "cgroup emptied (last pids " + fmtPIDs(m.last) + ")"})
			m.last = m.last[:0]
		case populated && len(m.last) > 0 && disjoint(m.last, l.pids):
			if !m.since.IsZero() && l.at.Sub(m.since) < minReplacedAge {
				m.since = l.at // start-up forking: the new set is the service
				break
			}
			out = append(out, change{kind: KindExit, detail: "all processes replaced (" + fmtPIDs(m.last) + " → " + fmtPIDs(l.pids) + ")", replaced: true})
			m.since = l.at
		case populated && l.main > 0 && slices.Contains(m.last, l.main) && !slices.Contains(l.pids, l.main):
			// The main process ended and others live on (a forking
			// daemon's workers, a shell's children): the service failed
			// as surely as if the cgroup had emptied, and what remains may
			// take seconds to go (systemd's ExecStop=, a child's own
			// shutdown), while the health check already fails.
			out = append(out, change{kind: KindExit, detail: "main process " + strconv.Itoa(l.main) + " ended (left pids " + fmtPIDs(l.pids) + ")", main: l.main})
		}
	}
	if populated && (!m.known || !m.populated) {
		m.since = l.at
	}
	if populated {
		m.last = append(m.last[:0], l.pids...)
	}
	m.known, m.id, m.populated = true, l.id, populated
	return out
}

// disjoint reports whether two ascending sets share no element.
func disjoint(a, b []int) bool {
	for i, j := 0, 0; i < len(a) && j < len(b); {
		switch {
		case a[i] == b[j]:
			return false
		case a[i] < b[j]:
			i++
		default:
			j++
		}
	}
	return true
}

// minus returns the elements of a not in b, both ascending.
func minus(a, b []int) []int {
	var out []int
	for i, j := 0, 0; i < len(a); {
		switch {
		case j == len(b) || a[i] < b[j]:
			out = append(out, a[i])
			i++
		case a[i] == b[j]:
			i++
			j++
		default:
			j++
		}
	}
	return out
}

// maxDetailPIDs is how many PIDs an event's detail names.
const maxDetailPIDs = 5

// fmtPIDs writes PIDs as "1234,1240", at most maxDetailPIDs of them, then
// "+N" for the rest; "none" when empty.
func fmtPIDs(pids []int) string {
	if len(pids) == 0 {
		return "none"
	}
	var b strings.Builder
	for i, p := range pids[:min(len(pids), maxDetailPIDs)] {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(p))
	}
	if len(pids) > maxDetailPIDs {
		b.WriteString(",+" + strconv.Itoa(len(pids)-maxDetailPIDs))
	}
	return b.String()
}
