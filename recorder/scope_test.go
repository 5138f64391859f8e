package recorder

import (
	"strings"
	"testing"

	"github.com/preflight-rec/preflight/cgroup"
)

func TestUnitUnseen(t *testing.T) {
	const root = "/sys/fs/cgroup"
	for _, tc := range []struct {
		name string
		st   cgroup.UnitState
		want string // a part of the reason; "" for none
	}{
		{"inactive: not the recorder's blind spot", cgroup.UnitState{ActiveState: "inactive", SubState: "dead"}, ""},
		{"on its way up", cgroup.UnitState{ActiveState: "active", SubState: "running", JobID: 7}, ""},
		{"failed", cgroup.UnitState{ActiveState: "failed", SubState: "failed"}, ""},
		{"running without a cgroup", cgroup.UnitState{ActiveState: "active", SubState: "running"},
			"cgroup of unit web.service (active) not found under /sys/fs/cgroup"},
		// Debian's postgresql.service: ExecStart=/bin/true, RemainAfterExit.
		{"a oneshot that remains after exit", cgroup.UnitState{ActiveState: "active", SubState: "exited"},
			"unit web.service is active (exited) and runs no process"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := unitUnseen("web.service", tc.st, root)
			if tc.want == "" {
				if got != "" {
					t.Fatalf("reason %q, want none", got)
				}
				return
			}
			if !strings.Contains(got, tc.want) {
				t.Fatalf("reason %q, want it to say %q", got, tc.want)
			}
		})
	}
	if r := unitUnseen("postgresql.service", cgroup.UnitState{ActiveState: "active", SubState: "exited"}, root); !strings.Contains(r, "PREFLIGHT_UNIT") {
		t.Errorf("reason %q does not say what to do", r)
	}
}
