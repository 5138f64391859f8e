package sample

import (
	"encoding/binary"
	"errors"
	"reflect"
	"testing"

	"github.com/prometheus/procfs"
)

func TestParseStat(t *testing.T) {
	const tail = " 1 0 0 0 -1 4194304 100 0 0 0 1500 250 3 4 20 0 9 0 777 123456789 4242 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n"
	ok := func(pid int, comm string, state byte) procStat {
		return procStat{PID: pid, Comm: []byte(comm), State: state, UTime: 1500, STime: 250, NumThreads: 9, StartTime: 777, RSS: 4242}
	}
	tests := []struct {
		name string
		in   string
		want procStat
		err  bool
	}{
		{"plain", "1234 (nginx) S" + tail, ok(1234, "nginx", 'S'), false},
		{"spaces", "7 (web server) R" + tail, ok(7, "web server", 'R'), false},
		{"parentheses", "1234 (a) b)) S" + tail, ok(1234, "a) b)", 'S'), false},
		{"open paren", "5 ((sd-pam)) S" + tail, ok(5, "(sd-pam)", 'S'), false},
		{"close paren then digits", "6 (x) 1 2) Z" + tail, ok(6, "x) 1 2", 'Z'), false},
		{"empty name", "8 () D" + tail, ok(8, "", 'D'), false},
		{"kernel thread name", "42 (kworker/0:1-events) I" + tail, ok(42, "kworker/0:1-events", 'I'), false},
		{"no trailing newline", "9 (a) S" + tail[:len(tail)-1], ok(9, "a", 'S'), false},
		{"exactly to rss", "10 (a) S 1 0 0 0 -1 4194304 100 0 0 0 1500 250 3 4 20 0 9 0 777 123456789 4242", ok(10, "a", 'S'), false},
		{"short", "11 (a) S 1 0 0 0 -1 4194304 100 0 0 0 1500 250 3 4 20 0 9 0 777 123456789", procStat{}, true},
		{"no name", "12 a S" + tail, procStat{}, true},
		{"no pid", "(a) S" + tail, procStat{}, true},
		{"bad pid", "x1 (a) S" + tail, procStat{}, true},
		{"bad utime", "13 (a) S 1 0 0 0 -1 4194304 100 0 0 0 15x0 250 3 4 20 0 9 0 777 123456789 4242", procStat{}, true},
		{"long state", "14 (a) SS" + tail, procStat{}, true},
		{"empty", "", procStat{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStat([]byte(tt.in))
			if tt.err {
				if err == nil {
					t.Fatalf("parseStat(%q) = %+v, want an error", tt.in, got)
				}
				if !errors.Is(err, errParse) {
					t.Errorf("error %v does not wrap errParse", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseStat(%q): %v", tt.in, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("parseStat(%q)\n got %+v\nwant %+v", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseStatAllocs(t *testing.T) {
	b := []byte("1234 (a) b)) S 1 0 0 0 -1 4194304 100 0 0 0 1500 250 3 4 20 0 9 0 777 123456789 4242 0 0\n")
	if n := testing.AllocsPerRun(100, func() { _, _ = parseStat(b) }); n != 0 {
		t.Errorf("parseStat allocates %v times per call, want 0", n)
	}
}

func TestParseCPUStat(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want cpuTimes
		cpus int
		err  bool
	}{
		{
			name: "full",
			in:   "cpu  1 2 3 4 5 6 7 8 9 10\ncpu0 1 1 1 1 1 1 1 1 0 0\ncpu1 0 1 2 3 4 5 6 7 9 10\nintr 1 2\nctxt 5\n",
			want: cpuTimes{1, 2, 3, 4, 5, 6, 7, 8}, cpus: 2,
		},
		{
			name: "old kernel, four counters",
			in:   "cpu 10 20 30 40\ncpu0 10 20 30 40\n",
			want: cpuTimes{User: 10, Nice: 20, System: 30, Idle: 40}, cpus: 1,
		},
		{
			name: "sparse cpu numbers",
			in:   "cpu  1 2 3 4 5 6 7 8\ncpu0 1 2 3 4 5 6 7 8\ncpu3 0 0 0 0 0 0 0 0\ncpu17 0 0 0 0 0 0 0 0\nintr 0\n",
			want: cpuTimes{1, 2, 3, 4, 5, 6, 7, 8}, cpus: 3,
		},
		{name: "no cpu line", in: "intr 1\nctxt 2\n", err: true},
		{name: "short cpu line", in: "cpu 1 2 3\n", err: true},
		{name: "bad number", in: "cpu 1 2 x 4\n", err: true},
		{name: "empty", in: "", err: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, cpus, err := parseCPUStat([]byte(tt.in))
			if tt.err {
				if !errors.Is(err, errParse) {
					t.Fatalf("parseCPUStat(%q) error %v, want errParse", tt.in, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want || cpus != tt.cpus {
				t.Errorf("parseCPUStat(%q) = %+v, %d; want %+v, %d", tt.in, got, cpus, tt.want, tt.cpus)
			}
		})
	}
}

func TestCPUPercents(t *testing.T) {
	a := cpuTimes{User: 1000, Nice: 100, System: 500, Idle: 8000, IOWait: 200, IRQ: 50, SoftIRQ: 50, Steal: 100}
	b := cpuTimes{User: 1250, Nice: 150, System: 600, Idle: 9300, IOWait: 300, IRQ: 100, SoftIRQ: 100, Steal: 200}
	got := cpuPercents(a, b)
	// Deltas: user 250+50, system 100+50+50, steal 100, idle 1300, iowait 100: 2000 ticks.
	want := struct{ Percent, User, System, IOWait, Steal float64 }{30, 15, 10, 5, 5}
	if got.Percent == nil || *got.Percent != want.Percent || *got.User != want.User || *got.System != want.System || *got.IOWait != want.IOWait || *got.Steal != want.Steal {
		t.Errorf("cpuPercents = %+v, want %+v", got, want)
	}
	if z := cpuPercents(b, a); z.Percent != nil || z.User != nil {
		t.Errorf("counters going backwards give %+v, want null percents", z)
	}
}

// dirent builds one linux_dirent64 record.
func dirent(name string) []byte {
	reclen := (19 + len(name) + 1 + 7) &^ 7
	b := make([]byte, reclen)
	binary.NativeEndian.PutUint64(b[0:], 1)
	binary.NativeEndian.PutUint16(b[16:], uint16(reclen))
	b[18] = 4 // DT_DIR
	copy(b[19:], name)
	return b
}

func TestDirentPIDs(t *testing.T) {
	var buf []byte
	for _, name := range []string{".", "..", "1", "self", "42", "thread-self", "1234567", "0", "99999999999999999999", "12a", "sys", "4194304"} {
		buf = append(buf, dirent(name)...)
	}
	got := direntPIDs(buf, []int{7})
	want := []int{7, 1, 42, 1234567, 4194304}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("direntPIDs = %v, want %v", got, want)
	}
	// A truncated record ends the walk.
	if got := direntPIDs(buf[:len(buf)-3], nil); len(got) != 3 {
		t.Errorf("truncated buffer gave %v, want the first 3 PIDs", got)
	}
}

func TestSplitCmdline(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"\x00", nil},
		{"sleep\x0060\x00", []string{"sleep", "60"}},
		{"a\x00\x00b\x00", []string{"a", "", "b"}},
		{"postgres: writer process   ", []string{"postgres: writer process   "}},
	}
	for _, tt := range tests {
		if got := splitCmdline([]byte(tt.in)); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("splitCmdline(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestUnescapeMount(t *testing.T) {
	tests := map[string]string{
		"/":                   "/",
		`/mnt/my\040disk`:     "/mnt/my disk",
		`/a\011b\012c\134d`:   "/a\tb\nc\\d",
		`/trailing\04`:        `/trailing\04`,
		`/not\999octal`:       `/not\999octal`,
		`/big\400`:            `/big\400`,
		`\040\040`:            "  ",
		`/plain/back\slash/x`: `/plain/back\slash/x`,
	}
	for in, want := range tests {
		if got := unescapeMount(in); got != want {
			t.Errorf("unescapeMount(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSelectMounts(t *testing.T) {
	m := func(dev, root, point, fstype, source string) *procfs.MountInfo {
		return &procfs.MountInfo{MajorMinorVer: dev, Root: root, MountPoint: point, FSType: fstype, Source: source}
	}
	tests := []struct {
		name string
		in   []*procfs.MountInfo
		want []mount
	}{
		{
			name: "pseudo filesystems and excluded mount points",
			in: []*procfs.MountInfo{
				m("0:21", "/", "/proc", "proc", "proc"),
				m("0:22", "/", "/sys", "sysfs", "sysfs"),
				m("0:5", "/", "/dev/shm", "tmpfs", "tmpfs"),
				m("0:26", "/", "/sys/fs/cgroup/unified", "cgroup2", "cgroup2"),
				m("0:27", "/", "/sys/fs/cgroup/memory", "cgroup", "cgroup"),
				m("0:40", "/", "/proc/sys/fs/binfmt_misc", "binfmt_misc", "binfmt_misc"),
				m("7:1", "/", "/snap/x/1", "squashfs", "/dev/loop1"),
				m("0:50", "/", "/mnt/layer", "overlay", "overlay"),
				m("0:51", "/", "/run/credentials/x.service", "tmpfs", "tmpfs"),
				m("0:52", "/", "/var/lib/docker/volumes", "ext4", "/dev/sdz"),
				m("0:53", "/", "/mnt/tracing", "tracefs", "tracefs"),
				m("254:0", "/", "/", "ext4", "/dev/vda"),
				m("0:54", "/", "/run", "tmpfs", "tmpfs"),
				m("0:55", "/", "/run/credentials", "tmpfs", "tmpfs"),
				m("0:56", "/", "/var/lib/docker", "ext4", "/dev/vdd"),
				m("0:57", "/", "/devices", "ext4", "/dev/vde"),
			},
			want: []mount{
				{"/", "/dev/vda", "ext4"},
				{"/run", "tmpfs", "tmpfs"},
				{"/run/credentials", "tmpfs", "tmpfs"},
				{"/var/lib/docker", "/dev/vdd", "ext4"},
				{"/devices", "/dev/vde", "ext4"},
			},
		},
		{
			name: "bind mounts of one device",
			in: []*procfs.MountInfo{
				m("254:0", "/", "/", "ext4", "/dev/vda"),
				m("254:0", "/home", "/home", "ext4", "/dev/vda"),
				m("254:1", "/exports", "/srv", "ext4", "/dev/vdb"),
				m("254:1", "/", "/mnt/vdb", "ext4", "/dev/vdb"),
				m("254:1", "/", "/mnt/vdb-again", "ext4", "/dev/vdb"),
				m("254:2", "/a", "/only-binds", "xfs", "/dev/vdc"),
				m("254:2", "/b", "/only-binds-2", "xfs", "/dev/vdc"),
			},
			want: []mount{
				{"/", "/dev/vda", "ext4"},
				{"/mnt/vdb", "/dev/vdb", "ext4"},
				{"/only-binds", "/dev/vdc", "xfs"},
			},
		},
		{
			name: "stacked mounts and escapes",
			in: []*procfs.MountInfo{
				m("0:60", "/", "/mnt/stacked", "tmpfs", "first"),
				m("8:1", "/", `/mnt/my\040disk`, "vfat", `/dev/disk/by-label/my\040label`),
				m("0:61", "/", "/mnt/stacked", "tmpfs", "second"),
			},
			want: []mount{
				{"/mnt/my disk", "/dev/disk/by-label/my label", "vfat"},
				{"/mnt/stacked", "second", "tmpfs"},
			},
		},
		{name: "empty", in: nil, want: []mount{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := selectMounts(tt.in); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("selectMounts\n got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestTop(t *testing.T) {
	recs := []procRec{
		{pid: 10, cpu: 5, rss: 100},
		{pid: 3, cpu: 50, rss: 10},
		{pid: 7, cpu: 5, rss: 1000},
		{pid: 1, cpu: 0, rss: 1000},
		{pid: 99, cpu: 75, rss: 0},
		{pid: 2, cpu: 5, rss: 5},
	}
	pids := func(idx []int) []int {
		var out []int
		for _, i := range idx {
			out = append(out, recs[i].pid)
		}
		return out
	}
	tests := []struct {
		n      int
		better func(a, b *procRec) bool
		want   []int
	}{
		{3, byCPU, []int{99, 3, 2}},
		{4, byCPU, []int{99, 3, 2, 7}},
		{10, byCPU, []int{99, 3, 2, 7, 10, 1}},
		{1, byCPU, []int{99}},
		{0, byCPU, nil},
		{3, byRSS, []int{1, 7, 10}},
		{6, byRSS, []int{1, 7, 10, 3, 2, 99}},
	}
	for _, tt := range tests {
		if got := pids(top(recs, tt.n, tt.better, nil)); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("top(%d) = %v, want %v", tt.n, got, tt.want)
		}
	}
}
