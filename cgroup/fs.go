package cgroup

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

// ErrNotFound is returned when a unit has no cgroup now, or a cgroup does
// not exist in any hierarchy.
var ErrNotFound = errors.New("cgroup not found")

// Layout is how the cgroup hierarchies are mounted.
type Layout int

// The layouts [NewFS] recognises.
const (
	Unified Layout = iota + 1 // pure cgroup v2: root/cgroup.controllers exists
	Hybrid                    // cgroup2 at root/unified, plus v1 controller hierarchies
	Legacy                    // v1 only, name=systemd at root/systemd
)

func (l Layout) String() string {
	switch l {
	case Unified:
		return "unified"
	case Hybrid:
		return "hybrid"
	case Legacy:
		return "legacy"
	}
	return fmt.Sprintf("Layout(%d)", int(l))
}

// Limits of the walk that looks for a unit off the fast paths.
const (
	walkMaxDepth = 8
	walkMaxDirs  = 4096
)

// hierarchy is one mounted cgroup hierarchy.
type hierarchy struct {
	name     string // "unified" (or "" for a v2 root), "systemd" (name=systemd), "memory", "cpu,cpuacct", …
	dir      string
	v2       bool
	cgroupfs bool // a real cgroup mount, not a fixture tree
}

// isCgroupfs reports whether dir is on a cgroup (v1 or v2) filesystem.
func isCgroupfs(dir string) bool {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return false
	}
	return st.Type == unix.CGROUP2_SUPER_MAGIC || st.Type == unix.CGROUP_SUPER_MAGIC
}

// FS is the set of cgroup hierarchies under one root. It holds no open files
// and no buffers; its methods are safe for concurrent use.
type FS struct {
	root   string
	layout Layout
	v2     string // the cgroup2 hierarchy's dir, "" in legacy
	// v1 controller hierarchies, "" where not mounted.
	systemd, memory, cpu, cpuacct, pids string
	// every hierarchy, in the order cgroup.procs is looked up: v2,
	// name=systemd, memory, pids, cpu, cpuacct, then the others by name.
	order []hierarchy
	// the hierarchies systemd manages, in the order Find searches them.
	managed []string
}

// NewFS inspects the cgroup hierarchies under root (normally
// "/sys/fs/cgroup"). It fails only when root holds no recognisable layout.
func NewFS(root string) (*FS, error) {
	f := &FS{root: root}
	switch {
	case exists(filepath.Join(root, "cgroup.controllers")):
		f.layout, f.v2 = Unified, root
		f.order = []hierarchy{{name: "", dir: root, v2: true, cgroupfs: isCgroupfs(root)}}
		f.managed = []string{root}
		return f, nil
	case exists(filepath.Join(root, "unified", "cgroup.controllers")):
		f.layout, f.v2 = Hybrid, filepath.Join(root, "unified")
	default:
		f.layout = Legacy
	}
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("failed to read cgroup root: %w", err)
	}
	var v1 []hierarchy
	seen := map[string]bool{}
	for _, e := range entries {
		name := e.Name()
		if name == "unified" || !exists(filepath.Join(root, name, "cgroup.procs")) {
			continue // not a v1 hierarchy
		}
		// cpu and cpuacct are usually symlinks to cpu,cpuacct: one hierarchy.
		dir, err := filepath.EvalSymlinks(filepath.Join(root, name))
		if err != nil || seen[dir] {
			continue
		}
		seen[dir] = true
		name = filepath.Base(dir)
		v1 = append(v1, hierarchy{name: name, dir: dir, cgroupfs: isCgroupfs(dir)})
		for _, c := range strings.Split(name, ",") {
			switch c {
			case "systemd", "name=systemd":
				f.systemd = cmp.Or(f.systemd, dir)
			case "memory":
				f.memory = cmp.Or(f.memory, dir)
			case "cpu":
				f.cpu = cmp.Or(f.cpu, dir)
			case "cpuacct":
				f.cpuacct = cmp.Or(f.cpuacct, dir)
			case "pids":
				f.pids = cmp.Or(f.pids, dir)
			}
		}
	}
	if f.layout == Legacy && len(v1) == 0 {
		return nil, fmt.Errorf("failed to recognise cgroup layout under %s: no cgroup2 and no v1 hierarchy", root)
	}
	rank := func(h hierarchy) int {
		switch h.dir {
		case f.systemd:
			return 0
		case f.memory:
			return 1
		case f.pids:
			return 2
		case f.cpu:
			return 3
		case f.cpuacct:
			return 4
		}
		return 5
	}
	slices.SortStableFunc(v1, func(a, b hierarchy) int {
		if d := rank(a) - rank(b); d != 0 {
			return d
		}
		return strings.Compare(a.name, b.name)
	})
	if f.v2 != "" {
		f.order = append(f.order, hierarchy{name: "unified", dir: f.v2, v2: true, cgroupfs: isCgroupfs(f.v2)})
		f.managed = append(f.managed, f.v2)
	}
	f.order = append(f.order, v1...)
	if f.systemd != "" {
		f.managed = append(f.managed, f.systemd)
	}
	if len(f.managed) == 0 {
		return nil, fmt.Errorf("failed to recognise cgroup layout under %s: no hierarchy managed by systemd", root)
	}
	return f, nil
}

