package main

import (
	"context"
	"flag"
	"os"
	"strings"

	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/mattn/go-isatty"
	"github.com/rs/zerolog"

	"github.com/preflight-rec/preflight/recorder"
)

const startUsage = `Usage: preflight start [--config FILE] [--dir DIR]

Runs the recorder in the foreground until SIGTERM or SIGINT; a capture being
written completes first, then it exits 0. systemd runs this.

Without --config, one recorder is configured from PREFLIGHT_* environment
variables (see README.md): PREFLIGHT_SERVICE and PREFLIGHT_HEALTH_URL are
required. --dir overrides PREFLIGHT_CAPTURE_DIR.

Logs go to stderr: JSON lines, or readable text on a terminal.

Example:
  PREFLIGHT_SERVICE=dead-drop \
  PREFLIGHT_HEALTH_URL=http://127.0.0.1:8080/health \
  PREFLIGHT_INTERVAL_SECONDS=5 preflight start --dir /tmp/captures
`

func runStart(ctx context.Context, args []string, e env) error {
	c := newCommand("start", startUsage, e)
	config := c.fs.String("config", "", "YAML configuration file")
	pos, err := c.parse(args, e)
	if err != nil {
		return helpOK(err)
	}
	if err := c.positional(pos, 0, 0); err != nil {
		return err
	}
	if *config != "" {
		return usageErr("start: --config is not supported yet; configure with PREFLIGHT_* variables")
	}
	cfg, err := recorder.ConfigFromEnv(e.environ)
	if err != nil {
		return err
	}
	if dirSet(c) {
		cfg.CaptureDir = c.dir
	}
	log := newLogger(e, cfg.LogLevel)
	r, err := recorder.New(cfg, recorder.Options{Logger: log, Version: Version, Ready: notifyReady(log)})
	if err != nil {
		return err
	}
	return r.Run(ctx)
}

// notifyReady tells systemd (Type=notify) that the recorder is recording.
// Outside systemd (no $NOTIFY_SOCKET) it does nothing.
func notifyReady(log zerolog.Logger) func() {
	return func() {
		if _, err := daemon.SdNotify(false, daemon.SdNotifyReady); err != nil {
			log.Warn().Err(err).Msg("failed to notify systemd of readiness")
		}
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
	if f, ok := w.(*os.File); ok && isatty.IsTerminal(f.Fd()) {
		w = zerolog.ConsoleWriter{Out: f, TimeFormat: "15:04:05.000"}
	}
	return zerolog.New(w).Level(lvl).With().Timestamp().Logger()
}
