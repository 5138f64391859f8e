package cgroup

import (
	"bytes"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// Fuzz targets of the cgroup and systemctl parsers. `make fuzz` runs each
// under go test -fuzz; go test runs their seeds and TestCgroupMutations.

var uintTarget = fuzzTarget{
	name:  "FuzzParseUint",
	seeds: []string{"0\n", "52428800\n", "  7 \n", "18446744073709551615", "18446744073709551616", "max\n", "-1", "+1", "0x10", "1_000"},
	check: func(t *testing.T, data []byte) {
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

var keyedTarget = fuzzTarget{
	name:  "FuzzParseKeyed",
	seeds: []string{"low 0\nhigh 0\nmax 12\noom 2\noom_kill 2\noom_group_kill 0\n", "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n", "oom_kill x\n", "populated 1\nfrozen 0\n", "oom_kill"},
	check: func(t *testing.T, data []byte) {
		v, ok, err := parseKeyed(data, "oom_kill")
		if err != nil && ok || !ok && v != 0 {
			t.Fatalf("parseKeyed(%q) = %d, %v, %v", data, v, ok, err)
		}
		_, _, _ = parsePopulated(data)
	},
}

var pressureTarget = fuzzTarget{
	name: "FuzzParsePressure",
	seeds: []string{
		"some avg10=1.50 avg60=0.80 avg300=0.20 total=123456\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n",
		"some avg10=0.50 avg60=0.10 avg300=0.05 total=1000\n", "full avg10=1\n", "some avg10=NaN\n", "some avg10=Inf\n", "some avg10=-1\n",
	},
	check: func(t *testing.T, data []byte) {
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

var pidsTarget = fuzzTarget{
	name:  "FuzzAppendPIDs",
	seeds: []string{"1\n2\n3\n", "4194304\n", "2147483648\n", "99999999999\n", "1 2\n", "x\n", ""},
	check: func(t *testing.T, data []byte) {
		pids, _ := appendPIDs(nil, data)
		for _, p := range pids {
			if p < 0 || p > 1<<31-1 {
				t.Fatalf("appendPIDs(%q) returned %d", data, p)
			}
		}
	},
}

var showTarget = fuzzTarget{
	name: "FuzzParseShow",
	seeds: []string{
		"Result=exit-code\nNRestarts=3\nExecMainStatus=1\nExecMainCode=1\nMainPID=0\nControlGroup=/system.slice/x.service\nActiveState=failed\nSubState=failed\n",
		"NRestarts=[not set]\nMainPID=\n", "NRestarts=x\n", "ExecMainCode=9\r\n", "=\n",
	},
	check: func(t *testing.T, data []byte) {
		_, _ = parseShow(data)
	},
}

var namesTarget = fuzzTarget{
	name:  "FuzzUnitNames",
	seeds: []string{"dead-drop", "demo@x.service", "my-app@blue", "../../etc", "a/b", "x.slice", ".service", "\x00"},
	check: func(t *testing.T, data []byte) {
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

func FuzzParseUint(f *testing.F)     { uintTarget.fuzz(f) }
func FuzzParseKeyed(f *testing.F)    { keyedTarget.fuzz(f) }
func FuzzParsePressure(f *testing.F) { pressureTarget.fuzz(f) }
func FuzzAppendPIDs(f *testing.F)    { pidsTarget.fuzz(f) }
func FuzzParseShow(f *testing.F)     { showTarget.fuzz(f) }
func FuzzUnitNames(f *testing.F)     { namesTarget.fuzz(f) }

func TestCgroupMutations(t *testing.T) {
	mutations(t, 5000, uintTarget, keyedTarget, pressureTarget, pidsTarget, showTarget, namesTarget)
}

// ---- a small, deterministic mutator (the same in every package's fuzz file) ----

// fuzzTarget is one fuzz property: a Fuzz function runs it under go test
// -fuzz (make fuzz); plain go test runs it over the seed corpus and over a
// fixed-seed batch of mutations of it.
type fuzzTarget struct {
	name  string // the Fuzz function, whose testdata/fuzz directory holds seeds
	seeds []string
	check func(t *testing.T, data []byte)
}

func (ft fuzzTarget) fuzz(f *testing.F) {
	for _, s := range ft.seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(ft.check)
}

// corpus returns the target's seeds: in code and in testdata/fuzz/NAME.
func (ft fuzzTarget) corpus(t *testing.T) [][]byte {
	var out [][]byte
	for _, s := range ft.seeds {
		out = append(out, []byte(s))
	}
	files, _ := filepath.Glob(filepath.Join("testdata", "fuzz", ft.name, "*"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		if len(lines) != 2 || lines[0] != "go test fuzz v1" || !strings.HasPrefix(lines[1], "[]byte(") {
			t.Fatalf("%s: not a []byte corpus file", f)
		}
		v, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "[]byte("), ")"))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out = append(out, []byte(v))
	}
	return out
}

// mutations runs each target over n mutations of its corpus (fixed seed)
// and logs how many inputs it tried.
func mutations(t *testing.T, n int, targets ...fuzzTarget) {
	for _, ft := range targets {
		t.Run(ft.name, func(t *testing.T) {
			seeds := ft.corpus(t)
			rng := rand.New(rand.NewPCG(6, uint64(len(ft.name))))
			for _, s := range seeds {
				ft.check(t, s)
			}
			for i := range n {
				data := mutate(rng, seeds)
				ft.check(t, data)
				if t.Failed() {
					t.Fatalf("mutation %d: %q", i, data)
				}
			}
			t.Logf("%s: %d seeds + %d mutations", ft.name, len(seeds), n)
		})
	}
}

var interesting = []string{"\x00", "\n", " ", "\t", "=", ":", "(", ")", "-", "0", "9", "18446744073709551616", "-1",
	"\xff", "\"", "{", "}", "[", "]", ",", "/", "..", "%", "\\", "NaN", "1e400", "é"}

// mutate returns a variation of a random seed: bit flips, insertions of
// interesting bytes, deletions, duplications and splices.
func mutate(rng *rand.Rand, seeds [][]byte) []byte {
	b := slices.Clone(seeds[rng.IntN(len(seeds))])
	for range 1 + rng.IntN(4) {
		i := rng.IntN(len(b) + 1)
		switch rng.IntN(5) {
		case 0:
			if i < len(b) {
				b[i] ^= 1 << rng.IntN(8)
			}
		case 1:
			b = slices.Insert(b, i, []byte(interesting[rng.IntN(len(interesting))])...)
		case 2:
			b = slices.Delete(b, i, min(len(b), i+1+rng.IntN(8)))
		case 3:
			j := min(len(b), i+rng.IntN(16))
			b = slices.Insert(b, i, slices.Clone(b[i:j])...)
		case 4:
			o := seeds[rng.IntN(len(seeds))]
			k := rng.IntN(len(o) + 1)
			b = append(b[:i:i], o[k:]...)
		}
	}
	return b
}
