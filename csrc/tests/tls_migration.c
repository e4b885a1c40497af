/*
 * SPEC §2 "Threads", the regression test for QEMU's bug: a coroutine that
 * suspends on one thread and is resumed on another must see the new
 * thread's state. QEMU's compiler hoisted a thread-local address out of a
 * loop around a switch, so code after the switch read the old thread's
 * variables. tests/c_dropin.rs builds this at -O2 against the installed
 * library.
 *
 * Two threads take turns (a mutex and a condition variable pass the baton)
 * resuming one coroutine. Before and after every coroutine_yield the
 * coroutine asks coroutine_self(), coroutine_self_is_main() (the header's
 * inline) and coroutine_is_main() of both threads' main coroutines, and
 * which thread it runs on. A second round does the same with a nested pair
 * (the migrating coroutine resumes a child of its own on each turn).
 *
 * The thread is identified with the gettid system call: glibc declares
 * pthread_self() const, so the compiler could merge calls on both sides of
 * a switch, the very mistake this test looks for.
 *
 * SPDX-License-Identifier: MIT OR Apache-2.0
 */
#define _GNU_SOURCE

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "coroutine.h"

#include "check.h"

#define SWITCHES 100000L
#define STACK_SIZE ((size_t)64 << 10)
#define FINISHED ((void *)(intptr_t)-1)

/* Who resumes the migrating coroutine: passed at every coroutine_yieldto. */
struct resumer {
    long tid;
    struct coroutine *leader;       /* this thread's main coroutine */
    struct coroutine *other_leader; /* the other thread's */
};

/* Written only by whoever holds the baton (or the coroutine it runs), read
 * after both threads were joined. */
static unsigned long checks;
static unsigned long failures;

static struct coroutine *traveller; /* the coroutine that migrates */
static struct coroutine *child;     /* its child, in the nested round */

static long thread_id(void)
{
    return (long)syscall(SYS_gettid);
}

static void expect(int ok)
{
    checks++;
    if (!ok)
        failures++;
}

/* What co, running now on r's thread, must see. */
static void check_running(struct coroutine *co, const struct resumer *r)
{
    expect(thread_id() == r->tid);
    expect(coroutine_self() == co);
    expect(!coroutine_self_is_main());
    expect(!coroutine_is_main(co));
    expect(coroutine_is_main(r->leader));
    expect(!coroutine_is_main(r->other_leader));
}

static void *token_of(struct coroutine *co)
{
    return (void *)co;
}

/* ---- the migrating coroutines ---- */

static void *ping_pong(void *arg)
{
    const struct resumer *r = arg;
    long i;

    for (i = 0; i < SWITCHES; i++) {
        check_running(traveller, r);
        r = coroutine_yield((void *)(intptr_t)i);
        check_running(traveller, r);
    }
    return FINISHED;
}

/* The child: resumed by the traveller on whichever thread it runs. */
static void *child_body(void *arg)
{
    const struct resumer *r = arg;

    for (;;) {
        check_running(child, r);
        r = coroutine_yield(token_of(child));
        if (!r)
            return NULL;
        check_running(child, r);
    }
}

static void *nested_ping_pong(void *arg)
{
    const struct resumer *r = arg;
    long i;

    for (i = 0; i < SWITCHES / 2; i++) {
        check_running(traveller, r);
        expect(coroutine_yieldto(child, (void *)r) == token_of(child));
        check_running(traveller, r);
        r = coroutine_yield((void *)(intptr_t)i);
        check_running(traveller, r);
    }
    expect(coroutine_yieldto(child, NULL) == NULL); /* it returns */
    expect(child->exited == 1);
    return FINISHED;
}

/* ---- two threads taking turns ---- */

enum { TURN_A, TURN_B, TURN_DONE };

static pthread_mutex_t baton_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t baton_moved = PTHREAD_COND_INITIALIZER;
static int turn;
static long next_value;      /* what the traveller must yield next */
static long expected_yields; /* how many times it yields in all */

