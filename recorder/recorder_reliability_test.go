package recorder

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/preflight-rec/preflight/cgroup"
	"github.com/preflight-rec/preflight/recorder/capture"
)

// A writer killed between a capture's rename and its retention pass leaves
// KEEP+1 captures, and a killed New leaves its probe file: New removes
// nothing (a later recorder of the same start may still fail), the start
// of Run restores the bound and removes the probe.
func TestStartRestoresKeepAndRemovesProbe(t *testing.T) {
	dir := t.TempDir()
	sdir := filepath.Join(dir, "svc")
	os.Mkdir(sdir, DirMode)
	names := []string{"2026-01-01T00-00-00.000Z.json", "2026-01-02T00-00-00.000Z.json", "2026-01-03T00-00-00.000Z.json"}
	for _, n := range names {
		os.WriteFile(filepath.Join(sdir, n), []byte("{}"), FileMode)
	}
	os.WriteFile(filepath.Join(sdir, ".probe123456"), nil, 0o600)
	os.WriteFile(filepath.Join(sdir, "."+names[2]+"987"), nil, 0o600) // a killed write's temporary file
	r := newTestRecorder(t, func(c *Config) { c.CaptureDir, c.Keep = dir, 2 })
	if ents, _ := os.ReadDir(sdir); len(ents) != 5 {
		t.Errorf("New removed files: %v, want all 5 left", ents)
	}
	r.cleanup() // what Run does first
	ents, _ := os.ReadDir(sdir)
	if len(ents) != 2 || ents[0].Name() != names[1] || ents[1].Name() != names[2] {
		t.Errorf("after start: %v, want the newest two captures alone", ents)
	}
}

// A link in place of the service's directory is refused at start and never
// written through later; nor is a link in place of the state directory.
func TestLinkedServiceDirectory(t *testing.T) {
	dir, elsewhere := t.TempDir(), t.TempDir()
	os.Symlink(elsewhere, filepath.Join(dir, "svc"))
	cfg := Config{Service: "svc", HealthURL: "http://127.0.0.1:9/", IntervalSeconds: 1, BufferSamples: 3,
		FailureThreshold: 1, CaptureDir: dir, Keep: 5, TopProcesses: 1, LogLevel: "info", TraceSeconds: 120}
	if _, err := New(cfg, Options{Logger: zerolog.Nop(), NoCgroup: true}); err == nil {
		t.Fatal("New accepted a symbolic link as the service's capture directory")
	}

	r := newTestRecorder(t, nil)
	os.Remove(r.Dir())
	os.Symlink(elsewhere, r.Dir())
	stateDir := filepath.Join(r.cfg.CaptureDir, capture.StateDir)
	os.RemoveAll(stateDir)
	os.Symlink(elsewhere, stateDir)
	r.onTrigger(trigger{kind: capture.TriggerExit, at: time.Now(), detail: "cgroup emptied"})
	r.writeState(true)
	if ents, _ := os.ReadDir(elsewhere); len(ents) != 0 || !r.inc.dirty || !r.stateErr {
		t.Errorf("wrote %v through a link; dirty=%v, state error=%v", ents, r.inc.dirty, r.stateErr)
	}
}

// Directories the recorder creates are DirMode whatever the umask.
func TestDirModesUnderUmask(t *testing.T) {
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)
	dir := filepath.Join(t.TempDir(), "captures")
	r := newTestRecorder(t, func(c *Config) { c.CaptureDir = dir })
	r.writeState(true)
	os.RemoveAll(dir)
	r.onTrigger(trigger{kind: capture.TriggerOOM, at: time.Now(), detail: "oom_kill 0 → 1"})
	r.writeState(true)
	for _, d := range []string{dir, r.Dir(), filepath.Join(dir, capture.StateDir)} {
		if st, err := os.Stat(d); err != nil || st.Mode().Perm() != DirMode {
			t.Errorf("%s: %v %v, want mode %v", d, st.Mode(), err, DirMode)
		}
	}
}

// Two samples of the service less than a microsecond apart must not make a
// NaN CPU percent: one NaN makes every capture holding it unencodable.
func TestServiceCPUPercentSameMicrosecond(t *testing.T) {
	fs, err := cgroup.NewFS("../cgroup/testdata/v2")
	if err != nil {
		t.Fatal(err)
	}
	s := &scope{fs: fs, tr: fs.NewTracer(), log: zerolog.Nop()}
	now := time.Now()
	const path = "/system.slice/dead-drop.service"
	s.service(path, now, nil)
	svc := s.service(path, now.Add(500*time.Nanosecond), nil)
	if svc.CPUUsageUsec == nil {
		t.Fatal("the fixture has no cpu.stat")
	}
	if _, err := capture.Encode(&capture.Capture{Samples: []capture.Sample{{Service: svc}}}); err != nil {
		t.Errorf("a capture with this sample cannot be encoded: %v (cpu_percent %v)", err, *svc.CPUPercent)
	}
}
