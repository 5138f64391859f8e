// Package atomicfile writes whole files into a directory so that a reader of
// the target path sees either the previous file or the new one, complete,
// never a partial write, whatever happens to the writer.
//
// [WriteFile] is renameio's pending-file idiom, with the two steps renameio
// leaves to its callers:
//
//   - the temporary file is created in the target directory itself
//     (renameio.WithTempDir), so the final rename(2) never crosses a file
//     system and no probe of os.TempDir happens on a write;
//   - after the rename the parent directory is fsynced, so a crash cannot lose
//     the new name.
//
// Sequence: open(".NAME<random>", O_EXCL) in dir, write, fchmod to perm
// (whatever the umask), fsync, rename over NAME, fsync(dir). A writer killed
// before the rename leaves only a hidden temporary file behind, which
// [CleanStale] removes; it is never seen under NAME.
//
// Guarantees hold on local file systems; on NFS rename is atomic for other
// clients only as far as the server makes it so. Two concurrent writers of the
// same NAME each produce a complete file; the last rename wins.
package atomicfile

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/google/renameio/v2"
)

// WriteFile atomically replaces dir/name with data, mode perm regardless of
// the umask, and makes the new name durable.
func WriteFile(dir, name string, data []byte, perm os.FileMode) error {
	path := filepath.Join(dir, name)
	pf, err := renameio.NewPendingFile(path,
		renameio.WithTempDir(dir),
		renameio.WithStaticPermissions(perm),
	)
	if err != nil {
		return fmt.Errorf("failed to create temporary file for %s: %w", path, err)
	}
	defer pf.Cleanup() //nolint:errcheck // after CloseAtomicallyReplace it is a no-op

	if _, err := pf.Write(data); err != nil {
		return fmt.Errorf("failed to write %s: %w", path, err)
	}
	// CloseAtomicallyReplace fsyncs the file, closes it and renames it.
	if err := pf.CloseAtomicallyReplace(); err != nil {
		return fmt.Errorf("failed to replace %s: %w", path, err)
	}
	if err := SyncDir(dir); err != nil {
		return err
	}
	return nil
}

// ReplaceFile atomically replaces dir/name with data, mode perm regardless
// of the umask, like [WriteFile] but without any fsync: a reader sees the
// old file or the new one, complete, but a crash may lose the new one. For
// live state that is rewritten often and worthless after a crash.
func ReplaceFile(dir, name string, data []byte, perm os.FileMode) error {
	path := filepath.Join(dir, name)
	f, err := os.CreateTemp(dir, "."+name) // "." + name + random digits, as WriteFile's
	if err != nil {
		return fmt.Errorf("failed to create temporary file for %s: %w", path, err)
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(perm)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("failed to replace %s: %w", path, err)
	}
	return nil
}

// SyncDir fsyncs a directory, making renames and removals in it durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("failed to open directory %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("failed to sync directory %s: %w", dir, err)
	}
	return nil
}

// TempTarget returns the target name of one of WriteFile's temporary files
// ("." + target name + random digits), and false for any other name.
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
// rename left in dir, for the targets isTarget accepts. Only regular files
// of the effective user are removed (never a link, a FIFO or another user's
// file); a missing dir is not an error. It returns the names removed. Call
// it only when no other writer is writing those targets.
func CleanStale(dir string, isTarget func(name string) bool) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		if os.IsNotExist(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("failed to read directory %s: %w", dir, err)
	}
	var removed []string
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		if t, ok := TempTarget(e.Name()); !ok || !isTarget(t) {
			continue
		}
		if info, err := e.Info(); err != nil || !ownedByMe(info) {
			continue
		}
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !os.IsNotExist(err) {
			return removed, fmt.Errorf("failed to remove stale temporary file: %w", err)
		}
		removed = append(removed, e.Name())
	}
	if len(removed) > 0 {
		if err := SyncDir(dir); err != nil {
			return removed, err
		}
	}
	return removed, nil
}

// ownedByMe reports whether the file is the effective user's.
func ownedByMe(info os.FileInfo) bool {
	st, ok := info.Sys().(*syscall.Stat_t)
	return ok && int(st.Uid) == os.Geteuid()
}
