/*
 * The frozen layout of the public structs: their sizes and the offsets of
 * their fields, where pointers have 64 bits (LP64) and where they have 32
 * (ILP32), on every architecture; both structs are aligned as a pointer.
 * Callers embed struct coroutine by value, so this is ABI: within one soname
 * no line here changes (README, "ABI and versions"). The library checks
 * its own headers against it at compile time (coroutine_ucontext.c), and
 * tests/abi_layout.c checks what a caller's compiler makes of the installed
 * headers, on every architecture CI builds for.
 *
 * X-macros: UCORO_FROZEN_SIZES(X) calls X(struct, lp64, ilp32) and
 * UCORO_FROZEN_OFFSETS(X) calls X(struct, field, lp64, ilp32).
 *
 * SPDX-License-Identifier: MIT OR Apache-2.0
 */
#ifndef UCORO_ABI_LAYOUT_H
#define UCORO_ABI_LAYOUT_H

#define UCORO_FROZEN_SIZES(X)                                                  \
    X(coroutine, 288, 148)                                                     \
    X(continuation, 200, 104)

#define UCORO_FROZEN_OFFSETS(X)                                                \
    X(coroutine, stack_size, 0, 0)                                             \
    X(coroutine, entry, 8, 4)                                                  \
    X(coroutine, release, 16, 8)                                               \
    X(coroutine, exited, 24, 12)                                               \
    X(coroutine, caller, 32, 16)                                               \
    X(coroutine, data, 40, 20)                                                 \
    X(coroutine, magic, 48, 24)                                                \
    X(coroutine, cc, 56, 28)                                                   \
    X(coroutine, ucoro_private, 256, 132)                                      \
    X(continuation, stack, 0, 0)                                               \
    X(continuation, stack_size, 8, 4)                                          \
    X(continuation, entry, 16, 8)                                              \
    X(continuation, release, 24, 12)                                           \
    X(continuation, exited, 32, 16)                                            \
    X(continuation, started, 36, 20)                                           \
    X(continuation, return_to, 40, 24)                                         \
    X(continuation, ctx, 48, 28)                                               \
    X(continuation, magic, 56, 32)                                             \
    X(continuation, fp_link, 64, 36)                                           \
    X(continuation, ucoro_private, 72, 40)

#endif /* UCORO_ABI_LAYOUT_H */
