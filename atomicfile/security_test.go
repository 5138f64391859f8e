package atomicfile

import (
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
)

// CleanStale removes only its own regular temporary files: never a link
// (nor what it points to), a FIFO, a directory, or another user's file.
func TestCleanStaleHostileEntries(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give a file another owner")
	}
	dir, outside := t.TempDir(), t.TempDir()
	victim := filepath.Join(outside, "victim")
	os.WriteFile(victim, []byte("keep"), 0o600)
	os.WriteFile(filepath.Join(dir, ".a.json1"), nil, 0o600) // ours: removed
	os.WriteFile(filepath.Join(dir, ".a.json2"), nil, 0o600)
	os.Chown(filepath.Join(dir, ".a.json2"), 65534, 65534)
	os.Symlink(victim, filepath.Join(dir, ".a.json3"))
	syscall.Mkfifo(filepath.Join(dir, ".a.json4"), 0o600)
	os.Mkdir(filepath.Join(dir, ".a.json5"), 0o700)
	removed, err := CleanStale(root(t, dir), func(string) bool { return true })
	if err != nil || !slices.Equal(removed, []string{".a.json1"}) {
		t.Fatalf("CleanStale removed %v, %v; want only .a.json1", removed, err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 4 {
		t.Errorf("left %v", ents)
	}
	if b, err := os.ReadFile(victim); err != nil || string(b) != "keep" {
		t.Errorf("the link's target: %q, %v", b, err)
	}
}

// WriteFile replaces a link at the target name; it never writes through it.
func TestWriteFileReplacesLink(t *testing.T) {
	dir, outside := t.TempDir(), t.TempDir()
	victim := filepath.Join(outside, "victim")
	os.WriteFile(victim, []byte("keep"), 0o600)
	os.Symlink(victim, filepath.Join(dir, "a.json"))
	if err := WriteFile(root(t, dir), "a.json", []byte("new"), 0o640); err != nil {
		t.Fatal(err)
	}
	st, err := os.Lstat(filepath.Join(dir, "a.json"))
	if err != nil || !st.Mode().IsRegular() || st.Mode().Perm() != 0o640 {
		t.Errorf("a.json: %v, %v; want a regular 0640 file", st.Mode(), err)
	}
	if b, _ := os.ReadFile(victim); string(b) != "keep" {
		t.Errorf("wrote through the link: %q", b)
	}
}

// Files are perm whatever the umask, 0 or 077.
func TestWriteFileModeWhateverTheUmask(t *testing.T) {
	dir := t.TempDir()
	for _, mask := range []int{0, 0o077} {
		old := syscall.Umask(mask)
		err := WriteFile(root(t, dir), "a.json", []byte("x"), 0o640)
		syscall.Umask(old)
		if err != nil {
			t.Fatal(err)
		}
		if st, _ := os.Stat(filepath.Join(dir, "a.json")); st.Mode().Perm() != 0o640 {
			t.Errorf("umask %03o: mode %v, want 0640", mask, st.Mode().Perm())
		}
	}
}
