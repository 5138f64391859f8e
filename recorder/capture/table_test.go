package capture

import (
	"bytes"
	"reflect"
	"testing"
	"time"
)

// A process that stays in every sample is written once, in process_table,
// and in full in the last sample before the failure and at the trigger;
// Decode gives back the capture as it was.
func TestProcessTableRoundTrip(t *testing.T) {
	t0 := time.Date(2026, 11, 26, 3, 12, 4, 0, time.UTC)
	f := func(v float64) *float64 { return &v }
	proc := func(pid int, cmd string) Process {
		return Process{PID: pid, Name: "worker", Cmdline: cmd, State: "S", CPUPercent: f(1), RSSBytes: 1 << 20, Threads: 2}
	}
	c := &Capture{Schema: Schema, Service: "s", Host: "h", HealthURL: "http://h/", TransitionTime: t0,
		Triggers: []Trigger{{Kind: TriggerHealth, At: t0, Detail: "HTTP 503"}}, Health: []Check{}, PreflightVersion: "t"}
	for i := range 5 {
		s := Sample{At: t0.Add(time.Duration(i-4) * time.Second), TopCPU: []Process{proc(7, "/usr/bin/db --big")},
			TopMemory: []Process{proc(7, "/usr/bin/db --big"), proc(9, "")},
			Service:   &Service{Cgroup: "/x", Processes: []Process{proc(100, "/opt/worker --queue a")}}}
		if i == 2 { // the PID reused by another command: kept inline
			s.Service.Processes = append(s.Service.Processes, proc(7, "/bin/other"))
		}
		if i == 4 {
			s.At, s.Trigger = t0, TriggerHealth
		}
		c.Samples = append(c.Samples, s)
	}
	before := len(c.Samples[0].TopCPU[0].Cmdline)
	data, err := Encode(c)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Samples[0].TopCPU[0].Cmdline) != before {
		t.Fatal("Encode changed the capture it was given")
	}
	if n := bytes.Count(data, []byte(`"/opt/worker --queue a"`)); n != 3 {
		t.Errorf("the service's command line is written %d times, want 3 (table, last before, at the trigger):\n%s", n, data)
	}
	if !bytes.Contains(data, []byte(`"cmdline":"/bin/other"`)) {
		t.Errorf("a reused PID's other command line is not inline:\n%s", data)
	}
	got, err := Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	got.ProcessTable = nil
	if !reflect.DeepEqual(got.Samples, c.Samples) {
		t.Errorf("decoded samples differ:\n got %+v\nwant %+v", got.Samples, c.Samples)
	}
}
