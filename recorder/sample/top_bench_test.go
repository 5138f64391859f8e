package sample

import (
	"math/rand/v2"
	"strconv"
	"testing"
)

// BenchmarkTop is the top-N selection of one sample: the top 5 by CPU and
// the top 5 by RSS among the records of one scan, at a host's scale.
func BenchmarkTop(b *testing.B) {
	for _, n := range []int{100, 2000} {
		b.Run("procs="+strconv.Itoa(n), func(b *testing.B) {
			r := rand.New(rand.NewPCG(1, 2))
			recs := make([]procRec, n)
			for i := range recs {
				recs[i] = procRec{pid: i + 1, cpu: float64(r.IntN(50)) / 10, rss: uint64(r.IntN(1 << 18))}
			}
			var idx []int
			b.ReportAllocs()
			for b.Loop() {
				idx = top(recs, 5, byCPU, idx)
				idx = top(recs, 5, byRSS, idx)
			}
		})
	}
}
