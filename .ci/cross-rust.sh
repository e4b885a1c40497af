#!/usr/bin/env bash
# Runs the Rust test suite for a 32-bit target (i686) and a big-endian one
# (s390x) under qemu-user: the crate's C library cross-built by the cc crate
# with Debian's cross compilers, the tests linked by them and run through
# CARGO_TARGET_<T>_RUNNER. Tests that re-run their own binary for a child
# process start it through the same emulator (UCORO_TEST_RUNNER, read by
# tests/common). Left out: tests/c_dropin.rs (it builds and inspects C
# programs with the host's make, cc, nm and readelf), tests/bindings.rs
# (bindgen on the host) and the doc tests (cross doc tests are unstable).
#
#   .ci/cross-rust.sh            both targets
#   .ci/cross-rust.sh s390x      only that one
#
# Needs rustup (the targets are added here), the cross compilers and
# qemu-user (.ci/run installs them). Used by .ci/run; runnable alone.
set -euo pipefail
cd "$(dirname "$0")/.."

# name  Rust target  GNU triple  qemu
targets='
i686    i686-unknown-linux-gnu  i686-linux-gnu  qemu-i386
s390x   s390x-unknown-linux-gnu s390x-linux-gnu qemu-s390x
'
tests="--lib --test safe_api --test threads --test c_semantics --test bad_input
       --test stack_safety --test model"

while read -r name target triple qemu; do
    [ -n "$name" ] || continue
    if [ $# -gt 0 ] && ! printf '%s\n' "$@" | grep -qx "$name"; then
        continue
    fi
    rustup target add "$target" >/dev/null
    var=$(echo "$target" | tr 'a-z-' 'A-Z_')
    runner="$qemu -L /usr/$triple"
    echo "== Rust tests on $target under $qemu"
    # shellcheck disable=SC2086
    env "CARGO_TARGET_${var}_LINKER=$triple-gcc" \
        "CARGO_TARGET_${var}_RUNNER=$runner" \
        "CC_${target//-/_}=$triple-gcc" \
        "AR_${target//-/_}=$triple-ar" \
        UCORO_TEST_RUNNER="$runner" \
        cargo test --target "$target" $tests
done <<<"$targets"
