/*
 * ucoro: stackful coroutines with the API of the spice-gtk / gtk-vnc
 * coroutine_ucontext.c, as a library.
 *
 * A coroutine is a function (entry) that runs on a stack of its own and can
 * pause (coroutine_yield) and be resumed (coroutine_yieldto) where it paused.
 * Every thread has its own main ("leader") coroutine and its own current
 * coroutine; coroutines on different threads run independently. A process
 * may fork() at any time, also while other threads are in the library: the
 * child can go on creating and running coroutines (on its one thread).
 *
 * SPDX-License-Identifier: MIT OR Apache-2.0
 */
#ifndef UCORO_COROUTINE_H
#define UCORO_COROUTINE_H

#include <stddef.h>
#include "continuation.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * The layout is ABI, as struct continuation's (continuation.h): within one
 * soname its size, alignment and offsets stay as they are on each
 * architecture. Sizes: 288 bytes where pointers have 64 bits, 148 where they
 * have 32, aligned as a pointer. Offsets, 64/32-bit:
 *
 *   stack_size 0/0, entry 8/4, release 16/8, exited 24/12, caller 32/16,
 *   data 40/20, magic 48/24, cc 56/28, ucoro_private 256/132 (4 words).
 */
struct coroutine {
    /* in: stack size in bytes, 0 for the default (16 MiB; only touched
     * pages cost memory). coroutine_init writes the size it used back. */
    size_t stack_size;
    /* in: the coroutine's body; its argument is the value passed to the
     * first coroutine_yieldto, its result what that caller's last
     * coroutine_yieldto returns. */
    void *(*entry)(void *);
    /* in, optional (may be NULL): called when the library is about to free
     * the coroutine's stack (after entry returns, or in coroutine_release).
     * A negative return keeps the stack: nothing is freed now, and a later
     * coroutine_release tries again. */
    int (*release)(struct coroutine *);

    /* read-only: 1 once entry has returned. */
    int exited;

    /* private: everything below belongs to the library; the named fields
     * keep the originals' names and places, the words at the end are an
     * opaque reserve for state to come. */
    struct coroutine *caller; /* who resumed us and waits for us; NULL if none */
    void *data;               /* value in transit across a switch */
    unsigned long magic;      /* tells an initialised coroutine from garbage */
    struct continuation cc;
    void *ucoro_private[4];
};

/*
 * Prepares co to run co->entry on a stack of co->stack_size bytes (0: the
 * default) and writes the size used back. Resets every private field, so
 * never-zeroed memory and an exited coroutine are valid input (re-initialising
 * a coroutine that has not exited leaks its stack: release it first). entry
 * does not run yet.
 * Returns 0, or -1 with errno: EINVAL (co or co->entry NULL, or a stack size
 * that overflows when rounded up), ENOMEM (the system refused the address
 * space for this one stack even after the library gave back what it had
 * cached: where one mmap of the stack would fail too),
 * EBUSY (co is running, on any thread, or waiting in coroutine_yieldto, or
 * is the calling thread's main coroutine; co is left untouched). On other
 * failures coroutine_yieldto rejects co.
 */
int coroutine_init(struct coroutine *co);

/*
 * Frees what coroutine_init allocated (calling co->release first, if set).
 * co must not be running or waiting in coroutine_yieldto. Safe to call twice
 * and on an exited coroutine (0, nothing to do) while co's memory is still
 * the caller's: not after a release callback freed it, nor after
 * ucoro_destroy (see there).
 * Returns 0; co->release's negative result as is (nothing freed); or -1 with
 * errno EINVAL for NULL or a struct never initialised, EBUSY for a running
 * coroutine or a thread's main coroutine (each with a diagnostic message).
 */
int coroutine_release(struct coroutine *co);

/*
 * Makes a coroutine whose struct lives at the top of its own stack, with
 * `extra` more bytes there for the caller (*extra_out, 16-byte aligned), so
 * a coroutine costs no allocation besides its stack (language bindings keep
 * their per-coroutine state there). Like coroutine_init otherwise; the
 * frames get the stack minus those bytes. Its stack outlives the entry's
 * return (co and the extra bytes stay valid) until ucoro_destroy(co).
 * Returns NULL with errno: EINVAL (entry NULL, extra without extra_out, a
 * stack size that overflows when rounded up), E2BIG (co and extra would take
 * more than half of the stack of ucoro_stack_size_for(stack_size) bytes),
 * ENOMEM.
 */
struct coroutine *ucoro_create(size_t stack_size, void *(*entry)(void *), size_t extra,
                               void **extra_out);

/*
 * Frees a coroutine made by ucoro_create: its stack, its struct and the
 * extra bytes. co is invalid afterwards, as a pointer passed to free() is:
 * co lived on the stack just freed, which the library may unmap at any time
 * after, so a second ucoro_destroy of it (or any other call with it) may
 * crash. (Telling a destroyed co from a live one without reading it would
 * cost every destroy a search of the stack table.)
 * Returns 0, or -1 with errno: EINVAL (co NULL, or readable memory that is
 * not a live coroutine made by ucoro_create, such as one from
 * coroutine_init), EBUSY (running or waiting in coroutine_yieldto; reported
 * as coroutine_release's refusal).
 */
