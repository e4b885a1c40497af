/*
 * The coroutine layer: callers, arguments and lifetimes on top of the
 * continuation layer (which alone knows stacks and registers).
 *
 * Protocol. A coroutine's caller is set by coroutine_yieldto and cleared by
 * coroutine_yield and by exit, so "caller != NULL" means "on this thread's
 * chain of callers" (running, or waiting in coroutine_yieldto). A thread's
 * main coroutine is always on its chain. When entry returns, control goes to
 * the caller, which is blocked in its switch into the exiting coroutine; a
 * hook that runs on the caller's stack then frees the finished one.
 *
 * Every switch is a tail call into the continuation layer, so nothing runs
 * in these functions after a switch: the side that switches does the
 * bookkeeping (current, caller) for the side it resumes.
 *
 * State is per thread. The thread-local block is reached only through
 * this_thread(), whose result the compiler can never reuse from before a
 * switch (a volatile read of the thread pointer, or a call it cannot treat
 * as pure), so no thread-local address is kept across a switch: a coroutine
 * may resume on another thread than the one it suspended on.
 *
 * SPDX-License-Identifier: MIT OR Apache-2.0
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include "abi/layout.h"
#include "cc_switch.h"
#include "coroutine.h"
#include "ucoro_internal.h"

#define LIKELY(x) __builtin_expect(!!(x), 1)
#define UNLIKELY(x) __builtin_expect(!!(x), 0)

/* The switch paths start on a cache line of their own, so that where the
 * linker happens to place them does not decide how fast they run (the
 * round trip moved by 15-20% with their offset mod 64). */
#if defined(__GNUC__)
#define UCORO_HOT __attribute__((aligned(64)))
#else
#define UCORO_HOT
#endif

struct ucoro_thread {
    struct coroutine leader; /* this thread's main coroutine */
    struct coroutine *current;
};
/* The Rust crate's inlined switch (src/arch/) finds current here: right
 * after the leader, in ucoro__thread_state (see below). */
_Static_assert(offsetof(struct ucoro_thread, current) == sizeof(struct coroutine),
               "ucoro_thread.current follows the leader");

/*
 * This thread's state. Global (hidden) because assembly names it: ours
 * below on x86_64, and the Rust crate's inlined switch, which reads it with
 * the same initial-exec access. `used` and `externally_visible` keep
 * link-time optimisation from dropping or renaming a symbol it only sees
 * in a string.
 */
__thread UCORO_TLS UCORO_HIDDEN __attribute__((used, externally_visible)) struct ucoro_thread
    ucoro__thread_state;

#if defined(UCORO_SWITCH_ASM) && defined(__x86_64__) && !defined(UCORO_TOOL_SWITCH)
/*
 * The fast way: the thread pointer (%fs:0) is read by a volatile asm every
 * time, which the compiler may neither merge with another read nor move
 * across a switch; the variable's offset from it is the same in every
 * thread (initial-exec: a constant from the GOT). No call, no spills.
 */
static inline __attribute__((always_inline)) struct ucoro_thread *this_thread(void)
{
    struct ucoro_thread *t;

    __asm__ volatile("movq %%fs:0, %0\n\t"
                     "addq " UCORO_ASM_SYMBOL(ucoro__thread_state) "@gottpoff(%%rip), %0"
                     : "=r"(t));
    return t;
}
#else
__attribute__((noinline)) static struct ucoro_thread *this_thread(void)
{
    struct ucoro_thread *t = &ucoro__thread_state;

    /* The empty asm hides where t comes from, so the compiler cannot prove
     * this function pure and merge calls made on both sides of a switch. */
    __asm__ volatile("" : "+r"(t));
    return t;
}
#endif

static unsigned long magic_of(const struct coroutine *co, unsigned long kind)
{
    return ucoro__magic(co, kind);
}

#define CONTAINER_OF_CC(ccp) \
    ((struct coroutine *)(void *)((char *)(ccp) - offsetof(struct coroutine, cc)))

