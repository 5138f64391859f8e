package capture

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Retain counts and removes only the effective user's regular captures:
// another user's file named like a capture stays, and does not count
// against KEEP.
func TestRetainOnlyOwnCaptures(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give a file another owner")
	}
	dir, sdir, names := fourCaptures(t)
	os.Chown(filepath.Join(sdir, names[0]), 65534, 65534) // the oldest is not ours
	removed, err := openStore(t, dir).Retain("s", 2, "")
	if err != nil || !slices.Equal(removed, names[1:2]) {
		t.Fatalf("Retain removed %v, %v; want only %s", removed, err, names[1])
	}
	if _, err := os.Stat(filepath.Join(sdir, names[0])); err != nil {
		t.Errorf("another user's file was removed: %v", err)
	}
}

// The readers never follow a link in place of a service's directory, and
// never block on a FIFO there.
func TestFilesRefusesLinkedOrFIFOServiceDir(t *testing.T) {
	dir, outside := t.TempDir(), t.TempDir()
	os.WriteFile(filepath.Join(outside, "2026-01-01T00-00-00.000Z.json"), []byte("{}"), 0o640)
	os.Symlink(outside, filepath.Join(dir, "linked"))
	syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o640)
	st := openStore(t, dir)
	if files, err := st.Files("linked", nil); err == nil || !strings.Contains(err.Error(), "symbolic link") || len(files) != 0 {
		t.Errorf("Files through a link: %v, %v", files, err)
	}
	if removed, err := st.Retain("linked", 0, ""); err == nil || len(removed) != 0 {
		t.Errorf("Retain through a link: %v, %v", removed, err)
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 1 {
		t.Errorf("outside: %v", ents)
	}
	done := make(chan error, 1)
	go func() { _, err := st.Files("fifo", nil); done <- err }()
	select {
	case err := <-done:
		if err == nil {
			t.Error("Files of a FIFO: no error")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Files blocked on a FIFO")
	}
	if svcs, err := st.Services(); err != nil || len(svcs) != 0 {
		t.Errorf("Services: %v, %v; want none (a link and a FIFO)", svcs, err)
	}
}

// ParseFileName takes only the names FileName gives: time.Parse alone
// would take a comma for the fraction's dot (found by FuzzFileName).
func TestParseFileNameStrict(t *testing.T) {
	for _, name := range []string{"2026-11-26T03-12-04,123Z.json", "0000-01-01T00-00-00,000Z.json"} {
		if _, ok := ParseFileName(name); ok {
			t.Errorf("ParseFileName(%q) accepted", name)
		}
	}
}
