package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"syscall"

	"github.com/coreos/go-systemd/v22/journal"
	"github.com/rs/zerolog"
)

// CaptureWrittenID is the journal's MESSAGE_ID of the recorder's "capture
// written" entry: fixed forever (made once with systemd-id128 new), so
// `journalctl MESSAGE_ID=7d3e60010911494189baf40b30b1b6ef` lists every
// capture on a host, and the catalog (packaging/catalog/preflight.catalog)
// explains it under `journalctl -x`.
const CaptureWrittenID = "7d3e60010911494189baf40b30b1b6ef"

// journalFields are the log fields the journal gets under names of their
// own; every other field F becomes PREFLIGHT_F (upper case).
var journalFields = map[string]string{
	"service": "PREFLIGHT_SERVICE",
	"trigger": "PREFLIGHT_TRIGGER",
	"capture": "PREFLIGHT_CAPTURE", // the absolute path of a capture written or updated
}

// journalStderr returns the journal writer when stderr is the journal's
// stream (JOURNAL_STREAM names stderr's device and inode: systemd started
// us with StandardError=journal), else nil.
func journalStderr(e env) zerolog.LevelWriter {
	f, ok := e.stderr.(*os.File)
	stream := e.getenv("JOURNAL_STREAM")
	if !ok || stream == "" {
		return nil
	}
	var dev, ino uint64
	if _, err := fmt.Sscanf(stream, "%d:%d", &dev, &ino); err != nil {
		return nil
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil || uint64(st.Dev) != dev || st.Ino != ino {
		return nil
	}
	return &journalWriter{send: journal.Send, fallback: e.stderr}
}

// journalWriter sends each zerolog event as one entry of the journal's
// native protocol: PRIORITY from the level, MESSAGE the message followed by
// the fields as key=value (what `journalctl -u` shows), each field also a
// journal field of its own, and MESSAGE_ID on "capture written". An entry
// the journal refuses is written to fallback as the JSON line it was.
type journalWriter struct {
	send     func(message string, priority journal.Priority, vars map[string]string) error
	fallback io.Writer
}

func (w *journalWriter) Write(p []byte) (int, error) {
	return w.WriteLevel(zerolog.NoLevel, p)
}

func (w *journalWriter) WriteLevel(level zerolog.Level, p []byte) (int, error) {
	msg, vars, err := journalEntry(p)
	if err == nil {
		err = w.send(msg, journalPriority(level), vars)
	}
	if err != nil {
		return w.fallback.Write(p)
	}
	return len(p), nil
}

// journalEntry turns one zerolog JSON event into a MESSAGE and the fields.
func journalEntry(p []byte) (string, map[string]string, error) {
	d := json.NewDecoder(bytes.NewReader(p))
	d.UseNumber()
	var ev map[string]any
	if err := d.Decode(&ev); err != nil {
		return "", nil, err
	}
	msg, _ := ev[zerolog.MessageFieldName].(string)
	vars := map[string]string{"SYSLOG_IDENTIFIER": "preflight"}
	if msg == "capture written" {
		vars["MESSAGE_ID"] = CaptureWrittenID
	}
	var text strings.Builder
	text.WriteString(msg)
	for _, k := range slices.Sorted(maps.Keys(ev)) {
		switch k {
		case zerolog.MessageFieldName, zerolog.LevelFieldName, zerolog.TimestampFieldName:
			continue // the journal has its own time and PRIORITY
		}
		v := fieldText(ev[k])
		name, ok := journalFields[k]
		if !ok {
			name = "PREFLIGHT_" + fieldName(k)
		}
		vars[name] = v
		if k == "capture" && v == ev["path"] {
			continue // said once in MESSAGE: the path is the same
		}
		if strings.ContainsAny(v, " \t\n\"=") || v == "" {
			v = fmt.Sprintf("%q", v)
		}
		fmt.Fprintf(&text, " %s=%s", k, v)
	}
	return text.String(), vars, nil
}

// fieldText is a field's value as text: a string as it is, anything else
// as its JSON.
func fieldText(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// fieldName is k as a journal field name: upper case letters, digits and
// underscores.
func fieldName(k string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z':
			return r - 'a' + 'A'
		case r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
			return r
		}
		return '_'
	}, k)
}

// journalPriority maps zerolog's levels to syslog's priorities.
func journalPriority(l zerolog.Level) journal.Priority {
	switch l {
	case zerolog.TraceLevel, zerolog.DebugLevel:
		return journal.PriDebug
	case zerolog.WarnLevel:
		return journal.PriWarning
	case zerolog.ErrorLevel:
		return journal.PriErr
	case zerolog.FatalLevel:
		return journal.PriCrit
	case zerolog.PanicLevel:
		return journal.PriEmerg
	}
	return journal.PriInfo
}
