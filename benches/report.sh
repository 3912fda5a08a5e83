#!/usr/bin/env bash
# Runs every benchmark and writes BENCHMARKS.md: medians, ratios and the
# machine they ran on. Not part of CI (timings on a shared machine are noise
# for a pass/fail test); run it by hand:
#
#   benches/report.sh            # all benchmarks, ~5 minutes on 2 cores
#
# What it runs:
#   fleet evaluation   benches/fleet-eval.sh: lab cold and warm against a bare
#                      `nix eval` and the original one-process-per-host approach
#   NixOS-sized fleet  benches/nixos-eval.sh: 100 hosts of 1,500 modules each,
#                      cold (healthy, one broken) against a bare nix-instantiate,
#                      warm flake reads (~15 minutes on 2 cores)
#   planning           criterion: build + validate + order + waves at 100/1,000/10,000 machines
#   health fan-out     1,000 http + tcp checks against loopback servers
#   orchestration      e2e makespan against the schedule's lower bound, when the
#                      orchestrator's e2e benchmark test is present
set -euo pipefail
cd "$(dirname "$0")/.."
out=BENCHMARKS.md
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
command -v python3 >/dev/null || { apt-get update -qq && apt-get install -y -qq python3 >/dev/null; }

echo "==> fleet evaluation"
benches/fleet-eval.sh --runs 20 | tee "$work/eval.txt"

echo "==> NixOS-sized fleet evaluation"
benches/nixos-eval.sh --rounds 5 | tee "$work/nixos.txt"

echo "==> planning (criterion)"
cargo bench -q -p lab-core --bench graph -- --warm-up-time 1 --measurement-time 3 >"$work/graph.txt" 2>&1

echo "==> health fan-out"
cargo bench -q -p lab-core --bench health 2>/dev/null | tee "$work/health.txt"

orchestration="(not measured: no orchestration benchmark in this tree)"
if grep -qs "reports_its_makespan" e2e/tests/orchestrate.rs; then
  echo "==> orchestration overhead (6-host rolling reboot on namespaced test hosts)"
  cargo build -q --workspace
  if cargo test -q -p lab-e2e --test orchestrate reports_its_makespan -- --nocapture >"$work/orch.txt" 2>&1; then
    orchestration=$(grep "6-host rolling reboot" "$work/orch.txt" | tail -n 1)
    grep -A6 "^host  issue" "$work/orch.txt" >"$work/orch-table.txt" || true
  fi
fi

python3 - "$work" "$out" "$orchestration" <<'PY'
import json, os, platform, subprocess, sys, datetime
work, out, orchestration = sys.argv[1], sys.argv[2], sys.argv[3]
def cmd(*a):
    try: return subprocess.run(a, capture_output=True, text=True).stdout.strip()
    except OSError: return "?"
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
mem = next((l.split(":", 1)[1].strip() for l in open("/proc/meminfo") if l.startswith("MemTotal")), "?")
lines = [
    "# Benchmarks", "",
    f"Measured {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC} by `benches/report.sh` on",
    f"{cpu}, {os.cpu_count()} cores, {mem} memory, {platform.system()} {platform.release()};",
    f"{cmd('rustc', '--version')}; {cmd('nix', '--version')}. Load average at the start: {open('/proc/loadavg').read().split()[0]}.",
    "Medians; ratios are taken within one run, side by side.", "",
    "## Fleet evaluation (50 machines, whole process)", "", "```",
    open(os.path.join(work, "eval.txt")).read().strip().split("\n\n")[-1], "```", "",
    "## NixOS-sized fleet evaluation (`benches/nixos-eval.sh`)", "",
    "100 hosts, each `lib.evalModules` over 1,500 generated modules; lab with 2 workers",
    "bounded at 2048 MB each; medians of 5 interleaved rounds.", "", "```",
    open(os.path.join(work, "nixos.txt")).read().strip(), "```", "",
    "## Planning: build + validate + order + waves", "",
    "| machines | median | fleet_problems median |", "|---|---|---|",
]
def median(group, n):
    p = f"target/criterion/{group}/{n}/new/estimates.json"
    try: ns = json.load(open(p))["median"]["point_estimate"]
    except OSError: return "?"
    return f"{ns/1e6:.2f} ms" if ns >= 1e6 else f"{ns/1e3:.1f} µs"
for n in (100, 1000, 10000):
    lines.append(f"| {n:,} | {median('build_validate_order_waves', n)} | {median('fleet_problems', n)} |")
lines += ["", "## Health fan-out", "", open(os.path.join(work, "health.txt")).read().strip(), "",
          "## Orchestration overhead", "", orchestration, ""]
table = os.path.join(work, "orch-table.txt")
if os.path.exists(table) and os.path.getsize(table):
    lines += ["Per host, lab's share of the critical path in ms: from the end of rebootDelay to the host",
              "going down (issue), from the host's boot-complete to lab seeing the new boot id (detect:",
              "mostly the one fresh ssh session, see above), and the health step beyond minHealthyTime.", "",
              "```", open(table).read().strip(), "```", ""]
open(out, "w").write("\n".join(lines))
print(f"wrote {out}")
PY
