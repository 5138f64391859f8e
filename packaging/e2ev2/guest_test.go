package e2ev2

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The guest's root file system, built once per machine.
const (
	// cacheRoot holds the built trees, unless PREFLIGHT_E2E_V2_CACHE
	// names another directory (a cold build's timing, a CI cache): a
	// directory of the test's own, since a tree there that is not the
	// recipe's is removed.
	cacheRoot = "/var/cache/preflight-e2e-v2"
	suite     = "bookworm"
	// recipe names the recipe below (packages, masks, the tree's
	// changes): change it when they change, and the next run rebuilds.
	recipe = "1"
	// debootstrapTimeout bounds the build: about 3 minutes here.
	debootstrapTimeout = 20 * time.Minute
	// imageSize is the guest's disk (sparse).
	imageSize = "3G"
)

// packages are debootstrap's --include.
var packages = []string{"systemd", "systemd-sysv", "dbus", "udev", "linux-image-amd64", "procps", "iproute2", "util-linux", "kmod"}

// masked are units that would only make noise or work in the guest.
var masked = []string{
	"serial-getty@ttyS0.service", "getty@tty1.service",
	"apt-daily.timer", "apt-daily-upgrade.timer", "dpkg-db-backup.timer",
	"e2scrub_all.timer", "e2scrub_reap.service", "fstrim.timer",
	"systemd-timesyncd.service", "man-db.timer",
}

// requireGuest returns the package to install. Outside make e2e-v2 (no
// PREFLIGHT_E2E_V2_DEB: go test ./...) and when not root it skips, saying
// why; under make e2e-v2 as root (make test, CI) a missing tool fails the
// test: a make test that cannot boot the guest must not pass.
func requireGuest(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: skipping the qemu guest (make e2e-v2)")
	}
	deb := os.Getenv("PREFLIGHT_E2E_V2_DEB")
	if deb == "" {
		t.Skip("PREFLIGHT_E2E_V2_DEB is not set: run make e2e-v2 (root; builds the .deb and boots a qemu guest)")
	}
	if _, err := os.Stat(deb); err != nil {
		t.Fatalf("PREFLIGHT_E2E_V2_DEB: %v", err)
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root: debootstrap, mkfs.ext4 -d of a root file system (run make e2e-v2 as root)")
	}
	for _, tool := range []string{"qemu-system-x86_64", "debootstrap", "mkfs.ext4", "debugfs", "timeout", "cp"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("needs %s (apt-get install qemu-system-x86 debootstrap e2fsprogs; .ci/run does): %v", tool, err)
		}
	}
	abs, err := filepath.Abs(deb)
	if err != nil {
		t.Fatal(err)
	}
	return abs
}

// binaries are the guest's programs, static.
type binaries struct{ deadDrop, guest string }

// build builds dead-drop and the guest program with CGO_ENABLED=0.
func build(t *testing.T) binaries {
	t.Helper()
	dir := t.TempDir()
	b := binaries{filepath.Join(dir, "dead-drop"), filepath.Join(dir, GuestProgram)}
	for _, p := range []struct{ out, pkg string }{{b.deadDrop, "./packaging/e2e/deaddrop"}, {b.guest, "./packaging/e2ev2/guest"}} {
		cmd := exec.Command("go", "build", "-trimpath", "-o", p.out, p.pkg)
		cmd.Dir = repoRoot(t)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", p.pkg, err, out)
		}
	}
	return b
}

// repoRoot is the repository's root: the test runs in packaging/e2ev2.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err == nil {
		_, err = os.Stat(filepath.Join(root, "go.mod"))
	}
	if err != nil {
		t.Fatalf("no repository root: %v", err)
	}
	return root
}

// cacheKey names the recipe: a changed recipe or package list is a new
// directory, and the old ones are removed.
func cacheKey() string {
	h := sha256.Sum256([]byte(strings.Join(append(append([]string{recipe, suite}, packages...), masked...), "\n")))
	return suite + "-" + hex.EncodeToString(h[:6])
}

