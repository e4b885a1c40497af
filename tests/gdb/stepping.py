# Unwind information right at every instruction (issue 17): single-steps
# tests/gdb/stepping.c from step_begin to step_end, through every switch,
# start stub and exit path of a round trip, and walks the stack at every
# instruction with gdb's own unwinder (no ucoro-gdb.py: only the unwind
# information is tested), wherever the innermost function is the
# library's or the program's (the C library's and Rust std's
# instructions are stepped, not checked). Each walk must name every
# frame, never see pc 0, and end at main or, for a suspended coroutine's
# chain, at ucoro__no_resumer marked outermost (arch/interface.h); in the
# portable modes (-DUCORO_SWITCH_SETJMP, -DUCORO_SWITCH_UCONTEXT) a
# coroutine's walk ends at ucoro__enter_stack. A return address in code
# without debug information must lie in the function it is named after
# also at - 1, where other unwinders look it up.
#
# The same for the safe Rust API's inlined switch (src/arch/): given the
# debug build of tests/gdb/stepping.rs (`cargo build --example
# stepping`), it steps the crate's stubs (ucoro__crate_switch_in, _out,
# _exit) and every function of the crate and the example as it does the
# C library's; the walk stops at the C-level main that Rust's runtime
# calls the program's main from (gdb would go on past it to _start).
#
#   gdb -batch -nx -x stepping.py PROGRAM
#   UCORO_GDB_REMOTE=HOST:PORT gdb-multiarch -batch -nx -x stepping.py PROGRAM
#
# UCORO_STEPPING_VERBOSE=1 prints every walk.
#
# Prints the failed walks (at most 20 in full) and, last,
# "stepping.py: N instructions checked (A in the switch and stubs; L in
# the C library not), M failed" (L counts every library outside this
# repository: libc, libgcc, Rust's std);
# gdb exits with 1 if any failed or nothing was stepped.
# .ci/debugging.sh runs it.
#
# SPDX-License-Identifier: MIT OR Apache-2.0

import os

import gdb

ASSEMBLY = ("ucoro__switch", "ucoro__switch_back", "ucoro__switch_exit", "ucoro__start_stub",
            "ucoro__enter_stack", "ucoro__crate_start_stub",
            # the safe Rust API's inlined switch (src/arch/x86_64.rs, aarch64.rs)
            "ucoro__crate_switch_in", "ucoro__crate_switch_out")
# The outermost frames a walk may end at: the end of a suspended
# coroutine's chain, and a stack's first frame in the portable modes.
END = ("ucoro__no_resumer", "ucoro__enter_stack")
LIMIT = 200000  # instructions: a runaway step loop fails instead of hanging
# This repository (the script is its tests/gdb/stepping.py): the code
# whose unwind information is checked lives under it.
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(__file__)))) + os.sep

checked = 0
in_assembly = 0
in_libc = 0
failures = []


def natural(name):
    """gdb shows the switch's local symbols (ucoro__switch, ...) as
    "ucoro.switch": the same names."""
    if name and name.startswith("ucoro."):
        return "ucoro__" + name[len("ucoro."):]
    return name


symbols = {}


def symbol_at(address):
    """The name of the symbol whose code holds address, or None."""
    if address not in symbols:
        out = gdb.execute("info symbol %#x" % address, to_string=True)
        name = None if out.startswith("No symbol") else out.split(" + ")[0].split(" in section")[0]
        symbols[address] = natural(name)
    return symbols[address]


def walk():
    """The frames from the innermost out, or a reason the walk is wrong."""
    frames = []
    frame = gdb.newest_frame()
    while frame is not None:
        name = natural(frame.name())
        frames.append((name or "??", frame.pc()))
        if name is None:
            return frames, "a frame gdb cannot name"
        if frame.pc() == 0:
            return frames, "a frame with pc 0"
        # A caller's pc is a return address, which most unwinders (libgcc,
        # libunwind) look up at pc - 1, in the call. gdb is kinder to code
        # without debug information; hold it to the same rule there.
        younger = frame.newer()
        if (younger is not None and younger.type() == gdb.NORMAL_FRAME
                and frame.function() is None and symbol_at(frame.pc() - 1) != name):
            return frames, "a return address at the start of %s (pc - 1 is in %s)" % (
                name, symbol_at(frame.pc() - 1))
        if name == "main":
            # The program's start. Rust's runtime calls the program's main
            # from this C-level one; gdb stops here for C, not for Rust.
            return frames, None
        if len(frames) > 64:
            return frames, "more than 64 frames"
        try:
            older = frame.older()
        except gdb.error as e:
            return frames, "unwinding failed: %s" % e
        if older is None:
            reason = frame.unwind_stop_reason()
            if name in END and reason == gdb.FRAME_UNWIND_OUTERMOST:
                return frames, None
            return frames, "the walk stops at %s: %s" % (name, gdb.frame_stop_reason_string(reason))
        frame = older
    return frames, "no frame"


