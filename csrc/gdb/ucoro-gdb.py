# ucoro-gdb.py: see inside ucoro's coroutines from gdb, in a live process
# or a core file, without running any code in the program.
#
#   ucoro list              every live coroutine, one line each
#   ucoro bt ADDRESS [...]  the backtrace of a coroutine, without resuming it
#   ucoro gcore [FILE]      gcore, plus the coroutine stacks it cannot read
#
# Installed at PREFIX/share/ucoro/ucoro-gdb.py, and as the auto-load script
# of libucoro.so (PREFIX/share/gdb/auto-load/LIBDIR/libucoro.so.X.Y.Z-gdb.py);
# programs that link ucoro statically (C, or Rust through the crate) load it
# with `source PATH/ucoro-gdb.py`. Loading it twice is harmless.
#
# What it reads. The stack layer's registry (ucoro__stack_registry in
# csrc/stack.c, found by name in the symbol table) leads to every stack in
# use and its owner: a struct coroutine, or a struct continuation used
# directly. Their fields are the public layout of coroutine.h and
# continuation.h (csrc/include/ucoro/); a switched-out continuation's ctx is
# its saved context, laid out as the csrc/arch/ header of the architecture says
# (SAVED_CONTEXTS below). Every read goes through gdb's memory access, so a core
# file serves as well as a process.
#
# Backtraces. The library's start stubs carry CFI that leads unwinders from
# a coroutine's first frame into its resumer (csrc/arch/interface.h), so
# gdb's own `bt` already goes through running coroutines to main. The stub
# is marked a signal frame, which gdb prints as "<signal handler called>":
# the frame filter below names it instead, and hides the outermost frame
# ucoro__no_resumer that ends a chain with no resumer. `ucoro bt` shows a
# suspended coroutine by unwinding from its saved registers: a Python
# unwinder makes them the caller's registers of the selected thread's
# innermost frame, and gdb's `bt` then walks on from there (the innermost
# frame itself is left out of the output and the frames renumbered).
#
# SPDX-License-Identifier: MIT OR Apache-2.0

import re
import struct

import gdb
import gdb.unwinder
from gdb.FrameDecorator import FrameDecorator

# ---------------------------------------------------------------------------
# The program's layout
# ---------------------------------------------------------------------------

REGISTRY_SYMBOL = "ucoro__stack_registry"
REGISTRY_VERSION = 2
START_STUB = "ucoro__start_stub"
# The Rust crate's coroutines start in a stub of their own on x86_64 and
# aarch64 (csrc/arch/interface.h): the same frame, named the same way.
START_STUBS = (START_STUB, "ucoro__crate_start_stub")
NO_RESUMER = "ucoro__no_resumer"

# Magic values (csrc/ucoro_internal.h): kind ^ the struct's own address.
UCORO_MAGIC = {
    8: {
        "coroutine": 0x75636F726F2D636F,
        "continuation": 0x75636F726F2D6363,
        "leader": 0x75636F726F2D6D6E,
    },
    4: {
        "coroutine": 0x752D636F,
        "continuation": 0x752D6363,
        "leader": 0x752D6D6E,
    },
}

