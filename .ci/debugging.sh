#!/usr/bin/env bash
# Seeing inside coroutines (issue 14): gdb in batch mode, with
# csrc/gdb/ucoro-gdb.py, on tests/gdb/coroutines.c (nested and suspended
# coroutines on two threads, structs on the heap, on the stack, in a
# global and from ucoro_create), checked by tests/gdb/check.py:
#
# - x86_64: live, on a core file written by `ucoro gcore`, on the kernel's
#   core dump of the same program (where the sandbox lets the kernel write
#   one: core_pattern must name a file), in the _setjmp and ucontext modes
#   (backtraces end at a coroutine's first frame), and against an
#   installed shared libucoro whose extension gdb auto-loads;
# - under qemu-user's gdb stub with gdb-multiarch: aarch64 live and on the
#   core file qemu writes for it, and i686, armhf, ppc64el, s390x and
#   riscv64 live;
# - libunwind walks through nested coroutines (csrc/tests/libunwind_walk.c);
# - frame-pointer walks do too, where the switch links them (x86_64,
#   aarch64: csrc/tests/fp_walk.c), and so do perf --call-graph fp's samples;
# - an exception thrown in a coroutine still stops at its first frame
#   (csrc/tests/exception_stops.cpp): backtraces go on, exceptions do not;
# - unwind information is right at every instruction (issue 17):
#   tests/gdb/stepping.py single-steps a round trip (tests/gdb/stepping.c)
#   and walks the stack at each instruction, natively in every switch mode
#   and under qemu-user's gdb stub on the six other architectures; and the
#   same for the safe Rust API's inlined switch (tests/gdb/stepping.rs,
#   the example "stepping"), natively on x86_64 and on aarch64 under
#   qemu-user.
#
# glibc's backtrace() and _Unwind_Backtrace are checked by
# csrc/tests/arch_switch.c and, from a signal handler at any instruction, by
# csrc/tests/signal_unwind.c (.ci/c-tools.sh, .ci/cross.sh), Rust's Backtrace
# and panics by tests/backtraces.rs (cargo test).
#
# Needs gdb, gdb-multiarch, libunwind-dev, g++, qemu-user, the cross
# compilers and rustup (.ci/run installs them). Used by .ci/run; runnable
# alone.
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=lib.sh
. .ci/lib.sh
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

extension=$PWD/csrc/gdb/ucoro-gdb.py

# gdb_run SCRIPT LABEL GDB [gdb arguments...]: runs tests/gdb/SCRIPT in
# batch mode; passes if its summary line ("SCRIPT: N ..., 0 failed") says
# that nothing failed.
gdb_run() {
    local script=$1 label=$2 gdb=$3 log
    shift 3
    log=$work/$script-$(echo "$label" | tr -c 'a-zA-Z0-9\n' '-').log
    if ! timeout 600 "$gdb" -q -batch -nx "$@" -x "tests/gdb/$script" >"$log" 2>&1 ||
        ! grep -Eq "^$script: [0-9]+ .*[^0-9]0 failed\$" "$log"; then
        grep -E -A 12 "^$script: FAILED" "$log" | head -n 200
        tail -n 40 "$log"
        fail "gdb: $label"
    fi
    echo "ok: gdb: $label ($(grep "^$script: [0-9]" "$log" | tail -n 1 | sed "s/^$script: //"))"
}

# gdb_check LABEL GDB [gdb arguments...]: runs check.py, with the
# extension sourced unless UCORO_AUTOLOAD is set.
gdb_check() {
    local label=$1 gdb=$2
    shift 2
    local load=(-iex "source $extension")
    [ -z "${UCORO_AUTOLOAD:-}" ] || load=()
    gdb_run check.py "$label" "$gdb" "${load[@]}" "$@"
}

# stepping_check LABEL GDB [gdb arguments...]: runs stepping.py, without
# the extension (gdb's own unwinder reads the CFI).
stepping_check() {
    local label=$1 gdb=$2
    shift 2
    gdb_run stepping.py "stepping, $label" "$gdb" "$@"
}

