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

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	done   chan words
	// asked holds the incidents whose words are being read, by capture
	// name: an incident may be over before its words come.
	asked map[string]*incident
}

// words is one reading's result, for the capture named.
type words struct {
	name           string
	kernel         []capture.KernelLine
	kernelMissing  string
	journal        []capture.JournalLine
	journalMissing string
}

func newLastWords(cfg Config, opt Options, log zerolog.Logger) *lastWords {
	ctx, cancel := context.WithCancel(context.Background())
	return &lastWords{
		kmsg:    cmp.Or(opt.KmsgPath, "/dev/kmsg"),
		journal: opt.Journalctl,
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
	w := r.words
	if r.inc == nil {
		return
	}
	c := &r.inc.capture
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
	unit := r.cfg.Unit
	if r.scope != nil {
		unit = r.scope.unit
	}
	trigger := c.TransitionTime
	name := r.inc.name
	w.asked[name] = r.inc
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		res := w.read(name, unit, trigger, f)
		select {
		case w.done <- res:
		case <-w.ctx.Done():
		}
	}()
}

// read waits until the failure's last lines can be in the logs (Grace
// after the trigger), then reads the kernel's and the unit's.
func (w *lastWords) read(name, unit string, trigger time.Time, f *logs.Filter) words {
	res := words{name: name}
	t := time.NewTimer(min(time.Until(trigger.Add(logs.Grace)), logs.Grace)) // a clock stepped back waits no longer
	select {
	case <-w.ctx.Done():
	case <-t.C:
	}
	t.Stop()
	if w.ctx.Err() != nil {
		return res
	}
	res.kernel, res.kernelMissing = w.kernel(trigger, f)
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
func (w *lastWords) kernel(trigger time.Time, f *logs.Filter) ([]capture.KernelLine, string) {
	if len(f.PIDs) == 0 && len(f.Cgroups) == 0 {
		return nil, "the service's processes and cgroup are unknown"
	}
	since := trigger.Add(-w.window)
	lines, kerr := logs.ReadKmsg(w.kmsg, since, f)
	if kerr == nil {
		return lines, ""
	}
	ctx, cancel := context.WithTimeout(w.ctx, lastWordsTimeout)
	defer cancel()
	lines, jerr := w.journal.ReadKernelJournal(ctx, since, time.Now(), f)
	if jerr == nil {
		return lines, ""
	}
	w.log.Debug().AnErr("kmsg", kerr).AnErr("journal", jerr).Msg("no kernel log")
	return nil, fmt.Sprintf("%s: %s; journal: %s", w.kmsg, reason(kerr), reason(jerr))
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
	c.KernelLog, c.KernelLogMissing = w.kernel, w.kernelMissing
	c.Journal, c.JournalMissing = w.journal, w.journalMissing
	if inc == r.inc {
		inc.dirty = true
		r.write()
		return
	}
	r.rewriteClosed(inc)
}
