#!/usr/bin/env bash
# Builds, once per machine, the root file system that the systemd test hosts
# boot (systemd-nspawn --boot), and prints its path.
#
#   e2e/rootfs.sh            build if missing (waits for a build in progress)
#
# Debian 12 (minbase) with a real systemd, dbus, logind, OpenSSH's server and
# nix, from the Debian mirror this machine's apt already uses. The result is
# kept under /var/cache/lab-e2e, keyed by this script's own text (its
# recipe): a changed recipe builds a new one, an unchanged one is reused.
# Hosts never write to it (each boots an overlay of its own).
set -euo pipefail
recipe=$(sha256sum "$0" | cut -c1-16)
cache=/var/cache/lab-e2e
root="$cache/rootfs-$recipe"
mkdir -p "$cache"
exec 9>"$cache/rootfs.lock"
flock 9
if [ -e "$root/.lab-rootfs-ok" ]; then
  echo "$root"
  exit 0
fi
for tool in debootstrap systemd-nspawn; do
  command -v "$tool" >/dev/null || { echo "rootfs.sh: $tool is missing (./dev setup installs debootstrap and systemd-container)" >&2; exit 1; }
done

# The mirror apt uses here (deb822 sources first, then sources.list).
mirror=$(sed -n 's/^URIs:[[:space:]]*\([^[:space:]]*\).*/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | grep -v security | head -n1 || true)
if [ -z "$mirror" ]; then
  mirror=$(awk '$1 == "deb" && $2 !~ /security/ { print $2; exit }' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null || true)
fi
[ -n "$mirror" ] || { echo "rootfs.sh: no Debian mirror found in /etc/apt" >&2; exit 1; }

rm -rf "$root.tmp"
# libdbi-perl: nix-bin needs perl-dbdabi-94, a virtual package debootstrap
# does not resolve by itself.
packages=systemd,systemd-sysv,dbus,libpam-systemd,openssh-server,iproute2,procps,nix-bin,libdbi-perl,sudo
debootstrap --variant=minbase --include="$packages" bookworm "$root.tmp" "$mirror" >"$cache/debootstrap.log" 2>&1 || {
  echo "rootfs.sh: debootstrap failed; see $cache/debootstrap.log" >&2
  tail -n 20 "$cache/debootstrap.log" >&2
  exit 1
}
r="$root.tmp"
# What every host shares; what each host owns (name, keys, machine id) is
# written into its own overlay when it is made.
rm -f "$r"/etc/ssh/ssh_host_*
: >"$r/etc/machine-id"
mkdir -p "$r/etc/nix" "$r/root/.ssh"
chmod 700 "$r/root/.ssh"
# nix as root with no daemon, no build users, no sandbox and no network.
cat >"$r/etc/nix/nix.conf" <<'CONF'
experimental-features = nix-command flakes
build-users-group =
sandbox = false
substituters =
flake-registry =
CONF
cat >"$r/etc/ssh/sshd_config.d/lab-test.conf" <<'CONF'
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UseDNS no
CONF
# localhost resolves as on NixOS (minbase leaves /etc/hosts without it).
printf '127.0.0.1 localhost\n::1 localhost\n' >"$r/etc/hosts"
# Nothing on a test host waits for a console or the network to settle.
ln -sf /dev/null "$r/etc/systemd/system/getty@.service"
ln -sf /dev/null "$r/etc/systemd/system/console-getty.service"
ln -sf /dev/null "$r/etc/systemd/system/systemd-networkd-wait-online.service"
rm -rf "$r/var/cache/apt/archives"/*.deb
touch "$r/.lab-rootfs-ok"
mv "$r" "$root"
# Older recipes are no longer used.
for old in "$cache"/rootfs-*; do
  [ "$old" = "$root" ] || rm -rf "$old"
done
echo "$root"
