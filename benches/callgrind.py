#!/usr/bin/env python3
"""Instructions per operation, ucoro's safe API beside corosensei's, counted
by callgrind (deterministic, unlike times on a shared machine), and the
same operations timed interleaved.

    python3 benches/callgrind.py    # prints the tables, saves them for the report
    UCORO_BENCH_CPU=1 python3 benches/callgrind.py   # the timing pinned to CPU 1
    python3 benches/callgrind.py --breakdown   # where each operation's instructions are

`--breakdown` prints, for every case of the table, its instructions per
operation by the function whose code they are (addresses looked up in the
symbol table: callgrind's own attribution follows calls, and charges what
runs after a switch's jump onto the other stack to the switch), then stops.

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
import bisect
import collections
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
    ("create, resume to its one suspend, resume to the end, drop",
     "lifecycle_suspend/ucoro_safe", "lifecycle_suspend/corosensei_reused_stack"),
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


def callgrind(exe, case, n, *options):
    """Runs CASE with N ops under callgrind; returns its standard error."""
    run = subprocess.run(
        ["valgrind", "--tool=callgrind", *options, exe, case, str(n)],
        capture_output=True, text=True,
    )
    if run.returncode != 0 or "Collected : " not in run.stderr:
        sys.exit(f"callgrind failed on {case}:\n{run.stderr}")
    return run.stderr


def instructions(exe, case, n):
    """Instructions callgrind counted for the whole run of CASE with N ops."""
    stderr = callgrind(exe, case, n, "--callgrind-out-file=/dev/null")
    return int(re.search(r"Collected : (\d+)", stderr).group(1))


POSITION = re.compile(r"^(0x[0-9a-f]+|[+-]\d+|\*)$")


def per_address(path):
    """Instructions executed at each address, from a callgrind profile made
    with --dump-instr=yes (cost lines "address line count", the address
    absolute or relative to the previous line's; the line after a "calls="
    line is the call's inclusive cost, already counted where it ran)."""
    counts = collections.Counter()
    last, inclusive = 0, False
    with open(path) as f:
        for line in f:
            if line.startswith("calls="):
                inclusive = True
                continue
            fields = line.split()
            if len(fields) != 3 or not POSITION.match(fields[0]):
                continue
            pos = fields[0]
            if pos.startswith("0x"):
                last = int(pos, 16)
            elif pos != "*":
                last += int(pos)
            if inclusive:
                inclusive = False
            else:
                counts[last] += int(fields[2])
    return counts


def breakdown(exe, target):
    """Prints each case's instructions per operation by function."""
    symbols = []
    nm = subprocess.run(["nm", "-n", "-C", "--defined-only", exe],
                        check=True, capture_output=True, text=True).stdout
    for line in nm.splitlines():
        parts = line.split(" ", 2)
        if len(parts) == 3 and parts[1] in "tTwW":
            symbols.append((int(parts[0], 16), parts[2]))
    starts = [address for address, _ in symbols]

    def function(address):
        i = bisect.bisect_right(starts, address) - 1
        return symbols[i][1] if i >= 0 else "?"

    profile = os.path.join(target, "callgrind.breakdown.out")
    for case in dict.fromkeys(case for _, *pair in ROWS for case in pair):
        by_function = {}
        for n in (N1, N2):
            callgrind(exe, case, n, "--dump-instr=yes", f"--callgrind-out-file={profile}")
            sums = collections.Counter()
            for address, count in per_address(profile).items():
                sums[function(address)] += count
            by_function[n] = sums
        rows = [((by_function[N2][name] - by_function[N1][name]) / (N2 - N1), name)
                for name in set(by_function[N1]) | set(by_function[N2])]
        print(f"\n{case}: {sum(per for per, _ in rows):.0f} instructions per operation")
        for per, name in sorted(rows, reverse=True):
            if abs(per) >= 0.5:
                print(f"  {per:6.1f}  {name}")


def per_op(exe, case):
    return (instructions(exe, case, N2) - instructions(exe, case, N1)) / (N2 - N1)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--breakdown", action="store_true",
                        help="print each case's instructions by function, then stop")
    args = parser.parse_args()
    os.chdir(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    exe, target = build()
    if args.breakdown:
        breakdown(exe, target)
        return
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