/*
 * The frozen layout of both public structs (abi/layout.h; ABI: callers
 * embed them by value). A change here is an incompatible change: new
 * private state goes into the ucoro_private words, or out of line when they
 * are full.
 */
#if __SIZEOF_POINTER__ == 8
#define ABI(lp64, ilp32) (lp64)
#else
#define ABI(lp64, ilp32) (ilp32)
#endif
#define FROZEN_SIZE(type, lp64, ilp32)                                         \
    _Static_assert(sizeof(struct type) == ABI(lp64, ilp32), #type "'s size");  \
    _Static_assert(_Alignof(struct type) == _Alignof(void *), #type "'s alignment");
#define FROZEN_OFFSET(type, field, lp64, ilp32)                                \
    _Static_assert(offsetof(struct type, field) == ABI(lp64, ilp32), #type "." #field " moved");
UCORO_FROZEN_SIZES(FROZEN_SIZE)
UCORO_FROZEN_OFFSETS(FROZEN_OFFSET)
#undef FROZEN_OFFSET
#undef FROZEN_SIZE
#undef ABI

/* The library's private continuation state fits the reserve, and needs no
 * more alignment than it has. */
_Static_assert(sizeof(struct ucoro_continuation_private) <=
                   sizeof(((struct continuation *)0)->ucoro_private),
               "the private continuation state outgrew ucoro_private: move some out of line");
_Static_assert(_Alignof(struct ucoro_continuation_private) <= _Alignof(void *),
               "the private continuation state needs more alignment than ucoro_private has");

/* The running coroutine of thread t, creating t's main one on first use. */
static inline struct coroutine *current_of(struct ucoro_thread *t)
{
    if (UNLIKELY(!t->current)) {
        t->leader.magic = magic_of(&t->leader, UCORO_MAGIC_LEADER);
        ucoro__cc_adopt(&t->leader.cc);
        t->current = &t->leader;
    }
    return t->current;
}

struct coroutine *coroutine_self(void)
{
    return current_of(this_thread());
}

int coroutine_is_main(struct coroutine *co)
{
    return co != NULL && co == &this_thread()->leader;
}

/* The continuation's release hook: lets the owner's release callback veto
 * freeing the stack. */
static int release_hook(struct continuation *cc)
{
    struct coroutine *co = CONTAINER_OF_CC(cc);

    return co->release ? co->release(co) : 0;
}

static int keep_embedded_stack(struct coroutine *co);

/* Runs on the caller's stack once the coroutine co has finished: frees the
 * finished stack and hands over the entry's result. */
static void *finish(void *arg)
{
    struct coroutine *co = arg;
    struct coroutine *back = co->caller;
    void *result = co->data;

    co->caller = NULL;
    this_thread()->current = back;
    /* A coroutine of ucoro_create keeps its stack until ucoro_destroy
     * (its release callback vetoes): skip the round trip that ends so. */
    if (co->release != keep_embedded_stack)
        cc_release(&co->cc); /* runs co->release, which may free co */
    return result;
}

/* Runs co's entry, on its own stack, to its end; marks it exited and
 * returns the coroutine its exit goes back to. */
static struct coroutine *run_to_end(struct coroutine *co)
{
    co->data = co->entry(co->data);
    co->exited = 1;
    /* Return to the caller, not to whoever last switched into us: a child
     * that yielded back to us is not waiting for our exit. Without a caller
     * (started through coroutine_swap alone), the last switcher it is. */
    return co->caller ? co->caller : CONTAINER_OF_CC(co->cc.return_to);
}

/* Runs on the coroutine's own stack (the continuation's entry). */
static void coroutine_body(struct continuation *cc)
{
    struct coroutine *co = CONTAINER_OF_CC(cc);
    struct coroutine *back = run_to_end(co);

    co->caller = back; /* finish() reads and clears it */
    ucoro__cc_exit(cc, &back->cc, finish, co);
}

/*
 * Whether co is busy: this thread's main coroutine, or a coroutine running
 * (on any thread) or waiting in coroutine_yieldto. O(1): it reads co, which
 * may be memory never written; only a magic value keyed to co's address
 * makes the other fields count, and Memcheck is told the read is meant.
 */
static int is_busy(struct ucoro_thread *t, struct coroutine *co)
{
    if (co == &t->leader)
        return 1;
    ucoro__tool_assume_defined(&co->magic, sizeof(co->magic));
    return co->magic == magic_of(co, UCORO_MAGIC_COROUTINE) &&
           (co->caller || ucoro__cc_is_running(&co->cc));
}

/* The coroutine layer's private fields and its hooks in the continuation,
 * for a coroutine about to be set up. */
static void reset_private(struct coroutine *co)
{
    UCORO_USER_DATA(co) = NULL;
    co->exited = 0;
    co->caller = NULL;
    co->data = NULL;
    co->cc.entry = coroutine_body;
    co->cc.release = release_hook;
}

int coroutine_init(struct coroutine *co)
{
    if (!co) {
        ucoro__diagnose("coroutine_init", "co != NULL");
        errno = EINVAL;
        return -1;
    }
    if (is_busy(this_thread(), co)) {
        /* Resetting it would pull the stack from under running frames. */
        ucoro__diagnose("coroutine_init", coroutine_is_main(co) ? "!coroutine_is_main(co)"
                                                                 : "!co->caller");
        errno = EBUSY;
        return -1;
    }
    if (!co->entry) {
        ucoro__diagnose("coroutine_init", "co->entry != NULL");
        errno = EINVAL;
        /* Another thread's main coroutine (its entry is NULL) stays intact;
         * anything else is made one that yieldto rejects. */
        if (co->magic != magic_of(co, UCORO_MAGIC_LEADER))
            co->magic = 0;
        return -1;
    }
    /* Reset everything private first: on failure yieldto must reject co. */
    co->magic = 0;
    reset_private(co);
    co->cc.stack_size = co->stack_size;
    if (cc_init(&co->cc) != 0)
        return -1;
    ucoro__stack_set_owner(co->cc.stack_record, co); /* the overflow report names co */
    co->stack_size = co->cc.stack_size;
    co->magic = magic_of(co, UCORO_MAGIC_COROUTINE);
    return 0;
}

/* The release callback of coroutines made by ucoro_create: their struct
 * lives on their stack, so exit must not free it; ucoro_destroy does. */
static int keep_embedded_stack(struct coroutine *co)
{
    (void)co;
    return -1;
}

#define ROUND16(n) (((n) + 15) & ~(size_t)15)

struct coroutine *ucoro_create(size_t stack_size, void *(*entry)(void *), size_t extra,
                               void **extra_out)
{
    size_t need;
    struct ucoro_stack_record *stack;
    struct coroutine *co;

    if (!entry || (extra && !extra_out)) {
        ucoro__diagnose("ucoro_create", !entry ? "entry != NULL" : "extra_out != NULL");
        errno = EINVAL;
        return NULL;
    }
    if (extra > SIZE_MAX / 4) {
        errno = E2BIG;
        return NULL;
    }
    need = ROUND16(sizeof(*co)) + ROUND16(extra);
    stack = ucoro__stack_alloc(stack_size);
    if (!stack)
        return NULL;
    if (need > stack->size / 2) {
        /* Keep at least half of the stack for frames. */
        ucoro__stack_free(stack);
        errno = E2BIG;
        return NULL;
    }
    co = (struct coroutine *)(void *)(stack->base + stack->size - need);
    co->stack_size = stack->size;
    co->entry = entry;
    co->release = keep_embedded_stack;
    reset_private(co);
    ucoro__cc_init_on(&co->cc, stack, need);
    ucoro__stack_set_owner(stack, co);
    co->magic = magic_of(co, UCORO_MAGIC_COROUTINE);
    if (extra_out)
        *extra_out = (char *)co + ROUND16(sizeof(*co));
    return co;
}

int ucoro_destroy(struct coroutine *co)
{
    int ret;

    if (!co || co->magic != magic_of(co, UCORO_MAGIC_COROUTINE) ||
        co->release != keep_embedded_stack) {
        ucoro__diagnose("ucoro_destroy", "co was made by ucoro_create");
        errno = EINVAL;
        return -1;
    }
    /* Now the stack, with co on it, may go; coroutine_release refuses a
     * busy coroutine, which then keeps its stack past exit as before. */
    co->release = NULL;
    ret = coroutine_release(co);
    if (ret != 0)
        co->release = keep_embedded_stack;
    return ret;
}

int coroutine_release(struct coroutine *co)
{
    int ret;

    if (!co) {
        ucoro__diagnose("coroutine_release", "co != NULL");
        errno = EINVAL;
        return -1;
    }
    if (co->magic == magic_of(co, UCORO_MAGIC_RELEASED))
        return 0;
    if (co->magic == magic_of(co, UCORO_MAGIC_LEADER)) {
        ucoro__diagnose("coroutine_release", "!coroutine_is_main(co)");
        errno = EBUSY;
        return -1;
    }
    if (co->magic != magic_of(co, UCORO_MAGIC_COROUTINE)) {
        ucoro__diagnose("coroutine_release", "co is initialised");
        errno = EINVAL;
        return -1;
    }
    /* Running (on any thread: one started by coroutine_swap alone has no
     * caller) or waiting in coroutine_yieldto. */
    if (co->caller || ucoro__cc_is_running(&co->cc)) {
        ucoro__diagnose("coroutine_release", "!co->caller");
        errno = EBUSY;
        return -1;
    }
    /* Mark first: the release callback may free co if it returns >= 0. */
    co->magic = magic_of(co, UCORO_MAGIC_RELEASED);
    ret = cc_release(&co->cc);
    if (ret < 0)
        co->magic = magic_of(co, UCORO_MAGIC_COROUTINE);
    return ret;
}

/*
 * Says why to is not something one may switch into, under the name of the
 * API function; returns 0. Returns 1 if it is after all (a thread's own main
 * coroutine, which coroutine_swap may target). Kept out of line: the fast
 * paths only call it once their one combined check has failed.
 */
__attribute__((noinline, cold)) static int explain_target(const char *function,
                                                          struct coroutine *to)
{
    unsigned long m;

    if (!to) {
        ucoro__diagnose(function, "to != NULL");
        return 0;
    }
    m = to->magic;
    if (m == magic_of(to, UCORO_MAGIC_LEADER))
        return 1;
    if (m != magic_of(to, UCORO_MAGIC_COROUTINE) &&
        m != magic_of(to, UCORO_MAGIC_RELEASED)) {
        ucoro__diagnose(function, "to is initialised");
        return 0;
    }
    if (to->exited) {
        ucoro__diagnose(function, "!to->exited");
        return 0;
    }
    if (m == magic_of(to, UCORO_MAGIC_RELEASED)) {
        ucoro__diagnose(function, "to is initialised");
        return 0;
    }
    return 1;
}

/* True for an initialised, unreleased coroutine that has not exited. */
static inline int is_live(const struct coroutine *co)
{
    return LIKELY(co != NULL) && LIKELY(co->magic == magic_of(co, UCORO_MAGIC_COROUTINE)) &&
           LIKELY(!co->exited);
}

/* The switch itself, after the checks, on thread t: the bookkeeping for
 * the resumed side, then a tail call into the continuation layer. */
static inline __attribute__((always_inline)) void *
switch_to(struct ucoro_thread *t, struct coroutine *from, struct coroutine *to, void *arg)
{
    to->data = arg; /* read by a fresh coroutine's body */
    t->current = to;
    return ucoro__cc_transfer(&from->cc, &to->cc, arg);
}

/*
 * Whether co, waiting in coroutine_yieldto, waits on thread t's chain: the
 * top of its chain of callers is t's main coroutine, or a coroutine started
 * by coroutine_swap alone that is t's running one (from). A top that is
 * switched out tells no thread; that swap is allowed, as it always was.
 * O(depth of co); used by coroutine_swap only.
 */
static int waits_on_thread(struct ucoro_thread *t, struct coroutine *from, struct coroutine *co)
{
    while (co->caller)
        co = co->caller;
    if (co->magic == magic_of(co, UCORO_MAGIC_LEADER))
        return co == &t->leader;
    return co == from || !ucoro__cc_is_running(&co->cc);
}

void *coroutine_swap(struct coroutine *from, struct coroutine *to, void *arg)
{
    struct ucoro_thread *t = this_thread();

    if (from != current_of(t)) {
        ucoro__diagnose("coroutine_swap", "from == coroutine_self()");
        return NULL;
    }
    if (!is_live(to) && !explain_target("coroutine_swap", to))
        return NULL;
    if (to == from) {
        ucoro__diagnose("coroutine_swap", "to != from");
        return NULL;
    }
    if (to->magic == magic_of(to, UCORO_MAGIC_LEADER)) {
        /* Another thread's main context can only run on that thread. */
        if (to != &t->leader) {
            ucoro__diagnose("coroutine_swap", "!to->caller");
            return NULL;
        }
    } else if (ucoro__cc_is_running(&to->cc)) {
        /* Running, and not from: on another thread. */
        ucoro__diagnose("coroutine_swap", "to is not running");
        return NULL;
    } else if (to->caller && !waits_on_thread(t, from, to)) {
        /* Its frames wait for a coroutine of another thread's chain. */
        ucoro__diagnose("coroutine_swap", "!to->caller");
        return NULL;
    }
    ucoro__cc_swapping_back(&from->cc, &to->cc);
    return switch_to(t, from, to, arg);
}

/*
 * ucoro_switch (coroutine.h, the embedding functions): coroutine_swap
 * without the checks a trusted caller's own books make redundant. What it
 * still checks costs a compare each on values the switch loads anyway.
 */
__attribute__((noinline, cold)) static void *switch_refused(struct ucoro_thread *t,
                                                            struct coroutine *from,
                                                            struct coroutine *to, int *status)
{
    if (from != current_of(t))
        ucoro__diagnose("ucoro_switch", "from == coroutine_self()");
    else if (to == from)
        ucoro__diagnose("ucoro_switch", "to != from");
    else if (to && to->magic == magic_of(to, UCORO_MAGIC_LEADER))
        ucoro__diagnose("ucoro_switch", "!to->caller"); /* another thread's main */
    else
        ucoro__diagnose("ucoro_switch", "to is initialised");
    if (status)
        *status = -1;
    errno = EINVAL;
    return NULL;
}

UCORO_HOT void *ucoro_switch(struct coroutine *from, struct coroutine *to, void *arg,
                             int *status)
{
    struct ucoro_thread *t = this_thread();

    if (UNLIKELY(from != t->current || !to || to == from ||
                 (to->magic != magic_of(to, UCORO_MAGIC_COROUTINE) && to != &t->leader)))
        return switch_refused(t, from, to, status);
    if (status)
        *status = 0;
    ucoro__cc_swapping_back(&from->cc, &to->cc);
    return switch_to(t, from, to, arg); /* a tail call: see the header */
}

void *ucoro_self_user_data(void)
{
    return UCORO_USER_DATA(current_of(this_thread()));
}

/* coroutine_yieldto's uncommon cases, out of line so that its fast path
 * makes no call (and so saves no registers): a refused target, the first
 * use of this thread (its main coroutine is created here), and a target
 * that is the running coroutine. */
__attribute__((noinline, cold)) static void *yieldto_slow(struct coroutine *to, void *arg)
{
    struct ucoro_thread *t;
    struct coroutine *self;

    /* A main coroutine is always on its thread's chain of callers, a
     * coroutine with a caller is running or waiting in yieldto, and one
     * started through coroutine_swap alone runs without a caller (here, or
     * on another thread). */
    if (!is_live(to) || to->caller || ucoro__cc_is_running(&to->cc)) {
        if (explain_target("coroutine_yieldto", to))
            ucoro__diagnose("coroutine_yieldto", "!to->caller");
        return NULL;
    }
    t = this_thread();
    self = current_of(t);
    to->caller = self;
    return switch_to(t, self, to, arg);
}

UCORO_HOT void *coroutine_yieldto(struct coroutine *to, void *arg)
{
    struct ucoro_thread *t;
    struct coroutine *self;

    /* One combined test for every refusal: running (here or on another
     * thread, which also covers to == self) and waiting both fail it. */
    if (UNLIKELY(!is_live(to) || to->caller || ucoro__cc_is_running(&to->cc)))
        return yieldto_slow(to, arg);
    t = this_thread();
    self = t->current;
    if (UNLIKELY(!self))
        return yieldto_slow(to, arg);
    to->caller = self;
    return switch_to(t, self, to, arg);
}

/* Suspends self (running on thread t) and resumes its caller. */
static inline __attribute__((always_inline)) void *
yield_from(struct ucoro_thread *t, struct coroutine *self, void *arg)
{
    struct coroutine *to = self->caller;

    if (UNLIKELY(!to)) {
        /* Fatal, as in the originals: there is nothing to return to. */
        fputs("Co-routine is yielding to no one\n", stderr);
        abort();
    }
    self->caller = NULL;
    t->current = to;
    return ucoro__cc_return(&self->cc, &to->cc, arg);
}

UCORO_HOT void *coroutine_yield(void *arg)
{
    struct ucoro_thread *t = this_thread();

    return yield_from(t, current_of(t), arg);
}

UCORO_HOT void *ucoro_yield_from(struct coroutine *co, void *arg)
{
    struct ucoro_thread *t = this_thread();

    if (UNLIKELY(co == NULL || co != t->current || co == &t->leader)) {
        ucoro__diagnose("ucoro_yield_from", "co == coroutine_self()");
        return NULL;
    }
    return yield_from(t, co, arg);
}

/*
 * The Rust crate's entry points (src/arch/mod.rs declares them; hidden: the
 * crate links this library statically). Its types already guarantee what
 * coroutine_yieldto checks (a Coroutine resumed through `&mut` is live, not
 * exited, not running and waits in no resume), so the resume checks
 * nothing; the suspend keeps the one check the types may not cover, that
 * co is the running coroutine (NULL, no switch, and ucoro_yield_from's
 * diagnostic otherwise). These are the
 * whole switch where the crate has no inlined one (other architectures,
 * sanitizer builds, the portable modes), and its first switch into a
 * coroutine everywhere.
 */
UCORO_HIDDEN void *ucoro__crate_resume(struct coroutine *co, void *arg);
UCORO_HIDDEN void *ucoro__crate_suspend(struct coroutine *co, void *arg);
UCORO_HIDDEN struct coroutine **ucoro__crate_current(void);
UCORO_HIDDEN void ucoro__crate_prepare(struct coroutine *co, void *arg);
UCORO_HIDDEN void ucoro__crate_destroy(struct coroutine *co);
UCORO_HIDDEN int ucoro__crate_recycle(struct coroutine *co, void *(*entry)(void *), void *arg);

UCORO_HOT void *ucoro__crate_resume(struct coroutine *co, void *arg)
{
    struct ucoro_thread *t = this_thread();
    struct coroutine *self = current_of(t);

    co->caller = self;
    return switch_to(t, self, co, arg);
}

UCORO_HOT void *ucoro__crate_suspend(struct coroutine *co, void *arg)
{
    struct ucoro_thread *t = this_thread();

    if (UNLIKELY(co != t->current)) {
        /* The same report as ucoro_yield_from's, whose refusal this is. */
        ucoro__diagnose("ucoro_yield_from", "co == coroutine_self()");
        return NULL;
    }
    return yield_from(t, co, arg);
}

/* Makes co, fresh from ucoro_create, ready for the crate's inlined switch
 * to start with arg as its entry's argument. Only called by builds that
 * inline the switch (build.rs: the assembly switch, no sanitizer); a C
 * library built otherwise behind the crate's back (CFLAGS with a
 * sanitizer) cannot serve them, which is reported and fatal. */
void ucoro__crate_prepare(struct coroutine *co, void *arg)
{
    co->data = arg;
    if (!ucoro__cc_prepare(&co->cc)) {
        fputs("ucoro: the C library was built without the assembly switch the "
              "Rust crate inlines (CFLAGS with -fsanitize?)\n",
              stderr);
        abort();
    }
}

/* ucoro_destroy for the crate, which destroys only what its ucoro_create
 * made, once, when it is neither running nor waiting in a resume: the same
 * effect without the checks or the release callbacks' round trip. */
void ucoro__crate_destroy(struct coroutine *co)
{
    struct ucoro_stack_record *record = co->cc.stack_record;
    void *fiber = co->cc.tool_fiber;

    co->magic = magic_of(co, UCORO_MAGIC_RELEASED);
    co->cc.magic = 0;
    co->cc.stack = NULL;
    ucoro__tool_fiber_destroyed(fiber);
    ucoro__stack_free(record); /* co is on that stack: not touched after */
}

/*
 * Makes co, made by ucoro_create and then exited or never switched into,
 * a fresh coroutine that starts entry(arg) on the same stack, at the same
 * address (the crate's cache of finished coroutines, src/stack_cache.rs):
 * what ucoro_create and ucoro__crate_prepare would give, without giving
 * the stack back and taking it again. Its magic and the stack record's
 * owner (the overflow report's name) already name co. Returns 1, or 0
 * with nothing changed where the continuation layer cannot rearm a stack
 * (sanitizer builds): the crate then destroys co and creates anew.
 */
int ucoro__crate_recycle(struct coroutine *co, void *(*entry)(void *), void *arg)
{
    if (!ucoro__cc_rearm(&co->cc))
        return 0;
    /* reset_private's, but for the continuation's hooks, which stay. */
    co->entry = entry;
    UCORO_USER_DATA(co) = NULL;
    co->exited = 0;
    co->caller = NULL;
    co->data = arg; /* the first switch's argument, as prepare leaves it */
    return 1;
}

#ifdef UCORO_ARCH_CRATE_START
/*
 * Runs a coroutine the crate's inlined switch started, on its stack, from
 * ucoro__crate_start_stub (arch/interface.h): its entry, then what
 * coroutine_body and finish do at its exit, but for handing the stack
 * back (the crate destroys or recycles the coroutine itself). Returns the
 * saved context of the coroutine to return to, marked consumed, for the
 * stub to resume. Cannot fail: the crate resumed co, which set its caller.
 * No memory tool is told of the switches: the builds that announce them
 * (UCORO_TOOL_SWITCH) never prepare a context for this stub
 * (ucoro__cc_prepare and ucoro__cc_rearm refuse there).
 */
void *ucoro__crate_entry(void *arg)
{
    struct continuation *cc = arg;
    struct coroutine *co = CONTAINER_OF_CC(cc);
    struct coroutine *back;
    void *ctx;

    cc->started = 1;
    back = run_to_end(co);
    cc->exited = 1;
    co->caller = NULL;
    this_thread()->current = back;
    ctx = back->cc.ctx;
    back->cc.ctx = NULL;
    return ctx;
}
#endif

/* Where this thread's running coroutine is kept (its main coroutine made
 * first, if this thread has none yet): the inlined switch's slow start. */
struct coroutine **ucoro__crate_current(void)
{
    struct ucoro_thread *t = this_thread();

    current_of(t);
    return &t->current;
}

size_t ucoro_stack_used(struct coroutine *co)
{
    if (!co || co->magic != magic_of(co, UCORO_MAGIC_COROUTINE) || !co->cc.stack)
        return 0;
    return ucoro__stack_touched(co->cc.stack, co->cc.stack_size);
}
