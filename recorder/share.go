package recorder

import (
	"fmt"
	"time"

	"github.com/preflight-rec/preflight/recorder/sample"
)

// The recorders of one process share the host's part of their samples
// (sample.Host): a reading started within sample.ShareWithin serves every
// recorder due then. So that recorders are due together, every recorder of
// the process ticks on one grid: the multiples of its interval since
// tickEpoch. Recorders of equal intervals tick at the same instants, and a
// longer interval's ticks fall on a shorter one's when it is a multiple of
// it (30 s and 1 s, 10 s and 5 s). One timer a recorder, no ticker drift:
// a late tick does not move the next.

// tickEpoch is the origin of every recorder's ticks in this process.
var tickEpoch = time.Now()

// newSampler returns the recorder's sampler: of the shared Host when
// opt.Host is set, else one reading the host alone.
func newSampler(opt Options, topN int) (*sample.Sampler, error) {
	if opt.Host != nil {
		return opt.Host.Sampler(topN)
	}
	return sample.New(opt.ProcRoot, topN)
}

// ticker fires at the multiples of its interval since tickEpoch. After
// each receive from C, call next.
type ticker struct {
	t  *time.Timer
	iv time.Duration
	C  <-chan time.Time
}

func newTicker(iv time.Duration) *ticker {
	t := &ticker{iv: iv}
	t.t = time.NewTimer(t.untilNext())
	t.C = t.t.C
	return t
}

// untilNext is the time to the next multiple of the interval since
// tickEpoch (a whole interval when now is one).
func (t *ticker) untilNext() time.Duration {
	return t.iv - time.Since(tickEpoch)%t.iv
}

// next arms the timer for the next tick.
func (t *ticker) next() { t.t.Reset(t.untilNext()) }

// Stop stops the timer.
func (t *ticker) Stop() { t.t.Stop() }

// SharedHost returns the Host that n recorders of one process share (the
// real /proc): nil for a single recorder, which reads the host alone and
// reuses its buffers.
func SharedHost(n int) (*sample.Host, error) {
	if n < 2 {
		return nil, nil
	}
	h, err := sample.NewHost("/proc")
	if err != nil {
		return nil, fmt.Errorf("start sampling /proc: %w", err)
	}
	return h, nil
}
