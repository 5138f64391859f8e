// Package atomicfile writes whole files into a directory held open as an
// [os.Root], so that a reader of the target name sees either the previous
// file or the new one, complete, never a partial write, whatever happens to
// the writer; and so that no write can leave the directory or go through a
// link, by construction: every name is one element resolved by the kernel
// relative to the directory's descriptor, temporary files are created with
// O_EXCL (never through a link) and rename(2) replaces a link at the target
// name instead of writing through it.
//
// It is the layer under package capture's Store, which owns the capture
// directory; nothing else writes there.
//
// [WriteFile] is renameio's pending-file idiom with renameio.WithRoot, plus
// the step renameio leaves to its callers: after the rename the directory
// is fsynced, so a crash cannot lose the new name. The temporary file lives
// in the target directory itself (WithRoot), so the rename never crosses a
// file system and os.TempDir is never probed.
//
// Sequence: openat(".NAME<random>", O_CREAT|O_EXCL) in the directory, write,
// fchmod to perm (whatever the umask), fsync, renameat over NAME,
// fsync(directory). A writer killed before the rename leaves only a hidden
// temporary file behind, which [CleanStale] removes; it is never seen under
// NAME.
//
// Guarantees hold on local file systems; on NFS rename is atomic for other
// clients only as far as the server makes it so. Two concurrent writers of
// the same NAME each produce a complete file; the last rename wins (the
// capture store's lock keeps it to one writer per service).
package atomicfile

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"syscall"

	"github.com/google/renameio/v2"
)

// WriteFile atomically replaces name in root with data, mode perm regardless
// of the umask, and makes the new name durable. name is one path element.
func WriteFile(root *os.Root, name string, data []byte, perm os.FileMode) error {
	pf, err := renameio.NewPendingFile(name,
		renameio.WithRoot(root),
		renameio.WithStaticPermissions(perm),
	)
	if err != nil {
		return fmt.Errorf("create temporary file for %s: %w", name, err)
	}
	defer pf.Cleanup() //nolint:errcheck // after CloseAtomicallyReplace it is a no-op

	if _, err := pf.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	// CloseAtomicallyReplace fsyncs the file, closes it and renames it.
	if err := pf.CloseAtomicallyReplace(); err != nil {
		return fmt.Errorf("replace %s: %w", name, err)
	}
	return SyncDir(root)
}

// ReplaceFile atomically replaces name in root with data, mode perm
// regardless of the umask, like [WriteFile] but without any fsync: a reader
// sees the old file or the new one, complete, but a crash may lose the new
// one. For live state that is rewritten often and worthless after a crash.
// Its temporary file is named as WriteFile's.
func ReplaceFile(root *os.Root, name string, data []byte, perm os.FileMode) error {
	var (
		f   *os.File
		tmp string
		err error
	)
	for range 100 {
		tmp = "." + name + strconv.FormatUint(rand.Uint64(), 10)
		f, err = root.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL, perm)
		if !os.IsExist(err) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("create temporary file for %s: %w", name, err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(perm)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = root.Rename(tmp, name)
	}
	if err != nil {
		root.Remove(tmp)
		return fmt.Errorf("replace %s: %w", name, err)
	}
	return nil
}

// SyncDir fsyncs the directory of root, making renames and removals in it
// durable.
func SyncDir(root *os.Root) error {
	d, err := root.Open(".")
	if err != nil {
		return fmt.Errorf("open directory %s: %w", root.Name(), err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync directory %s: %w", root.Name(), err)
	}
	return nil
}

// TempTarget returns the target name of one of WriteFile's or ReplaceFile's
// temporary files ("." + target name + random digits), and false for any
// other name.
func TempTarget(name string) (string, bool) {
	if !strings.HasPrefix(name, ".") {
		return "", false
	}
	i := len(name)
	for i > 1 && name[i-1] >= '0' && name[i-1] <= '9' {
		i--
	}
	if i == len(name) || i == 1 {
		return "", false
	}
	return name[1:i], true
}

// CleanStale removes the temporary files that writers killed before their
// rename left in root's directory, for the targets isTarget accepts. Only
// regular files of the effective user are removed (never a link, a FIFO or
// another user's file). It returns the names removed. Call it only when no
// other writer is writing those targets (the capture store's lock).
func CleanStale(root *os.Root, isTarget func(name string) bool) ([]string, error) {
	d, err := root.Open(".")
	if err != nil {
		return nil, fmt.Errorf("read directory %s: %w", root.Name(), err)
	}
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return nil, fmt.Errorf("read directory %s: %w", root.Name(), err)
	}
	var removed []string
	for _, n := range names {
		if t, ok := TempTarget(n); !ok || !isTarget(t) {
			continue
		}
		// Lstat and Remove act on the entry itself, never on what a link
		// names, and never outside root: a race can only spare a file.
		if info, err := root.Lstat(n); err != nil || !info.Mode().IsRegular() || !OwnedByMe(info) {
			continue
		}
		if err := root.Remove(n); err != nil && !os.IsNotExist(err) {
			return removed, fmt.Errorf("remove stale temporary file: %w", err)
		}
		removed = append(removed, n)
	}
	if len(removed) > 0 {
		if err := SyncDir(root); err != nil {
			return removed, err
		}
	}
	return removed, nil
}

// OwnedByMe reports whether the file is the effective user's.
func OwnedByMe(info os.FileInfo) bool {
	st, ok := info.Sys().(*syscall.Stat_t)
	return ok && int(st.Uid) == os.Geteuid()
}
