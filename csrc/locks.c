/*
 * The library's mutexes, kept usable across fork() (see ucoro_internal.h).
 *
 * A program may fork while another of its threads is inside the library
 * (mapping a slab, installing the overflow handler, reading the diagnostic
 * handler) and then use coroutines in the child, as it could with the
 * originals, which take no lock of their own. Without the handlers below
 * the child would wait for good on a mutex whose owner was not copied.
 *
 * SPDX-License-Identifier: MIT OR Apache-2.0
 */
#include <pthread.h>

#include "ucoro_internal.h"

static pthread_mutex_t locks[UCORO_LOCK_COUNT] = {
    PTHREAD_MUTEX_INITIALIZER,
    PTHREAD_MUTEX_INITIALIZER,
    PTHREAD_MUTEX_INITIALIZER,
};
_Static_assert(UCORO_LOCK_COUNT == 3, "one initializer above per lock");

static void before_fork(void)
{
    int i;

    for (i = 0; i < UCORO_LOCK_COUNT; i++)
        pthread_mutex_lock(&locks[i]);
}

/* In the parent and in the child (whose only thread is the one that took
 * them in before_fork, so it may release them). */
static void after_fork(void)
{
    int i;

    for (i = UCORO_LOCK_COUNT - 1; i >= 0; i--)
        pthread_mutex_unlock(&locks[i]);
}

/* Registered when the library is loaded: nothing can hold its locks yet
 * (none of its functions can have been called), and pthread_atfork is
 * itself serialised with fork by the C library. Registered from a
 * once-guard on first use instead, a fork that came while another thread
 * was registering would leave the child's guard "in progress" for good
 * (glibc's pthread_once restarts it in a child; ThreadSanitizer's and
 * other C libraries' do not). Fails only with ENOMEM: then a fork while
 * another thread holds one of the locks leaves the child unable to take it. */
__attribute__((constructor)) static void register_fork_handlers(void)
{
    (void)pthread_atfork(before_fork, after_fork, after_fork);
}

void ucoro__lock(enum ucoro_lock which)
{
    pthread_mutex_lock(&locks[which]);
}

void ucoro__unlock(enum ucoro_lock which)
{
    pthread_mutex_unlock(&locks[which]);
}
