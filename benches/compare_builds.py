#!/usr/bin/env python3
"""Compares the switch benchmarks of this tree with those of another git
revision, on the same machine, in alternating runs.

    python3 benches/compare_builds.py REV [--rounds N] [--filter REGEX]

Builds `cargo bench --bench switch` for REV (in a git worktree under
target/compare/) and for the working tree, then runs the two binaries in
turn, ROUNDS times each, on the benchmarks FILTER selects (criterion's
regex). Prints every median, the median of medians, and new/base ratios.
The peers (corosensei, Boost.Context) are in the default filter: their
ratio should be about 1.0, and how far it strays is how far the machine
drifted during the run. On a shared VM, trust ratios, not absolute times.
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import sys

DEFAULT_FILTER = (
    r"round_trip/(ucoro_c|ucoro_safe|corosensei|boost_context)$"
    r"|lifecycle/(ucoro_c|ucoro_safe|corosensei_reused_stack)$"
)
UNITS = {"ps": 1e-3, "ns": 1.0, "µs": 1e3, "us": 1e3, "ms": 1e6, "s": 1e9}


def bench_binary(tree, target_dir):
    """Builds the switch benchmark in `tree`; returns the executable's path."""
    out = subprocess.run(
        ["cargo", "bench", "--bench", "switch", "--no-run", "--message-format=json"],
        cwd=tree,
        env={**os.environ, "CARGO_TARGET_DIR": target_dir},
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    for line in out.splitlines():
        msg = json.loads(line)
        if msg.get("reason") == "compiler-artifact" and msg.get("executable") and \
                msg["target"]["name"] == "switch":
            return msg["executable"]
    sys.exit(f"no switch benchmark built in {tree}")


def run(binary, filt):
    """One run: {benchmark: median ns}."""
    out = subprocess.run(
        [binary, "--bench", filt, "--warm-up-time", "1", "--measurement-time", "3", "--noplot"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    results, name = {}, None
    for line in out.splitlines():
        head = re.match(r"^(\S+/\S+)", line)
        if head:
            name = head.group(1)
        time = re.search(r"time:\s+\[\S+ \S+ (\S+) (\S+) \S+ \S+\]", line)
        if time and name:
            results[name] = float(time.group(1)) * UNITS[time.group(2)]
            name = None
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("rev", help="the git revision to compare against")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--filter", default=DEFAULT_FILTER)
    args = parser.parse_args()

    root = subprocess.run(["git", "rev-parse", "--show-toplevel"], check=True,
                          capture_output=True, text=True).stdout.strip()
    sha = subprocess.run(["git", "rev-parse", "--short", args.rev], cwd=root, check=True,
                         capture_output=True, text=True).stdout.strip()
    base_tree = os.path.join(root, "target", "compare", sha)
    if not os.path.isdir(base_tree):
        subprocess.run(["git", "worktree", "add", "--detach", base_tree, sha], cwd=root,
                       check=True, capture_output=True)
    base = bench_binary(base_tree, os.path.join(base_tree, "target"))
    new = bench_binary(root, os.path.join(root, "target"))

    times = {"base": {}, "new": {}}
    for _ in range(args.rounds):
        for which, binary in (("base", base), ("new", new)):
            for name, ns in run(binary, args.filter).items():
                times[which].setdefault(name, []).append(ns)

    for which in ("base", "new"):
        label = f"{which} ({sha})" if which == "base" else "new (working tree)"
        print(label)
        for name, values in sorted(times[which].items()):
            cells = " ".join(f"{v:9.2f}" for v in values)
            print(f"  {name:42} {cells}   median {statistics.median(values):9.2f} ns")
    print(f"new / base, median of {args.rounds} alternating runs each")
    for name in sorted(times["new"]):
        if name in times["base"]:
            ratio = statistics.median(times["new"][name]) / statistics.median(times["base"][name])
            print(f"  {name:42} {ratio:6.3f}")


if __name__ == "__main__":
    main()
