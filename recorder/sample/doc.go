// Package sample takes the host half of a capture sample: CPU, load,
// memory, disks, pressure and the top processes, read from a proc
// filesystem whose root is injected ("/proc", or a fixture tree in tests).
//
// # Contract
//
// [New] takes a baseline reading; each [Sampler.Sample] then returns a
// [capture.Sample] describing the interval since the previous reading (its
// Service is left nil for the caller) and the processes of the service's
// PIDs, from the same scan. A Sample never fails: what cannot be read is
// left zero (CPU, load, memory), nil (pressure) or out (a disk, a process).
//
// Each Sample reads, under the root:
//
//   - stat: CPU percents from the counter deltas since the previous
//     reading, in percent of all CPUs. Percent is all but idle and iowait;
//     user includes nice, system includes irq and softirq, so Percent =
//     user + system + steal. CPUs is the number of cpuN lines.
//   - loadavg: load1, load5, load15.
//   - meminfo: total, available, used_percent = (total-available)/total,
//     swap total and used (total-free).
//   - pressure/{cpu,memory,io}: the avg10 values. Pressure is nil when the
//     kernel lacks PSI (the files do not exist: fs.ErrNotExist).
//   - self/mountinfo, then statfs(2) of each mount point: the real
//     filesystems, with node_exporter's default exclusions (pseudo
//     filesystem types, mount points under /dev /proc /sys and container
//     storage); one mount per device (bind mounts collapse onto the mount of
//     the filesystem's root); mounts whose statfs fails or reports 0 size
//     are out, and a statfs that hangs (a dead network filesystem) is
//     abandoned after 2s and its mount skipped until it returns.
//     used_percent is df's: used / (used + available to unprivileged users).
//   - the directory listing, and PID/stat of every process: Processes (the
//     count of processes read), and per process its name (comm), state,
//     threads, RSS (rss pages × page size) and CPU. cpu_percent is per one
//     CPU, as top shows it: the utime+stime ticks since the previous scan of
//     the same process (same PID and start time; a new or reused PID counts
//     all its ticks) over the wall time between the two Sample times, capped
//     at 100 × CPUs.
//   - PID/cmdline only of the processes that are reported: the topN by CPU,
//     the topN by RSS (ties to the lower PID) and the service's. Command
//     lines pass through [Redact]. A reported process that exited after the
//     scan keeps the scan's values and an empty command line.
//
// Percentages are rounded to two decimals. Pass time.Now() (with its
// monotonic reading) as Sample's time, so that clock steps do not distort
// the elapsed time of the per-process CPU percents.
//
// # Cost
//
// Per process one open, one read and one close of PID/stat, parsed in
// place without allocation; the per-PID state lives in two reused maps
// holding only the PIDs of the latest scan. The top lists are a partial
// selection (O(n·topN) at worst), and only the reported processes' command
// lines are read. The rest is a dozen small files and one statfs per disk.
// Beyond the scan itself, a Sample therefore costs about as much as reading
// every PID/stat once (BenchmarkReadAllStat is that floor; compare it with
// BenchmarkSample).
//
// A Sampler is not safe for concurrent use.
package sample
