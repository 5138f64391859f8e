package cgroup

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strconv"
)

// v1Unlimited is the smallest value v1 reports for "no limit". The kernel's
// PAGE_COUNTER_MAX times the page size is 9223372036854771712 with 4 KiB
// pages and slightly less with larger pages; no real limit comes near 2^62.
const v1Unlimited = 1 << 62

var errSyntax = errors.New("invalid syntax")

// parseUint parses one decimal number, surrounded by optional white space
// (pseudo-files end with a newline). It does not allocate.
func parseUint(b []byte) (uint64, error) {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return 0, fmt.Errorf("failed to parse number %q: %w", b, errSyntax)
	}
	var v uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("failed to parse number %q: %w", b, errSyntax)
		}
		d := uint64(c - '0')
		if v > (1<<64-1-d)/10 {
			return 0, fmt.Errorf("failed to parse number %q: %w", b, strconv.ErrRange)
		}
		v = v*10 + d
	}
	return v, nil
}

// parseLimit parses a limit: v2's "max" and v1's near-2^63 value mean no
// limit (nil).
func parseLimit(b []byte) (*uint64, error) {
	if string(bytes.TrimSpace(b)) == "max" {
		return nil, nil
	}
	v, err := parseUint(b)
	if err != nil {
		return nil, err
	}
	if v >= v1Unlimited {
		return nil, nil
	}
	return &v, nil
}

// parseKeyed returns the value of key in a flat keyed file ("key value" per
// line: memory.events, cpu.stat, memory.oom_control, memory.stat). ok is
// false when the key is absent; a present key with a bad value is an error.
// It does not allocate.
func parseKeyed(b []byte, key string) (v uint64, ok bool, err error) {
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		k, val, found := bytes.Cut(line, []byte{' '})
		if !found || string(k) != key {
			continue
		}
		v, err := parseUint(val)
		if err != nil {
			return 0, false, fmt.Errorf("failed to parse key %s: %w", key, err)
		}
		return v, true, nil
	}
	return 0, false, nil
}

// psi is one pressure file's avg10 values, in percent.
type psi struct {
	some, full float64
	hasFull    bool // cpu.pressure has a "full" line only since Linux 5.13
}

// parsePressure parses a PSI file:
//
//	some avg10=0.00 avg60=0.00 avg300=0.00 total=0
//	full avg10=0.00 avg60=0.00 avg300=0.00 total=0
func parsePressure(b []byte) (psi, error) {
	var p psi
	seen := false
	for line := range bytes.Lines(b) {
		fields := bytes.Fields(line)
		if len(fields) == 0 {
			continue
		}
		kind := string(fields[0])
		if kind != "some" && kind != "full" {
			return psi{}, fmt.Errorf("failed to parse pressure line %q: %w", line, errSyntax)
		}
		var avg10 float64
		found := false
		for _, f := range fields[1:] {
			k, v, ok := bytes.Cut(f, []byte{'='})
			if ok && string(k) == "avg10" {
				x, err := strconv.ParseFloat(string(v), 64)
				if err == nil && (math.IsNaN(x) || math.IsInf(x, 0) || x < 0) {
					err = errSyntax // a NaN or Inf would make the capture unencodable
				}
				if err != nil {
					return psi{}, fmt.Errorf("failed to parse pressure avg10 %q: %w", v, err)
				}
				avg10, found = x, true
			}
		}
		if !found {
			return psi{}, fmt.Errorf("failed to parse pressure line %q: no avg10: %w", line, errSyntax)
		}
		if kind == "some" {
			p.some, seen = avg10, true
		} else {
			p.full, p.hasFull = avg10, true
		}
	}
	if !seen {
		return psi{}, fmt.Errorf("failed to parse pressure: no some line: %w", errSyntax)
	}
	return p, nil
}

// appendPIDs appends the PIDs of a cgroup.procs file (one per line) to dst,
// in the file's order. On a syntax error it returns what parsed before it.
func appendPIDs(dst []int, b []byte) ([]int, error) {
	v, digits := 0, 0
	for i, c := range b {
		switch {
		case c >= '0' && c <= '9':
			d := int(c - '0')
			if v > (1<<31-1-d)/10 { // a PID is at most 2^31-1
				return dst, fmt.Errorf("failed to parse pid at byte %d: %w", i, strconv.ErrRange)
			}
			v = v*10 + d
			digits++
		case c == '\n' || c == ' ':
			if digits > 0 {
				dst = append(dst, v)
			}
			v, digits = 0, 0
		default:
			return dst, fmt.Errorf("failed to parse pid at byte %d: %w", i, errSyntax)
		}
	}
	if digits > 0 {
		dst = append(dst, v)
	}
	return dst, nil
}

// parsePopulated reads "populated 0|1" from cgroup.events.
func parsePopulated(b []byte) (populated, ok bool, err error) {
	v, ok, err := parseKeyed(b, "populated")
	return v != 0, ok, err
}
