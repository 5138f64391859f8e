package sample

import (
	"errors"
	"sync"
	"time"

	"github.com/prometheus/procfs"
	"golang.org/x/sys/unix"

	"github.com/preflight-rec/preflight/recorder/capture"
)

// The host's part of a sample (/proc/stat, every /proc/PID/stat, load,
// memory, PSI, disks) is the same for every service of a host. A [Host]
// reads it once for the Samplers of one process: a reading started at most
// [ShareWithin] before a Sampler was due serves it (one in flight is waited
// for), so recorders due at the same moment share one scan whatever their
// intervals. Each Sampler keeps its own rate window and computes its
// own rates, top lists and service processes from the shared reading.

// ShareWithin is how long before a Sampler was due a reading may have
// started and still serve it.
const ShareWithin = 10 * time.Millisecond

// reader reads the host: the part of a sample that is the same for every
// service. Safe for concurrent use; the buffers are the caller's.
type reader struct {
	root          string
	fs            procfs.FS
	statfs        func(path string, st *unix.Statfs_t) error
	statfsTimeout time.Duration

	stuckMu sync.Mutex
	stuck   map[string]bool // mount points whose statfs has hung
}

// scanBufs are the buffers of one reading.
type scanBufs struct {
	pids    []int
	dirBuf  []byte
	statBuf []byte
	pathBuf []byte
	fileBuf []byte
}

func newBufs() *scanBufs {
	return &scanBufs{dirBuf: make([]byte, 32<<10), statBuf: make([]byte, 4096)}
}

// rawScan is one reading of the host: counters, not rates. Once complete
// it is never changed, so that Samplers may share it.
type rawScan struct {
	at      time.Time // monotonic, taken just before /proc/stat
	cpu     cpuTimes
	cpus    int
	cpuErr  error
	scanErr error
	procs   []rawProc
	names   []byte // the processes' command names
	load    capture.Load
	memory  *capture.Memory
	pres    *capture.Pressure
	disks   []capture.Disk

	done chan struct{} // closed when complete (a Host's readings)

	// The command lines its Samplers read (a Host's readings): the top
	// lists of Samplers sharing a reading are mostly the same processes.
	cmdMu  sync.Mutex
	cmds   map[int]string
	builds map[*rawScan]*built // by the base reading of the rates
}

// built is a Host's reading made into records, their CPU percents against
// one base reading: shared by the Samplers whose rates have that base
// (Samplers of one interval on one grid), never changed.
type built struct {
	recs  []procRec
	procs map[int]slot
}

// cmdline returns pid's command line (Sampler.cmdline), read once for
// every Sampler sharing the reading.
func (raw *rawScan) cmdline(pid int, s *Sampler) string {
	if raw.cmds == nil {
		return s.cmdline(pid)
	}
	raw.cmdMu.Lock()
	cmd, ok := raw.cmds[pid]
	raw.cmdMu.Unlock()
	if ok {
		return cmd
	}
	cmd = s.cmdline(pid)
	raw.cmdMu.Lock()
	raw.cmds[pid] = cmd
	raw.cmdMu.Unlock()
	return cmd
}

// rawProc is one process as /proc/PID/stat showed it.
type rawProc struct {
	pid     int
	start   uint64 // starttime: with the PID, the process's identity
	ticks   uint64 // utime+stime
	rss     uint64 // pages
	threads int32
	state   byte
	nameOff uint32
	nameLen uint16
}

// read takes one reading of the host into dst, reusing its slices; dst.at
// is the caller's, set just before. The process scan comes right after
// /proc/stat, before anything that may be slow (statfs), so that its ticks
// match the elapsed time.
func (rd *reader) read(dst *rawScan, b *scanBufs) {
	dst.cpu, dst.cpus, dst.cpuErr = rd.readCPU(b)
	dst.scanErr = rd.readProcs(dst, b)
	dst.load = capture.Load{}
	if l, err := rd.fs.LoadAvg(); err == nil {
		dst.load = capture.Load{Load1: l.Load1, Load5: l.Load5, Load15: l.Load15}
	}
	dst.memory = nil
	if m, err := rd.fs.Meminfo(); err == nil {
		mem := memory(m)
		dst.memory = &mem
	}
	dst.pres = rd.pressure()
	dst.disks = rd.disks()
}

