# The C sources of libucoro: the one list that both csrc/Makefile and the
# Rust build script (build.rs) compile.
UCORO_SOURCES = continuation.c coroutine_ucontext.c diagnostic.c overflow.c stack.c tools.c
