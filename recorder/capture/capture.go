// Package capture defines the capture file, preflight's product: the JSON
// schema "preflight.capture/v1", its encoding, and the layout of the capture
// directory ($DIR/SERVICE/2026-11-26T03-12-04.123Z.json).
//
// Everything under the capture directory belongs to one [Store]: the
// recorder writes, names, retains and cleans through it, and holds its lock
// ([Store.Lock]); the readers list and read through it and tolerate foreign,
// truncated and newer-schema files. docs/capture-format.md describes every
// field.
package capture

import (
	"time"
)

// Schema is the value of every capture's "schema" field.
const Schema = "preflight.capture/v1"

// Trigger kinds.
const (
	TriggerHealth = "health" // the health check went from healthy to unhealthy
	TriggerExit   = "exit"   // the service's cgroup emptied or all its processes were replaced
	TriggerOOM    = "oom"    // the kernel OOM-killed a process in the service's cgroup
)

// Capture is one incident: the ring as it stood before the failure, plus a
// sample taken at each trigger.
type Capture struct {
	Schema          string    `json:"schema"`
	Service         string    `json:"service"`
	Host            string    `json:"host"`
	HealthURL       string    `json:"health_url"`
	Unit            string    `json:"unit,omitempty"`
	TransitionTime  time.Time `json:"transition_time"`
	HealthError     string    `json:"health_error"`
	Triggers        []Trigger `json:"triggers"`
	TriggersOmitted int       `json:"triggers_omitted,omitempty"`
	Health          []Check   `json:"health"`
	Samples         []Sample  `json:"samples"`
	SamplesOmitted  int       `json:"samples_omitted,omitempty"` // the oldest samples left out to keep the file within MaxFileSize
	IntervalSeconds float64   `json:"interval_seconds"`
	Systemd         *Systemd  `json:"systemd,omitempty"`
	// ServiceMissing says why samples have no service object: the unit or
	// its cgroup could not be found. "" when the service was seen.
	ServiceMissing string `json:"service_missing,omitempty"`
	// ServiceTrace is the service alone, every ServiceIntervalSeconds,
	// oldest first: from TraceSeconds before the first trigger up to the
	// last one. Absent when the trace is disabled or had no point.
	ServiceTrace           []TracePoint `json:"service_trace,omitempty"`
	ServiceIntervalSeconds float64      `json:"service_interval_seconds,omitempty"`
	// ProcessTable holds, by PID, the name and command line of processes
	// that older samples leave out of their process objects (which then
	// have neither): written by Encode, resolved by Decode.
	ProcessTable     map[string]ProcessInfo `json:"process_table,omitempty"`
	PreflightVersion string                 `json:"preflight_version"`

	// KernelLog is what the kernel logged about the service over the trace
	// window before the first trigger (OOM kills, segfaults, traps, hung
	// tasks), oldest first: read after the capture is first written, so a
	// capture holds it from its first update on. Absent (nil) when it was
	// not read; KernelLogMissing then says why. [] when read and the
	// kernel said nothing about the service.
	KernelLog        []KernelLine `json:"kernel_log,omitzero"`
	KernelLogMissing string       `json:"kernel_log_missing,omitempty"`
	// Journal is the unit's last journal lines before the first trigger,
	// oldest first, secret-looking values redacted; absent (nil) when not
	// read, JournalMissing then says why ("" when disabled).
	Journal        []JournalLine `json:"journal,omitzero"`
	JournalMissing string        `json:"journal_missing,omitempty"`
}

// KernelLine is one line of the kernel log.
type KernelLine struct {
	At   time.Time `json:"at"`
	Text string    `json:"text"`
}

// JournalLine is one journal entry of the unit: its time (the journal's
// receive time), syslog priority (0 emerg … 7 debug) and message.
type JournalLine struct {
	At       time.Time `json:"at"`
	Priority int       `json:"priority"`
	Text     string    `json:"text"`
}

// TracePoint is one cheap reading of the service's cgroup and its
// processes: the fine trace between the ring's samples. Pointer fields are
// null (or absent) where the kernel has no such file; the event counters
// and the pressure are also absent when 0. At is to the millisecond.
type TracePoint struct {
	At              time.Time `json:"at"`
	MemoryBytes     *uint64   `json:"memory_bytes"`
	MemoryPeakBytes *uint64   `json:"memory_peak_bytes,omitempty"`
	OOMKills        *uint64   `json:"oom_kills,omitempty"`
	// MemoryHighEvents, MemoryMaxEvents: memory.events high and max (v1:
	// memory.failcnt for max), cumulative.
	MemoryHighEvents *uint64 `json:"memory_high_events,omitempty"`
	MemoryMaxEvents  *uint64 `json:"memory_max_events,omitempty"`
	// CPUPercent is per one CPU over the window before the point; null
	// where that window would be shorter than MinRateWindow.
	CPUPercent      *float64 `json:"cpu_percent"`
	Pids            int      `json:"pids"`      // processes in the cgroup
	RSSBytes        uint64   `json:"rss_bytes"` // their resident memory, summed
	Threads         int      `json:"threads"`   // their threads, summed
	MemorySomeAvg10 *float64 `json:"memory_some_avg10,omitempty"`
	MemoryFullAvg10 *float64 `json:"memory_full_avg10,omitempty"`
	// Trigger is the kind of the trigger this point was read at: the
	// cgroup's evidence of the trigger's sample.
	Trigger string `json:"trigger,omitempty"`
}

