# The C sources of libucoro: the one list that csrc/Makefile,
# csrc/meson.build and the Rust build script (build.rs) compile. Each list
# stays on one line: all three read it as `NAME = file file ...`.
UCORO_SOURCES = continuation.c coroutine_ucontext.c diagnostic.c locks.c overflow.c stack.c tools.c
# libucoro-glib (built where GLib is found; never part of the crate).
UCORO_GLIB_SOURCES = glib/ucoro_glib.c
