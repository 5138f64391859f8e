package capture

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/preflight-rec/preflight/atomicfile"
)

// File modes of the capture directory and its files, whatever the umask.
const (
	DirMode  os.FileMode = 0o750
	FileMode os.FileMode = 0o640
)

// ErrNotDirectory is a service or state directory that is something else:
// a link (never followed), a FIFO, a file.
var ErrNotDirectory = errors.New("not a directory")

// Store is the one owner of a capture directory: everything that touches a
// file under it goes through a Store. The recorder (a writer's store, from
// [Create]) writes captures ([Store.Write]), names them ([Store.NextName]),
// keeps KEEP of them ([Store.Retain]), removes a killed writer's temporary
// files ([Store.CleanStale]), writes its live state ([Store.WriteState]) and
// holds the lock that makes it the only recorder of its service
// ([Store.Lock]). The readers (from [Open]) list services and captures
// ([Store.Services], [Store.Files]), read them whole ([Store.Read]) or by
// their head ([Store.ReadHead]), and read live states ([Store.States],
// [Store.Running]).
//
// The directory is held open as an [os.Root]: every name is resolved by the
// kernel relative to it, so no name can leave it. Nothing under it is
// followed through a link either: a service or state directory is opened
// and then proved to be the directory entry of that name (not a link to
// one), a file is opened and then proved to be the regular file of that
// name, and anything else is refused with [ErrNotRegular] or
// [ErrNotDirectory]. FIFOs are opened O_NONBLOCK or not at all.
//
// A Store is not safe for concurrent use; each recorder has its own, as
// each reader command.
type Store struct {
	dir    string // as given, for messages and paths shown
	root   *os.Root
	create bool   // a writer's: re-creates the directory if it is removed
	buf    []byte // ReadHead's buffer

	// A reader's last opened subdirectory, kept for the next read of the
	// same one (list SERVICE reads every capture's head).
	subName string
	sub     *os.Root
}

// Open opens the capture directory dir for reading. A missing directory is
// [ErrNoCaptureDir].
func Open(dir string) (*Store, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w %s", ErrNoCaptureDir, dir)
		}
		return nil, fmt.Errorf("open capture directory: %w", err)
	}
	return &Store{dir: dir, root: root}, nil
}

// Create opens the capture directory dir for a recorder, creating it (one
// level, [DirMode]) if it is missing. If the directory is later removed or
// replaced under the recorder, the next write re-creates it.
func Create(dir string) (*Store, error) {
	if err := mkdir(dir); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("create capture directory %s: %w", dir, unwrapPath(err))
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("open capture directory %s: %w", dir, unwrapPath(err))
	}
	return &Store{dir: dir, root: root, create: true}, nil
}

// Close closes the directory.
func (s *Store) Close() error {
	if s.sub != nil {
		s.sub.Close()
		s.sub = nil
	}
	return s.root.Close()
}

// readSubdir is subdir(name, false) for reading: a reader's store keeps the
// directory open for its next read. The returned done releases it.
func (s *Store) readSubdir(name string) (r *os.Root, done func(), err error) {
	if s.create {
		r, err := s.subdir(name, false)
		if err != nil {
			return nil, nil, err
		}
		return r, func() { r.Close() }, nil
	}
	if s.sub == nil || s.subName != name {
		r, err := s.subdir(name, false)
		if err != nil {
			return nil, nil, err
		}
		if s.sub != nil {
			s.sub.Close()
		}
		s.sub, s.subName = r, name
	}
	return s.sub, func() {}, nil
}

// Dir is the capture directory, as given to Open or Create.
func (s *Store) Dir() string { return s.dir }

// Path is the path of a file or directory under the capture directory, as
// readers show it.
func (s *Store) Path(elem ...string) string {
	return filepath.Join(append([]string{s.dir}, elem...)...)
}

// mkdir creates dir with DirMode, whatever the umask. An existing dir is an
// error satisfying errors.Is(err, fs.ErrExist), and keeps its mode.
func mkdir(dir string) error {
	if err := os.Mkdir(dir, DirMode); err != nil {
		return err
	}
	return os.Chmod(dir, DirMode)
}

// refresh makes a writer's store hold the directory now at its path: after
// the directory was removed (or replaced) under the recorder, it is
// re-created and opened again.
func (s *Store) refresh() error {
	if !s.create {
		return nil
	}
	cur, err := os.Stat(s.dir)
	if err == nil {
		if held, herr := s.root.Stat("."); herr == nil && os.SameFile(cur, held) {
			return nil
		}
	}
	if err := mkdir(s.dir); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("create capture directory %s: %w", s.dir, unwrapPath(err))
	}
	root, err := os.OpenRoot(s.dir)
	if err != nil {
		return fmt.Errorf("open capture directory %s: %w", s.dir, unwrapPath(err))
	}
	s.root.Close()
	s.root = root
	return nil
}

