#!/usr/bin/env bash
# Runs CI (`bash .ci/run`) on this machine as on a new Debian machine, as root:
# a fresh clone of HEAD with a read-only copy of shared/ beside it, in a
# private mount namespace where
#   - /etc/nix is empty (no nix.conf) and the nixbld group does not exist;
#   - the systemd test hosts' root file system is not built yet
#     (/var/cache/lab-e2e is empty);
#   - root's home is empty but for the Rust toolchain (~/.cargo, ~/.rustup),
#     and every shell start-up file there and in /etc sleeps for ten minutes;
#   - the environment is CI's: CI=true, no LAB_NIXPKGS_LIB, no NIX_* variable.
# Nothing outside the namespace changes. Packages this machine has installed
# stay installed (./dev installs them on a new machine through apt-get).
#
#   scripts/fresh-machine.sh          one run
#   scripts/fresh-machine.sh --busy   the same, with a second heavy job beside
#                                     it: release builds of the workspace in a
#                                     loop, on the same two cores
#
# Prints the wall time and the skipped tests; exits as .ci/run does.
set -euo pipefail
[ "$(id -u)" -eq 0 ] || { echo "fresh-machine.sh: run as root (it makes a mount namespace)" >&2; exit 2; }
busy=0
[ "${1:-}" = "--busy" ] && busy=1
root=$(cd "$(dirname "$0")/.." && pwd)
home=$(getent passwd root | cut -d: -f6)
work=$(mktemp -d /tmp/lab-fresh.XXXXXX)
echo "==> fresh clone of $(git -C "$root" rev-parse --short HEAD) in $work/main"
git clone -q "$root" "$work/main"
cp -r "$root/../shared" "$work/shared"
chmod -R a-w "$work/shared"
mkdir -p "$work/realhome"
printf 'sleep 600\n' >"$work/sleepy"
grep -v '^nixbld:' /etc/group >"$work/group"

busy_pid=""
if [ "$busy" = 1 ]; then
  echo "==> second heavy job: cargo build --release of the workspace, in a loop"
  (
    cd "$root"
    while :; do
      cargo build --release --workspace -q --target-dir "$work/busy-target" >/dev/null 2>&1 || true
      rm -rf "$work/busy-target"
    done
  ) &
  busy_pid=$!
fi

inside='
set -e
mount --bind "$HOME_DIR" "$WORK/realhome"
mount -t tmpfs fresh-home "$HOME_DIR"
for d in .cargo .rustup; do
  if [ -d "$WORK/realhome/$d" ]; then mkdir "$HOME_DIR/$d"; mount --bind "$WORK/realhome/$d" "$HOME_DIR/$d"; fi
done
for f in .bashrc .bash_profile .bash_login .profile .zshenv .zshrc .kshrc .shrc; do
  cp "$WORK/sleepy" "$HOME_DIR/$f"
done
for f in /etc/bash.bashrc /etc/profile /etc/zsh/zshenv /etc/zshenv; do
  if [ -f "$f" ]; then mount --bind "$WORK/sleepy" "$f"; fi
done
if [ -d /etc/nix ]; then mount -t tmpfs fresh-etc-nix /etc/nix; fi
# The root file system of the systemd test hosts is built anew, as on a new machine.
if [ -d /var/cache/lab-e2e ]; then mount -t tmpfs -o size=4g fresh-lab-e2e /var/cache/lab-e2e; fi
mount --bind "$WORK/group" /etc/group
cd "$WORK/main"
exec env -i HOME="$HOME_DIR" USER=root LANG=C.UTF-8 CI=true \
  PATH="$HOME_DIR/.cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
  bash .ci/run
'
started=$(date +%s)
set +e
HOME_DIR="$home" WORK="$work" unshare --mount --propagation private sh -c "$inside" </dev/null 2>&1 | tee "$work/ci.log"
rc=${PIPESTATUS[0]}
set -e
secs=$(($(date +%s) - started))
if [ -n "$busy_pid" ]; then
  kill "$busy_pid" 2>/dev/null || true
  pkill -f -- "--target-dir $work/busy-target" 2>/dev/null || true
fi
echo "==> .ci/run exited $rc after ${secs} s ($((secs / 60)) min $((secs % 60)) s); log: $work/ci.log"
grep -E '^==> skipped tests' -A50 "$work/ci.log" | sed -n '1,20p' || true
exit "$rc"
