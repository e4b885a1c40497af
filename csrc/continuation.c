/*
 * The continuation layer: owns stacks and switching.
 *
 * A new stack is entered once through ucontext (makecontext + setcontext);
 * every switch after that is _setjmp/_longjmp, which saves only the
 * callee-saved registers, stack and frame pointers and makes no system call
 * (swapcontext saves and restores the signal mask: one system call each
 * way). The jmp_buf of a switched-out context lives in the frame of its own
 * pending cc_swap, so struct continuation only keeps a pointer to it.
 *
 * Floating-point control state (MXCSR, the x87 control word) is per thread
 * in this mode: _setjmp does not save it.
 *
 * SPDX-License-Identifier: MIT OR Apache-2.0
 */

/* glibc's checked longjmp (_FORTIFY_SOURCE) aborts when the target frame is
 * on another stack, which is the whole point here. */
#ifdef _FORTIFY_SOURCE
#undef _FORTIFY_SOURCE
#endif
#define _GNU_SOURCE
#include <errno.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <ucontext.h>

#include "continuation.h"
#include "ucoro_internal.h"

/* Values a switched-out cc_swap's _setjmp returns with. */
enum { RESUMED = 1, TARGET_EXITED = 2 };

static unsigned long live_magic(const struct continuation *cc)
{
    return ucoro__magic(cc, UCORO_MAGIC_CONTINUATION);
}

int cc_init(struct continuation *cc)
{
    size_t size;

    if (!cc) {
        ucoro__diagnose("cc_init", "cc != NULL");
        errno = EINVAL;
        return -1;
    }
    /* Never read what was there: the memory may never have been written. */
    cc->stack = NULL;
    cc->exited = 0;
    cc->return_to = NULL;
    cc->ctx = NULL;
    cc->magic = 0;
    cc->started = 0;
    if (!cc->entry) {
        ucoro__diagnose("cc_init", "cc->entry != NULL");
        errno = EINVAL;
        return -1;
    }
    size = cc->stack_size;
    if (ucoro__stack_alloc(&size, &cc->stack) != 0)
        return -1;
    cc->stack_size = size;
    cc->magic = live_magic(cc);
    return 0;
}

int cc_release(struct continuation *cc)
{
    char *stack;
    int ret;

    if (!cc || cc->magic != live_magic(cc) || !cc->stack)
        return 0;
    /* Detach the stack before the callback runs, so that a callback that
     * frees the struct itself (and returns >= 0) is not followed by a write
     * into freed memory. */
    stack = cc->stack;
    cc->stack = NULL;
    if (cc->release) {
        size_t size = cc->stack_size;

        ret = cc->release(cc);
        if (ret < 0) {
            cc->stack = stack; /* the owner keeps it: nothing is freed */
            return ret;
        }
        ucoro__stack_free(stack, size);
        return 0;
    }
    ucoro__stack_free(stack, cc->stack_size);
    return 0;
}

/* Runs on the new stack. makecontext passes int arguments only, so the
 * pointer arrives as two 32-bit halves. */
static void cc_trampoline(unsigned int hi, unsigned int lo)
{
    struct continuation *cc =
        (struct continuation *)(uintptr_t)(((uint64_t)hi << 32) | lo);
    struct continuation *back;

    cc->entry(cc);
    cc->exited = 1;
    back = cc->return_to;
    if (!back || !back->ctx) {
        /* Only reachable if an owner overwrote return_to with garbage. */
        fputs("ucoro: continuation exited with nowhere to return\n", stderr);
        abort();
    }
    _longjmp(*(jmp_buf *)back->ctx, TARGET_EXITED);
}

/* First switch onto a fresh stack. The ucontext is only needed for the
 * jump, so it lives in this (caller-side) frame, not in the struct. */
__attribute__((noinline, noreturn)) static void cc_enter(struct continuation *to)
{
    ucontext_t uc;
    uint64_t p = (uint64_t)(uintptr_t)to;

    if (getcontext(&uc) != 0) {
        perror("ucoro: getcontext");
        abort();
    }
    uc.uc_stack.ss_sp = to->stack;
    uc.uc_stack.ss_size = to->stack_size;
    uc.uc_link = NULL;
    makecontext(&uc, (void (*)(void))cc_trampoline, 2, (unsigned int)(p >> 32),
                (unsigned int)p);
    setcontext(&uc);
    perror("ucoro: setcontext"); /* setcontext returns only on failure */
    abort();
}

int cc_swap(struct continuation *from, struct continuation *to)
{
    jmp_buf here;
    int r;

    if (!from || !to) {
        ucoro__diagnose("cc_swap", from ? "to != NULL" : "from != NULL");
        errno = EINVAL;
        return -1;
    }
    if (to->magic != live_magic(to)) {
        ucoro__diagnose("cc_swap", "to is initialised");
        errno = EINVAL;
        return -1;
    }
    if (to->exited) {
        ucoro__diagnose("cc_swap", "!to->exited");
        errno = EINVAL;
        return -1;
    }
    if (to == from || (to->started && !to->ctx)) {
        /* Only a switched-out continuation has a context to resume. */
        ucoro__diagnose("cc_swap", "to is not running");
        errno = EINVAL;
        return -1;
    }
    if (from->magic != live_magic(from)) {
        /* A never-initialised from stands for the running context (a
         * thread's main one): make it a valid target with no stack. */
        from->stack = NULL;
        from->stack_size = 0;
        from->entry = NULL;
        from->release = NULL;
        from->exited = 0;
        from->return_to = NULL;
        from->started = 1;
        from->magic = live_magic(from);
    }

    from->ctx = &here;
    to->return_to = from;
    r = _setjmp(here);
    if (r == 0) {
        if (!to->started) {
            to->started = 1;
            cc_enter(to);
        }
        _longjmp(*(jmp_buf *)to->ctx, RESUMED);
    }
    /* Back in from, possibly on another thread. The saved context is spent. */
    from->ctx = NULL;
    return r == TARGET_EXITED;
}