// subdir opens the directory name directly under the capture directory (a
// service's, or the state directory) as a Root of its own. It refuses
// anything but a real directory of that name: a link is never followed,
// not even to another directory inside, and a FIFO is never opened. With
// create, a missing directory is created (DirMode). A missing directory
// without create is an error satisfying errors.Is(err, fs.ErrNotExist).
func (s *Store) subdir(name string, create bool) (*os.Root, error) {
	path := s.Path(name)
	fi, err := s.root.Lstat(name)
	if create && errors.Is(err, fs.ErrNotExist) {
		if err = s.root.Mkdir(name, DirMode); err == nil || errors.Is(err, fs.ErrExist) {
			fi, err = s.root.Lstat(name)
		}
		if err == nil && fi.IsDir() && fi.Mode().Perm() != DirMode && atomicfile.OwnedByMe(fi) {
			err = s.chmodDir(name, fi)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, unwrapPath(err))
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("%s: %w (%s, not followed)", path, ErrNotDirectory, typeName(fi.Mode()))
	}
	r, err := s.root.OpenRoot(name)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, unwrapPath(err))
	}
	// Proved after opening: what was opened is the directory of that name.
	if st, err := r.Stat("."); err != nil || !os.SameFile(st, fi) {
		r.Close()
		return nil, fmt.Errorf("%s: replaced while being opened", path)
	}
	return r, nil
}

// chmodDir sets DirMode on the directory name, through a descriptor of
// the very directory fi describes.
func (s *Store) chmodDir(name string, fi fs.FileInfo) error {
	d, err := s.root.OpenFile(name, os.O_RDONLY|syscall.O_DIRECTORY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return err
	}
	defer d.Close()
	if st, err := d.Stat(); err != nil || !os.SameFile(st, fi) {
		return fmt.Errorf("replaced while being opened")
	}
	return d.Chmod(DirMode)
}

// openFile opens the regular file name in dir for reading, and proves that
// it is the file of that name: never a link, a FIFO, a device or a
// directory.
func openFile(dir *os.Root, name, path string) (*os.File, error) {
	return openFileFlag(dir, name, path, os.O_RDONLY)
}

// openFileFlag is openFile with another access mode (os.O_RDWR).
func openFileFlag(dir *os.Root, name, path string, flag int) (*os.File, error) {
	f, err := dir.OpenFile(name, flag|syscall.O_NONBLOCK, 0)
	if err != nil {
		if li, lerr := dir.Lstat(name); lerr == nil && li.Mode()&fs.ModeSymlink != 0 {
			return nil, fmt.Errorf("%s: %w (symbolic link)", path, ErrNotRegular)
		}
		return nil, fmt.Errorf("%s: %w", path, unwrapPath(err))
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = fmt.Errorf("%w (%s)", ErrNotRegular, typeName(fi.Mode()))
	}
	if err == nil {
		// os.Root follows a link that stays inside: refuse it here.
		li, lerr := dir.Lstat(name)
		switch {
		case lerr != nil:
			err = lerr
		case li.Mode()&fs.ModeSymlink != 0:
			err = fmt.Errorf("%w (symbolic link)", ErrNotRegular)
		case !os.SameFile(li, fi):
			err = errors.New("replaced while being opened")
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return f, nil
}

func typeName(m fs.FileMode) string {
	switch {
	case m&fs.ModeSymlink != 0:
		return "symbolic link"
	case m&fs.ModeNamedPipe != 0:
		return "FIFO"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeDevice != 0:
		return "device"
	case m.IsDir():
		return "directory"
	case m.IsRegular():
		return "regular file"
	}
	return "special file"
}

// Services lists the service directories, sorted: directories (not links)
// whose names are valid service names.
func (s *Store) Services() ([]string, error) {
	des, err := readDir(s.root, ".")
	if err != nil {
		return nil, fmt.Errorf("read capture directory %s: %w", s.dir, err)
	}
	var out []string
	for _, de := range des {
		if de.IsDir() && ValidService(de.Name()) == nil {
			out = append(out, de.Name())
		}
	}
	return out, nil
}

// readDir lists the directory name in r, sorted, with each entry's type as
// the kernel's listing gives it.
func readDir(r *os.Root, name string) ([]fs.DirEntry, error) {
	d, err := r.OpenFile(name, os.O_RDONLY|syscall.O_DIRECTORY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, unwrapPath(err)
	}
	defer d.Close()
	// A File opened in a Root lstats every entry in ReadDir; a plain File
	// on a copy of the same descriptor takes the types from getdents(2)
	// (d_type), three times as fast over 10,000 captures.
	fd, err := unix.FcntlInt(d.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), d.Name())
	defer f.Close()
	des, err := f.ReadDir(-1)
	if err != nil {
		return nil, unwrapPath(err)
	}
	sort.Slice(des, func(i, j int) bool { return des[i].Name() < des[j].Name() })
	return des, nil
}

// Entry is one capture file in the directory, known by its name alone.
type Entry struct {
	Service string
	Name    string // file name
	Path    string // as shown: the capture directory, the service, the name
	Time    time.Time
}

// Files lists the captures of service, oldest first, from the directory
// listing alone: regular files named as captures. Another entry named as a
// capture (a link, a FIFO, a directory) is not one: it is passed to warn,
// if warn is set, as an error naming it and saying what it is. A service
// without a directory has no captures; a link in place of the service's
// directory is an error, never followed.
func (s *Store) Files(service string, warn func(error)) ([]Entry, error) {
	if err := ValidService(service); err != nil {
		return nil, err
	}
	r, err := s.subdir(service, false)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("read capture directory %w", err)
	}
	defer r.Close()
	des, err := readDir(r, ".")
	if err != nil {
		return nil, fmt.Errorf("read capture directory %s: %w", s.Path(service), err)
	}
	var out []Entry
	sdir := s.Path(service)
	for _, de := range des {
		t, ok := ParseFileName(de.Name())
		if !ok {
			continue
		}
		path := filepath.Join(sdir, de.Name())
		if !de.Type().IsRegular() {
			if warn != nil {
				warn(fmt.Errorf("%s: %w (%s)", path, ErrNotRegular, typeName(de.Type())))
			}
			continue
		}
		out = append(out, Entry{Service: service, Name: de.Name(), Path: path, Time: t})
	}
	return out, nil
}

