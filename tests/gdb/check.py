# gdb's view of tests/gdb/coroutines.c through ucoro-gdb.py: `ucoro list`,
# `ucoro bt` and gdb's own `bt` through coroutines, in batch mode:
#
#   gdb -batch -x check.py PROGRAM            live: runs it to stop_here
#   gdb -batch -x check.py PROGRAM CORE       a core file written there
#   UCORO_GDB_REMOTE=HOST:PORT gdb -batch -x check.py PROGRAM
#                                            a gdb stub (qemu-user -g)
#
# UCORO_GDB_SWITCH=portable: PROGRAM was built with -DUCORO_SWITCH_SETJMP
# or -DUCORO_SWITCH_UCONTEXT, where backtraces end at a coroutine's first
# frame and `ucoro bt` declines.
#
# ucoro-gdb.py must be loaded already (auto-loaded with libucoro.so, or
# -iex "source .../ucoro-gdb.py"). With UCORO_GDB_GCORE=FILE, a live run
# also writes FILE with `ucoro gcore` for a second run on the core.
# Prints every check that failed and "check.py: N passed, M failed"; gdb
# exits with 1 if any failed. .ci/debugging.sh runs it.
#
# SPDX-License-Identifier: MIT OR Apache-2.0

import os
import re

import gdb

passed = 0
failed = []


def check(ok, what):
    global passed
    if ok:
        passed += 1
    else:
        failed.append(what)
        print("check.py: FAILED: " + what)


def run(command):
    return gdb.execute(command, to_string=True)


def functions(backtrace):
    """The function of each frame line of a backtrace, in order."""
    names = []
    for line in backtrace.splitlines():
        m = re.match(r"#\d+\s+(?:0x[0-9a-f]+ in )?([^\s(]+)", line)
        if m:
            names.append(m.group(1))
    return names


def in_order(expected, actual):
    """Whether expected appear in actual, in this order (others between)."""
    at = 0
    for name in actual:
        if at < len(expected) and name == expected[at]:
            at += 1
    return at == len(expected)


def check_clean(backtrace, what):
    """No frame gdb could not name, no frame with pc 0, no early stop."""
    check("Backtrace stopped" not in backtrace, what + ": no 'Backtrace stopped'")
    check(not re.search(r"\?\? \(|0x0+ in ", backtrace), what + ": no garbage frame")
    check("signal handler called" not in backtrace, what + ": start stubs are named")
    check("no_resumer" not in backtrace, what + ": the chain's end frame is hidden")


def check_backtrace(backtrace, expected, what, last=None, absent=()):
    names = functions(backtrace)
    check(in_order(expected, names), "%s: frames %s in %s" % (what, expected, names))
    if last is not None:
        check(names[-1:] == [last], "%s: ends at %s, not %s" % (what, last, names[-1:]))
    for name in absent:
        check(name not in names, "%s: no %s frame" % (what, name))
    check_clean(backtrace, what)


