#!/usr/bin/env bash
# The Meson build of the C library (csrc/meson.build) cross-builds for every
# architecture the distributions ship, with a cross file per target, and
# the library it builds passes the C suite there (csrc/tests/spec_api.c,
# linked statically against the Meson-built libucoro.a, run under
# qemu-user). Also a native build with musl-gcc. The switch modes are
# covered by .ci/cross.sh; this checks the build system on each target.
#
#   .ci/cross-meson.sh                every target
#   .ci/cross-meson.sh armhf s390x    only those
#
# Used by .ci/run; runnable alone.
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=lib.sh
. .ci/lib.sh

# name  triple (- : native)  cpu_family  cpu  endian  qemu (- : natively)
targets='
x86_64-musl -                       x86_64  x86_64  little -
i686        i686-linux-gnu          x86     i686    little qemu-i386
armhf       arm-linux-gnueabihf     arm     armv7   little qemu-arm
armel       arm-linux-gnueabi       arm     armv5te little qemu-arm
aarch64     aarch64-linux-gnu       aarch64 aarch64 little qemu-aarch64
ppc64el     powerpc64le-linux-gnu   ppc64   ppc64le little qemu-ppc64le
s390x       s390x-linux-gnu         s390x   s390x   big    qemu-s390x
riscv64     riscv64-linux-gnu       riscv64 riscv64 little qemu-riscv64
mips64el    mips64el-linux-gnuabi64 mips64  mips64  little qemu-mips64el
'

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

passed=0
while read -r name triple family cpu endian qemu; do
    [ -n "$name" ] || continue
    if [ $# -gt 0 ] && ! printf '%s\n' "$@" | grep -x "$name" >/dev/null; then
        continue
    fi
    dir="$work/$name"
    mkdir -p "$dir"
    if [ "$triple" = - ]; then
        cc=musl-gcc
        setup=(env CC=musl-gcc meson setup)
    else
        cc=$triple-gcc
        cat >"$dir/cross.ini" <<EOF
[binaries]
c = '$triple-gcc'
ar = '$triple-ar'
strip = '$triple-strip'

[host_machine]
system = 'linux'
cpu_family = '$family'
cpu = '$cpu'
endian = '$endian'
EOF
        setup=(meson setup --cross-file "$dir/cross.ini")
    fi
    if ! "${setup[@]}" "$dir/build" csrc -Dglib=disabled -Ddefault_library=static \
            -Dwerror=true >"$dir/setup.log" 2>&1 ||
        ! ninja -C "$dir/build" >"$dir/build.log" 2>&1; then
        tail -n 30 "$dir/setup.log" "$dir/build.log" 2>/dev/null
        fail "meson cross build for $name"
    fi
    "$cc" -std=c11 -O2 -Wall -Wextra -Werror -Icsrc/include/ucoro -Icsrc/tests csrc/tests/spec_api.c \
        "$dir/build/libucoro.a" -static -lpthread -o "$dir/spec_api" ||
        fail "link the C suite against the Meson-built library for $name"
    if [ "$qemu" = - ]; then run=("$dir/spec_api"); else run=("$qemu" "$dir/spec_api"); fi
    if ! "${run[@]}" >"$dir/run.log" 2>&1; then
        tail -n 30 "$dir/run.log"
        fail "the C suite against the Meson build for $name"
    fi
    echo "ok: meson $name ($(tail -n 1 "$dir/run.log"))"
    passed=$((passed + 1))
done <<<"$targets"
[ "$passed" -gt 0 ] || fail "no target matches: $*"
echo "cross-meson: $passed targets passed"