// Find returns the captures of any service named name, by service. It is
// how a bare file name (the FILE column of 'preflight list SERVICE') is
// found in the directory.
func (s *Store) Find(name string) ([]Entry, error) {
	if _, ok := ParseFileName(name); !ok {
		return nil, nil
	}
	services, err := s.Services()
	if err != nil {
		return nil, err
	}
	var out []Entry
	for _, svc := range services {
		r, err := s.subdir(svc, false)
		if err != nil {
			continue
		}
		fi, err := r.Lstat(name)
		r.Close()
		if err == nil && fi.Mode().IsRegular() {
			t, _ := ParseFileName(name)
			out = append(out, Entry{Service: svc, Name: name, Path: s.Path(svc, name), Time: t})
		}
	}
	return out, nil
}

// readEntry reads the whole file of a capture, with the guarantees of
// [ReadFile].
func (s *Store) readEntry(e Entry) ([]byte, error) {
	r, done, err := s.readSubdir(e.Service)
	if err != nil {
		return nil, err
	}
	defer done()
	f, err := openFile(r, e.Name, e.Path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readOpen(f, e.Path)
}

// Read reads and decodes a capture. It returns the file's bytes too, for
// printing them unchanged. Errors name the file.
func (s *Store) Read(e Entry) (*Capture, []byte, error) {
	data, err := s.readEntry(e)
	if err != nil {
		return nil, nil, err
	}
	c, err := Decode(data)
	if err != nil {
		return nil, data, fmt.Errorf("%s: %w", e.Path, err)
	}
	return c, data, nil
}

// readOpen reads an open regular file, at most MaxFileSize bytes.
func readOpen(f *os.File, path string) ([]byte, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.Size() > MaxFileSize {
		return nil, fmt.Errorf("%s: %w (%d bytes, limit %d)", path, ErrTooLarge, st.Size(), MaxFileSize)
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, unwrapPath(err))
	}
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("%s: %w (limit %d bytes)", path, ErrTooLarge, MaxFileSize)
	}
	return data, nil
}

// Write atomically and durably writes a capture of service under name
// (mode [FileMode]; see package atomicfile), re-creating the capture and
// service directories if they were removed. It reports whether the name
// is new.
func (s *Store) Write(service, name string, data []byte) (created bool, err error) {
	if err := ValidService(service); err != nil {
		return false, err
	}
	if _, ok := ParseFileName(name); !ok {
		return false, fmt.Errorf("%q is not a capture's name", name)
	}
	if err := s.refresh(); err != nil {
		return false, err
	}
	r, err := s.subdir(service, true)
	if err != nil {
		return false, err
	}
	defer r.Close()
	_, err = r.Lstat(name)
	created = errors.Is(err, fs.ErrNotExist)
	if err := atomicfile.WriteFile(r, name, data, FileMode); err != nil {
		return false, &fs.PathError{Op: "write", Path: s.Path(service, name), Err: unwrapPath(err)}
	}
	return created, nil
}