// rootfs returns the cached root file system, building it first if this
// machine has none for the recipe. One build at a time (a lock file); a
// build that fails or is interrupted leaves no cache entry.
func rootfs(t *testing.T) string {
	t.Helper()
	cacheRoot := cacheRoot
	if dir := os.Getenv("PREFLIGHT_E2E_V2_CACHE"); dir != "" {
		cacheRoot = dir
	}
	if err := os.MkdirAll(cacheRoot, 0o755); err != nil {
		t.Fatal(err)
	}
	lock, err := os.OpenFile(filepath.Join(cacheRoot, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		t.Fatalf("lock %s: %v", lock.Name(), err)
	}
	defer unix.Flock(int(lock.Fd()), unix.LOCK_UN)

	key := cacheKey()
	dir := filepath.Join(cacheRoot, key)
	entries, err := os.ReadDir(cacheRoot)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() && e.Name() != key { // another recipe's, or a build that died
			t.Logf("removing %s: not the recipe %s", filepath.Join(cacheRoot, e.Name()), key)
			if err := os.RemoveAll(filepath.Join(cacheRoot, e.Name())); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := os.Stat(dir); err == nil {
		t.Logf("root file system: %s (cached)", dir)
		return dir
	}

	archive, err := debianArchive("/etc/apt")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	tmp := dir + ".build"
	t.Logf("building the guest's root file system in %s with debootstrap from %s (once per machine, a few minutes)", tmp, archive)
	cmd := exec.Command("timeout", "--kill-after=10s", fmt.Sprintf("%.0fs", debootstrapTimeout.Seconds()),
		"debootstrap", "--variant=minbase", "--include="+strings.Join(packages, ","), suite, tmp, archive)
	if out, err := cmd.CombinedOutput(); err != nil {
		os.RemoveAll(tmp)
		t.Fatalf("debootstrap: %v\n%s", err, tail(out, 4000))
	}
	if err := customize(tmp); err != nil {
		os.RemoveAll(tmp)
		t.Fatal(err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		os.RemoveAll(tmp)
		t.Fatal(err)
	}
	t.Logf("built %s in %s", dir, time.Since(start).Round(time.Second))
	return dir
}

// customize quiets the tree: masked units, a host name, no package lists
// or downloaded packages.
func customize(root string) error {
	for _, u := range masked {
		p := filepath.Join(root, "etc/systemd/system", u)
		os.Remove(p)
		if err := os.Symlink("/dev/null", p); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(root, "etc/hostname"), []byte("e2e-v2\n"), 0o644); err != nil {
		return err
	}
	for _, pattern := range []string{"var/cache/apt/archives/*.deb", "var/cache/apt/*.bin", "var/lib/apt/lists/*_Packages"} {
		files, _ := filepath.Glob(filepath.Join(root, pattern))
		for _, f := range files {
			if err := os.Remove(f); err != nil {
				return err
			}
		}
	}
	return nil
}

// debianArchive is the URI of the Debian archive that apt under etc uses
// for suite's main component: deb822 sources.list.d/*.sources first, then
// one-line sources lists. Never a host of our own choosing.
func debianArchive(etc string) (string, error) {
	files, _ := filepath.Glob(filepath.Join(etc, "sources.list.d/*.sources"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for stanza := range strings.SplitSeq(string(b), "\n\n") {
			fields := map[string][]string{}
			for line := range strings.Lines(stanza) {
				if k, v, ok := strings.Cut(line, ":"); ok && !strings.HasPrefix(k, "#") && !strings.HasPrefix(k, " ") {
					fields[strings.ToLower(strings.TrimSpace(k))] = strings.Fields(v)
				}
			}
			enabled := fields["enabled"] == nil || slices.Contains(fields["enabled"], "yes")
			if enabled && slices.Contains(fields["types"], "deb") && slices.Contains(fields["suites"], suite) &&
				slices.Contains(fields["components"], "main") && len(fields["uris"]) > 0 {
				return fields["uris"][0], nil
			}
		}
	}
	lists, _ := filepath.Glob(filepath.Join(etc, "sources.list.d/*.list"))
	for _, f := range append([]string{filepath.Join(etc, "sources.list")}, lists...) {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for line := range strings.Lines(string(b)) {
			w := strings.Fields(line)
			// deb [options] URI SUITE COMPONENT...
			if len(w) > 0 && w[0] == "deb" {
				w = w[1:]
				if len(w) > 0 && strings.HasPrefix(w[0], "[") {
					for len(w) > 0 && !strings.HasSuffix(w[0], "]") {
						w = w[1:]
					}
					w = w[1:]
				}
				if len(w) >= 3 && w[1] == suite && slices.Contains(w[2:], "main") {
					return w[0], nil
				}
			}
		}
	}
	return "", fmt.Errorf("no Debian archive for %s main in %s/sources.list.d/*.sources or sources.list", suite, etc)
}

// image makes the guest's disk: a linked copy of the cached tree with the
// package, the programs and the units added, as an ext4 image.
func image(t *testing.T, base, deb string, b binaries) string {
	t.Helper()
	work := t.TempDir()
	root := filepath.Join(work, "root")
	// Hard links: fast, and safe as long as no linked file is written in
	// place. add() only ever creates new files.
	if out, err := exec.Command("cp", "-al", base, root).CombinedOutput(); err != nil {
		t.Fatalf("cp -al: %v: %s", err, out)
	}
	read := func(p string) []byte {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	files := []struct {
		path string
		mode os.FileMode
		data []byte
	}{
		{Dir + "/" + DebFile, 0o644, read(deb)},
		{Dir + "/" + GuestProgram, 0o755, read(b.guest)},
		{"/usr/local/bin/" + Service, 0o755, read(b.deadDrop)},
		{"/etc/systemd/system/" + Unit, 0o644, []byte(DeadDropUnit)},
		{"/etc/systemd/system/" + GuestUnit, 0o644, []byte(GuestUnitText)},
		{"/etc/preflight/" + Service + ".env", 0o644, []byte(RecorderEnv)},
	}
	for _, f := range files {
		if err := add(root, f.path, f.data, f.mode); err != nil {
			t.Fatal(err)
		}
	}
	wants := filepath.Join(root, "etc/systemd/system/multi-user.target.wants")
	if err := os.MkdirAll(wants, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc/systemd/system/"+GuestUnit, filepath.Join(wants, GuestUnit)); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(work, "disk.img")
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", "-L", "pfroot", "-d", root, img, imageSize).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v: %s", err, out)
	}
	if err := os.RemoveAll(root); err != nil {
		t.Fatal(err)
	}
	return img
}

// add creates root/path, never writing through a hard link into the cache.
func add(root, path string, data []byte, mode os.FileMode) error {
	p := filepath.Join(root, path)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(p, mode) // whatever the umask
	}
	return err
}

// boot boots the image under qemu (TCG) with repeat on the kernel command
// line, bounded by limit, streams the guest program's lines to the test
// log, and returns the results it left, copied out of the image.
func boot(t *testing.T, base, img string, repeat int, limit time.Duration) (*Results, string) {
	t.Helper()
	kernel, initrd := newest(t, base, "boot/vmlinuz-*"), newest(t, base, "boot/initrd.img-*")
	cmdline := fmt.Sprintf("root=/dev/vda rw console=ttyS0 panic=-1 systemd.unified_cgroup_hierarchy=1 %s=%d", CmdlineRepeat, repeat)
	cmd := exec.Command("timeout", "--kill-after=10s", fmt.Sprintf("%.0fs", limit.Seconds()),
		"qemu-system-x86_64", "-accel", "tcg,thread=multi", "-cpu", "max", "-machine", "q35",
		"-m", "2048", "-smp", "2", "-display", "none", "-monitor", "none", "-serial", "stdio",
		"-nic", "none", "-no-reboot", "-kernel", kernel, "-initrd", initrd, "-append", cmdline,
		"-drive", "file="+img+",if=virtio,format=raw")
	// timeout(1) passes SIGTERM on to qemu: if the test dies, so does qemu.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	consolePath := filepath.Join(filepath.Dir(img), "console.log")
	console, err := os.Create(consolePath)
	if err != nil {
		t.Fatal(err)
	}
	defer console.Close()
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = console
	start := time.Now()
	t.Logf("booting the guest: %s", strings.Join(cmd.Args, " "))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		sc := bufio.NewScanner(io.TeeReader(out, console))
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			if _, line, ok := strings.Cut(sc.Text(), "e2e-v2: "); ok {
				t.Logf("guest %6.1fs: %s", time.Since(start).Seconds(), line)
			}
		}
		io.Copy(console, out)
	})
	wg.Wait()
	err = cmd.Wait()
	t.Logf("the guest ran %s", time.Since(start).Round(time.Second))
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() == 124 {
		t.Errorf("qemu timed out after %s (the guest program's lines above show how far it got); console:\n%s", limit, tailFile(consolePath))
	} else if err != nil {
		t.Errorf("qemu: %v; console:\n%s", err, tailFile(consolePath))
	}

	// PREFLIGHT_E2E_V2_OUT keeps the results (make e2e-v2 OUT=DIR).
	dir := os.Getenv("PREFLIGHT_E2E_V2_OUT")
	if dir == "" {
		dir = filepath.Join(filepath.Dir(img), "out")
	} else {
		t.Logf("results kept in %s", dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if b, err := exec.Command("debugfs", "-R", "rdump "+ResultsDir+" "+dir, img).CombinedOutput(); err != nil {
		t.Fatalf("debugfs rdump: %v: %s", err, b)
	}
	dir = filepath.Join(dir, filepath.Base(ResultsDir))
	data, err := os.ReadFile(filepath.Join(dir, ResultsFile))
	if err != nil {
		t.Fatalf("the guest left no results: %v; console:\n%s", err, tailFile(consolePath))
	}
	res := new(Results)
	if err := json.Unmarshal(data, res); err != nil {
		t.Fatalf("%s: %v", ResultsFile, err)
	}
	return res, dir
}

// newest is the last file of base matching pattern (a kernel, an initrd).
func newest(t *testing.T, base, pattern string) string {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(base, pattern))
	if len(files) == 0 {
		t.Fatalf("no %s in %s", pattern, base)
	}
	slices.Sort(files)
	return files[len(files)-1]
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

func tailFile(path string) string {
	b, _ := os.ReadFile(path)
	return tail(b, 6000)
}
