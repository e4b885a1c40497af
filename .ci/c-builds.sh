#!/usr/bin/env bash
# The C library's two builds and its release tarball agree (issue 12):
# - csrc/VERSION equals the crate version (Cargo.toml);
# - `make install` and `meson install` lay out the same prefix: the same
#   files and links, sonames, DT_FLAGS_1 (NODELETE), exported symbols
#   (nm -D --defined-only), the static archives' global symbols, headers
#   and the gdb extension byte for byte, and .pc files equal but for the
#   prefix path;
# - `make -C csrc dist` gives a tarball that holds csrc's tracked files and
#   the licenses, builds on its own with make and with meson (to the same
#   layout again), tests itself (make check and meson test run the C suite
#   of its tests/, skipping nothing), installs its headers in include/ucoro
#   only, reached with `#include "coroutine.h"` and `<ucoro/coroutine.h>`
#   alike (pkg-config, Meson), and the C suite (spec_api.c, and the GLib
#   module's glib_module.c, from the tarball) passes against each install,
#   linked shared (with --as-needed) and static.
# Used by .ci/run; runnable alone.
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=lib.sh
. .ci/lib.sh
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

version=$(ucoro_crate_version)
[ "$(cat csrc/VERSION)" = "$version" ] ||
    fail "csrc/VERSION says $(cat csrc/VERSION) but Cargo.toml says $version"

# What a prefix holds, one line per fact, with the prefix written PREFIX.
describe_prefix() {
    local prefix=$1 file path
    (cd "$prefix" && find . ! -type d | sort) | while read -r file; do
        path=$prefix/$file
        # gdb's auto-load directory repeats the prefix in its path.
        if [ -L "$path" ]; then
            echo "${file//$prefix/PREFIX} -> $(readlink "$path")"
            continue
        fi
        echo "${file//$prefix/PREFIX}"
        case $file in
            *-gdb.py) echo "  sha256 $(sha256sum <"$path" | cut -d' ' -f1)" ;;
            *.so.*)
                readelf -d "$path" | sed -n -e 's/.*(SONAME).*\[\(.*\)\]/  soname \1/p' \
                    -e 's/.*(FLAGS_1).*Flags: *\(.*\)/  flags_1 \1/p'
                nm -D --defined-only "$path" | awk 'NF == 3 { print "  exports " $3 }' | sort ;;
            *.a) nm -g --defined-only "$path" | awk 'NF == 3 { print "  defines " $3 }' | sort ;;
            *.pc) sed -e "s|$prefix|PREFIX|g" -e 's/^/  /' "$path" ;;
            *) echo "  sha256 $(sha256sum <"$path" | cut -d' ' -f1)" ;;
        esac
    done
}

# same_prefix A B WHAT: A and B describe alike, or the difference is shown.
same_prefix() {
    describe_prefix "$1" >"$work/a.txt"
    describe_prefix "$2" >"$work/b.txt"
    if ! diff -u "$work/a.txt" "$work/b.txt"; then
        fail "$3 differ (- $1, + $2)"
    fi
    echo "ok: $3 agree ($(grep -c ' exports ' "$work/a.txt") exported symbols)"
}

echo "== make and meson, from csrc/"
ucoro_make_install csrc "$work/make-build" "$work/make"
ucoro_meson_install csrc "$work/meson-build" "$work/meson"
same_prefix "$work/make" "$work/meson" "make install and meson install"
grep -q 'ucoro-glib.pc' "$work/a.txt" || fail "no ucoro-glib.pc installed"
# The gdb extension, for `source` and as libucoro.so's auto-load script.
grep -qx './share/ucoro/ucoro-gdb.py' "$work/a.txt" || fail "no share/ucoro/ucoro-gdb.py installed"
grep -Eqx '\./share/gdb/auto-loadPREFIX/lib/libucoro\.so\.[0-9.]+-gdb\.py' "$work/a.txt" ||
    fail "no gdb auto-load script for libucoro.so installed"

echo "== the release tarball"
make -s -C csrc dist BUILDDIR="$work/dist"
tarball=$work/dist/ucoro-$version.tar.gz
cp "$tarball" "$work/first.tar.gz"
make -s -C csrc dist BUILDDIR="$work/dist"
cmp -s "$tarball" "$work/first.tar.gz" || fail "make dist is not reproducible"
mkdir "$work/unpacked"
tar -xzf "$tarball" -C "$work/unpacked"
src=$work/unpacked/ucoro-$version
expected=$( (git ls-files csrc | sed 's|^csrc/||'; printf '%s\n' LICENSE-APACHE LICENSE-MIT NEWS) | sort)
actual=$(cd "$src" && find . -type f | sed 's|^\./||' | sort)
[ "$expected" = "$actual" ] || { diff <(echo "$expected") <(echo "$actual"); fail "tarball contents"; }
echo "ok: $(basename "$tarball") holds csrc's tracked files, the licenses and NEWS ($(echo "$actual" | wc -l) files)"