# Saved contexts of the assembly switches (the csrc/arch/ headers): where
# each callee-saved register lies from ctx, where the return address is
# (the resumed pc), and where the stack pointer of the resumed frame is,
# either ("at", offset) or ("above", offset): ctx + offset. cc_register is
# the register the start stub keeps its continuation in.
SAVED_CONTEXTS = {
    "x86_64": {
        "registers": [("r15", 0), ("r14", 8), ("r13", 16), ("r12", 24), ("rbx", 32), ("rbp", 40)],
        "pc": ("rip", 48),
        "sp": ("rsp", ("above", 56)),
        "cc_register": "rbx",
    },
    "aarch64": {
        "registers": [("x%d" % (19 + i), 64 + 8 * i) for i in range(12)],
        "pc": ("pc", 152),
        "sp": ("sp", ("above", 160)),
        "cc_register": "x19",
    },
    "i386": {
        "registers": [("edi", 0), ("esi", 4), ("ebx", 8), ("ebp", 12)],
        "pc": ("eip", 16),
        "sp": ("esp", ("above", 20)),
        "cc_register": "ebx",
    },
    "arm": {
        "registers": [("r%d" % (4 + i), 68 + 4 * i) for i in range(8)] + [("lr", 100)],
        "pc": ("pc", 100),
        "sp": ("sp", ("above", 104)),
        "cc_register": "r4",
    },
    "ppc64": {
        "registers": [("r2", 24)] + [("r%d" % (14 + i), 40 + 8 * i) for i in range(18)],
        "pc": ("pc", 528 + 16),
        "sp": ("r1", ("above", 528)),
        "cc_register": "r31",
    },
    "s390x": {
        "registers": [("r%d" % (6 + i), 112 + 8 * i) for i in range(9)],
        "pc": ("pswa", 176),
        "sp": ("r15", ("at", 184)),
        "cc_register": "r6",
        # gdb unwinds s390x's pc as the pseudo register "pc", which an
        # unwinder must give too.
        "aliases": ("pc",),
    },
    "riscv64": {
        "registers": [("ra", 0), ("fp", 8)] + [("s%d" % (1 + i), 16 + 8 * i) for i in range(11)],
        "pc": ("pc", 0),
        "sp": ("sp", ("above", 208)),
        "cc_register": "s1",
    },
}


def arch_name():
    """The SAVED_CONTEXTS key for the selected inferior's architecture, or None."""
    name = gdb.selected_inferior().architecture().name()
    if name.startswith("i386:x86-64"):
        return "x86_64"
    if name.startswith("aarch64"):
        return "aarch64"
    if name.startswith("i386"):
        return "i386"
    if name.startswith("arm"):
        return "arm"
    if name.startswith("powerpc:common64"):
        return "ppc64"
    if name.startswith("s390:64"):
        return "s390x"
    if name.startswith("riscv:rv64"):
        return "riscv64"
    return None


class UcoroTarget:
    """Pointer size, byte order and memory of the selected inferior."""

    def __init__(self):
        self.inferior = gdb.selected_inferior()
        self.ptr = gdb.lookup_type("void").pointer().sizeof
        endian = gdb.execute("show endian", to_string=True)
        self.order = ">" if "big endian" in endian else "<"
        self.word = {8: "Q", 4: "I"}[self.ptr]

    def read(self, address, size):
        return bytes(self.inferior.read_memory(address, size))

    def unpack(self, fmt, address):
        fmt = self.order + fmt
        return struct.unpack(fmt, self.read(address, struct.calcsize(fmt)))

    def pointer(self, address):
        return self.unpack(self.word, address)[0]

    def u32(self, address):
        return self.unpack("I", address)[0]

    def u16(self, address):
        return self.unpack("H", address)[0]

    def s32(self, address):
        return self.unpack("i", address)[0]


def struct_offsets(ptr, fields):
    """Offsets of fields [(name, size)] laid out with natural alignment."""
    offsets, at = {}, 0
    for name, size in fields:
        size = ptr if size == "ptr" else size
        at = (at + size - 1) // size * size
        offsets[name] = at
        at += size
    return offsets


def coroutine_offsets(ptr):
    """struct coroutine (coroutine.h) and its struct continuation."""
    co = struct_offsets(
        ptr,
        [
            ("stack_size", "ptr"),
            ("entry", "ptr"),
            ("release", "ptr"),
            ("exited", 4),
            ("caller", "ptr"),
            ("data", "ptr"),
            ("magic", "ptr"),
            ("cc", "ptr"),
        ],
    )
    cc = struct_offsets(
        ptr,
        [
            ("stack", "ptr"),
            ("stack_size", "ptr"),
            ("entry", "ptr"),
            ("release", "ptr"),
            ("exited", 4),
            ("started", 4),
            ("return_to", "ptr"),
            ("ctx", "ptr"),
            ("magic", "ptr"),
            ("fp_link", "ptr"),
            # the first word of the opaque ucoro_private area
            ("reserved", "ptr"),
        ],
    )
    return co, cc


