#!/bin/sh
# A model of NixOS's switch-to-configuration (switch-to-configuration-ng)
# for the systemd test hosts, as unkind as the real one:
#  - one switch at a time: it takes /run/nixos/switch-to-configuration.lock
#    without waiting, and a second switch fails at once ("Could not acquire
#    lock", exit 1);
#  - boot and switch make this system the boot default (/boot/lab-default,
#    the model's boot loader entry);
#  - switch and test flip /run/current-system first, then change units
#    through the host's real systemctl, so "the current system is the new
#    one" holds long before the switch has ended;
#  - it can be slow, can exit 4 ("some units failed"), and exits 101 when
#    its output is closed under it (the real one, written in Rust, panics on
#    a failed print: nixpkgs #462179).
# Its knobs come from lab-test.conf in the system's store path.
set -u
trap '' PIPE
out=$(cd "$(dirname "$0")/.." && pwd -P)
. "$out/lab-test.conf"
action=${1:-}
case "$action" in
  switch | boot | test | dry-activate) ;;
  *)
    echo "Usage: $0 [switch|boot|test|dry-activate]" >&2
    exit 1
    ;;
esac

# Every switch is logged on the host, for the tests: when it began and
# ended, what it was asked, and how it ended.
log() {
  printf '%s %s %s %s\n' "$(date +%s.%N)" "$1" "$action" "$out" >>/var/log/lab-switch.log
}
log start
trap 'rc=$?; log "end-$rc"; exit $rc' EXIT

# Progress goes to standard output; a closed output ends the switch as the
# real one ends.
say() {
  printf '%s\n' "$*" || exit 101
}

mkdir -p /run/nixos
exec 9>>/run/nixos/switch-to-configuration.lock
if ! flock -n 9; then
  echo "Could not acquire lock" >&2
  exit 1
fi

if [ "$action" = dry-activate ]; then
  say "would activate the configuration $out"
  exit 0
fi

point() { # atomically points the link $2 at $1
  ln -sfn "$1" "$2.lab-tmp" && mv -T "$2.lab-tmp" "$2"
}

if [ "$action" = boot ] || [ "$action" = switch ]; then
  say "updating the boot loader..."
  mkdir -p /boot
  point "$out" /boot/lab-default
fi
[ "$action" = boot ] && exit 0

say "activating the configuration..."
point "$out" /run/current-system
# As NixOS's activation: the running and the booted system are GC roots.
mkdir -p /nix/var/nix/gcroots
ln -sfn /run/current-system /nix/var/nix/gcroots/current-system
ln -sfn /run/booted-system /nix/var/nix/gcroots/booted-system
say "setting up /etc..."
cp "$out"/etc/systemd/system/* /etc/systemd/system/
systemctl daemon-reload

# The slow part: units restart while progress is printed.
ms=$activation_delay_ms
while [ "$ms" -gt 0 ]; do
  say "restarting units... (${ms} ms left)"
  sleep 0.2
  ms=$((ms - 200))
done

# The deploy user's sudo rule belongs to the generation, as on NixOS: one
# that removes NOPASSWD keeps the rule it replaced, which the others restore.
rule=/etc/sudoers.d/lab-deploy
if [ "$behaviour" = removes-nopasswd ]; then
  if [ -e "$rule" ] && [ ! -e /etc/lab-deploy.sudoers ]; then cp "$rule" /etc/lab-deploy.sudoers; fi
  if [ -e "$rule" ]; then sed 's/NOPASSWD: *//' /etc/lab-deploy.sudoers >"$rule"; fi
elif [ -e /etc/lab-deploy.sudoers ]; then
  mv /etc/lab-deploy.sudoers "$rule"
fi

failed=0
case "$behaviour" in
  healthy | removes-nopasswd)
    systemctl unmask --runtime ssh.service >/dev/null 2>&1
    systemctl start ssh.service || failed=1
    systemctl restart lab-app.socket || failed=1
    ;;
  unhealthy)
    systemctl stop lab-app.socket
    ;;
  breaks-sshd)
    # Closes port 22 for good (until another generation is activated);
    # sessions already open stay.
    systemctl mask --runtime ssh.service >/dev/null 2>&1
    systemctl stop ssh.service
    systemctl restart lab-app.socket || failed=1
    ;;
esac
say "the following new units were started: lab-app.socket"
if [ "$failed" -ne 0 ]; then
  echo "warning: the following units failed: ssh.service lab-app.socket" >&2
  exit 4
fi
exit "$activation_exit"
