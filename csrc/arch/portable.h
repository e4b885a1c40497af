/*
 * The portable switches, for every architecture with ucontext:
 *
 * - default on architectures without an assembly switch, or forced with
 *   -DUCORO_SWITCH_SETJMP: _setjmp/_longjmp for every switch (callee-saved
 *   registers, stack and frame pointer; no system call). Floating-point
 *   control state and the signal mask are per thread. This is what
 *   spice-gtk and QEMU do.
 * - strict, with -DUCORO_SWITCH_UCONTEXT: swapcontext for every switch, so
 *   each coroutine keeps its own signal mask and floating-point environment,
 *   as in gtk-vnc. Costs two system calls (sigprocmask) per switch, and
 *   needs a libc that implements swapcontext (glibc; not musl).
 *
 * Either mode enters a new stack once through the arch header's entry stub
 * (ucoro__enter_stack), or, on architectures without one (mips64el, ...),
 * through getcontext + makecontext + setcontext. So the _setjmp mode needs
 * only _setjmp/_longjmp from the libc where a stub exists (musl works).
 *
 * A switched-out context is a pointer to a record in the frame of its own
 * pending ucoro__switch call; whoever resumes it writes the value (or an
 * exit hook) into the record first. struct continuation therefore does not
 * depend on the mode.
 *
 * Same interface as arch/interface.h; continuation.c defines
 * UCORO_ARCH_IMPLEMENTATION to emit the functions once.
 *
 * SPDX-License-Identifier: MIT OR Apache-2.0
 */
#ifndef UCORO_ARCH_PORTABLE_H
#define UCORO_ARCH_PORTABLE_H

#include <stddef.h>

#include "../ucoro_internal.h"

#ifdef UCORO_SWITCH_UCONTEXT
#define UCORO_SWITCH_NAME "swapcontext (strict)"
#else
#define UCORO_SWITCH_NAME "_setjmp/_longjmp"
#endif

/* Not instrumented by ThreadSanitizer: they run after the fiber switch
 * was announced, and an instrumented function would record its entry on
 * one fiber and its exit on another. */
#if defined(__clang__)
#define UCORO_SWITCH_FN UCORO_HIDDEN __attribute__((disable_sanitizer_instrumentation))
#elif defined(__GNUC__)
#define UCORO_SWITCH_FN UCORO_HIDDEN __attribute__((no_sanitize_thread))
#else
#define UCORO_SWITCH_FN UCORO_HIDDEN
#endif

UCORO_SWITCH_FN void *ucoro__switch(void **save, void *to, void *value);
/* No frame-pointer link in these modes (arch/interface.h). */
#define UCORO_SWITCH_IN(save, to, value, fp_link) ucoro__switch(save, to, value)
/* One switch serves both directions here (see arch/x86_64.h). */
#define ucoro__switch_back ucoro__switch
UCORO_SWITCH_FN __attribute__((noreturn)) void ucoro__switch_exit(void *to,
                                                                  void *(*hook)(void *),
                                                                  void *arg);
/* Saves the running context into *save and starts ucoro__cc_entry(start_arg)
 * on [stack, stack + size); returns like ucoro__switch. */
UCORO_SWITCH_FN void *ucoro__switch_start(void **save, char *stack, size_t size,
                                          void *start_arg, void *value);

#ifdef UCORO_ARCH_IMPLEMENTATION

#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#if defined(UCORO_SWITCH_UCONTEXT) || !defined(UCORO_ARCH_ENTER_STACK)
#include <ucontext.h>

/* The ucontext calls fail only where the libc does not implement them. */
__attribute__((noreturn)) static void arch_fail(const char *what)
{
    perror(what);
    abort();
}
#endif

/* What a switched-out context waits for: a value, or a hook to run. The
 * resumer writes it, so it is read through volatile after the switch. */
struct arch_handoff {
    void *value;
    void *(*hook)(void *);
    void *hook_arg;
};

static void *arch_take(volatile struct arch_handoff *h)
{
    void *(*hook)(void *) = h->hook;

    return hook ? hook(h->hook_arg) : h->value;
}

static void arch_give(volatile struct arch_handoff *h, void *value,
                      void *(*hook)(void *), void *hook_arg)
{
    h->value = value;
    h->hook = hook;
    h->hook_arg = hook_arg;
}

#ifdef UCORO_ARCH_ENTER_STACK
/* Starts ucoro__cc_entry(start_arg) on [stack, stack + size) through the
 * arch header's entry stub: no makecontext (musl has none). */
