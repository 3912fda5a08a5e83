#!/usr/bin/env bash
# NixOS-sized fleet evaluation, side by side in one run (issue 17):
#   bare            one `nix-instantiate --eval --strict` of every host's
#                   lab.metadata (one process, one core)
#   lab cold        lab machines --json --refresh --file (workers, both cores)
#   lab broken      the same fleet with one host's file a syntax error
#   warm flake 100  lab machines --json --flake (cached; no nix runs)
#   warm flake 12   the same for a 12-host flake
# Each host is lib.evalModules over a generated tree of 1,500 modules
# (benches/nixos_fleet.py), nixpkgs' real lib (LAB_NIXPKGS_LIB or the pinned
# copy beside the project). Rounds are interleaved (bare, cold, broken, ...)
# so machine noise falls on all alike; medians over the rounds. Wall time,
# and the peak resident memory of the largest process (lab or one of its
# nix workers; for bare, nix itself) from wait4's rusage.
#
#   benches/nixos-eval.sh [--rounds N] [--hosts N] [--lab PATH]
# (--lab: a lab binary to use instead of building the release one)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=5 hosts=100 lab=
while [ $# -gt 0 ]; do
  case $1 in
    --rounds) rounds=$2; shift 2 ;;
    --hosts) hosts=$2; shift 2 ;;
    --lab) lab=$2; shift 2 ;;
    *) echo "usage: $0 [--rounds N] [--hosts N] [--lab PATH]" >&2; exit 2 ;;
  esac
done
# nix as the tests run it: no daemon, no substituters, no flake registry.
source <(sed -n '/^test_env()/,/^}/p' dev)
test_env
if [ -z "$lab" ]; then
  cargo build --release -q -p lab-cli
  lab=$PWD/target/release/lab
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export XDG_CACHE_HOME=$work/cache

python3 benches/nixos_fleet.py "$work/fleet" --hosts "$hosts"
python3 benches/nixos_fleet.py "$work/broken" --hosts "$hosts" --broken "$(printf "host-%03d" $((hosts / 2)))"
python3 benches/nixos_fleet.py "$work/flake12" --hosts 12
for flake in fleet flake12; do
  git -C "$work/$flake" init -q
  git -C "$work/$flake" add -A
  (cd "$work/$flake" && nix flake lock 2>/dev/null)
  git -C "$work/$flake" add flake.lock
  git -C "$work/$flake" -c user.name=bench -c user.email=bench@localhost commit -qm fleet
done

python3 - "$lab" "$work" "$rounds" "$hosts" <<'PY'
import os, statistics, subprocess, sys, time
lab, work, rounds, hosts = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])

def run(argv):
    """Wall seconds and peak RSS (MB) of the largest process of the tree."""
    started = time.monotonic()
    p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.monotonic() - started
    err = p.stderr.read().decode(errors="replace")
    if os.waitstatus_to_exitcode(status) not in (0, 1):
        sys.exit(f"{argv[:3]} failed: {err[-2000:]}")
    return wall, usage.ru_maxrss / 1024

bare = ["nix-instantiate", "--eval", "--strict", "--json", "-E",
        f"builtins.mapAttrs (n: c: c.config.lab.metadata) (import {work}/fleet/fleet.nix).nixosConfigurations"]
commands = {
    "bare nix-instantiate": bare,
    "lab cold": [lab, "machines", "--json", "--refresh", "--file", f"{work}/fleet/fleet.nix"],
    "lab cold, 1 broken": [lab, "machines", "--json", "--refresh", "--file", f"{work}/broken/fleet.nix"],
}
results = {name: [] for name in commands}
for r in range(rounds):
    for name, argv in commands.items():
        results[name].append(run(argv))
        print(f"round {r + 1} {name}: {results[name][-1][0]:.1f} s, {results[name][-1][1]:.0f} MB", file=sys.stderr)

# One host alone: what a host costs (wall and memory of one process).
one = ["nix-instantiate", "--eval", "--strict", "--json", "-E",
       f"(import {work}/fleet/fleet.nix).nixosConfigurations.host-001.config.lab.metadata"]
two = ["nix-instantiate", "--eval", "--strict", "--json", "-E",
       f"with (import {work}/fleet/fleet.nix).nixosConfigurations; [ host-001.config.lab.metadata host-002.config.lab.metadata ]"]
single = [run(one) for _ in range(rounds)]
double = [run(two) for _ in range(rounds)]

# Warm reads of the flakes: fill the cache, then read it.
warm = {}
for name, flake in [(f"warm flake {hosts}", "fleet"), ("warm flake 12", "flake12")]:
    argv = [lab, "machines", "--json", "--flake", f"{work}/{flake}"]
    run(argv)
    warm[name] = [run(argv) for _ in range(max(rounds, 10))]

med = lambda xs: statistics.median(xs)
base = med([w for w, _ in results["bare nix-instantiate"]])
print(f"{'':24}{'median':>10}{'vs bare':>10}{'peak MB':>10}")
for name, xs in results.items():
    m = med([w for w, _ in xs])
    print(f"{name:24}{m:>9.1f}s{m / base:>9.2f}x{med([k for _, k in xs]):>10.0f}")
healthy = med([w for w, _ in results["lab cold"]])
broken = med([w for w, _ in results["lab cold, 1 broken"]])
print(f"\n1 broken vs healthy (lab): {broken / healthy:.2f}x")
s1, s2 = med([w for w, _ in single]), med([w for w, _ in double])
m1, m2 = med([k for _, k in single]), med([k for _, k in double])
print(f"one host alone: {s1:.2f} s, {m1:.0f} MB; each further host: {s2 - s1:.2f} s, {m2 - m1:.0f} MB")
for name, xs in warm.items():
    print(f"{name}: median {med([w for w, _ in xs]) * 1000:.1f} ms over {len(xs)} reads")
print(f"(rounds: {rounds}; load average at the end: {open('/proc/loadavg').read().split()[0]})")
PY
