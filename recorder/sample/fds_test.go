package sample

import (
	"os"
	"testing"

	"github.com/preflight-rec/preflight/recorder/capture"
	"golang.org/x/sys/unix"
)

func TestParseNofile(t *testing.T) {
	const head = "Limit                     Soft Limit           Hard Limit           Units     \n" +
		"Max cpu time              unlimited            unlimited            seconds   \n"
	for _, tc := range []struct {
		in   string
		want *uint64
		ok   bool
	}{
		{head + "Max open files            1024                 524288               files     \n", ptr(uint64(1024)), true},
		{head + "Max open files            unlimited            unlimited            files     \n", nil, true},
		{head, nil, false},
		{head + "Max open files            lots                 1                    files     \n", nil, false},
	} {
		got, ok := parseNofile([]byte(tc.in))
		if ok != tc.ok || (got == nil) != (tc.want == nil) || got != nil && *got != *tc.want {
			t.Errorf("parseNofile(%q) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func ptr[T any](v T) *T { return &v }

// AddFDs counts this test's own open files and reads its soft limit.
func TestAddFDs(t *testing.T) {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open("/dev/null")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	ps := []capture.Process{{PID: os.Getpid()}, {PID: 1 << 22}}
	AddFDs("/proc", ps)
	// ReadDir's own descriptor is counted in entries, not by AddFDs (and
	// the reverse): the same number.
	if ps[0].FDs == nil || *ps[0].FDs != len(entries) {
		t.Errorf("fds %v, want %d", ps[0].FDs, len(entries))
	}
	if ps[0].FDLimit == nil || *ps[0].FDLimit != lim.Cur {
		t.Errorf("fd_limit %v, want %d", ps[0].FDLimit, lim.Cur)
	}
	if ps[1].FDs != nil || ps[1].FDLimit != nil {
		t.Errorf("a process that does not exist has fds %v, fd_limit %v", ps[1].FDs, ps[1].FDLimit)
	}
}
