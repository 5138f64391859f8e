// Package e2ev2 is the end-to-end test of preflight on pure cgroup v2:
// `make e2e-v2` (root; also part of `make test`) boots a Debian 12 guest
// under qemu, installs the .deb that `make deb` built, and breaks a service
// under MemoryMax=64M, Restart=always while preflight@.service records it.
// The hybrid e2e (package e2e) cannot: these machines' cgroups are hybrid,
// and MemoryMax=, memory.events and systemd's Result=oom-kill exist only on
// pure v2.
//
// # What it checks
//
// [TestPureV2] runs every scenario in the guest (program guest, baked into
// the image as a oneshot unit that powers the guest off when it is done)
// and judges the results on the host, one subtest per run:
//
//   - kill-9: kill -9 of the main process writes a capture with an exit
//     trigger, whose systemd object (the trigger's own) has the result
//     systemd logged for this failure (signal);
//   - health-503: /health answering 503 writes a health capture;
//   - restart: `systemctl restart` writes no capture;
//   - oom-child-stop, oom-main-stop, oom-child-continue, oom-main-continue:
//     a child or the main process allocating past MemoryMax= under
//     OOMPolicy=stop or continue writes a capture whose every oom
//     trigger's own sample shows service.oom_kills ≥ 1 and
//     service.memory_peak_bytes ≥ 90 % of MemoryMax; under stop the
//     trigger's systemd object says result oom-kill, under continue the
//     result systemd logged, if it logged one (the main process's kill:
//     signal).
//
// Each run also checks that it did what its name says (the kernel's OOM
// victim is, by PID, the allocating child alone, or the main process
// alone in its cgroup; OOMPolicy is what it should be; kill -9 and
// restart restarted the service), so a scenario that did not happen
// cannot pass. The child (dead-drop eat) raises its own oom_score_adj to
// 1000 before it allocates, so the kernel's choice is never the server.
// Two cases are not preflight's: under OOMPolicy=stop, systemd 252 now and
// then lets a child's OOM kill pass (it logs no result and keeps the unit
// running; seen once in 128 OOM runs here), so there is no oom-kill for
// the capture to report; and the kernel now and then kills the main
// process too, in a second OOM before the child's memory is freed (once
// in 141 child runs). Such a run is void: it is listed as VOID with the
// reason, judged on what it can show (the trigger's sample; systemd's word
// as systemd gave it), and made again, at most three times in all; a
// repeat with no valid run fails.
//
// The guest takes a run's captures only once they are final: rewritten
// with the last words (kernel_log, or why it is missing), which the
// recorder reads a grace after the trigger and which can add an oom
// trigger, and unchanged for a second since (bounded: 60 s).
//
// Every scenario but health-503 and restart runs PREFLIGHT_E2E_V2_REPEAT
// times (3 by default; `make e2e-v2 REPEAT=10` for the closing numbers).
// The summary gives the OOM evidence completeness and kill -9 → durable
// capture latency (median, worst) in the guest.
//
// # The guest
//
// A Debian 12 root file system (debootstrap --variant=minbase with systemd,
// dbus, udev, a kernel; the archive is the host's apt source) is built once
// per machine under /var/cache/preflight-e2e-v2/KEY, KEY naming the recipe,
// so a changed recipe rebuilds. Each run links a copy of it, adds the
// package, dead-drop (package ../e2e/deaddrop), the guest program and the
// units, makes an ext4 image with `mkfs.ext4 -d`, boots it with qemu's
// software emulation (TCG; these machines' KVM does not work) under
// timeout(1), and reads the results back with `debugfs -R rdump`. Options
// reach the guest on the kernel command line. The guest is 5–20× slower
// than the host: it asserts outcomes, never timings, and every wait is
// bounded.
//
// PREFLIGHT_E2E_V2_OUT=DIR (`make e2e-v2 OUT=DIR`) keeps what the guest
// left: results.json, every capture, and the journal of dead-drop, its
// recorder and the kernel's OOM kills.
//
// PREFLIGHT_E2E_V2_CACHE=DIR (`make e2e-v2 CACHE=DIR`) builds and keeps
// the root file system in DIR instead (a directory of its own: a tree
// there that is not the recipe's is removed).
//
// It needs the package (PREFLIGHT_E2E_V2_DEB, which `make e2e-v2` sets)
// and root, and skips saying why without them; then qemu-system-x86_64,
// debootstrap, mkfs.ext4 and debugfs, whose absence fails the test: `make
// test` runs it, and a make test as root that cannot boot the guest must
// not pass.
package e2ev2
