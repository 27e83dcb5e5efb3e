#!/usr/bin/env bash
# Set-up for the VM suites (test/vm): everything needed to boot a throwaway
# pure-cgroup-v2 guest under qemu and run the integration suite inside it.
#
#   - apt-get installs qemu-system-x86, the distribution kernel
#     (linux-image-amd64: Debian 12's 6.1, Landlock ABI 2), busybox-static
#     (the initramfs), xz-utils/zstd (compressed kernels and modules) and kmod
#     (depmod);
#   - downloads the newest bookworm-backports kernel (6.12, Landlock ABI 6) as a
#     Debian package through a PRIVATE apt configuration (own sources list,
#     lists and archives under the cache): the system's apt sources, lists and
#     dpkg state are left exactly as they were. The package is unpacked with
#     dpkg-deb -x, never installed.
#
# Runs as root (.ci/run calls it after `apt-get update`). Idempotent: packages
# already installed are not touched and a fetched kernel is reused; set
# EXEC2_VM_REFRESH=1 to look for a newer backports kernel.
#
# Env: EXEC2_VM_CACHE (default /var/cache/exec2-vm), EXEC2_VM_MIRROR (Debian
# mirror for the backports kernel; default: the one apt already uses).
set -euo pipefail
prog=test/vm/setup.sh
die() { echo "$prog: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "must run as root (it installs packages)"

cache=${EXEC2_VM_CACHE:-/var/cache/exec2-vm}
export DEBIAN_FRONTEND=noninteractive

# ---- 1. system packages ------------------------------------------------------
pkgs=(qemu-system-x86 linux-image-amd64 busybox-static xz-utils zstd kmod)
missing=()
for p in "${pkgs[@]}"; do
	st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
	[ "$st" = installed ] || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "$prog: installing ${missing[*]}"
	apt-get install -y --no-install-recommends "${missing[@]}"
else
	echo "$prog: packages present: ${pkgs[*]}"
fi

# ---- 2. the bookworm-backports kernel, through a private apt configuration ----
suite=bookworm-backports
kdir=$cache/kernels/bpo
manifest=$cache/kernels/bpo.env
mkdir -p "$kdir/apt/lists/partial" "$kdir/apt/archives/partial"
exec 9>"$kdir/.lock"
flock 9
if [ -s "$manifest" ] && [ -z "${EXEC2_VM_REFRESH:-}" ] && (. "$manifest" && [ -r "$KERNEL" ] && [ -f "$MODULES/modules.dep" ]); then
	echo "$prog: backports kernel cached: $(. "$manifest" && echo "$RELEASE")"
	exit 0
fi

mirror=${EXEC2_VM_MIRROR:-}
if [ -z "$mirror" ]; then
	# the Debian mirror this machine's apt already uses (deb822 or one-line format)
	mirror=$(awk 'tolower($1)=="uris:" { for (i = 2; i <= NF; i++) if ($i ~ /\/debian\/?$/) { print $i; exit } }' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
	[ -n "$mirror" ] || mirror=$(awk '$1=="deb" { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\/.*\/debian\/?$/) { print $i; exit } }' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null || true)
	[ -n "$mirror" ] || mirror=http://deb.debian.org/debian
fi
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
[ -r "$keyring" ] || die "$keyring missing (apt-get install debian-archive-keyring)"
echo "deb [signed-by=$keyring] $mirror $suite main" >"$kdir/apt/sources.list"
apt_opts=(
	-o "Dir::Etc::SourceList=$kdir/apt/sources.list" -o Dir::Etc::SourceParts=/nonexistent
	-o "Dir::State::Lists=$kdir/apt/lists" -o "Dir::Cache=$kdir/apt" -o "Dir::Cache::archives=$kdir/apt/archives"
	-o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache= -o APT::Sandbox::User=root
)
echo "$prog: apt-get update ($mirror $suite, private lists under $kdir/apt)"
apt-get -q "${apt_opts[@]}" update
# the generic amd64 flavour; not -cloud-/-rt-, not the signed meta package
# (6.12 names it linux-image-6.12.95+deb12-amd64-unsigned, 6.1 ...-6.1.0-50-amd64-unsigned)
pkg=$(apt-cache "${apt_opts[@]}" search --names-only '^linux-image-[0-9][0-9.]*[-+][^ ]*-amd64-unsigned$' \
	| awk '{ print $1 }' | grep -v -e '-cloud-' -e '-rt-' | sort -V | tail -1 || true)
[ -n "$pkg" ] || die "no linux-image-*-amd64-unsigned package in $suite"
version=$(apt-cache "${apt_opts[@]}" show "$pkg" | awk '/^Version:/ { print $2; exit }')
root=$kdir/$pkg-$version
if [ ! -f "$root/.complete" ]; then
	echo "$prog: downloading $pkg $version"
	dl=$kdir/dl
	rm -rf "$dl" "$root"
	mkdir -p "$dl" "$root"
	(cd "$dl" && apt-get -q "${apt_opts[@]}" download "$pkg")
	dpkg-deb -x "$dl"/*.deb "$root"
	rm -rf "$dl"
	release=$(ls "$root/lib/modules" | head -1)
	# the .deb ships no modules.dep (its postinst runs depmod)
	depmod -b "$root" "$release"
	touch "$root/.complete"
fi
release=$(ls "$root/lib/modules" | head -1)
[ -r "$root/boot/vmlinuz-$release" ] || die "no kernel image in $pkg"
tmp=$(mktemp "$manifest.XXXXXX")
printf 'PACKAGE=%s\nVERSION=%s\nRELEASE=%s\nKERNEL=%s\nMODULES=%s\n' \
	"$pkg" "$version" "$release" "$root/boot/vmlinuz-$release" "$root/lib/modules/$release" >"$tmp"
chmod 0644 "$tmp"
mv -f "$tmp" "$manifest"
# older unpacked kernels
for d in "$kdir"/linux-image-*; do [ "$d" = "$root" ] || rm -rf "$d"; done
echo "$prog: backports kernel ready: $release ($pkg $version)"
