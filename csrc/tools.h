/*
 * Telling memory tools about stack switches: internal to the continuation
 * layer (and used by its inline switch in cc_switch.h).
 *
 * - Valgrind: slabs are NOACCESS to Memcheck when mapped; a stack is
 *   registered and made UNDEFINED when it is handed out, deregistered and
 *   made NOACCESS again when it is given back, so Valgrind sees the stacks
 *   in use, never whole slabs. Only if <valgrind/valgrind.h> is available
 *   at build time, and only when the process runs under Valgrind (checked
 *   when a slab is mapped): otherwise the hot path pays one load.
 * - AddressSanitizer and ThreadSanitizer: when the library is built with
 *   -fsanitize=address or -fsanitize=thread, every switch is announced with
 *   the fiber interface (__sanitizer_start/finish_switch_fiber,
 *   __tsan_switch_to_fiber). Those builds switch without the tail call (the
 *   resumed side must run the "finish" half), so they are slower. Under
 *   AddressSanitizer a stack is unpoisoned when handed out, its touched
 *   part poisoned when given back and unpoisoned again before its memory
 *   is unmapped (the next owner of the addresses is not blamed), and the
 *   fake stack of a coroutine released while suspended is freed with it.
 *
 * Everything here compiles to nothing in a plain build.
 *
 * SPDX-License-Identifier: MIT OR Apache-2.0
 */
#ifndef UCORO_TOOLS_H
#define UCORO_TOOLS_H

#include <stddef.h>

#include "ucoro_internal.h" /* first: it names continuation.h's private fields */
#include "continuation.h"

#if defined(__SANITIZE_ADDRESS__)
#define UCORO_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UCORO_ASAN 1
#endif
#endif

#if defined(__SANITIZE_THREAD__)
#define UCORO_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define UCORO_TSAN 1
#endif
#endif

#if defined(UCORO_ASAN) || defined(UCORO_TSAN)
#define UCORO_TOOL_SWITCH 1 /* announce switches; no tail-called switch */
#endif

#ifdef UCORO_ASAN
void __asan_unpoison_memory_region(void const volatile *addr, size_t size);
void __sanitizer_start_switch_fiber(void **fake_stack_save, const void *bottom, size_t size);
void __sanitizer_finish_switch_fiber(void *fake_stack_save, const void **bottom_old,
                                     size_t *size_old);
#endif
#ifdef UCORO_TSAN
void *__tsan_get_current_fiber(void);
void *__tsan_create_fiber(unsigned flags);
void __tsan_destroy_fiber(void *fiber);
void __tsan_switch_to_fiber(void *fiber, unsigned flags);
#endif

/* Bounds of the stack `to` runs on, for AddressSanitizer. */
static inline void ucoro__tool_bounds(const struct continuation *to, const void **bottom,
                                      size_t *size)
{
    if (to->stack) {
        *bottom = to->stack;
        *size = to->stack_size;
    } else {
        *bottom = to->tool_stack;
        *size = to->tool_stack_size;
    }
}

/* About to leave the running context for to; *fake receives ASan's fake
 * stack of the context being left (NULL: it is being left for good). */
#ifdef UCORO_ASAN
/* Marks the calling thread as between the two halves of an announced
 * switch (1), or not (0). Between them only an exit hook runs (cc_switch.h),
 * which may free stacks: AddressSanitizer refuses to begin another switch
 * there (tools.c). Out of line, so that no thread-local address is kept
 * across the switch. */
UCORO_HIDDEN void ucoro__tool_set_switching(int switching);
#endif

static inline void ucoro__tool_leave(const struct continuation *to, void **fake)
{
#ifdef UCORO_ASAN
    const void *bottom;
    size_t size;

    ucoro__tool_bounds(to, &bottom, &size);
    ucoro__tool_set_switching(1);
    __sanitizer_start_switch_fiber(fake, bottom, size);
#else
    (void)fake;
#endif
#ifdef UCORO_TSAN
    __tsan_switch_to_fiber(to->tool_fiber, 0);
#else
    (void)to;
#endif
}