__attribute__((noreturn)) static void arch_enter(char *stack, size_t size, void *start_arg)
{
    ucoro__enter_stack(start_arg, (void *)(((uintptr_t)stack + size) & ~(uintptr_t)15));
}
#else
/* makecontext passes int arguments only: the pointer travels as halves. */
static void arch_trampoline(unsigned int hi, unsigned int lo)
{
    ucoro__cc_entry((void *)(uintptr_t)(((uint64_t)hi << 32) | lo));
}

/* Starts ucoro__cc_entry(start_arg) on [stack, stack + size) with
 * makecontext, where no entry stub exists; aborts if the libc has none
 * that works (getcontext fails). */
__attribute__((noreturn)) static void arch_enter(char *stack, size_t size, void *start_arg)
{
    uint64_t p = (uint64_t)(uintptr_t)start_arg;
    ucontext_t uc;

    if (getcontext(&uc) != 0)
        arch_fail("ucoro: getcontext");
    uc.uc_stack.ss_sp = stack;
    uc.uc_stack.ss_size = size;
    uc.uc_link = NULL;
    makecontext(&uc, (void (*)(void))arch_trampoline, 2, (unsigned int)(p >> 32),
                (unsigned int)p);
    setcontext(&uc);
    arch_fail("ucoro: setcontext");
}
#endif

#ifdef UCORO_SWITCH_UCONTEXT

struct arch_record {
    ucontext_t uc;
    struct arch_handoff handoff;
};

#if defined(__SANITIZE_ADDRESS__)
/* AddressSanitizer's swapcontext interceptor warns that it "doesn't fully
 * support" it; our switches are announced through the fiber interface
 * instead, so bypass the interceptor: getcontext + setcontext is the same
 * switch (signal mask and floating-point state included), one more system
 * call. */
static int arch_swapcontext(ucontext_t *save, const ucontext_t *to)
{
    volatile int resumed = 0;

    if (getcontext(save) != 0)
        return -1;
    if (!resumed) {
        resumed = 1;
        setcontext(to);
        return -1;
    }
    return 0;
}
#define swapcontext arch_swapcontext
#endif

void *ucoro__switch(void **save, void *to, void *value)
{
    struct arch_record here;
    struct arch_record *target = to;

    *save = &here;
    arch_give(&target->handoff, value, NULL, NULL);
    if (swapcontext(&here.uc, &target->uc) != 0)
        arch_fail("ucoro: swapcontext");
    return arch_take(&here.handoff);
}

void *ucoro__switch_start(void **save, char *stack, size_t size, void *start_arg,
                          void *value)
{
    struct arch_record here;
    volatile int entered = 0; /* getcontext returns again on resumption */

    (void)value; /* the coroutine layer passes the first value in the struct */
    *save = &here;
    if (getcontext(&here.uc) != 0)
        arch_fail("ucoro: getcontext");
    if (!entered) {
        entered = 1;
        arch_enter(stack, size, start_arg);
    }
    return arch_take(&here.handoff);
}

void ucoro__switch_exit(void *to, void *(*hook)(void *), void *arg)
{
    struct arch_record *target = to;

    arch_give(&target->handoff, NULL, hook, arg);
    setcontext(&target->uc);
    arch_fail("ucoro: setcontext");
}

#else /* _setjmp/_longjmp */

struct arch_record {
    jmp_buf jb;
    struct arch_handoff handoff;
};

void *ucoro__switch(void **save, void *to, void *value)
{
    struct arch_record here;
    struct arch_record *target = to;

    *save = &here;
    if (_setjmp(here.jb) == 0) {
        arch_give(&target->handoff, value, NULL, NULL);
        _longjmp(target->jb, 1);
    }
    return arch_take(&here.handoff);
}

void *ucoro__switch_start(void **save, char *stack, size_t size, void *start_arg,
                          void *value)
{
    struct arch_record here;

    (void)value; /* the coroutine layer passes the first value in the struct */
    *save = &here;
    if (_setjmp(here.jb) == 0)
        arch_enter(stack, size, start_arg);
    return arch_take(&here.handoff);
}

void ucoro__switch_exit(void *to, void *(*hook)(void *), void *arg)
{
    struct arch_record *target = to;

    arch_give(&target->handoff, NULL, hook, arg);
    _longjmp(target->jb, 1);
}

#endif /* modes */
#endif /* UCORO_ARCH_IMPLEMENTATION */

#endif /* UCORO_ARCH_PORTABLE_H */
