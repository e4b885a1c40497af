# The C sources of libucoro: the one list that csrc/Makefile,
# csrc/meson.build and the Rust build script (build.rs) compile. Each list
# stays on one line: all three read it as `NAME = file file ...`.
UCORO_SOURCES = continuation.c coroutine_ucontext.c diagnostic.c embed.c locks.c overflow.c stack.c tools.c
# libucoro-glib (built where GLib is found; never part of the crate).
UCORO_GLIB_SOURCES = glib/ucoro_glib.c
# The C test programs that `make check` and `meson test` build against this
# build's headers and shared library (C11, -pthread) and run without
# arguments; the build files add those that need more (arguments, GLib, C++,
# the static library, Valgrind). Each ends with "<n> passed, 0 failed".
UCORO_TESTS = tests/abi_layout.c tests/spec_api.c tests/header_check.c tests/styles_spice.c tests/styles_gtkvnc.c tests/tls_migration.c tests/fork_safety.c tests/thread_exit.c tests/signal_unwind.c tests/embed_api.c
