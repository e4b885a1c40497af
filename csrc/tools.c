/*
 * The out-of-line part of the memory-tool annotations (see tools.h): what
 * the tools are told when a stack is handed out, given back, or unmapped.
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
    stack->tool_poisoned = 0;
#endif
    (void)stack;
}

#ifdef UCORO_ASAN
static __thread UCORO_TLS int thread_switching;

__attribute__((noinline)) void ucoro__tool_set_switching(int switching)
{
    int *flag = &thread_switching;

    /* The empty asm hides where flag comes from: even inlined (link-time
     * optimisation), its address is not one computed before a switch. */
    __asm__ volatile("" : "+r"(flag));
    *flag = switching;
}

__attribute__((noinline)) static int switching_now(void)
{
    int *flag = &thread_switching;

    __asm__ volatile("" : "+r"(flag));
    return *flag;
}

/*
 * Frees the fake stack (detect_stack_use_after_return) of a coroutine that
 * was released while suspended: AddressSanitizer frees a fiber's fake stack
 * only when the fiber itself is left for good, so the running context
 * pretends to switch into the dead fiber, to leave it for good, and to come
 * back. No stack is switched, and nothing instrumented may run in between
 * (hence no_sanitize_address: this function's locals are plain ones).
 */
__attribute__((no_sanitize_address, noinline)) static void
drop_fake_stack(struct ucoro_stack_record *stack)
{
    void *mine = NULL;
    const void *bottom = NULL;
    size_t size = 0;

    /* Inside an exit hook (a release callback that releases another
     * coroutine) no switch may begin: the fake stack is left to leak. */
    if (switching_now())
        return;
    __sanitizer_start_switch_fiber(&mine, stack->base, stack->size);
    __sanitizer_finish_switch_fiber(stack->tool_fake, &bottom, &size);
    __sanitizer_start_switch_fiber(NULL, bottom, size);
    __sanitizer_finish_switch_fiber(mine, NULL, NULL);
}
#endif

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

        if (stack->tool_fake) {
            drop_fake_stack(stack);
            stack->tool_fake = NULL;
        }
        __asan_poison_memory_region(stack->base + stack->size - touched, touched);
        stack->tool_poisoned = touched;
    }
#endif
    (void)stack;
}

void ucoro__tool_stack_unmapped(struct ucoro_stack_record *stack)
{
#ifdef UCORO_ASAN
    /* Only what was poisoned: unpoisoning a whole stack writes an eighth
     * of its size in shadow memory. */
    if (stack->tool_poisoned)
        __asan_unpoison_memory_region(stack->base + stack->size - stack->tool_poisoned,
                                      stack->tool_poisoned);
    stack->tool_poisoned = 0;
#endif
    (void)stack;
}
