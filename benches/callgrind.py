#!/usr/bin/env python3
"""Instructions per operation, ucoro's safe API beside corosensei's, counted
by callgrind (deterministic, unlike times on a shared machine), and the
same operations timed interleaved.

    python3 benches/callgrind.py    # prints the tables, saves them for the report
    UCORO_BENCH_CPU=1 python3 benches/callgrind.py   # the timing pinned to CPU 1

Builds the `instructions` bench target (benches/instructions.rs, whose
operations come from benches/support/ops.rs, shared with the criterion
benches), runs each case under `valgrind --tool=callgrind` for N1 and N2
operations, and divides the difference in instructions executed by
N2 - N1, so that setup and teardown cancel out. Then it times every case
natively (`instructions --time`): each pair alone in a process, the best
of TIME_ROUNDS batches of each, ucoro's and its peer's alternating, in
thread CPU time, and the best over TIME_PROCESSES such processes. On a
shared machine other work only ever adds time, so the best is the estimate
least disturbed by it.
Both go to TARGET/callgrind.json, from which the report generator
(benches/report) puts them in BENCHMARKS.md beside criterion's times.
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
    ("C API: coroutine_init, run to the end, coroutine_release",
     "lifecycle/ucoro_c", "lifecycle/corosensei_reused_stack"),
]
# The interleaved timing: operations per batch, batches of each case per
# process, processes per pair (each pair alone in its process).
TIME_N, TIME_ROUNDS, TIME_PROCESSES = 20_000, 200, 7


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
    times = interleaved(exe, target)
    print(f"\n| per operation, interleaved (best of {TIME_ROUNDS} batches, {TIME_PROCESSES} processes)"
          " | ucoro | corosensei 0.3 | ratio |")
    print("|---|---:|---:|---:|")
    for label, ours, theirs in ROWS:
        a, b = times[ours], times[theirs]
        print(f"| {label} | {a:.2f} ns | {b:.2f} ns | {a / b:.2f}x |")
    saved = os.path.join(target, "callgrind.json")
    with open(saved, "w") as f:
        json.dump({"machine": platform.machine(), "n1": N1, "n2": N2,
                   "instructions": counts,
                   "interleaved": {"n": TIME_N, "rounds": TIME_ROUNDS,
                                   "processes": TIME_PROCESSES, "ns": times}},
                  f, indent=1)
    print(f"saved to {saved}")


def interleaved(exe, target):
    """Each case's best time per operation (ns): each pair of ROWS timed
    alone in TIME_PROCESSES processes, one after another, batches of the two
    alternating, on the CPU UCORO_BENCH_CPU names if set. On a shared VM a
    phase of contention (a busy sibling hyperthread) lasts seconds, longer
    than one process, and slows the more instruction-bound side more: the
    best over several processes is the quiet machine's."""
    out = os.path.join(target, "interleaved.json")
    cpu = os.environ.get("UCORO_BENCH_CPU")
    pin = ["taskset", "-c", cpu] if cpu else []
    best = {}
    for _ in range(TIME_PROCESSES):
        for _, ours, _ in ROWS:
            cmd = pin + [exe, "--time", str(TIME_N), str(TIME_ROUNDS), ours, "--json", out]
            subprocess.run(cmd, check=True, capture_output=True)
            with open(out) as f:
                for case, ns in json.load(f).items():
                    best[case] = min(ns, best.get(case, ns))
    return best


if __name__ == "__main__":
    main()