// Prepare readies the service's directory for writing: it creates it if
// missing, sets [DirMode] on it if it is the effective user's, and proves
// that a file can be created in it. It removes nothing.
func (s *Store) Prepare(service string) error {
	if err := ValidService(service); err != nil {
		return err
	}
	r, err := s.subdir(service, true)
	if err != nil {
		return err
	}
	defer r.Close()
	if fi, err := s.root.Lstat(service); err == nil && fi.Mode().Perm() != DirMode && atomicfile.OwnedByMe(fi) {
		if err := s.chmodDir(service, fi); err != nil {
			return fmt.Errorf("set mode of %s: %w", s.Path(service), unwrapPath(err))
		}
	}
	name := probeName + strconv.FormatUint(rand.Uint64(), 10)
	f, err := r.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, FileMode)
	if err != nil {
		return fmt.Errorf("%s is not writable: %w", s.Path(service), unwrapPath(err))
	}
	f.Close()
	return r.Remove(name)
}

// probeName is the prefix of the file Prepare creates and removes to prove
// a directory writable: "." + "probe" + random digits, a temporary file
// that CleanStale recognizes if a killed writer left it.
const probeName = ".probe"

// NextName returns the file name of a new capture of service whose
// incident began at t. Names never go backwards: it is FileName(t) unless a
// capture of service, or one of taken (names of captures not yet written),
// is named at or after it; then it is 1 ms after the newest of them. So a
// capture made after the clock was stepped back still sorts as the newest,
// and 'last' and KEEP pick the right one. It never names an existing entry.
func (s *Store) NextName(service string, t time.Time, taken []string) (string, error) {
	files, err := s.Files(service, nil)
	if err != nil {
		return "", err
	}
	newest := time.Time{}
	for _, f := range files {
		newest = later(newest, f.Time)
	}
	for _, n := range taken {
		if nt, ok := ParseFileName(n); ok {
			newest = later(newest, nt)
		}
	}
	t = t.UTC().Truncate(time.Millisecond)
	if !newest.IsZero() && !t.After(newest) {
		t = newest.Add(time.Millisecond)
	}
	r, err := s.subdir(service, false)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	if r != nil {
		defer r.Close()
	}
	for ; ; t = t.Add(time.Millisecond) {
		name := FileName(t)
		if slices.Contains(taken, name) {
			continue
		}
		if r != nil {
			if _, err := r.Lstat(name); err == nil {
				continue
			}
		}
		return name, nil
	}
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// Retain removes the oldest captures of service beyond keep, never the
// file named protect. It counts and removes only its own captures: regular
// files named as captures and owned by the effective user. It never follows
// links, and returns the names it removed.
func (s *Store) Retain(service string, keep int, protect string) ([]string, error) {
	files, err := s.Files(service, nil)
	if err != nil || len(files) <= keep {
		return nil, err
	}
	r, err := s.subdir(service, false)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var own []Entry
	for _, e := range files {
		if fi, err := r.Lstat(e.Name); err == nil && fi.Mode().IsRegular() && atomicfile.OwnedByMe(fi) {
			own = append(own, e)
		}
	}
	excess := len(own) - keep
	var removed []string
	for _, e := range own {
		if excess <= 0 {
			break
		}
		if e.Name == protect {
			continue
		}
		if err := r.Remove(e.Name); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return removed, fmt.Errorf("remove old capture %s: %w", e.Path, unwrapPath(err))
		}
		removed = append(removed, e.Name)
		excess--
	}
	if len(removed) > 0 {
		if err := atomicfile.SyncDir(r); err != nil {
			return removed, err
		}
	}
	return removed, nil
}

// CleanStale removes the temporary files a killed writer of service left:
// those of its captures and probes in its directory, and those of its
// state file. Only the effective user's regular files are removed. Call it
// only while holding the service's [Lock]. It returns the paths removed.
func (s *Store) CleanStale(service string) ([]string, error) {
	var removed []string
	if r, err := s.subdir(service, false); err == nil {
		names, err := atomicfile.CleanStale(r, func(name string) bool {
			_, ok := ParseFileName(name)
			return ok || name == probeName[1:]
		})
		r.Close()
		for _, n := range names {
			removed = append(removed, s.Path(service, n))
		}
		if err != nil {
			return removed, err
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if r, err := s.subdir(StateDir, false); err == nil {
		names, err := atomicfile.CleanStale(r, func(name string) bool { return name == service+Ext })
		r.Close()
		for _, n := range names {
			removed = append(removed, s.Path(StateDir, n))
		}
		if err != nil {
			return removed, err
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return removed, err
	}
	return removed, nil
}

// unwrapPath drops a *PathError's op and path, which the caller's message
// already says, keeping the reason ("permission denied", "no space left on
// device").
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	var le *os.LinkError
	if errors.As(err, &le) {
		return le.Err
	}
	return err
}
