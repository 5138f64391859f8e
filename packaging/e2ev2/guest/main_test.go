package main

import (
	"strings"
	"testing"

	"github.com/preflight-rec/preflight/packaging/e2ev2"
)

func TestVoid(t *testing.T) {
	eater, main := e2ev2.Victim{PID: 20, Name: "dead-drop"}, e2ev2.Victim{PID: 10, Name: "dead-drop"}
	before := e2ev2.UnitState{MainPID: 10, NRestarts: 1}
	for _, tc := range []struct {
		name string
		run  e2ev2.Run
		want string // a word of the reason; "" for a run that counts
	}{
		{"child, eater alone", e2ev2.Run{Scenario: e2ev2.OOMChildStop, Eater: 20, OOMVictims: []e2ev2.Victim{eater}, SystemdResults: []string{"oom-kill"}}, ""},
		{"child, the main process killed after the eater", e2ev2.Run{Scenario: e2ev2.OOMChildStop, Eater: 20, OOMVictims: []e2ev2.Victim{eater, main}, SystemdResults: []string{"oom-kill"}}, "more than the eater"},
		{"child under continue, the main process killed after the eater", e2ev2.Run{Scenario: e2ev2.OOMChildContinue, Eater: 20, OOMVictims: []e2ev2.Victim{eater, main}, SystemdResults: []string{"signal"}}, "more than the eater"},
		// The main process first is no void: the judge fails it.
		{"child, the main process first", e2ev2.Run{Scenario: e2ev2.OOMChildStop, Eater: 20, OOMVictims: []e2ev2.Victim{main, eater}, SystemdResults: []string{"oom-kill"}}, ""},
		{"stop, systemd let the kill pass", e2ev2.Run{Scenario: e2ev2.OOMChildStop, Eater: 20, OOMVictims: []e2ev2.Victim{eater}, Before: before, After: before}, "did not act"},
		{"main under stop", e2ev2.Run{Scenario: e2ev2.OOMMainStop, OOMVictims: []e2ev2.Victim{main}, SystemdResults: []string{"oom-kill"}}, ""},
		{"main under continue", e2ev2.Run{Scenario: e2ev2.OOMMainContinue, OOMVictims: []e2ev2.Victim{main}, SystemdResults: []string{"signal"}}, ""},
		{"no OOM kill at all", e2ev2.Run{Scenario: e2ev2.OOMChildStop, Eater: 20}, ""},
		{"an error in the guest", e2ev2.Run{Scenario: e2ev2.OOMChildStop, Eater: 20, OOMVictims: []e2ev2.Victim{eater, main}, Error: "timed out"}, ""},
	} {
		got := void(tc.run)
		if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
			t.Errorf("%s: void = %q, want %q", tc.name, got, tc.want)
		}
	}
}