// Layout returns the layout NewFS recognised.
func (f *FS) Layout() Layout { return f.layout }

// Root returns the root NewFS was given.
func (f *FS) Root() string { return f.root }

// cleanPath turns a cgroup path into its canonical rooted form
// ("/system.slice/x.service"); ".." cannot climb above the root.
func cleanPath(p string) (string, error) {
	if p == "" {
		return "", errors.New("failed to use cgroup path: empty")
	}
	return path.Clean("/" + p), nil
}

// Find returns the cgroup path of a systemd unit, as /proc/PID/cgroup shows
// it. A name without a unit type suffix is taken as a service ("x" is
// "x.service"). It returns ErrNotFound when the unit has no cgroup now.
func (f *FS) Find(unit string) (string, error) {
	unit, err := canonicalUnit(unit)
	if err != nil {
		return "", err
	}
	fast := []string{"/system.slice/" + unit}
	if prefix, _, ok := strings.Cut(unit, "@"); ok && prefix != "" {
		fast = append(fast, "/system.slice/system-"+escapeUnitPart(prefix)+".slice/"+unit)
	}
	for _, root := range f.managed {
		for _, p := range fast {
			if isDir(filepath.Join(root, p)) {
				return p, nil
			}
		}
	}
	for _, root := range f.managed {
		if p, ok := walkFor(root, unit); ok {
			return p, nil
		}
	}
	return "", fmt.Errorf("failed to find cgroup of %s: %w", unit, ErrNotFound)
}

// unitSuffixes are systemd's unit types that can own a cgroup.
var unitSuffixes = []string{".service", ".scope", ".slice", ".socket", ".mount", ".swap"}

// canonicalUnit validates a unit name and adds ".service" when it has no
// type suffix, as systemctl does.
func canonicalUnit(unit string) (string, error) {
	if unit == "" || unit == "." || unit == ".." || strings.ContainsAny(unit, "/\x00") {
		return "", fmt.Errorf("failed to use unit name %q: not a unit name", unit)
	}
	for _, s := range unitSuffixes {
		if strings.HasSuffix(unit, s) && len(unit) > len(s) {
			return unit, nil
		}
	}
	return unit + ".service", nil
}

// escapeUnitPart escapes a unit name prefix as systemd does when it names
// the slice of a template's instances (unit_name_escape): "-" and anything
// but [A-Za-z0-9:_.] become \xNN, "/" becomes "-".
func escapeUnitPart(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '/':
			b.WriteByte('-')
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9',
			c == ':', c == '_', c == '.' && i > 0:
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, `\x%02x`, c)
		}
	}
	return b.String()
}