// Trigger is one reason the capture was written or updated.
type Trigger struct {
	Kind   string    `json:"kind"`
	At     time.Time `json:"at"`
	Detail string    `json:"detail"`
	// Systemd is systemd's word on this trigger, where systemd was
	// followed: the unit's state as systemd reported it after the trigger,
	// up to (never after) the restart.
	Systemd *Systemd `json:"systemd,omitempty"`
}

// Check is the result of one health check.
type Check struct {
	At         time.Time `json:"at"`
	OK         bool      `json:"ok"`
	LatencyMS  float64   `json:"latency_ms"`
	StatusCode int       `json:"status_code"`
	Error      string    `json:"error"`
}

// Systemd is systemd's view of the unit, where systemd runs: as reported
// for the failure (over D-Bus, with the time systemd said so), or read with
// systemctl show after the capture was written (At absent).
type Systemd struct {
	Unit           string     `json:"unit"`
	At             *time.Time `json:"at,omitempty"`  // when systemd reported this state
	Job            string     `json:"job,omitempty"` // the unit's running job then: "stop", "restart", …
	ControlPID     *int       `json:"control_pid,omitempty"`
	Result         string     `json:"result,omitempty"`
	NRestarts      *int       `json:"n_restarts,omitempty"`
	ExecMainStatus *int       `json:"exec_main_status,omitempty"`
	ExecMainCode   string     `json:"exec_main_code,omitempty"`
	MainPID        *int       `json:"main_pid,omitempty"`
	ControlGroup   string     `json:"control_group,omitempty"`
	ActiveState    string     `json:"active_state,omitempty"`
	SubState       string     `json:"sub_state,omitempty"`
}

// Sample is the host and the service at one moment.
type Sample struct {
	At        time.Time `json:"at"`
	CPU       CPU       `json:"cpu"`
	Load      Load      `json:"load"`
	Memory    Memory    `json:"memory"`
	Disks     []Disk    `json:"disks"`
	Pressure  *Pressure `json:"pressure,omitempty"` // absent without PSI
	TopCPU    []Process `json:"top_cpu"`
	TopMemory []Process `json:"top_memory"`
	Processes int       `json:"processes"` // processes on the host
	Service   *Service  `json:"service"`   // null when the service has no known cgroup
	// Trigger is the kind of the trigger this sample was taken at; "" for
	// the interval's samples. In the ring before a failure it marks an
	// earlier incident's trigger.
	Trigger string `json:"trigger,omitempty"`
	// Early says why the sample was taken before its interval was up: the
	// warning signs the service trace saw ("memory within 10% of its
	// limit", …), while the host cadence is tightened. "" for a sample on
	// the interval.
	Early string `json:"early,omitempty"`
}

// CPU is host CPU time over the window before the sample, in percent of
// all CPUs. Percent is everything but idle and iowait. The percentages are
// null when no earlier reading lies far enough back for a rate (the
// recorder's first sample): see [MinRateWindow].
type CPU struct {
	Percent *float64 `json:"percent"`
	User    *float64 `json:"user"`
	System  *float64 `json:"system"`
	IOWait  *float64 `json:"iowait"`
	Steal   *float64 `json:"steal"`
	CPUs    int      `json:"cpus"`
	// WindowSeconds is the monotonic time the sample's rates (these and
	// its processes' cpu_percent) cover; absent when the sample has no
	// rates, and in captures from before rates were windowed.
	WindowSeconds *float64 `json:"window_seconds,omitempty"`
}

// MinRateWindow is the shortest window a rate (host CPU, a process's or the
// service's CPU percent) is computed over, on the monotonic clock. A sample
// that follows the previous reading more closely (the sample taken at a
// trigger) is computed against an older reading at least this far back;
// when there is none, the rate is null.
const MinRateWindow = time.Second

// Load is the kernel's load average.
type Load struct {
	Load1  float64 `json:"load1"`
	Load5  float64 `json:"load5"`
	Load15 float64 `json:"load15"`
}

// Memory is host memory and swap.
type Memory struct {
	TotalBytes     uint64  `json:"total_bytes"`
	AvailableBytes uint64  `json:"available_bytes"`
	UsedPercent    float64 `json:"used_percent"`
	SwapTotalBytes uint64  `json:"swap_total_bytes"`
	SwapUsedBytes  uint64  `json:"swap_used_bytes"`
}

