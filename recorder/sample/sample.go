package sample

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/procfs"
	"golang.org/x/sys/unix"

	"github.com/preflight-rec/preflight/recorder/capture"
)

// Sampler takes host samples. It keeps the previous /proc/stat counters and,
// for each process present at the previous scan, its identity and CPU time.
type Sampler struct {
	root          string
	fs            procfs.FS
	topN          int
	pageSize      uint64
	statfs        func(path string, st *unix.Statfs_t) error
	statfsTimeout time.Duration

	clock func() time.Time // the monotonic clock of the rates (window.go)
	refs  window[reading]  // the readings rates are computed against

	procs      map[int]slot // the processes of the latest scan
	procsIsRef bool         // procs is also a reference reading's
	spare      map[int]slot // the map the next scan fills, reused
	recs       []procRec    // the processes of the latest scan, in listing order
	names      []byte       // their command names

	pids    []int
	dirBuf  []byte
	statBuf []byte
	pathBuf []byte
	fileBuf []byte
	topIdx  []int

	stuckMu sync.Mutex
	stuck   map[string]bool // mount points whose statfs has hung
}

// reading is what a rate is computed against: the /proc/stat counters and
// every process's CPU time.
type reading struct {
	cpu   cpuTimes
	cpuOK bool
	procs map[int]slot
}

// New returns a Sampler reading the proc filesystem at procRoot (normally "/proc"; tests pass a
// fixture tree under testdata/). It takes a first baseline reading of /proc/stat and the processes,
// the base of the rates of the samples at least capture.MinRateWindow later. topN is the length of
// the top-CPU and top-memory lists.
func New(procRoot string, topN int) (*Sampler, error) {
	return newSampler(procRoot, topN, time.Now, unix.Statfs)
}

// newSampler is New with the rates' clock and statfs injected.
func newSampler(procRoot string, topN int, clock func() time.Time, statfs func(string, *unix.Statfs_t) error) (*Sampler, error) {
	if topN < 0 {
		return nil, fmt.Errorf("failed to create sampler: top processes %d is negative", topN)
	}
	fs, err := procfs.NewFS(procRoot)
	if err != nil {
		return nil, fmt.Errorf("failed to open proc filesystem: %w", err)
	}
	s := &Sampler{
		root:          procRoot,
		fs:            fs,
		topN:          topN,
		pageSize:      uint64(os.Getpagesize()),
		statfs:        statfs,
		statfsTimeout: defaultStatfsTimeout,
		clock:         clock,
		procs:         map[int]slot{},
		spare:         map[int]slot{},
		dirBuf:        make([]byte, 32<<10),
		statBuf:       make([]byte, 4096),
		stuck:         map[string]bool{},
	}
	now := clock()
	cpu, cpus, err := s.readCPU()
	if err != nil {
		return nil, err
	}
	if err := s.scan(nil, 0, cpus); err != nil {
		return nil, fmt.Errorf("failed to list processes in %s: %w", procRoot, err)
	}
	s.keep(now, reading{cpu: cpu, cpuOK: true, procs: s.procs})
	return s, nil
}

// keep offers the reading r, whose procs is the latest scan's map, as a
// reference of the rates, and recycles the map a reference gives up.
func (s *Sampler) keep(now time.Time, r reading) {
	evicted, pushed := s.refs.push(now, r)
	s.procsIsRef = pushed
	if pushed && evicted.procs != nil {
		s.spare = evicted.procs
	}
}

// Sample takes one sample stamped at (its wall time). servicePIDs are the PIDs of the service's cgroup
// (nil when unknown); it returns the host sample (Service left nil: the caller fills it) and the
// process objects of those PIDs (sorted by PID, vanished ones skipped), computed from the same scan
// of /proc. Rates are over the window of window.go, on the sampler's monotonic clock: null (and no
// top-CPU list) when no reading lies far enough back. Not safe for concurrent use.
func (s *Sampler) Sample(at time.Time, servicePIDs []int) (capture.Sample, []capture.Process) {
	out := capture.Sample{At: at, TopCPU: []capture.Process{}, TopMemory: []capture.Process{}}
	now := s.clock()
	base, elapsed, haveBase := s.refs.base(now)

	cpu, cpus, cpuErr := s.readCPU()
	if cpuErr == nil {
		if haveBase && base.cpuOK {
			out.CPU = cpuPercents(base.cpu, cpu)
		}
		out.CPU.CPUs = cpus
	}
	if haveBase {
		w := round2(elapsed.Seconds())
		out.CPU.WindowSeconds = &w
	}
	// The scan comes right after /proc/stat, before anything that may be
	// slow (statfs), so that its ticks match the elapsed time.
	var baseProcs map[int]slot
	if haveBase {
		baseProcs = base.procs
	}
	scanErr := s.scan(baseProcs, elapsed.Seconds(), cpus)
	if l, err := s.fs.LoadAvg(); err == nil {
		out.Load = capture.Load{Load1: l.Load1, Load5: l.Load5, Load15: l.Load15}
	}
	if m, err := s.fs.Meminfo(); err == nil {
		out.Memory = memory(m)
	}
	out.Pressure = s.pressure()
	out.Disks = s.disks()

	service := []capture.Process{}
	if scanErr != nil {
		return out, service // the references stay as they were
	}
	s.keep(now, reading{cpu: cpu, cpuOK: cpuErr == nil, procs: s.procs})
	out.Processes = len(s.recs)
	cmdlines := make(map[int]string, 2*s.topN+len(servicePIDs))
	if haveBase {
		s.topIdx = top(s.recs, s.topN, byCPU, s.topIdx)
		out.TopCPU = s.processes(s.topIdx, cmdlines, MaxTopCmdline)
	}
	s.topIdx = top(s.recs, s.topN, byRSS, s.topIdx)
	out.TopMemory = s.processes(s.topIdx, cmdlines, MaxTopCmdline)
	if len(servicePIDs) > 0 {
		service = s.processes(s.serviceIdx(servicePIDs), cmdlines, MaxCmdline)
	}
	return out, service
}

