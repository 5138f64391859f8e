package recorder

import "path/filepath"

// capturePath is the absolute path of the capture file name, the log's
// "capture" field on every capture written or updated (under the journal,
// PREFLIGHT_CAPTURE): a reader finds the file from the log line alone,
// whatever --dir was relative to.
func (r *Recorder) capturePath(name string) string {
	p := r.store.Path(r.cfg.Service, name)
	if abs, err := filepath.Abs(p); err == nil {
		return abs
	}
	return p
}
