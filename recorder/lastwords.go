package recorder

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/preflight-rec/preflight/recorder/capture"
	"github.com/preflight-rec/preflight/recorder/logs"
)

// lastWordsTimeout bounds one reading of the logs (each journalctl run).
const lastWordsTimeout = 5 * time.Second

// lastWords reads, after an incident's capture is first written, what the
// kernel and the journal said about the service (package logs), in a
// goroutine per incident (started at its first trigger): the capture is
// never delayed by it, and is rewritten with the words when they come.
type lastWords struct {
	kmsg    string // /dev/kmsg
	journal logs.Journalctl
	lines   int           // JOURNAL_LINES
	window  time.Duration // TRACE_SECONDS: how far before the first trigger the kernel's lines are looked for
	log     zerolog.Logger
	procs   *Procs // told of each reading (procs.go)

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	done   chan words
	// asked holds the incidents whose words are being read, by capture
	// name: an incident may be over before its words come.
	asked map[string]*incident
}

// words is one reading's result, for the capture named. A reading of
// the kernel's lines again (kernelOnly) leaves the journal's as they are.
type words struct {
	name           string
	kernelOnly     bool
	kernel         []capture.KernelLine
	kernelMissing  string
	ooms           []logs.OOMReport // the OOM kills in all the kernel's lines read
	journal        []capture.JournalLine
	journalMissing string
}

func newLastWords(cfg Config, opt Options, log zerolog.Logger) *lastWords {
	ctx, cancel := context.WithCancel(context.Background())
	return &lastWords{
		kmsg:    cmp.Or(opt.KmsgPath, "/dev/kmsg"),
		journal: opt.Journalctl,
		procs:   opt.Procs,
		lines:   cfg.JournalLines,
		window:  cfg.TraceWindow(),
		log:     log,
		ctx:     ctx,
		cancel:  cancel,
		done:    make(chan words, 1),
		asked:   map[string]*incident{},
	}
}

// stop ends a reading in flight and waits for it.
func (w *lastWords) stop() {
	w.cancel()
	w.wg.Wait()
}

// askLastWords starts reading the logs for the open incident, just
// written: the PIDs and cgroups its samples saw, the unit's journal up to
// its first trigger.
func (r *Recorder) askLastWords() {
	if r.inc == nil {
		return
	}
	unit := r.cfg.Unit
	if r.scope != nil {
		unit = r.scope.unit
	}
	r.askWords(r.inc, unit, r.inc.capture.TransitionTime.Add(logs.Grace), false)
}

// askKernelAgain reads the kernel's lines for inc once more, Grace from
// now: the journal may lag the kernel.
func (r *Recorder) askKernelAgain(inc *incident) {
	inc.rereads++
	r.askWords(inc, "", time.Now().Add(logs.Grace), true)
}

// askWords starts a reading for inc, at when (at most Grace from now).
func (r *Recorder) askWords(inc *incident, unit string, when time.Time, kernelOnly bool) {
	w := r.words
	c := &inc.capture
	f := &logs.Filter{PIDs: map[int]bool{}}
	for _, s := range c.Samples {
		if s.Service == nil {
			continue
		}
		if cg := s.Service.Cgroup; cg != "" && cg != "/" && !slices.Contains(f.Cgroups, cg) {
			f.Cgroups = append(f.Cgroups, cg)
		}
		for _, p := range s.Service.Processes {
			f.PIDs[p.PID] = true
		}
	}
	for _, pids := range inc.gone {
		for _, pid := range pids {
			f.PIDs[pid] = true
		}
	}
	trigger := c.TransitionTime
	name := inc.name
	w.asked[name] = inc
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		res := w.read(name, unit, trigger, when, kernelOnly, f)
		select {
		case w.done <- res:
		case <-w.ctx.Done():
		}
	}()
}

