package sample

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/procfs"
	"golang.org/x/sys/unix"

	"github.com/preflight-rec/preflight/recorder/capture"
)

// Sampler takes host samples. It keeps the reference readings of its rates:
// the /proc/stat counters and, for each process, its identity and CPU time.
// A Sampler made by [New] reads the host itself; one made by
// [Host.Sampler] shares the host's readings with the other Samplers of
// that Host.
type Sampler struct {
	*reader
	host     *Host // nil: the Sampler reads the host itself
	topN     int
	pageSize uint64

	clock func() time.Time // the monotonic clock of the rates (window.go)
	refs  window[reading]  // the readings rates are computed against

	own  rawScan   // the latest reading, without a Host
	cur  *rawScan  // the reading of the sample being taken
	bufs *scanBufs // the buffers of its own readings and of Processes

	procs      map[int]slot // the processes of the latest scan
	procsIsRef bool         // procs is also a reference reading's
	spare      map[int]slot // the map the next scan fills, reused
	recs       []procRec    // the processes of the latest scan, in listing order
	names      []byte       // their command names

	fileBuf []byte // command lines
	topIdx  []int
}

// reading is what a rate is computed against: the /proc/stat counters and
// every process's CPU time.
type reading struct {
	cpu   cpuTimes
	cpuOK bool
	procs map[int]slot
	raw   *rawScan // the Host's reading it was made from; nil without a Host
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
	rd, err := newReader(procRoot, statfs)
	if err != nil {
		return nil, err
	}
	s, err := newSamplerOn(rd, clock, topN)
	if err != nil {
		return nil, err
	}
	now := clock()
	cpu, cpus, err := s.readCPU(s.bufs)
	if err != nil {
		return nil, err
	}
	if err := s.scan(nil, 0, cpus); err != nil {
		return nil, fmt.Errorf("failed to list processes in %s: %w", procRoot, err)
	}
	s.keep(now, reading{cpu: cpu, cpuOK: true, procs: s.procs})
	return s, nil
}

func newReader(procRoot string, statfs func(string, *unix.Statfs_t) error) (*reader, error) {
	fs, err := procfs.NewFS(procRoot)
	if err != nil {
		return nil, fmt.Errorf("failed to open proc filesystem: %w", err)
	}
	return &reader{root: procRoot, fs: fs, statfs: statfs, statfsTimeout: defaultStatfsTimeout, stuck: map[string]bool{}}, nil
}

func newSamplerOn(rd *reader, clock func() time.Time, topN int) (*Sampler, error) {
	if topN < 0 {
		return nil, fmt.Errorf("failed to create sampler: top processes %d is negative", topN)
	}
	return &Sampler{
		reader:   rd,
		topN:     topN,
		pageSize: uint64(os.Getpagesize()),
		clock:    clock,
		bufs:     newBufs(),
		procs:    map[int]slot{},
		spare:    map[int]slot{},
	}, nil
}

// keep offers the reading r, whose procs is the latest scan's map, as a
// reference of the rates, and recycles the map a reference gives up.
func (s *Sampler) keep(now time.Time, r reading) {
	evicted, pushed := s.refs.push(now, r)
	s.procsIsRef = pushed
	if pushed && evicted.procs != nil && s.host == nil { // a Host's maps are shared
		s.spare = evicted.procs
	}
}

// keepRaw makes a Host's reading the baseline.
func (s *Sampler) keepRaw(raw *rawScan) {
	s.buildShared(raw, nil, nil, 0, raw.cpus)
	s.keep(raw.at, reading{cpu: raw.cpu, cpuOK: raw.cpuErr == nil, procs: s.procs, raw: raw})
}

// Sample takes one sample stamped at (its wall time). servicePIDs are the PIDs of the service's cgroup
// (nil when unknown); it returns the host sample (Service left nil: the caller fills it) and the
// process objects of those PIDs (sorted by PID, vanished ones skipped), computed from the same scan
// of /proc. Rates are over the window of window.go, on the sampler's monotonic clock: null (and no
// top-CPU list) when no reading lies far enough back. A Host's Sampler shares a reading started at
// most ShareWithin before now. Not safe for concurrent use.
func (s *Sampler) Sample(at time.Time, servicePIDs []int) (capture.Sample, []capture.Process) {
	return s.sample(s.clock(), at, servicePIDs, false)
}

