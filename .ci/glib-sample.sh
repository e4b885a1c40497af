#!/usr/bin/env bash
# The GLib + Meson sample (examples/glib-meson, issue 12) builds and passes
# its tests, with no ucoro-specific code of its own:
# - against ucoro installed by `make install`, found by pkg-config, linked
#   shared (Meson's default -Wl,--as-needed);
# - with ucoro as a subproject through a wrap whose source is the release
#   tarball of this commit (`make -C csrc dist`, in packagecache with its
#   sha256), once shared and once static (-Ducoro:default_library=static).
# Used by .ci/run; runnable alone. Builds in a temporary copy.
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=lib.sh
. .ci/lib.sh
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
version=$(ucoro_crate_version)

# run_sample NAME SOURCE [meson setup options...]: configure, build, test.
run_sample() {
    local name=$1 src=$2 build=$work/build-$1
    shift 2
    meson setup "$build" "$src" --werror "$@" >"$build.log" 2>&1 || { cat "$build.log"; fail "$name: setup"; }
    meson compile -C "$build" >>"$build.log" 2>&1 || { cat "$build.log"; fail "$name: compile"; }
    meson test -C "$build" --print-errorlogs >>"$build.log" 2>&1 || { cat "$build.log"; fail "$name: tests"; }
    grep -E '^(Ok|Expected Fail|Fail|Unexpected Pass|Skipped|Timeout): ' "$build.log" |
        sed "s/^/$name: /"
    # The GTest program (TAP: one test to Meson, five cases inside), the
    # demo's correct run, and its misuse that must stop it.
    grep -Eq '^Ok: +2 *$' "$build.log" && grep -Eq '^Expected Fail: +1 *$' "$build.log" ||
        fail "$name: expected 2 passing tests and 1 expected failure"
    [ "$(grep -Ec '^ok [0-9]+ /sample/' "$build/meson-logs/testlog.txt")" = 5 ] ||
        fail "$name: expected the 5 GTest cases to pass"
}

# needs BINARY: the libucoro sonames BINARY loads, each followed by a space.
needs() {
    readelf -d "$1" | sed -n 's/.*(NEEDED).*\[\(libucoro[^]]*\)\]/\1/p' | sort | tr '\n' ' '
}

echo "== against the installed ucoro (pkg-config)"
ucoro_make_install csrc "$work/make-build" "$work/prefix"
# The sample's binaries find libucoro-glib by their rpath; libucoro-glib
# finds libucoro through the library path (a system prefix needs neither).
PKG_CONFIG_PATH=$work/prefix/lib/pkgconfig LD_LIBRARY_PATH=$work/prefix/lib \
    run_sample installed examples/glib-meson --wrap-mode=nofallback
# --as-needed kept libucoro-glib: the calls in the objects reference it.
needs "$work/build-installed/test-worker" | grep "libucoro-glib.so.${version%%.*} " >/dev/null ||
    fail "test-worker does not load libucoro-glib: $(needs "$work/build-installed/test-worker")"

echo "== with ucoro as a subproject, from the release tarball through the wrap"
make -s -C csrc dist BUILDDIR="$work/dist" >/dev/null
tarball=ucoro-$version.tar.gz
sample=$work/glib-meson
cp -r examples/glib-meson "$sample"
rm -rf "$sample"/build* "$sample"/subprojects/ucoro-* "$sample"/subprojects/packagecache
mkdir -p "$sample/subprojects/packagecache"
cp "$work/dist/$tarball" "$sample/subprojects/packagecache/"
sha=$(sha256sum "$work/dist/$tarball" | cut -d' ' -f1)
sed -e "s/@VERSION@/$version/g" -e "s/@SHA256@/$sha/" \
    "$sample/subprojects/ucoro.wrap.in" >"$sample/subprojects/ucoro.wrap"

run_sample subproject-shared "$sample" --force-fallback-for=ucoro,ucoro-glib
[ -f "$sample/subprojects/ucoro-$version/meson.build" ] || fail "the wrap did not unpack the tarball"
needs "$work/build-subproject-shared/test-worker" | grep "libucoro-glib.so.${version%%.*} " >/dev/null ||
    fail "test-worker does not load libucoro-glib: $(needs "$work/build-subproject-shared/test-worker")"

run_sample subproject-static "$sample" --force-fallback-for=ucoro,ucoro-glib \
    -Ducoro:default_library=static
[ -z "$(needs "$work/build-subproject-static/test-worker")" ] ||
    fail "static build still loads $(needs "$work/build-subproject-static/test-worker")"
echo "ok: the sample passes against the installed ucoro and as a subproject, shared and static"
