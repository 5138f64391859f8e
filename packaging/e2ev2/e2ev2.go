package e2ev2

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// The guest's service, its recorder and the test's own files in the image.
const (
	Service      = "dead-drop"
	Unit         = Service + ".service"
	RecorderUnit = "preflight@" + Service + ".service"
	Addr         = "127.0.0.1:8080"
	HealthURL    = "http://" + Addr + "/health"
	CaptureDir   = "/var/lib/preflight"
	MemoryMax    = 64 << 20

	// Dir holds what the host puts into the image for the guest (the .deb,
	// the guest program) and, in Results, what the guest leaves for the
	// host; `debugfs rdump` copies ResultsDir out after power-off.
	Dir        = "/opt/preflight-e2e-v2"
	ResultsDir = Dir + "/results"
	// ResultsFile is results.json under ResultsDir: a Results, rewritten
	// after every run, so a guest that times out still leaves what it did.
	ResultsFile = "results.json"
	// JournalFile under ResultsDir holds the journal of dead-drop, its
	// recorder and the kernel's OOM lines.
	JournalFile = "journal.txt"
	// CapturesDir under ResultsDir holds a copy of every capture a run
	// wrote, as RUN-NAME (Run.Captures).
	CapturesDir = "captures"
	// DebFile is the package under Dir, as `make deb` built it.
	DebFile = "preflight.deb"
	// GuestProgram is the scenario runner under Dir (package guest).
	GuestProgram = "e2e-v2-guest"
	// GuestUnit runs GuestProgram once the guest has booted, then powers
	// the guest off whatever happened.
	GuestUnit = "preflight-e2e-v2.service"

	// CmdlineRepeat is the kernel command-line word that sets how often
	// each repeated scenario runs: preflight.e2e.repeat=N.
	CmdlineRepeat = "preflight.e2e.repeat"
)

// DeadDropUnit is the service the guest breaks: the test's HTTP service
// under MemoryMax=, restarted always. OOMPolicy= is systemd's default
// (stop) until the continue scenarios add ContinueDropIn.
var DeadDropUnit = fmt.Sprintf(`[Unit]
Description=dead-drop, the service preflight's e2e-v2 test breaks
StartLimitIntervalSec=0

[Service]
ExecStart=/usr/local/bin/dead-drop serve %s
Restart=always
RestartSec=100ms
MemoryMax=%d
`, Addr, MemoryMax)

// ContinueDropIn is dead-drop.service.d/oom-continue.conf.
const ContinueDropIn = "[Service]\nOOMPolicy=continue\n"

// RecorderEnv is /etc/preflight/dead-drop.env. The interval is short so
// that incidents end soon, long enough for a guest 5–20× slower than a host.
// The health check's deadline is 2 s, not the interval: under emulation a
// busy guest now and then took longer than 500 ms to answer /health (a
// health capture 4 s after a restart), which is the guest's slowness, not
// a failure of dead-drop.
const RecorderEnv = `PREFLIGHT_HEALTH_URL=` + HealthURL + `
PREFLIGHT_INTERVAL_SECONDS=0.5
PREFLIGHT_BUFFER_SAMPLES=10
PREFLIGHT_LOG_LEVEL=debug
PREFLIGHT_TIMEOUT_SECONDS=2
`

// GuestUnitText is GuestUnit: after the boot, run the scenarios, then
// power off, also when the program fails. The program bounds its own
// waits; the host bounds qemu.
const GuestUnitText = `[Unit]
Description=preflight's scenarios on pure cgroup v2, then power off
After=multi-user.target
SuccessAction=poweroff
FailureAction=poweroff

[Service]
Type=oneshot
ExecStart=` + Dir + "/" + GuestProgram + `
TimeoutStartSec=infinity
StandardOutput=journal+console
StandardError=journal+console

[Install]
WantedBy=multi-user.target
`

// Scenarios, in the order the guest runs them.
const (
	Kill             = "kill-9"             // kill -9 of the main process: an exit capture
	Health           = "health-503"         // /health answers 503: a health capture
	Restart          = "restart"            // systemctl restart: no capture
	OOMChildStop     = "oom-child-stop"     // a child past MemoryMax, OOMPolicy=stop
	OOMMainStop      = "oom-main-stop"      // the main process past MemoryMax, OOMPolicy=stop
	OOMChildContinue = "oom-child-continue" // a child past MemoryMax, OOMPolicy=continue
	OOMMainContinue  = "oom-main-continue"  // the main process past MemoryMax, OOMPolicy=continue
)

