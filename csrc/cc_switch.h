/*
 * The continuation layer's switch, for its own use and the coroutine
 * layer's: internal, not installed.
 *
 * ucoro__cc_transfer is inline so that the coroutine layer can tail-call
 * the switch: a resumed coroutine_yield or coroutine_yieldto then returns
 * straight into user code (see arch/x86_64.h), with no mispredicted return
 * per call level. The continuation layer still owns the mechanism; this
 * header is its interface to the layer above.
 *
 * Mode selection (one per build):
 * - default: assembly where csrc/arch/ has a switch for the target
 *   (x86_64, aarch64, i386, armhf, ppc64le ELFv2, s390x, riscv64 lp64d).
 * - -DUCORO_SWITCH_SETJMP, or any other architecture: _setjmp/_longjmp
 *   (arch/portable.h).
 * - -DUCORO_SWITCH_UCONTEXT: swapcontext on every switch (strict mode).
 * Each arch header also has an entry stub, with which the portable modes
 * start a stack without makecontext (armel gets only the stub).
 *
 * SPDX-License-Identifier: MIT OR Apache-2.0
 */
#ifndef UCORO_CC_SWITCH_H
#define UCORO_CC_SWITCH_H

#include "ucoro_internal.h" /* first: it names continuation.h's private fields */
#include "continuation.h"
#include "tools.h"

/* First code of every new stack (called by the arch start path with the
 * continuation): runs its entry; never returns. Called from assembly, so
 * link-time optimisation must keep it, under this name. */
UCORO_HIDDEN __attribute__((noreturn, used, externally_visible)) void ucoro__cc_entry(void *cc);

#if !defined(UCORO_SWITCH_UCONTEXT) && !defined(UCORO_SWITCH_SETJMP)
#define UCORO_SWITCH_ASM_WANTED 1 /* an arch header defines UCORO_SWITCH_ASM */
#endif

#if defined(__x86_64__)
#include "arch/x86_64.h"
#elif defined(__aarch64__)
#include "arch/aarch64.h"
#elif defined(__i386__)
#include "arch/i386.h"
#elif defined(__arm__)
#include "arch/arm.h"
#elif defined(__powerpc64__) && defined(_CALL_ELF) && _CALL_ELF == 2
#include "arch/ppc64.h"
#elif defined(__s390x__)
#include "arch/s390x.h"
#elif defined(__riscv) && __riscv_xlen == 64 && defined(__riscv_float_abi_double)
#include "arch/riscv64.h"
#endif
#ifndef UCORO_SWITCH_ASM
#include "arch/portable.h"
#endif

/* First switch into to (not started yet): out of line, once per stack. */
UCORO_HIDDEN void *ucoro__cc_first(struct continuation *from, struct continuation *to,
                                   void *value);

/* Makes to's first context now, as ucoro__cc_first would, so that any
 * switch in the same layout can start it (the Rust crate's inlined one,
 * whose coroutines start in ucoro__cc_crate_context's stub); to counts as
 * started once its entry runs.
 * Returns 1, or 0 (nothing done) where this build's switch starts stacks
 * otherwise (the portable modes) or must announce it (sanitizers). */
UCORO_HIDDEN int ucoro__cc_prepare(struct continuation *to);

#ifdef UCORO_SWITCH_ASM
/* The context the first switch into to resumes: the start stub's frame at
 * the top of its stack (and its frame-pointer link slot, where kept). */
static inline void *ucoro__cc_first_context(struct continuation *to)
{
    return ucoro_arch_prepare(to->stack, to->stack_size - to->reserved, to, &to->fp_link);
}

/* The same for the Rust crate's inlined switch (ucoro__cc_prepare,
 * ucoro__cc_rearm): started by ucoro__crate_start_stub where the
 * architecture has it (arch/interface.h), else as any other. */
static inline void *ucoro__cc_crate_context(struct continuation *to)
{
#ifdef UCORO_ARCH_CRATE_START
    return ucoro_arch_prepare_stub(to->stack, to->stack_size - to->reserved, to, &to->fp_link,
                                   ucoro__crate_start_stub);
#else
    return ucoro__cc_first_context(to);
#endif
}
#endif

/*
 * Makes cc, whose entry has returned (it exited) or never ran, a fresh
 * continuation on the same stack, ready to start its entry again: the
 * per-run state reset, and the first context prepared as ucoro__cc_prepare
 * would (elsewhere the first switch starts it). The stack, its record (and
 * the owner named there), the reserve and the magic stay. No check: cc has
 * a stack and is neither running nor switched out with live frames.
 * Returns 1, or 0 with nothing done in the sanitizer builds, whose tools
 * hold state for a stack's frames (AddressSanitizer's poison and fake
 * stacks, ThreadSanitizer's fiber) that only a fresh stack resets: free
 * it and make a new one there. Inline: the Rust crate's cache of finished
 * coroutines calls it once per coroutine it reuses.
 */
