package recorder

import (
	"slices"
	"time"

	"github.com/preflight-rec/preflight/cgroup"
	"github.com/preflight-rec/preflight/recorder/capture"
)

// What the recorder makes of systemd's word, where it follows the unit
// over D-Bus (scope.follow):
//
//   - every trigger gets the unit's state as systemd reported it after the
//     trigger, up to the restart (wordFor);
//   - a stop, restart or reload systemd runs on request (a job of that
//     type, started while the unit was up, or a job under which the unit
//     enters a stop state with Result=success: stoppingOnRequest) is not
//     a failure: exit triggers during it are held and dropped if the job
//     ends with Result=success; health failures are not counted; the unit
//     inactive on request is "stopped"; when it is up again, recording
//     resumes with a fresh ring;
//   - the exit of a control process (ExecStartPre=, ExecStop=,
//     ExecReload=: systemd's ControlPID) is not the service's;
//   - the main process systemd names (MainPID, while the unit is active)
//     is the watcher's to watch (cgroup.Watcher.SetMain): its end while
//     others live on is an exit trigger of its own;
//   - an exit after which processes live on (the main process's end, or
//     every process replaced) is a failure only on systemd's word that the
//     unit went down or was restarted (NRestarts moved), or, for the main
//     process's end, once the cgroup's own exit follows it. When systemd
//     names another main process with the unit up, it was a hand-over
//     (MAINPID=), and is dropped. Without a word for holdMax, the recorder
//     asks systemd for the unit's state (scope.askState): its signals may
//     lag, and some changes are never signalled (a main process taken
//     from a re-read PID file: nginx's binary upgrade). The answer, kept
//     aside from the signals (it is not ordered with them), decides: down
//     or restarted, recorded; still naming the main process that ended,
//     asked again (systemd has not reaped it yet), for up to lagMax; else
//     dropped (a hand-over, or a unit that stays active without a main
//     process: ExitType=cgroup, RemainAfterExit=). No answer (an error),
//     or nothing to judge it by: recorded;
//   - any other exit trigger is held until systemd has reacted (the unit
//     went down) or holdMax passed, then recorded.

// Timings of the unit's follower.
const (
	holdMax     = time.Second      // longest an exit trigger waits for systemd's word, before it is recorded or systemd asked
	lagMax      = 5 * time.Second  // longest systemd may go on naming a main process that ended, asked again and again
	wordSettle  = 5 * time.Second  // after this, a trigger's word is final even if the unit never went down
	histKeep    = 10 * time.Minute // states kept for the words of an incident's triggers
	histMax     = 256
	controlKeep = time.Minute // a control process's PID counts as one that long
	// heldMax bounds how long a requested job may hold exit triggers (a
	// stop with TimeoutStopSec=infinity that never ends): then they are
	// recorded.
	heldMax = 15 * time.Minute
)

// unitTrack is the recorder's view of the followed unit.
type unitTrack struct {
	on         bool               // systemd's word is followed
	name       string             // the unit's id
	hist       []cgroup.UnitState // oldest first
	deliberate string             // the requested job running ("stop", "restart", …), "" for none
	wasDown    bool               // the unit went down during the requested job
	stopped    bool               // the unit is inactive on request
	// restarted is when the last requested job ended with the unit up
	// again (a restart).
	restarted time.Time
	held      []heldTrigger
	hold      *time.Timer
	oomNext   bool // an oom trigger is about to be recorded: none from systemd's word (oomFromWord)
	// ask asks systemd for the unit's state now, whose answer comes on
	// answers (scope.askState); false: it cannot. asking: an answer is
	// awaited; askedAt: when the last ask was made; askFailed: its answer
	// was an error.
	ask       func() bool
	answers   chan stateAnswer
	asking    bool
	askedAt   time.Time
	askFailed bool
	// answer is the last answer, when it was no error. It is kept aside,
	// not in hist: read by request, it is not ordered with the signals.
	answer cgroup.UnitState
}

// stateAnswer is systemd's answer when asked for the unit's state.
type stateAnswer struct {
	st  cgroup.UnitState
	err error
}

// heldTrigger is an exit trigger waiting for systemd's word, with the
// sample taken at it.
type heldTrigger struct {
	t trigger
	s capture.Sample
}

// requested reports whether a job type is one an operator asks for to
// stop or restart a running unit.
func requested(job string) bool {
	switch job {
	case "", "start", "verify-active", "verify-started", "nop", "unknown":
		return false
	}
	return true
}

