package capture

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// FieldError is a capture that decodes but cannot be believed: a required
// field is missing, a key appears twice, or a time or number lies outside
// any range a recorder writes. Field is the value's JSON path, such as
// "samples[3].cpu.percent". It satisfies errors.Is(err, ErrNotCapture):
// readers skip it with a warning, as they skip any file that is not a
// readable capture.
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string { return "invalid capture: " + e.Field + ": " + e.Msg }

// Is makes a FieldError an ErrNotCapture.
func (e *FieldError) Is(target error) bool { return target == ErrNotCapture }

// requiredFields are the top-level fields every capture has (docs/capture-format.md).
var requiredFields = []string{"schema", "service", "host", "health_url", "transition_time", "health_error",
	"triggers", "health", "samples", "preflight_version"}

// Sane ranges. Times: a capture's times lie in these years, and within
// maxSpan of its transition time.
const (
	minYear    = 2000
	maxYear    = 2999
	maxSpan    = 400 * 24 * time.Hour
	maxCPUs    = 1 << 16
	maxPID     = 1 << 22 // PID_MAX_LIMIT
	maxLoad    = 1e6
	maxSeconds = 1e7 // intervals, windows, latencies (in seconds)
	maxCount   = 1 << 30
	maxStatus  = 999
	roundSlack = 0.01 // percentages rounded to two decimals
)

// Validate checks a decoded capture against data, the bytes it was
// decoded from: every required field present, no duplicate key at any
// level, and every time and number in a sane range. Decode calls it.
func Validate(c *Capture, data []byte) error {
	top, err := checkKeys(data)
	if err != nil {
		return err
	}
	for _, k := range requiredFields {
		if !top[k] {
			return &FieldError{k, "missing"}
		}
	}
	v := validator{t0: c.TransitionTime}
	v.err = ValidateHead(c.TransitionTime, c.Triggers)
	v.num("interval_seconds", c.IntervalSeconds, 0, maxSeconds)
	v.num("triggers_omitted", float64(c.TriggersOmitted), 0, maxCount)
	for i, h := range c.Health {
		p := "health[" + strconv.Itoa(i) + "]"
		v.time(p+".at", h.At, true)
		v.num(p+".latency_ms", h.LatencyMS, 0, maxSeconds*1000)
		v.num(p+".status_code", float64(h.StatusCode), 0, maxStatus)
	}
	for i := range c.Samples {
		v.sample("samples["+strconv.Itoa(i)+"]", &c.Samples[i])
	}
	for i, l := range c.KernelLog {
		v.time("kernel_log["+strconv.Itoa(i)+"].at", l.At, true)
	}
	for i, l := range c.Journal {
		p := "journal[" + strconv.Itoa(i) + "]"
		v.time(p+".at", l.At, true)
		v.num(p+".priority", float64(l.Priority), 0, 7)
	}
	v.num("service_interval_seconds", c.ServiceIntervalSeconds, 0, maxSeconds)
	for i := range c.ServiceTrace {
		p, tp := "service_trace["+strconv.Itoa(i)+"]", &c.ServiceTrace[i]
		v.time(p+".at", tp.At, true)
		v.pnum(p+".cpu_percent", tp.CPUPercent, 0, 100*maxCPUs)
		v.num(p+".pids", float64(tp.Pids), 0, maxCount)
		v.num(p+".threads", float64(tp.Threads), 0, maxCount)
		v.pnum(p+".memory_some_avg10", tp.MemorySomeAvg10, 0, 100+roundSlack)
		v.pnum(p+".memory_full_avg10", tp.MemoryFullAvg10, 0, 100+roundSlack)
	}
	for k := range c.ProcessTable {
		if pid, err := strconv.Atoi(k); err != nil || pid < 1 || pid > maxPID {
			v.fail("process_table", "key %q is not a PID", k)
		}
	}
	return v.err
}

// validator collects the first bad field.
type validator struct {
	t0  time.Time
	err error
}

