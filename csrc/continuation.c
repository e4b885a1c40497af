/*
 * The continuation layer: owns stacks and switching.
 *
 * The switch itself comes from csrc/arch/ (chosen in cc_switch.h):
 * hand-written assembly by default on x86_64, aarch64, i386, armhf,
 * ppc64le, s390x and riscv64, _setjmp/_longjmp elsewhere or with
 * -DUCORO_SWITCH_SETJMP, swapcontext on every switch with
 * -DUCORO_SWITCH_UCONTEXT (strict mode: per-coroutine signal mask and
 * floating-point environment). Each provides ucoro__switch/switch_exit and
 * a way onto a new stack over an opaque saved context, so this file and
 * the coroutine layer do not change with the mode.
 *
 * SPDX-License-Identifier: MIT OR Apache-2.0
 */

/* glibc's checked longjmp (_FORTIFY_SOURCE) aborts when the target frame is
 * on another stack, which is the whole point of the _setjmp mode. */
#ifdef _FORTIFY_SOURCE
#undef _FORTIFY_SOURCE
#endif
#define _GNU_SOURCE
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define UCORO_ARCH_IMPLEMENTATION /* emit the switch once, here */
#include "cc_switch.h"
#include "continuation.h"
#include "ucoro_internal.h"

#if defined(UCORO_SWITCH_ASM) && !defined(__arm__)
#include <unwind.h>

/*
 * The start stubs' personality routine (arch/interface.h): the search
 * phase of an exception ends at a coroutine's first frame, which makes the
 * thrower give up (C++: std::terminate, as when that frame was the
 * outermost); a forced unwind, a thread's exit or cancellation, goes on
 * into the frames of the thread that runs the coroutine. Arm EHABI has its
 * own (arch/arm.h).
 */
UCORO_HIDDEN __attribute__((used)) _Unwind_Reason_Code
ucoro__stub_personality(int version, _Unwind_Action actions, _Unwind_Exception_Class cls,
                        struct _Unwind_Exception *exception, struct _Unwind_Context *context)
{
    (void)version;
    (void)cls;
    (void)exception;
    (void)context;
    return actions & _UA_SEARCH_PHASE ? _URC_FATAL_PHASE1_ERROR : _URC_CONTINUE_UNWIND;
}
#endif

#ifdef UCORO_SWITCH_ASM
/* The start stubs' CFI reads these fields (arch/interface.h). */
_Static_assert(offsetof(struct continuation, return_to) == UCORO_CC_RETURN_TO_OFFSET,
               "UCORO_CC_RETURN_TO_OFFSET");
_Static_assert(offsetof(struct continuation, ctx) == UCORO_CC_CTX_OFFSET, "UCORO_CC_CTX_OFFSET");
#endif

/* What a cc_swap caller is resumed with (values of the raw cc API). */
#define CC_RESUMED ((void *)1)
#define CC_TARGET_EXITED ((void *)2)

static unsigned long live_magic(const struct continuation *cc)
{
    return ucoro__magic(cc, UCORO_MAGIC_CONTINUATION);
}

/* Names the calling thread: the address of a thread-local, distinct for
 * every live thread. Stackless contexts (a thread's own) record it, so that
 * no other thread switches onto that thread's stack. */
static __thread UCORO_TLS char thread_token;

/* Where switches into a thread's own context write their frame-pointer
 * link, unread (see set_up). */
static __thread UCORO_TLS void *thread_fp_sink;

static const void *this_thread_token(void)
{
    return &thread_token;
}

int cc_init(struct continuation *cc)
{
    struct ucoro_stack_record *stack;

    if (!cc) {
        ucoro__diagnose("cc_init", "cc != NULL");
        errno = EINVAL;
        return -1;
    }
    /* Never read what was there: the memory may never have been written. */
    cc->stack = NULL;
    cc->magic = 0;
    if (!cc->entry) {
        ucoro__diagnose("cc_init", "cc->entry != NULL");
        errno = EINVAL;
        return -1;
    }
    stack = ucoro__stack_alloc(cc->stack_size);
    if (!stack)
        return -1;
    ucoro__cc_init_on(cc, stack, 0);
    /* A raw continuation is its stack's owner; the coroutine layer names
     * its struct coroutine instead. */
    ucoro__stack_set_owner(stack, cc);
    return 0;
}

/* Every private field, for a continuation on stack (or none: a thread's
 * own context, already started). */
static void set_up(struct continuation *cc, struct ucoro_stack_record *stack, size_t reserved,
                   int started)
{
    cc->stack = stack ? stack->base : NULL;
    cc->stack_size = stack ? stack->size : 0;
    cc->stack_record = stack;
    cc->reserved = reserved;
    cc->exited = 0;
    cc->return_to = NULL;
    cc->ctx = NULL;
    cc->started = started;
    cc->thread = stack ? NULL : this_thread_token();
    /* A thread's own context has no fake record to link (nothing walks
     * past its first frame into a resumer); a switch into it writes its
     * link to a per-thread slot. A stack's link is set at its start. */
    cc->fp_link = stack ? NULL : &thread_fp_sink;
    ucoro__tool_context_created(cc);
    cc->magic = live_magic(cc);
}

