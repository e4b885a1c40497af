#!/usr/bin/env bash
# The stack layer's own checks (issue 11: stacks within the system's
# limits). Used by .ci/run; runnable alone.
#
# - The stack layer's size-dependent constants (slab caps, the pool's bytes,
#   size classes) compile cleanly for 32-bit targets.
# - Memory tools see the stacks in use, not whole slabs: under Valgrind and
#   AddressSanitizer a clean program is clean, and reading a finished
#   coroutine's stack (or, for Memcheck, a stack never handed out) is
#   reported (csrc/tests/stack_tools.c). What the tools knew of a stack goes
#   with its memory: the program's own mapping where a slab was unmapped is
#   not reported, and coroutines released while suspended leave no
#   AddressSanitizer fake stack behind.
# - The limit, size-class and give-back tests (tests/stack_limits.rs),
#   optimised, so that the 200,000-coroutine burst is quick.
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=lib.sh
. .ci/lib.sh
srcs=$(ucoro_sources)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# fail (from lib.sh) after showing the end of a log.
fail_with_log() { tail -n 30 "$2" >&2; fail "$1"; }

for cc in i686-linux-gnu-gcc arm-linux-gnueabihf-gcc; do
    "$cc" -std=c11 -Wall -Wextra -Werror -O2 -Icsrc/include/ucoro -c csrc/stack.c -o "$out/stack-$cc.o" ||
        fail "csrc/stack.c for $cc"
    echo "ok: csrc/stack.c builds with $cc"
done

build() { # name, flags...
    local name=$1; shift
    # shellcheck disable=SC2086
    cc -std=c11 -g -Wall -Wextra -Werror "$@" -Icsrc/include/ucoro -Icsrc/tests csrc/tests/stack_tools.c $srcs \
        -lpthread -o "$out/$name"
}
build plain -O2
build asan -O1 -fsanitize=address -fno-omit-frame-pointer

# expect NAME STATUS PATTERN command...: the command exits with STATUS and
# its output matches PATTERN.
expect() {
    local name=$1 status=$2 pattern=$3; shift 3
    local log="$out/$name.log" rc=0
    "$@" >"$log" 2>&1 || rc=$?
    [ "$rc" = "$status" ] || fail_with_log "$name: exit status $rc, expected $status" "$log"
    grep -qE "$pattern" "$log" || fail_with_log "$name: no match for '$pattern'" "$log"
    echo "ok: $name"
}
# expect_clean NAME command...: the command passes ("<n> passed, 0 failed")
# and no sanitizer reports anything.
expect_clean() {
    local name=$1; shift
    expect "$name" 0 ' 0 failed' "$@"
    if grep -q Sanitizer "$out/$name.log"; then
        fail_with_log "$name: a sanitizer report" "$out/$name.log"
    fi
}
vg="valgrind -q --error-exitcode=99"
expect_clean plain-clean "$out/plain" clean
expect plain-dead-read 0 '^read 0x5a ' "$out/plain" dead-read
expect_clean valgrind-clean $vg "$out/plain" clean
expect valgrind-dead-read 99 'Invalid read' $vg "$out/plain" dead-read
expect valgrind-slab-read 99 'Invalid read' $vg "$out/plain" slab-read
expect_clean asan-clean "$out/asan" clean
expect asan-dead-read 1 'AddressSanitizer: use-after-poison' "$out/asan" dead-read
for mode in remap-freed-slab release-suspended; do
    expect_clean "plain-$mode" "$out/plain" "$mode"
    expect_clean "valgrind-$mode" $vg "$out/plain" "$mode"
    # Fake stacks (frames kept after return, on a heap of their own) are
    # what release-suspended checks for.
    ASAN_OPTIONS=detect_stack_use_after_return=1 expect_clean "asan-$mode" "$out/asan" "$mode"
done

cargo test --release --test stack_limits
