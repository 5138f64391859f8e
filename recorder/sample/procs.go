package sample

import (
	"errors"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"github.com/preflight-rec/preflight/recorder/capture"
)

// clkTck is USER_HZ, the unit of the times in /proc/PID/stat: 100 on every
// Linux ABI that matters (sysconf(_SC_CLK_TCK)).
const clkTck = 100

// maxCmdlineRead is how much of /proc/PID/cmdline is read: enough for
// Redact to fill MaxCmdline, since redaction only looks backwards.
const maxCmdlineRead = 8 * MaxCmdline

// slot is what the sampler remembers of a process between scans.
type slot struct {
	start uint64 // starttime: with the PID, the process's identity
	ticks uint64 // utime+stime at the scan
	idx   int32  // index in Sampler.recs of the scan that made it
}

// procRec is one process of the current scan.
type procRec struct {
	pid     int
	cpu     float64 // percent of one CPU; -1: unknown
	rss     uint64  // pages
	threads int32
	state   byte
	nameOff uint32 // comm is Sampler.names[nameOff:nameOff+nameLen]
	nameLen uint16
}

// scan reads /proc/PID/stat of every process under the root, replacing
// s.recs and s.procs. base is the reference reading's processes and elapsed
// the monotonic time in seconds since it (nil: no CPU percents); cpus
// bounds a process's CPU percent. A process that vanishes or cannot be read
// or parsed is skipped.
func (s *Sampler) scan(base map[int]slot, elapsed float64, cpus int) error {
	if err := s.readProcs(&s.own, s.bufs); err != nil {
		return err
	}
	s.build(&s.own, base, elapsed, cpus)
	return nil
}

// build makes s.recs and s.procs from the processes of a reading, their
// CPU percents against base (see scan).
func (s *Sampler) build(raw *rawScan, base map[int]slot, elapsed float64, cpus int) {
	next := s.spare
	if next == nil {
		next = make(map[int]slot, len(s.procs))
	}
	clear(next)
	s.recs = fill(raw, base, elapsed, cpus, s.recs[:0], next)
	s.names = raw.names
	s.spare = nil
	if !s.procsIsRef {
		s.spare = s.procs
	}
	s.procs, s.procsIsRef = next, false
}

// buildShared is build for a Host's reading: the records and the map are
// made once per reading and base reading (baseRaw), shared by every
// Sampler whose rates have that base, and never changed after.
func (s *Sampler) buildShared(raw, baseRaw *rawScan, base map[int]slot, elapsed float64, cpus int) {
	raw.cmdMu.Lock()
	b := raw.builds[baseRaw]
	raw.cmdMu.Unlock()
	if b == nil {
		b = &built{procs: make(map[int]slot, len(raw.procs))}
		b.recs = fill(raw, base, elapsed, cpus, make([]procRec, 0, len(raw.procs)), b.procs)
		raw.cmdMu.Lock()
		if other := raw.builds[baseRaw]; other != nil {
			b = other
		} else {
			raw.builds[baseRaw] = b
		}
		raw.cmdMu.Unlock()
	}
	s.recs, s.procs, s.names = b.recs, b.procs, raw.names
}

// fill appends to recs the processes of a reading, their CPU percents
// against base over elapsed seconds (nil: unknown), and records each in
// next.
func fill(raw *rawScan, base map[int]slot, elapsed float64, cpus int, recs []procRec, next map[int]slot) []procRec {
	maxPct := float64(100 * max(cpus, 1))
	for i := range raw.procs {
		p := &raw.procs[i]
		pct := -1.0 // unknown
		if base != nil && elapsed > 0 {
			delta := p.ticks // a new process: all its time is since the base
			if old, ok := base[p.pid]; ok && old.start == p.start {
				delta = p.ticks - min(old.ticks, p.ticks)
			}
			pct = min(float64(delta)/clkTck/elapsed*100, maxPct)
		}
		next[p.pid] = slot{start: p.start, ticks: p.ticks, idx: int32(len(recs))}
		recs = append(recs, procRec{
			pid:     p.pid,
			cpu:     pct,
			rss:     p.rss,
			threads: p.threads,
			state:   p.state,
			nameOff: p.nameOff,
			nameLen: p.nameLen,
		})
	}
	return recs
}

// readStat reads /proc/PID/stat relative to the open root directory, with
// one read into the reused buffer.
func (s *scanBufs) readStat(dirfd, pid int) ([]byte, error) {
	p := strconv.AppendInt(s.pathBuf[:0], int64(pid), 10)
	p = append(p, "/stat\x00"...)
	s.pathBuf = p
	fd, err := openat(dirfd, p)
	if err != nil {
		return nil, err
	}
	n, err := readRetry(fd, s.statBuf)
	unix.Close(fd)
	if err != nil {
		return nil, err
	}
	if n == len(s.statBuf) {
		return nil, errStatTooLong
	}
	return s.statBuf[:n], nil
}

var errStatTooLong = errors.New("stat longer than its buffer")

func readRetry(fd int, buf []byte) (int, error) {
	for {
		n, err := unix.Read(fd, buf)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		return n, err
	}
}

// top returns the indexes in recs of the n best records by better, best
// first: a partial selection by insertion into a list of n, O(len(recs)·n)
// at worst and close to O(len(recs)) in practice.
func top(recs []procRec, n int, better func(a, b *procRec) bool, out []int) []int {
	out = out[:0]
	if n <= 0 {
		return out
	}
	for i := range recs {
		r := &recs[i]
		if len(out) == n && !better(r, &recs[out[n-1]]) {
			continue
		}
		j := len(out)
		if j < n {
			out = append(out, i)
		} else {
			j = n - 1
		}
		for j > 0 && better(r, &recs[out[j-1]]) {
			out[j] = out[j-1]
			j--
		}
		out[j] = i
	}
	return out
}

