package sample

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/preflight-rec/preflight/recorder/capture"
)

// Process environments are never read: no source file of the module names
// /proc/PID/environ. The end-to-end
// test in cmd/preflight proves a secret in a process's environment never
// reaches a capture.
func TestNoEnvironRead(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Skipf("module root not found: %v", err)
	}
	literal := regexp.MustCompile(`/environ\b|"environ"`) // "/proc/1/environ", path.Join(dir, "environ")
	files := 0
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) && path != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files++
		if m := literal.Find(b); m != nil {
			t.Errorf("%s names a process environment: %s", path, m)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d source files hold no reference to a process environment", files)
}

// A process chooses its name and command line: control characters in them
// (a terminal escape sequence) never reach a process object.
func TestProcessObjectsPrintable(t *testing.T) {
	const esc = "\x1b]0;owned\x07\x1b[2J\u009b31m"
	cmd := exec.Command("/bin/sh", "-c", `printf '\033[31mred\tname' > /proc/$$/comm; while :; do sleep 1; done`, "sh", "--flag="+esc, "tab\tand\nnewline")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	s, err := New("/proc", 1)
	if err != nil {
		t.Fatal(err)
	}
	var p capture.Process
	deadline := time.Now().Add(5 * time.Second)
	for !strings.HasPrefix(p.Name, "?[31mred") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		_, svc := s.Sample(time.Now(), []int{cmd.Process.Pid})
		if len(svc) == 1 {
			p = svc[0]
		}
	}
	const wantCmd = `/bin/sh -c printf '\033[31mred\tname' > /proc/$$/comm; while :; do sleep 1; done sh --flag=?]0;owned??[2J?31m tab and newline`
	if p.Name != "?[31mred name" || p.Cmdline != wantCmd {
		t.Errorf("process object name %q cmdline %q\nwant %q and %q", p.Name, p.Cmdline, "?[31mred name", wantCmd)
	}
	for _, tt := range []struct{ in, want string }{
		{"plain", "plain"}, {"", ""}, {"a\x00b", "a?b"}, {"\x7f", "?"}, {"é\u0085ü", "é?ü"}, {"\xc2", "\xc2"}, {"a\r\n", "a  "},
	} {
		if got := printable(tt.in); got != tt.want {
			t.Errorf("printable(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
