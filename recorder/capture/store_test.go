package capture

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// createStore opens dir for writing, closed at the test's end.
func createStore(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := Create(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// A write lands 0640 under its name; a directory removed under the store
// is re-created at the next write.
func TestStoreWrite(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "captures")
	s := createStore(t, dir)
	name := FileName(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	for i, content := range []string{"one", "two"} {
		created, err := s.Write("svc", name, []byte(content))
		if err != nil || created != (i == 0) {
			t.Fatalf("write %d: created %v, %v", i, created, err)
		}
	}
	os.RemoveAll(dir)
	if _, err := s.Write("svc", name, []byte("three")); err != nil {
		t.Fatalf("write after the directory was removed: %v", err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "svc", name))
	st, _ := os.Stat(filepath.Join(dir, "svc", name))
	if string(b) != "three" || st.Mode().Perm() != FileMode {
		t.Errorf("got %q, mode %v", b, st.Mode().Perm())
	}
	for _, d := range []string{dir, filepath.Join(dir, "svc")} {
		if st, err := os.Stat(d); err != nil || st.Mode().Perm() != DirMode {
			t.Errorf("%s: %v, %v", d, st, err)
		}
	}
	if _, err := s.Write("svc", "notes.json", nil); err == nil {
		t.Error("wrote a file not named as a capture")
	}
}

// A link in place of a service directory is refused, even one to another
// directory inside the capture directory; so is a link in place of a
// capture, even to another capture inside.
func TestStoreRefusesInsideLinks(t *testing.T) {
	dir := t.TempDir()
	s := createStore(t, dir)
	name := FileName(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	if _, err := s.Write("real", name, []byte(`{"schema":"preflight.capture/v1"}`)); err != nil {
		t.Fatal(err)
	}
	os.Symlink("real", filepath.Join(dir, "alias"))
	if _, err := s.Write("alias", name, []byte("x")); !errors.Is(err, ErrNotDirectory) {
		t.Errorf("write through a link to a service directory: %v", err)
	}
	if files, err := s.Files("alias", nil); err == nil || len(files) != 0 {
		t.Errorf("Files through a link: %v, %v", files, err)
	}
	link := FileName(time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC))
	os.Symlink(name, filepath.Join(dir, "real", link))
	_, _, err := s.Read(Entry{Service: "real", Name: link, Path: filepath.Join(dir, "real", link)})
	if !errors.Is(err, ErrNotRegular) || !strings.Contains(err.Error(), "symbolic link") {
		t.Errorf("Read of a link to a capture inside: %v", err)
	}
	if _, err := s.ReadHead(Entry{Service: "real", Name: link, Path: filepath.Join(dir, "real", link)}); !errors.Is(err, ErrNotRegular) {
		t.Errorf("ReadHead of a link: %v", err)
	}
}

// NextName never goes backwards and never names an existing entry.
func TestNextName(t *testing.T) {
	dir := t.TempDir()
	s := createStore(t, dir)
	t0 := time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC)
	if n, err := s.NextName("svc", t0, nil); err != nil || n != FileName(t0) {
		t.Fatalf("first name %q, %v", n, err)
	}
	s.Write("svc", FileName(t0), []byte("{}"))
	os.Mkdir(filepath.Join(dir, "svc", FileName(t0.Add(-time.Minute+time.Millisecond))), 0o750) // not a capture, but a name taken
	for _, tc := range []struct {
		at    time.Time
		taken []string
		want  string
	}{
		{t0.Add(time.Second), nil, FileName(t0.Add(time.Second))},
		{t0, nil, FileName(t0.Add(time.Millisecond))},
		{t0.Add(-time.Hour), nil, FileName(t0.Add(time.Millisecond))},
		{t0.Add(-time.Hour), []string{FileName(t0.Add(5 * time.Millisecond))}, FileName(t0.Add(6 * time.Millisecond))},
	} {
		if got, err := s.NextName("svc", tc.at, tc.taken); err != nil || got != tc.want {
			t.Errorf("NextName(%v, %v) = %q, %v; want %q", tc.at, tc.taken, got, err, tc.want)
		}
	}
}

// The lock: a second taker is refused with the holder's PID, a reader sees
// it held; released, it is free and the reader sees so at once.
func TestLock(t *testing.T) {
	dir := t.TempDir()
	s := createStore(t, dir)
	if _, _, err := s.Running("svc"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Running without a lock file: %v", err)
	}
	l, err := s.Lock("svc")
	if err != nil {
		t.Fatal(err)
	}
	other := createStore(t, dir)
	_, err = other.Lock("svc")
	var le *LockedError
	if !errors.As(err, &le) || le.PID != os.Getpid() || le.Path != LockPath(dir, "svc") {
		t.Fatalf("second lock: %v", err)
	}
	if running, pid, err := other.Running("svc"); !running || pid != os.Getpid() || err != nil {
		t.Errorf("Running: %v %d %v", running, pid, err)
	}
	if running, _, err := other.Running("else"); running || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Running of another service: %v %v", running, err)
	}
	l.Unlock()
	if running, _, err := other.Running("svc"); running || err != nil {
		t.Errorf("Running after unlock: %v %v", running, err)
	}
	st, _ := os.Stat(LockPath(dir, "svc"))
	if st.Mode().Perm() != FileMode {
		t.Errorf("lock file mode %v", st.Mode().Perm())
	}
}

// A process killed with SIGKILL holds no lock: the kernel releases it as
// the process ends, and Running says so at once.
func TestLockReleasedByKill(t *testing.T) {
	dir := t.TempDir()
	s := createStore(t, dir)
	l, err := s.Lock("svc")
	if err != nil {
		t.Fatal(err)
	}
	l.Unlock()
	// A child holds the lock file's lock, as a recorder would (--no-fork:
	// the process killed is the one holding it).
	cmd := exec.Command("flock", "--exclusive", "--no-fork", LockPath(dir, "svc"), "sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Skipf("flock(1): %v", err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	deadline := time.Now().Add(5 * time.Second)
	for running, _, _ := s.Running("svc"); !running; running, _, _ = s.Running("svc") {
		if time.Now().After(deadline) {
			t.Fatal("the child never held the lock")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	if running, _, err := s.Running("svc"); running || err != nil {
		t.Errorf("after kill -9 of pid %s: running %v, %v", strconv.Itoa(cmd.Process.Pid), running, err)
	}
}

// States and ReadState read what WriteState wrote; Find finds a file name
// in whichever service holds it.
func TestStateAndFind(t *testing.T) {
	dir := t.TempDir()
	s := createStore(t, dir)
	if err := s.WriteState(&State{Service: "svc", PID: 7, State: StateHealthy}); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(StatePath(dir, "junk"), []byte("{"), 0o640)
	var warned []error
	states := s.States(func(err error) { warned = append(warned, err) })
	if len(states) != 1 || states["svc"].PID != 7 || len(warned) != 1 || !strings.HasPrefix(warned[0].Error(), StatePath(dir, "junk")) {
		t.Errorf("States: %v, warned %v", states, warned)
	}
	name := FileName(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	s.Write("a", name, []byte("{}"))
	found, err := s.Find(name)
	if err != nil || len(found) != 1 || found[0].Service != "a" || found[0].Path != filepath.Join(dir, "a", name) {
		t.Errorf("Find: %+v %v", found, err)
	}
	s.Write("b", name, []byte("{}"))
	if found, _ := s.Find(name); len(found) != 2 {
		t.Errorf("Find in two services: %+v", found)
	}
}