// stoppingOnRequest reports whether st shows systemd stopping the unit
// for a job though the job's type no longer says stop or restart: a
// restart job becomes a start job once its stop half is done, and
// systemd's signals coalesce, so its type may read "start" by the time it
// is asked (the Follower asks when the job appears). What systemd 252
// does (src/core/service.c, src/core/job.c):
//
//   - the stop states (SubState stop, stop-sigterm, stop-sigkill,
//     stop-post) are entered through service_enter_stop() (service_stop()
//     on a stop or restart job; or service_enter_running() when the main
//     process exited cleanly: no job then), through service_enter_signal()
//     from service_enter_running() when the service failed (Result then
//     says how, not success), or through service_enter_stop_by_notify()
//     (STOPPING=1, no job). A crash that leaves processes behind in other
//     states goes through final-sigterm, not stop-sigterm.
//   - job_finish_and_invalidate() patches a JOB_RESTART whose stop half is
//     done into a JOB_START, same job id: a start job on a unit going
//     down is the second half of a restart.
//
// So a stop state with Result=success and a job present, on a unit that
// was active (a start job on an active unit is done at once), is a stop
// on request; as is the unit reported inactive with Result=success under
// the same job it had while active (the stop states coalesced away). A
// stop that times out (Result=timeout) or fails is not matched here, and
// a failure later in the job is one when the job ends (onUnitState).
func stoppingOnRequest(prev, st cgroup.UnitState) bool {
	if st.JobID == 0 || st.Result != "success" || prev.ActiveState != "active" && prev.ActiveState != "reloading" {
		return false
	}
	switch st.SubState {
	case "stop", "stop-sigterm", "stop-sigkill", "stop-post":
		return st.ActiveState == "deactivating"
	case "dead":
		return st.ActiveState == "inactive" && st.JobID == prev.JobID
	}
	return false
}

// isDown reports whether the state says the service went down.
func isDown(s cgroup.UnitState) bool {
	switch {
	case s.SubState == "auto-restart":
		return true
	case s.ActiveState == "failed", s.ActiveState == "inactive", s.ActiveState == "deactivating":
		return true
	}
	return false
}

// isUp reports whether the state says the unit is starting or running
// (not waiting to restart).
func isUp(s cgroup.UnitState) bool {
	return (s.ActiveState == "active" || s.ActiveState == "activating" || s.ActiveState == "reloading") && s.SubState != "auto-restart"
}

// wordFor returns systemd's word on a trigger at at: the latest state
// reported after it, up to (never after) the unit starting again once it
// went down — systemd queueing the start job, resetting Result, or the unit
// coming up; the state at the trigger when nothing was reported since.
// final is true once the unit started again or wordSettle has passed.
func wordFor(hist []cgroup.UnitState, at, now time.Time) (w cgroup.UnitState, ok, final bool) {
	i, _ := slices.BinarySearchFunc(hist, at, func(s cgroup.UnitState, t time.Time) int { return s.At.Compare(t) })
	if i > 0 {
		w, ok = hist[i-1], true
	}
	down := false
	for _, s := range hist[i:] {
		if s.At.Sub(at) >= wordSettle {
			return w, ok, true // later news is another story
		}
		if down && (isUp(s) || s.Job == "start" || s.Result == "success" && w.Result != "success") {
			return w, ok, true
		}
		down = down || isDown(s)
		w, ok = s, true
	}
	return w, ok, now.Sub(at) >= wordSettle
}

// systemdObject is a state as the capture shows it.
func systemdObject(unit string, s cgroup.UnitState) *capture.Systemd {
	at := s.At.UTC()
	return &capture.Systemd{
		Unit:           unit,
		At:             &at,
		Job:            s.Job,
		ControlPID:     s.ControlPID,
		Result:         s.Result,
		NRestarts:      s.NRestarts,
		ExecMainStatus: s.ExecMainStatus,
		ExecMainCode:   s.ExecMainCode,
		MainPID:        s.MainPID,
		ControlGroup:   s.ControlGroup,
		ActiveState:    s.ActiveState,
		SubState:       s.SubState,
	}
}

