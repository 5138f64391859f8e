package main

import (
	"errors"
	"fmt"
	"io/fs"
)

// groupHint is the hint under a reader's "permission denied": the capture
// directory is readable by root and the preflight group only
// (packaging/tmpfiles.d/preflight.conf).
const groupHint = "hint: captures are readable by root and the preflight group: add yourself with 'sudo usermod -aG preflight $USER' and log in again"

// readerHint adds groupHint to a reader's error that is a permission
// denied.
func readerHint(err error) error {
	if err != nil && errors.Is(err, fs.ErrPermission) {
		return fmt.Errorf("%w\n%s", err, groupHint)
	}
	return err
}
