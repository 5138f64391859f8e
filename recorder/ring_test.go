package recorder

import (
	"slices"
	"testing"
)

func TestRing(t *testing.T) {
	r := newRing[int](3)
	if got := r.snapshot(); len(got) != 0 {
		t.Fatalf("empty ring: got %v", got)
	}
	for i, want := range [][]int{{1}, {1, 2}, {1, 2, 3}, {2, 3, 4}, {3, 4, 5}, {4, 5, 6}, {5, 6, 7}} {
		r.push(i + 1)
		if got := r.snapshot(); !slices.Equal(got, want) {
			t.Fatalf("after push %d: got %v, want %v", i+1, got, want)
		}
		if r.len() != len(want) {
			t.Fatalf("after push %d: len %d, want %d", i+1, r.len(), len(want))
		}
	}
	// A snapshot is a copy: later pushes do not change it.
	s := r.snapshot()
	r.push(8)
	if !slices.Equal(s, []int{5, 6, 7}) {
		t.Fatalf("snapshot changed under push: %v", s)
	}
}