static pthread_barrier_t leaders_known;
static struct coroutine *leaders[2];

static void pass_baton(int to)
{
    pthread_mutex_lock(&baton_lock);
    turn = to;
    pthread_cond_broadcast(&baton_moved);
    pthread_mutex_unlock(&baton_lock);
}

/* Waits for this side's turn; 0 once the traveller has finished. */
static int wait_for_turn(int side)
{
    int mine;

    pthread_mutex_lock(&baton_lock);
    while (turn != side && turn != TURN_DONE)
        pthread_cond_wait(&baton_moved, &baton_lock);
    mine = turn == side;
    pthread_mutex_unlock(&baton_lock);
    return mine;
}

static void *side_main(void *arg)
{
    int side = (int)(intptr_t)arg;
    struct resumer r;
    void *got;

    leaders[side] = coroutine_self();
    pthread_barrier_wait(&leaders_known);
    r.tid = thread_id();
    r.leader = leaders[side];
    r.other_leader = leaders[1 - side];

    while (wait_for_turn(side)) {
        got = coroutine_yieldto(traveller, &r);
        expect(coroutine_self() == r.leader);
        expect(coroutine_self_is_main());
        if (got == FINISHED) {
            expect(traveller->exited == 1);
            expect(next_value == expected_yields);
            pass_baton(TURN_DONE);
            break;
        }
        expect((long)(intptr_t)got == next_value);
        next_value++;
        pass_baton(1 - side);
    }
    return NULL;
}

static struct coroutine *never_zeroed(void *(*entry)(void *))
{
    struct coroutine *co = malloc(sizeof *co);

    if (!co)
        abort();
    memset(co, 0xa5, sizeof *co);
    co->stack_size = STACK_SIZE;
    co->entry = entry;
    co->release = NULL;
    return co;
}

/* Runs body (which yields `yields` times) as the traveller, resumed by two
 * threads in turn. */
static void migrate(void *(*body)(void *), int nested, long yields)
{
    pthread_t threads[2];
    int i;

    traveller = never_zeroed(body);
    CHECK(coroutine_init(traveller) == 0);
    child = NULL;
    if (nested) {
        child = never_zeroed(child_body);
        CHECK(coroutine_init(child) == 0);
    }
    checks = 0;
    failures = 0;
    turn = TURN_A;
    next_value = 0;
    expected_yields = yields;
    CHECK(pthread_barrier_init(&leaders_known, NULL, 2) == 0);
    for (i = 0; i < 2; i++)
        CHECK(pthread_create(&threads[i], NULL, side_main, (void *)(intptr_t)i) == 0);
    for (i = 0; i < 2; i++)
        CHECK(pthread_join(threads[i], NULL) == 0);
    pthread_barrier_destroy(&leaders_known);

    CHECK(turn == TURN_DONE);
    CHECK(traveller->exited == 1);
    CHECK(failures == 0);
    CHECK(checks >= (unsigned long)SWITCHES * 12);
    if (failures)
        fprintf(stderr, "%lu of %lu checks failed\n", failures, checks);
    CHECK(leaders[0] != leaders[1]);
    CHECK(coroutine_release(traveller) == 0);
    free(traveller);
    if (child) {
        CHECK(child->exited == 1);
        CHECK(coroutine_release(child) == 0);
        free(child);
    }
}

static void a_coroutine_resumed_by_two_threads_in_turn_sees_each(void)
{
    migrate(ping_pong, 0, SWITCHES);
}

static void a_nested_pair_resumed_by_two_threads_in_turn_sees_each(void)
{
    migrate(nested_ping_pong, 1, SWITCHES / 2);
}

int main(void)
{
    RUN(a_coroutine_resumed_by_two_threads_in_turn_sees_each);
    RUN(a_nested_pair_resumed_by_two_threads_in_turn_sees_each);
    CHECK(coroutine_self_is_main());
    return check_report();
}