// isControl reports whether the processes gone are the unit's control
// processes (ExecStartPre=, ExecStop=, ExecReload=, with their children),
// not the service: one of them is a ControlPID systemd reported, and none
// is a MainPID it reported, within controlKeep of now.
func (u *unitTrack) isControl(gone []int, now time.Time) bool {
	control := false
	for _, s := range u.hist {
		if now.Sub(s.At) >= controlKeep {
			continue
		}
		if s.MainPID != nil && *s.MainPID != 0 && slices.Contains(gone, *s.MainPID) {
			return false
		}
		control = control || s.ControlPID != nil && *s.ControlPID != 0 && slices.Contains(gone, *s.ControlPID)
	}
	return control
}

// wentDown reports whether systemd reported the unit down at or after at.
func (u *unitTrack) wentDown(at time.Time) bool {
	for _, s := range slices.Backward(u.hist) {
		if s.At.Before(at.Add(-time.Second)) { // systemd may have spoken before the look that saw it
			return false
		}
		if isDown(s) {
			return true
		}
	}
	return false
}

// onUnitState takes one state systemd reported.
func (r *Recorder) onUnitState(st cgroup.UnitState) {
	u := &r.unit
	var prev cgroup.UnitState
	if len(u.hist) > 0 {
		prev = u.hist[len(u.hist)-1]
		if st.At.Before(prev.At) {
			return // queued before the state following began with (followFrom), which has it
		}
	}
	u.hist = append(u.hist, st)
	// The newest state older than histKeep stays: what the unit was when
	// it last changed, the base of the next exit's fate (fateOf).
	if cut := slices.IndexFunc(u.hist, func(s cgroup.UnitState) bool { return st.At.Sub(s.At) < histKeep }); cut > 1 {
		u.hist = slices.Delete(u.hist, 0, cut-1)
	}
	if len(u.hist) > histMax {
		u.hist = slices.Delete(u.hist, 0, len(u.hist)-histMax)
	}
	log := r.log.With().Str("unit", r.unit.name).Str("active_state", st.ActiveState).Str("sub_state", st.SubState).Str("job", st.Job).Logger()
	log.Debug().Str("result", st.Result).Msg("systemd reported")

	if u.deliberate != "" && isDown(st) {
		u.wasDown = true
	}
	r.noteMain(st)
	switch {
	case u.deliberate == "" && requested(st.Job) && prev.SubState != "auto-restart" && prev.ActiveState != "failed":
		u.deliberate, u.wasDown = st.Job, isDown(st)
		log.Info().Msg("systemd runs a requested " + st.Job + ": not a failure")
	case u.deliberate == "" && stoppingOnRequest(prev, st):
		u.deliberate, u.wasDown = "restart", true
		if st.Job != "start" {
			u.deliberate = "stop"
		}
		log.Info().Msg("systemd stops the unit under a job (now " + st.Job + "): a requested " + u.deliberate + ", not a failure")
	case u.deliberate != "" && st.JobID == 0:
		job := u.deliberate
		u.deliberate = ""
		if st.Result != "success" || st.ActiveState == "failed" {
			log.Warn().Str("result", st.Result).Msg("requested " + job + " ended in failure")
			r.releaseHeld(true)
			break
		}
		r.releaseHeld(false)
		if isUp(st) {
			u.stopped = false // a stopped unit restarted on request runs again
		}
		switch {
		case isUp(st) && !u.wasDown:
			log.Info().Msg("requested " + job + " done; the service stayed up")
		case isUp(st):
			u.restarted = st.At
			r.resumeFresh("requested " + job + " done")
		default:
			u.stopped = true
			log.Info().Msg("service stopped on request: recording paused")
		}
	case u.stopped && isUp(st):
		u.stopped = false
		r.resumeFresh("service started again")
	}
	if u.deliberate == "" {
		r.decideHeld(time.Now())
	}
	r.updateWords(time.Now())
	r.writeState(false)
}

// noteMain has the watcher watch the main process systemd names in st
// while the unit is active: its end is an exit of its own. The watcher
// forgets it once a look finds it gone.
func (r *Recorder) noteMain(st cgroup.UnitState) {
	if r.scope != nil && st.MainPID != nil && *st.MainPID > 0 && (st.ActiveState == "active" || st.ActiveState == "reloading") {
		r.scope.w.SetMain(*st.MainPID)
	}
}

// followFrom takes systemd's word on the unit as it stood when following
// began.
func (r *Recorder) followFrom(st cgroup.UnitState) {
	r.unit.on = true
	r.unit.hist = append(r.unit.hist, st)
	r.noteMain(st)
	if !isUp(st) {
		r.unit.stopped = st.ActiveState == "inactive"
	}
}

