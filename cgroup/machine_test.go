package cgroup

import (
	"slices"
	"testing"
	"time"
)

// at builds a look at an existing cgroup with identity 1.
func at(pids ...int) look { return look{exists: true, id: 1, pids: pids, primary: true} }

// fallback is a look that found the cgroup only in a v1 hierarchy, as
// while systemd removes a hybrid host's cgroup.
func fallback(l look) look { l.primary = false; return l }

func withOOM(l look, n uint64) look { l.oom, l.hasOOM = n, true; return l }

func withID(l look, id uint64) look { l.id = id; return l }

func withMain(l look, pid int) look { l.main = pid; return l }

var gone = look{}

func TestMachine(t *testing.T) {
	type step struct {
		look look
		want []change
	}
	exit := func(d string) change { return change{kind: KindExit, detail: d} }
	oom := func(d string) change { return change{kind: KindOOM, detail: d} }
	mainExit := func(pid int, d string) change { return change{kind: KindExit, detail: d, main: pid} }
	replaced := func(d string) change { return change{kind: KindExit, detail: d, replaced: true} }
	tests := []struct {
		name  string
		steps []step
	}{
		{"first look is a baseline", []step{
			{withOOM(at(1234), 5), nil},
			{withOOM(at(1234), 5), nil},
		}},
		{"emptied once, whoever sees it first", []step{
			{at(1234), nil},
			{at(), []change{exit("cgroup emptied (last pids 1234)")}},
			{at(), nil}, // the poll after the inotify wake-up
			{at(), nil},
		}},
		{"restart after emptying is not a second exit", []step{
			{at(1234), nil},
			{at(), []change{exit("cgroup emptied (last pids 1234)")}},
			{at(1301), nil},
		}},
		{"all replaced between two looks", []step{
			{at(1234, 1240), nil},
			{at(1301), []change{replaced("all processes replaced (1234,1240 → 1301)")}},
			{at(1301), nil},
		}},
		{"one survivor is no exit", []step{
			{at(1234, 1240), nil},
			{at(1240, 1301), nil},
			{at(1240), nil},
		}},
		{"child dies, main lives: nothing", []step{
			{at(10, 11), nil},
			{at(10), nil},
		}},
		{"replacement judged against the last survivors", []step{
			{at(10, 11), nil},
			{at(11), nil},
			{at(12), []change{replaced("all processes replaced (11 → 12)")}},
		}},
		{"removed while populated", []step{
			{at(1234), nil},
			{gone, []change{exit("cgroup removed (last pids 1234)")}},
			{gone, nil},
		}},
		{"removed after emptying: already reported", []step{
			{at(1234), nil},
			{at(), []change{exit("cgroup emptied (last pids 1234)")}},
			{gone, nil},
			{at(1301), nil}, // re-created: picked up again, a baseline
			{at(), []change{exit("cgroup emptied (last pids 1301)")}},
		}},
		{"re-created between two looks", []step{
			{at(1234), nil},
			{withID(at(1301), 2), []change{exit("cgroup re-created (1234 → 1301)")}},
			{withID(at(1301), 2), nil},
			{withID(at(), 2), []change{exit("cgroup emptied (last pids 1301)")}},
		}},
		{"re-created empty", []step{
			{at(7), nil},
			{withID(at(), 2), []change{exit("cgroup re-created (7 → none)")}},
		}},
		{"never populated, then gone", []step{
			{at(), nil},
			{gone, nil},
		}},
		{"absent from the start", []step{
			{gone, nil},
			{at(5), nil},
		}},
		{"oom of a child while main lives", []step{
			{withOOM(at(10, 11), 0), nil},
			{withOOM(at(10), 1), []change{oom("oom_kill 0 → 1")}},
			{withOOM(at(10), 1), nil},
		}},
		{"oom kills the only process: oom, then exit", []step{
			{withOOM(at(10), 0), nil},
			{withOOM(at(), 2), []change{oom("oom_kill 0 → 2"), exit("cgroup emptied (last pids 10)")}},
		}},
		{"unreadable counter keeps its baseline", []step{
			{withOOM(at(10), 1), nil},
			{at(10), nil},
			{withOOM(at(10), 2), []change{oom("oom_kill 1 → 2")}},
		}},
		{"counter of a re-created cgroup starts again", []step{
			{withOOM(at(10), 4), nil},
			{gone, []change{exit("cgroup removed (last pids 10)")}},
			{withOOM(at(20), 0), nil},
			{withOOM(at(20), 1), []change{oom("oom_kill 0 → 1")}},
		}},
		{"counter appears later: a baseline", []step{
			{at(10), nil},
			{withOOM(at(10), 3), nil},
			{withOOM(at(10), 4), []change{oom("oom_kill 3 → 4")}},
		}},
		{"counter of a cgroup born while watched counts from 0, read late", []step{
			{withOOM(at(10), 4), nil},
			{gone, []change{exit("cgroup removed (last pids 10)")}},
			{at(20), nil}, // the v1 memory directory not there yet
			{withOOM(at(20), 1), []change{oom("oom_kill 0 → 1")}},
		}},
		{"born while watched with a kill already counted", []step{
			{gone, nil},
			{withOOM(at(20), 1), []change{oom("oom_kill 0 → 1")}},
		}},
		{"a cgroup lingering in v1 while removed is not born", []step{
			{withOOM(at(10), 10), nil},
			{withOOM(fallback(withID(at(), 2)), 10), []change{exit("cgroup re-created (10 → none)")}},
			{gone, nil},
		}},
		{"the v2 cgroup back after a v1 fallback is born", []step{
			{withOOM(at(10), 10), nil},
			{fallback(withID(at(), 2)), []change{exit("cgroup re-created (10 → none)")}},
			{withID(at(20), 3), nil},
			{withOOM(withID(at(20), 3), 1), []change{oom("oom_kill 0 → 1")}},
		}},
		{"born with a zero counter: nothing", []step{
			{gone, nil},
			{withOOM(at(20), 0), nil},
			{withOOM(at(20), 0), nil},
		}},
		{"main process ends, its workers live on: an exit, once", []step{
			{withMain(at(10, 11, 12), 10), nil},
			{withMain(at(11, 12), 10), []change{mainExit(10, "main process 10 ended (left pids 11,12)")}},
			{withMain(at(11), 10), nil},
			{withMain(at(), 10), []change{exit("cgroup emptied (last pids 11)")}},
		}},
		{"main process and all others end at one look: emptied", []step{
			{withMain(at(10, 11), 10), nil},
			{withMain(at(), 10), []change{exit("cgroup emptied (last pids 10,11)")}},
		}},
		{"main process replaced with all others: replaced", []step{
			{withMain(at(10, 11), 10), nil},
			{withMain(at(20, 21), 10), []change{replaced("all processes replaced (10,11 → 20,21)")}},
		}},
		{"a child ends, the main process lives: nothing", []step{
			{withMain(at(10, 11), 10), nil},
			{withMain(at(10), 10), nil},
		}},
		{"main process never seen: nothing until the cgroup empties", []step{
			{withMain(at(11, 12), 10), nil}, // 10 joined and left between two looks
			{withMain(at(12), 10), nil},
			{withMain(at(), 10), []change{exit("cgroup emptied (last pids 12)")}},
		}},
		{"another main process named, then the old one ends: nothing", []step{
			{withMain(at(10, 11), 10), nil},
			{withMain(at(10, 11), 11), nil},
			{withMain(at(11), 11), nil},
		}},
		{"no main process named: nothing", []step{
			{at(10, 11), nil},
			{at(11), nil},
		}},
		{"many pids are cut in the detail", []step{
			{at(1, 2, 3, 4, 5, 6, 7), nil},
			{at(8), []change{replaced("all processes replaced (1,2,3,4,5,+2 → 8)")}},
		}},
	}
	for _, tt := range tests {
		var m machine
		for i, s := range tt.steps {
			got := m.step(s.look, nil)
			if !slices.Equal(got, s.want) {
				t.Errorf("%s: step %d (%+v): got %+v, want %+v", tt.name, i, s.look, got, s.want)
			}
		}
	}
}

