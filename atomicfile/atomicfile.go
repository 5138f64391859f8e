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
// are removed; a missing dir is not an error. It returns the names removed.
// Call it only when no other writer is writing those targets.
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