// walkFor looks breadth-first for a directory named unit under root,
// descending only into slices and user managers (user@UID.service), at most
// walkMaxDepth levels and walkMaxDirs directories.
func walkFor(root, unit string) (string, bool) {
	queue := []string{"/"}
	visited := 0
	for depth := 0; depth < walkMaxDepth && len(queue) > 0; depth++ {
		var next []string
		for _, rel := range queue {
			if visited++; visited > walkMaxDirs {
				return "", false
			}
			entries, err := os.ReadDir(filepath.Join(root, rel))
			if err != nil {
				continue // gone meanwhile, or unreadable
			}
			for _, e := range entries {
				if !e.IsDir() {
					continue
				}
				name := e.Name()
				p := path.Join(rel, name)
				if name == unit {
					return p, true
				}
				if strings.HasSuffix(name, ".slice") ||
					(strings.HasPrefix(name, "user@") && strings.HasSuffix(name, ".service")) {
					next = append(next, p)
				}
			}
		}
		queue = next
	}
	return "", false
}

// Procs returns the PIDs of the cgroup at path, ascending, from the first
// hierarchy that has it (v2, name=systemd, memory, pids, cpu, …). When the
// cgroup holds no process itself, the processes of its descendants are
// returned (a delegated service keeps them in sub-cgroups). It returns
// ErrNotFound when no hierarchy has the cgroup.
func (f *FS) Procs(p string) ([]int, error) {
	p, err := cleanPath(p)
	if err != nil {
		return nil, err
	}
	var sr statReader
	return f.procs(&sr, p)
}

// procs is Procs of the cleaned path p, read with sr: a cgroup2
// cgroup.procs from a held file where sr holds files (v1's caches its PID
// list per open file, and is opened afresh).
func (f *FS) procs(sr *statReader, p string) ([]int, error) {
	for _, h := range f.order {
		dir := filepath.Join(h.dir, p)
		var b []byte
		var err error
		if h.v2 {
			b, err = sr.read(dir, "cgroup.procs", maxProcsSize, false)
		} else {
			b, _, err = sr.r.read(filepath.Join(dir, "cgroup.procs"), maxProcsSize, false)
		}
		if isAbsent(err) {
			continue
		}
		if err != nil {
			return nil, wrapRead(err)
		}
		pids, err := appendPIDs(nil, b)
		if err != nil {
			return nil, fmt.Errorf("failed to parse %s: %w", filepath.Join(dir, "cgroup.procs"), err)
		}
		if len(pids) == 0 {
			pids = descendantPIDs(&sr.r, dir, h.v2, pids)
		}
		slices.Sort(pids)
		return pids, nil
	}
	return nil, fmt.Errorf("failed to read processes of cgroup %s: %w", p, ErrNotFound)
}

// Limits of the descent into an empty cgroup's children.
const (
	descMaxDepth = 4
	descMaxDirs  = 256
)

// descendantPIDs appends the PIDs of the cgroups below dir (bounded). On v2
// it first asks cgroup.events whether anything below is populated, which
// spares the walk in the common case of a dead service.
func descendantPIDs(r *reader, dir string, v2 bool, dst []int) []int {
	if v2 {
		b, _, err := r.read(filepath.Join(dir, "cgroup.events"), maxFileSize, false)
		if err == nil {
			if pop, ok, err := parsePopulated(b); err == nil && ok && !pop {
				return dst
			}
		}
	}
	visited := 0
	var walk func(dir string, depth int)
	walk = func(dir string, depth int) {
		if depth > descMaxDepth {
			return
		}
		entries, err := os.ReadDir(dir)
		if err != nil {
			return
		}
		for _, e := range entries {
			if !e.IsDir() {
				continue
			}
			if visited++; visited > descMaxDirs {
				return
			}
			sub := filepath.Join(dir, e.Name())
			if b, _, err := r.read(filepath.Join(sub, "cgroup.procs"), maxProcsSize, false); err == nil {
				dst, _ = appendPIDs(dst, b) // a malformed child file adds what parsed
			}
			walk(sub, depth+1)
		}
	}
	walk(dir, 1)
	return dst
}

// exists reports whether any hierarchy has the cgroup at p.
func (f *FS) exists(p string) bool {
	for _, h := range f.order {
		if isDir(filepath.Join(h.dir, p)) {
			return true
		}
	}
	return false
}

func exists(name string) bool {
	_, err := os.Stat(name)
	return err == nil
}

func isDir(name string) bool {
	st, err := os.Stat(name)
	return err == nil && st.IsDir()
}
