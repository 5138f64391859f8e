// Package cgroup finds, reads and watches the cgroup of one systemd unit: the
// service whose death preflight must see within milliseconds, before systemd
// restarts it (RestartSec defaults to 100 ms).
//
// # Layouts
//
// [NewFS] takes the cgroup root (normally /sys/fs/cgroup; tests pass fixture
// trees) and recognises three layouts ([Layout]):
//
//   - [Unified]: pure cgroup v2, root/cgroup.controllers exists.
//   - [Hybrid]: cgroup2 at root/unified, v1 controllers (memory, pids,
//     cpu, cpuacct, …) and the named hierarchy name=systemd beside it.
//   - [Legacy]: v1 only; systemd's own hierarchy is root/systemd.
//
// A cgroup path is written as /proc/PID/cgroup shows it
// ("/system.slice/dead-drop.service"). The same path is looked up in every
// hierarchy; a hierarchy that lacks it is skipped.
//
// # Finding and reading
//
// [FS.Find] maps a unit to its path in the hierarchy systemd manages (the v2
// root, unified then name=systemd in hybrid, name=systemd in legacy): first
// system.slice/UNIT and, for a template instance, the nested slice
// system.slice/system-<escaped prefix>.slice/UNIT, then a bounded walk of
// the slices. [ErrNotFound] means the unit has no cgroup now.
//
// [FS.Procs] reads cgroup.procs; [FS.Stats] reads the service's evidence
// (memory, OOM kills, CPU usage and throttling, pids, pressure), each value
// from the first hierarchy that has it: v2 first, then v1. A file this kernel
// or layout lacks leaves its field nil; it is never an error. Pseudo-files are
// read without stat, with a size cap, and parsed by pure functions. A
// [Tracer] reads the cheap part of it every second and holds the files open
// between readings.
//
// # Watching
//
// A [Watcher] reports [Event]s for one cgroup, given as a unit or as an
// explicit path ([Target]):
//
//   - "exit": the cgroup went from populated to empty; or every process was
//     replaced between two looks without the cgroup ever being seen empty (a
//     fast restart); or the cgroup directory vanished, or was re-created,
//     while it had processes; or the main process named by
//     [Watcher.SetMain] (systemd's MainPID) ended while others live on.
//   - "oom": the cgroup's oom_kill counter rose (v2 memory.events, else v1
//     memory.oom_control), also when the killed process was a child and the
//     main process lives on.
//
// Each transition yields one event, however many wake-ups saw it: every
// wake-up feeds the same state machine, in one goroutine. A look reads
// cgroup.procs and the OOM counter, nothing else (about 3 µs of CPU, no
// allocation: BenchmarkPollOnce). Looks are driven by notifications, each
// within about a millisecond of its cause:
//
//   - inotify (fsnotify) on the v2 cgroup.events, which the kernel signals
//     when the last process leaves, and on v2 memory.events where that is
//     the OOM counter;
//   - a pidfd per process of the last look, at most 64, parked in Go's
//     netpoller (a goroutine, no thread): a process exits, also when others
//     took its place and the cgroup never emptied (a restart);
//   - for v1 memory.oom_control (hybrid and legacy hosts), an eventfd
//     registered with cgroup.event_control, signalled when the cgroup hits
//     OOM, possibly before its oom_kill counter moves: the watcher looks
//     then and again 1, 10, 50 and 200 ms later until the counter has moved;
//   - inotify on the directory that holds the cgroup's: its rmdir and mkdir.
//
// Where these cover the cgroup (cgroup2 and hybrid hosts), a safety look
// runs every Safety (default 1 s) and nothing else wakes the watcher: an
// idle watcher costs about 0.2 ms of CPU per second on a 2-CPU virtual
// machine, against 4–5 ms with a look every 50 ms, almost all of it the Go
// runtime waking up (BenchmarkWatcherIdle). A caller that wakes up as
// often anyway makes the look then, in its own goroutine ([Watcher.Look]),
// and drives the safety look: the watcher's own timer then ticks only
// every 5 periods, to look if the caller stopped. The look rides on the
// caller's wake-up instead of waking a second goroutine, and on an idle
// host a second thread; the timer is not moved at each look, as a runtime
// timer moved later wakes the process at its old time all the same.
// Where they do not, a look runs every Poll (default 50 ms): without
// inotify, without cgroup2 (legacy: no cgroup.events), with more than 64
// processes, where pidfd_open is refused or missing (PIDFD_NONBLOCK needs
// Linux 5.10), or where a watch could not be added. Where cgroup.event_control refuses the
// eventfd (not root; a read-only cgroupfs, as under systemd's
// ProtectControlGroups=), the pidfds stand in: an OOM kill ends a watched
// process; only a process that joined after the last look and is killed
// before the next one waits for the safety look.
//
// Processes joining are not notified, so "every process replaced" compares
// with the last look, which may be up to Safety old: a process that forked
// a child within that time and then exited would read as replaced by it.
// Such a fork is what a daemon does at start-up (systemd's Type=forking),
// so a set of processes replaced within a second (minReplacedAge) of the
// cgroup becoming populated is taken for start-up, not a restart; a
// service that had run longer and is replaced was restarted.
//
// On a real cgroupfs the v2 cgroup.procs and the OOM counter stay open and
// are re-read from offset 0. A unit not running yet, or whose cgroup
// vanished, is looked up again every Resolve (default 1 s); once its cgroup
// is found the lookup stops, without restarting anything. A cgroup removed
// and re-created at the same path is picked up at its mkdir. A missing OOM
// counter is looked for again at the periodic looks, at most once per
// Resolve. Every descriptor a watcher opened is closed when Run returns.
//
// When a cgroup holds no process itself, its descendants' processes count
// (a delegated service keeps them in sub-cgroups).
//
// An [Event] carries the cgroup's evidence ([Stats]) read in the watcher's
// goroutine at the wake-up that saw it, before anything else: systemd
// removes a failed unit's cgroup within milliseconds. Where the cgroup is
// gone by then, the read made at the notification that woke the watcher,
// or the previous one of the same cgroup (younger than Safety), stands in;
// the look's own OOM counter is never lost. That read costs far more than a
// look (BenchmarkNotifiedLook against BenchmarkPollOnce), so a notified
// wake-up makes it at most once per 10 ms, and a periodic look never.
//
// # systemd
//
// [FollowUnit] follows a unit from systemd over the system bus (godbus, the
// client go-systemd's dbus package is built on; go-systemd's own
// subscriber forwards only the Unit interface's changes, not the Service
// interface's Result, ExecMain*, NRestarts, MainPID, ControlPID): LoadUnit
// resolves an alias or a name without ".service" to the unit's id, its
// PropertiesChanged signals are applied in order, each state with the time
// it arrived, and [Follower.ControlGroup] is systemd's answer for the
// unit's cgroup (a [Target.Find]). [ShowUnit] asks once with `systemctl
// show`, where D-Bus does not answer. Both return [ErrNoSystemd] without
// trying where systemd is not PID 1.
//
// The package only reads: it never changes a cgroup, signals or restarts
// anything. Its one write is the registration of the v1 OOM eventfd in
// cgroup.event_control, which the kernel drops when the eventfd is closed.
package cgroup
