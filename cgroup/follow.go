package cgroup

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/godbus/dbus/v5"
)

// D-Bus names of systemd's manager and its units.
const (
	sdBus       = "org.freedesktop.systemd1"
	sdPath      = dbus.ObjectPath("/org/freedesktop/systemd1")
	sdManager   = "org.freedesktop.systemd1.Manager"
	sdUnit      = "org.freedesktop.systemd1.Unit"
	sdService   = "org.freedesktop.systemd1.Service"
	sdJob       = "org.freedesktop.systemd1.Job"
	dbusProps   = "org.freedesktop.DBus.Properties"
	callTimeout = 2 * time.Second
)

// ErrNoUnit is returned by [FollowUnit] when systemd has no such unit
// (LoadState not-found), or cannot load it.
var ErrNoUnit = errors.New("no such unit")

// UnitInfo is who the unit is, as systemd answers: its real id (an alias
// resolved), its other names, and whether it loaded.
type UnitInfo struct {
	Asked     string   // the name asked for
	ID        string   // e.g. "redis-server.service" when asked for "redis"
	Names     []string // every name of the unit, aliases included
	LoadState string   // "loaded", "not-found", "masked", "bad-setting", "error"
}

// Follower follows one unit's state from systemd over D-Bus, as systemd
// reports it: the properties of its PropertiesChanged signals, applied in
// order, each state with the time it arrived. Create it with [FollowUnit].
// Its methods are safe for concurrent use.
type Follower struct {
	conn *dbus.Conn
	path dbus.ObjectPath
	info UnitInfo

	updates chan UnitState
	sigs    chan *dbus.Signal
	wg      sync.WaitGroup

	mu  sync.Mutex
	cur UnitState
	err error // why following ended, nil while it runs
}

// FollowUnit connects to the system bus, resolves unit (an alias, or a name
// without ".service") to systemd's own unit, subscribes to its changes and
// reads its state. It returns ErrNoSystemd without trying where systemd is
// not PID 1, ErrNoUnit when systemd has no such unit (the Follower is
// returned too, with its UnitInfo), and another error when the bus cannot
// be reached. Close ends it.
func FollowUnit(ctx context.Context, unit string) (*Follower, error) {
	return followUnit(ctx, "/run/systemd/system", unit)
}

func followUnit(ctx context.Context, marker, unit string) (*Follower, error) {
	if _, err := os.Stat(marker); err != nil {
		return nil, ErrNoSystemd
	}
	name, err := canonicalUnit(unit)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	conn, err := dbus.SystemBusPrivate(dbus.WithContext(context.WithoutCancel(ctx)))
	if err != nil {
		return nil, fmt.Errorf("connect to the system bus: %w", err)
	}
	if err := conn.Auth([]dbus.Auth{dbus.AuthExternal(strconv.Itoa(os.Getuid()))}); err != nil {
		conn.Close()
		return nil, fmt.Errorf("authenticate on the system bus: %w", err)
	}
	if err := conn.Hello(); err != nil {
		conn.Close()
		return nil, fmt.Errorf("greet the system bus: %w", err)
	}
	f := &Follower{conn: conn, info: UnitInfo{Asked: unit}, updates: make(chan UnitState, 64),
		sigs: make(chan *dbus.Signal, 64)}
	if err := f.init(ctx, name); err != nil {
		conn.Close()
		if errors.Is(err, ErrNoUnit) {
			return &Follower{info: f.info, err: err}, err
		}
		return nil, err
	}
	f.wg.Add(1)
	go f.loop()
	return f, nil
}