static inline int ucoro__cc_rearm(struct continuation *cc)
{
#ifdef UCORO_TOOL_SWITCH
    (void)cc;
    return 0;
#else
    cc->exited = 0;
    cc->started = 0; /* set once it runs (ucoro__cc_entry, ucoro__crate_entry) */
    cc->return_to = NULL;
#ifdef UCORO_SWITCH_ASM
    cc->ctx = ucoro__cc_crate_context(cc);
#else
    cc->ctx = NULL;
    cc->fp_link = NULL;
#endif
    return 1;
#endif
}

/* Sets cc up on a stack already allocated by ucoro__stack_alloc, whose top
 * `reserved` bytes belong to the owner (frames start below them). */
UCORO_HIDDEN void ucoro__cc_init_on(struct continuation *cc, struct ucoro_stack_record *stack,
                                    size_t reserved);

/* Makes cc a valid switch target that stands for the running context (a
 * thread's main one): no stack, started. */
UCORO_HIDDEN void ucoro__cc_adopt(struct continuation *cc);

/* Whether cc is running now, on any thread: it has started and its context
 * is not saved (a switch consumes the target's saved context). */
static inline int ucoro__cc_is_running(const struct continuation *cc)
{
    return cc->started && !cc->ctx && !cc->exited;
}

/*
 * Switches from the running context (saved into from) to to, without any
 * check: to must be initialised, not exited, switched out, and not from.
 * to's pending switch returns value (a fresh to starts its entry instead).
 * Returns what is handed over when something resumes from, perhaps on
 * another thread. Meant to be tail-called.
 */
#ifdef UCORO_TOOL_SWITCH
/* The switch, announced to the sanitizers: out of line, no tail call
 * (return_to is the callers' to set). */
UCORO_HIDDEN void *ucoro__cc_transfer_announced(struct continuation *from,
                                                struct continuation *to, void *value);
#endif

static inline __attribute__((always_inline)) void *
ucoro__cc_transfer(struct continuation *from, struct continuation *to, void *value)
{
    /* Also the link that backtraces in to follow (arch/interface.h). */
    to->return_to = from;
#ifdef UCORO_TOOL_SWITCH
    return ucoro__cc_transfer_announced(from, to, value);
#else
    void *ctx = to->ctx;

    if (__builtin_expect(!to->started, 0))
        return ucoro__cc_first(from, to, value);
    to->ctx = NULL; /* consumed: to is running from now on */
    return UCORO_SWITCH_IN(&from->ctx, ctx, value, to->fp_link);
#endif
}

/*
 * ucoro__cc_transfer for the way back: to is the one that resumed from
 * (started, switched out). A second copy of the switch, so that each copy's
 * final jump has one usual target (see arch/x86_64.h).
 *
 * to->return_to stays: it names to's own resumer, which still waits in its
 * switch into to, and which a backtrace in to goes on into. from's is
 * cleared instead: from is suspended, nothing waits for it, and its chain
 * ends at its first frame (arch/interface.h). Only the coroutine layer's
 * yield comes here; it never reads return_to of a coroutine it has a
 * caller for, and every switch into from writes it again.
 */
static inline __attribute__((always_inline)) void *
ucoro__cc_return(struct continuation *from, struct continuation *to, void *value)
{
    from->return_to = NULL;
#ifdef UCORO_TOOL_SWITCH
    return ucoro__cc_transfer_announced(from, to, value);
#else
    void *ctx = to->ctx;

    to->ctx = NULL;
    return ucoro__switch_back(&from->ctx, ctx, value);
#endif
}

/*
 * For the symmetric switches (cc_swap, coroutine_swap), before switching
 * from from to to: switching back to the continuation that switched in
 * last is, for backtraces, a yield (from no longer runs on to's behalf).
 * Without this, two contexts that swap back and forth would each name the
 * other as its resumer, and a backtrace taken in a third one they resume
 * would go round between them. (A ring of three or more swapping in turn
 * can still make a chain that repeats; yieldto and yield never do.)
 */
static inline void ucoro__cc_swapping_back(struct continuation *from, struct continuation *to)
{
    if (from->return_to == to)
        from->return_to = NULL;
}

/*
 * Leaves the running continuation self for good (its entry is done: it is
 * marked exited) and resumes to, running hook(arg) on to's stack first:
 * there the finished stack may be freed. to's pending switch returns hook's
 * result.
 */
static inline __attribute__((noreturn, always_inline)) void
ucoro__cc_exit(struct continuation *self, struct continuation *to, void *(*hook)(void *),
               void *arg)
{
    void *ctx = to->ctx;

    self->exited = 1;
    to->ctx = NULL;
    ucoro__tool_leave(to, NULL); /* NULL: this context ends here */
    ucoro__switch_exit(ctx, hook, arg);
}

#endif /* UCORO_CC_SWITCH_H */
