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
// kill -9 (an exit capture), HTTP 503 (a health capture) and a child
// allocating past MemoryMax= (an oom capture). It needs root, unshare,
// nsenter, overlayfs and hybrid cgroups, and skips with the reason where
// any is missing or refused.
//
// It leaves nothing behind on the host: the namespaces and their mounts end
// with their systemd (powered off, killed if it does not stop), and the
// cgroups it made are removed deepest first, also when it fails.
package e2e