func (v *validator) fail(field, format string, a ...any) {
	if v.err == nil {
		v.err = &FieldError{field, fmt.Sprintf(format, a...)}
	}
}

// time checks t: set, in the sane years, and (near) within maxSpan of the
// transition time.
func (v *validator) time(field string, t time.Time, near bool) {
	switch {
	case t.IsZero():
		v.fail(field, "missing")
	case t.Year() < minYear || t.Year() > maxYear:
		v.fail(field, "year %d outside %d–%d", t.Year(), minYear, maxYear)
	case near && (t.Sub(v.t0) > maxSpan || v.t0.Sub(t) > maxSpan):
		v.fail(field, "%s is more than %d days from transition_time", t.UTC().Format(time.RFC3339), int(maxSpan.Hours()/24))
	}
}

func (v *validator) num(field string, x, lo, hi float64) {
	if math.IsNaN(x) || x < lo || x > hi {
		v.fail(field, "%s outside %s–%s", fmtNum(x), fmtNum(lo), fmtNum(hi))
	}
}

func (v *validator) pnum(field string, x *float64, lo, hi float64) {
	if x != nil {
		v.num(field, *x, lo, hi)
	}
}

func (v *validator) pct(field string, x float64) { v.num(field, x, 0, 100+roundSlack) }

func (v *validator) sample(p string, s *Sample) {
	v.time(p+".at", s.At, true)
	c := s.CPU
	v.num(p+".cpu.cpus", float64(c.CPUs), 0, maxCPUs)
	for _, f := range []struct {
		name string
		x    *float64
	}{{"percent", c.Percent}, {"user", c.User}, {"system", c.System}, {"iowait", c.IOWait}, {"steal", c.Steal}} {
		v.pnum(p+".cpu."+f.name, f.x, 0, 100+roundSlack)
	}
	v.pnum(p+".cpu.window_seconds", c.WindowSeconds, 0, maxSeconds)
	v.num(p+".load.load1", s.Load.Load1, 0, maxLoad)
	v.num(p+".load.load5", s.Load.Load5, 0, maxLoad)
	v.num(p+".load.load15", s.Load.Load15, 0, maxLoad)
	v.pct(p+".memory.used_percent", s.Memory.UsedPercent)
	for i, d := range s.Disks {
		dp := p + ".disks[" + strconv.Itoa(i) + "]"
		v.pct(dp+".used_percent", d.UsedPercent)
		v.pct(dp+".inodes_used_percent", d.InodesUsedPercent)
	}
	v.pressure(p+".pressure", s.Pressure)
	v.num(p+".processes", float64(s.Processes), 0, maxCount)
	v.procs(p+".top_cpu", s.TopCPU)
	v.procs(p+".top_memory", s.TopMemory)
	if svc := s.Service; svc != nil {
		sp := p + ".service"
		v.pnum(sp+".cpu_percent", svc.CPUPercent, 0, 100*maxCPUs)
		v.num(sp+".pids", float64(svc.Pids), 0, maxCount)
		v.pressure(sp+".pressure", svc.Pressure)
		v.procs(sp+".processes", svc.Processes)
	}
}

func (v *validator) pressure(p string, ps *Pressure) {
	if ps == nil {
		return
	}
	v.pct(p+".cpu_some_avg10", ps.CPUSomeAvg10)
	v.pct(p+".memory_some_avg10", ps.MemorySomeAvg10)
	v.pct(p+".memory_full_avg10", ps.MemoryFullAvg10)
	v.pct(p+".io_some_avg10", ps.IOSomeAvg10)
	v.pct(p+".io_full_avg10", ps.IOFullAvg10)
}

func (v *validator) procs(p string, ps []Process) {
	for i, pr := range ps {
		pp := p + "[" + strconv.Itoa(i) + "]"
		v.num(pp+".pid", float64(pr.PID), 1, maxPID)
		v.pnum(pp+".cpu_percent", pr.CPUPercent, 0, 100*maxCPUs)
		v.num(pp+".threads", float64(pr.Threads), 0, maxCount)
		if pr.FDs != nil {
			v.num(pp+".fds", float64(*pr.FDs), 0, maxCount)
		}
	}
}

