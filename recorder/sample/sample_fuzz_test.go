package sample

import (
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// Fuzz targets of the /proc parsers and of redaction. `make fuzz` runs each
// under go test -fuzz; go test runs their seeds and TestSampleMutations.

var statTarget = fuzzTarget{
	name: "FuzzParseStat",
	seeds: []string{
		"24710 (cat) R 24708 24708 5156 0 -1 4194304 100 0 0 0 0 0 0 0 20 0 1 0 284270 3133440 407 18446744073709551615 94007295270912 0\n",
		"1 (a (b) c) S 0 1 1 0 -1 4194560 1 2 3 4 5 6 7 8 20 0 9 0 10 11 12 18446744073709551615\n",
		"2 () Z 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 1 0 0 0 0",
		"3 (x\n) R", "(x) R 1", "99999999999999999999 (x) R",
	},
	check: func(t *testing.T, data []byte) {
		st, err := parseStat(data)
		if err != nil {
			if !errors.Is(err, errParse) {
				t.Fatalf("parseStat error %v does not wrap errParse", err)
			}
			return
		}
		if len(st.Comm) > len(data) || st.State == 0 {
			t.Fatalf("parseStat(%q) = %+v", data, st)
		}
	},
}

var cpuStatTarget = fuzzTarget{
	name: "FuzzParseCPUStat",
	seeds: []string{
		"cpu  189446 0 62827 308075 1027 0 3189 5814 0 0\ncpu0 96268 0 30146 153854 531 0 1557 2881 0 0\ncpu1 93178 0 32681 154221 496 0 1632 2933 0 0\nintr 1 2\n",
		"cpu  1 2 3 4\n", "cpu 1 2 3\n", "intr 1\ncpu 1 2 3 4 5 6 7 8 9 10 11\n", "cpu0 1 2 3 4\n",
	},
	check: func(t *testing.T, data []byte) {
		_, cpus, err := parseCPUStat(data)
		if err != nil && !errors.Is(err, errParse) {
			t.Fatalf("parseCPUStat error %v does not wrap errParse", err)
		}
		if cpus < 0 || cpus > len(data) {
			t.Fatalf("%d cpus from %d bytes", cpus, len(data))
		}
	},
}

var direntTarget = fuzzTarget{
	name:  "FuzzDirentPIDs",
	seeds: []string{string(dirent("1")) + string(dirent("self")) + string(dirent("4194304")), string(dirent("99999999999")), string(dirent("0"))},
	check: func(t *testing.T, data []byte) {
		for _, pid := range direntPIDs(data, nil) {
			if pid <= 0 || pid > 1<<31-1 {
				t.Fatalf("direntPIDs returned pid %d", pid)
			}
		}
	},
}

// secretForms are the ways a secret rides on a command line that Redact
// promises to catch; %s is the secret.
var secretForms = [][]string{
	{"--password=%s"}, {"--token", "%s"}, {"PASSWORD=%s"}, {"https://u:%s@h/"}, {"--db-password", "%s"},
	{"-secret=%s"}, {"--api-key=%s"}, {"sh", "-c", "run --password %s"}, {"curl", "-H", "Authorization: Bearer %s"},
}

var redactTarget = fuzzTarget{
	name: "FuzzRedact",
	seeds: []string{
		"postgres\x00-D\x00/var/lib/postgresql\x00--password=hunter2\x00",
		"sh\x00-c\x00while :; do :; done\x00sh\x00--token\x00abc\x00PASSWORD=x\x00https://u:p@h/",
		"java -Dkey.store.password='a b' -jar app.jar", "--password", "--header=Authorization:", "x\x00'unclosed",
	},
	// data is a /proc/PID/cmdline; its last byte picks a secret form that
	// is appended to it.
	check: func(t *testing.T, data []byte) {
		args := splitCmdline(data)
		out := Redact(args)
		if len(out) > MaxCmdline {
			t.Fatalf("Redact returned %d bytes", len(out))
		}
		valid := true
		for _, a := range args {
			valid = valid && utf8.ValidString(a)
		}
		if valid && !utf8.ValidString(out) {
			t.Fatalf("Redact(%q) = %q: cut inside a rune", args, out)
		}
		if p := printable(out); len(p) > len(out) || strings.ContainsFunc(p, func(r rune) bool { return r < 0x20 || r == 0x7f || r >= 0x80 && r < 0xa0 }) {
			t.Fatalf("printable(%q) = %q", out, p)
		}
		const secret = "Zq7Secret4Fuzz"
		if strings.Contains(string(data), "Zq7") {
			return
		}
		form := secretForms[0]
		if len(data) > 0 {
			form = secretForms[int(data[len(data)-1])%len(secretForms)]
		}
		with := slices.Clone(args)
		for _, f := range form {
			with = append(with, strings.ReplaceAll(f, "%s", secret))
		}
		if out := Redact(with); strings.Contains(out, "Zq7") {
			t.Fatalf("the secret survives in Redact(%q) = %q", with, out)
		}
	},
}

var mountTarget = fuzzTarget{
	name:  "FuzzUnescapeMount",
	seeds: []string{`/mnt/a\040b`, `\134\011\012`, `\999`, `\0`, `/x\04`},
	check: func(t *testing.T, data []byte) {
		if out := unescapeMount(string(data)); len(out) > len(data) {
			t.Fatalf("unescapeMount(%q) = %q grew", data, out)
		}
	},
}

func FuzzParseStat(f *testing.F)     { statTarget.fuzz(f) }
func FuzzParseCPUStat(f *testing.F)  { cpuStatTarget.fuzz(f) }
func FuzzDirentPIDs(f *testing.F)    { direntTarget.fuzz(f) }
func FuzzRedact(f *testing.F)        { redactTarget.fuzz(f) }
func FuzzUnescapeMount(f *testing.F) { mountTarget.fuzz(f) }

func TestSampleMutations(t *testing.T) {
	mutations(t, 5000, statTarget, cpuStatTarget, direntTarget, redactTarget, mountTarget)
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