int ucoro_destroy(struct coroutine *co);

/* The running coroutine, or this thread's main coroutine outside any
 * coroutine. Never NULL. */
struct coroutine *coroutine_self(void);

/*
 * Low-level switch: from (which must be coroutine_self()) to to, passing arg.
 * Does not touch callers: prefer coroutine_yieldto / coroutine_yield.
 * Returns the value passed by whoever switches back to from, or to's entry
 * result if to finished. Returns NULL with a diagnostic message, without
 * switching, if from is not the running coroutine or to is NULL, not
 * initialised, exited, from itself, or another thread's main coroutine.
 */
void *coroutine_swap(struct coroutine *from, struct coroutine *to, void *arg);

/*
 * Runs to until it yields or returns, as its caller. If to has not started,
 * to->entry(arg) runs; if it waits in coroutine_yield, that call returns arg.
 * Returns the value to yielded, or its entry's result once it finished.
 * Returns NULL without switching, after a diagnostic message
 * ("coroutine_yieldto: assertion 'CONDITION' failed"), when to is NULL or
 * not initialised, has exited ('!to->exited'), or already has a caller: it is
 * running, waits in coroutine_yieldto, or is a thread's main coroutine
 * ('!to->caller').
 */
void *coroutine_yieldto(struct coroutine *to, void *arg);

/*
 * Suspends the running coroutine and returns arg to its caller; returns what
 * the next coroutine_yieldto into it passes. Clears the caller, so anyone may
 * resume it next. Without a caller (a thread's main coroutine, or one started
 * by coroutine_swap alone) this writes "Co-routine is yielding to no one" to
 * stderr and aborts.
 */
void *coroutine_yield(void *arg);

/*
 * coroutine_yield for a coroutine named by the caller (language bindings
 * use it to check that a handle belongs to the running coroutine): returns
 * NULL with a diagnostic, without switching, unless co is the running
 * coroutine and not a thread's main one.
 */
void *ucoro_yield_from(struct coroutine *co, void *arg);

/* Non-zero if co is the calling thread's main coroutine (int is
 * ABI-identical to gboolean). */
int coroutine_is_main(struct coroutine *co);

#if defined(__cplusplus) || (defined(__STDC_VERSION__) && __STDC_VERSION__ >= 199901L)
#define UCORO_INLINE inline
#else
#define UCORO_INLINE __inline__ /* C89: the GNU spelling */
#endif

static UCORO_INLINE int coroutine_self_is_main(void)
{
    return coroutine_is_main(coroutine_self());
}

/*
 * Diagnostics: every non-fatal misuse message goes through one handler.
 * function is the API function ("coroutine_yieldto"), condition the check
 * that failed ("!to->exited"). The default handler (installed again by
 * passing NULL) writes "FUNCTION: assertion 'CONDITION' failed" and a
 * newline to stderr. The handler may run on any thread that uses ucoro.
 */
typedef void (*ucoro_diagnostic_fn)(const char *function, const char *condition,
                                    void *user_data);
void ucoro_set_diagnostic_handler(ucoro_diagnostic_fn fn, void *user_data);

/*
 * The stack size in bytes that coroutine_init and ucoro_create use when
 * asked for stack_size (0: the default): rounded up to the library's
 * minimum (16 KiB), to whole pages, then to its size class, one of four per
 * power of two (2^k, 1.25, 1.5 or 1.75 x 2^k: at most a quarter more), so
 * that however many distinct sizes a program asks for, the library keeps a
 * bounded number of kinds of stack. Powers of two and the default 16 MiB
 * are classes. Returns 0 when that rounding overflows (init then fails with
 * EINVAL). The size a successful init writes back is this one.
 */
size_t ucoro_stack_size_for(size_t stack_size);

/*
 * How many bytes of co's stack have been touched so far, counted from its
 * top (the deepest resident page; a stack reused from the pool may count
 * pages an earlier coroutine touched). Use it to size stacks. Returns 0 for
 * NULL, a struct never initialised, or a coroutine from coroutine_init whose
 * stack was freed (one from ucoro_create is invalid after ucoro_destroy).
 */
size_t ucoro_stack_used(struct coroutine *co);

/*
 * The switch this build of the library uses: "ARCH assembly" by default
 * where there is one (ARCH: "x86_64", "aarch64", "i386", "armhf", "ppc64le",
 * "s390x", "riscv64"), "_setjmp/_longjmp" (other architectures, or built
 * with -DUCORO_SWITCH_SETJMP), "swapcontext (strict)" (built with
 * -DUCORO_SWITCH_UCONTEXT: per-coroutine signal mask and floating-point
 * environment, two system calls per switch). A static string.
 */
const char *ucoro_switch_mode(void);

/*
 * Stack overflow reporting (on by default): a fault in the guard region
 * below a coroutine's stack prints "ucoro: stack overflow in coroutine ADDR
 * (stack SIZE bytes)" and the process dies of the signal; other faults go
 * to the handler installed before. 0 turns it off (restoring the previous
 * handler unless another one replaced ours since), non-zero back on. The
 * environment variable UCORO_OVERFLOW_REPORTING=0 turns it off from the
 * start.
 */
