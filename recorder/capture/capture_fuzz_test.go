package capture

import (
	"bytes"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/preflight-rec/preflight/recorder/fuzztest"
)

// Fuzz targets of the capture reader: Decode, file names and service
// names. `make fuzz` runs each under go test -fuzz; go test runs their
// seeds and TestCaptureMutations.

var decodeTarget = fuzztest.Target{
	Name: "FuzzDecode",
	Seeds: []string{
		`{"schema":"preflight.capture/v1","service":"s","host":"h","health_url":"http://127.0.0.1/","transition_time":"2026-11-26T03:12:04.123Z","health_error":"HTTP 503","triggers":[{"kind":"health","at":"2026-11-26T03:12:04.123Z","detail":"HTTP 503"}],"health":[{"at":"2026-11-26T03:12:03Z","ok":false,"latency_ms":1.5,"status_code":503,"error":"HTTP 503"}],"samples":[{"at":"2026-11-26T03:12:04Z","cpu":{"percent":1,"user":1,"system":0,"iowait":0,"steal":0,"cpus":2},"load":{"load1":0.1,"load5":0,"load15":0},"memory":{"total_bytes":1,"available_bytes":1,"used_percent":0,"swap_total_bytes":0,"swap_used_bytes":0},"disks":[],"top_cpu":[{"pid":1,"name":"init","cmdline":"/sbin/init","state":"S","cpu_percent":0,"rss_bytes":4096,"threads":1}],"top_memory":[],"processes":1,"service":{"cgroup":"/x","memory_bytes":1,"memory_max_bytes":null,"oom_kills":0,"cpu_throttled_usec":null,"pids":0,"processes":[]}}],"interval_seconds":30,"preflight_version":"x"}`,
		`{"schema":"preflight.capture/v2"}`,
		`{"schema":"preflight.capture/v1","samples":"no"}`,
		`{"schema":"preflight.capture/v1","transition_time":"2026-01-01T00:00:00+23:59"}`,
		`[1,2]`, ``, `null`, `{"schema":null}`,
	},
	Check: func(t *testing.T, data []byte) {
		c, err := Decode(data)
		if err != nil {
			if !errors.Is(err, ErrNotCapture) && !errors.Is(err, ErrNewerSchema) {
				t.Fatalf("Decode error %v is neither ErrNotCapture nor ErrNewerSchema", err)
			}
			return
		}
		if c.Schema != Schema {
			t.Fatalf("decoded schema %q", c.Schema)
		}
		// What the readers print again must decode to the same bytes.
		enc, err := Encode(c)
		if err != nil {
			t.Fatalf("a decoded capture does not encode: %v", err)
		}
		c2, err := Decode(enc)
		if err != nil {
			t.Fatalf("a re-encoded capture does not decode: %v", err)
		}
		if enc2, _ := Encode(c2); !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding is not stable:\n%s\n%s", enc, enc2)
		}
	},
}

var fileNameTarget = fuzztest.Target{
	Name:  "FuzzFileName",
	Seeds: []string{"2026-11-26T03-12-04.123Z.json", "2026-02-29T00-00-00.000Z.json", "9999-12-31T23-59-59.999Z.json", ".2026-11-26T03-12-04.123Z.json1", "x.json"},
	Check: func(t *testing.T, data []byte) {
		name := string(data)
		tm, ok := ParseFileName(name)
		if !ok {
			return
		}
		if got := FileName(tm); got != name {
			t.Fatalf("ParseFileName(%q) = %v, whose FileName is %q", name, tm, got)
		}
	},
}

var serviceTarget = fuzztest.Target{
	Name:  "FuzzValidService",
	Seeds: []string{"dead-drop", "demo@x", "..", ".", "a/../b", "a\x00b", "é", "a_b.c-d@e"},
	Check: func(t *testing.T, data []byte) {
		name := string(data)
		if ValidService(name) != nil {
			return
		}
		const dir = "/var/lib/preflight"
		p := filepath.Join(dir, name)
		if filepath.Dir(p) != dir || filepath.Base(p) != name || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "-") || strings.HasPrefix(name, "@") || len(name) > 128 || !utf8.ValidString(name) {
			t.Fatalf("valid service %q escapes or hides: %s", name, p)
		}
	},
}

func FuzzDecode(f *testing.F)       { decodeTarget.Fuzz(f) }
func FuzzFileName(f *testing.F)     { fileNameTarget.Fuzz(f) }
func FuzzValidService(f *testing.F) { serviceTarget.Fuzz(f) }

func TestCaptureMutations(t *testing.T) {
	fuzztest.Mutations(t, 5000, decodeTarget, fileNameTarget, serviceTarget)
}
