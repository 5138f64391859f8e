package capture

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestFileName(t *testing.T) {
	at := time.Date(2026, 11, 26, 3, 12, 4, 123_456_789, time.FixedZone("CET", 3600))
	name := FileName(at)
	if name != "2026-11-26T02-12-04.123Z.json" {
		t.Fatalf("FileName = %q", name)
	}
	got, ok := ParseFileName(name)
	if !ok || !got.Equal(at.Truncate(time.Millisecond)) {
		t.Fatalf("ParseFileName(%q) = %v, %v", name, got, ok)
	}
	for _, bad := range []string{"", "x.json", "2026-11-26T02-12-04Z.json", "2026-11-26T02-12-04.123Z.txt",
		".2026-11-26T02-12-04.123Z.json", "2026-11-26T02-12-04.123Z.json.tmp", "2026-13-26T02-12-04.123Z.json"} {
		if _, ok := ParseFileName(bad); ok {
			t.Errorf("ParseFileName(%q) accepted", bad)
		}
	}
}

func TestValidService(t *testing.T) {
	for name, ok := range map[string]bool{
		"dead-drop": true, "demo@x": true, "a_b.c-d@e": true, "X9": true,
		"": false, ".": false, "..": false, ".hidden": false, "a/b": false, "../x": false,
		"a b": false, "é": false, string(make([]byte, 129)): false,
		// Names the readers' command lines would take for a flag or an id.
		"-x": false, "--json": false, "@": false, "@2": false, "_x": false, "9lives": true, "x-": true,
	} {
		if err := ValidService(name); (err == nil) != ok {
			t.Errorf("ValidService(%q) = %v, want ok=%v", name, err, ok)
		}
	}
}

func TestEncodeDecode(t *testing.T) {
	at := time.Date(2026, 11, 26, 3, 12, 4, 0, time.UTC)
	c := &Capture{Schema: Schema, Service: "s", HealthURL: "http://127.0.0.1/?a=<b>&c", TransitionTime: at,
		Triggers: []Trigger{{Kind: TriggerOOM, At: at, Detail: "oom_kill 0 → 1"}}}
	data, err := Encode(c)
	if err != nil {
		t.Fatal(err)
	}
	if data[len(data)-1] != '\n' || slices.Contains(data[:len(data)-1], '\n') {
		t.Errorf("want compact JSON and one newline: %q", data)
	}
	got, err := Decode(data)
	if err != nil || got.HealthURL != c.HealthURL || got.Triggers[0].Detail != "oom_kill 0 → 1" {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	for in, want := range map[string]error{
		`{"schema":"preflight.capture/v2"}`: ErrNewerSchema,
		`{"schema":"other"}`:                ErrNotCapture,
		`{"schema":"preflight.capt`:         ErrNotCapture,
		`[1,2]`:                             ErrNotCapture,
		``:                                  ErrNotCapture,
		`{"schema":"preflight.capture/v1","samples":"no"}`: ErrNotCapture,
	} {
		if _, err := Decode([]byte(in)); !errors.Is(err, want) {
			t.Errorf("Decode(%q) = %v, want %v", in, err, want)
		}
	}
}

func TestReadFileRefuses(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	os.Symlink("/etc/hostname", link)
	big := filepath.Join(dir, "big")
	f, _ := os.Create(big)
	f.Truncate(MaxFileSize + 1)
	f.Close()
	for path, want := range map[string]error{fifo: ErrNotRegular, link: ErrNotRegular, dir: ErrNotRegular, big: ErrTooLarge} {
		if _, err := ReadFile(path); !errors.Is(err, want) {
			t.Errorf("ReadFile(%s) = %v, want %v", filepath.Base(path), err, want)
		}
	}
}

// fourCaptures makes a capture directory whose service "s" holds four
// captures; it returns the directory, its "s" and their names, oldest first.
func fourCaptures(t *testing.T) (dir, sdir string, names []string) {
	t.Helper()
	dir = t.TempDir()
	sdir = filepath.Join(dir, "s")
	os.Mkdir(sdir, 0o750)
	names = []string{"2026-01-01T00-00-00.000Z.json", "2026-01-02T00-00-00.000Z.json", "2026-01-03T00-00-00.000Z.json", "2026-01-04T00-00-00.000Z.json"}
	for _, n := range names {
		os.WriteFile(filepath.Join(sdir, n), []byte("{}"), 0o640)
	}
	return dir, sdir, names
}

func TestFilesAndRetain(t *testing.T) {
	dir, sdir, names := fourCaptures(t)
	// Not captures: never listed, never removed.
	os.WriteFile(filepath.Join(sdir, "notes.json"), nil, 0o640)
	os.Mkdir(filepath.Join(sdir, "2025-01-01T00-00-00.000Z.json"), 0o750)
	os.Symlink("/etc/hostname", filepath.Join(sdir, "2025-01-02T00-00-00.000Z.json"))
	syscall.Mkfifo(filepath.Join(sdir, "2025-01-03T00-00-00.000Z.json"), 0o600)

	st := openStore(t, dir)
	var warned []string
	files, err := st.Files("s", func(err error) { warned = append(warned, err.Error()) })
	if err != nil || len(files) != 4 || files[0].Name != names[0] || files[3].Name != names[3] {
		t.Fatalf("Files: %+v %v", files, err)
	}
	// The directory, the link and the FIFO named like captures are warned
	// about, each saying what it is.
	if len(warned) != 3 || !strings.Contains(warned[0], "(directory)") || !strings.Contains(warned[1], "(symbolic link)") ||
		!strings.Contains(warned[2], "(FIFO)") || !strings.HasPrefix(warned[1], filepath.Join(sdir, "2025-01-02T00-00-00.000Z.json")+": not a regular file") {
		t.Errorf("warnings %q", warned)
	}
	removed, err := st.Retain("s", 2, names[0])
	if err != nil || !slices.Equal(removed, []string{names[1], names[2]}) {
		t.Fatalf("Retain removed %v, %v; want the oldest two but the protected one", removed, err)
	}
	ents, _ := os.ReadDir(sdir)
	if len(ents) != 6 {
		t.Errorf("left %d entries, want 6", len(ents))
	}
	if _, err := st.Files("../x", nil); !errors.Is(err, ErrBadService) {
		t.Errorf("Files with ../x: %v", err)
	}
	if f, err := st.Files("none", nil); err != nil || f != nil {
		t.Errorf("Files of a service without a directory: %v %v", f, err)
	}
	svcs, err := st.Services()
	if err != nil || !slices.Equal(svcs, []string{"s"}) {
		t.Errorf("Services: %v %v", svcs, err)
	}
	if _, err := Open(filepath.Join(dir, "missing")); !errors.Is(err, ErrNoCaptureDir) {
		t.Errorf("Open of a missing dir: %v", err)
	}
}

// openStore opens dir for reading, closed at the test's end.
func openStore(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