// readCPU reads the /proc/stat counters and the number of CPUs.
func (s *Sampler) readCPU() (cpuTimes, int, error) {
	path := filepath.Join(s.root, "stat")
	b, err := readFile(path, &s.fileBuf, 0)
	if err != nil {
		return cpuTimes{}, 0, fmt.Errorf("failed to read cpu times: %w", err)
	}
	t, cpus, err := parseCPUStat(b)
	if err != nil {
		return cpuTimes{}, 0, fmt.Errorf("failed to parse %s: %w", path, err)
	}
	return t, cpus, nil
}

// cpuPercents is the share of each state in the CPU time between two
// readings, in percent of all CPUs. User includes nice, System includes irq
// and softirq, so that Percent (all but idle and iowait) = User + System +
// Steal.
func cpuPercents(a, b cpuTimes) capture.CPU {
	d := func(x, y uint64) float64 { return float64(y - min(x, y)) }
	user := d(a.User, b.User) + d(a.Nice, b.Nice)
	system := d(a.System, b.System) + d(a.IRQ, b.IRQ) + d(a.SoftIRQ, b.SoftIRQ)
	steal := d(a.Steal, b.Steal)
	idle := d(a.Idle, b.Idle)
	iowait := d(a.IOWait, b.IOWait)
	total := user + system + steal + idle + iowait
	if total == 0 {
		return capture.CPU{}
	}
	pct := func(v float64) *float64 { p := round2(v / total * 100); return &p }
	return capture.CPU{
		Percent: pct(user + system + steal),
		User:    pct(user),
		System:  pct(system),
		IOWait:  pct(iowait),
		Steal:   pct(steal),
	}
}

// memory converts /proc/meminfo. Without MemAvailable (kernels before
// 3.14) available is free + buffers + cached.
func memory(m procfs.Meminfo) capture.Memory {
	v := func(p *uint64) uint64 {
		if p == nil {
			return 0
		}
		return *p
	}
	out := capture.Memory{
		TotalBytes:     v(m.MemTotalBytes),
		AvailableBytes: v(m.MemAvailableBytes),
		SwapTotalBytes: v(m.SwapTotalBytes),
	}
	if m.MemAvailableBytes == nil {
		out.AvailableBytes = v(m.MemFreeBytes) + v(m.BuffersBytes) + v(m.CachedBytes)
	}
	out.SwapUsedBytes = out.SwapTotalBytes - min(v(m.SwapFreeBytes), out.SwapTotalBytes)
	if out.TotalBytes > 0 {
		used := out.TotalBytes - min(out.AvailableBytes, out.TotalBytes)
		out.UsedPercent = round2(float64(used) / float64(out.TotalBytes) * 100)
	}
	return out
}

// pressure reads the avg10 of cpu, memory and io pressure; nil when the
// kernel has no PSI (the files do not exist, fs.ErrNotExist, or PSI is
// disabled) or they cannot be read.
func (s *Sampler) pressure() *capture.Pressure {
	var p capture.Pressure
	for _, r := range []struct {
		resource   string
		some, full *float64
	}{
		{"cpu", &p.CPUSomeAvg10, nil},
		{"memory", &p.MemorySomeAvg10, &p.MemoryFullAvg10},
		{"io", &p.IOSomeAvg10, &p.IOFullAvg10},
	} {
		st, err := s.fs.PSIStatsForResource(r.resource)
		if err != nil {
			return nil
		}
		if st.Some != nil {
			*r.some = st.Some.Avg10
		}
		if r.full != nil && st.Full != nil {
			*r.full = st.Full.Avg10
		}
	}
	return &p
}

// round2 rounds to two decimals, the precision of the kernel's own
// percentages.
func round2(v float64) float64 { return math.Round(v*100) / 100 }
