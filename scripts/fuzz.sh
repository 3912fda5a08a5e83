#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for a bounded time (not part of CI).
#
#   scripts/fuzz.sh [SECONDS]       each target for SECONDS (default 60)
#   FUZZ_SANITIZER=none scripts/fuzz.sh   without AddressSanitizer
#   FUZZ_TARGETS="selector journal" scripts/fuzz.sh   only these targets
#
# Seeds are in fuzz/seeds/TARGET; what the fuzzer learns goes to
# fuzz/corpus/TARGET, crashes to fuzz/artifacts/TARGET (both git-ignored).
# Prints one summary line per target: runs, execs/s and whether it crashed.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"
seconds="${1:-60}"
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked
# cargo-fuzz passes nightly -Z flags; this lets the stable compiler accept them.
export RUSTC_BOOTSTRAP=1
sanitizer="${FUZZ_SANITIZER:-address}"
targets="${FUZZ_TARGETS:-$(cargo fuzz list)}"
mkdir -p fuzz/logs
summary=()
status=0
for target in $targets; do
  echo "==> $target: ${seconds}s, sanitizer $sanitizer"
  mkdir -p "fuzz/corpus/$target"
  log="fuzz/logs/$target.log"
  # Absolute corpus paths: a target may change its working directory.
  if cargo fuzz run --sanitizer "$sanitizer" "$target" "$root/fuzz/corpus/$target" "$root/fuzz/seeds/$target" -- \
      -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 >"$log" 2>&1; then
    result="ok"
  else
    result="FOUND A CRASH (see $log and fuzz/artifacts/$target)"
    status=1
  fi
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -n1 || true)
  speed=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -n1 || true)
  summary+=("$target: ${runs:-?} runs, ${speed:-?} execs/s, $result")
done
echo "==> summary"
printf '  %s\n' "${summary[@]}"
exit "$status"