// Results is what the guest did and saw, written to ResultsFile.
type Results struct {
	Started time.Time `json:"started"`
	Ended   time.Time `json:"ended,omitzero"`
	// UptimeAtStart is the guest's uptime when the program started: the
	// boot's length.
	UptimeAtStart float64 `json:"uptime_at_start_seconds"`
	Repeat        int     `json:"repeat"`
	Kernel        string  `json:"kernel"`
	Systemd       string  `json:"systemd"`
	// Cgroup is the layout the guest booted with.
	Cgroup CgroupLayout `json:"cgroup"`
	// InstallSeconds is how long `dpkg -i` of the package took.
	InstallSeconds float64 `json:"install_seconds"`
	Runs           []Run   `json:"runs"`
	// Error is why the program stopped before the end, if it did.
	Error string `json:"error,omitempty"`
}

// CgroupLayout is what /sys/fs/cgroup is in the guest.
type CgroupLayout struct {
	FSType      string `json:"fstype"`      // of the mount at /sys/fs/cgroup
	Controllers string `json:"controllers"` // its cgroup.controllers
	Unified     bool   `json:"unified"`     // a hybrid's /sys/fs/cgroup/unified exists
	MemoryV1    bool   `json:"memory_v1"`   // a v1 /sys/fs/cgroup/memory exists
}

// Pure reports whether the layout is pure cgroup v2 with the memory
// controller.
func (l CgroupLayout) Pure() bool {
	return l.FSType == "cgroup2" && !l.Unified && !l.MemoryV1 && slices.Contains(strings.Fields(l.Controllers), "memory")
}

// Run is one run of one scenario.
type Run struct {
	Scenario string `json:"scenario"`
	Repeat   int    `json:"repeat"` // 1-based
	// Attempt counts the runs of this repeat (1-based): a void run is
	// made again, at most three times in all.
	Attempt int `json:"attempt"`
	// Void says why the run did not test what its scenario names
	// (systemd did not act on an OOM kill under OOMPolicy=stop); "" for a
	// run that did. The host still judges what a void run can show.
	Void string `json:"void,omitempty"`
	// OOMPolicy is dead-drop's, as systemd reported it before the act.
	OOMPolicy string    `json:"oom_policy"`
	At        time.Time `json:"at"` // the act
	// Before and After are systemd's view of dead-drop before the act and
	// once the run has settled.
	Before UnitState `json:"before"`
	After  UnitState `json:"after"`
	// Captures are the files the run wrote, as copied to CapturesDir.
	Captures []string `json:"captures"`
	// CaptureLatencyMS is the time from the act to the first capture's
	// appearance (by rename, after fsync: durable), polled every 5 ms.
	CaptureLatencyMS *float64 `json:"capture_latency_ms,omitempty"`
	// SystemdResults are systemd's own "Failed with result 'X'" words for
	// dead-drop, from the journal, after the act.
	SystemdResults []string `json:"systemd_results"`
	// OOMVictims are the kernel's "Killed process PID (NAME)" after the act,
	// in the kernel's order.
	OOMVictims []Victim `json:"oom_victims"`
	// Procs are the processes in dead-drop's cgroup just before the act.
	Procs []int `json:"procs"`
	// Eater is the PID of the child that /eat started to allocate (the
	// child OOM scenarios), 0 where none was started.
	Eater   int     `json:"eater,omitempty"`
	Seconds float64 `json:"seconds"`
	// Error is what went wrong in the guest during the run: a wait that
	// timed out, a command that failed.
	Error string `json:"error,omitempty"`
}

// UnitState is part of `systemctl show dead-drop.service`.
type UnitState struct {
	ActiveState string `json:"active_state"`
	SubState    string `json:"sub_state"`
	Result      string `json:"result"`
	MainPID     int    `json:"main_pid"`
	NRestarts   int    `json:"n_restarts"`
}

// Victim is a process the kernel's OOM killer killed.
type Victim struct {
	PID  int    `json:"pid"`
	Name string `json:"name"`
}
