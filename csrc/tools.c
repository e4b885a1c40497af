/*
 * The out-of-line part of the memory-tool annotations (see tools.h).
 *
 * SPDX-License-Identifier: MIT OR Apache-2.0
 */
#define _GNU_SOURCE
#include <pthread.h>

#include "tools.h"

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define UCORO_VALGRIND 1
#endif
#endif

void ucoro__tool_context_created(struct continuation *cc)
{
    cc->tool_stack = NULL;
    cc->tool_stack_size = 0;
    cc->tool_fiber = NULL;
#ifdef UCORO_TOOL_SWITCH
    if (!cc->stack) {
        /* A thread's own context: its bounds are the thread's stack. */
        pthread_attr_t attr;
        void *addr;
        size_t size;

        if (pthread_getattr_np(pthread_self(), &attr) == 0) {
            if (pthread_attr_getstack(&attr, &addr, &size) == 0) {
                cc->tool_stack = addr;
                cc->tool_stack_size = size;
            }
            pthread_attr_destroy(&attr);
        }
#ifdef UCORO_TSAN
        cc->tool_fiber = __tsan_get_current_fiber();
#endif
    } else {
#ifdef UCORO_TSAN
        cc->tool_fiber = __tsan_create_fiber(0);
#endif
    }
#endif
}

void ucoro__tool_stack_carved(char *base, size_t size)
{
#ifdef UCORO_VALGRIND
    /* Stacks are reused, never unmapped: registered once, for good. */
    (void)VALGRIND_STACK_REGISTER(base, base + size);
#endif
    /* Unused where Valgrind does not support the target (see tools.h). */
    (void)base;
    (void)size;
}