def symbol_addresses(name):
    """Addresses of every data symbol called name (or name.suffix, as
    link-time optimisation renames statics), from the symbol tables."""
    found = []
    try:
        found.append(int(gdb.parse_and_eval("(unsigned long) &'%s'" % name)))
    except gdb.error:
        pass
    try:
        listing = gdb.execute("info variables -q ^%s(\\.|$)" % name, to_string=True)
    except gdb.error:
        listing = ""
    for line in listing.splitlines():
        m = re.match(r"\s*(0x[0-9a-f]+)\s+(\S+)\s*$", line)
        if m:
            found.append(int(m.group(1), 16))
    return sorted(set(found))


_symbols = {}


def symbol_at(address):
    """The symbol (function) at a code address, as `info symbol` names it
    (asked once per address: coroutines often share their entry)."""
    if not address:
        return "-"
    if address not in _symbols:
        try:
            text = gdb.execute("info symbol %#x" % address, to_string=True).strip()
        except gdb.error:
            text = ""
        m = re.match(r"(.+?)( \+ \d+)? in section ", text)
        _symbols[address] = m.group(1) if m else "%#x" % address
    return _symbols[address]


# ---------------------------------------------------------------------------
# LiveCoroutine coroutines
# ---------------------------------------------------------------------------


class LiveCoroutine:
    """A stack in use and what runs on it: a coroutine or a continuation."""

    def __init__(self, target, offsets, stack_base, stack_size, owner):
        co, cc = offsets
        magic = UCORO_MAGIC[target.ptr]
        self.address = owner
        self.stack_low = stack_base
        self.stack_high = stack_base + stack_size
        self.kind = None
        self.caller = 0
        self.exited = 0
        if target.pointer(owner + co["magic"]) == magic["coroutine"] ^ owner:
            self.kind = "coroutine"
            self.cc = owner + co["cc"]
            self.entry = target.pointer(owner + co["entry"])
            self.caller = target.pointer(owner + co["caller"])
            self.exited = target.s32(owner + co["exited"])
        elif target.pointer(owner + cc["magic"]) == magic["continuation"] ^ owner:
            self.kind = "continuation"
            self.cc = owner
            self.entry = target.pointer(owner + cc["entry"])
        else:
            self.exited = 1
            return
        self.started = target.s32(self.cc + cc["started"])
        self.exited = self.exited or target.s32(self.cc + cc["exited"])
        self.ctx = target.pointer(self.cc + cc["ctx"])
        self.return_to = target.pointer(self.cc + cc["return_to"])
        self.thread = None  # the gdb thread it runs on, if running
        self.sp = None  # its innermost stack pointer, if known

    def state(self):
        if not self.started:
            return "not started"
        return "suspended" if self.ctx else "running"


def registries(target):
    """Addresses of the stack registries (one per copy of the library)."""
    found = []
    for address in symbol_addresses(REGISTRY_SYMBOL):
        try:
            version = target.u32(address)
        except gdb.MemoryError:
            continue
        if version != REGISTRY_VERSION:
            raise gdb.GdbError(
                "ucoro: %s at %#x has layout version %d; this ucoro-gdb.py reads %d"
                % (REGISTRY_SYMBOL, address, version, REGISTRY_VERSION)
            )
        found.append(address)
    if not found:
        raise gdb.GdbError(
            "ucoro: no %s symbol: is ucoro linked in and its symbol table (or debug "
            "symbols) available?" % REGISTRY_SYMBOL
        )
    return found