/* Back in a context (or first in a new one: fake NULL). */
static inline void ucoro__tool_arrive(void *fake)
{
#ifdef UCORO_ASAN
    __sanitizer_finish_switch_fiber(fake, NULL, NULL);
    ucoro__tool_set_switching(0);
#else
    (void)fake;
#endif
}

#ifdef UCORO_ASAN
void __asan_poison_memory_region(void const volatile *addr, size_t size);
#endif

/* 1 when a memory tool that watches stacks is built in (AddressSanitizer);
 * Valgrind is found at run time, by ucoro__tool_slab_mapped. */
#ifdef UCORO_ASAN
#define UCORO_STACK_TOOL_BUILT_IN 1
#else
#define UCORO_STACK_TOOL_BUILT_IN 0
#endif

/* A slab of bytes at base was mapped (no stack in it is in use yet).
 * Returns non-zero if the process runs under Valgrind: then hand-outs and
 * give-backs must be announced too. */
UCORO_HIDDEN int ucoro__tool_slab_mapped(char *base, size_t bytes);

/* A stack is handed out: the tools see it as a stack in use, its contents
 * undefined. Clears what AddressSanitizer may still hold from frames
 * abandoned on it (a coroutine released while suspended). Only called
 * when a tool watches (the stack layer keeps track). */
UCORO_HIDDEN void ucoro__tool_stack_taken(struct ucoro_stack_record *stack);

/* A stack is given back: no longer a stack to the tools, and any access to
 * it is an error until it is handed out again. As above. */
UCORO_HIDDEN void ucoro__tool_stack_given_back(struct ucoro_stack_record *stack);

/* A free stack's memory is about to be unmapped: whatever the tools still
 * hold for its range (AddressSanitizer's poison, a fake stack of frames
 * abandoned on it) is dropped, so that it is not blamed on the next owner
 * of the addresses. Valgrind needs nothing: it sees the munmap. As above. */
UCORO_HIDDEN void ucoro__tool_stack_unmapped(struct ucoro_stack_record *stack);

#if defined(__has_include)
#if __has_include(<valgrind/memcheck.h>)
#include <valgrind/memcheck.h>
#define UCORO_MEMCHECK 1
#endif
#endif

/* The library deliberately reads [p, p + n), which may never have been
 * written (coroutine_init looks for a live coroutine's magic value): tell
 * Memcheck, so that the read is not reported. Nothing outside Valgrind. */
static inline void ucoro__tool_assume_defined(void *p, size_t n)
{
#ifdef UCORO_MEMCHECK
    (void)VALGRIND_MAKE_MEM_DEFINED(p, n);
#endif
    /* Unused where Valgrind does not support the target: its client
     * requests then expand to nothing. */
    (void)p;
    (void)n;
}

/* Around a system call that is meant to fail on memory the tools see as
 * inaccessible (a guard): no report for it. Nothing outside Valgrind. */
static inline void ucoro__tool_quiet_begin(void)
{
#ifdef UCORO_MEMCHECK
    VALGRIND_DISABLE_ERROR_REPORTING;
#endif
}

static inline void ucoro__tool_quiet_end(void)
{
#ifdef UCORO_MEMCHECK
    VALGRIND_ENABLE_ERROR_REPORTING;
#endif
}

/* A continuation got a stack (cc_init) or stands for a thread's own
 * context (adopt: stack NULL, bounds from the thread). */
UCORO_HIDDEN void ucoro__tool_context_created(struct continuation *cc);
/* The fiber of a continuation whose stack is being freed (after it was
 * left for good); NULL is ignored. */
static inline void ucoro__tool_fiber_destroyed(void *fiber)
{
#ifdef UCORO_TSAN
    if (fiber)
        __tsan_destroy_fiber(fiber);
#else
    (void)fiber;
#endif
}
#endif /* UCORO_TOOLS_H */
