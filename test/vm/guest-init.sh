#!/bin/sh
# /init of the exec2 test VM (busybox ash; see test/vm/vm.ts for the host side).
#
# Stage 1, PID 1 in the initramfs: load the virtio/9p/overlay modules, build
#   the root: the host's / over 9p (read-only) under an overlay whose upper
#   layer is a tmpfs, so every path is writable and every change is thrown
#   away; mount the read-write shares at their host paths; switch_root.
# Stage 2, PID 1 in that root: proc/sys/dev and friends, a PURE cgroup v2
#   hierarchy with every controller enabled at the root (what a systemd Nomad
#   client on cgroup v2 has), run the command as root in the root cgroup,
#   record its exit status in the control share, power off.
#
# The host talks to us through the 9p share tagged "exec2ctl":
#   env      shell assignments: VM_SHARES (":"-separated), VM_DEBUG
#   cmd.sh   the command (a bash script: environment, cd, exec)
#   status   written by us: the command's exit status (125: set-up failed)
# and two virtio-serial ports, exec2.stdout and exec2.stderr.

B=/bin/busybox
R=/run/exec2-vm             # stage 2: our busybox, the control share, FIFOs

say() { echo "exec2-vm[init]: $*" >/dev/console 2>/dev/null; }
trace() { [ "${VM_DEBUG:-0}" = 1 ] || return 0; read -r up _ </proc/uptime; say "$up $*"; }
fail() {
	say "FATAL: $*"
	[ -n "$CTL" ] && [ -d "$CTL" ] && echo 125 >"$CTL/status"
	$B sync
	$B poweroff -f
	while :; do $B sleep 60; done
}

stage1() {
	$B mount -t devtmpfs -o mode=0755 dev /dev || fail "mount /dev"
	exec </dev/console >/dev/console 2>&1
	$B mount -t proc proc /proc
	$B mount -t sysfs sys /sys
	$B grep -q 'exec2vm.debug=1' /proc/cmdline && VM_DEBUG=1
	trace "stage 1"
	while read -r m; do
		$B insmod "/modules/$m" || say "insmod $m failed"
	done </modules/order
	# virtio devices probe asynchronously: retry the first 9p mount for ~5 s
	CTL=/ctl
	n=0
	until $B mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144,cache=none exec2ctl /ctl 2>/dev/null; do
		n=$((n + 1))
		[ $n -le 500 ] || { CTL=; fail "no control share (9p exec2ctl)"; }
		$B usleep 10000
	done
	. /ctl/env || fail "cannot read /ctl/env"
	trace "control share mounted"

	$B mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144,ro,cache=loose hostroot /lower || fail "host root over 9p"
	$B mount -t tmpfs -o mode=0755 upper /upper || fail "tmpfs for the overlay"
	$B mkdir -p /upper/data /upper/work
	$B mount -t overlay -o lowerdir=/lower,upperdir=/upper/data,workdir=/upper/work,xino=off,index=off root /root \
		|| fail "overlay root"
	# fresh, writable /run and /tmp: nothing of the host's pid files, sockets
	# or temp files leaks in; /var/run is /run on Debian
	$B mount -t tmpfs -o mode=0755,nosuid,nodev run /root/run || fail "tmpfs /run"
	$B mount -t tmpfs -o mode=1777,nosuid,nodev tmp /root/tmp || fail "tmpfs /tmp"
	$B mkdir -p -m 1777 /root/run/lock
	$B mkdir -p /root/run/netns /root/run/user "/root$R/ctl"
	[ -e /root/var/run ] || [ -L /root/var/run ] || $B ln -s /run /root/var/run

	i=0
	IFS=:
	for p in $VM_SHARES; do
		[ -n "$p" ] || continue
		$B mkdir -p "/root$p" || fail "mountpoint for share $p"
		$B mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144,cache=mmap,access=client "share$i" "/root$p" \
			|| fail "share $p"
		i=$((i + 1))
	done
	unset IFS
	trace "root assembled"

	$B cp /bin/busybox /init "/root$R/"
	$B mount --move /ctl "/root$R/ctl"
	$B mount --move /dev /root/dev
	$B mount --move /proc /root/proc
	$B mount --move /sys /root/sys
	exec $B switch_root /root "$R/busybox" sh "$R/init" stage2
	fail "switch_root"
}

