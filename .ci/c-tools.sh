#!/usr/bin/env bash
# Builds the C test programs together with csrc in every switch mode and
# runs them plain, with link-time optimisation (the library inlined into the
# program: where a cached thread-local address would show), under
# AddressSanitizer, ThreadSanitizer and Valgrind.
# Any report from a tool fails the run. Used by .ci/run; runnable alone.
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=lib.sh
. .ci/lib.sh
srcs=$(ucoro_sources)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
programs=${UCORO_C_TOOL_PROGRAMS:-"csrc/tests/spec_api.c csrc/tests/tls_migration.c csrc/tests/arch_switch.c csrc/tests/fork_safety.c csrc/tests/thread_exit.c csrc/tests/signal_unwind.c csrc/tests/embed_api.c"}

run() { # name, command...
    local name=$1; shift
    local log="$out/$name.log"
    if ! "$@" >"$log" 2>&1; then
        echo "FAILED: $name"; tail -n 40 "$log"; exit 1
    fi
    # Sanitizer reports go to stderr even when a program exits 0.
    if grep -qE '^(==[0-9]+==)?(ERROR|WARNING): (Address|Thread|Leak)Sanitizer|WARNING: ThreadSanitizer|ASan doesn.t fully support' "$log"; then
        echo "FAILED: $name (sanitizer report)"; grep -A20 -E 'Sanitizer' "$log" | head -60; exit 1
    fi
    echo "ok: $name ($(grep -E '[0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1))"
}

for prog in $programs; do
    [ -f "$prog" ] || continue
    base=$(basename "$prog" .c)
    for mode in default setjmp ucontext; do
        def=$(ucoro_mode_flag "$mode")
        for tool in plain lto asan tsan valgrind; do
            # ThreadSanitizer's own allocator lock, held by the worker
            # thread at fork(), hangs about one child in twenty inside
            # __tsan_create_fiber (also before any ucoro lock is taken): a
            # limit of TSan in a forked multi-threaded process, not of the
            # library. The fork test runs under every other tool.
            if [ "$base-$tool" = fork_safety-tsan ]; then
                echo "skipped: $base-$mode-$tool (TSan hangs in forked multi-threaded children)"
                continue
            fi
            case $tool in
                plain|valgrind) flags="-O2" ;;
                lto) flags="-O2 -flto" ;; # whole-program inlining across the API
                asan) flags="-O1 -fsanitize=address -fno-omit-frame-pointer" ;;
                tsan) flags="-O1 -fsanitize=thread" ;;
            esac
            bin="$out/$base-$mode-$tool"
            # shellcheck disable=SC2086
            cc -std=c11 -g -Wall -Wextra -Werror $flags $def -Icsrc/include/ucoro -Icsrc/tests \
                "$prog" $srcs -lpthread -o "$bin"
            case $tool in
                valgrind) run "$base-$mode-$tool" valgrind -q --error-exitcode=99 "$bin" ;;
                asan) ASAN_OPTIONS=detect_leaks=1:detect_stack_use_after_return=1 \
                          run "$base-$mode-$tool" "$bin" ;;
                *) run "$base-$mode-$tool" "$bin" ;;
            esac
        done
    done
done

# Issue 17's acceptance: the signal storm of csrc/tests/signal_unwind.c for
# 10 s (1 s in the runs above), plain and under AddressSanitizer.
case " $programs " in *" csrc/tests/signal_unwind.c "*) storm_tools="plain asan" ;; *) storm_tools= ;; esac
for tool in $storm_tools; do
    case $tool in
        plain) flags="-O2" ;;
        asan) flags="-O1 -fsanitize=address -fno-omit-frame-pointer" ;;
    esac
    bin="$out/signal_unwind-10s-$tool"
    # shellcheck disable=SC2086
    cc -std=c11 -g -Wall -Wextra -Werror $flags -Icsrc/include/ucoro -Icsrc/tests csrc/tests/signal_unwind.c $srcs \
        -lpthread -o "$bin"
    UCORO_STORM_SECONDS=10 run "signal_unwind-10s-$tool" "$bin"
done
