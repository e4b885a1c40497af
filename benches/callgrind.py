#!/usr/bin/env python3
"""Instructions per operation, ucoro's safe API beside corosensei's, counted
by callgrind (deterministic, unlike times on a shared machine).

    python3 benches/callgrind.py    # prints the table, saves it for the report

Builds the `instructions` bench target (benches/instructions.rs, whose
operations come from benches/support/ops.rs, shared with the criterion
benches), runs each case under `valgrind --tool=callgrind` for N1 and N2
operations, and divides the difference in instructions executed by
N2 - N1, so that setup and teardown cancel out. The counts go to
TARGET/callgrind.json, from which the report generator (benches/report)
puts the table in BENCHMARKS.md beside criterion's times.
"""

import argparse
import json
import os
import platform
import re
import subprocess
import sys

N1, N2 = 2_000, 22_000
# (row label, ucoro case, corosensei case): names from instructions.rs.
ROWS = [
    ("resume + suspend, tight loop", "round_trip/ucoro_safe", "round_trip/corosensei"),
    ("resume + suspend inside a non-inlined function that returns",
     "step/ucoro_safe", "step/corosensei"),
    ("generator value through a non-inlined `next()`",
     "generator_next/ucoro", "generator_next/corosensei"),
    ("create, run, drop (corosensei: reused stack)",
     "lifecycle/ucoro_safe", "lifecycle/corosensei_reused_stack"),
]


def build():
    """Builds the instructions bench; returns (executable, target directory)."""
    out = subprocess.run(
        ["cargo", "bench", "--bench", "instructions", "--no-run", "--message-format=json"],
        check=True, capture_output=True, text=True,
    ).stdout
    meta = json.loads(subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--no-deps"],
        check=True, capture_output=True, text=True,
    ).stdout)
    for line in out.splitlines():
        msg = json.loads(line)
        if msg.get("reason") == "compiler-artifact" and msg.get("executable") and \
                msg["target"]["name"] == "instructions":
            return msg["executable"], meta["target_directory"]
    sys.exit("no instructions benchmark built")


def instructions(exe, case, n):
    """Instructions callgrind counted for the whole run of CASE with N ops."""
    run = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", exe, case, str(n)],
        capture_output=True, text=True,
    )
    found = re.search(r"Collected : (\d+)", run.stderr)
    if run.returncode != 0 or not found:
        sys.exit(f"callgrind failed on {case}:\n{run.stderr}")
    return int(found.group(1))


def per_op(exe, case):
    return (instructions(exe, case, N2) - instructions(exe, case, N1)) / (N2 - N1)


def main():
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    os.chdir(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    exe, target = build()
    counts = {}
    print("| per operation | ucoro safe API | corosensei 0.3 | ratio |")
    print("|---|---:|---:|---:|")
    for label, ours, theirs in ROWS:
        a, b = per_op(exe, ours), per_op(exe, theirs)
        counts[ours], counts[theirs] = a, b
        print(f"| {label} | {a:.0f} | {b:.0f} | {a / b:.2f}x |")
    saved = os.path.join(target, "callgrind.json")
    with open(saved, "w") as f:
        json.dump({"machine": platform.machine(), "n1": N1, "n2": N2,
                   "instructions": counts}, f, indent=1)
    print(f"saved to {saved}")


if __name__ == "__main__":
    main()
