package capture

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// Fuzz targets of the capture reader: Decode, file names and service
// names. `make fuzz` runs each under go test -fuzz; go test runs their
// seeds and TestCaptureMutations.

var decodeTarget = fuzzTarget{
	name: "FuzzDecode",
	seeds: []string{
		`{"schema":"preflight.capture/v1","service":"s","host":"h","health_url":"http://127.0.0.1/","transition_time":"2026-11-26T03:12:04.123Z","health_error":"HTTP 503","triggers":[{"kind":"health","at":"2026-11-26T03:12:04.123Z","detail":"HTTP 503"}],"health":[{"at":"2026-11-26T03:12:03Z","ok":false,"latency_ms":1.5,"status_code":503,"error":"HTTP 503"}],"samples":[{"at":"2026-11-26T03:12:04Z","cpu":{"percent":1,"user":1,"system":0,"iowait":0,"steal":0,"cpus":2},"load":{"load1":0.1,"load5":0,"load15":0},"memory":{"total_bytes":1,"available_bytes":1,"used_percent":0,"swap_total_bytes":0,"swap_used_bytes":0},"disks":[],"top_cpu":[{"pid":1,"name":"init","cmdline":"/sbin/init","state":"S","cpu_percent":0,"rss_bytes":4096,"threads":1}],"top_memory":[],"processes":1,"service":{"cgroup":"/x","memory_bytes":1,"memory_max_bytes":null,"oom_kills":0,"cpu_throttled_usec":null,"pids":0,"processes":[]}}],"interval_seconds":30,"preflight_version":"x"}`,
		`{"schema":"preflight.capture/v2"}`,
		`{"schema":"preflight.capture/v1","samples":"no"}`,
		`{"schema":"preflight.capture/v1","transition_time":"2026-01-01T00:00:00+23:59"}`,
		`[1,2]`, ``, `null`, `{"schema":null}`,
	},
	check: func(t *testing.T, data []byte) {
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

var fileNameTarget = fuzzTarget{
	name:  "FuzzFileName",
	seeds: []string{"2026-11-26T03-12-04.123Z.json", "2026-02-29T00-00-00.000Z.json", "9999-12-31T23-59-59.999Z.json", ".2026-11-26T03-12-04.123Z.json1", "x.json"},
	check: func(t *testing.T, data []byte) {
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

var serviceTarget = fuzzTarget{
	name:  "FuzzValidService",
	seeds: []string{"dead-drop", "demo@x", "..", ".", "a/../b", "a\x00b", "é", "a_b.c-d@e"},
	check: func(t *testing.T, data []byte) {
		name := string(data)
		if ValidService(name) != nil {
			return
		}
		const dir = "/var/lib/preflight"
		p := filepath.Join(dir, name)
		if filepath.Dir(p) != dir || filepath.Base(p) != name || strings.HasPrefix(name, ".") || len(name) > 128 || !utf8.ValidString(name) {
			t.Fatalf("valid service %q escapes or hides: %s", name, p)
		}
	},
}

func FuzzDecode(f *testing.F)       { decodeTarget.fuzz(f) }
func FuzzFileName(f *testing.F)     { fileNameTarget.fuzz(f) }
func FuzzValidService(f *testing.F) { serviceTarget.fuzz(f) }

func TestCaptureMutations(t *testing.T) {
	mutations(t, 5000, decodeTarget, fileNameTarget, serviceTarget)
}

// ---- a small, deterministic mutator (the same in every package's fuzz file) ----

// fuzzTarget is one fuzz property: a Fuzz function runs it under go test
// -fuzz (make fuzz); plain go test runs it over the seed corpus and over a
// fixed-seed batch of mutations of it.
type fuzzTarget struct {
	name  string // the Fuzz function, whose testdata/fuzz directory holds seeds
	seeds []string
	check func(t *testing.T, data []byte)
}

func (ft fuzzTarget) fuzz(f *testing.F) {
	for _, s := range ft.seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(ft.check)
}

// corpus returns the target's seeds: in code and in testdata/fuzz/NAME.
func (ft fuzzTarget) corpus(t *testing.T) [][]byte {
	var out [][]byte
	for _, s := range ft.seeds {
		out = append(out, []byte(s))
	}
	files, _ := filepath.Glob(filepath.Join("testdata", "fuzz", ft.name, "*"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		if len(lines) != 2 || lines[0] != "go test fuzz v1" || !strings.HasPrefix(lines[1], "[]byte(") {
			t.Fatalf("%s: not a []byte corpus file", f)
		}
		v, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "[]byte("), ")"))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out = append(out, []byte(v))
	}
	return out
}

// mutations runs each target over n mutations of its corpus (fixed seed)
// and logs how many inputs it tried.
func mutations(t *testing.T, n int, targets ...fuzzTarget) {
	for _, ft := range targets {
		t.Run(ft.name, func(t *testing.T) {
			seeds := ft.corpus(t)
			rng := rand.New(rand.NewPCG(6, uint64(len(ft.name))))
			for _, s := range seeds {
				ft.check(t, s)
			}
			for i := range n {
				data := mutate(rng, seeds)
				ft.check(t, data)
				if t.Failed() {
					t.Fatalf("mutation %d: %q", i, data)
				}
			}
			t.Logf("%s: %d seeds + %d mutations", ft.name, len(seeds), n)
		})
	}
}

var interesting = []string{"\x00", "\n", " ", "\t", "=", ":", "(", ")", "-", "0", "9", "18446744073709551616", "-1",
	"\xff", "\"", "{", "}", "[", "]", ",", "/", "..", "%", "\\", "NaN", "1e400", "é"}

// mutate returns a variation of a random seed: bit flips, insertions of
// interesting bytes, deletions, duplications and splices.
func mutate(rng *rand.Rand, seeds [][]byte) []byte {
	b := slices.Clone(seeds[rng.IntN(len(seeds))])
	for range 1 + rng.IntN(4) {
		i := rng.IntN(len(b) + 1)
		switch rng.IntN(5) {
		case 0:
			if i < len(b) {
				b[i] ^= 1 << rng.IntN(8)
			}
		case 1:
			b = slices.Insert(b, i, []byte(interesting[rng.IntN(len(interesting))])...)
		case 2:
			b = slices.Delete(b, i, min(len(b), i+1+rng.IntN(8)))
		case 3:
			j := min(len(b), i+rng.IntN(16))
			b = slices.Insert(b, i, slices.Clone(b[i:j])...)
		case 4:
			o := seeds[rng.IntN(len(seeds))]
			k := rng.IntN(len(o) + 1)
			b = append(b[:i:i], o[k:]...)
		}
	}
	return b
}