def stacks_in_use(target, registry):
    """(base, size, owner) of every stack in use listed by a registry."""
    ptr = target.ptr
    head = struct_offsets(ptr, [("layout_version", 4), ("group_count", 4), ("guard_size", "ptr")])
    at = head["guard_size"] + ptr
    (records_per_slab, slab_size, slab_base, slab_records, record_size, record_base,
     record_bytes, record_owner) = target.unpack("8H", registry + at)
    groups_at = (at + 16 + ptr - 1) // ptr * ptr
    max_groups = 70  # MAX_GROUPS in csrc/stack.c
    group_slabs_at = groups_at + max_groups * ptr
    group_count = target.u32(registry + head["group_count"])
    for g in range(group_count):
        group = target.pointer(registry + groups_at + g * ptr)
        slabs = target.u32(registry + group_slabs_at + 4 * g)
        if not group:
            continue
        table = target.read(group, slabs * slab_size)
        for i in range(slabs):
            slab = table[i * slab_size:(i + 1) * slab_size]
            base = struct.unpack_from(target.order + target.word, slab, slab_base)[0]
            records = struct.unpack_from(target.order + target.word, slab, slab_records)[0]
            if not base or not records:
                continue
            block = target.read(records, records_per_slab * record_size)
            for r in range(records_per_slab):
                one = r * record_size
                owner = struct.unpack_from(target.order + target.word, block, one + record_owner)[0]
                if not owner:
                    continue
                stack = struct.unpack_from(target.order + target.word, block, one + record_base)[0]
                size = struct.unpack_from(target.order + target.word, block, one + record_bytes)[0]
                yield stack, size, owner


def thread_stack_pointers():
    """For each thread, the stack pointers of its first frames, innermost
    first (a running coroutine's stack holds the innermost of them, or
    lies just above it when the thread faulted in its guard region)."""
    result = []
    selected = gdb.selected_thread()
    try:
        frame = gdb.selected_frame()
    except gdb.error:
        frame = None
    try:
        for thread in gdb.selected_inferior().threads():
            thread.switch()
            sps = []
            f = gdb.newest_frame()
            while f is not None and len(sps) < 64:
                try:
                    sps.append(int(f.read_register("sp")))
                    f = f.older()
                except gdb.error:
                    break
            result.append((thread, sps))
    finally:
        if selected is not None:
            selected.switch()
            if frame is not None:
                try:
                    frame.select()
                except gdb.error:
                    pass
    return result


def live_coroutines():
    """Every live (started or not, not finished) coroutine and continuation,
    with the thread each running one runs on."""
    target = UcoroTarget()
    offsets = coroutine_offsets(target.ptr)
    found = []
    for registry in registries(target):
        guard = target.pointer(registry + 8)
        for stack, size, owner in stacks_in_use(target, registry):
            try:
                live = LiveCoroutine(target, offsets, stack, size, owner)
            except gdb.MemoryError:
                continue
            if live.kind is None or live.exited:
                continue
            live.guard = guard
            found.append(live)
    running = [c for c in found if c.state() == "running"]
    if running:
        for thread, sps in thread_stack_pointers():
            for sp in sps:
                owner = next(
                    (c for c in running if c.stack_low - c.guard <= sp < c.stack_high), None
                )
                if owner is not None:
                    if owner.thread is None:
                        owner.thread = thread
                        owner.sp = sp
                    break
    for c in found:
        if c.state() == "suspended":
            c.sp = c.ctx
    return target, found


def find_live(address):
    target, found = live_coroutines()
    for c in found:
        if address in (c.address, c.cc):
            return target, c, found
    raise gdb.GdbError("ucoro: %#x is not a live coroutine (see `ucoro list`)" % address)


