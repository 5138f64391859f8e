package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/preflight-rec/preflight/recorder/capture"
)

const lastUsage = `Usage: preflight last SERVICE [--json] [--dir DIR]

Shows the newest capture of SERVICE as a report: what failed and when, the
findings that most likely explain it, the samples as a timeline up to the
failure, the top processes before and at the failure, and the file's path.
With --json, prints the capture file byte for byte.

A newer file that is not a readable capture is skipped with a warning.

Examples:
  preflight last dead-drop
  preflight last dead-drop --json | jq '.samples[-1].top_memory'
`

const showUsage = `Usage: preflight show FILE|SERVICE@ID [--json] [--dir DIR]

Shows one capture as a report, as 'preflight last' does. With --json,
prints the file byte for byte.

The capture is a file's path, or an id from 'preflight list SERVICE':
SERVICE@N is the N-th newest capture of SERVICE in the capture directory
(SERVICE@1 the newest), and SERVICE@PREFIX the one capture whose file name
starts with PREFIX, a UTC time such as 2026-11-26T03-12.

Examples:
  preflight show /var/lib/preflight/dead-drop/2026-11-26T03-12-04.123Z.json
  preflight show dead-drop@2
  preflight show dead-drop@2026-11-26T03-12 --json | jq .health
`

func runLast(args []string, e env) error {
	c := newCommand("last", lastUsage, e)
	asJSON := c.fs.Bool("json", false, "print the capture file's bytes")
	pos, err := c.parse(args, e)
	if err != nil {
		return helpOK(err)
	}
	if err := c.positional(pos, 1, 1); err != nil {
		return err
	}
	svc := pos[0]
	if err := capture.ValidService(svc); err != nil {
		return usageErr(err.Error())
	}
	files, err := capture.Files(c.dir, svc)
	if err != nil {
		return err
	}
	for i := len(files) - 1; i >= 0; i-- {
		cp, data, err := capture.Read(files[i].Path)
		if err == nil {
			err = capture.CheckService(cp, svc)
		}
		if err != nil {
			e.warnf("skipping %v", withPath(err, files[i].Path))
			continue
		}
		return output(e, cp, data, files[i].Path, *asJSON)
	}
	return fmt.Errorf("no capture of %s in %s", svc, c.dir)
}

func runShow(args []string, e env) error {
	c := newCommand("show", showUsage, e)
	asJSON := c.fs.Bool("json", false, "print the capture file's bytes")
	pos, err := c.parse(args, e)
	if err != nil {
		return helpOK(err)
	}
	if err := c.positional(pos, 1, 1); err != nil {
		return err
	}
	path, err := resolveCapture(c.dir, pos[0])
	if err != nil {
		return err
	}
	cp, data, err := capture.Read(path)
	if err != nil {
		return withPath(err, path)
	}
	return output(e, cp, data, path, *asJSON)
}

// resolveCapture returns the path of the capture arg names: an existing
// path as it is (so is anything with a '/' or ending in .json);
// SERVICE@N, the N-th newest capture of SERVICE in dir; SERVICE@PREFIX, the
// one capture of SERVICE whose name starts with PREFIX. Anything else is
// returned as a path, for Read to report.
func resolveCapture(dir, arg string) (string, error) {
	if _, err := os.Lstat(arg); err == nil || strings.ContainsRune(arg, '/') || strings.HasSuffix(arg, capture.Ext) {
		return arg, nil
	}
	i := strings.LastIndexByte(arg, '@')
	if i <= 0 || capture.ValidService(arg[:i]) != nil {
		return arg, nil
	}
	svc, id := arg[:i], arg[i+1:]
	files, err := capture.Files(dir, svc)
	if err != nil {
		return "", err
	}
	if len(files) == 0 {
		return "", fmt.Errorf("no capture %s: %s has no captures in %s", arg, svc, dir)
	}
	if n, err := strconv.Atoi(id); err == nil && id != "" && id[0] != '+' && id[0] != '-' {
		if n < 1 || n > len(files) {
			return "", fmt.Errorf("no capture %s: %s has %d captures in %s (%s@1 is the newest)", arg, svc, len(files), dir, svc)
		}
		return files[len(files)-n].Path, nil
	}
	var match []capture.Entry
	for _, f := range files {
		if id != "" && strings.HasPrefix(f.Name, id) {
			match = append(match, f)
		}
	}
	switch len(match) {
	case 1:
		return match[0].Path, nil
	case 0:
		return "", fmt.Errorf("no capture %s: no capture of %s in %s is named %s…", arg, svc, dir, id)
	default:
		return "", fmt.Errorf("ambiguous capture %s: %d captures of %s match (%s … %s)",
			arg, len(match), svc, match[0].Name, match[len(match)-1].Name)
	}
}

func output(e env, c *capture.Capture, data []byte, path string, asJSON bool) error {
	if asJSON {
		_, err := e.stdout.Write(data)
		return err
	}
	return writeReport(e.stdout, c, path, newOut(e))
}