// fmtNum formats a number for an error: short, whatever its size.
func fmtNum(x float64) string { return strconv.FormatFloat(x, 'g', 6, 64) }

// checkKeys scans data, JSON that json.Unmarshal has already accepted,
// and returns the top-level keys of its object; a key that appears twice in
// one object is a FieldError (Go's decoder would silently keep the last).
// It is a plain byte scan: a capture is read in one pass, without a token
// per value.
func checkKeys(data []byte) (map[string]bool, error) {
	type frame struct {
		obj       bool
		expectKey bool
		keys      []string // an object's keys so far (objects are small)
		idx       int      // an array's index
	}
	var stack []frame
	path := func() string {
		var b strings.Builder
		for _, f := range stack {
			switch {
			case f.obj && len(f.keys) > 0:
				if b.Len() > 0 {
					b.WriteByte('.')
				}
				b.WriteString(f.keys[len(f.keys)-1])
			case !f.obj:
				b.WriteString("[" + strconv.Itoa(f.idx) + "]")
			}
		}
		return b.String()
	}
	top := map[string]bool{}
	for i := 0; i < len(data); i++ {
		switch c := data[i]; c {
		case '{', '[':
			n := len(stack)
			if n < cap(stack) {
				stack = stack[:n+1]
				stack[n] = frame{obj: c == '{', expectKey: c == '{', keys: stack[n].keys[:0]}
			} else {
				stack = append(stack, frame{obj: c == '{', expectKey: c == '{'})
			}
		case '}', ']':
			if len(stack) == 0 {
				return nil, fmt.Errorf("%w: unbalanced %q", ErrNotCapture, c)
			}
			stack = stack[:len(stack)-1]
		case ',':
			if n := len(stack); n > 0 {
				if stack[n-1].obj {
					stack[n-1].expectKey = true
				} else {
					stack[n-1].idx++
				}
			}
		case '"':
			end, esc := i+1, false
			for ; end < len(data) && data[end] != '"'; end++ {
				if data[end] == '\\' {
					esc = true
					end++
				}
			}
			if end >= len(data) {
				return nil, fmt.Errorf("%w: unterminated string", ErrNotCapture)
			}
			if n := len(stack); n > 0 && stack[n-1].obj && stack[n-1].expectKey {
				k := string(data[i+1 : end])
				if esc {
					if err := json.Unmarshal(data[i:end+1], &k); err != nil {
						return nil, fmt.Errorf("%w: %v", ErrNotCapture, err)
					}
				}
				f := &stack[n-1]
				f.expectKey = false
				if slices.Contains(f.keys, k) {
					f.keys = append(f.keys, k)
					return nil, &FieldError{path(), "duplicate key"}
				}
				f.keys = append(f.keys, k)
				if n == 1 {
					top[k] = true
				}
			}
			i = end
		}
	}
	return top, nil
}

// ValidateHead checks what list reads of a capture, its head: the
// transition time and the triggers, as [Validate] would.
func ValidateHead(transition time.Time, triggers []Trigger) error {
	v := validator{t0: transition}
	v.time("transition_time", transition, false)
	if len(triggers) == 0 {
		v.fail("triggers", "empty: a capture has at least one trigger")
	}
	for i, t := range triggers {
		p := "triggers[" + strconv.Itoa(i) + "]"
		if t.Kind == "" {
			v.fail(p+".kind", "missing")
		}
		v.time(p+".at", t.At, true)
	}
	return v.err
}

// CheckService reports a capture found in service's directory whose
// service field names another service.
func CheckService(c *Capture, service string) error {
	if c.Service != service {
		return &FieldError{"service", fmt.Sprintf("%q disagrees with its directory %q", c.Service, service)}
	}
	return nil
}
