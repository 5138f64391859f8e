package main

import (
	"fmt"

	"github.com/preflight-rec/preflight/recorder/capture"
)

const lastUsage = `Usage: preflight last SERVICE [--json] [--dir DIR]

Shows the newest capture of SERVICE as a report: what failed and when, the
samples as a timeline up to the failure, the top processes at the failure,
and the file's path. With --json, prints the capture file byte for byte.

A newer file that is not a readable capture is skipped with a warning.

Examples:
  preflight last dead-drop
  preflight last dead-drop --json | jq '.samples[-1].top_memory'
`

const showUsage = `Usage: preflight show FILE [--json]

Shows one capture file as a report, as 'preflight last' does. With --json,
prints the file byte for byte.

Example:
  preflight show /var/lib/preflight/dead-drop/2026-11-26T03-12-04.123Z.json
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
		if err != nil {
			e.warnf("skipping %v", err)
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
	cp, data, err := capture.Read(pos[0])
	if err != nil {
		return err
	}
	return output(e, cp, data, pos[0], *asJSON)
}

func output(e env, c *capture.Capture, data []byte, path string, asJSON bool) error {
	if asJSON {
		_, err := e.stdout.Write(data)
		return err
	}
	return writeReport(e.stdout, c, path)
}