// readProcs reads /proc/PID/stat of every process under the root into dst.
// A process that vanishes or cannot be read or parsed is skipped.
func (rd *reader) readProcs(dst *rawScan, b *scanBufs) error {
	dst.procs = dst.procs[:0]
	dst.names = dst.names[:0]
	dirfd, err := unix.Open(rd.root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(dirfd)

	b.pids = b.pids[:0]
	for {
		n, err := unix.Getdents(dirfd, b.dirBuf)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return err
		}
		if n <= 0 {
			break
		}
		b.pids = direntPIDs(b.dirBuf[:n], b.pids)
	}
	for _, pid := range b.pids {
		sb, err := b.readStat(dirfd, pid)
		if err != nil {
			continue // vanished
		}
		st, err := parseStat(sb)
		if err != nil {
			continue
		}
		name := st.Comm[:min(len(st.Comm), 1<<16-1)]
		dst.procs = append(dst.procs, rawProc{
			pid:     pid,
			start:   st.StartTime,
			ticks:   st.UTime + st.STime,
			rss:     st.RSS,
			threads: int32(st.NumThreads),
			state:   st.State,
			nameOff: uint32(len(dst.names)),
			nameLen: uint16(len(name)),
		})
		dst.names = append(dst.names, name...)
	}
	return nil
}

// Host shares the host's readings among the Samplers of one process
// ([Host.Sampler]). Safe for concurrent use.
type Host struct {
	rd    *reader
	clock func() time.Time
	bufs  sync.Pool // *scanBufs

	mu   sync.Mutex
	last *rawScan // the latest reading started, complete or in flight
}

// NewHost returns a Host reading the proc filesystem at procRoot.
func NewHost(procRoot string) (*Host, error) {
	return newHost(procRoot, time.Now, unix.Statfs)
}

func newHost(procRoot string, clock func() time.Time, statfs func(string, *unix.Statfs_t) error) (*Host, error) {
	rd, err := newReader(procRoot, statfs)
	if err != nil {
		return nil, err
	}
	return &Host{rd: rd, clock: clock, bufs: sync.Pool{New: func() any { return newBufs() }}}, nil
}

// Sampler returns a Sampler of this host's readings with top lists of topN
// processes. Its baseline is a reading shared as any other.
func (h *Host) Sampler(topN int) (*Sampler, error) {
	s, err := newSamplerOn(h.rd, h.clock, topN)
	if err != nil {
		return nil, err
	}
	s.host = h
	raw := h.get(h.clock(), false)
	if raw.scanErr != nil {
		return nil, raw.scanErr
	}
	s.keepRaw(raw)
	return s, nil
}

// get returns a complete reading: with fresh, one started now; else one
// started at most ShareWithin before due (or later), waiting for it if in
// flight, or a new one. A new reading is shared with the Samplers that ask
// next.
func (h *Host) get(due time.Time, fresh bool) *rawScan {
	h.mu.Lock()
	if last := h.last; !fresh && last != nil && due.Sub(last.at) <= ShareWithin {
		h.mu.Unlock()
		<-last.done
		return last
	}
	raw := &rawScan{at: h.clock(), done: make(chan struct{}), cmds: map[int]string{}, builds: map[*rawScan]*built{}}
	if h.last == nil || !raw.at.Before(h.last.at) {
		h.last = raw
	}
	h.mu.Unlock()
	b := h.bufs.Get().(*scanBufs)
	h.rd.read(raw, b)
	h.bufs.Put(b)
	close(raw.done)
	return raw
}