def describe_caller(target, c, by_address):
    if c.kind != "coroutine" or not c.caller:
        return "-"
    if c.caller in by_address:
        return "%#x" % c.caller
    co, _ = coroutine_offsets(target.ptr)
    try:
        magic = target.pointer(c.caller + co["magic"])
    except gdb.MemoryError:
        magic = 0
    if magic == UCORO_MAGIC[target.ptr]["leader"] ^ c.caller:
        # A thread's main coroutine: name the thread whose chain it tops.
        chain, seen = c, set()
        while chain is not None and chain.address not in seen:
            seen.add(chain.address)
            if chain.thread is not None:
                return "%#x (main of thread %d)" % (c.caller, chain.thread.num)
            chain = next((x for x in by_address.values() if x.caller == chain.address), None)
        return "%#x (main)" % c.caller
    return "%#x" % c.caller


def human_bytes(n):
    if n < 1024:
        return "%d B" % n
    for unit in ("KiB", "MiB", "GiB"):
        n /= 1024.0
        if n < 1024 or unit == "GiB":
            return "%.1f %s" % (n, unit)


# ---------------------------------------------------------------------------
# Backtraces
# ---------------------------------------------------------------------------


class _FrameId:
    def __init__(self, sp, pc):
        self.sp = sp
        self.pc = pc


class SavedContextUnwinder(gdb.unwinder.Unwinder):
    """While `ucoro bt` runs: the innermost frame's caller is the saved
    context of the coroutine asked for."""

    def __init__(self):
        super().__init__("ucoro saved context")
        self.registers = None  # {name: value} while active

    def __call__(self, pending_frame):
        if self.registers is None or pending_frame.level() != 0:
            return None
        # The pc under its raw name: "pc" is a pseudo register on some
        # architectures (s390x), which a pending frame cannot read.
        pc = pending_frame.read_register(SAVED_CONTEXTS[arch_name()]["pc"][0])
        # A stack address below any other, so that gdb's check that each
        # frame lies above the one before holds for the coroutine's frames.
        info = pending_frame.create_unwind_info(_FrameId(gdb.Value(0).cast(pc.type), pc))
        for name, value in self.registers.items():
            reg_type = pending_frame.read_register(name).type
            info.add_saved_register(name, gdb.Value(value).cast(reg_type))
        return info


SAVED_CONTEXT = SavedContextUnwinder()


def saved_registers(target, c):
    """The registers of c's saved context, by gdb name."""
    arch = SAVED_CONTEXTS.get(arch_name())
    if arch is None:
        raise gdb.GdbError(
            "ucoro bt: saved contexts of %s are not known here" % gdb.selected_inferior().architecture().name()
        )
    ctx = c.ctx
    regs = {name: target.pointer(ctx + off) for name, off in arch["registers"]}
    pc_name, pc_off = arch["pc"]
    regs[pc_name] = target.pointer(ctx + pc_off)
    if arch_name() == "arm":
        # A return address with bit 0 set is in Thumb code: gdb wants the
        # address without it and the state in the CPSR's T bit.
        thumb = regs[pc_name] & 1
        regs[pc_name] &= ~1
        cpsr = int(gdb.newest_frame().read_register("cpsr"))
        regs["cpsr"] = (cpsr & ~0x20) | (0x20 if thumb else 0)
    sp_name, (how, off) = arch["sp"]
    regs[sp_name] = ctx + off if how == "above" else target.pointer(ctx + off)
    for alias in arch.get("aliases", ()):
        regs[alias] = regs[pc_name]
    return regs


def switch_is_assembly():
    return bool(symbol_addresses(START_STUB)) or _has_function(START_STUB)


def _has_function(name):
    try:
        gdb.parse_and_eval("(unsigned long) &'%s'" % name)
        return True
    except gdb.error:
        return False


class _Bt:
    skip_innermost = False


def frame_function(frame):
    """The name of a frame's function, with the library's internal
    functions spelled as in the source: without debug information gdb
    reads a symbol with "__" in its name as an Ada name, "ucoro.cc_entry"
    for ucoro__cc_entry."""
    try:
        name = frame.name()
    except gdb.error:
        name = None
    if name is None:
        name = symbol_at(frame.pc())
    if name.startswith("ucoro."):
        name = "ucoro__" + name[len("ucoro."):]
    return name


