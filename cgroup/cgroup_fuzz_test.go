package cgroup

import (
	"bytes"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/preflight-rec/preflight/recorder/fuzztest"
)

// Fuzz targets of the cgroup and systemctl parsers. `make fuzz` runs each
// under go test -fuzz; go test runs their seeds and TestCgroupMutations.

var uintTarget = fuzztest.Target{
	Name:  "FuzzParseUint",
	Seeds: []string{"0\n", "52428800\n", "  7 \n", "18446744073709551615", "18446744073709551616", "max\n", "-1", "+1", "0x10", "1_000"},
	Check: func(t *testing.T, data []byte) {
		got, err := parseUint(data)
		want, werr := strconv.ParseUint(string(bytes.TrimSpace(data)), 10, 64)
		if (err == nil) != (werr == nil) || got != want && err == nil {
			t.Fatalf("parseUint(%q) = %d, %v; strconv says %d, %v", data, got, err, want, werr)
		}
		if v, err := parseLimit(data); err == nil && v != nil && *v >= v1Unlimited {
			t.Fatalf("parseLimit(%q) = %d: an unlimited value as a limit", data, *v)
		}
	},
}

var keyedTarget = fuzztest.Target{
	Name:  "FuzzParseKeyed",
	Seeds: []string{"low 0\nhigh 0\nmax 12\noom 2\noom_kill 2\noom_group_kill 0\n", "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n", "oom_kill x\n", "populated 1\nfrozen 0\n", "oom_kill"},
	Check: func(t *testing.T, data []byte) {
		v, ok, err := parseKeyed(data, "oom_kill")
		if err != nil && ok || !ok && v != 0 {
			t.Fatalf("parseKeyed(%q) = %d, %v, %v", data, v, ok, err)
		}
		_, _, _ = parsePopulated(data)
	},
}

var pressureTarget = fuzztest.Target{
	Name: "FuzzParsePressure",
	Seeds: []string{
		"some avg10=1.50 avg60=0.80 avg300=0.20 total=123456\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n",
		"some avg10=0.50 avg60=0.10 avg300=0.05 total=1000\n", "full avg10=1\n", "some avg10=NaN\n", "some avg10=Inf\n", "some avg10=-1\n",
	},
	Check: func(t *testing.T, data []byte) {
		p, err := parsePressure(data)
		if err != nil {
			return
		}
		// A NaN or Inf would make every capture holding it unencodable.
		for _, v := range []float64{p.some, p.full} {
			if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
				t.Fatalf("parsePressure(%q) = %+v", data, p)
			}
		}
	},
}

var pidsTarget = fuzztest.Target{
	Name:  "FuzzAppendPIDs",
	Seeds: []string{"1\n2\n3\n", "4194304\n", "2147483648\n", "99999999999\n", "1 2\n", "x\n", ""},
	Check: func(t *testing.T, data []byte) {
		pids, _ := appendPIDs(nil, data)
		for _, p := range pids {
			if p < 0 || p > 1<<31-1 {
				t.Fatalf("appendPIDs(%q) returned %d", data, p)
			}
		}
	},
}

var showTarget = fuzztest.Target{
	Name: "FuzzParseShow",
	Seeds: []string{
		"Result=exit-code\nNRestarts=3\nExecMainStatus=1\nExecMainCode=1\nMainPID=0\nControlGroup=/system.slice/x.service\nActiveState=failed\nSubState=failed\n",
		"NRestarts=[not set]\nMainPID=\n", "NRestarts=x\n", "ExecMainCode=9\r\n", "=\n",
	},
	Check: func(t *testing.T, data []byte) {
		_, _ = parseShow(data)
	},
}

var namesTarget = fuzztest.Target{
	Name:  "FuzzUnitNames",
	Seeds: []string{"dead-drop", "demo@x.service", "my-app@blue", "../../etc", "a/b", "x.slice", ".service", "\x00"},
	Check: func(t *testing.T, data []byte) {
		s := string(data)
		if s != "" {
			p, err := cleanPath(s)
			if err != nil || !strings.HasPrefix(p, "/") || slices.Contains(strings.Split(p, "/"), "..") {
				t.Fatalf("cleanPath(%q) = %q, %v: climbs", s, p, err)
			}
		}
		if u, err := canonicalUnit(s); err == nil && (strings.ContainsAny(u, "/\x00") || u == "." || u == "..") {
			t.Fatalf("canonicalUnit(%q) = %q", s, u)
		}
		if e := escapeUnitPart(s); strings.ContainsAny(e, "/\x00") {
			t.Fatalf("escapeUnitPart(%q) = %q", s, e)
		}
	},
}

func FuzzParseUint(f *testing.F)     { uintTarget.Fuzz(f) }
func FuzzParseKeyed(f *testing.F)    { keyedTarget.Fuzz(f) }
func FuzzParsePressure(f *testing.F) { pressureTarget.Fuzz(f) }
func FuzzAppendPIDs(f *testing.F)    { pidsTarget.Fuzz(f) }
func FuzzParseShow(f *testing.F)     { showTarget.Fuzz(f) }
func FuzzUnitNames(f *testing.F)     { namesTarget.Fuzz(f) }

func TestCgroupMutations(t *testing.T) {
	fuzztest.Mutations(t, 5000, uintTarget, keyedTarget, pressureTarget, pidsTarget, showTarget, namesTarget)
}