// quiet reports whether the service is down on request: its failures
// then say nothing.
func (r *Recorder) quiet() bool { return r.unit.deliberate != "" || r.unit.stopped }

// holdExit holds an exit trigger until systemd's word, or drops it when
// it is a control process's. It reports whether it took the trigger.
//
// A health trigger while exit triggers are held is held with them, and
// so is one while the watcher's last look found the cgroup empty (its exit
// event may not have reached the recorder yet): the service is down, and
// whether on request is what systemd's word will say (a restart's health
// check may fail before systemd's signals arrive). It waits as long as
// the exits before it: a second, or, for one after which processes live
// on, until systemd's answer when asked (callTimeout at most).
func (r *Recorder) holdExit(t trigger, s capture.Sample) bool {
	now := time.Now()
	if r.unit.on && t.kind == capture.TriggerHealth && len(r.unit.held) < maxTriggers && (len(r.unit.held) > 0 || r.cgroupEmpty()) {
		r.unit.held = append(r.unit.held, heldTrigger{t: t, s: s})
		if r.unit.deliberate == "" {
			r.decideHeld(now)
		}
		return true
	}
	if !r.unit.on || t.kind != capture.TriggerExit || t.ev == nil {
		return false
	}
	if r.unit.isControl(t.ev.Gone, now) {
		r.log.Debug().Str("detail", t.detail).Msg("a control process of the unit ended: not the service")
		return true
	}
	if r.unit.stopped {
		// Systemd's word that a requested stop ended came first: the
		// recorder takes it and the watcher's events from two channels,
		// and a cgroup emptied or removed by the stop can come second.
		r.log.Info().Str("trigger", t.kind).Str("detail", t.detail).Msg("down for a requested stop or restart: no capture")
		return true
	}
	if len(r.unit.held) >= maxTriggers {
		r.log.Debug().Str("detail", t.detail).Msg("exit trigger dropped: the most are held already")
		return true
	}
	r.unit.held = append(r.unit.held, heldTrigger{t: t, s: s})
	if r.unit.deliberate == "" {
		r.decideHeld(now)
	}
	return true
}

// afterRestart reports whether the exit trigger t came within a second
// after a requested restart ended: it may be the restart's own (the old
// processes' exit, whose event came after systemd's word), or the new
// service failing at once. Systemd's word after the restart tells which
// (decideHeld).
func (u *unitTrack) afterRestart(t trigger) bool {
	return !u.restarted.IsZero() && t.at.Sub(u.restarted) < time.Second
}

// fate is what systemd said of the unit after an exit whose processes
// live on (survived).
type fate int

const (
	fateUnknown    fate = iota // nothing that tells
	fateDown                   // the unit went down, or was restarted (NRestarts moved)
	fateHandedOver             // another main process, the unit up and not restarted
	fateLagging                // systemd's answer still names the main process that ended: it has not seen its end
)

// fateOf tells what systemd said since the exit t, whose processes live
// on: after its last report naming t's main process as the main one, or,
// for a replacement, since a second before the look that saw it (systemd
// may have spoken first); then, where it was asked since (ans), its
// answer. based is false where no report came before that: nothing to
// tell a restart by.
func (u *unitTrack) fateOf(t trigger, ans *cgroup.UnitState) (f fate, based bool) {
	main, k := t.main(), len(u.hist)-1
	for ; k >= 0; k-- {
		s := u.hist[k]
		if main > 0 && s.MainPID != nil && *s.MainPID == main || main == 0 && s.At.Before(t.at.Add(-time.Second)) {
			break
		}
	}
	if k < 0 {
		return fateUnknown, false
	}
	restarts := u.hist[k].NRestarts
	states := u.hist[k+1:]
	if ans != nil {
		states = append(slices.Clip(states), *ans)
	}
	for i, s := range states {
		switch {
		case isDown(s), s.NRestarts != nil && restarts != nil && *s.NRestarts != *restarts:
			return fateDown, true
		case isUp(s) && s.MainPID != nil && *s.MainPID > 0 && *s.MainPID != main && (main > 0 || slices.Contains(t.ev.PIDs, *s.MainPID)):
			return fateHandedOver, true
		case ans != nil && i == len(states)-1 && main > 0 && s.MainPID != nil && *s.MainPID == main:
			return fateLagging, true
		}
	}
	return fateUnknown, restarts != nil
}

