#!/usr/bin/env bash
# Whole-process comparison of ways to read a generated 50-machine fleet:
#   lab cold        lab machines --refresh (evaluates, writes the cache)
#   lab cold -j1    the same with one nix process
#   lab warm        lab machines with a current cache (no nix started)
#   bare nix eval   one `nix eval` of the same data, nothing else
#   per machine     the original tool: one listing plus one `nix eval` per machine
# Prints hyperfine's table, then each median and its ratio to the bare eval.
#
#   benches/fleet-eval.sh [--runs N]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=20
[ "${1:-}" = "--runs" ] && runs=$2

if ! command -v hyperfine >/dev/null 2>&1; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq hyperfine >/dev/null
fi

cargo build --release -q -p lab-cli
lab=$PWD/target/release/lab
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp lab-core/tests/fixtures/fleets/lib.nix "$work/"
printf '{ nixosConfigurations = (import ./lib.nix).fleet 50; }\n' >"$work/fleet.nix"
export XDG_CACHE_HOME=$work/cache
nix=(nix --extra-experimental-features 'nix-command flakes')
fleet=$work/fleet.nix

# The original approach, as the Scheme tool ran it (names spliced into text).
cat >"$work/per-machine.sh" <<SH
#!/usr/bin/env bash
set -euo pipefail
for name in \$(${nix[*]@Q} eval --raw --file $fleet nixosConfigurations --apply 'c: builtins.concatStringsSep " " (builtins.attrNames c)'); do
  ${nix[*]@Q} eval --json --file $fleet "nixosConfigurations.\$name.config.lab.metadata" >/dev/null
done
SH
chmod +x "$work/per-machine.sh"

"$lab" machines --file "$fleet" >/dev/null # fill the cache for the warm runs
hyperfine -N --warmup 3 --runs "$runs" --export-json "$work/result.json" \
  -n "lab cold" "$lab machines --json --refresh --file $fleet" \
  -n "lab cold -j1" "$lab machines --json --refresh --eval-jobs 1 --file $fleet" \
  -n "lab warm" "$lab machines --json --file $fleet" \
  -n "bare nix eval" "nix --extra-experimental-features nix-command eval --json --file $fleet nixosConfigurations --apply 'builtins.mapAttrs (n: c: c.config.lab.metadata)'" \
  -n "per machine" "$work/per-machine.sh"

python3 - "$work/result.json" <<'PY'
import json, sys
results = json.load(open(sys.argv[1]))["results"]
bare = next(r["median"] for r in results if r["command"] == "bare nix eval")
print(f"\n{'':16}{'median':>10}{'vs bare':>10}")
for r in results:
    print(f"{r['command']:16}{r['median'] * 1000:>8.1f}ms{r['median'] / bare:>9.2f}x")
PY