# build NAME COMPILER OUTPUT [flags...]: tests/gdb/NAME.c with csrc,
# static where it runs under qemu.
build() {
    local name=$1 compiler=$2 out=$3
    shift 3
    # shellcheck disable=SC2046
    "$compiler" -std=c11 -g -O2 -funwind-tables -Wall -Wextra -Werror -Icsrc/include/ucoro "$@" \
        "tests/gdb/$name.c" $(ucoro_sources) -lpthread -o "$out"
}

echo "== x86_64: live, ucoro gcore, the kernel's core dump"
build coroutines gcc "$work/coroutines"
UCORO_GDB_GCORE=$work/gcore.core gdb_check "x86_64 live" gdb "$work/coroutines"
gdb_check "x86_64 core from ucoro gcore" gdb "$work/coroutines" "$work/gcore.core"

pattern=$(cat /proc/sys/kernel/core_pattern)
mkdir "$work/kernel"
(cd "$work/kernel" && ulimit -c unlimited && { UCORO_ABORT_AT_STOP=1 ../coroutines || true; }) >/dev/null 2>&1
core=$(find "$work/kernel" -name 'core*' -type f -print -quit)
if [ -n "$core" ]; then
    gdb_check "x86_64 kernel core dump" gdb "$work/coroutines" "$core"
else
    echo "skipped: the kernel wrote no core file here (core_pattern: $pattern)"
fi

echo "== x86_64: the portable modes"
for mode in setjmp ucontext; do
    build coroutines gcc "$work/coroutines-$mode" "$(ucoro_mode_flag "$mode")"
    UCORO_GDB_SWITCH=portable gdb_check "x86_64 $mode mode, live" gdb "$work/coroutines-$mode"
done

echo "== x86_64: an installed shared libucoro, its extension auto-loaded"
ucoro_make_install csrc "$work/build" "$work/prefix"
prefix=$work/prefix
cmp "$extension" "$prefix/share/ucoro/ucoro-gdb.py" || fail "installed ucoro-gdb.py differs"
real=$(cd "$prefix/lib" && ls libucoro.so.*.*.*)
cmp "$extension" "$prefix/share/gdb/auto-load$prefix/lib/$real-gdb.py" ||
    fail "no auto-load script for $real"
pc="env PKG_CONFIG_PATH=$prefix/lib/pkgconfig pkg-config"
# shellcheck disable=SC2046
cc -std=c11 -g -O2 -Wall -Wextra -Werror $($pc --cflags ucoro) tests/gdb/coroutines.c \
    -o "$work/coroutines-shared" $($pc --libs ucoro) -pthread
LD_LIBRARY_PATH=$prefix/lib UCORO_AUTOLOAD=1 gdb_check "x86_64 shared library, auto-loaded" gdb \
    -iex "set auto-load scripts-directory $prefix/share/gdb/auto-load" \
    -iex "set auto-load safe-path $prefix" "$work/coroutines-shared"

echo "== libunwind"
for mode in default setjmp ucontext; do
    # shellcheck disable=SC2046
    gcc -std=c11 -g -O2 -Wall -Wextra -Werror $(ucoro_mode_flag "$mode") -Icsrc/include/ucoro -Icsrc/tests \
        csrc/tests/libunwind_walk.c $(ucoro_sources) -lunwind -lpthread -o "$work/libunwind-$mode"
    out=$("$work/libunwind-$mode" 2>&1) || { echo "$out"; fail "libunwind_walk, $mode mode"; }
    echo "ok: libunwind_walk, $mode mode ($(echo "$out" | tail -n 1))"
done

