#!/usr/bin/env bash
# QEMU's coroutine benchmarks, stock against ucoro: builds QEMU's unit tests
# twice from one tree (Debian trixie's QEMU 10.0 with this directory's
# series applied), once with the default backend (ucontext) and once with
# --with-coroutine=ucoro against the library as `make install` installs it
# from this checkout, then runs `test-coroutine -m perf` for /perf/nesting,
# /perf/yield, /perf/lifecycle and /perf/cost, ROUNDS times each (the short
# /perf/lifecycle five times a round) in stock/ucoro pairs, alternating
# which build goes first, and prints the median times and the median of the
# pairs' ratios ucoro/stock (below 1: ucoro is faster). Then /perf/mappings (added
# by the series) in each build: how many memory mappings the process has
# with 100,000 coroutines alive at once.
#
#   contrib/qemu/bench.sh [--write] [ROUNDS]      (ROUNDS: default 3)
#
# --write replaces the section between the qemu-bench markers of
# BENCHMARKS.md with the report. The builds are cached in $QEMU_CACHE
# (default /var/cache/ucoro-qemu), shared with .ci/qemu.sh (one lock for
# both). The machine may be shared: the ratios
# come from runs interleaved in one session, never from absolute times.
#
# SPDX-License-Identifier: GPL-2.0-or-later
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$PWD
write=
if [ "${1:-}" = --write ]; then write=1; shift; fi
rounds=${1:-3}

# shellcheck source=qemu-tree.sh
. contrib/qemu/qemu-tree.sh

mkdir -p "$QEMU_CACHE"
exec 9>"$QEMU_CACHE/lock"
flock 9
dsc=$(qemu_fetch)
# The tree and the ucoro build are those of .ci/qemu.sh.
work=$QEMU_CACHE/ci/$(basename "$dsc" .dsc)
qemu_tree "$dsc" "$work/qemu"
prefix=$work/prefix
rm -rf "$prefix"
make -s -C csrc install PREFIX="$prefix" BUILDDIR="$work/ucoro-build" >/dev/null
echo "building stock QEMU (ucontext backend)" >&2
qemu_build "$work/qemu" "$work/build-stock"
echo "building QEMU on ucoro" >&2
PKG_CONFIG_PATH=$prefix/lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH} \
    qemu_build "$work/qemu" "$work/build-ucoro" --with-coroutine=ucoro
# The lock stays held: a CI run would reinstall the library under the
# ucoro build's feet.

# perf_time BUILD TEST: the seconds test-coroutine reports for /perf/TEST.
perf_time() {
    "$work/$1/tests/unit/test-coroutine" -m perf -p "/perf/$2" 2>&1 |
        grep -oE '[0-9]+\.[0-9]+ s' | head -n 1 | cut -d' ' -f1
}
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

tests=(nesting yield lifecycle cost)
# /perf/lifecycle takes a tenth of a second: one preemption decides it,
# so each round runs it (in alternating pairs) five times.
declare -A pairs=([nesting]=1 [yield]=1 [lifecycle]=5 [cost]=1)
declare -A times
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
pair=0
for round in $(seq 1 "$rounds"); do
    for t in "${tests[@]}"; do
        for _ in $(seq 1 "${pairs[$t]}"); do
            pair=$((pair + 1))
            if [ $((pair % 2)) = 1 ]; then order=(stock ucoro); else order=(ucoro stock); fi
            for b in "${order[@]}"; do
                s=$(perf_time "build-$b" "$t")
                times[$b.$t]+="$s "
                echo "round $round /perf/$t $b: $s s" >&2
            done
        done
    done
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

# mappings BUILD: "N (M before)" from /perf/mappings, or how it failed.
mappings() {
    local out
    if out=$("$work/$1/tests/unit/test-coroutine" -m perf -p /perf/mappings 2>&1); then
        sed -n 's/.*Mappings with [0-9]* coroutines alive: \([0-9]*\) (\([0-9]*\) before).*/\1 (\2 before)/p' <<<"$out"
    else
        echo "aborted: $(grep -v '^#' <<<"$out" | grep -v '^$' | tail -n 1)"
    fi
}

report=$(
    echo "<!-- qemu-bench: begin (written by contrib/qemu/bench.sh --write; do not edit by hand) -->"
    echo "## QEMU's coroutine benchmarks: stock (ucontext) against ucoro"
    echo
    echo "Produced by \`contrib/qemu/bench.sh --write $rounds\` on $(date -u +%Y-%m-%d):"
    echo "QEMU $(basename "$dsc" .dsc | sed 's/^qemu_//') (Debian trixie source) with"
    echo "contrib/qemu/*.patch, both builds from that one tree; Linux $(uname -r),"
    echo "$(nproc) CPUs (shared: load average $load_before at the start,"
    echo "$load_after at the end), vm.max_map_count $(cat /proc/sys/vm/max_map_count)."
    echo "\`test-coroutine -m perf -p /perf/TEST\`, $rounds rounds (/perf/lifecycle, a"
    echo "tenth of a second, 5 pairs a round), the two builds alternating which"
    echo "runs first. Medians in seconds; *ucoro/stock* is the median of the"
    echo "pairs' ratios (each pair ran back to back), the spread is the machine's."
    echo
    echo "| Test | stock | ucoro | ucoro/stock | each pair |"
    echo "|---|---|---|---|---|"
    for t in "${tests[@]}"; do
        st=$(tr ' ' '\n' <<<"${times[stock.$t]}" | grep . | median)
        uc=$(tr ' ' '\n' <<<"${times[ucoro.$t]}" | grep . | median)
        per=$(paste -d' ' <(tr ' ' '\n' <<<"${times[ucoro.$t]}" | grep .) \
                          <(tr ' ' '\n' <<<"${times[stock.$t]}" | grep .) |
              awk '{ printf "%s%.2f", (NR > 1 ? ", " : ""), $1 / $2 }')
        ratio=$(tr ',' '\n' <<<"$per" | median)
        echo "| /perf/$t | $st | $uc | $(printf '%.2f' "$ratio") | $per |"
    done
    echo
    echo "Memory mappings (lines of /proc/self/maps) with 100,000 coroutines alive"
    echo "at once (/perf/mappings, added by the series):"
    echo
    echo "- stock: $(mappings build-stock)"
    echo "- ucoro: $(mappings build-ucoro)"
    echo "<!-- qemu-bench: end -->"
)
printf '%s\n' "$report"
[ -n "$write" ] || exit 0

# Replace the marked section of BENCHMARKS.md, or append one.
file=$repo/BENCHMARKS.md
if grep -q '^<!-- qemu-bench: begin' "$file"; then
    awk -v report="$report" '
        /^<!-- qemu-bench: begin/ { print report; skip = 1; next }
        /^<!-- qemu-bench: end/ { skip = 0; next }
        !skip { print }' "$file" >"$file.tmp"
else
    { cat "$file"; echo; printf '%s\n' "$report"; } >"$file.tmp"
fi
mv "$file.tmp" "$file"
echo "updated $file" >&2
