package sample

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/preflight-rec/preflight/recorder/fuzztest"
)

// Fuzz targets of the /proc parsers and of redaction. `make fuzz` runs each
// under go test -fuzz; go test runs their seeds and TestSampleMutations.

var statTarget = fuzztest.Target{
	Name: "FuzzParseStat",
	Seeds: []string{
		"24710 (cat) R 24708 24708 5156 0 -1 4194304 100 0 0 0 0 0 0 0 20 0 1 0 284270 3133440 407 18446744073709551615 94007295270912 0\n",
		"1 (a (b) c) S 0 1 1 0 -1 4194560 1 2 3 4 5 6 7 8 20 0 9 0 10 11 12 18446744073709551615\n",
		"2 () Z 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 1 0 0 0 0",
		"3 (x\n) R", "(x) R 1", "99999999999999999999 (x) R",
	},
	Check: func(t *testing.T, data []byte) {
		st, err := parseStat(data)
		if err != nil {
			if !errors.Is(err, errParse) {
				t.Fatalf("parseStat error %v does not wrap errParse", err)
			}
			return
		}
		if len(st.Comm) > len(data) || st.State == 0 {
			t.Fatalf("parseStat(%q) = %+v", data, st)
		}
	},
}

var cpuStatTarget = fuzztest.Target{
	Name: "FuzzParseCPUStat",
	Seeds: []string{
		"cpu  189446 0 62827 308075 1027 0 3189 5814 0 0\ncpu0 96268 0 30146 153854 531 0 1557 2881 0 0\ncpu1 93178 0 32681 154221 496 0 1632 2933 0 0\nintr 1 2\n",
		"cpu  1 2 3 4\n", "cpu 1 2 3\n", "intr 1\ncpu 1 2 3 4 5 6 7 8 9 10 11\n", "cpu0 1 2 3 4\n",
	},
	Check: func(t *testing.T, data []byte) {
		_, cpus, err := parseCPUStat(data)
		if err != nil && !errors.Is(err, errParse) {
			t.Fatalf("parseCPUStat error %v does not wrap errParse", err)
		}
		if cpus < 0 || cpus > len(data) {
			t.Fatalf("%d cpus from %d bytes", cpus, len(data))
		}
	},
}

var direntTarget = fuzztest.Target{
	Name:  "FuzzDirentPIDs",
	Seeds: []string{string(dirent("1")) + string(dirent("self")) + string(dirent("4194304")), string(dirent("99999999999")), string(dirent("0"))},
	Check: func(t *testing.T, data []byte) {
		for _, pid := range direntPIDs(data, nil) {
			if pid <= 0 || pid > 1<<31-1 {
				t.Fatalf("direntPIDs returned pid %d", pid)
			}
		}
	},
}

// secretForms are the ways a secret rides on a command line that Redact
// promises to catch; %s is the secret.
var secretForms = [][]string{
	{"--password=%s"}, {"--token", "%s"}, {"PASSWORD=%s"}, {"https://u:%s@h/"}, {"--db-password", "%s"},
	{"-secret=%s"}, {"--api-key=%s"}, {"sh", "-c", "run --password %s"}, {"curl", "-H", "Authorization: Bearer %s"},
}

var redactTarget = fuzztest.Target{
	Name: "FuzzRedact",
	Seeds: []string{
		"postgres\x00-D\x00/var/lib/postgresql\x00--password=hunter2\x00",
		"sh\x00-c\x00while :; do :; done\x00sh\x00--token\x00abc\x00PASSWORD=x\x00https://u:p@h/",
		"java -Dkey.store.password='a b' -jar app.jar", "--password", "--header=Authorization:", "x\x00'unclosed",
	},
	// data is a /proc/PID/cmdline; its last byte picks a secret form that
	// is appended to it.
	Check: func(t *testing.T, data []byte) {
		args := splitCmdline(data)
		out := Redact(args)
		if len(out) > MaxCmdline {
			t.Fatalf("Redact returned %d bytes", len(out))
		}
		valid := true
		for _, a := range args {
			valid = valid && utf8.ValidString(a)
		}
		if valid && !utf8.ValidString(out) {
			t.Fatalf("Redact(%q) = %q: cut inside a rune", args, out)
		}
		if p := printable(out); len(p) > len(out) || strings.ContainsFunc(p, func(r rune) bool { return r < 0x20 || r == 0x7f || r >= 0x80 && r < 0xa0 }) {
			t.Fatalf("printable(%q) = %q", out, p)
		}
		const secret = "Zq7Secret4Fuzz"
		if strings.Contains(string(data), "Zq7") {
			return
		}
		form := secretForms[0]
		if len(data) > 0 {
			form = secretForms[int(data[len(data)-1])%len(secretForms)]
		}
		with := slices.Clone(args)
		for _, f := range form {
			with = append(with, strings.ReplaceAll(f, "%s", secret))
		}
		if out := Redact(with); strings.Contains(out, "Zq7") {
			t.Fatalf("the secret survives in Redact(%q) = %q", with, out)
		}
	},
}

var mountTarget = fuzztest.Target{
	Name:  "FuzzUnescapeMount",
	Seeds: []string{`/mnt/a\040b`, `\134\011\012`, `\999`, `\0`, `/x\04`},
	Check: func(t *testing.T, data []byte) {
		if out := unescapeMount(string(data)); len(out) > len(data) {
			t.Fatalf("unescapeMount(%q) = %q grew", data, out)
		}
	},
}

func FuzzParseStat(f *testing.F)     { statTarget.Fuzz(f) }
func FuzzParseCPUStat(f *testing.F)  { cpuStatTarget.Fuzz(f) }
func FuzzDirentPIDs(f *testing.F)    { direntTarget.Fuzz(f) }
func FuzzRedact(f *testing.F)        { redactTarget.Fuzz(f) }
func FuzzUnescapeMount(f *testing.F) { mountTarget.Fuzz(f) }

func TestSampleMutations(t *testing.T) {
	fuzztest.Mutations(t, 5000, statTarget, cpuStatTarget, direntTarget, redactTarget, mountTarget)
}