// read waits until when (the failure's last lines can be in the logs:
// Grace after the trigger), then reads the kernel's and the unit's.
func (w *lastWords) read(name, unit string, trigger, when time.Time, kernelOnly bool, f *logs.Filter) words {
	res := words{name: name, kernelOnly: kernelOnly}
	t := time.NewTimer(min(time.Until(when), logs.Grace)) // a clock stepped back waits no longer
	select {
	case <-w.ctx.Done():
	case <-t.C:
	}
	t.Stop()
	if w.ctx.Err() != nil {
		return res
	}
	w.procs.Enter()
	defer w.procs.Leave()
	res.kernel, res.ooms, res.kernelMissing = w.kernel(trigger, f)
	if kernelOnly {
		return res
	}
	if w.lines == 0 {
		res.journalMissing = "disabled (JOURNAL_LINES is 0)"
		return res
	}
	ctx, cancel := context.WithTimeout(w.ctx, lastWordsTimeout)
	defer cancel()
	lines, err := w.journal.ReadJournal(ctx, unit, w.lines, trigger)
	if err != nil {
		w.log.Debug().Err(err).Str("unit", unit).Msg("no journal lines of the unit")
		res.journalMissing = reason(err)
		return res
	}
	res.journal = lines
	return res
}

// kernel reads the kernel's lines about the service: from /dev/kmsg where
// the recorder may read it (root, CAP_SYSLOG), else from the journal's
// kernel transport (the hardened unit: the group systemd-journal).
//
// It returns the lines about the service, the OOM kills reported in all
// the lines read (whichever process they name: the recorder attributes
// them, kernelword.go), or why nothing could be read.
func (w *lastWords) kernel(trigger time.Time, f *logs.Filter) ([]capture.KernelLine, []logs.OOMReport, string) {
	if len(f.PIDs) == 0 && len(f.Cgroups) == 0 {
		return nil, nil, "the service's processes and cgroup are unknown"
	}
	since := trigger.Add(-w.window)
	lines, kerr := logs.KmsgLines(w.kmsg, since)
	if kerr == nil {
		return logs.Select(lines, f), logs.OOMReports(lines), ""
	}
	ctx, cancel := context.WithTimeout(w.ctx, lastWordsTimeout)
	defer cancel()
	lines, jerr := w.journal.KernelLines(ctx, since, time.Now())
	if jerr == nil {
		return logs.Select(lines, f), logs.OOMReports(lines), ""
	}
	w.log.Debug().AnErr("kmsg", kerr).AnErr("journal", jerr).Msg("no kernel log")
	return nil, nil, fmt.Sprintf("%s: %s; journal: %s", w.kmsg, reason(kerr), reason(jerr))
}

// afterKernelLines applies the kernel's word on OOM kills to inc
// (kernelword.go) and reads the kernel's lines again where an exit at the
// memory limit still has none.
func (r *Recorder) afterKernelLines(inc *incident) {
	if r.kernelWord(inc) && inc == r.inc && inc.dirty {
		r.write()
	}
	if r.words.asked[inc.name] == nil && wantKernelAgain(inc) {
		r.askKernelAgain(inc)
	}
}

// reason says in a few words why a log could not be read.
func reason(err error) string {
	switch {
	case errors.Is(err, fs.ErrPermission):
		return "permission denied"
	case errors.Is(err, fs.ErrNotExist):
		return "not found"
	case errors.Is(err, logs.ErrNoJournal), errors.Is(err, logs.ErrNoAccess):
		return strings.TrimPrefix(err.Error(), "journalctl: ")
	}
	return err.Error()
}

// onLastWords adds a reading's words to the incident they were read for
// and rewrites its capture: the open incident's, or a closed one's (a
// service restarted and healthy again within Grace), in place or pending.
func (r *Recorder) onLastWords(w words) {
	inc := r.words.asked[w.name]
	delete(r.words.asked, w.name)
	if inc == nil {
		return
	}
	c := &inc.capture
	if !w.kernelOnly || w.kernelMissing == "" { // a reading again that failed keeps the first's lines
		c.KernelLog, c.KernelLogMissing = w.kernel, w.kernelMissing
		inc.ooms = w.ooms
	}
	if !w.kernelOnly {
		c.Journal, c.JournalMissing = w.journal, w.journalMissing
	}
	inc.kernelRead = true
	inc.dirty = true
	r.afterKernelLines(inc)
	if inc == r.inc {
		if inc.dirty {
			r.write()
		}
		return
	}
	r.rewriteClosed(inc)
}
