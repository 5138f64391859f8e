package sample

import (
	"time"

	"github.com/preflight-rec/preflight/recorder/capture"
)

// Rates are computed on the monotonic clock (time.Now's reading, never the
// wall time a sample is stamped with), over a window of at least
// [capture.MinRateWindow]: a rate over a few milliseconds (the sample taken
// at a trigger right after a tick, the first sample after the baseline)
// says nothing, and a backward step of the wall clock must not make every
// rate zero.
//
// A window keeps two reference readings at least MinRateWindow apart. A new
// reading is computed against the newer reference when it lies far enough
// back, else against the older one; only a reading MinRateWindow after the
// newer reference becomes a reference itself. So after the first
// MinRateWindow every reading has a base between MinRateWindow and
// 2·MinRateWindow plus one interval back, whatever the interval.

// window holds the reference readings of one rate.
type window[T any] struct {
	ref [2]windowRef[T] // ref[1] the newer
}

type windowRef[T any] struct {
	at time.Time // monotonic
	v  T
	ok bool
}

// base returns the newest reference at least capture.MinRateWindow before
// now, and the time since it; false when there is none.
func (w *window[T]) base(now time.Time) (T, time.Duration, bool) {
	for i := 1; i >= 0; i-- {
		r := w.ref[i]
		if d := now.Sub(r.at); r.ok && d >= capture.MinRateWindow {
			return r.v, d, true
		}
	}
	var zero T
	return zero, 0, false
}

// push makes the reading v at now a reference when it is at least
// capture.MinRateWindow after the newer one (or there is none), and returns
// the reference it evicted, for reuse.
func (w *window[T]) push(now time.Time, v T) (evicted T, pushed bool) {
	if w.ref[1].ok && now.Sub(w.ref[1].at) < capture.MinRateWindow {
		return evicted, false
	}
	evicted = w.ref[0].v
	w.ref[0], w.ref[1] = w.ref[1], windowRef[T]{at: now, v: v, ok: true}
	return evicted, true
}

// Counter turns readings of a cumulative counter, such as a cgroup's CPU
// time in microseconds, into a rate on the monotonic clock over at least
// [capture.MinRateWindow]. The zero value is ready; not safe for
// concurrent use.
type Counter struct {
	// Clock is when a reading is taken; nil: time.Now. Tests inject it.
	Clock func() time.Time

	key string
	w   window[uint64]
}

// Percent records the reading v of the counter identified by key (a cgroup
// path) and returns its growth per second since a reference reading far
// enough back, in percent of perSecond (1e6 for microseconds of CPU time:
// 100 = one CPU). It returns nil when no reference lies far enough back.
// Another key, or a counter that went backwards, starts over.
func (c *Counter) Percent(key string, v uint64, perSecond float64) *float64 {
	now := time.Now()
	if c.Clock != nil {
		now = c.Clock()
	}
	return c.PercentAt(key, v, perSecond, now)
}

// PercentAt is [Counter.Percent] for a reading taken at now (a time.Now
// reading, monotonic), such as the cgroup's evidence read at an event,
// before the sample that carries it. A reading older than the newest
// reference is computed but never becomes a reference.
func (c *Counter) PercentAt(key string, v uint64, perSecond float64, now time.Time) *float64 {
	if key != c.key || c.w.ref[1].ok && v < c.w.ref[1].v {
		c.key, c.w = key, window[uint64]{}
	}
	var out *float64
	if base, d, ok := c.w.base(now); ok && v >= base {
		pct := round2(float64(v-base) / perSecond / d.Seconds() * 100)
		out = &pct
	}
	c.w.push(now, v)
	return out
}
