package kit

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"time"
)

// RecorderConfig is one `preflight start`, configured as the systemd
// template unit does, by PREFLIGHT_* variables.
type RecorderConfig struct {
	Bin       string   // the preflight binary
	Service   string   // PREFLIGHT_SERVICE
	HealthURL string   // PREFLIGHT_HEALTH_URL
	Interval  float64  // PREFLIGHT_INTERVAL_SECONDS
	Buffer    int      // PREFLIGHT_BUFFER_SAMPLES; 0: the default
	Cgroup    string   // PREFLIGHT_CGROUP; "": none (the unit, which does not exist)
	Dir       string   // --dir
	LogFile   string   // a copy of its stderr; "": none
	Env       []string // more environment, e.g. GOMAXPROCS=1
	// Config, if set, is a YAML file for --config: the recorders are its
	// services, and the fields above but Bin, Dir, LogFile and Env are
	// unused.
	Config string
}

// LogLine is one line of the recorder's JSON log, with the moment the
// benchmark read it.
type LogLine struct {
	Read    time.Time
	Level   string `json:"level"`
	Message string `json:"message"`
	Path    string `json:"path"`
	Bytes   int    `json:"bytes"`
	Raw     string `json:"-"`
}

// Recorder is a running `preflight start`.
type Recorder struct {
	*Proc
	Lines <-chan LogLine // closed at its exit
}

// StartRecorder starts the recorder in cg and follows its log.
func StartRecorder(c RecorderConfig, cg *Cgroup) (*Recorder, error) {
	cmd := exec.Command(c.Bin, "start", "--dir", c.Dir)
	if c.Config != "" {
		cmd = exec.Command(c.Bin, "start", "--config", c.Config, "--dir", c.Dir)
	}
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"PREFLIGHT_SERVICE=" + c.Service,
		"PREFLIGHT_HEALTH_URL=" + c.HealthURL,
		"PREFLIGHT_INTERVAL_SECONDS=" + strconv.FormatFloat(c.Interval, 'f', -1, 64),
		"PREFLIGHT_LOG_LEVEL=info",
	}
	if c.Config != "" {
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "PREFLIGHT_LOG_LEVEL=info"}
	}
	if c.Buffer > 0 && c.Config == "" {
		cmd.Env = append(cmd.Env, "PREFLIGHT_BUFFER_SAMPLES="+strconv.Itoa(c.Buffer))
	}
	if c.Cgroup != "" && c.Config == "" {
		cmd.Env = append(cmd.Env, "PREFLIGHT_CGROUP="+c.Cgroup)
	}
	cmd.Env = append(cmd.Env, c.Env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, fmt.Errorf("failed to pipe the recorder's log: %w", err)
	}
	var copyTo io.Writer = io.Discard
	var logf *os.File
	if c.LogFile != "" {
		if logf, err = os.Create(c.LogFile); err != nil {
			return nil, fmt.Errorf("failed to create recorder log: %w", err)
		}
		copyTo = logf
	}
	p, err := Start(cmd, cg)
	if err != nil {
		if logf != nil {
			logf.Close()
		}
		return nil, err
	}
	lines := make(chan LogLine, 4096)
	go func() {
		defer close(lines)
		if logf != nil {
			defer logf.Close()
		}
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			l := LogLine{Read: time.Now(), Raw: sc.Text()}
			_ = json.Unmarshal(sc.Bytes(), &l)
			fmt.Fprintln(copyTo, l.Raw)
			lines <- l
		}
	}()
	return &Recorder{Proc: p, Lines: lines}, nil
}

// ErrTimeout is returned by WaitFor when the line did not come in time.
var ErrTimeout = errors.New("timed out")

// WaitFor reads the log until a line with message msg and returns it. An
// error-level line on the way is returned as an error.
func (r *Recorder) WaitFor(msg string, timeout time.Duration) (LogLine, error) {
	deadline := time.After(timeout)
	for {
		select {
		case l, ok := <-r.Lines:
			if !ok {
				return LogLine{}, fmt.Errorf("recorder exited before %q", msg)
			}
			if l.Message == msg {
				return l, nil
			}
			if l.Level == "error" || l.Level == "fatal" {
				return l, fmt.Errorf("recorder logged an error before %q: %s", msg, l.Raw)
			}
		case <-deadline:
			return LogLine{}, fmt.Errorf("failed to see %q in the recorder's log: %w after %v", msg, ErrTimeout, timeout)
		}
	}
}
