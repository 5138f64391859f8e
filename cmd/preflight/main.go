// Command preflight is a flight recorder for one systemd service: it keeps a
// ring of recent host and service samples and writes it to a capture file
// the moment the service fails. See README.md and docs/.
//
// Output rules, for every command in this package:
//   - Only results go to stdout: reports, tables, capture bytes, usage asked
//     for with -h.
//   - Errors go to stderr as one line, "preflight: " then lowercase, no
//     trailing period, naming the thing that is wrong (variable, key, path).
//     A hint, if any, stands on its own line after it.
//   - Warnings about files that readers skip go to stderr as
//     "preflight: warning: ..." and the command carries on.
//   - The recorder (start) logs with zerolog to stderr, never to stdout.
//   - Exit codes: 0 success, 1 the command ran and failed, 2 bad usage or
//     bad configuration.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/preflight-rec/preflight/recorder"
)

// Version is set at build time with -ldflags "-X main.Version=...".
var Version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], env{stdout: os.Stdout, stderr: os.Stderr, environ: os.Environ()})
	stop()
	os.Exit(report(os.Stderr, err))
}

// env is what a command takes from its process, so tests can run commands
// in-process.
type env struct {
	stdout, stderr io.Writer
	environ        []string
}

func (e env) getenv(key string) string {
	for _, kv := range e.environ {
		if k, v, ok := strings.Cut(kv, "="); ok && k == key {
			return v
		}
	}
	return ""
}

// warnf prints a reader's warning and carries on.
func (e env) warnf(format string, a ...any) {
	fmt.Fprintf(e.stderr, "preflight: warning: %s\n", safe(fmt.Sprintf(format, a...)))
}

const usage = `preflight is a flight recorder for one systemd service.

Usage:
  preflight start [--config FILE] [--check]          run recorders in the foreground
  preflight list [SERVICE] [--json]                  index the capture directory
  preflight last SERVICE [--json|--html]             the newest capture of SERVICE
  preflight show FILE|SERVICE@N [--json|--html]      one capture (SERVICE@1 the newest)
  preflight version

  --check   validate the configuration and print it, start nothing
  --json    the capture file's bytes (list: a JSON index)
  --html    one self-contained HTML page of charts and findings

Every command takes --dir DIR (default $PREFLIGHT_CAPTURE_DIR, else
/var/lib/preflight) and -h for its own usage. Flags may stand before or
after the command and its arguments: preflight --dir D last x.
`

// valueFlags are the flags that take a value, for flags before the command.
var valueFlags = map[string]bool{"dir": true, "config": true}

func run(ctx context.Context, args []string, e env) error {
	// Flags before the command belong to it: preflight --dir D last x is
	// preflight last --dir D x. The command's own parser checks them.
	var flags []string
	for len(args) > 0 && len(args[0]) > 1 && args[0][0] == '-' && args[0] != "--" {
		name, _, hasValue := strings.Cut(strings.TrimLeft(args[0], "-"), "=")
		if name == "h" || name == "help" {
			break
		}
		n := 1
		if valueFlags[name] && !hasValue {
			n = min(2, len(args))
		}
		flags, args = append(flags, args[:n]...), args[n:]
	}
	if len(args) == 0 {
		if len(flags) > 0 {
			return usageErr(fmt.Sprintf("no command given after %s\nrun 'preflight -h' for usage", strings.Join(flags, " ")))
		}
		return usageErr("no command given\nrun 'preflight -h' for usage")
	}
	cmd, rest := args[0], append(flags, args[1:]...)
	switch cmd {
	case "start":
		return runStart(ctx, rest, e)
	case "list":
		return readerHint(runList(rest, e))
	case "last":
		return readerHint(runLast(rest, e))
	case "show":
		return readerHint(runShow(rest, e))
	case "version":
		return runVersion(rest, e)
	case "-h", "--help", "help":
		fmt.Fprint(e.stdout, usage)
		return nil
	default:
		return usageErr(fmt.Sprintf("unknown command %q\nrun 'preflight -h' for usage", cmd))
	}
}

// usageError is bad usage: exit 2.
type usageError struct{ msg string }

func (u *usageError) Error() string { return u.msg }

func usageErr(msg string) error { return &usageError{msg} }

// report prints err as the contract says and returns the exit code.
func report(w io.Writer, err error) int {
	if err == nil {
		return 0
	}
	lines := strings.Split(strings.TrimRight(err.Error(), "\n"), "\n") // the error, then any hint
	for i := range lines {
		lines[i] = safe(lines[i])
	}
	fmt.Fprintf(w, "preflight: %s\n", strings.Join(lines, "\n"))
	var ue *usageError
	var ce *recorder.ConfigError
	if errors.As(err, &ue) || errors.As(err, &ce) {
		return 2
	}
	return 1
}

// command is one subcommand's flag set with the manners every command
// shares: --dir, -h, flags before or after the positional arguments.
type command struct {
	fs    *flag.FlagSet
	usage string
	dir   string
}

func newCommand(name, usage string, e env) *command {
	c := &command{fs: flag.NewFlagSet(name, flag.ContinueOnError), usage: usage}
	c.fs.SetOutput(io.Discard)
	c.fs.Usage = func() {}
	def := e.getenv("PREFLIGHT_CAPTURE_DIR")
	if def == "" {
		def = recorder.DefaultCaptureDir
	}
	c.fs.StringVar(&c.dir, "dir", def, "capture directory")
	return c
}

// parse parses args, flags anywhere, and returns the positional arguments.
// With -h it prints the usage to stdout and returns errHelp.
func (c *command) parse(args []string, e env) ([]string, error) {
	var pos []string
	for {
		err := c.fs.Parse(args)
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(e.stdout, c.usage)
			return nil, errHelp
		}
		if err != nil {
			return nil, usageErr(fmt.Sprintf("%s: %v\nrun 'preflight %s -h' for usage", c.fs.Name(), err, c.fs.Name()))
		}
		rest := c.fs.Args()
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			return append(pos, rest...), c.checkDir()
		}
		if len(rest) == 0 {
			return pos, c.checkDir()
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// checkDir refuses an empty --dir, naming the flag (not the variable whose
// default it replaced).
func (c *command) checkDir() error {
	if c.dir == "" && dirSet(c) {
		return usageErr(fmt.Sprintf("%s: --dir: must not be empty", c.fs.Name()))
	}
	return nil
}

// errHelp ends a command that printed its usage on request: exit 0.
var errHelp = errors.New("help")

// positional checks the number of positional arguments.
func (c *command) positional(pos []string, min, max int) error {
	if len(pos) < min || len(pos) > max {
		want, _, _ := strings.Cut(c.usage, "\n")
		return usageErr(fmt.Sprintf("%s: wrong number of arguments\n%s", c.fs.Name(), want))
	}
	return nil
}

func runVersion(args []string, e env) error {
	c := newCommand("version", "Usage: preflight version\n\nPrints preflight's version.\n", e)
	pos, err := c.parse(args, e)
	if err != nil {
		return helpOK(err)
	}
	if err := c.positional(pos, 0, 0); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "preflight %s\n", Version)
	return nil
}

// helpOK turns errHelp into success.
func helpOK(err error) error {
	if errors.Is(err, errHelp) {
		return nil
	}
	return err
}