ucoro_make_install "$src" "$work/tar-make-build" "$work/tar-make"
ucoro_meson_install "$src" "$work/tar-meson-build" "$work/tar-meson"
same_prefix "$work/make" "$work/tar-make" "the repository's and the tarball's make install"
same_prefix "$work/make" "$work/tar-meson" "the repository's make install and the tarball's meson install"

echo "== the tarball tests itself: make check and meson test (the C suite)"
make -s -C "$src" check BUILDDIR="$work/tar-make-build" PREFIX="$work/tar-make" WITH_GLIB=yes \
    EXTRA_CFLAGS=-Werror | tee "$work/check.log" | grep -v '^PASS: '
grep -Eq '^check: [1-9][0-9]* passed, 0 failed$' "$work/check.log" || fail "make check in the tarball"
! grep -q '^SKIP: ' "$work/check.log" || fail "make check skipped a part"
meson test -C "$work/tar-meson-build" --print-errorlogs >"$work/meson-test.log" 2>&1 ||
    { cat "$work/meson-test.log"; fail "meson test in the tarball"; }
grep -E '^(Ok|Fail|Skipped): ' "$work/meson-test.log" | tr -s ' ' | paste -sd' '
grep -Eq '^Fail: +0 *$' "$work/meson-test.log" && grep -Eq '^Skipped: +0 *$' "$work/meson-test.log" &&
    [ "$(grep -Ec ' OK ' "$work/meson-test.log")" = "$(grep -Ec '^PASS: ' "$work/check.log")" ] ||
    fail "meson test must run what make check runs, all passing"

echo "== the headers: include/ucoro only, reached in either include form"
for build in tar-make tar-meson; do
    [ -f "$work/$build/include/ucoro/coroutine.h" ] || fail "$build: no include/ucoro/coroutine.h"
    [ -z "$(find "$work/$build/include" -maxdepth 1 -type f)" ] ||
        fail "$build: headers directly in include/: $(find "$work/$build/include" -maxdepth 1 -type f)"
done
mkdir -p "$work/forms"
for form in '"coroutine.h"' '<ucoro/coroutine.h>'; do
    printf '#include %s\nint main(void) { return coroutine_self_is_main() ? 0 : 1; }\n' "$form" \
        >"$work/forms/main.c"
    for build in tar-make tar-meson; do
        pc="env PKG_CONFIG_PATH=$work/$build/lib/pkgconfig pkg-config"
        # shellcheck disable=SC2046
        cc -std=c99 -Wall -Werror "$work/forms/main.c" $($pc --cflags --libs ucoro) -o "$work/forms/main" &&
            LD_LIBRARY_PATH=$work/$build/lib "$work/forms/main" ||
            fail "#include $form with pkg-config against $build"
    done
    # The same through Meson: dependency('ucoro') from the installed .pc file.
    cat >"$work/forms/meson.build" <<'MESON'
project('forms', 'c')
executable('main', 'main.c', dependencies: dependency('ucoro'))
MESON
    rm -rf "$work/forms/build"
    PKG_CONFIG_PATH=$work/tar-meson/lib/pkgconfig meson setup "$work/forms/build" "$work/forms" \
        >"$work/forms/setup.log" 2>&1 && ninja -C "$work/forms/build" >>"$work/forms/setup.log" 2>&1 &&
        LD_LIBRARY_PATH=$work/tar-meson/lib "$work/forms/build/main" ||
        { cat "$work/forms/setup.log"; fail "#include $form with Meson's dependency('ucoro')"; }
    echo "ok: #include $form builds with pkg-config (make and meson installs) and with Meson"
done

echo "== the C suite against the tarball's installs, through pkg-config"
for build in tar-make tar-meson; do
    for link in shared static; do
        ucoro_run_c_test "$work/$build" "$src/tests/spec_api.c" ucoro "$link" \
            "$work/spec_api-$build-$link" -pthread
        ucoro_run_c_test "$work/$build" "$src/tests/glib_module.c" ucoro-glib "$link" \
            "$work/glib_module-$build-$link"
    done
done
