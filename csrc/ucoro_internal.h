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
 * minimum so that a 1-byte stack is still usable (and every request to its
 * size class: see ucoro_stack_size_for in stack.c). */
#define UCORO_DEFAULT_STACK_SIZE ((size_t)16 << 20)
#define UCORO_MIN_STACK_SIZE ((size_t)16 << 10)

/*
 * The private state of struct continuation that the public header keeps as
 * an opaque reserve (continuation.h: ucoro_private). Defined before
 * continuation.h is included, this names it for the library's own sources;
 * include this header first. continuation.c checks that it fits.
 */
struct ucoro_stack_record;
#define UCORO_CONTINUATION_PRIVATE                                             \
    size_t reserved;   /* top bytes of the stack kept for the owner, not frames */ \
    const void *thread; /* a stackless (adopted) context: the thread it is */  \
    struct ucoro_stack_record *stack_record; /* what stack is freed through */ \
    /* used only in builds for AddressSanitizer / ThreadSanitizer; there in \
     * every build, so that the layout is the same */                          \
    const void *tool_stack; /* bounds of the stack this context runs on */     \
    size_t tool_stack_size;                                                    \
    void *tool_fiber; /* ThreadSanitizer's fiber for this context */
/* The same fields as a type of their own, for the size check. */
struct ucoro_continuation_private {
    UCORO_CONTINUATION_PRIVATE
};

/* The word of struct coroutine's reserve (coroutine.h: ucoro_private) that
 * holds the owner's pointer (ucoro_get_user_data, in embed.c). */
#define UCORO_USER_DATA(co) ((co)->ucoro_private[0])

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

/*
 * The library's few mutexes (locks.c), all process-wide and all on slow
 * paths: none is ever taken on a switch. fork() keeps them usable in the
 * child: pthread_atfork handlers (registered when the library is loaded) take
 * every one of them (in enum order) before the fork and release them in
 * both processes after it, so the child never inherits one held by a
 * thread that does not exist there, nor the state it guards half changed.
 * Never hold two at once, or take them in enum order.
 */
enum ucoro_lock {
    UCORO_LOCK_OVERFLOW,   /* overflow.c: installing the signal handlers */
    UCORO_LOCK_STACKS,     /* stack.c: the slabs and the size classes */
    UCORO_LOCK_DIAGNOSTIC, /* diagnostic.c: the diagnostic handler */
    UCORO_LOCK_COUNT
};
UCORO_HIDDEN void ucoro__lock(enum ucoro_lock which);
UCORO_HIDDEN void ucoro__unlock(enum ucoro_lock which);

/* Reports a non-fatal misuse through the installed diagnostic handler. */
UCORO_HIDDEN void ucoro__diagnose(const char *function, const char *condition);

/*
 * The stack layer (stack.c): where stacks come from.
 *
 * Each stack handed out is named by its record, which stays at one address
 * for as long as the stack exists (records are never freed: see stack.c).
 * The records are what a debugger or a core-file reader walks to list the
 * live stacks without running code: ucoro__stack_registry (stack.c) leads
 * to every slab and its records; a record whose owner is not NULL is a
 * stack in use, [base, base + size) with the guard region right below base.
 */
struct ucoro_stack_record {
    char *base;        /* lowest usable address; the guard lies below it */
    size_t size;       /* usable bytes: a size class (ucoro_stack_size_for) */
    /* Who runs on the stack, as the layer above names it (the coroutine
     * layer: its struct coroutine; a raw continuation: itself); NULL while
     * the stack is free. The overflow report prints it. Read by a signal
     * handler: written with ucoro__stack_set_owner only. */
    const void *owner;
    /* private to stack.c */
    uint32_t slab;      /* index of the slab that holds the stack */
    uint32_t next_free; /* the slab's list of free stacks */
    /* private to the memory-tool glue (tools.c) */
    unsigned tool_id;     /* Valgrind's id for the stack while it is in use */
    size_t tool_poisoned; /* AddressSanitizer: top bytes poisoned while free */
    void *tool_fake;      /* AddressSanitizer's fake stack while switched out */
};

/*
 * Hands out a stack of ucoro_stack_size_for(size) bytes (size 0: the
 * default) with a guard region directly below it; its owner is NULL until
 * set. Returns its record, or NULL with errno EINVAL (size overflows when
 * rounded) or ENOMEM (the system refused the address space, or the table
 * of slabs is full).
 */
UCORO_HIDDEN struct ucoro_stack_record *ucoro__stack_alloc(size_t size);

/* Gives a stack from ucoro__stack_alloc back (to a pool: it is reused, or
 * to the system). Cannot fail. */
UCORO_HIDDEN void ucoro__stack_free(struct ucoro_stack_record *stack);

/* Names who runs on the stack (see struct ucoro_stack_record). */
static inline void ucoro__stack_set_owner(struct ucoro_stack_record *stack, const void *owner)
{
    __atomic_store_n(&stack->owner, owner, __ATOMIC_RELAXED);
}

/* Async-signal-safe: 1 if addr lies in the guard region below a stack in
 * use (then *stack_size is that stack's size and *owner its owner), else 0.
 * Never faults, whatever other threads do to their stacks meanwhile. */
UCORO_HIDDEN int ucoro__stack_guard_hit(const void *addr, size_t *stack_size,
                                        const void **owner);

/* How many bytes below the top of [base, base + size) are resident: the
 * depth of the deepest page ever touched (and not given back). 0 if the
 * kernel cannot tell (mincore failed). */
UCORO_HIDDEN size_t ucoro__stack_touched(char *base, size_t size);

/* 1 if the guards below stacks are made with madvise(MADV_GUARD_INSTALL)
 * (no mapping of their own), 0 if with mprotect; probes once if no stack
 * was made yet. Keeps errno. */
UCORO_HIDDEN int ucoro__stack_guards_are_advice(void);

/* Installs the overflow-reporting signal handlers (once per process, unless
 * turned off). */
UCORO_HIDDEN void ucoro__overflow_install(void);
/* Gives the calling thread an alternate signal stack if it has none. */
UCORO_HIDDEN void ucoro__overflow_arm_thread(void);

#endif /* UCORO_INTERNAL_H */
