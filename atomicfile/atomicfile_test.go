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
		if err := WriteFile(root(t, dir), "a.json", []byte(content), 0o640); err != nil {
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

// root opens dir as a Root, closed at the test's end.
func root(t *testing.T, dir string) *os.Root {
	t.Helper()
	r, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// A directory removed under its Root takes no more files, and leaves no
// temporary file anywhere.
func TestWriteFileRemovedDir(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "gone")
	os.Mkdir(dir, 0o750)
	r := root(t, dir)
	os.Remove(dir)
	if err := WriteFile(r, "a.json", []byte("x"), 0o640); err == nil {
		t.Fatal("write into a removed directory succeeded")
	}
	if err := ReplaceFile(r, "s.json", nil, 0o640); err == nil {
		t.Error("replace into a removed directory succeeded")
	}
	if ents, _ := os.ReadDir(parent); len(ents) != 0 {
		t.Errorf("files left: %v", ents)
	}
}

// Names are one element inside the Root: nothing is written outside it.
func TestWriteFileStaysInRoot(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "d")
	os.Mkdir(dir, 0o750)
	for _, name := range []string{"../escaped", "/tmp/escaped-preflight"} {
		if err := WriteFile(root(t, dir), name, []byte("x"), 0o640); err == nil {
			t.Errorf("WriteFile(%q) succeeded", name)
		}
	}
	if ents, _ := os.ReadDir(parent); len(ents) != 1 {
		t.Errorf("outside the root: %v", ents)
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
	removed, err := CleanStale(root(t, dir), isJSON)
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
}

func TestReplaceFile(t *testing.T) {
	dir := t.TempDir()
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)
	for _, content := range []string{"one", "two"} {
		if err := ReplaceFile(root(t, dir), "s.json", []byte(content), 0o640); err != nil {
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
}
