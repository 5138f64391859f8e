// Package fuzztest is the small, deterministic mutator behind the parsers'
// fuzz tests, for _test.go files only. It imports nothing from preflight.
//
// A [Target] is one fuzz property: a name, seed inputs and a Check that
// fails the test when the property does not hold. A package's fuzz test
// file declares each Target once and runs it twice:
//
//	var uintTarget = fuzztest.Target{Name: "FuzzParseUint", Seeds: []string{"0\n"}, Check: checkUint}
//
//	func FuzzParseUint(f *testing.F)  { uintTarget.Fuzz(f) }
//	func TestMutations(t *testing.T) { fuzztest.Mutations(t, 5000, uintTarget) }
//
// Under go test -fuzz (make fuzz), [Target.Fuzz] adds the seeds and hands
// Check to the fuzzing engine. Under plain go test, [Mutations] runs Check
// over the seeds, those in testdata/fuzz/NAME, and a fixed-seed batch of
// mutations of them, so every run tries the same inputs and a failure names
// the one it met. Inputs are []byte only.
package fuzztest

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// Target is one fuzz property.
type Target struct {
	// Name is the Fuzz function's; testdata/fuzz/Name (relative to the
	// package under test) holds further seeds, in go test fuzz v1 format.
	Name  string
	Seeds []string
	// Check fails t when the property does not hold for data.
	Check func(t *testing.T, data []byte)
}

// Fuzz adds the seeds to f and fuzzes Check; a Fuzz function calls it.
func (tg Target) Fuzz(f *testing.F) {
	for _, s := range tg.Seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(tg.Check)
}

// corpus returns the target's seeds: in code and in testdata/fuzz/NAME.
func (tg Target) corpus(t *testing.T) [][]byte {
	t.Helper()
	var out [][]byte
	for _, s := range tg.Seeds {
		out = append(out, []byte(s))
	}
	files, _ := filepath.Glob(filepath.Join("testdata", "fuzz", tg.Name, "*"))
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

// Mutations runs each target, in a subtest of its Name, over its corpus and
// then over n mutations of it, drawn from a generator seeded by the Name
// alone (the same inputs on every run), and logs how many inputs it tried.
func Mutations(t *testing.T, n int, targets ...Target) {
	t.Helper()
	for _, tg := range targets {
		t.Run(tg.Name, func(t *testing.T) {
			seeds := tg.corpus(t)
			rng := rand.New(rand.NewPCG(6, uint64(len(tg.Name))))
			for _, s := range seeds {
				tg.Check(t, s)
			}
			for i := range n {
				data := Mutate(rng, seeds)
				tg.Check(t, data)
				if t.Failed() {
					t.Fatalf("mutation %d: %q", i, data)
				}
			}
			t.Logf("%s: %d seeds + %d mutations", tg.Name, len(seeds), n)
		})
	}
}

// interesting are the bytes Mutate inserts: separators, quotes, numbers at
// the edges of their types, invalid UTF-8 and path parts.
var interesting = []string{"\x00", "\n", " ", "\t", "=", ":", "(", ")", "-", "0", "9", "18446744073709551616", "-1",
	"\xff", "\"", "{", "}", "[", "]", ",", "/", "..", "%", "\\", "NaN", "1e400", "é"}

// Mutate returns a variation of a seed drawn by rng: one to four bit flips,
// insertions of interesting bytes, deletions, duplications and splices with
// another seed. seeds must not be empty; they are never modified.
func Mutate(rng *rand.Rand, seeds [][]byte) []byte {
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
