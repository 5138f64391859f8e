package atomicfile

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	old := syscall.Umask(0o077) // the mode must not depend on the umask
	defer syscall.Umask(old)
	for _, content := range []string{"first", "second, longer"} {
		if err := WriteFile(dir, "a.json", []byte(content), 0o640); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(dir, "a.json"))
		if err != nil || string(got) != content {
			t.Fatalf("read back %q, %v; want %q", got, err, content)
		}
		st, _ := os.Stat(filepath.Join(dir, "a.json"))
		if st.Mode().Perm() != 0o640 {
			t.Errorf("mode %v, want 0640", st.Mode().Perm())
		}
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("temporary files left behind: %v", ents)
	}
}

func TestWriteFileMissingDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "gone")
	if err := WriteFile(dir, "a.json", []byte("x"), 0o640); err == nil {
		t.Fatal("write into a missing directory succeeded")
	}
}

func TestTempTarget(t *testing.T) {
	for name, want := range map[string]string{
		".2026-11-26T03-12-04.123Z.json8123412": "2026-11-26T03-12-04.123Z.json",
		".x.json1":                              "x.json",
		"2026-11-26T03-12-04.123Z.json":         "",
		".2026-11-26T03-12-04.123Z.json":        "",
		".x.json12a":                            "",
		".123":                                  "",
		".":                                     "",
	} {
		got, ok := TempTarget(name)
		if got != want || ok != (want != "") {
			t.Errorf("TempTarget(%q) = %q, %v; want %q", name, got, ok, want)
		}
	}
}

func TestCleanStale(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{".a.json123", ".b.json9", "a.json", ".keep", "notes.json1"} {
		os.WriteFile(filepath.Join(dir, n), nil, 0o600)
	}
	os.Mkdir(filepath.Join(dir, ".d.json7"), 0o700) // a directory is never removed
	os.Symlink("/etc/passwd", filepath.Join(dir, ".l.json5"))
	isJSON := func(n string) bool { return strings.HasSuffix(n, ".json") }
	removed, err := CleanStale(dir, isJSON)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(removed)
	if !slices.Equal(removed, []string{".a.json123", ".b.json9"}) {
		t.Errorf("removed %v", removed)
	}
	var left []string
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		left = append(left, e.Name())
	}
	if !slices.Equal(left, []string{".d.json7", ".keep", ".l.json5", "a.json", "notes.json1"}) {
		t.Errorf("left %v", left)
	}
	if _, err := os.Stat("/etc/passwd"); err != nil {
		t.Fatal(err)
	}
	if r, err := CleanStale(filepath.Join(dir, "missing"), isJSON); err != nil || r != nil {
		t.Errorf("missing dir: %v %v", r, err)
	}
}

func TestReplaceFile(t *testing.T) {
	dir := t.TempDir()
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)
	for _, content := range []string{"one", "two"} {
		if err := ReplaceFile(dir, "s.json", []byte(content), 0o640); err != nil {
			t.Fatal(err)
		}
		got, _ := os.ReadFile(filepath.Join(dir, "s.json"))
		st, _ := os.Stat(filepath.Join(dir, "s.json"))
		if string(got) != content || st.Mode().Perm() != 0o640 {
			t.Errorf("got %q mode %v", got, st.Mode().Perm())
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("temporary files left: %v", ents)
	}
	if err := ReplaceFile(filepath.Join(dir, "missing"), "s.json", nil, 0o640); err == nil {
		t.Error("replace into a missing directory succeeded")
	}
}
