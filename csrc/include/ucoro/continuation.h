/*
 * ucoro continuation layer: a stack and the machine state to switch onto it.
 *
 * This layer knows stacks and registers and nothing else. The coroutine layer
 * (coroutine.h) builds callers, arguments and lifetimes on top of it. Callers
 * that only need "run this function on its own stack and switch back and
 * forth" may use it directly.
 *
 * SPDX-License-Identifier: MIT OR Apache-2.0
 */
#ifndef UCORO_CONTINUATION_H
#define UCORO_CONTINUATION_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * The layout is ABI (callers embed the struct by value and allocate it with
 * sizeof): within one soname its size, alignment and every offset below stay
 * as they are on each architecture. Sizes: 200 bytes where pointers have
 * 64 bits, 104 where they have 32, aligned as a pointer. Offsets, 64/32-bit:
 *
 *   stack 0/0, stack_size 8/4, entry 16/8, release 24/12, exited 32/16,
 *   started 36/20, return_to 40/24, ctx 48/28, magic 56/32, fp_link 64/36,
 *   ucoro_private 72/40 (16 pointer-sized words).
 *
 * The private fields are the library's: callers neither read nor write
 * them. Those a switch reads (started, ctx, magic, fp_link, and return_to)
 * are named at fixed offsets, for code that inlines a switch; the rest of the
 * library's state lives in the opaque ucoro_private words, whose meaning may
 * change with any release (state that outgrows them moves out of line).
 */
struct continuation {
    /* out: lowest usable address of the stack cc_init allocated (the guard
     * region lies directly below it); NULL when there is no stack. */
    char *stack;
    /* in: requested stack size in bytes, 0 for the default (16 MiB);
     * out: the size cc_init actually reserved (ucoro_stack_size_for: whole
     * pages, then its size class). */
    size_t stack_size;
    /* in: runs on the new stack at the first cc_swap into this continuation. */
    void (*entry)(struct continuation *cc);
    /* in, optional: called by cc_release before the stack is freed; a
     * negative return keeps the stack (nothing is freed). */
    int (*release)(struct continuation *cc);

    /* read-only: 1 once entry has returned. */
    int exited;
    /* private: entry has been entered (here rather than below: beside
     * exited it fills what would be padding). */
    int started;

    /* in/out: where control goes when entry returns, and where a
     * backtrace taken on this stack goes on past its first frame. cc_swap
     * sets it to the continuation that switched in most recently (the
     * coroutine layer clears it when a coroutine yields: then nothing
     * waits for it); an owner that knows better may overwrite it from
     * inside entry before entry returns. */
    struct continuation *return_to;

    /* private, at fixed offsets: what a switch reads. */
    void *ctx;            /* saved machine state while switched out */
    unsigned long magic;  /* tells an initialised continuation from garbage */
    /* where a switch into this context writes the address of its resumer's
     * frame record, for frame-pointer walkers; NULL where the switch keeps
     * no such link. */
    void **fp_link;

    /* private and opaque: the rest of the library's state. The library's
     * own sources see named fields here (UCORO_CONTINUATION_PRIVATE, in its
     * internal header), in every build alike: sanitizer builds change no
     * layout. */
#ifdef UCORO_CONTINUATION_PRIVATE
    union {
        struct {
            UCORO_CONTINUATION_PRIVATE
        };
        void *ucoro_private[16];
    };
#else
    void *ucoro_private[16];
#endif
};

/*
 * Prepares cc: allocates a stack of cc->stack_size bytes (0: the default)
 * with a guard region below it and writes the size used back. Every private
 * field is reset, so never-zeroed memory is valid input. entry does not run
 * yet.
 * Returns 0, or -1 with errno: EINVAL (cc or cc->entry NULL, or a size that
 * overflows when rounded up), ENOMEM (the system refused the memory). On
 * failure cc is left in a state that cc_swap rejects.
 */
int cc_init(struct continuation *cc);

/*
 * Frees cc's stack. Calls cc->release first if set; a negative result is
 * returned as is and nothing is freed. Afterwards cc_swap refuses cc until
 * cc_init prepares it again. Returns 0 when there was nothing to free (NULL,
 * never initialised by cc_init, already released), so calling it twice is
 * safe (unless the release callback freed cc: then cc is gone). Must not be called on the running continuation or one that is
 * blocked in cc_swap (its frames would vanish): the caller's duty, since this
 * layer does not track who runs.
 */
int cc_release(struct continuation *cc);

/*
 * Saves the running context into from and switches to to. from may be a
 * never-initialised struct: it is then made a valid target that represents
 * the current context (this is how a thread's main context is captured).
 * Returns in from when something switches back: 0 normally, 1 when it was
 * the exit of to (entry returned) that brought control back; then to's stack
 * may be released. Returns -1 with errno EINVAL, without switching, when to
 * is NULL, was never set up (by cc_init or as a from), has exited, is from,
 * is running (on any thread), or is another thread's own context (a from
 * that was captured on that thread: only that thread may resume it).
 */
int cc_swap(struct continuation *from, struct continuation *to);

#ifdef __cplusplus
}
#endif

/* Programs built with the ucoro-glib pkg-config module (its Cflags define
 * UCORO_GLIB) report misuse as GLib criticals in their own log domain.
 * Included from coroutine.h, this waits for its end, where it comes next. */
#if defined(UCORO_GLIB) && !defined(UCORO_COROUTINE_H)
#include "ucoro_glib.h"
#endif

#endif /* UCORO_CONTINUATION_H */
