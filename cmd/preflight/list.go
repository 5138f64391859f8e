package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/preflight-rec/preflight/recorder/capture"
)

const listUsage = `Usage: preflight list [SERVICE] [--json] [--dir DIR]

Without SERVICE: one row per service in the capture directory, with its
number of captures and its newest capture's time, trigger and error.
With SERVICE: one row per capture of that service, oldest first.

Files that are not readable captures are skipped with a warning on stderr.
When there is nothing to list it says so on stderr and exits 1 (with
--json, after printing []).

Examples:
  preflight list
  preflight list dead-drop
  preflight list --json | jq '.[].service'
`

// listedService is one row of 'preflight list --json'.
type listedService struct {
	Service  string         `json:"service"`
	Captures int            `json:"captures"`
	Newest   *listedCapture `json:"newest"` // null when no capture could be read
}

// listedCapture is one row of 'preflight list SERVICE --json'.
type listedCapture struct {
	Service        string    `json:"service"`
	File           string    `json:"file"`
	Path           string    `json:"path"`
	TransitionTime time.Time `json:"transition_time"`
	Triggers       []string  `json:"triggers"`
	HealthError    string    `json:"health_error"`
	Samples        int       `json:"samples"`
	Bytes          int       `json:"bytes"`
}

func runList(args []string, e env) error {
	c := newCommand("list", listUsage, e)
	asJSON := c.fs.Bool("json", false, "print JSON")
	pos, err := c.parse(args, e)
	if err != nil {
		return helpOK(err)
	}
	if err := c.positional(pos, 0, 1); err != nil {
		return err
	}
	if len(pos) == 1 {
		return listService(c.dir, pos[0], *asJSON, e)
	}
	services, err := capture.Services(c.dir)
	if err != nil {
		return err
	}
	var rows []listedService
	for _, svc := range services {
		files, err := capture.Files(c.dir, svc)
		if err != nil {
			e.warnf("skipping %s: %v", filepath.Join(c.dir, svc), err)
			continue
		}
		if len(files) == 0 {
			continue
		}
		row := listedService{Service: svc, Captures: len(files)}
		row.Newest = newestReadable(files, e)
		rows = append(rows, row)
	}
	if *asJSON {
		if rows == nil {
			rows = []listedService{}
		}
		if err := printJSON(e, rows); err != nil {
			return err
		}
	}
	if len(rows) == 0 {
		return fmt.Errorf("no captures in %s", c.dir)
	}
	if *asJSON {
		return nil
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVICE\tCAPTURES\tNEWEST\tTRIGGER\tERROR")
	now := time.Now()
	for _, r := range rows {
		when, trig, herr := "-", "-", "-"
		if n := r.Newest; n != nil {
			when = fmt.Sprintf("%s (%s)", n.TransitionTime.Local().Format("2006-01-02 15:04:05"), ago(now, n.TransitionTime))
			trig = strings.Join(n.Triggers, ",")
			herr = orDash(n.HealthError)
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\n", r.Service, r.Captures, when, trig, cut(herr, 40))
	}
	return tw.Flush()
}

func listService(dir, svc string, asJSON bool, e env) error {
	if err := capture.ValidService(svc); err != nil {
		return usageErr(err.Error())
	}
	files, err := capture.Files(dir, svc)
	if err != nil {
		return err
	}
	rows := []listedCapture{}
	for _, f := range files {
		if lc, err := readListed(f); err != nil {
			e.warnf("skipping %v", err)
		} else {
			rows = append(rows, *lc)
		}
	}
	if asJSON {
		if err := printJSON(e, rows); err != nil {
			return err
		}
	}
	if len(rows) == 0 {
		return fmt.Errorf("no captures of %s in %s", svc, dir)
	}
	if asJSON {
		return nil
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tTRIGGERS\tSAMPLES\tERROR\tFILE")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", r.TransitionTime.Local().Format("2006-01-02 15:04:05.000"),
			strings.Join(r.Triggers, ","), r.Samples, cut(orDash(r.HealthError), 40), r.File)
	}
	return tw.Flush()
}

// newestReadable returns the newest capture of files that reads, warning
// about each newer one that does not.
func newestReadable(files []capture.Entry, e env) *listedCapture {
	for i := len(files) - 1; i >= 0; i-- {
		lc, err := readListed(files[i])
		if err == nil {
			return lc
		}
		e.warnf("skipping %v", err)
	}
	return nil
}

func readListed(f capture.Entry) (*listedCapture, error) {
	c, data, err := capture.Read(f.Path)
	if err != nil {
		if !strings.Contains(err.Error(), f.Path) {
			err = fmt.Errorf("%s: %w", f.Path, err)
		}
		return nil, err
	}
	lc := &listedCapture{
		Service:        f.Service,
		File:           f.Name,
		Path:           f.Path,
		TransitionTime: c.TransitionTime,
		Triggers:       []string{},
		HealthError:    c.HealthError,
		Samples:        len(c.Samples),
		Bytes:          len(data),
	}
	for _, t := range c.Triggers {
		lc.Triggers = append(lc.Triggers, t.Kind)
	}
	return lc, nil
}

func printJSON(e env, v any) error {
	enc := json.NewEncoder(e.stdout)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return errors.New("failed to encode JSON: " + err.Error())
	}
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// cut shortens s to n runes, marking the cut.
func cut(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// ago formats how long before now t was, coarsely: "42s ago", "3h ago".
func ago(now, t time.Time) string {
	d := now.Sub(t)
	if d < 0 {
		return "in the future"
	}
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh ago", int(d.Hours()))
	default:
		return fmt.Sprintf("%dd ago", int(d.Hours()/24))
	}
}