// survived reports whether t is an exit after which processes live on in
// the cgroup: the main process's end, or every process replaced.
func (t trigger) survived() bool {
	return t.kind == capture.TriggerExit && t.ev != nil && (t.ev.Main > 0 || t.ev.Replaced)
}

// downSince reports whether systemd said the unit was down after at.
func (u *unitTrack) downSince(at time.Time) bool {
	for _, s := range slices.Backward(u.hist) {
		if !s.At.After(at) {
			return false
		}
		if isDown(s) {
			return true
		}
	}
	return false
}

// cgroupEmpty reports whether the watcher's last look found the service's
// cgroup, known, without a process: empty, or removed.
func (r *Recorder) cgroupEmpty() bool {
	if r.testCgroupEmpty != nil {
		return r.testCgroupEmpty()
	}
	return r.scope != nil && r.scope.w.Path() != "" && len(r.scope.w.PIDs()) == 0
}

// decideHeld records the held exit triggers systemd has reacted to (the
// unit went down, not on request) or that waited holdMax, and arms the
// timer for the rest. An exit whose processes live on that waited holdMax
// without a word is decided by systemd's answer when asked (unitTrack).
func (r *Recorder) decideHeld(now time.Time) {
	u := &r.unit
	if len(u.held) > 0 && u.deliberate != "" && now.Sub(u.held[0].t.at) >= heldMax {
		r.log.Warn().Str("job", u.deliberate).Msg("requested job still running after 15 minutes: its exits are recorded")
		r.releaseHeld(true)
		return
	}
	for len(u.held) > 0 && u.deliberate == "" {
		h := u.held[0]
		// An exit just after a requested restart is the restart's own
		// unless systemd says the unit went down since it ended.
		restart := h.t.ev != nil && u.afterRestart(h.t)
		down := u.wentDown(h.t.at)
		if restart {
			down = u.downSince(u.restarted)
		}
		// The main process's end followed by the cgroup's own exit is the
		// service dying, as that exit is.
		asked := false // systemd was asked, and said nothing that tells
		if !down && !restart && h.t.survived() && !(h.t.main() > 0 && slices.ContainsFunc(u.held[1:], isCgroupExit)) {
			answered := !u.asking && !u.askedAt.IsZero() && !u.askedAt.Before(h.t.at.Add(holdMax))
			var ans *cgroup.UnitState
			if answered && !u.askFailed {
				ans = &u.answer
			}
			f, based := u.fateOf(h.t, ans)
			switch {
			case f == fateDown:
				down = true
			case f == fateHandedOver, ans != nil && f == fateUnknown && based:
				u.held = u.held[1:]
				msg := "systemd names another main process and the unit is up: a hand-over, no capture"
				if f != fateHandedOver {
					msg = "systemd says the unit is up and was not restarted: no capture"
				}
				r.log.Info().Str("detail", h.t.detail).Msg(msg)
				continue
			case f == fateLagging && now.Sub(h.t.at) < lagMax:
				// Asked, systemd still names the main process that ended:
				// it has not reaped it yet. Asked again shortly.
				u.askedAt = time.Time{}
				u.armHold(holdMax / 4)
				return
			case answered: // no answer, the unit lagging, or nothing to judge the answer by: recorded, as an exit systemd said nothing of
				asked = true
			case now.Sub(h.t.at) < holdMax:
			case u.asking:
				return // its answer decides (onAnswer)
			case u.ask != nil && u.ask():
				u.asking, u.askedAt = true, now
				r.log.Debug().Str("detail", h.t.detail).Msg("no word from systemd on an exit whose processes live on: asking it")
				return
			}
		}
		if !down && !asked && now.Sub(h.t.at) < holdMax {
			u.armHold(holdMax - now.Sub(h.t.at))
			return
		}
		u.held = u.held[1:]
		if restart && !down {
			r.log.Info().Str("trigger", h.t.kind).Str("detail", h.t.detail).Msg("down for a requested stop or restart: no capture")
			continue
		}
		if h.t.ev != nil && u.isControl(h.t.ev.Gone, now) { // systemd named it since
			r.log.Debug().Str("detail", h.t.detail).Msg("a control process of the unit ended: not the service")
			continue
		}
		r.record(h.t, h.s)
	}
}

