#!/usr/bin/env bash
# The shared libraries' ABI (issue 18), for libucoro and libucoro-glib:
# - the exported set is exactly what the version scripts list, each
#   function under the version node that names it (readelf --dyn-syms);
# - abidiff against the committed baselines (csrc/abi/*.abi, libabigail's
#   abidw output of a -g build on x86_64) finds no incompatible change,
#   unless the soname changed with it (a new major version: then commit
#   new baselines). Compatible changes (an added function, private state
#   inside the reserve) are shown and pass.
#
#   .ci/abi.sh              check
#   UCORO_BLESS=1 .ci/abi.sh  write new baselines (after a release's changes)
#
# Needs abigail-tools, binutils and GLib's development files. Used by
# .ci/run; runnable alone.
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=lib.sh
. .ci/lib.sh
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

[ "$(uname -m)" = x86_64 ] || fail "the baselines are of x86_64 builds"
make -s -C csrc BUILDDIR="$work/build" WITH_GLIB=yes CFLAGS=-g EXTRA_CFLAGS=-Werror >/dev/null
version=$(cat csrc/VERSION)

# "NODE name" for every name a version script exports, in node order.
listed() {
    awk '/^[A-Za-z0-9_.]+ *\{/ { node = $1 } /global:/ { on = 1; next } /local:/ { on = 0 }
         on && /;/ { gsub(/[ \t;]/, ""); if ($0 != "") print node " " $0 }' "$1" | sort
}

# "NODE name" for every symbol the library defines in its dynamic table
# (the version nodes' own ABS symbols left out); "- name" if unversioned.
exported() {
    readelf --dyn-syms -W "$1" | awk '$7 != "UND" && $7 != "ABS" && ($5 == "GLOBAL" || $5 == "WEAK") {
        n = split($8, part, "@"); print (n > 1 ? part[n] : "-") " " part[1] }' | sort
}

for lib in ucoro ucoro-glib; do
    case $lib in
        ucoro) map=csrc/libucoro.map ;;
        ucoro-glib) map=csrc/glib/libucoro-glib.map ;;
    esac
    so=$work/build/lib$lib.so.$version
    baseline=csrc/abi/lib$lib.abi

    if ! diff -u <(listed "$map") <(exported "$so") >"$work/exports.diff"; then
        cat "$work/exports.diff"
        fail "lib$lib exports other names or versions than $map lists (- listed, + exported)"
    fi
    echo "ok: lib$lib exports exactly the $(listed "$map" | wc -l) functions of $map, each versioned"

    abidw --no-corpus-path --no-comp-dir-path --short-locs --headers-dir csrc/include/ucoro \
        --drop-private-types "$so" >"$work/lib$lib.abi"
    if [ -n "${UCORO_BLESS:-}" ]; then
        cp "$work/lib$lib.abi" "$baseline"
        echo "wrote $baseline"
        continue
    fi
    [ -f "$baseline" ] || fail "no $baseline: write it with UCORO_BLESS=1 .ci/abi.sh"
    status=0
    abidiff --headers-dir2 csrc/include/ucoro --drop-private-types "$baseline" "$so" \
        >"$work/abidiff.txt" 2>&1 || status=$?
    old_soname=$(sed -n "1s/.* soname='\([^']*\)'.*/\1/p" "$baseline")
    new_soname=$(sed -n "1s/.* soname='\([^']*\)'.*/\1/p" "$work/lib$lib.abi")
    # abidiff's status is a bit set: 1 error, 2 usage, 4 a change, 8 an
    # incompatible change.
    if [ $((status & 3)) -ne 0 ]; then
        cat "$work/abidiff.txt"; fail "abidiff could not compare lib$lib (status $status)"
    elif [ $((status & 8)) -ne 0 ] && [ "$old_soname" = "$new_soname" ]; then
        cat "$work/abidiff.txt"
        fail "lib$lib: an incompatible ABI change under the same soname ($new_soname): \
keep the ABI, or bump the major version (Cargo.toml, csrc/VERSION) and write new baselines"
    elif [ $((status & 8)) -ne 0 ]; then
        cat "$work/abidiff.txt"
        echo "note: lib$lib: incompatible changes with a new soname ($old_soname -> $new_soname): commit new baselines (UCORO_BLESS=1 .ci/abi.sh)"
    elif [ $((status & 4)) -ne 0 ]; then
        sed 's/^/    /' "$work/abidiff.txt"
        echo "ok: lib$lib ($new_soname): compatible changes only, against $baseline"
    else
        echo "ok: lib$lib ($new_soname): the ABI of $baseline, unchanged"
    fi
done
