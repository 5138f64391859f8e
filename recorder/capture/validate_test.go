package capture

import (
	"errors"
	"strings"
	"testing"
)

// good is a capture as the recorder writes it, in one line.
const good = `{"schema":"preflight.capture/v1","service":"s","host":"h","health_url":"http://127.0.0.1/","transition_time":"2026-11-26T03:12:04.123Z","health_error":"HTTP 503","triggers":[{"kind":"health","at":"2026-11-26T03:12:04.123Z","detail":"HTTP 503"}],"health":[{"at":"2026-11-26T03:12:03Z","ok":false,"latency_ms":1.5,"status_code":503,"error":"HTTP 503"}],"samples":[{"at":"2026-11-26T03:12:04Z","cpu":{"percent":1,"user":1,"system":0,"iowait":0,"steal":0,"cpus":2},"load":{"load1":0.1,"load5":0,"load15":0},"memory":{"total_bytes":1,"available_bytes":1,"used_percent":0,"swap_total_bytes":0,"swap_used_bytes":0},"disks":[],"top_cpu":[{"pid":1,"name":"init","cmdline":"/sbin/init","state":"S","cpu_percent":null,"rss_bytes":4096,"threads":1}],"top_memory":[],"processes":1,"service":{"cgroup":"/x","memory_bytes":1,"memory_max_bytes":null,"oom_kills":0,"cpu_throttled_usec":null,"pids":0,"processes":[]}}],"interval_seconds":30,"preflight_version":"x"}`

// Hostile and broken captures are refused with a FieldError naming the
// field, never read as fact.
func TestValidate(t *testing.T) {
	if _, err := Decode([]byte(good)); err != nil {
		t.Fatalf("a good capture: %v", err)
	}
	for _, tc := range []struct {
		name, old, new, field string
	}{
		{"no transition_time", `"transition_time":"2026-11-26T03:12:04.123Z",`, ``, "transition_time"},
		{"zero transition_time", `"transition_time":"2026-11-26T03:12:04.123Z"`, `"transition_time":"0001-01-01T00:00:00Z"`, "transition_time"},
		{"no service", `"service":"s",`, ``, "service"},
		{"no samples", `,"samples":[`, `,"x":[`, "samples"},
		{"duplicate service", `"service":"s",`, `"service":"s","service":"other",`, "service"},
		{"duplicate nested", `"pids":0,`, `"pids":0,"pids":7,`, "samples[0].service.pids"},
		{"huge load", `"load1":0.1`, `"load1":1e308`, "samples[0].load.load1"},
		{"negative percent", `"percent":1,`, `"percent":-5,`, "samples[0].cpu.percent"},
		{"percent over 100", `"used_percent":0,"swap`, `"used_percent":250,"swap`, "samples[0].memory.used_percent"},
		{"huge interval", `"interval_seconds":30`, `"interval_seconds":1e300`, "interval_seconds"},
		{"sample years away", `"at":"2026-11-26T03:12:04Z","cpu"`, `"at":"2029-11-26T03:12:04Z","cpu"`, "samples[0].at"},
		{"sample without time", `"at":"2026-11-26T03:12:04Z","cpu"`, `"cpu"`, "samples[0].at"},
		{"no triggers", `"triggers":[{"kind":"health","at":"2026-11-26T03:12:04.123Z","detail":"HTTP 503"}]`, `"triggers":[]`, "triggers"},
		{"trigger without kind", `"kind":"health",`, ``, "triggers[0].kind"},
		{"PID 0", `"pid":1,`, `"pid":0,`, "samples[0].top_cpu[0].pid"},
		{"latency an hour of years", `"latency_ms":1.5`, `"latency_ms":1e300`, "health[0].latency_ms"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := strings.Replace(good, tc.old, tc.new, 1)
			if in == good {
				t.Fatalf("the case changes nothing")
			}
			_, err := Decode([]byte(in))
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != tc.field {
				t.Fatalf("Decode = %v, want a FieldError naming %s", err, tc.field)
			}
			if !errors.Is(err, ErrNotCapture) || !strings.Contains(err.Error(), tc.field) {
				t.Errorf("error %q is not ErrNotCapture naming %s", err, tc.field)
			}
		})
	}
}

func TestCheckService(t *testing.T) {
	c, err := Decode([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckService(c, "s"); err != nil {
		t.Errorf("own directory: %v", err)
	}
	err = CheckService(c, "other")
	if err == nil || !strings.Contains(err.Error(), `service: "s" disagrees with its directory "other"`) {
		t.Errorf("another directory: %v", err)
	}
}

// BenchmarkDecode is what last and show pay per capture: decoding and
// validating (duplicate keys walk the whole file once more).
func BenchmarkDecode(b *testing.B) {
	data, err := Encode(benchCapture())
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkValidate(b *testing.B) {
	c := benchCapture()
	data, err := Encode(c)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if err := Validate(c, data); err != nil {
			b.Fatal(err)
		}
	}
}
