package cgroup

import (
	"slices"
	"strconv"
	"testing"
)

func ptr[T any](v T) *T { return &v }

func TestParseUint(t *testing.T) {
	tests := []struct {
		in      string
		want    uint64
		wantErr bool
	}{
		{"0\n", 0, false},
		{"52428800\n", 52428800, false},
		{"  7 \n", 7, false},
		{"18446744073709551615", 1<<64 - 1, false},
		{"18446744073709551616", 0, true},
		{"", 0, true},
		{"\n", 0, true},
		{"max\n", 0, true},
		{"-1", 0, true},
		{"1 2", 0, true},
	}
	for _, tt := range tests {
		got, err := parseUint([]byte(tt.in))
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("parseUint(%q) = %d, %v; want %d, err %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestParseLimit(t *testing.T) {
	tests := []struct {
		in      string
		want    *uint64
		wantErr bool
	}{
		{"max\n", nil, false},
		{"536870912\n", ptr(uint64(536870912)), false},
		{"9223372036854771712\n", nil, false}, // v1 unlimited, 4 KiB pages
		{"9223372036854710272\n", nil, false}, // v1 unlimited, 64 KiB pages
		{"0\n", ptr(uint64(0)), false},
		{"maximum\n", nil, true},
		{"", nil, true},
	}
	for _, tt := range tests {
		got, err := parseLimit([]byte(tt.in))
		if (err != nil) != tt.wantErr || !equalPtr(got, tt.want) {
			t.Errorf("parseLimit(%q) = %v, %v; want %v, err %v", tt.in, show(got), err, show(tt.want), tt.wantErr)
		}
	}
}

func TestParseKeyed(t *testing.T) {
	const events = "low 0\nhigh 0\nmax 12\noom 2\noom_kill 2\noom_group_kill 0\n"
	const v1oom = "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n"
	tests := []struct {
		name, in, key string
		want          uint64
		ok, wantErr   bool
	}{
		{"v2 memory.events", events, "oom_kill", 2, true, false},
		{"prefix key not confused", events, "oom", 2, true, false},
		{"v1 memory.oom_control", v1oom, "oom_kill", 1, true, false},
		{"v1 oom_control of an old kernel", "oom_kill_disable 0\nunder_oom 0\n", "oom_kill", 0, false, false},
		{"cpu.stat throttled", "usage_usec 5\nthrottled_usec 7890\n", "throttled_usec", 7890, true, false},
		{"no trailing newline", "a 1\nb 2", "b", 2, true, false},
		{"absent", "a 1\n", "b", 0, false, false},
		{"empty", "", "a", 0, false, false},
		{"bad value", "a x\n", "a", 0, false, true},
	}
	for _, tt := range tests {
		got, ok, err := parseKeyed([]byte(tt.in), tt.key)
		if got != tt.want || ok != tt.ok || (err != nil) != tt.wantErr {
			t.Errorf("%s: parseKeyed(%q) = %d, %v, %v; want %d, %v, err %v", tt.name, tt.key, got, ok, err, tt.want, tt.ok, tt.wantErr)
		}
	}
}

func TestParsePressure(t *testing.T) {
	tests := []struct {
		name, in string
		want     psi
		wantErr  bool
	}{
		{"some and full", "some avg10=2.25 avg60=1.00 avg300=0.50 total=654321\nfull avg10=1.75 avg60=0.90 avg300=0.40 total=543210\n",
			psi{some: 2.25, full: 1.75, hasFull: true}, false},
		{"cpu before 5.13: some only", "some avg10=0.10 avg60=0.00 avg300=0.00 total=10\n", psi{some: 0.10}, false},
		{"no avg10", "some avg60=1.00 total=1\n", psi{}, true},
		{"bad number", "some avg10=x avg60=1.00\n", psi{}, true},
		{"unknown line", "most avg10=1.00\n", psi{}, true},
		{"empty", "", psi{}, true},
	}
	for _, tt := range tests {
		got, err := parsePressure([]byte(tt.in))
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("%s: parsePressure = %+v, %v; want %+v, err %v", tt.name, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestAppendPIDs(t *testing.T) {
	tests := []struct {
		in      string
		dst     []int
		want    []int
		wantErr bool
	}{
		{"", nil, nil, false},
		{"1234\n", nil, []int{1234}, false},
		{"1240\n1234\n", nil, []int{1240, 1234}, false},
		{"5\n6", []int{1}, []int{1, 5, 6}, false},
		{"100            \n", nil, []int{100}, false},
		{"12\nx\n", nil, []int{12}, true},
		{"99999999999\n", nil, nil, true},
	}
	for _, tt := range tests {
		got, err := appendPIDs(tt.dst, []byte(tt.in))
		if !slices.Equal(got, tt.want) || (err != nil) != tt.wantErr {
			t.Errorf("appendPIDs(%v, %q) = %v, %v; want %v, err %v", tt.dst, tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestParsePopulated(t *testing.T) {
	for in, want := range map[string]bool{"populated 1\nfrozen 0\n": true, "populated 0\nfrozen 0\n": false} {
		got, ok, err := parsePopulated([]byte(in))
		if got != want || !ok || err != nil {
			t.Errorf("parsePopulated(%q) = %v, %v, %v", in, got, ok, err)
		}
	}
	if _, ok, _ := parsePopulated([]byte("frozen 0\n")); ok {
		t.Errorf("parsePopulated without the key reported it")
	}
}

func TestEscapeUnitPart(t *testing.T) {
	tests := map[string]string{
		"demo":      "demo",
		"my-app":    `my\x2dapp`,
		"a.b_c:d":   "a.b_c:d",
		".hidden":   `\x2ehidden`,
		"with/path": "with-path",
		"sp ace":    `sp\x20ace`,
	}
	for in, want := range tests {
		if got := escapeUnitPart(in); got != want {
			t.Errorf("escapeUnitPart(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCanonicalUnit(t *testing.T) {
	tests := []struct {
		in, want string
		wantErr  bool
	}{
		{"dead-drop.service", "dead-drop.service", false},
		{"dead-drop", "dead-drop.service", false},
		{"demo@x", "demo@x.service", false},
		{"session-1.scope", "session-1.scope", false},
		{"foo.bar", "foo.bar.service", false},
		{".service", ".service.service", false},
		{"", "", true},
		{"..", "", true},
		{"a/b.service", "", true},
	}
	for _, tt := range tests {
		got, err := canonicalUnit(tt.in)
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("canonicalUnit(%q) = %q, %v; want %q, err %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestCleanPath(t *testing.T) {
	tests := map[string]string{
		"/system.slice/x.service":    "/system.slice/x.service",
		"system.slice/x.service/":    "/system.slice/x.service",
		"/../../etc":                 "/etc",
		"/a/./b//c":                  "/a/b/c",
		"/":                          "/",
		"/system.slice/../foo.scope": "/foo.scope",
	}
	for in, want := range tests {
		got, err := cleanPath(in)
		if got != want || err != nil {
			t.Errorf("cleanPath(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := cleanPath(""); err == nil {
		t.Errorf("cleanPath(\"\") succeeded")
	}
}

func TestParseShow(t *testing.T) {
	tests := []struct {
		name, in string
		want     UnitState
		wantErr  bool
	}{
		{
			name: "killed and restarted",
			in: "Result=signal\nNRestarts=3\nExecMainStatus=9\nExecMainCode=2\nMainPID=1301\n" +
				"ControlGroup=/system.slice/dead-drop.service\nActiveState=active\nSubState=running\n",
			want: UnitState{Result: "signal", ExecMainCode: "killed", ControlGroup: "/system.slice/dead-drop.service",
				ActiveState: "active", SubState: "running", NRestarts: ptr(3), ExecMainStatus: ptr(9), MainPID: ptr(1301)},
		},
		{
			name: "exited with a code, inactive",
			in:   "Result=exit-code\nNRestarts=0\nExecMainStatus=1\nExecMainCode=1\nMainPID=0\nControlGroup=\nActiveState=failed\nSubState=failed\n",
			want: UnitState{Result: "exit-code", ExecMainCode: "exited", ActiveState: "failed", SubState: "failed",
				NRestarts: ptr(0), ExecMainStatus: ptr(1), MainPID: ptr(0)},
		},
		{
			name: "core dump, oom-kill result, order free, unknown keys ignored",
			in:   "ExecMainCode=3\nResult=oom-kill\nLoadState=loaded\nExecMainStatus=11\n",
			want: UnitState{Result: "oom-kill", ExecMainCode: "dumped", ExecMainStatus: ptr(11)},
		},
		{
			name: "never ran",
			in:   "ExecMainCode=0\nExecMainStatus=0\nNRestarts=[not set]\nMainPID=\n",
			want: UnitState{ExecMainStatus: ptr(0)},
		},
		{
			name: "code unknown here kept as is",
			in:   "ExecMainCode=7\n",
			want: UnitState{ExecMainCode: "7"},
		},
		{
			name: "CRLF and junk lines",
			in:   "Result=success\r\njunk\n\n",
			want: UnitState{Result: "success"},
		},
		{name: "bad number", in: "NRestarts=many\n", wantErr: true},
		{name: "empty", in: "", want: UnitState{}},
	}
	for _, tt := range tests {
		got, err := parseShow([]byte(tt.in))
		if (err != nil) != tt.wantErr {
			t.Errorf("%s: err = %v, want err %v", tt.name, err, tt.wantErr)
			continue
		}
		if !equalUnitState(got, tt.want) {
			t.Errorf("%s: parseShow =\n%+v\nwant\n%+v", tt.name, got, tt.want)
		}
	}
}

func equalUnitState(a, b UnitState) bool {
	return a.Result == b.Result && a.ExecMainCode == b.ExecMainCode && a.ControlGroup == b.ControlGroup &&
		a.ActiveState == b.ActiveState && a.SubState == b.SubState &&
		equalPtr(a.NRestarts, b.NRestarts) && equalPtr(a.ExecMainStatus, b.ExecMainStatus) && equalPtr(a.MainPID, b.MainPID)
}

func equalPtr[T comparable](a, b *T) bool {
	return a == nil && b == nil || a != nil && b != nil && *a == *b
}

func show(p *uint64) string {
	if p == nil {
		return "nil"
	}
	return strconv.FormatUint(*p, 10)
}
