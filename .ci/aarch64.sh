#!/usr/bin/env bash
# Cross-builds the C test suite for aarch64 in every switch mode and runs it
# under qemu-user, so the aarch64 assembly switch is tested on an x86_64
# machine. Needs gcc-aarch64-linux-gnu, libc6-dev-arm64-cross and qemu-user
# (.ci/run installs them).
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=lib.sh
. .ci/lib.sh
srcs=$(ucoro_sources)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

for prog in tests/c/spec_api.c tests/c/tls_migration.c; do
    [ -f "$prog" ] || continue
    base=$(basename "$prog" .c)
    for mode in default setjmp ucontext; do
        def=$(ucoro_mode_flag "$mode")
        bin="$out/$base-$mode"
        # shellcheck disable=SC2086
        aarch64-linux-gnu-gcc -std=c11 -O2 -g -Wall -Wextra -Werror $def -Icsrc -Itests/c \
            "$prog" $srcs -lpthread -o "$bin"
        if ! qemu-aarch64 -L /usr/aarch64-linux-gnu "$bin" >"$bin.log" 2>&1; then
            echo "FAILED: aarch64 $base $mode"; tail -n 30 "$bin.log"; exit 1
        fi
        echo "ok: aarch64 $base-$mode ($(tail -n 1 "$bin.log"))"
    done
done