def coroutine_of_stub(frame):
    """The struct coroutine (or continuation) whose first frame is the
    stub frame given, from the register the stub keeps it in."""
    arch = SAVED_CONTEXTS.get(arch_name())
    if arch is None:
        return None
    try:
        cc = int(frame.read_register(arch["cc_register"]))
        target = UcoroTarget()
        co, _ = coroutine_offsets(target.ptr)
        owner = cc - co["cc"]
        if target.pointer(owner + co["magic"]) == UCORO_MAGIC[target.ptr]["coroutine"] ^ owner:
            return "coroutine %#x" % owner
        return "continuation %#x" % cc
    except (gdb.error, gdb.MemoryError):
        return None


class StubDecorator(FrameDecorator):
    """A start stub's frame: named, with the coroutine it begins, instead
    of gdb's "<signal handler called>"."""

    def __init__(self, fobj, name):
        super().__init__(fobj)
        self._frame = fobj
        self._name = name

    def function(self):
        owner = coroutine_of_stub(self._frame.inferior_frame())
        if owner is None:
            return self._name
        return "%s [first frame of %s]" % (self._name, owner)


class RenamedDecorator(FrameDecorator):
    """A frame of one of the library's internal functions, under its name."""

    def __init__(self, fobj, name):
        super().__init__(fobj)
        self._name = name

    def function(self):
        return self._name


class CoroutineFrameFilter:
    """Names start stub frames (and the library's other internal ones as
    in its source), hides the ucoro__no_resumer frame that ends a chain,
    and during `ucoro bt` the selected thread's innermost frame."""

    def __init__(self):
        self.name = "ucoro"
        self.priority = 100
        self.enabled = True

    def filter(self, frames):
        return self._filter(frames)

    def _filter(self, frames):
        first = True
        for fobj in frames:
            if first and _Bt.skip_innermost:
                first = False
                continue
            first = False
            frame = fobj.inferior_frame()
            name = frame_function(frame)
            if name == NO_RESUMER:
                continue
            if name in START_STUBS:
                yield StubDecorator(fobj, name)
            elif name.startswith("ucoro__") and frame.name() != name:
                yield RenamedDecorator(fobj, name)
            else:
                yield fobj


def run_bt(arguments):
    """gdb's `bt` with the innermost frame left out, renumbered from 0."""
    out = gdb.execute("backtrace " + arguments, to_string=True)

    def renumber(m):
        level = str(int(m.group(1)) - 1)
        return "#" + level + m.group(2) + " " * (len(m.group(1)) - len(level))

    return re.sub(r"^#(\d+)( +)", renumber, out, flags=re.M)


# ---------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------


class UcoroPrefix(gdb.Command):
    """Inspect ucoro coroutines: ucoro list, ucoro bt ADDRESS, ucoro gcore [FILE]."""

    def __init__(self):
        super().__init__("ucoro", gdb.COMMAND_STACK, gdb.COMPLETE_NONE, True)


