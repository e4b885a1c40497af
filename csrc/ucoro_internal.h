/*
 * Internal helpers shared between the files of libucoro. Nothing here is
 * part of the API: every name is ucoro__-prefixed and hidden in the shared
 * library.
 *
 * SPDX-License-Identifier: MIT OR Apache-2.0
 */
#ifndef UCORO_INTERNAL_H
#define UCORO_INTERNAL_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__)
#define UCORO_HIDDEN __attribute__((visibility("hidden")))
#else
#define UCORO_HIDDEN
#endif

/* An identifier as assembly must spell it, after any renaming done with
 * macros (the benchmarks build renamed copies of the library). */
#define UCORO_ASM_SYMBOL(name) UCORO_ASM_STRING(name)
#define UCORO_ASM_STRING(name) #name

/* Thread-local state uses the initial-exec model: one instruction away
 * from the thread pointer in the static and the shared library alike (a
 * dlopen()ed libucoro takes its few hundred bytes from glibc's static TLS
 * reserve), instead of a __tls_get_addr call per access. */
#if defined(__GNUC__)
#define UCORO_TLS __attribute__((tls_model("initial-exec")))
#else
#define UCORO_TLS
#endif

/* Stack sizes: the default is the originals' 16 MiB (address space only:
 * pages are committed when touched); smaller requests are rounded up to the
 * minimum so that a 1-byte stack is still usable. */
#define UCORO_DEFAULT_STACK_SIZE ((size_t)16 << 20)
#define UCORO_MIN_STACK_SIZE ((size_t)16 << 10)

/* Magic values: an initialised struct holds kind ^ its own address, so
 * garbage, a struct copied elsewhere and a released struct all fail the
 * check. The struct fields are unsigned long (the originals' ABI), so each
 * kind is an ASCII tag as wide as that: eight letters where it has 64 bits,
 * four on 32-bit targets. */
#if ULONG_MAX > 0xffffffffUL
#define UCORO_MAGIC_CONTINUATION 0x75636f726f2d6363UL /* "ucoro-cc" */
#define UCORO_MAGIC_COROUTINE 0x75636f726f2d636fUL    /* "ucoro-co" */
#define UCORO_MAGIC_LEADER 0x75636f726f2d6d6eUL       /* "ucoro-mn" */
#define UCORO_MAGIC_RELEASED 0x75636f726f2d7278UL     /* "ucoro-rx" */
#else
#define UCORO_MAGIC_CONTINUATION 0x752d6363UL /* "u-cc" */
#define UCORO_MAGIC_COROUTINE 0x752d636fUL    /* "u-co" */
#define UCORO_MAGIC_LEADER 0x752d6d6eUL       /* "u-mn" */
#define UCORO_MAGIC_RELEASED 0x752d7278UL     /* "u-rx" */
#endif

static inline unsigned long ucoro__magic(const void *owner, unsigned long kind)
{
    return kind ^ (unsigned long)(uintptr_t)owner;
}

/* Reports a non-fatal misuse through the installed diagnostic handler. */
UCORO_HIDDEN void ucoro__diagnose(const char *function, const char *condition);

/*
 * Reserves a stack of *size bytes (0: the default) with a guard region
 * directly below it; writes the rounded size back and the lowest usable
 * address to *base. Returns 0, or -1 with errno EINVAL (size overflows when
 * rounded) or ENOMEM.
 */
UCORO_HIDDEN int ucoro__stack_alloc(size_t *size, char **base);

/* Gives back a stack from ucoro__stack_alloc (to a pool: it is reused). */
UCORO_HIDDEN void ucoro__stack_free(char *base, size_t size);

/* Async-signal-safe: 1 if addr lies in the guard region below some stack
 * (and *stack_size is set to that stack's size), else 0. */
UCORO_HIDDEN int ucoro__stack_guard_hit(const void *addr, size_t *stack_size);

/* How many bytes below the top of [base, base + size) are resident: the
 * depth of the deepest page ever touched (and not given back). */
UCORO_HIDDEN size_t ucoro__stack_touched(char *base, size_t size);

/* Installs the overflow-reporting signal handlers (once per process, unless
 * turned off). */
UCORO_HIDDEN void ucoro__overflow_install(void);
/* Gives the calling thread an alternate signal stack if it has none. */
UCORO_HIDDEN void ucoro__overflow_arm_thread(void);

#endif /* UCORO_INTERNAL_H */
