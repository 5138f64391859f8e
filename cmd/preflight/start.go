package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"sync"
	"syscall"

	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/mattn/go-isatty"
	"github.com/rs/zerolog"

	"github.com/preflight-rec/preflight/recorder"
)

const startUsage = `Usage: preflight start [--config FILE] [--check] [--dir DIR]

Runs recorders in the foreground until SIGTERM or SIGINT; a capture being
written completes first, then it exits 0. systemd runs this.

Without --config, one recorder is configured from PREFLIGHT_* environment
variables (see README.md): PREFLIGHT_SERVICE and PREFLIGHT_HEALTH_URL are
required. With --config, one recorder per service of the YAML file runs in
this process, each exactly as a single recorder would.

Precedence: --dir, then the file (a service's keys, then its defaults and
capture_dir), then PREFLIGHT_* variables, then the built-in defaults.

--check validates the configuration, prints the effective configuration of
every service as YAML (health URLs' secrets masked), and exits without
starting anything. A PREFLIGHT_* variable that configures nothing is
ignored with a warning.

Logs go to stderr: JSON lines, or readable text on a terminal. Under
systemd, when stderr is the journal, each line is a native journal entry:
PRIORITY from the level, the fields PREFLIGHT_SERVICE, PREFLIGHT_TRIGGER,
PREFLIGHT_CAPTURE (a capture's absolute path), and MESSAGE_ID
7d3e60010911494189baf40b30b1b6ef on "capture written":
  journalctl MESSAGE_ID=7d3e60010911494189baf40b30b1b6ef -o json

Examples:
  PREFLIGHT_SERVICE=dead-drop \
  PREFLIGHT_HEALTH_URL=http://127.0.0.1:8080/health \
  PREFLIGHT_INTERVAL_SECONDS=5 preflight start --dir /tmp/captures

  preflight start --config /etc/preflight/preflight.yaml --check
`

func runStart(ctx context.Context, args []string, e env) error {
	c := newCommand("start", startUsage, e)
	config := c.fs.String("config", "", "YAML configuration file")
	check := c.fs.Bool("check", false, "validate and print the configuration, start nothing")
	pos, err := c.parse(args, e)
	if err != nil {
		return helpOK(err)
	}
	if err := c.positional(pos, 0, 0); err != nil {
		return err
	}
	for _, w := range recorder.UnknownEnv(e.environ) {
		e.warnf("%s", w)
	}
	cfgs, err := loadConfigs(*config, e)
	if err != nil {
		return err
	}
	for i := range cfgs {
		if dirSet(c) {
			cfgs[i].CaptureDir = c.dir
		}
	}
	if *check {
		out, err := recorder.MarshalConfigs(cfgs)
		if err != nil {
			return err
		}
		_, err = e.stdout.Write(out)
		return err
	}

	procs := setProcs(len(cfgs))
	// Every recorder is prepared before any starts: one that cannot start
	// stops them all, with its reason, and nothing was removed (New
	// deletes nothing; Run cleans up).
	var ready sync.WaitGroup
	ready.Add(len(cfgs))
	recs := make([]*recorder.Recorder, 0, len(cfgs))
	host, err := recorder.SharedHost(len(cfgs))
	if err != nil {
		return err
	}
	for _, cfg := range cfgs {
		log := newLogger(e, cfg.LogLevel)
		r, err := recorder.New(cfg, recorder.Options{Logger: log, Version: Version, Ready: ready.Done, Host: host, Procs: procs})
		if err != nil {
			for _, r := range recs {
				r.Close()
			}
			return err
		}
		recs = append(recs, r)
	}
	// SIGHUP is not a reload (there is nothing to reload in place): it is
	// logged and ignored, never the death of the recorders.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer func() { signal.Stop(hup); close(hup) }()
	go func() {
		log := newLogger(e, cfgs[0].LogLevel)
		for range hup {
			log.Warn().Msg("SIGHUP ignored: preflight does not reload its configuration; restart it to apply changes")
		}
	}()
	go func() {
		ready.Wait()
		notifyReady(newLogger(e, cfgs[0].LogLevel))
	}()
	var wg sync.WaitGroup
	for _, r := range recs {
		wg.Go(func() { _ = r.Run(ctx) })
	}
	wg.Wait()
	return nil
}

// maxProcs is the most Ps (threads running Go code at once) a recorder
// process uses: its work is one goroutine per recorder and per health
// check, mostly waiting on system calls. Two, not one, so that the cgroup
// watcher can read a failing service's evidence while a host sample runs.
const maxProcs = 2

// setProcs sets GOMAXPROCS for n recorders, unless the GOMAXPROCS variable
// sets it: at most maxProcs. Set in code, it also stops the runtime's own
// check of the CPU count and cgroup limit once a second (Go 1.25+). A
// process that records one service runs on one P while idle, and on
// maxProcs while its long work runs (recorder.Procs); it returns that
// Procs, nil otherwise. The recorders of several services keep maxProcs:
// their trace ticks come at the same instants and, on one P, would each
// wait for the others'.
func setProcs(n int) *recorder.Procs {
	if os.Getenv("GOMAXPROCS") != "" {
		return nil
	}
	most := min(maxProcs, runtime.GOMAXPROCS(0))
	if n == 1 && most > 1 {
		return recorder.NewProcs(1, most)
	}
	runtime.GOMAXPROCS(most)
	return nil
}

// loadConfigs reads the recorders' configuration: from the YAML file when
// one is named, else one recorder from the environment.
func loadConfigs(file string, e env) ([]recorder.Config, error) {
	if file == "" {
		cfg, err := recorder.ConfigFromEnv(e.environ)
		if err != nil {
			return nil, err
		}
		return []recorder.Config{cfg}, nil
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, usageErr(fmt.Sprintf("failed to read configuration: %v", err))
	}
	return recorder.ConfigsFromYAML(file, data, e.environ)
}

// notifyReady tells systemd (Type=notify) that every recorder is
// recording. Outside systemd (no $NOTIFY_SOCKET) it does nothing.
func notifyReady(log zerolog.Logger) {
	if _, err := daemon.SdNotify(false, daemon.SdNotifyReady); err != nil {
		log.Warn().Err(err).Msg("failed to notify systemd of readiness")
	}
}

// dirSet reports whether --dir was given on the command line.
func dirSet(c *command) bool {
	set := false
	c.fs.Visit(func(f *flag.Flag) { set = set || f.Name == "dir" })
	return set
}

func newLogger(e env, level string) zerolog.Logger {
	lvl, err := zerolog.ParseLevel(strings.ToLower(level))
	if err != nil {
		lvl = zerolog.InfoLevel
	}
	w := e.stderr
	if jw := journalStderr(e); jw != nil {
		w = jw
	} else if f, ok := w.(*os.File); ok && isatty.IsTerminal(f.Fd()) {
		w = zerolog.ConsoleWriter{Out: f, TimeFormat: "15:04:05.000"}
	}
	return zerolog.New(w).Level(lvl).With().Timestamp().Logger()
}

// Log times have milliseconds: two lines of one incident are apart by less
// than a second.
func init() { zerolog.TimeFieldFormat = "2006-01-02T15:04:05.000Z07:00" }
