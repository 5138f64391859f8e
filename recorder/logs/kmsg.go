package logs

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/preflight-rec/preflight/recorder/capture"
)

// Record is one record of /dev/kmsg: "PRIO,SEQ,USEC,FLAGS;TEXT" followed
// by " KEY=VALUE" continuation lines (Documentation/ABI/testing/dev-kmsg).
type Record struct {
	Facility int
	Level    int
	Seq      uint64
	Usec     uint64 // when it was logged: microseconds of CLOCK_MONOTONIC
	Text     string // with the kernel's \xNN escapes of unprintable bytes
}

// ParseKmsg parses one record as read(2) on /dev/kmsg returns it.
func ParseKmsg(b []byte) (Record, bool) {
	head, text, ok := bytes.Cut(b, []byte{';'})
	if !ok {
		return Record{}, false
	}
	if i := bytes.IndexByte(text, '\n'); i >= 0 {
		text = text[:i] // the dictionary's " KEY=VALUE" lines follow
	}
	f := strings.SplitN(string(head), ",", 5)
	if len(f) < 4 {
		return Record{}, false
	}
	prio, err1 := strconv.ParseUint(f[0], 10, 16)
	seq, err2 := strconv.ParseUint(f[1], 10, 64)
	usec, err3 := strconv.ParseUint(f[2], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return Record{}, false
	}
	return Record{Facility: int(prio >> 3), Level: int(prio & 7), Seq: seq, Usec: usec, Text: string(text)}, true
}

// WallTime turns a record's monotonic timestamp into wall time, given the
// wall clock and CLOCK_MONOTONIC read together now. (printk stamps with
// local_clock, which like CLOCK_MONOTONIC stops during suspend.)
func WallTime(usec uint64, now time.Time, mono time.Duration) time.Time {
	return now.Add(time.Duration(usec)*time.Microsecond - mono)
}

// clocks reads the wall clock and CLOCK_MONOTONIC together.
func clocks() (time.Time, time.Duration, error) {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return time.Time{}, 0, fmt.Errorf("clock_gettime: %w", err)
	}
	return time.Now(), time.Duration(ts.Nano()), nil
}

// maxKmsgRecords bounds one read of the kernel's ring, whatever its size.
const maxKmsgRecords = 1 << 16

// ReadKmsg reads the kernel's log from path (/dev/kmsg) and returns the
// kernel's own lines (facility 0, not what processes wrote into it) logged
// since since that f finds about the service ([Select]). It needs
// CAP_SYSLOG where kernel.dmesg_restrict is 1; the error then is
// fs.ErrPermission's.
func ReadKmsg(path string, since time.Time, f *Filter) ([]capture.KernelLine, error) {
	lines, err := KmsgLines(path, since)
	if err != nil {
		return nil, err
	}
	return Select(lines, f), nil
}

// KmsgLines is [ReadKmsg] without the selection: all the kernel's own
// lines logged since since, uncut (at most maxKmsgRecords).
func KmsgLines(path string, since time.Time) ([]capture.KernelLine, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	defer unix.Close(fd)
	now, mono, err := clocks()
	if err != nil {
		return nil, err
	}
	var lines []capture.KernelLine
	buf := make([]byte, 16<<10) // a record is at most 8 KiB (CONSOLE_EXT_LOG_MAX)
	for range maxKmsgRecords {
		n, err := unix.Read(fd, buf)
		if errors.Is(err, syscall.EPIPE) {
			continue // overwritten while we read: the next one follows
		}
		if errors.Is(err, syscall.EAGAIN) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", path, err)
		}
		r, ok := ParseKmsg(buf[:n])
		if !ok || r.Facility != 0 {
			continue
		}
		at := WallTime(r.Usec, now, mono)
		if at.Before(since) {
			continue
		}
		lines = append(lines, capture.KernelLine{At: at.UTC(), Text: r.Text})
	}
	return lines, nil
}

// Select returns the lines f finds about the service, cut and bounded.
func Select(lines []capture.KernelLine, f *Filter) []capture.KernelLine {
	texts := make([]string, len(lines))
	for i, l := range lines {
		texts[i] = l.Text
	}
	out := []capture.KernelLine{}
	for _, i := range f.Select(texts) {
		out = append(out, capture.KernelLine{At: lines[i].At, Text: Cut(lines[i].Text)})
	}
	return Bound(out)
}

// Bound keeps the newest lines within MaxKernelLines and MaxKernelBytes.
func Bound(lines []capture.KernelLine) []capture.KernelLine {
	if len(lines) > MaxKernelLines {
		lines = lines[len(lines)-MaxKernelLines:]
	}
	total := 0
	for i := len(lines) - 1; i >= 0; i-- {
		total += len(lines[i].Text)
		if total > MaxKernelBytes {
			return lines[i+1:]
		}
	}
	return lines
}
