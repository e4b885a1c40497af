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

int ucoro__tool_slab_mapped(char *base, size_t bytes)
{
#ifdef UCORO_VALGRIND
    if (RUNNING_ON_VALGRIND) {
#ifdef UCORO_MEMCHECK
        /* Memcheck takes a fresh mapping as defined: none of it is, until
         * a stack in it is handed out. */
        (void)VALGRIND_MAKE_MEM_NOACCESS(base, bytes);
#endif
        return 1;
    }
#endif
    (void)base;
    (void)bytes;
    return 0;
}

void ucoro__tool_stack_taken(struct ucoro_stack_record *stack)
{
#ifdef UCORO_VALGRIND
    if (RUNNING_ON_VALGRIND) {
        stack->tool_id = VALGRIND_STACK_REGISTER(stack->base, stack->base + stack->size);
#ifdef UCORO_MEMCHECK
        (void)VALGRIND_MAKE_MEM_UNDEFINED(stack->base, stack->size);
#endif
    }
#endif
#ifdef UCORO_ASAN
    __asan_unpoison_memory_region(stack->base, stack->size);
#endif
    (void)stack;
}

void ucoro__tool_stack_given_back(struct ucoro_stack_record *stack)
{
#ifdef UCORO_VALGRIND
    if (RUNNING_ON_VALGRIND) {
        VALGRIND_STACK_DEREGISTER(stack->tool_id);
#ifdef UCORO_MEMCHECK
        (void)VALGRIND_MAKE_MEM_NOACCESS(stack->base, stack->size);
#endif
    }
#endif
#ifdef UCORO_ASAN
    {
        /* Only the touched part: poisoning all of a 16 MiB stack would
         * write (and keep resident) 2 MiB of shadow per free stack. */
        size_t touched = ucoro__stack_touched(stack->base, stack->size);

        __asan_poison_memory_region(stack->base + stack->size - touched, touched);
    }
#endif
    (void)stack;
}
