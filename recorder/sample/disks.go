package sample

import (
	"regexp"
	"time"

	"github.com/prometheus/procfs"
	"golang.org/x/sys/unix"

	"github.com/preflight-rec/preflight/recorder/capture"
)

// The default exclusions of node_exporter's filesystem collector
// (collector/filesystem_linux.go, defFSTypesExcluded and
// defMountPointsExcluded): pseudo and read-only image filesystems, and
// mount points under /dev, /proc, /sys and container storage.
var (
	excludedFSTypes = map[string]bool{
		"autofs": true, "binfmt_misc": true, "bpf": true, "cgroup": true, "cgroup2": true,
		"configfs": true, "debugfs": true, "devpts": true, "devtmpfs": true, "fusectl": true,
		"hugetlbfs": true, "iso9660": true, "mqueue": true, "nsfs": true, "overlay": true,
		"proc": true, "procfs": true, "pstore": true, "rpc_pipefs": true, "securityfs": true,
		"selinuxfs": true, "squashfs": true, "erofs": true, "sysfs": true, "tracefs": true,
	}
	excludedMountPoints = regexp.MustCompile(`^/(dev|proc|run/credentials/.+|sys|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)`)
)

// defaultStatfsTimeout bounds the statfs calls of one sample: a hung network
// filesystem must not stop the recorder. A mount whose statfs has not
// returned is skipped until it does.
const defaultStatfsTimeout = 2 * time.Second

// mount is a filesystem to report.
type mount struct {
	point, device, fstype string
}

// selectMounts picks the real filesystems of a mount table, in its order:
// excluded types and mount points are dropped, a mount hidden by a later
// mount on the same point is dropped, and of several mounts of one device
// (bind mounts) only one is kept, the mount of the filesystem's root if
// there is one, else the first.
func selectMounts(mounts []*procfs.MountInfo) []mount {
	lastOn := make(map[string]int, len(mounts))
	for i, m := range mounts {
		lastOn[unescapeMount(m.MountPoint)] = i
	}
	chosen := make(map[string]int, len(mounts))
	for i, m := range mounts {
		point := unescapeMount(m.MountPoint)
		if lastOn[point] != i || excludedFSTypes[m.FSType] || excludedMountPoints.MatchString(point) {
			continue
		}
		if j, ok := chosen[m.MajorMinorVer]; !ok || (mounts[j].Root != "/" && m.Root == "/") {
			chosen[m.MajorMinorVer] = i
		}
	}
	out := make([]mount, 0, len(chosen))
	for i, m := range mounts {
		if j, ok := chosen[m.MajorMinorVer]; ok && j == i {
			out = append(out, mount{point: unescapeMount(m.MountPoint), device: unescapeMount(m.Source), fstype: m.FSType})
		}
	}
	return out
}

// diskOf turns a statfs result into a disk; ok is false for a 0-size
// filesystem. used_percent is df's: used / (used + available to users).
func diskOf(m mount, st *unix.Statfs_t) (capture.Disk, bool) {
	bs := uint64(st.Frsize)
	if bs == 0 {
		bs = uint64(st.Bsize)
	}
	total := st.Blocks * bs
	if total == 0 {
		return capture.Disk{}, false
	}
	used := total - min(st.Bfree*bs, total)
	avail := st.Bavail * bs
	d := capture.Disk{Mount: printable(m.point), Device: printable(m.device), FSType: m.fstype, TotalBytes: total, UsedBytes: used}
	if used+avail > 0 {
		d.UsedPercent = round2(float64(used) / float64(used+avail) * 100)
	}
	if st.Files > 0 {
		d.InodesUsedPercent = round2(float64(st.Files-min(st.Ffree, st.Files)) / float64(st.Files) * 100)
	}
	return d, true
}

type statfsResult struct {
	st  unix.Statfs_t
	err error
}

// disks reads the mount table and statfs's the selected mounts
// concurrently, waiting at most s.statfsTimeout in all.
func (rd *reader) disks() []capture.Disk {
	disks := []capture.Disk{}
	table, err := rd.fs.GetMounts()
	if err != nil {
		return disks
	}
	mounts := selectMounts(table)
	results := make([]chan statfsResult, len(mounts))
	rd.stuckMu.Lock()
	for i, m := range mounts {
		if rd.stuck[m.point] {
			continue
		}
		ch := make(chan statfsResult, 1)
		results[i] = ch
		go func() {
			var r statfsResult
			r.err = rd.statfs(m.point, &r.st)
			ch <- r
		}()
	}
	rd.stuckMu.Unlock()

	timer := time.NewTimer(rd.statfsTimeout)
	defer timer.Stop()
	expired := false
	for i, m := range mounts {
		ch := results[i]
		if ch == nil {
			continue
		}
		var r statfsResult
		got := false
		if !expired {
			select {
			case r = <-ch:
				got = true
			case <-timer.C:
				expired = true
			}
		}
		if !got {
			select {
			case r = <-ch:
				got = true
			default:
			}
		}
		if !got {
			rd.markStuck(m.point, ch)
			continue
		}
		if r.err != nil {
			continue
		}
		if d, ok := diskOf(m, &r.st); ok {
			disks = append(disks, d)
		}
	}
	return disks
}

// markStuck skips point in later samples until its pending statfs returns.
func (rd *reader) markStuck(point string, pending <-chan statfsResult) {
	rd.stuckMu.Lock()
	rd.stuck[point] = true
	rd.stuckMu.Unlock()
	go func() {
		<-pending
		rd.stuckMu.Lock()
		delete(rd.stuck, point)
		rd.stuckMu.Unlock()
	}()
}