echo "== frame-pointer walks (csrc/tests/fp_walk.c) and perf --call-graph fp"
# fp_walk_build COMPILER OUTPUT [flags...]: with frame pointers, names
# exported for dladdr.
fp_walk_build() {
    local compiler=$1 out=$2
    shift 2
    # shellcheck disable=SC2046
    "$compiler" -std=c11 -g -O2 -Wall -Wextra -Werror -fno-omit-frame-pointer -rdynamic "$@" \
        -Icsrc/include/ucoro -Icsrc/tests csrc/tests/fp_walk.c $(ucoro_sources) -lpthread -ldl -o "$out"
}
for mode in default setjmp ucontext; do
    fp_walk_build gcc "$work/fp_walk-$mode" -mno-omit-leaf-frame-pointer \
        $(ucoro_mode_flag "$mode")
    out=$("$work/fp_walk-$mode" 2>&1) || { echo "$out"; fail "fp_walk, x86_64 $mode mode"; }
    echo "ok: fp_walk, x86_64 $mode mode ($(echo "$out" | tail -n 1))"
done
fp_walk_build aarch64-linux-gnu-gcc "$work/fp_walk-aarch64"
out=$(qemu-aarch64 -L /usr/aarch64-linux-gnu "$work/fp_walk-aarch64" 2>&1) ||
    { echo "$out"; fail "fp_walk, aarch64 under qemu-user"; }