func TestDisjoint(t *testing.T) {
	tests := []struct {
		a, b []int
		want bool
	}{
		{nil, nil, true},
		{[]int{1}, nil, true},
		{[]int{1, 3}, []int{2, 4}, true},
		{[]int{1, 3}, []int{3}, false},
		{[]int{5}, []int{1, 2, 5}, false},
	}
	for _, tt := range tests {
		if got := disjoint(tt.a, tt.b); got != tt.want {
			t.Errorf("disjoint(%v, %v) = %v", tt.a, tt.b, got)
		}
	}
}

func TestMachineLooksDoNotAlias(t *testing.T) {
	// The watcher reuses its PID buffer between looks; the machine must copy.
	var m machine
	buf := []int{10}
	m.step(at(buf...), nil)
	l := at()
	l.pids = buf
	buf[0] = 20 // the next look overwrote the buffer: {10} → {20}
	if got := m.step(l, nil); len(got) != 1 || got[0].detail != "all processes replaced (10 → 20)" {
		t.Errorf("got %+v", got)
	}
}

// A daemon that forks and lets its parent exit at start-up replaces its
// processes within milliseconds of appearing: not a restart. A set that had
// been running for minReplacedAge and is replaced is one.
func TestMachineStartupFork(t *testing.T) {
	t0 := time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC)
	lookAt := func(d time.Duration, pids ...int) look { l := at(pids...); l.at = t0.Add(d); return l }
	var m machine
	for i, tc := range []struct {
		l    look
		want string
	}{
		{lookAt(0), ""},                                                    // the unit's cgroup, empty
		{lookAt(time.Millisecond, 100), ""},                                // the forking parent
		{lookAt(5*time.Millisecond, 101), ""},                              // its daemon child, parent gone
		{lookAt(900*time.Millisecond, 101), ""},                            // running
		{lookAt(3*time.Second, 200), "all processes replaced (101 → 200)"}, // restarted
		{lookAt(3*time.Second+5*time.Millisecond, 201), ""},                // the new one forks too
		{lookAt(4*time.Second, 201), ""},
		{lookAt(5 * time.Second), "cgroup emptied (last pids 201)"},
		{lookAt(6*time.Second, 300), ""},
		{lookAt(6*time.Second+2*time.Millisecond, 301), ""}, // start-up fork after an exit
	} {
		got := m.step(tc.l, nil)
		if (tc.want == "") != (len(got) == 0) || (len(got) > 0 && got[0].detail != tc.want) {
			t.Errorf("look %d: got %v, want %q", i, got, tc.want)
		}
	}
}

func TestMinus(t *testing.T) {
	for _, tc := range []struct{ a, b, want []int }{
		{[]int{1, 2, 3}, []int{2}, []int{1, 3}},
		{[]int{1, 2, 3}, nil, []int{1, 2, 3}},
		{[]int{1, 5}, []int{0, 2, 5, 9}, []int{1}},
		{nil, []int{1}, nil},
		{[]int{4}, []int{4}, nil},
	} {
		if got := minus(tc.a, tc.b); !slices.Equal(got, tc.want) {
			t.Errorf("minus(%v, %v) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}