stage2() {
	B=$R/busybox
	CTL=$R/ctl
	export PATH=/usr/sbin:/usr/bin:/sbin:/bin
	exec </dev/console >/dev/console 2>&1
	. "$CTL/env"
	trace "stage 2"

	$B mkdir -p /dev/pts /dev/shm /dev/mqueue
	$B mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts /dev/pts
	[ -e /dev/ptmx ] || $B ln -s pts/ptmx /dev/ptmx
	$B mount -t tmpfs -o mode=1777,nosuid,nodev shm /dev/shm
	$B mount -t mqueue mqueue /dev/mqueue
	for l in fd:/proc/self/fd stdin:/proc/self/fd/0 stdout:/proc/self/fd/1 stderr:/proc/self/fd/2; do
		[ -e "/dev/${l%%:*}" ] || $B ln -s "${l#*:}" "/dev/${l%%:*}"
	done
	$B mount -t securityfs securityfs /sys/kernel/security 2>/dev/null
	# tracefs: the suite watches cgroup:cgroup_attach_task to prove tasks are
	# born in their scope rather than moved there
	$B mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null

	# Pure cgroup v2 with systemd's mount options; cgroup_no_v1=all is on the
	# kernel command line. Every controller is enabled at the root.
	$B mount -t cgroup2 -o nsdelegate,memory_recursiveprot cgroup2 /sys/fs/cgroup || fail "mount cgroup2"
	for c in $($B cat /sys/fs/cgroup/cgroup.controllers); do
		echo "+$c" >/sys/fs/cgroup/cgroup.subtree_control || say "cannot enable the $c controller"
	done

	$B hostname exec2-vm
	$B ip link set lo up 2>/dev/null || $B ifconfig lo 127.0.0.1 up

	# A virtio port can be opened only once, so the command writes into FIFOs
	# (which it may re-open through /dev/stdout) and two relays copy them out.
	out=/dev/console err=/dev/console
	for p in /sys/class/virtio-ports/*; do
		case "$($B cat "$p/name" 2>/dev/null)" in
			exec2.stdout) out=/dev/${p##*/} ;;
			exec2.stderr) err=/dev/${p##*/} ;;
		esac
	done
	$B mkfifo "$R/stdout" "$R/stderr"
	$B cat "$R/stdout" >"$out" &
	relay_out=$!
	$B cat "$R/stderr" >"$err" &
	relay_err=$!

	read -r up _ </proc/uptime
	echo "exec2-vm: command starts at uptime $up" >/dev/console
	$B env -i /bin/bash --noprofile --norc "$CTL/cmd.sh" </dev/null >"$R/stdout" 2>"$R/stderr"
	rc=$?
	read -r up _ </proc/uptime
	echo "exec2-vm: command exited with $rc at uptime $up" >/dev/console

	# Whatever the command left running still holds the FIFOs open: SIGKILL
	# every process but us and the relays until none is left (kernel threads
	# ignore it; the loop ends when only they remain).
	pass=0
	while [ $pass -lt 50 ]; do
		left=0
		for d in /proc/[0-9]*; do
			p=${d#/proc/}
			case $p in 1 | $relay_out | $relay_err) continue ;; esac
			[ -s "$d/cmdline" ] || continue   # kernel thread or zombie
			left=1
			kill -9 "$p" 2>/dev/null
		done
		[ $left = 0 ] && break
		pass=$((pass + 1))
		$B usleep 20000
	done
	wait $relay_out $relay_err
	echo "$rc" >"$CTL/status.tmp" && $B mv "$CTL/status.tmp" "$CTL/status"
	$B sync
	$B poweroff -f
	while :; do $B sleep 60; done
}

case "$1" in
	stage2) stage2 ;;
	*) stage1 ;;
esac
