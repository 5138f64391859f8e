#!/bin/sh
# boot.sh WORK STAGE: run as PID 1 of fresh namespaces (unshare --cgroup
# --pid --fork --mount --uts --ipc --net), it makes the root that systemd
# boots on, then execs systemd. Nothing here reaches the host: the mount
# namespace is private, and the new root is an overlay of / whose upper
# layer is a tmpfs, so every write (and tmpfiles' cleaning) lands there.
#   WORK   a directory with the empty mount points rw/ and root/
#   STAGE  a tree copied over the new root (the installed files, the
#          test's units, masks of the host's enabled services)
set -eu
work=$1 stage=$2

mount -t tmpfs -o mode=0755 e2e-rw "$work/rw"
mkdir "$work/rw/upper" "$work/rw/work"
mount -t overlay -o "lowerdir=/,upperdir=$work/rw/upper,workdir=$work/rw/work" e2e-root "$work/root"
cp -a "$stage/." "$work/root/"
cd "$work/root"

# API filesystems. cgroups as this machine has them (hybrid): cgroup2 at
# unified, name=systemd, and the v1 memory controller for MemoryMax= and
# the OOM counter. Their roots are the cgroups the launcher moved into.
mount -t proc proc proc
mount -t sysfs -o ro sysfs sys
mount -t tmpfs -o mode=0755 cgroup sys/fs/cgroup
mkdir sys/fs/cgroup/unified sys/fs/cgroup/systemd sys/fs/cgroup/memory
mount -t cgroup2 cgroup2 sys/fs/cgroup/unified
mount -t cgroup -o none,name=systemd cgroup sys/fs/cgroup/systemd
mount -t cgroup -o memory cgroup sys/fs/cgroup/memory
mount -t tmpfs -o mode=0755,nosuid tmpfs dev
# kmsg: the kernel's log, which journald keeps as on a real machine (a
# capture's kernel_log is read from it under the hardened unit).
for d in null zero full random urandom tty kmsg; do
	touch "dev/$d"
	mount --bind "/dev/$d" "dev/$d"
done
mkdir dev/pts dev/shm
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts dev/pts
ln -s pts/ptmx dev/ptmx
touch dev/console
mount --bind /dev/null dev/console
mount -t tmpfs -o mode=1777 tmpfs tmp

mkdir .oldroot
pivot_root . .oldroot
umount -l /.oldroot
rmdir /.oldroot
# container= makes systemd skip what a container must not do (the clock,
# the console, kernel modules); e2e.target is basic.target and no more.
exec env -i container=preflight-e2e /lib/systemd/systemd --unit=e2e.target
