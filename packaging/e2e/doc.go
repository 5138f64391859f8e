// Package e2e holds the end-to-end test of preflight's packaging: the
// template unit preflight@.service under a real systemd, and the offline
// checks of the unit and the shipped files. It has no API; `make e2e` runs
// it, and so does `make test`.
//
// # The real-systemd test
//
// [TestSystemd] boots systemd as PID 1 in fresh namespaces on an overlay of
// / whose upper layer is a tmpfs (testdata/boot.sh), installs the freshly
// built binary and units with `make install`, runs the package's postinst,
// and records dead-drop.service (package deaddrop, the test's own HTTP
// service) with preflight@dead-drop.service while it breaks it three ways:
// kill -9 (an exit capture, with systemd's word on it read over D-Bus), HTTP
// 503 (a health capture) and a child allocating past MemoryMax= (an oom
// capture whose trigger sample holds the kill at the limit), then ten kills
// and ten OOM kills, measured. The recorder is given dead-drop by an alias
// unit; dead-drop has ExecStartPre=, ExecReload= and ExecStop= helpers;
// systemctl reload, restart, stop and start must write no capture; and a
// recorder of a unit that does not exist must be unscoped and warn. It needs root, unshare,
// nsenter, overlayfs and hybrid cgroups, and skips with the reason where
// any is missing or refused.
//
// It leaves nothing behind on the host: the namespaces and their mounts end
// with their systemd (powered off, killed if it does not stop), and the
// cgroups it made are removed deepest first, also when it fails.
package e2e