// armHold has decideHeld run again in d.
func (u *unitTrack) armHold(d time.Duration) {
	if u.hold == nil {
		u.hold = time.NewTimer(d)
	} else {
		u.hold.Reset(d)
	}
}

// onAnswer takes systemd's answer when asked for the unit's state. It is
// kept aside (unitTrack.answer), for the held exits and the main process
// to watch, not taken as a signal: read on request, it is not ordered
// with them, and a job it missed or shows would be misread.
func (r *Recorder) onAnswer(a stateAnswer) {
	u := &r.unit
	u.asking = false
	if !u.on {
		return // systemd's word lost since: its exits were recorded
	}
	u.askFailed = a.err != nil
	if a.err != nil {
		r.log.Warn().Err(a.err).Msg("systemd did not answer for the unit: held exits are recorded")
	} else {
		u.answer = a.st
		r.log.Debug().Str("active_state", a.st.ActiveState).Str("sub_state", a.st.SubState).Msg("systemd answered")
		r.noteMain(a.st)
	}
	if u.deliberate == "" {
		r.decideHeld(time.Now())
	}
}

// isCgroupExit reports whether h is an exit of the cgroup itself: emptied,
// removed or re-created.
func isCgroupExit(h heldTrigger) bool {
	return h.t.kind == capture.TriggerExit && h.t.ev != nil && !h.t.survived()
}

// releaseHeld records (failure) or drops the held triggers.
func (r *Recorder) releaseHeld(failure bool) {
	held := r.unit.held
	r.unit.held = nil
	for _, h := range held {
		if failure {
			r.record(h.t, h.s)
		} else {
			r.log.Info().Str("trigger", h.t.kind).Str("detail", h.t.detail).Msg("down for a requested stop or restart: no capture")
		}
	}
}

// holdC is the timer channel of the held triggers; nil when none.
func (r *Recorder) holdC() <-chan time.Time {
	if r.unit.hold == nil || len(r.unit.held) == 0 {
		return nil
	}
	return r.unit.hold.C
}

// checkHeld is the tick's look at held triggers: a requested job that
// holds them past heldMax.
func (r *Recorder) checkHeld(now time.Time) {
	if len(r.unit.held) > 0 && r.unit.deliberate != "" {
		r.decideHeld(now)
	}
}

// resumeFresh starts recording the service anew after a requested stop or
// restart: a fresh ring, no health history, no open incident.
func (r *Recorder) resumeFresh(why string) {
	if r.inc != nil {
		r.closeIncident()
	}
	r.samples = newRing[capture.Sample](r.cfg.BufferSamples)
	r.checks = newRing[capture.Check](r.cfg.BufferSamples)
	r.healthyOnce, r.unhealthy, r.failures, r.lastError = false, false, 0, ""
	r.log.Info().Str("unit", r.unit.name).Msg(why + ": recording resumes with a fresh ring")
}

// updateWords sets systemd's word on the triggers whose word is not final
// yet, of the open incident and of closed ones (settleWords), and writes a
// capture when one changed.
func (r *Recorder) updateWords(now time.Time) {
	if len(r.unit.hist) == 0 {
		return
	}
	if r.inc != nil && r.inc.updateWords(&r.unit, now) {
		r.inc.dirty = true
		r.write()
	}
	r.settleWords(now)
	if r.inc != nil {
		r.oomFromWord(r.inc)
	}
}

// settleWords sets systemd's word on the triggers of closed incidents
// whose word was not final when a healthy check ended them: systemd's
// signals may come after that check (under load they lag the kill by
// seconds), and the word is the failure's own all the same. A closed
// incident is let go once its words are final (at the latest wordSettle
// after its last trigger).
func (r *Recorder) settleWords(now time.Time) {
	kept := r.settling[:0]
	for _, inc := range r.settling {
		changed := inc.updateWords(&r.unit, now)
		if r.oomFromWord(inc) || changed { // Result=oom-kill after the healthy check
			r.rewriteClosed(inc)
		}
		if !inc.wordsFinal() {
			kept = append(kept, inc)
		}
	}
	clear(r.settling[len(kept):])
	r.settling = kept
}

