# Shared by the .ci scripts: sourced, not run.

# Ends the run with a message on stderr.
fail() { echo "FAILED: $*" >&2; exit 1; }

# The C library's sources as paths from the repository root, from the one
# list (csrc/sources.mk) that the Makefile and build.rs also read.
ucoro_sources() {
    local s
    for s in $(sed -n 's/^UCORO_SOURCES *= *//p' csrc/sources.mk); do
        printf 'csrc/%s ' "$s"
    done
}

# The -D flag that selects a switch mode (default, setjmp, ucontext).
ucoro_mode_flag() {
    case $1 in
        default) ;;
        setjmp) printf -- '-DUCORO_SWITCH_SETJMP' ;;
        ucontext) printf -- '-DUCORO_SWITCH_UCONTEXT' ;;
        *) echo "unknown switch mode: $1" >&2; return 1 ;;
    esac
}

# Installs csrc (or an unpacked release tarball: $1) into a prefix with
# make: ucoro_make_install SRCDIR BUILDDIR PREFIX [make arguments...].
# Warnings are errors and the GLib module is required, as in CI.
ucoro_make_install() {
    local src=$1 build=$2 prefix=$3
    shift 3
    make -s -C "$src" install BUILDDIR="$build" PREFIX="$prefix" WITH_GLIB=yes \
        EXTRA_CFLAGS=-Werror "$@" >/dev/null
}

# The same with Meson: ucoro_meson_install SRCDIR BUILDDIR PREFIX
# [meson setup options...]. libdir is fixed to lib (Meson would pick
# lib/<multiarch> on Debian), so both builds lay out the prefix alike.
ucoro_meson_install() {
    local src=$1 build=$2 prefix=$3
    shift 3
    meson setup "$build" "$src" --prefix="$prefix" --libdir=lib -Dglib=enabled \
        --werror "$@" >"$build.setup.log" 2>&1 || { cat "$build.setup.log"; return 1; }
    meson compile -C "$build" >"$build.compile.log" 2>&1 || { cat "$build.compile.log"; return 1; }
    meson install -C "$build" --quiet >/dev/null
}

# The [package] version of Cargo.toml.
ucoro_crate_version() {
    awk -F'"' '/^[ \t]*\[/ { p = ($0 ~ /^[ \t]*\[package\][ \t]*$/) }
               p && /^[ \t]*version[ \t]*=/ { print $2; exit }' Cargo.toml
}

# Compiles one C test program against an installed prefix through
# pkg-config and runs it; it must end with "<n> passed, 0 failed".
# ucoro_run_c_test PREFIX SOURCE MODULE shared|static BINARY [cflags...]
ucoro_run_c_test() {
    local prefix=$1 source=$2 module=$3 link=$4 binary=$5
    shift 5
    local pc="env PKG_CONFIG_PATH=$prefix/lib/pkgconfig pkg-config" libs out
    if [ "$link" = static ]; then
        # -l:libX.a: the archive although the .so sits next to it.
        libs=$($pc --static --libs "$module" | sed -e 's/-lucoro-glib\b/-l:libucoro-glib.a/' \
                                                -e 's/-lucoro\( \|$\)/-l:libucoro.a\1/')
    else
        libs="-Wl,--as-needed $($pc --libs "$module")"
    fi
    # shellcheck disable=SC2086
    cc -std=c11 -Wall -Wextra -Werror -pedantic "$@" $($pc --cflags "$module") \
        "$source" -o "$binary" $libs
    out=$(LD_LIBRARY_PATH="$prefix/lib" "$binary" 2>&1) || { echo "$out"; return 1; }
    echo "$out" | tail -n 1 | grep -Eq '^[1-9][0-9]* passed, 0 failed$' || { echo "$out"; return 1; }
    echo "ok: $(basename "$binary"): $(echo "$out" | tail -n 1)"
}