def ours(frame, name):
    """Whether the frame runs the library's or this program's code (with
    debug information under this repository, or the assembly), not the C
    library's or Rust std's. An inlined frame counts as the function it is
    inlined into, whose unwind information covers it."""
    if name in ASSEMBLY or name in END:
        return True
    while frame.type() == gdb.INLINE_FRAME:
        frame = frame.older()
    symbol = frame.function()
    return symbol is not None and symbol.symtab is not None and in_repository(symbol.symtab.fullname())


in_repository_cache = {}


def in_repository(path):
    """Whether a source file lies under ROOT (through any symbolic link).
    A path gdb could not make absolute (glibc's "./string/...") is not."""
    if path not in in_repository_cache:
        in_repository_cache[path] = os.path.isabs(path) and os.path.realpath(path).startswith(ROOT)
    return in_repository_cache[path]


def main():
    global checked, in_assembly, in_libc
    remote = os.environ.get("UCORO_GDB_REMOTE")
    verbose = bool(os.environ.get("UCORO_STEPPING_VERBOSE"))
    gdb.execute("set pagination off")
    gdb.execute("set confirm off")
    if remote:
        gdb.execute("target remote " + remote)
    gdb.execute("break step_begin")
    gdb.execute("continue" if remote else "run", to_string=True)
    gdb.execute("delete")
    while True:
        newest = gdb.newest_frame()
        here = natural(newest.name()) or "??"
        if not ours(newest, here):
            # Stopped in the C library (a syscall wrapper, memset...):
            # its unwind information is not this test's to judge (glibc's
            # Arm syscall wrappers have none right after the svc).
            in_libc += 1
            if checked + in_libc >= LIMIT:
                break
            gdb.execute("stepi", to_string=True)
            continue
        frames, problem = walk()
        checked += 1
        if here in ASSEMBLY:
            in_assembly += 1
        if verbose:
            print("stepping.py: at %#x: %s" % (frames[0][1], " <- ".join(n for n, _ in frames)))
        if problem:
            failures.append((here, frames, problem))
            if len(failures) <= 20:
                pc = frames[0][1]
                print("stepping.py: FAILED at %#x in %s: %s" % (pc, here, problem))
                print("  " + gdb.execute("x/i $pc", to_string=True).strip())
                for name, pc in frames:
                    print("    %#x %s" % (pc, name))
        # gdb names Rust functions by their path (stepping::step_end).
        if here.split("::")[-1] == "step_end" or checked + in_libc >= LIMIT:
            break
        gdb.execute("stepi", to_string=True)


try:
    main()
except Exception as e:  # a failed command is a failure, not a pass
    failures.append(("", [], "stopped by %s: %s" % (type(e).__name__, e)))
    print("stepping.py: FAILED: stopped by %s: %s" % (type(e).__name__, e))
if checked + in_libc >= LIMIT:
    failures.append(("", [], "step_end not reached"))
    print("stepping.py: FAILED: step_end not reached in %d instructions" % LIMIT)
by_function = {}
for here, _, _ in failures:
    by_function[here] = by_function.get(here, 0) + 1
if by_function:
    print("stepping.py: failures by function: %s" % sorted(by_function.items()))
print("stepping.py: %d instructions checked (%d in the switch and stubs; %d in the C library not), "
      "%d failed" % (checked, in_assembly, in_libc, len(failures)))
try:
    gdb.execute("kill")
except gdb.error:
    pass
gdb.execute("quit %d" % (1 if failures or in_assembly == 0 else 0))
