package capture

import (
	"strings"
	"testing"
	"time"
)

func TestEncodeFits(t *testing.T) {
	t0 := time.Date(2026, 11, 26, 3, 12, 4, 0, time.UTC)
	c := &Capture{Schema: Schema, Service: "s", TransitionTime: t0, Triggers: []Trigger{{Kind: TriggerHealth, At: t0}}}
	for i := range 10 {
		c.Samples = append(c.Samples, Sample{At: t0.Add(time.Duration(i) * time.Second),
			TopCPU: []Process{{PID: i + 1, Cmdline: strings.Repeat("x", 1000)}}})
	}
	full, err := encode(c)
	if err != nil {
		t.Fatal(err)
	}
	if data, _ := Encode(c); string(data) != string(full) {
		t.Error("Encode changed a capture within MaxFileSize")
	}
	for _, max := range []int{len(full) - 1, len(full) - 2500, len(full) / 2, 2000} {
		data, err := fit(c, full, max)
		if err != nil {
			t.Fatalf("max %d: %v", max, err)
		}
		got, err := Decode(data)
		if err != nil {
			t.Fatalf("max %d: %v", max, err)
		}
		n := got.SamplesOmitted
		if len(data) > max || n == 0 || len(got.Samples) != 10-n ||
			!got.Samples[len(got.Samples)-1].At.Equal(c.Samples[9].At) || !got.Samples[0].At.Equal(c.Samples[n].At) {
			t.Errorf("max %d: %d bytes, %d samples from %v, %d omitted; want the oldest omitted, the newest kept",
				max, len(data), len(got.Samples), got.Samples[0].At, n)
		}
		// As few as needed: one more sample would not fit.
		more := *c
		more.Samples, more.SamplesOmitted = c.Samples[n-1:], n-1
		if b, _ := encode(&more); len(b) <= max {
			t.Errorf("max %d: %d samples omitted, %d would do (%d bytes)", max, n, n-1, len(b))
		}
	}
	if len(c.Samples) != 10 || c.SamplesOmitted != 0 {
		t.Error("fit changed the capture")
	}
	if _, err := fit(c, full, 500); err == nil {
		t.Error("a capture whose last sample alone is too large fitted")
	}
}
