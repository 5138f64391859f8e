package fuzztest

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// record is a Target whose Check only records the inputs it is given.
func record(name string, seeds []string, got *[][]byte) Target {
	return Target{Name: name, Seeds: seeds, Check: func(_ *testing.T, data []byte) {
		*got = append(*got, slices.Clone(data))
	}}
}

func TestMutationsReadsCorpusAndRepeats(t *testing.T) {
	t.Chdir(t.TempDir())
	dir := filepath.Join("testdata", "fuzz", "FuzzX")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "0a1b"), []byte("go test fuzz v1\n[]byte(\"from\\x00file\")\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var first, second [][]byte
	Mutations(t, 100, record("FuzzX", []string{"a=1\n", ""}, &first))
	Mutations(t, 100, record("FuzzX", []string{"a=1\n", ""}, &second))

	if len(first) != 3+100 {
		t.Fatalf("Check ran %d times, want 3 seeds + 100 mutations", len(first))
	}
	want := [][]byte{[]byte("a=1\n"), {}, []byte("from\x00file")}
	if !slices.EqualFunc(first[:3], want, bytes.Equal) {
		t.Fatalf("corpus %q, want %q", first[:3], want)
	}
	if !slices.EqualFunc(first, second, bytes.Equal) {
		t.Fatal("two runs of Mutations tried different inputs")
	}
}

func TestMutateLeavesSeeds(t *testing.T) {
	seeds := [][]byte{[]byte("some avg10=1.50 total=1\n"), []byte("x"), {}}
	orig := make([][]byte, len(seeds))
	for i, s := range seeds {
		orig[i] = slices.Clone(s)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	changed := 0
	for range 1000 {
		out := Mutate(rng, seeds)
		if !slices.ContainsFunc(seeds, func(s []byte) bool { return bytes.Equal(s, out) }) {
			changed++
		}
	}
	if !slices.EqualFunc(seeds, orig, bytes.Equal) {
		t.Fatalf("Mutate modified its seeds: %q, were %q", seeds, orig)
	}
	if changed == 0 {
		t.Fatal("1000 mutations, none differs from a seed")
	}
}