void ucoro__cc_init_on(struct continuation *cc, struct ucoro_stack_record *stack,
                       size_t reserved)
{
    ucoro__overflow_install();
    set_up(cc, stack, reserved, 0);
}

int cc_release(struct continuation *cc)
{
    struct ucoro_stack_record *record;
    char *stack;
    void *fiber;
    int ret;

    if (!cc || cc->magic != live_magic(cc) || !cc->stack)
        return 0;
    /* Copy out and detach the stack before the callback runs, so that a
     * callback that frees the struct itself (and returns >= 0) is not
     * followed by any access to it. */
    stack = cc->stack;
    record = cc->stack_record;
    fiber = cc->tool_fiber;
    cc->stack = NULL;
    cc->magic = 0; /* no longer a switch target: nothing to start or resume */
    if (cc->release) {
        ret = cc->release(cc);
        if (ret < 0) {
            /* The owner keeps it: nothing is freed. */
            cc->stack = stack;
            cc->magic = live_magic(cc);
            return ret;
        }
    }
    ucoro__tool_fiber_destroyed(fiber);
    ucoro__stack_free(record);
    return 0;
}

static void *report_exit(void *unused)
{
    (void)unused;
    return CC_TARGET_EXITED;
}

void ucoro__cc_entry(void *arg)
{
    struct continuation *cc = arg;
    struct continuation *back;

    ucoro__tool_arrive(NULL);
    cc->started = 1; /* already, unless a prepared context was switched into */
    cc->entry(cc);
    /* A raw continuation's entry returned (the coroutine layer's never
     * does: it leaves through ucoro__cc_exit itself). */
    back = cc->return_to;
    if (!back || !back->ctx) {
        /* Only reachable if an owner overwrote return_to with garbage. */
        fputs("ucoro: continuation exited with nowhere to return\n", stderr);
        abort();
    }
    ucoro__cc_exit(cc, back, report_exit, NULL);
}

int cc_swap(struct continuation *from, struct continuation *to)
{
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
    if (!to->stack && to->thread != this_thread_token()) {
        /* Another thread's own context runs on that thread's stack. */
        ucoro__diagnose("cc_swap", "to is not another thread's context");
        errno = EINVAL;
        return -1;
    }
    if (from->magic != live_magic(from))
        ucoro__cc_adopt(from);
    ucoro__cc_swapping_back(from, to);
    return ucoro__cc_transfer(from, to, CC_RESUMED) == CC_TARGET_EXITED;
}

void ucoro__cc_adopt(struct continuation *cc)
{
    cc->entry = NULL;
    cc->release = NULL;
    set_up(cc, NULL, 0, 1);
    /* A thread that runs coroutines needs an alternate signal stack for
     * the overflow report; this is the first thing each such thread does. */
    ucoro__overflow_arm_thread();
}

#if defined(UCORO_SWITCH_ASM) && !defined(UCORO_TOOL_SWITCH)
int ucoro__cc_prepare(struct continuation *to)
{
    to->ctx = ucoro__cc_crate_context(to); /* started is set once it runs */
    return 1;
}
#else
int ucoro__cc_prepare(struct continuation *to)
{
    (void)to;
    return 0;
}
#endif

void *ucoro__cc_first(struct continuation *from, struct continuation *to, void *value)
{
#ifdef UCORO_SWITCH_ASM
    void *ctx;
#endif

    to->started = 1;
#ifdef UCORO_SWITCH_ASM
    ctx = ucoro__cc_first_context(to); /* before to->fp_link is read: it sets it */
    return UCORO_SWITCH_IN(&from->ctx, ctx, value, to->fp_link);
#else
    return ucoro__switch_start(&from->ctx, to->stack, to->stack_size - to->reserved, to, value);
#endif
}

#ifdef UCORO_TOOL_SWITCH
void *ucoro__cc_transfer_announced(struct continuation *from, struct continuation *to,
                                   void *value)
{
    void *ctx = to->ctx;
    void *fake = NULL;
    /* AddressSanitizer's fake stack of from while from is switched out: in
     * its stack record, where a release of from while it is suspended finds
     * it and frees it (tools.c); a thread's own context is never freed. */
    void **fake_slot = from->stack_record ? &from->stack_record->tool_fake : &fake;
    void *r;

    /* Announce the switch, then switch with no instrumented call in
     * between: ThreadSanitizer keeps a call stack per fiber, and a function
     * entered after the announcement would be recorded on the other one. */
    if (!to->started) {
        to->started = 1;
#ifdef UCORO_SWITCH_ASM
        ctx = ucoro__cc_first_context(to);
        ucoro__tool_leave(to, fake_slot);
        r = UCORO_SWITCH_IN(&from->ctx, ctx, value, to->fp_link);
#else
        ucoro__tool_leave(to, fake_slot);
        r = ucoro__switch_start(&from->ctx, to->stack, to->stack_size - to->reserved, to,
                                value);
#endif
    } else {
        to->ctx = NULL;
        ucoro__tool_leave(to, fake_slot);
        r = UCORO_SWITCH_IN(&from->ctx, ctx, value, to->fp_link);
    }
    ucoro__tool_arrive(*fake_slot);
    *fake_slot = NULL; /* in use again: from's own exit frees it */
    return r;
}
#endif

const char *ucoro_switch_mode(void)
{
    return UCORO_SWITCH_NAME;
}
