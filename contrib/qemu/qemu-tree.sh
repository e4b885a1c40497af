# Shell functions (sourced, not run) that get a QEMU 10.0 tree with this
# directory's patch series applied, and build parts of it: used by
# .ci/qemu.sh and contrib/qemu/bench.sh.
#
# The source is Debian trixie's qemu package (10.0.x), fetched with apt from
# a deb-src entry of its own: a private apt configuration under the cache,
# so the machine's apt state is neither read nor changed. Debian's repack
# drops the wheels QEMU's configure installs into its venv (meson 1.5.0,
# pycotap): pip downloads them. Downloads and wheels are kept in
# $QEMU_CACHE (default /var/cache/ucoro-qemu).
#
# SPDX-License-Identifier: GPL-2.0-or-later

QEMU_CACHE=${QEMU_CACHE:-/var/cache/ucoro-qemu}
QEMU_SERIES_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# QEMU's configure for the coroutine tests alone: no emulator, no optional
# library; the blobs Debian's repack removed are not installed.
QEMU_CONFIGURE_ARGS=(--target-list= --disable-system --disable-user --enable-tools
                     --without-default-features --disable-install-blobs)
QEMU_UNIT_TESTS=(test-coroutine test-aio test-aio-multithread test-thread-pool)

qemu_apt() { # apt-get arguments...: apt with the private trixie deb-src list
    apt-get -q -o Dir::Etc::SourceList="$QEMU_CACHE/apt/trixie-src.sources" \
        -o Dir::Etc::SourceParts=/nonexistent \
        -o Dir::State::Lists="$QEMU_CACHE/apt/lists" \
        -o Dir::Cache="$QEMU_CACHE/apt/cache" -o APT::Sandbox::User=root "$@"
}

# Prints the path of the .dsc of Debian trixie's qemu 10.0.x, downloading
# the source package (and the wheels) unless the cache has them.
qemu_fetch() {
    local dsc
    mkdir -p "$QEMU_CACHE/apt/lists/partial" "$QEMU_CACHE/apt/cache" "$QEMU_CACHE/src" \
             "$QEMU_CACHE/wheels"
    dsc=$(ls "$QEMU_CACHE"/src/qemu_10.0.*.dsc 2>/dev/null | sort -V | tail -n 1)
    if [ -z "$dsc" ]; then
        # The mirror form of /etc/apt/sources.list.d/debian.sources, for trixie.
        cat >"$QEMU_CACHE/apt/trixie-src.sources" <<'EOF'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
        qemu_apt update >&2
        (cd "$QEMU_CACHE/src" && qemu_apt source --download-only qemu >&2)
        dsc=$(ls "$QEMU_CACHE"/src/qemu_10.0.*.dsc 2>/dev/null | sort -V | tail -n 1)
        [ -n "$dsc" ] || { echo "trixie's qemu source is not 10.0.x" >&2; return 1; }
    fi
    if [ ! -f "$QEMU_CACHE/wheels/meson-1.5.0-py3-none-any.whl" ] ||
       [ ! -f "$QEMU_CACHE/wheels/pycotap-1.3.1-py3-none-any.whl" ]; then
        python3 -m pip download -q --no-deps --only-binary=:all: -d "$QEMU_CACHE/wheels" \
            meson==1.5.0 pycotap==1.3.1 >&2
    fi
    echo "$dsc"
}

# The series' fingerprint: which series a tree has applied.
qemu_series_key() {
    cat "$1" "$QEMU_SERIES_DIR"/*.patch | sha256sum | cut -c1-16
}

# qemu_tree DSC DEST: DEST becomes DSC unpacked, with the wheels and the
# series applied in name order. An existing DEST with another series is
# brought up to date file by file, so that its builds recompile only what
# the change touched (changed files get a fresh timestamp).
qemu_tree() {
    local dsc=$1 dest=$2 key patch new line a b
    key=$(qemu_series_key "$dsc")
    [ "$(cat "$dest/.series" 2>/dev/null)" = "$key" ] && return 0
    new=$dest.new
    rm -rf "$new" && mkdir -p "$(dirname "$dest")"
    # --no-check: apt has checked the files against the signed Sources
    # index already (and the machine has no debian-keyring to check with).
    (cd "$(dirname "$dest")" && dpkg-source --no-check -x "$dsc" "$(basename "$new")" >/dev/null &&
        rm -f ./*.orig.tar.* ./*.debian.tar.* ./*.dsc)
    cp "$QEMU_CACHE"/wheels/*.whl "$new/python/wheels/"
    for patch in "$QEMU_SERIES_DIR"/*.patch; do
        patch -s -p1 -d "$new" <"$patch"
    done
    if [ -d "$dest" ]; then
        # diff exits 1 when the trees differ: that is the point here.
        { diff -rq "$dest" "$new" || true; } | while IFS= read -r line; do
            case $line in
                "Files "*" differ")
                    line=${line#Files }; a=${line%% and *}; b=${line#* and }; b=${b% differ}
                    cp "$b" "$a" && touch "$a" ;;
                "Only in $new"*)
                    line=${line#Only in }; a=${line%%: *}
                    cp -a "$a/${line#*: }" "$dest${a#"$new"}/" ;;
                "Only in $dest"*)
                    line=${line#Only in }; rm -rf "${line%%: *}/${line#*: }" ;;
            esac
        done
        rm -rf "$new"
    else
        mv "$new" "$dest"
    fi
    echo "$key" >"$dest/.series"
}

# qemu_build SRC BUILD CONFIGURE-ARGS...: configures BUILD once, then
# builds the unit tests (niced, two jobs: the machine is shared).
qemu_build() {
    local src=$1 build=$2; shift 2
    if [ ! -f "$build/build.ninja" ]; then
        rm -rf "$build" && mkdir -p "$build"
        (cd "$build" && nice "$src/configure" "${QEMU_CONFIGURE_ARGS[@]}" "$@" >configure.log 2>&1) ||
            { tail -n 30 "$build/configure.log"; return 1; }
    fi
    nice ninja -C "$build" -j2 "${QEMU_UNIT_TESTS[@]/#/tests/unit/}" >"$build/ninja.log" 2>&1 ||
        { tail -n 40 "$build/ninja.log"; return 1; }
}