// init loads the unit, subscribes to its signals, then reads its state: a
// change between the two is in the signals.
func (f *Follower) init(ctx context.Context, name string) error {
	mgr := f.conn.Object(sdBus, sdPath)
	if err := mgr.CallWithContext(ctx, sdManager+".LoadUnit", 0, name).Store(&f.path); err != nil {
		return fmt.Errorf("load unit %s: %w", name, err)
	}
	u := f.conn.Object(sdBus, f.path)
	props := map[string]dbus.Variant{}
	if err := u.CallWithContext(ctx, dbusProps+".GetAll", 0, sdUnit).Store(&props); err != nil {
		return fmt.Errorf("read unit %s: %w", name, err)
	}
	f.info.ID, _ = props["Id"].Value().(string)
	f.info.Names, _ = props["Names"].Value().([]string)
	f.info.LoadState, _ = props["LoadState"].Value().(string)
	if f.info.LoadState != "loaded" {
		return fmt.Errorf("unit %s: %w (load state %s)", name, ErrNoUnit, f.info.LoadState)
	}
	if err := f.conn.AddMatchSignalContext(ctx, dbus.WithMatchSender(sdBus), dbus.WithMatchObjectPath(f.path),
		dbus.WithMatchInterface(dbusProps), dbus.WithMatchMember("PropertiesChanged")); err != nil {
		return fmt.Errorf("subscribe to unit %s: %w", f.info.ID, err)
	}
	f.conn.Signal(f.sigs)
	if err := mgr.CallWithContext(ctx, sdManager+".Subscribe", 0).Err; err != nil {
		return fmt.Errorf("subscribe to systemd: %w", err)
	}
	st := UnitState{At: time.Now()}
	apply(&st, props)
	if err := u.CallWithContext(ctx, dbusProps+".GetAll", 0, sdService).Store(&props); err == nil {
		apply(&st, props)
	}
	f.jobType(ctx, &st)
	f.cur = st
	return nil
}

// State asks systemd for the unit's state now, stamped with the time of
// its answer. Its signals may lag (systemd busy, the reader behind) and
// do not tell everything: a main process systemd took from a re-read PID
// file is not signalled. Current is not changed.
func (f *Follower) State(ctx context.Context) (UnitState, error) {
	if f.conn == nil {
		return UnitState{}, fmt.Errorf("state of %s: %w", f.info.Asked, ErrNoUnit)
	}
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	var st UnitState
	u := f.conn.Object(sdBus, f.path)
	// The Service interface first: systemd changes a unit's state in the
	// iteration that reaps its main process, so a death between the two
	// reads shows as the main process still there (a lag the caller can
	// tell), never as the unit still active without it.
	for _, iface := range []string{sdService, sdUnit} {
		props := map[string]dbus.Variant{}
		if err := u.CallWithContext(ctx, dbusProps+".GetAll", 0, iface).Store(&props); err != nil {
			return UnitState{}, fmt.Errorf("read state of %s: %w", f.info.ID, err)
		}
		apply(&st, props)
	}
	f.jobType(ctx, &st)
	st.At = time.Now()
	return st, nil
}

// Info returns who the unit is.
func (f *Follower) Info() UnitInfo { return f.info }

// Updates returns every state systemd reports, in order. It is buffered;
// a reader that falls behind loses intermediate states (never the latest:
// [Follower.Current] has it). It is closed when following ends.
func (f *Follower) Updates() <-chan UnitState { return f.updates }

// Current returns the latest state systemd reported.
func (f *Follower) Current() UnitState {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cur
}

// Err returns why following ended; nil while it runs.
func (f *Follower) Err() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

// ControlGroup asks systemd for the unit's cgroup now (systemd does not
// signal its changes). It returns ErrNotFound when the unit has none (it is
// not running).
func (f *Follower) ControlGroup(ctx context.Context) (string, error) {
	if f.conn == nil {
		return "", fmt.Errorf("cgroup of %s: %w", f.info.Asked, ErrNoUnit)
	}
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	var v dbus.Variant
	if err := f.conn.Object(sdBus, f.path).CallWithContext(ctx, dbusProps+".Get", 0, sdService, "ControlGroup").Store(&v); err != nil {
		return "", fmt.Errorf("read cgroup of %s: %w", f.info.ID, err)
	}
	cg, _ := v.Value().(string)
	if cg == "" {
		return "", fmt.Errorf("cgroup of %s: %w", f.info.ID, ErrNotFound)
	}
	return cg, nil
}