class UcoroList(gdb.Command):
    """List every live ucoro coroutine, one line each:
ADDRESS STATE ENTRY 0xLOW-0xHIGH used N caller CALLER [thread N]

ADDRESS is the struct coroutine (or the struct continuation of one used
directly), STATE running, suspended or not started, ENTRY the entry
function, 0xLOW-0xHIGH the stack, used how deep it is in use now (from
its top to the saved or current stack pointer), CALLER the coroutine that
resumed it and waits for it (main of thread N: that thread's main
context), "-" if none. Finished and released coroutines are not listed."""

    def __init__(self):
        super().__init__("ucoro list", gdb.COMMAND_STACK, gdb.COMPLETE_NONE)

    def invoke(self, argument, from_tty):
        target, found = live_coroutines()
        if not found:
            print("no live coroutines")
            return
        by_address = {c.address: c for c in found}
        rows = []
        for c in sorted(found, key=lambda c: c.address):
            used = c.stack_high - c.sp if c.sp and c.stack_low <= c.sp <= c.stack_high else 0
            tail = "caller " + describe_caller(target, c, by_address)
            if c.kind == "continuation":
                tail += "  (continuation)"
            if c.thread is not None:
                tail += "  thread %d" % c.thread.num
            rows.append(
                (
                    "%#x" % c.address,
                    c.state(),
                    symbol_at(c.entry),
                    "%#x-%#x" % (c.stack_low, c.stack_high),
                    "used " + human_bytes(used),
                    tail,
                )
            )
        widths = [max(len(row[i]) for row in rows) for i in range(5)]
        for row in rows:
            print("  ".join(cell.ljust(w) for cell, w in zip(row[:5], widths)) + "  " + row[5])


class UcoroBt(gdb.Command):
    """Backtrace of a ucoro coroutine without resuming it: ucoro bt ADDRESS [BT-OPTIONS]

ADDRESS is a struct coroutine (or struct continuation), as `ucoro list`
shows it; BT-OPTIONS go to gdb's backtrace command (full, -full, N...).
A suspended coroutine's backtrace begins where it suspended and ends at
its first frame, or, if it waits in coroutine_yieldto for a coroutine it
resumed, goes on into its own caller. A running one's is its thread's
backtrace. Needs the assembly switch (the default build): the portable
modes keep registers in a form only the C library reads."""

    def __init__(self):
        super().__init__("ucoro bt", gdb.COMMAND_STACK, gdb.COMPLETE_EXPRESSION)

    def invoke(self, argument, from_tty):
        words = gdb.string_to_argv(argument)
        if not words:
            raise gdb.GdbError("usage: ucoro bt ADDRESS [BT-OPTIONS]")
        address = int(gdb.parse_and_eval(words[0]))
        rest = " ".join(words[1:])
        target, c, _ = find_live(address)
        if c.state() == "not started":
            print("coroutine %#x has not started: it has no frames yet" % c.address)
            return
        if c.state() == "running":
            if c.thread is None:
                raise gdb.GdbError("ucoro bt: %#x is running, on no thread gdb sees" % c.address)
            selected = gdb.selected_thread()
            try:
                c.thread.switch()
                print("coroutine %#x runs on thread %d:" % (c.address, c.thread.num))
                gdb.execute("backtrace " + rest)
            finally:
                selected.switch()
            return
        if not switch_is_assembly():
            raise gdb.GdbError(
                "ucoro bt: this build of ucoro switches with _setjmp or swapcontext, whose "
                "saved registers ucoro-gdb.py cannot read; build with the default (assembly) switch"
            )
        if gdb.selected_thread() is None:
            raise gdb.GdbError("ucoro bt: no thread selected")
        SAVED_CONTEXT.registers = saved_registers(target, c)
        _Bt.skip_innermost = True
        gdb.invalidate_cached_frames()
        try:
            out = run_bt(rest)
        finally:
            SAVED_CONTEXT.registers = None
            _Bt.skip_innermost = False
            gdb.invalidate_cached_frames()
        gdb.write(out)