void ucoro_set_overflow_reporting(int enable);

/* ---- For runtimes that embed ucoro (QEMU's coroutine backend) --------------
 *
 * A runtime with coroutine objects of its own keeps them beside ucoro's,
 * does its own bookkeeping of who resumes whom, and sizes its caches by
 * what the library's stacks cost. The functions below (csrc/embed.c;
 * ucoro_switch and ucoro_self_user_data, which need the thread's state,
 * in coroutine_ucontext.c) serve it without it having to keep
 * thread-locals of its own in step with the library's.
 */

/*
 * The owner's pointer for co, read in O(1): the runtime's own object for
 * it. Every coroutine has one, a thread's main coroutine too
 * (coroutine_self() outside any coroutine); it is NULL until set, and
 * coroutine_init and ucoro_create set it to NULL. Each coroutine has one
 * owner: two runtimes that share a thread's main coroutine must agree on
 * its slot. Returns NULL (without a message: NULL is also a valid value)
 * for NULL or a struct that is not an initialised coroutine or a thread's
 * main one (a released coroutine counts as not initialised).
 */
void *ucoro_get_user_data(const struct coroutine *co);

/*
 * ucoro_get_user_data(coroutine_self()) in one call, for the runtime's
 * "which of my coroutines is running?": the running coroutine is always
 * valid, so nothing is checked. Cannot fail; NULL until set.
 */
void *ucoro_self_user_data(void);

/*
 * Sets the owner's pointer for co (see ucoro_get_user_data), in O(1).
 * Returns 0, or -1 with errno EINVAL and a diagnostic message
 * ("ucoro_set_user_data: assertion 'co is initialised' failed") for NULL
 * or a struct that is not an initialised coroutine or a thread's main one.
 */
int ucoro_set_user_data(struct coroutine *co, void *data);

/*
 * coroutine_swap for a trusted caller: switches from `from` (which must be
 * the running coroutine) to `to`, passing arg, and touches no caller.
 * Returns the value passed by whoever switches back to from (if to's entry
 * returns, its result, as with coroutine_swap), and *status is 0: a NULL
 * value is a value like any other. (0 is stored before switching, so the
 * switch can be the function's last act: a resumed ucoro_switch returns
 * straight into its caller.)
 * Checked on every call, at the cost of a few compares: from is the
 * running coroutine; to is not NULL, not from, and an initialised coroutine
 * or this thread's main one. Otherwise returns NULL with *status -1, errno
 * EINVAL and a diagnostic message, without switching. status may be NULL
 * for a caller that relies on the message alone.
 * Not checked, the caller's duty (its own state must guarantee it, as a
 * runtime that tracks its coroutines' states does): to has not exited, is
 * not running (on any thread), and is not waiting in coroutine_yieldto on
 * another thread's chain. Breaking that is undefined behaviour (two
 * threads would run on one stack); coroutine_swap checks it instead.
 */
void *ucoro_switch(struct coroutine *from, struct coroutine *to, void *arg, int *status);

/* Guards made with madvise(MADV_GUARD_INSTALL) (Linux >= 6.13): not a
 * memory mapping of their own; the stacks of a slab share one mapping. */
#define UCORO_GUARD_MADVISE 1
/* Guards made with mprotect(PROT_NONE): each stack in use costs up to two
 * mappings (its guard and itself), as one mmap per stack with a guard page
 * would. */
#define UCORO_GUARD_MPROTECT 2

/*
 * How the guard region below each stack is made on this system, decided
 * once per process (the first call may map and unmap a probe page):
 * UCORO_GUARD_MADVISE, where vm.max_map_count does not bound the number of
 * stacks, or UCORO_GUARD_MPROTECT, where it does. Cannot fail, and keeps
 * errno: if the probe cannot map its page, the answer is
 * UCORO_GUARD_MPROTECT (the one that assumes the cost).
 */
int ucoro_guard_mode(void);

/* AddressSanitizer: fiber switches announced, stacks unpoisoned on reuse. */
#define UCORO_SANITIZER_ADDRESS 1u
/* ThreadSanitizer: one fiber per coroutine. */
#define UCORO_SANITIZER_THREAD 2u

/*
 * The sanitizers this build of the library announces its switches to (a
 * program built with a sanitizer needs a library that does): a mask of
 * UCORO_SANITIZER_ADDRESS and UCORO_SANITIZER_THREAD, 0 for a plain build.
 * Cannot fail.
 */
unsigned ucoro_sanitizers(void);

/* ---- end of the embedding functions --------------------------------------- */

#ifdef __cplusplus
}
#endif

/* Programs built with the ucoro-glib pkg-config module (its Cflags define
 * UCORO_GLIB) report misuse as GLib criticals in their own log domain. */
#ifdef UCORO_GLIB
#include "ucoro_glib.h"
#endif

#endif /* UCORO_COROUTINE_H */