echo "ok: fp_walk, aarch64 under qemu-user ($(echo "$out" | tail -n 1))"
# A real profiler: every sample taken in busy_here has a call chain that
# goes through the coroutines into its resumers, to main or to the thread
# that finished it. Where perf cannot sample here (no perf, or
# perf_event_paranoid too strict), say so.
if perf record -q -e cpu-clock -F 1000 --call-graph fp -o "$work/probe.data" true >/dev/null 2>&1; then
    perf record -q -e cpu-clock -F 2000 --call-graph fp -o "$work/fp.data" \
        "$work/fp_walk-default" --spin >/dev/null 2>&1 || fail "perf record of fp_walk --spin"
    counts=$(perf script -i "$work/fp.data" -F ip,sym 2>/dev/null | awk 'BEGIN { RS = "" }
        /busy_here/ { n++; if ((/resume_inner/ && /outer_body/ && /main/) ||
                               (/finish_inner_here/ && /finish_on_a_thread/)) linked++ }
        END { print n + 0, linked + 0 }')
    read -r samples linked <<<"$counts"
    [ "$samples" -ge 100 ] || fail "perf: only $samples samples in busy_here"
    [ "$linked" -eq "$samples" ] ||
        fail "perf --call-graph fp: $linked of $samples samples reach the resumer"
    echo "ok: perf --call-graph fp: $linked of $samples samples in a nested coroutine reach its resumers"
else
    echo "skipped: perf cannot sample here ($(command -v perf || echo 'no perf'))"
fi

echo "== an exception thrown in a coroutine stops at its first frame"
for mode in default setjmp ucontext; do
    objects=()
    for src in $(ucoro_sources); do
        obj=$work/exception-$mode-$(basename "$src" .c).o
        # shellcheck disable=SC2046
        gcc -std=c11 -O2 -Wall -Wextra -Werror $(ucoro_mode_flag "$mode") -Icsrc/include/ucoro -c "$src" -o "$obj"
        objects+=("$obj")
    done
    g++ -std=c++11 -O2 -Wall -Wextra -Werror -Icsrc/include/ucoro csrc/tests/exception_stops.cpp "${objects[@]}" \
        -lpthread -o "$work/exception_stops-$mode"
    status=0
    out=$("$work/exception_stops-$mode" 2>&1) || status=$?
    if [ "$status" -ne 134 ] || ! grep -q 'terminate called' <<<"$out"; then
        echo "$out"
        fail "exception_stops, $mode mode: exit status $status, not std::terminate's abort"
    fi
    echo "ok: exception_stops, $mode mode (std::terminate)"
done

# Whether a local TCP port is in use (listening or connected), from
# /proc/net/tcp: looking does not connect (qemu's stub would take the
# first connection as its debugger).
port_in_use() {
    grep -q "$(printf ':%04X ' "$1")" /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

# A TCP port nothing uses, for a gdb stub.
free_port() {
    local port
    while :; do
        port=$(shuf -i 20000-60000 -n 1)
        port_in_use "$port" || { echo "$port"; return; }
    done
}

# Waits until something listens on the port.
wait_listening() {
    local i
    for i in $(seq 50); do
        port_in_use "$1" && return 0
        sleep 0.1
    done
    return 1
}

# qemu_gdb CHECK LABEL QEMU PROGRAM: CHECK (gdb_check, stepping_check) on
# PROGRAM under QEMU's gdb stub.
qemu_gdb() {
    local check=$1 label=$2 qemu=$3 program=$4 port
    port=$(free_port)
    "$qemu" -g "$port" "$program" >"$program.qemu.log" 2>&1 &
    wait_listening "$port" || fail "$qemu -g $port did not start"
    UCORO_GDB_REMOTE=127.0.0.1:$port "$check" "$label" gdb-multiarch "$program"
    wait
}

# under_qemu NAME COMPILER QEMU: the live check and the stepping check
# through qemu's gdb stub.
under_qemu() {
    local name=$1 compiler=$2 qemu=$3
    build coroutines "$compiler" "$work/coroutines-$name" -static
    qemu_gdb gdb_check "$name under qemu-user, live" "$qemu" "$work/coroutines-$name"
    build stepping "$compiler" "$work/stepping-$name" -static
    qemu_gdb stepping_check "$name under qemu-user" "$qemu" "$work/stepping-$name"
}

echo "== unwind information at every instruction: x86_64, every switch mode"
for mode in default setjmp ucontext; do
    # -z now: no lazy binding, whose PLT header has no symbol to name.
    build stepping gcc "$work/stepping-$mode" -Wl,-z,now $(ucoro_mode_flag "$mode")
    stepping_check "x86_64 $mode mode" gdb "$work/stepping-$mode"
done

echo "== other architectures, under qemu-user's gdb stub"
under_qemu aarch64 aarch64-linux-gnu-gcc qemu-aarch64
# qemu-user writes the guest's core file itself when it dies of a signal.
mkdir "$work/qemu-core"
(cd "$work/qemu-core" && ulimit -c unlimited &&
    { UCORO_ABORT_AT_STOP=1 qemu-aarch64 ../coroutines-aarch64 || true; }) >/dev/null 2>&1
core=$(find "$work/qemu-core" -name 'qemu_*.core' -type f -print -quit)
[ -n "$core" ] || fail "qemu-aarch64 wrote no core file"
gdb_check "aarch64 core file (written by qemu-user)" gdb-multiarch "$work/coroutines-aarch64" "$core"
under_qemu i686 i686-linux-gnu-gcc qemu-i386
under_qemu armhf arm-linux-gnueabihf-gcc qemu-arm
under_qemu ppc64el powerpc64le-linux-gnu-gcc qemu-ppc64le
under_qemu s390x s390x-linux-gnu-gcc qemu-s390x
under_qemu riscv64 riscv64-linux-gnu-gcc qemu-riscv64

echo "== unwind information at every instruction: the safe Rust API's inlined switch"
# The debug build (the default), whose frames all have debug information.
cargo build --quiet --example stepping
stepping_check "Rust, x86_64" gdb "${CARGO_TARGET_DIR:-target}/debug/examples/stepping"
# aarch64: cross-built as .ci/cross-rust.sh does, but static for qemu's gdb
# stub, in a target directory of its own (other flags: sharing one would
# rebuild the other's each time).
rustup target add aarch64-unknown-linux-gnu >/dev/null
static=${CARGO_TARGET_DIR:-target}/stepping-static
env CARGO_TARGET_DIR="$static" \
    CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc \
    CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUSTFLAGS="-C target-feature=+crt-static" \
    CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc AR_aarch64_unknown_linux_gnu=aarch64-linux-gnu-ar \
    cargo build --quiet --target aarch64-unknown-linux-gnu --example stepping
qemu_gdb stepping_check "Rust, aarch64 under qemu-user" qemu-aarch64 \
    "$static/aarch64-unknown-linux-gnu/debug/examples/stepping"
