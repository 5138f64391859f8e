package sample

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
)

// errParse is wrapped by every parse error of this package.
var errParse = errors.New("malformed proc file")

// procStat is the part of /proc/PID/stat the sampler uses. Comm aliases the
// parsed buffer.
type procStat struct {
	PID        int
	Comm       []byte
	State      byte
	UTime      uint64 // clock ticks in user mode
	STime      uint64 // clock ticks in kernel mode
	NumThreads int
	StartTime  uint64 // clock ticks after boot
	RSS        uint64 // resident pages
}

// Field positions in /proc/PID/stat, counted from the state field (0)
// after the command name. See proc_pid_stat(5).
const (
	fieldState      = 0
	fieldUTime      = 11
	fieldSTime      = 12
	fieldNumThreads = 17
	fieldStartTime  = 19
	fieldRSS        = 21
)

// parseStat parses one /proc/PID/stat line without allocating. The command
// name is everything between the first '(' and the last ')', so names with
// spaces and parentheses parse.
func parseStat(b []byte) (procStat, error) {
	var st procStat
	open := bytes.IndexByte(b, '(')
	closing := bytes.LastIndexByte(b, ')')
	if open < 1 || closing < open {
		return st, fmt.Errorf("%w: no command name in %q", errParse, b)
	}
	pid, ok := parseUint(bytes.TrimSpace(b[:open]))
	if !ok {
		return st, fmt.Errorf("%w: bad pid in %q", errParse, b)
	}
	st.PID = int(pid)
	st.Comm = b[open+1 : closing]

	rest := b[closing+1:]
	field := -1
	for len(rest) > 0 && field < fieldRSS {
		i := 0
		for i < len(rest) && rest[i] == ' ' {
			i++
		}
		rest = rest[i:]
		j := 0
		for j < len(rest) && rest[j] != ' ' && rest[j] != '\n' {
			j++
		}
		if j == 0 {
			break
		}
		word := rest[:j]
		rest = rest[j:]
		field++
		var v uint64
		switch field {
		case fieldState:
			if len(word) != 1 || !isLetter(word[0]) { // R, S, D, Z, T, t, X, I…
				return st, fmt.Errorf("%w: bad state %q", errParse, word)
			}
			st.State = word[0]
			continue
		case fieldUTime, fieldSTime, fieldNumThreads, fieldStartTime, fieldRSS:
			v, ok = parseUint(word)
			if !ok {
				return st, fmt.Errorf("%w: bad field %d %q", errParse, field, word)
			}
		default:
			continue
		}
		switch field {
		case fieldUTime:
			st.UTime = v
		case fieldSTime:
			st.STime = v
		case fieldNumThreads:
			st.NumThreads = int(v)
		case fieldStartTime:
			st.StartTime = v
		case fieldRSS:
			st.RSS = v
		}
	}
	if field < fieldRSS {
		return st, fmt.Errorf("%w: %d fields after the command name, want %d", errParse, field+1, fieldRSS+1)
	}
	return st, nil
}

// parseUint parses a decimal number without allocating.
func parseUint(b []byte) (uint64, bool) {
	if len(b) == 0 || len(b) > 19 {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + uint64(c-'0')
	}
	return v, true
}

// cpuTimes are the counters of the "cpu" line of /proc/stat, in clock ticks.
type cpuTimes struct {
	User, Nice, System, Idle, IOWait, IRQ, SoftIRQ, Steal uint64
}

// parseCPUStat parses /proc/stat: the summed "cpu" line and the number of
// per-CPU "cpuN" lines (the online CPUs). Guest time is already part of user
// and nice, so it is not read.
func parseCPUStat(b []byte) (cpuTimes, int, error) {
	var t cpuTimes
	found := false
	cpus := 0
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		if !bytes.HasPrefix(line, []byte("cpu")) {
			if found {
				break // the cpu lines come first
			}
			continue
		}
		if len(line) > 3 && line[3] != ' ' {
			cpus++
			continue
		}
		fields := bytes.Fields(line[3:])
		if len(fields) < 4 {
			return t, 0, fmt.Errorf("%w: %d fields in cpu line %q, want at least 4", errParse, len(fields), line)
		}
		dst := []*uint64{&t.User, &t.Nice, &t.System, &t.Idle, &t.IOWait, &t.IRQ, &t.SoftIRQ, &t.Steal}
		for i, f := range fields {
			if i == len(dst) {
				break
			}
			v, ok := parseUint(f)
			if !ok {
				return t, 0, fmt.Errorf("%w: bad number %q in cpu line", errParse, f)
			}
			*dst[i] = v
		}
		found = true
	}
	if !found {
		return t, 0, fmt.Errorf("%w: no cpu line", errParse)
	}
	return t, cpus, nil
}

// direntPIDs appends to pids the numeric names in a buffer of linux_dirent64
// records, as filled by getdents64(2): the processes in a /proc listing.
func direntPIDs(buf []byte, pids []int) []int {
	forDirents(buf, func(name []byte) {
		if pid, ok := parseUint(name); ok && pid > 0 && pid <= 1<<31-1 {
			pids = append(pids, int(pid))
		}
	})
	return pids
}

// forDirents calls f with the name of every entry of a buffer of
// linux_dirent64 records, as getdents64(2) fills it.
func forDirents(buf []byte, f func(name []byte)) {
	const nameOff = 19 // d_ino u64, d_off s64, d_reclen u16, d_type u8
	for len(buf) >= nameOff {
		reclen := int(binary.NativeEndian.Uint16(buf[16:18]))
		if reclen < nameOff || reclen > len(buf) {
			break
		}
		name := buf[nameOff:reclen]
		if i := bytes.IndexByte(name, 0); i >= 0 {
			name = name[:i]
		}
		f(name)
		buf = buf[reclen:]
	}
}

// splitCmdline splits the contents of /proc/PID/cmdline into arguments. A
// process that rewrote its command line may leave no NUL separators; its
// single argument is then split by Redact's word scanning.
func splitCmdline(b []byte) []string {
	b = bytes.TrimRight(b, "\x00")
	if len(b) == 0 {
		return nil
	}
	return strings.Split(string(b), "\x00")
}

// unescapeMount undoes the octal escapes (\040 space, \011 tab, \012
// newline, \134 backslash) of mount points and sources in mountinfo.
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && s[i+1] <= '3' && isOctal(s[i+1]) && isOctal(s[i+2]) && isOctal(s[i+3]) {
			b.WriteByte((s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0'))
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isOctal(c byte) bool { return c >= '0' && c <= '7' }
