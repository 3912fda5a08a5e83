#!/usr/bin/env python3
"""Prints lab-core's module import graph and fails on a cycle.

Two views: files inside orchestrate/ (what each file imports from its
siblings), and lab-core's top-level modules (build, remote, store,
orchestrate, ...). An edge is any `super::x`, `crate::x` or
`lab_core::x` path in a file's code, outside its `#[cfg(test)]` module
(tests may reach anywhere). Usage: scripts/module-graph.py [lab-core/src]
"""
import re
import sys
from pathlib import Path

src = Path(sys.argv[1] if len(sys.argv) > 1 else "lab-core/src")


def code(path):
    text = path.read_text()
    # Drop the unit tests at the end of a file, and comments.
    text = re.split(r"\n#\[cfg\(test\)\]\nmod tests", text)[0]
    return "\n".join(line.split("//")[0] for line in text.splitlines())


def top_module(path):
    rel = path.relative_to(src)
    name = rel.parts[0]
    return name[:-3] if name.endswith(".rs") else name


def uses(text, prefix):
    """Module names after `prefix::`, also inside `use prefix::{a, b::c}`."""
    names = set(re.findall(prefix + r"::(\w+)", text))
    for group in re.findall(r"use " + prefix + r"::\{([^;]*)\};", text, re.S):
        names |= set(re.findall(r"(?:^|[,{\s])(\w+)(?=::|\s*[,}]|\s*$)", group))
    return names


def find_cycle(graph):
    state, stack = {}, []

    def visit(n):
        state[n] = 1
        stack.append(n)
        for m in sorted(graph.get(n, ())):
            if state.get(m) == 1:
                return stack[stack.index(m):] + [m]
            if m not in state:
                found = visit(m)
                if found:
                    return found
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(graph):
        if n not in state:
            found = visit(n)
            if found:
                return found
    return None


failed = False
# orchestrate/: file-level edges between siblings.
orch = src / "orchestrate"
files = {p.stem: p for p in orch.glob("*.rs") if p.stem != "mod"}
graph = {}
for name, path in sorted(files.items()):
    text = code(path)
    deps = (uses(text, "super") | {m for m in uses(text, r"crate::orchestrate")}) & set(files)
    graph[name] = sorted(deps - {name})
print("orchestrate/ (file -> files it imports):")
for name in sorted(graph):
    print(f"  {name:12} -> {', '.join(graph[name]) or '-'}")
cycle = find_cycle(graph)
print("  cycle: " + (" -> ".join(cycle) if cycle else "none"))
failed |= bool(cycle)

# lab-core top-level modules.
tops = {top_module(p) for p in src.glob("*") if p.name not in ("lib.rs",) and (p.is_dir() or p.suffix == ".rs")}
top_graph = {t: set() for t in tops}
for path in src.rglob("*.rs"):
    if "tests" in path.relative_to(src).parts[1:-1] or path.name == "lib.rs":
        continue
    me = top_module(path)
    for dep in uses(code(path), "crate") & tops:
        if dep != me:
            top_graph[me].add(dep)
print("lab-core/src (module -> modules it imports):")
for name in sorted(top_graph):
    print(f"  {name:12} -> {', '.join(sorted(top_graph[name])) or '-'}")
# The modules split out of orchestrate/ must sit below it: none of them
# may reach itself, and none may reach orchestrate.
def reach(start):
    seen, todo = set(), list(top_graph[start])
    while todo:
        n = todo.pop()
        if n not in seen:
            seen.add(n)
            todo.extend(top_graph.get(n, ()))
    return seen


for name in ("build", "remote", "store"):
    r = reach(name)
    bad = sorted({name, "orchestrate"} & r)
    print(f"  {name} reaches {', '.join(bad) if bad else 'neither itself nor orchestrate'}")
    failed |= bool(bad)
others = sorted(n for n in top_graph if n not in ("build", "remote", "store") and n in reach(n))
print("  other modules on a cycle (older than the split): " + (", ".join(others) or "none"))
sys.exit(1 if failed else 0)
