package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/preflight-rec/preflight/recorder/capture"
)

const lastUsage = `Usage: preflight last SERVICE [--json|--html] [--dir DIR]

Shows the newest capture of SERVICE as a report: what failed and when, the
findings that most likely explain it, the samples as a timeline up to the
failure, the top processes before and at the failure, and the file's path.
With --json, prints the capture file byte for byte. With --html, prints
one self-contained HTML page: charts of the samples on one time axis, the
triggers marked, the findings, systemd's view and the top processes
(nothing fetched, no scripts).

A newer file that is not a readable capture is skipped with a warning.

Examples:
  preflight last dead-drop
  preflight last dead-drop --json | jq '.samples[-1].top_memory'
  preflight last dead-drop --html > dead-drop.html
`

const showUsage = `Usage: preflight show FILE|SERVICE@ID [--json|--html] [--dir DIR]

Shows one capture as a report, as 'preflight last' does. With --json,
prints the file byte for byte; with --html, the page 'last --html' prints.

The capture is a file's path, or what 'preflight list SERVICE' shows:
a file name from its FILE column, found in the capture directory; or an
id, SERVICE@N, the N-th newest capture of SERVICE (SERVICE@1 the newest),
or SERVICE@PREFIX, the one capture whose file name starts with PREFIX, a
UTC time such as 2026-11-26T03-12.

Examples:
  preflight show /var/lib/preflight/dead-drop/2026-11-26T03-12-04.123Z.json
  preflight show dead-drop@2
  preflight show 2026-11-26T03-12-04.123Z.json
  preflight show dead-drop@2026-11-26T03-12 --json | jq .health
  preflight show dead-drop@2 --html > dead-drop-2.html
`

func runLast(args []string, e env) error {
	c := newCommand("last", lastUsage, e)
	asJSON := c.fs.Bool("json", false, "print the capture file's bytes")
	asHTML := c.fs.Bool("html", false, "print an HTML page")
	pos, err := c.parse(args, e)
	if err != nil {
		return helpOK(err)
	}
	if err := oneFormat(c, *asJSON, *asHTML); err != nil {
		return err
	}
	if err := c.positional(pos, 1, 1); err != nil {
		return err
	}
	svc := pos[0]
	if err := capture.ValidService(svc); err != nil {
		return usageErr(err.Error())
	}
	st, err := capture.Open(c.dir)
	if err != nil {
		return err
	}
	defer st.Close()
	warn := skipper(e)
	files, err := st.Files(svc, warn)
	if err != nil {
		return err
	}
	for i := len(files) - 1; i >= 0; i-- {
		cp, data, err := st.Read(files[i])
		if err == nil {
			if err = capture.CheckService(cp, svc); err != nil {
				err = fmt.Errorf("%s: %w", files[i].Path, err)
			}
		}
		if err != nil {
			warn(err)
			continue
		}
		if *asHTML {
			return writeHTML(e.stdout, cp, files[i].Path)
		}
		return output(e, cp, data, files[i].Path, *asJSON)
	}
	return fmt.Errorf("no capture of %s in %s", svc, c.dir)
}

func runShow(args []string, e env) error {
	c := newCommand("show", showUsage, e)
	asJSON := c.fs.Bool("json", false, "print the capture file's bytes")
	asHTML := c.fs.Bool("html", false, "print an HTML page")
	pos, err := c.parse(args, e)
	if err != nil {
		return helpOK(err)
	}
	if err := oneFormat(c, *asJSON, *asHTML); err != nil {
		return err
	}
	if err := c.positional(pos, 1, 1); err != nil {
		return err
	}
	cp, data, path, err := readNamed(c.dir, pos[0])
	if err != nil {
		return err
	}
	if *asHTML {
		return writeHTML(e.stdout, cp, path)
	}
	return output(e, cp, data, path, *asJSON)
}

// readNamed reads the capture arg names, and returns its path: an existing
// path as it is (so is anything with a '/', or ending in .json but NAME.json);
// NAME.json, a capture's file
// name as 'list SERVICE' shows it, the capture of that name in whichever
// service's directory holds it; SERVICE@N, the N-th newest capture of
// SERVICE; SERVICE@PREFIX, the one capture of SERVICE whose name starts
// with PREFIX. Anything else is read as a path, for its error to say.
func readNamed(dir, arg string) (*capture.Capture, []byte, string, error) {
	asPath := func() (*capture.Capture, []byte, string, error) {
		cp, data, err := capture.Read(arg)
		if err != nil {
			return nil, nil, arg, withPath(err, arg)
		}
		return cp, data, arg, nil
	}
	if _, err := os.Lstat(arg); err == nil || strings.ContainsRune(arg, '/') {
		return asPath()
	}
	_, isName := capture.ParseFileName(arg)
	i := strings.LastIndexByte(arg, '@')
	isID := i > 0 && capture.ValidService(arg[:i]) == nil
	if !isName && (!isID || strings.HasSuffix(arg, capture.Ext)) {
		return asPath()
	}
	st, err := capture.Open(dir)
	if err != nil {
		return nil, nil, "", err
	}
	defer st.Close()
	var f capture.Entry
	if isName {
		f, err = findName(st, arg)
	} else {
		f, err = resolveID(st, arg[:i], arg[i+1:])
	}
	if err != nil {
		return nil, nil, "", err
	}
	cp, data, err := st.Read(f)
	return cp, data, f.Path, err
}

// findName finds the capture file name in the directory.
func findName(st *capture.Store, name string) (capture.Entry, error) {
	found, err := st.Find(name)
	if err != nil {
		return capture.Entry{}, err
	}
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		return capture.Entry{}, fmt.Errorf("no capture %s in %s, nor a file of that name here", name, st.Dir())
	default:
		var svcs, ids []string
		for _, f := range found {
			svcs = append(svcs, f.Service)
			ids = append(ids, f.Service+"@"+strings.TrimSuffix(name, capture.Ext))
		}
		return capture.Entry{}, fmt.Errorf("ambiguous capture %s: %s each have one of that name (show %s)",
			name, strings.Join(svcs, ", "), strings.Join(ids, " or "))
	}
}

// resolveID finds SERVICE@ID: the id-th newest capture of svc, or the one
// whose name starts with id.
func resolveID(st *capture.Store, svc, id string) (capture.Entry, error) {
	arg := svc + "@" + id
	files, err := st.Files(svc, nil)
	if err != nil {
		return capture.Entry{}, err
	}
	dir := st.Dir()
	if len(files) == 0 {
		return capture.Entry{}, fmt.Errorf("no capture %s: %s has no captures in %s", arg, svc, dir)
	}
	if n, err := strconv.Atoi(id); err == nil && id != "" && id[0] != '+' && id[0] != '-' {
		if n < 1 || n > len(files) {
			return capture.Entry{}, fmt.Errorf("no capture %s: %s has %d captures in %s (%s@1 is the newest)", arg, svc, len(files), dir, svc)
		}
		return files[len(files)-n], nil
	}
	var match []capture.Entry
	for _, f := range files {
		if id != "" && strings.HasPrefix(f.Name, id) {
			match = append(match, f)
		}
	}
	switch len(match) {
	case 1:
		return match[0], nil
	case 0:
		return capture.Entry{}, fmt.Errorf("no capture %s: no capture of %s in %s is named %s…", arg, svc, dir, id)
	default:
		return capture.Entry{}, fmt.Errorf("ambiguous capture %s: %d captures of %s match (%s … %s)",
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
