package findings

import (
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"
)

// CoreDump fires when systemd says the service's main process dumped core
// (ExecMainCode=dumped in the capture's systemd object), naming the signal
// and the coredumpctl command that shows the dump where systemd-coredump
// keeps dumps: by the dead PID when the samples show one process of the
// service gone at the failure, else by the unit. The dump itself is never
// read.
func CoreDump(in Incident, th Thresholds) *Finding {
	sd := in.Systemd
	if sd == nil || sd.ExecMainCode != "dumped" {
		return nil
	}
	sig, status := "a signal", "?"
	if n := sd.ExecMainStatus; n != nil {
		sig, status = fmt.Sprintf("signal %d", *n), fmt.Sprint(*n)
		if name := unix.SignalName(syscall.Signal(*n)); name != "" {
			sig = fmt.Sprintf("%s (signal %d)", name, *n)
		}
	}
	f := &Finding{Summary: "The service's main process dumped core, killed by " + sig}
	f.Evidence = append(f.Evidence, fmt.Sprintf("systemd: Result=%s ExecMainCode=dumped ExecMainStatus=%s", sd.Result, status))
	show := "coredumpctl info -1 COREDUMP_UNIT=" + sd.Unit
	if before, at := in.lastBefore(), in.atFailure(); before != nil && at != nil && before.Service != nil && at.Service != nil {
		if gone := goneProcesses(before.Service.Processes, at.Service); len(gone) == 1 {
			show = fmt.Sprintf("coredumpctl info %d", gone[0].PID)
			f.Evidence = append(f.Evidence, fmt.Sprintf("%s is gone at %s", procName(gone[0]), in.rel(at.At)))
		}
	}
	f.Evidence = append(f.Evidence, "its dump, if systemd-coredump kept it: "+show)
	return f
}
