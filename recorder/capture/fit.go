package capture

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// fit returns the encoding of c without as few of its oldest samples as
// bring it within max bytes; data is c's full encoding. The samples left
// out are counted in SamplesOmitted. The last sample (the scene at the
// latest trigger) is always kept: a capture whose last sample alone is too
// large is an error. The samples of a capture, the ring before the first
// trigger and then one per trigger, are oldest first, so those that go are
// the ring's oldest.
func fit(c *Capture, data []byte, max int) ([]byte, error) {
	over := len(data) - max + len(`,"samples_omitted":`) + 20
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	drop := 0
	for drop < len(c.Samples)-1 && over > 0 {
		buf.Reset()
		if err := enc.Encode(&c.Samples[drop]); err != nil {
			return nil, fmt.Errorf("failed to encode capture: %w", err)
		}
		over -= buf.Len() // its newline stands for its comma
		drop++
	}
	for {
		cut := *c
		cut.Samples = c.Samples[drop:]
		cut.SamplesOmitted = c.SamplesOmitted + drop
		data, err := encode(&cut)
		if err != nil {
			return nil, err
		}
		if len(data) <= max {
			return data, nil
		}
		if drop >= len(c.Samples)-1 {
			return nil, fmt.Errorf("failed to encode capture: %d bytes with its last sample alone, more than the readers take (%d)", len(data), max)
		}
		drop++
	}
}
