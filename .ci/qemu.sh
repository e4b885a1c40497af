#!/usr/bin/env bash
# QEMU on ucoro (issue 21): QEMU 10.0 from Debian trixie's source package
# with contrib/qemu/*.patch applied, built with --with-coroutine=ucoro
# against the library as `make install` installs it; QEMU's own coroutine
# unit tests (test-coroutine, test-aio, test-aio-multithread,
# test-thread-pool) must pass, every patch must pass QEMU's checkpatch.pl
# without errors or warnings (but one, below), and its gdb commands must
# show ucoro's coroutines. Then the same tree with libucoro as a Meson
# subproject, in an AddressSanitizer build (the subproject must get the
# sanitizer too).
#
# The download and the builds are cached in $QEMU_CACHE (default
# /var/cache/ucoro-qemu), per source package: a changed series updates the
# tree file by file and the builds recompile what it touched. A lock keeps
# two runs on one machine (and contrib/qemu/bench.sh) apart. Used by .ci/run;
# runnable alone. About 10 minutes on 2 cores with a cold cache, 1 warm.
#
# SPDX-License-Identifier: MIT OR Apache-2.0
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

# shellcheck source=../contrib/qemu/qemu-tree.sh
. contrib/qemu/qemu-tree.sh

mkdir -p "$QEMU_CACHE"
exec 9>"$QEMU_CACHE/lock"
flock 9

dsc=$(qemu_fetch)
echo "QEMU source: $(basename "$dsc")"
work=$QEMU_CACHE/ci/$(basename "$dsc" .dsc)
src=$work/qemu
qemu_tree "$dsc" "$src"

echo "== checkpatch.pl on every patch of the series"
# No error and no warning, but one: the regenerated help line that lists
# the choices of --with-coroutine. meson-buildoptions.py wraps help at 76
# columns after a 17-column printf, and the choice list is one word that
# it never breaks, so any added backend makes that line 85 columns
# whatever the option's description says (contrib/qemu/README.md).
export CHECKPATCH_KNOWN="+  printf \"%s\\n\" '                           auto/sigaltstack/ucontext/ucoro/windows)'"
for patch in contrib/qemu/*.patch; do
    out=$("$src/scripts/checkpatch.pl" --no-color "$patch" 2>&1 || true)
    summary=$(grep -E '^total: ' <<<"$out")
    echo "$(basename "$patch"): $summary"
    # checkpatch prints each finding as a paragraph: kind, place, line.
    others=$(awk -v RS= -F '\n' '/^(WARNING|ERROR)/ && !($1 == "WARNING: line over 80 characters" &&
        $2 ~ /: FILE: scripts\/meson-buildoptions\.sh:/ && $3 == ENVIRON["CHECKPATCH_KNOWN"])' <<<"$out")
    if [[ -n $others || $summary != "total: 0 errors, "* ]]; then
        printf '%s\n' "$out"; exit 1
    fi
done

echo "== libucoro, installed"
prefix=$work/prefix
rm -rf "$prefix"
make -s -C csrc install PREFIX="$prefix" BUILDDIR="$work/ucoro-build" >/dev/null

echo "== QEMU with --with-coroutine=ucoro (pkg-config)"
PKG_CONFIG_PATH=$prefix/lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH} \
    qemu_build "$src" "$work/build-ucoro" --with-coroutine=ucoro
grep -q "coroutine backend *: ucoro" "$work/build-ucoro/configure.log"
# The tests must run on the library just installed (the build's rpath).
# Captured, then matched: `ldd | grep -q` lets grep exit at the first match,
# and ldd's next line then dies of EPIPE, which pipefail makes a failure.
libs=$(ldd "$work/build-ucoro/tests/unit/test-coroutine")
grep -q "$prefix/lib/libucoro.so.1" <<<"$libs" || { printf '%s\n' "$libs"; exit 1; }

run_tests() { # build dir, test names...
    local build=$1 t
    shift
    for t in "$@"; do
        if ! (cd "$build" && "tests/unit/$t") >"$build/$t.log" 2>&1; then
            echo "FAILED: $t"; tail -n 30 "$build/$t.log"; exit 1
        fi
        if grep -q '^not ok' "$build/$t.log"; then
            echo "FAILED: $t"; grep '^not ok' "$build/$t.log"; exit 1
        fi
        echo "ok: $t ($(grep -c '^ok' "$build/$t.log") tests)"
    done
}
run_tests "$work/build-ucoro" "${QEMU_UNIT_TESTS[@]}"

echo "== gdb: qemu bt goes through the switch, qemu coroutine shows a suspended one"
gdb_out=$(cd "$work/build-ucoro" && timeout 120 gdb -q -batch -nx \
    -ex 'set pagination off' -ex 'set confirm off' \
    -ex "source $prefix/share/ucoro/ucoro-gdb.py" \
    -ex "source $src/scripts/qemu-gdb.py" \
    -ex 'break test-coroutine.c:147' -ex run -ex 'qemu bt' \
    -ex delete -ex 'break test-coroutine.c:161' -ex continue \
    -ex 'echo ==suspended==\n' -ex 'qemu coroutine coroutine' -ex kill \
    --args tests/unit/test-coroutine -p /basic/yield 2>&1)
# Inside yield_5_times, bt reaches test_yield, which entered it; from
# main, the suspended coroutine's stack shows yield_5_times in its yield.
if ! grep -q 'in test_yield ()' <<<"${gdb_out%%==suspended==*}" ||
   ! grep -q 'in yield_5_times ' <<<"${gdb_out#*==suspended==}" ||
   ! grep -q 'in qemu_coroutine_yield ' <<<"${gdb_out#*==suspended==}"; then
    printf '%s\n' "$gdb_out" | tail -n 40; exit 1
fi
echo "ok: qemu bt, qemu coroutine"

echo "== the pool cap applies only where stacks cost mappings"
caps=$(cd "$work/build-ucoro" && timeout 120 gdb -q -batch -nx -ex 'break main' -ex run \
    -ex 'printf "mode %d cap %u\n", (int)ucoro_guard_mode(), global_pool_hard_max_size' -ex kill \
    --args tests/unit/test-coroutine -p /basic/yield 2>&1 | grep '^mode ')
max_map_count=$(cat /proc/sys/vm/max_map_count)
case $caps in
    "mode 1 cap 4294967295") echo "ok: MADV_GUARD_INSTALL guards, no cap" ;;
    "mode 2 cap $(( (max_map_count - 5000) / 2 ))") echo "ok: mprotect guards, the cap of 2 mappings a stack" ;;
    *) echo "FAILED: guard mode and pool cap: $caps (vm.max_map_count $max_map_count)"; exit 1 ;;
esac

echo "== QEMU with libucoro as a Meson subproject, under AddressSanitizer"
# The files of the release tarball (git's csrc/), timestamps kept so that
# an unchanged library is not rebuilt.
sub=$src/subprojects/ucoro
rm -rf "$sub" && mkdir -p "$sub"
git ls-files -z csrc | sed -z 's|^csrc/||' | (cd csrc && xargs -0 cp -p --parents -t "$sub")
qemu_build "$src" "$work/build-asan" --with-coroutine=ucoro --enable-asan \
    -Dforce_fallback_for=ucoro
grep -q "Executing subproject ucoro" "$work/build-asan/configure.log"
# The backend aborts at startup when the library lacks the sanitizer QEMU
# was built with (ucoro_sanitizers): the tests running shows it has it.
ASAN_OPTIONS=detect_leaks=0 run_tests "$work/build-asan" test-coroutine test-aio-multithread
cd "$repo"