// Close ends following and waits for its goroutine.
func (f *Follower) Close() {
	if f.conn == nil {
		return
	}
	f.conn.Close()
	f.wg.Wait()
}

// loop applies each PropertiesChanged signal to the state and hands the
// result on.
func (f *Follower) loop() {
	defer f.wg.Done()
	defer close(f.updates)
	for sig := range f.sigs {
		if sig.Path != f.path || sig.Name != dbusProps+".PropertiesChanged" || len(sig.Body) < 2 {
			continue
		}
		changed, ok := sig.Body[1].(map[string]dbus.Variant)
		if !ok {
			continue
		}
		f.mu.Lock()
		st := f.cur
		f.mu.Unlock()
		st.At = time.Now()
		oldJob := st.JobID
		apply(&st, changed)
		if st.JobID != oldJob {
			ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
			f.jobType(ctx, &st)
			cancel()
		}
		f.mu.Lock()
		prev := f.cur
		f.cur = st
		f.mu.Unlock()
		if sameState(prev, st) {
			continue // a signal of another interface, with nothing new
		}
		select {
		case f.updates <- st:
		default: // the reader is behind; Current has the latest
		}
	}
	f.mu.Lock()
	f.err = errors.New("system bus connection closed")
	f.mu.Unlock()
}

// jobType reads the type of the unit's running job ("stop", "restart", …).
// A job gone before it could be asked about keeps the type "unknown".
func (f *Follower) jobType(ctx context.Context, st *UnitState) {
	st.Job = ""
	if st.JobID == 0 {
		return
	}
	st.Job = "unknown"
	var v dbus.Variant
	if err := f.conn.Object(sdBus, st.jobPath).CallWithContext(ctx, dbusProps+".Get", 0, sdJob, "JobType").Store(&v); err == nil {
		if s, ok := v.Value().(string); ok {
			st.Job = s
		}
	}
}

// execCodes names siginfo's si_code as systemd reports ExecMainCode.
var execCodes = map[int32]string{1: "exited", 2: "killed", 3: "dumped", 4: "trapped", 5: "stopped", 6: "continued"}

// apply sets the properties of st that props carries.
func apply(st *UnitState, props map[string]dbus.Variant) {
	num := func(v any) *int {
		var n int
		switch x := v.(type) {
		case uint32:
			n = int(x)
		case int32:
			n = int(x)
		case uint64:
			n = int(x)
		default:
			return nil
		}
		return &n
	}
	for k, v := range props {
		val := v.Value()
		switch k {
		case "ActiveState":
			st.ActiveState, _ = val.(string)
		case "SubState":
			st.SubState, _ = val.(string)
		case "Result":
			st.Result, _ = val.(string)
		case "ControlGroup":
			st.ControlGroup, _ = val.(string)
		case "NRestarts":
			st.NRestarts = num(val)
		case "MainPID":
			st.MainPID = num(val)
		case "ControlPID":
			st.ControlPID = num(val)
		case "ExecMainStatus":
			st.ExecMainStatus = num(val)
		case "ExecMainCode":
			c, _ := val.(int32)
			st.ExecMainCode = execCodes[c] // 0: the main process has not ended
		case "Job":
			// (uo): the job's id and object path; (0, "/") for none.
			if j, ok := val.([]any); ok && len(j) == 2 {
				id, _ := j[0].(uint32)
				p, _ := j[1].(dbus.ObjectPath)
				st.JobID, st.jobPath = id, p
			}
		}
	}
}

// sameState reports whether two states are the same but for At.
func sameState(a, b UnitState) bool {
	eq := func(p, q *int) bool { return p == nil && q == nil || p != nil && q != nil && *p == *q }
	return a.Result == b.Result && a.ExecMainCode == b.ExecMainCode && a.ControlGroup == b.ControlGroup &&
		a.ActiveState == b.ActiveState && a.SubState == b.SubState && a.Job == b.Job && a.JobID == b.JobID &&
		eq(a.NRestarts, b.NRestarts) && eq(a.ExecMainStatus, b.ExecMainStatus) && eq(a.MainPID, b.MainPID) && eq(a.ControlPID, b.ControlPID)
}