// SampleDue is Sample for a sample due at due (a time.Now reading, such as
// a tick's): a Host's Sampler shares a reading started at most ShareWithin
// before due, so that recorders due together share one however late each
// gets to it.
func (s *Sampler) SampleDue(due, at time.Time, servicePIDs []int) (capture.Sample, []capture.Process) {
	return s.sample(due, at, servicePIDs, false)
}

// SampleFresh is Sample from a reading started now, never an earlier one:
// the sample at a trigger, whose host part follows the service's evidence.
// A Host's other Samplers may share it.
func (s *Sampler) SampleFresh(at time.Time, servicePIDs []int) (capture.Sample, []capture.Process) {
	return s.sample(time.Time{}, at, servicePIDs, true)
}

func (s *Sampler) sample(due, at time.Time, servicePIDs []int, fresh bool) (capture.Sample, []capture.Process) {
	out := capture.Sample{At: at, TopCPU: []capture.Process{}, TopMemory: []capture.Process{}}
	raw := &s.own
	if s.host != nil {
		raw = s.host.get(due, fresh)
	} else {
		raw.at = s.clock()
		s.read(raw, s.bufs)
	}
	s.cur = raw
	defer func() { s.cur = nil }()
	now := raw.at
	base, elapsed, haveBase := s.refs.base(now)

	if raw.cpuErr == nil {
		if haveBase && base.cpuOK {
			out.CPU = cpuPercents(base.cpu, raw.cpu)
		}
		out.CPU.CPUs = raw.cpus
	}
	if haveBase {
		w := round2(elapsed.Seconds())
		out.CPU.WindowSeconds = &w
	}
	out.Load = raw.load
	if raw.memory != nil {
		out.Memory = *raw.memory
	}
	if raw.pres != nil {
		p := *raw.pres
		out.Pressure = &p
	}
	out.Disks = append([]capture.Disk{}, raw.disks...)

	service := []capture.Process{}
	if raw.scanErr != nil {
		return out, service // the references stay as they were
	}
	var baseProcs map[int]slot
	if haveBase {
		baseProcs = base.procs
	}
	if s.host != nil {
		var baseRaw *rawScan
		if haveBase {
			baseRaw = base.raw
		}
		s.buildShared(raw, baseRaw, baseProcs, elapsed.Seconds(), raw.cpus)
	} else {
		s.build(raw, baseProcs, elapsed.Seconds(), raw.cpus)
	}
	s.keep(now, reading{cpu: raw.cpu, cpuOK: raw.cpuErr == nil, procs: s.procs, raw: s.refRaw(raw)})
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

// refRaw is raw as a reference's reading: nil for a Sampler's own, which
// the next sample overwrites.
func (s *Sampler) refRaw(raw *rawScan) *rawScan {
	if s.host == nil {
		return nil
	}
	return raw
}

// readCPU reads the /proc/stat counters and the number of CPUs.
func (rd *reader) readCPU(b *scanBufs) (cpuTimes, int, error) {
	path := filepath.Join(rd.root, "stat")
	data, err := readFile(path, &b.fileBuf, 0)
	if err != nil {
		return cpuTimes{}, 0, fmt.Errorf("failed to read cpu times: %w", err)
	}
	t, cpus, err := parseCPUStat(data)
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
func (rd *reader) pressure() *capture.Pressure {
	var p capture.Pressure
	for _, r := range []struct {
		resource   string
		some, full *float64
	}{
		{"cpu", &p.CPUSomeAvg10, nil},
		{"memory", &p.MemorySomeAvg10, &p.MemoryFullAvg10},
		{"io", &p.IOSomeAvg10, &p.IOFullAvg10},
	} {
		st, err := rd.fs.PSIStatsForResource(r.resource)
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
