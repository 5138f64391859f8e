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
// 503 (a health capture), a child allocating past MemoryMax= (an oom
// capture whose trigger sample holds the kill at the limit, and whose
// kernel_log, read from the journal under the hardened unit, the OOM
// killer's line) and a panic after a line with a token (its last lines,
// redacted, in journal), then ten kills
// and ten OOM kills, measured. The recorder is given dead-drop by an alias
// unit; dead-drop has ExecStartPre=, ExecReload= and ExecStop= helpers;
// systemctl reload, restart, stop and start must write no capture; and a
// recorder of a unit that does not exist must be unscoped and warn. It needs root, unshare,
// nsenter, overlayfs and hybrid cgroups, and skips with the reason where
// any is missing or refused.
//
// [TestThirdParty] boots the same way and installs Debian's redis-server
// and nginx-light inside it (downloaded by fetch-debs, never installed on
// the host; the host's policy-rc.d keeps the packages from starting them),
// beside the host's PostgreSQL 15 where it has one, and records each as an
// operator would: redis by its alias redis.service, nginx (a reload by its
// ExecReload= must write no capture) and postgresql@15-main.service, each
// killed -9 (an exit capture, its main process in the sample before,
// systemd's word on the kill); and postgresql.service, Debian's umbrella
// that runs no process, which must be unscoped with a reason that says so.
//
// It leaves nothing behind on the host: the namespaces and their mounts end
// with their systemd (powered off, killed if it does not stop), and the
// cgroups it made are removed deepest first, also when it fails.
package e2e
