#!/usr/bin/env bash
# Cross-builds the C test suite for every architecture the distributions
# ship, in every switch mode that applies, and runs it under qemu-user
# (x86_64, glibc and musl-gcc, runs natively). Programs are linked statically, so
# qemu needs no sysroot. Two jobs at a time (the CI machine has 2 cores).
#
#   .ci/cross.sh                 every target
#   .ci/cross.sh i686 s390x      only those (names from the table below)
#
# Needs the cross compilers, their libc6-dev-*-cross, musl-tools and
# qemu-user (.ci/run installs them). Used by .ci/run; runnable alone.
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=lib.sh
. .ci/lib.sh

# name  compiler  runner (- : natively)  modes
targets='
x86_64      gcc                         -               default,setjmp,ucontext
x86_64-musl musl-gcc                    -               default,setjmp
i686        i686-linux-gnu-gcc          qemu-i386       default,setjmp,ucontext
armhf       arm-linux-gnueabihf-gcc     qemu-arm        default,setjmp,ucontext
armel       arm-linux-gnueabi-gcc       qemu-arm        default,setjmp,ucontext
aarch64     aarch64-linux-gnu-gcc       qemu-aarch64    default,setjmp,ucontext
ppc64el     powerpc64le-linux-gnu-gcc   qemu-ppc64le    default,setjmp,ucontext
s390x       s390x-linux-gnu-gcc         qemu-s390x      default,setjmp,ucontext
riscv64     riscv64-linux-gnu-gcc       qemu-riscv64    default,setjmp,ucontext
mips64el    mips64el-linux-gnuabi64-gcc qemu-mips64el   default,setjmp,ucontext
'
programs=${UCORO_CROSS_PROGRAMS:-"csrc/tests/spec_api.c csrc/tests/tls_migration.c csrc/tests/arch_switch.c csrc/tests/signal_unwind.c"}
# Also on the targets that run natively (musl above all): fork() of a
# multi-threaded process is left out under qemu-user, whose own fork of its
# threads is what hung there before (see tests/common).
native_programs=${UCORO_CROSS_NATIVE_PROGRAMS:-"csrc/tests/fork_safety.c"}
# The frozen ABI (sizes and offsets of both structs, csrc/abi/layout.h) as
# each target's compiler lays out the headers: once per target, since the
# switch mode changes no layout.
layout_programs=${UCORO_CROSS_LAYOUT_PROGRAMS:-"csrc/tests/abi_layout.c"}

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# One job: build one program for one target and mode, run it, keep the log.
# Prints one line; the exit status says whether it passed.
run_job() { # name compiler runner mode program
    local name=$1 compiler=$2 runner=$3 mode=$4 prog=$5
    local job bin def srcs
    job="$name-$mode-$(basename "$prog" .c)"
    bin="$out/$job"
    def=$(ucoro_mode_flag "$mode")
    srcs=$(ucoro_sources)
    # The Arm linker merges the EHABI entries of neighbouring functions
    # that unwind alike, which would make arch_switch.c's backtrace test
    # take one function for another.
    case $name in arm*) def="$def -Wl,--no-merge-exidx-entries" ;; esac
    # shellcheck disable=SC2086
    if ! "$compiler" -std=c11 -O2 -g -funwind-tables -Wall -Wextra -Werror $def -Icsrc/include/ucoro -Icsrc/tests \
            "$prog" $srcs -static -lpthread -o "$bin" >"$bin.log" 2>&1; then
        echo "FAILED to build: $job"; tail -n 30 "$bin.log"; return 1
    fi
    if [ "$runner" = - ]; then set -- "$bin"; else set -- "$runner" "$bin"; fi
    if ! "$@" >"$bin.log" 2>&1; then
        echo "FAILED: $job"; tail -n 30 "$bin.log"; return 1
    fi
    echo "ok: $job ($(tail -n 1 "$bin.log"))"
}
export -f run_job ucoro_sources ucoro_mode_flag
export out

jobs=()
while read -r name compiler runner modes; do
    [ -n "$name" ] || continue
    if [ $# -gt 0 ] && ! printf '%s\n' "$@" | grep -x "$name" >/dev/null; then
        continue
    fi
    for mode in ${modes//,/ }; do
        for prog in $programs $([ "$runner" = - ] && echo "$native_programs") \
                    $([ "$mode" = default ] && echo "$layout_programs"); do
            jobs+=("$name $compiler $runner $mode $prog")
        done
    done
done <<<"$targets"
[ ${#jobs[@]} -gt 0 ] || { echo "no target matches: $*" >&2; exit 1; }

# Every job runs even if one fails, so that one run shows all failures.
status=0
printf '%s\n' "${jobs[@]}" |
    xargs -P 2 -L 1 bash -c 'run_job "$@"' _ >"$out/summary" 2>&1 || status=1
cat "$out/summary"
passed=$(grep -c '^ok: ' "$out/summary" || true)
failed=$(( ${#jobs[@]} - passed ))
echo "cross: $passed passed, $failed failed"
[ "$status" -eq 0 ] && [ "$failed" -eq 0 ]