// Disk is one mounted, real filesystem.
type Disk struct {
	Mount             string  `json:"mount"`
	Device            string  `json:"device"`
	FSType            string  `json:"fstype"`
	TotalBytes        uint64  `json:"total_bytes"`
	UsedBytes         uint64  `json:"used_bytes"`
	UsedPercent       float64 `json:"used_percent"`
	InodesUsedPercent float64 `json:"inodes_used_percent"`
}

// Pressure is the avg10 of the kernel's pressure stall information, in
// percent of wall time.
type Pressure struct {
	CPUSomeAvg10    float64 `json:"cpu_some_avg10"`
	MemorySomeAvg10 float64 `json:"memory_some_avg10"`
	MemoryFullAvg10 float64 `json:"memory_full_avg10"`
	IOSomeAvg10     float64 `json:"io_some_avg10"`
	IOFullAvg10     float64 `json:"io_full_avg10"`
}

// Process is one process. CPUPercent is per one CPU, as top shows it, over
// the window before the sample; null without a window (see [MinRateWindow]).
type Process struct {
	PID        int      `json:"pid"`
	Name       string   `json:"name,omitempty"`    // absent: in the capture's process_table
	Cmdline    string   `json:"cmdline,omitempty"` // absent: none (a kernel thread), or in process_table
	State      string   `json:"state"`
	CPUPercent *float64 `json:"cpu_percent"`
	RSSBytes   uint64   `json:"rss_bytes"`
	Threads    int      `json:"threads"`
	// FDs and FDLimit are the service's processes' open file descriptors
	// (entries of /proc/PID/fd) and their soft RLIMIT_NOFILE
	// (/proc/PID/limits); absent where unreadable, for the host's top lists,
	// and FDLimit where unlimited.
	FDs     *int    `json:"fds,omitempty"`
	FDLimit *uint64 `json:"fd_limit,omitempty"`
}

// MemoryStat is the cgroup's memory by kind, in bytes (memory.stat; v1:
// total_rss, total_cache, total_shmem and the kmem counters): null where the
// kernel does not report it. File is page cache (shmem included), which the
// kernel can reclaim; Anon cannot be reclaimed without swap.
type MemoryStat struct {
	AnonBytes   *uint64 `json:"anon_bytes"`
	FileBytes   *uint64 `json:"file_bytes"`
	KernelBytes *uint64 `json:"kernel_bytes"`
	ShmemBytes  *uint64 `json:"shmem_bytes"`
	SockBytes   *uint64 `json:"sock_bytes"`
}

// Service is the service's cgroup. Pointer fields are null where the kernel
// has no such file (or, for limits, where there is no limit).
type Service struct {
	Cgroup           string    `json:"cgroup"`
	MemoryBytes      *uint64   `json:"memory_bytes"`
	MemoryMaxBytes   *uint64   `json:"memory_max_bytes"`
	MemoryPeakBytes  *uint64   `json:"memory_peak_bytes,omitempty"`
	SwapBytes        *uint64   `json:"swap_bytes,omitempty"`
	OOMKills         *uint64   `json:"oom_kills"`
	CPUUsageUsec     *uint64   `json:"cpu_usage_usec,omitempty"`
	CPUPercent       *float64  `json:"cpu_percent,omitempty"` // per one CPU, over the window before the sample
	CPUThrottledUsec *uint64   `json:"cpu_throttled_usec"`
	Pids             int       `json:"pids"`            // processes in the cgroup
	Tasks            *uint64   `json:"tasks,omitempty"` // pids.current: tasks (threads) the pids controller counts
	PidsMax          *uint64   `json:"pids_max,omitempty"`
	Pressure         *Pressure `json:"pressure,omitempty"`
	// MemoryStat is memory.stat's breakdown of MemoryBytes.
	MemoryStat *MemoryStat `json:"memory_stat,omitempty"`
	Processes  []Process   `json:"processes"`
	// ReadAt is when the cgroup's files were read, where that is not the
	// sample's at: in a trigger's sample, the moment of the event itself.
	ReadAt *time.Time `json:"read_at,omitempty"`
	// FromKernelLog names the fields of this object whose values are the
	// kernel's report of an OOM kill (its log), not a read of the cgroup
	// ("oom_kills", "memory_peak_bytes"): in the sample of an oom trigger
	// where the cgroup was gone before its counter was read after the kill.
	FromKernelLog []string `json:"from_kernel_log,omitempty"`
}

// Fields of a service object the kernel's log may vouch for
// (Service.FromKernelLog).
const (
	FieldOOMKills        = "oom_kills"
	FieldMemoryPeakBytes = "memory_peak_bytes"
)