// byCPU and byRSS order processes, ties broken by the lower PID.
func byCPU(a, b *procRec) bool {
	if a.cpu != b.cpu {
		return a.cpu > b.cpu
	}
	return a.pid < b.pid
}

func byRSS(a, b *procRec) bool {
	if a.rss != b.rss {
		return a.rss > b.rss
	}
	return a.pid < b.pid
}

// processes returns the capture objects of the given records of the current
// scan, reading each command line once per sample and cutting it to max
// bytes.
func (s *Sampler) processes(idx []int, cmdlines map[int]string, max int) []capture.Process {
	out := make([]capture.Process, 0, len(idx))
	for _, i := range idx {
		r := &s.recs[i]
		cmd, ok := cmdlines[r.pid]
		if !ok {
			if s.cur != nil {
				cmd = s.cur.cmdline(r.pid, s)
			} else {
				cmd = s.cmdline(r.pid)
			}
			cmdlines[r.pid] = cmd
		}
		out = append(out, capture.Process{
			PID:        r.pid,
			Name:       printable(string(s.names[r.nameOff : r.nameOff+uint32(r.nameLen)])),
			Cmdline:    cut(cmd, max),
			State:      string(r.state),
			CPUPercent: cpuPercent(r.cpu),
			RSSBytes:   r.rss * s.pageSize,
			Threads:    int(r.threads),
		})
	}
	return out
}

// cpuPercent is a record's CPU percent for a capture: null when unknown.
func cpuPercent(v float64) *float64 {
	if v < 0 {
		return nil
	}
	v = round2(v)
	return &v
}

// cmdline returns the redacted command line of pid; "" for a kernel thread
// or a process that has exited since the scan (it is still reported, with
// what the scan saw).
func (s *Sampler) cmdline(pid int) string {
	b, err := readFile(filepath.Join(s.root, strconv.Itoa(pid), "cmdline"), &s.fileBuf, maxCmdlineRead)
	if err != nil {
		return ""
	}
	return printable(Redact(splitCmdline(b)))
}

// printable replaces the control characters a process may put in its name
// and command line, so that no reader of a capture (a terminal showing
// 'preflight last', jq -r) receives escape sequences from it: tab, newline
// and carriage return become a space, any other C0 control, DEL and the C1
// controls (U+0080–U+009F) become '?'. The result is never longer than s.
func printable(s string) string {
	var b []byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		r, n := byte(0), 1
		switch {
		case c == '\t' || c == '\n' || c == '\r':
			r = ' '
		case c < 0x20 || c == 0x7f:
			r = '?'
		case c == 0xc2 && i+1 < len(s) && s[i+1] >= 0x80 && s[i+1] < 0xa0:
			r, n = '?', 2
		}
		if r == 0 {
			if b != nil {
				b = append(b, c)
			}
			continue
		}
		if b == nil {
			b = append(make([]byte, 0, len(s)), s[:i]...)
		}
		b = append(b, r)
		i += n - 1
	}
	if b == nil {
		return s
	}
	return string(b)
}

// serviceIdx returns the indexes in s.recs of the given PIDs, in PID order,
// skipping PIDs the scan did not see.
func (s *Sampler) serviceIdx(pids []int) []int {
	sorted := slices.Clone(pids)
	slices.Sort(sorted)
	sorted = slices.Compact(sorted)
	idx := make([]int, 0, len(sorted))
	for _, pid := range sorted {
		if sl, ok := s.procs[pid]; ok {
			idx = append(idx, int(sl.idx))
		}
	}
	return idx
}

// Processes reads the given processes at now, without the scan of the whole
// host: the service's processes at a failure, read before anything slower.
// now is a time.Now reading (monotonic). CPU percent is over the rates'
// window (window.go) against the reference scan: null for a process that
// scan did not see, or when no reference lies far enough back. Vanished
// PIDs are skipped; the result is in PID order. It changes nothing the next
// Sample relies on. Not safe for concurrent use.
func (s *Sampler) Processes(now time.Time, pids []int) []capture.Process {
	out := []capture.Process{}
	if len(pids) == 0 {
		return out
	}
	dirfd, err := unix.Open(s.root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return out
	}
	defer unix.Close(dirfd)
	sorted := slices.Clone(pids)
	slices.Sort(sorted)
	base, elapsed, haveBase := s.refs.base(now)
	for _, pid := range slices.Compact(sorted) {
		b, err := s.bufs.readStat(dirfd, pid)
		if err != nil {
			continue // vanished
		}
		st, err := parseStat(b)
		if err != nil {
			continue
		}
		var pct *float64
		if old, ok := base.procs[pid]; haveBase && ok && old.start == st.StartTime {
			ticks := st.UTime + st.STime
			v := round2(float64(ticks-min(old.ticks, ticks)) / clkTck / elapsed.Seconds() * 100)
			pct = &v
		}
		out = append(out, capture.Process{
			PID:        pid,
			Name:       printable(string(st.Comm)),
			Cmdline:    cut(s.cmdline(pid), MaxCmdline),
			State:      string(st.State),
			CPUPercent: pct,
			RSSBytes:   st.RSS * s.pageSize,
			Threads:    int(st.NumThreads),
		})
	}
	return out
}