class UcoroGcore(gdb.Command):
    """Write a core file of the process, with every coroutine stack in it: ucoro gcore [FILE]

gdb's gcore writes nothing of a memory mapping after the first piece it
cannot read, and the guard regions between ucoro's stacks (made with
MADV_GUARD_INSTALL) lie inside the mappings that hold the stacks. This
runs gcore, then reads the part of each live coroutine's stack in use
(from below its stack pointer to its top) and writes it into the core."""

    def __init__(self):
        super().__init__("ucoro gcore", gdb.COMMAND_FILES, gdb.COMPLETE_FILENAME)

    def invoke(self, argument, from_tty):
        words = gdb.string_to_argv(argument)
        path = words[0] if words else "core.%d" % gdb.selected_inferior().pid
        target, found = live_coroutines()
        ranges = []
        for c in found:
            low = c.sp if c.sp and c.stack_low <= c.sp <= c.stack_high else c.stack_high - 8192
            low = max(c.stack_low, (low - 4096) & ~4095)
            ranges.append((low, c.stack_high))
        gdb.execute("gcore " + path)
        filled, missing = fill_core(path, target, ranges)
        print(
            "ucoro gcore: %d coroutine stack%s (%s) written into %s"
            % (len(ranges) - missing, "" if len(ranges) - missing == 1 else "s", human_bytes(filled), path)
        )
        if missing:
            print("ucoro gcore: %d stack%s had no place in the core" % (missing, "" if missing == 1 else "s"))


def core_segments(f):
    """(vaddr, filesz, offset) of the PT_LOAD segments of an ELF core."""
    ident = f.read(16)
    if ident[:4] != b"\x7fELF":
        raise gdb.GdbError("ucoro gcore: the core file is not ELF")
    wide = ident[4] == 2
    order = "<" if ident[5] == 1 else ">"
    if wide:
        f.seek(0x20)
        phoff, = struct.unpack(order + "Q", f.read(8))
        f.seek(0x28)
        shoff, = struct.unpack(order + "Q", f.read(8))
        f.seek(0x36)
        phentsize, phnum = struct.unpack(order + "HH", f.read(4))
    else:
        f.seek(0x1C)
        phoff, shoff = struct.unpack(order + "II", f.read(8))
        f.seek(0x2A)
        phentsize, phnum = struct.unpack(order + "HH", f.read(4))
    if phnum == 0xFFFF:  # PN_XNUM: the count is in section header 0
        f.seek(shoff + (0x2C if wide else 0x1C))
        phnum, = struct.unpack(order + "I", f.read(4))
    segments = []
    for i in range(phnum):
        f.seek(phoff + i * phentsize)
        if wide:
            p_type, _, offset, vaddr, _, filesz = struct.unpack(order + "IIQQQQ", f.read(40))
        else:
            p_type, offset, vaddr, _, filesz = struct.unpack(order + "IIIII", f.read(20))
        if p_type == 1 and filesz:
            segments.append((vaddr, filesz, offset))
    return segments


def fill_core(path, target, ranges):
    """Writes the memory of ranges into the core at path. Returns (bytes
    written, ranges that no segment of the core holds)."""
    filled = missing = 0
    with open(path, "r+b") as f:
        segments = core_segments(f)
        for low, high in ranges:
            segment = next((s for s in segments if s[0] <= low and high <= s[0] + s[1]), None)
            if segment is None:
                missing += 1
                continue
            vaddr, _, offset = segment
            at = low
            while at < high:
                size = min(high - at, 1 << 20)
                try:
                    data = target.read(at, size)
                except gdb.MemoryError:
                    data = None
                if data is None:
                    # Page by page: keep what can be read.
                    for page in range(at, at + size, 4096):
                        try:
                            chunk = target.read(page, min(4096, at + size - page))
                        except gdb.MemoryError:
                            continue
                        f.seek(offset + page - vaddr)
                        f.write(chunk)
                        filled += len(chunk)
                else:
                    f.seek(offset + at - vaddr)
                    f.write(data)
                    filled += len(data)
                at += size
    return filled, missing


def register_ucoro_commands():
    """Registers the commands, the frame filter and the unwinder, once per
    gdb session however often this file is loaded."""
    if getattr(gdb, "_ucoro_registered", False):
        return
    gdb._ucoro_registered = True
    UcoroPrefix()
    UcoroList()
    UcoroBt()
    UcoroGcore()
    gdb.frame_filters["ucoro"] = CoroutineFrameFilter()
    gdb.unwinder.register_unwinder(None, SAVED_CONTEXT, replace=True)


register_ucoro_commands()