def main():
    global live
    portable = os.environ.get("UCORO_GDB_SWITCH") == "portable"
    remote = os.environ.get("UCORO_GDB_REMOTE")
    live = gdb.selected_inferior().pid == 0 or bool(remote)
    if remote:
        run("target remote " + remote)
    if live:
        run("break stop_here")
        run("continue" if remote else "run")

    expected.update({
        name: int(gdb.parse_and_eval("(unsigned long) expected.%s" % name))
        for name in (
            "global",
            "stack_outer",
            "made_inner",
            "heap_outer",
            "thread_inner",
            "not_started",
            "finished",
            "done_made",
            "raw",
        )
    })

    # ---- ucoro list -------------------------------------------------------

    listing = run("ucoro list")
    print(listing, end="")
    for line in listing.splitlines():
        if line.startswith("0x"):
            lines[int(line.split()[0], 16)] = line


    def listed(name, *words):
        line = lines.get(expected[name], "")
        check(line != "", "ucoro list shows %s (%#x)" % (name, expected[name]))
        check(
            re.search(r"\s0x[0-9a-f]+-0x[0-9a-f]+\s+used \d", line) is not None,
            "%s: a stack range and its use: %r" % (name, line),
        )
        for word in words:
            check(word in line, "%s: %r in %r" % (name, word, line))


    check(len(lines) == 7, "ucoro list: 7 live coroutines, not %d" % len(lines))
    listed("global", "suspended ", " suspended_body ", "caller -")
    listed("stack_outer", "suspended ", " outer_body ", "(main of thread 1)")
    listed("made_inner", "running ", " inner_body ", "caller %#x" % expected["stack_outer"], "thread 1")
    listed("heap_outer", "suspended ", " thread_outer_body ", "(main of thread 2)")
    listed("thread_inner", "running ", " thread_inner_body ",
           "caller %#x" % expected["heap_outer"], "thread 2")
    listed("not_started", "not started ", " return_at_once ", "caller -")
    listed("raw", "suspended ", " raw_entry ", "(continuation)")
    for gone in ("finished", "done_made"):
        check(expected[gone] not in lines, "ucoro list leaves out %s (finished)" % gone)

    # ---- gdb's bt goes through running coroutines to each thread's start ----

    run("thread 1")
    bt1 = run("bt")
    print(bt1, end="")
    run("thread 2")
    bt2 = run("bt")
    print(bt2, end="")
    run("thread 1")
    if portable:
        # The portable modes: each backtrace ends at the running
        # coroutine's first frame, the entry stub, and ucoro bt declines.
        ENTRY = "ucoro__enter_stack"
        check_backtrace(bt1, ["stop_here", "inner_body", ENTRY], "thread 1 bt", last=ENTRY)
        check_backtrace(bt2, ["block_in_thread2", "thread_inner_body", ENTRY], "thread 2 bt",
                        last=ENTRY)
        try:
            run("ucoro bt expected.global")
            check(False, "ucoro bt declines the portable modes")
        except gdb.error as e:
            check("_setjmp or swapcontext" in str(e), "ucoro bt in a portable mode: " + str(e))
        return

    STUB = "ucoro__start_stub"
    check_backtrace(bt1, ["stop_here", "inner_body", STUB, "outer_body", STUB, "resume_outer", "main"],
                    "thread 1 bt")
    check("first frame of coroutine %#x" % expected["made_inner"] in bt1,
          "thread 1 bt: the stub names its coroutine")
    check_backtrace(bt2, ["block_in_thread2", "thread_inner_body", STUB, "thread_outer_body", STUB,
                          "thread2_main"], "thread 2 bt")

    # ---- ucoro bt: suspended coroutines, without resuming them ------------

    out = run("ucoro bt expected.global")
    print(out, end="")
    check(out.startswith("#0 "), "ucoro bt: frames numbered from #0")
    check_backtrace(out, ["park_in_global", "suspended_body", STUB], "ucoro bt global", last=STUB,
                    absent=("main",))

    out = run("ucoro bt expected.stack_outer")
    print(out, end="")
    check_backtrace(out, ["outer_body", STUB, "resume_outer", "main"],
                    "ucoro bt stack_outer (waits in coroutine_yieldto)", absent=("stop_here",))

    out = run("ucoro bt expected.heap_outer")
    print(out, end="")
    check_backtrace(out, ["thread_outer_body", STUB, "thread2_main"],
                    "ucoro bt heap_outer (on thread 2)", absent=("main", "block_in_thread2"))

    out = run("ucoro bt expected.raw")
    print(out, end="")
    check_backtrace(out, ["cc_swap", STUB], "ucoro bt raw continuation", last=STUB)

    out = run("ucoro bt expected.made_inner")
    check("runs on thread 1" in out and "stop_here" in out, "ucoro bt of a running coroutine: " + out)
    out = run("ucoro bt expected.not_started")
    check("has not started" in out, "ucoro bt of a coroutine not started: " + out)
    try:
        run("ucoro bt expected.finished")
        check(False, "ucoro bt of a finished coroutine is refused")
    except gdb.error as e:
        check("not a live coroutine" in str(e), "ucoro bt of a finished coroutine: " + str(e))

    # The selected thread's own backtrace is as it was.
    check(run("bt") == bt1, "bt after ucoro bt is thread 1's again")

    gcore = os.environ.get("UCORO_GDB_GCORE")
    if live and gcore:
        print(run("ucoro gcore " + gcore), end="")


expected = {}
lines = {}
live = False
try:
    main()
except Exception as e:  # a failed command is a failed check, not a pass
    failed.append("check.py stopped: %s" % e)
    print("check.py: FAILED: stopped by %s: %s" % (type(e).__name__, e))
print("check.py: %d passed, %d failed" % (passed, len(failed)))
if live:
    try:
        gdb.execute("kill")
    except gdb.error:
        pass
gdb.execute("quit %d" % (1 if failed else 0))