// updateWords sets systemd's word (as u holds it) on the incident's
// triggers whose word is not final yet, and reports whether one changed.
func (inc *incident) updateWords(u *unitTrack, now time.Time) bool {
	c := &inc.capture
	changed := false
	for i := range c.Triggers {
		tr := &c.Triggers[i]
		if i < len(inc.wordFinal) && inc.wordFinal[i] {
			continue
		}
		w, ok, final := wordFor(u.hist, tr.At, now)
		for len(inc.wordFinal) <= i {
			inc.wordFinal = append(inc.wordFinal, false)
		}
		inc.wordFinal[i] = final
		if !ok {
			continue
		}
		obj := systemdObject(u.name, w)
		if !sameWord(tr.Systemd, obj) {
			tr.Systemd, changed = obj, true
		}
	}
	if changed {
		c.Systemd = c.Triggers[0].Systemd
	}
	return changed
}

// wordsFinal reports whether systemd's word on every trigger is final.
func (inc *incident) wordsFinal() bool {
	return len(inc.wordFinal) == len(inc.capture.Triggers) && !slices.Contains(inc.wordFinal, false)
}

// oomDetail is the detail of an oom trigger recorded on systemd's word.
const oomDetail = "systemd reported Result=oom-kill; the cgroup's oom_kill was not read before it went"

// oomFromWord records an oom trigger, just before the exit it ended
// (recordBefore), where systemd's word on a trigger of inc (open, or
// closed with its words still settling) is Result=oom-kill but the watcher saw no OOM kill:
// the cgroup was removed (OOMPolicy=stop) before its counter was read
// after the kill. Only an exit's word counts: the watcher sends an OOM
// kill it read before the exit that ends the cgroup, so an oom of its own
// is recorded already if there is one (a health check's word may come
// before the watcher's oom; and the word need not be final: systemd's
// signals may lag the incident's end). Its sample is that of the incident's exit trigger (the watcher's
// evidence, not a health check's read) whose evidence was read last, as
// it was read (its read_at says when): nothing in it is made up, so its
// oom_kills may well still be the count before the kill.
// It reports whether it recorded one; a closed incident's capture is the
// caller's to rewrite.
func (r *Recorder) oomFromWord(inc *incident) bool {
	if inc == r.inc && r.unit.oomNext {
		return false
	}
	c := &inc.capture
	best := -1
	var bestAt time.Time
	for i, tr := range c.Triggers {
		if tr.Kind == capture.TriggerOOM {
			return false
		}
		if tr.Kind != capture.TriggerExit || tr.Systemd == nil || tr.Systemd.Result != "oom-kill" {
			continue
		}
		k := len(c.Samples) - len(c.Triggers) + i
		if k < 0 || k >= len(c.Samples) {
			continue
		}
		at := c.Samples[k].At
		if svc := c.Samples[k].Service; svc != nil && svc.ReadAt != nil {
			at = *svc.ReadAt
		}
		if best < 0 || at.After(bestAt) {
			best, bestAt = i, at
		}
	}
	if best < 0 || len(c.Triggers) >= maxTriggers {
		return false
	}
	k := len(c.Samples) - len(c.Triggers) + best
	r.recordBefore(inc, best, trigger{kind: capture.TriggerOOM, at: c.Triggers[best].At, detail: oomDetail}, c.Samples[k])
	if inc.kernelRead && r.kernelWord(inc) && inc == r.inc { // the kernel's count for its sample, where the lines read have it
		r.write()
	}
	return true
}

// sameWord reports whether two words say the same but for when systemd
// said it: the first report of a state stands.
func sameWord(a, b *capture.Systemd) bool {
	if a == nil || b == nil {
		return a == b
	}
	x, y := *a, *b
	x.At, y.At = nil, nil
	eq := func(p, q *int) bool { return p == nil && q == nil || p != nil && q != nil && *p == *q }
	return eq(x.ControlPID, y.ControlPID) && eq(x.NRestarts, y.NRestarts) && eq(x.ExecMainStatus, y.ExecMainStatus) && eq(x.MainPID, y.MainPID) &&
		x.Unit == y.Unit && x.Job == y.Job && x.Result == y.Result && x.ExecMainCode == y.ExecMainCode &&
		x.ControlGroup == y.ControlGroup && x.ActiveState == y.ActiveState && x.SubState == y.SubState
}

// takeEvents takes the cgroup events waiting, without blocking: select
// picks at random among ready cases, and a kill's exit is seen before the
// health check that fails for it.
func (r *Recorder) takeEvents(events <-chan trigger) {
	for {
		select {
		case t, ok := <-events:
			if !ok {
				return
			}
			r.onTrigger(t)
		default:
			return
		}
	}
}
