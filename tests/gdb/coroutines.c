/*
 * Coroutines for gdb to look at: tests/gdb/check.py runs against this
 * program live, on the core file the kernel writes when it aborts
 * (UCORO_ABORT_AT_STOP=1), and on one written by `ucoro gcore`
 * (.ci/debugging.sh builds and drives all three, natively and for aarch64
 * under qemu-user).
 *
 * When stop_here() runs, there are, in every kind of storage:
 *
 *   thread 1: main -> resume_outer -> stack_outer (struct in main's frame)
 *             -> made_inner (ucoro_create, started on thread 2, running:
 *             stop_here)
 *   thread 2: thread2_main -> heap_outer (malloc) -> thread_inner (struct
 *             in thread2_main's frame, running: blocked in pause())
 *   suspended: global_co (a global, yielded in park_in_global), raw_cc (a
 *             struct continuation used directly)
 *   not started: not_started (malloc)
 *   gone: finished (exited, so released) and done_made (ucoro_create,
 *         exited, its stack kept until ucoro_destroy): `ucoro list` must
 *         not show them.
 *
 * check.py finds them through `expected`. Run alone, the program checks
 * nothing and exits 0.
 *
 * SPDX-License-Identifier: MIT OR Apache-2.0
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "coroutine.h"

#define STACK_SIZE ((size_t)256 << 10)

/* What check.py looks for, by kind of storage and role. */
struct expected {
    struct coroutine *global;       /* suspended */
    struct coroutine *stack_outer;  /* thread 1, waits for made_inner */
    struct coroutine *made_inner;   /* thread 1, running */
    struct coroutine *heap_outer;   /* thread 2, waits for thread_inner */
    struct coroutine *thread_inner; /* thread 2, running */
    struct coroutine *not_started;
    struct coroutine *finished;  /* absent: exited and released */
    struct coroutine *done_made; /* absent: exited, stack not yet freed */
    struct continuation *raw;    /* suspended */
};
struct expected expected;

struct coroutine global_co;
static struct continuation raw_cc, raw_main;
static sem_t thread2_parked;
static volatile int sink;

static void fail(const char *what)
{
    perror(what);
    exit(1);
}

/* Where check.py stops (or, with UCORO_ABORT_AT_STOP=1, the program
 * dumps core): thread 1 in made_inner, thread 2 in thread_inner. */
__attribute__((noinline)) void stop_here(void)
{
    if (getenv("UCORO_ABORT_AT_STOP"))
        abort();
    __asm__ volatile("" ::: "memory");
}

/* ---- a suspended coroutine, in a global ---- */

__attribute__((noinline)) static void park_in_global(void)
{
    coroutine_yield(NULL);
    sink++;
}

static void *suspended_body(void *arg)
{
    park_in_global();
    return arg;
}

/* ---- thread 1's chain, whose inner coroutine began on thread 2 ---- */

static void *inner_body(void *arg)
{
    coroutine_yield(NULL); /* on thread 2, the first time */
    stop_here();           /* on thread 1, resumed by stack_outer */
    return arg;
}

static void *outer_body(void *arg)
{
    sink += (int)(long)coroutine_yieldto(expected.made_inner, NULL);
    return arg;
}

__attribute__((noinline)) static void resume_outer(struct coroutine *outer)
{
    sink += (int)(long)coroutine_yieldto(outer, NULL);
}

/* ---- thread 2's chain ---- */

__attribute__((noinline)) static void block_in_thread2(void)
{
    sem_post(&thread2_parked);
    for (;;)
        pause();
}

static void *thread_inner_body(void *arg)
{
    block_in_thread2();
    return arg;
}

static void *thread_outer_body(void *arg)
{
    sink += (int)(long)coroutine_yieldto(expected.thread_inner, NULL);
    return arg;
}

static void *thread2_main(void *unused)
{
    struct coroutine inner = {.stack_size = STACK_SIZE, .entry = thread_inner_body};

    (void)unused;
    /* made_inner starts here, and is resumed on thread 1 later. */
    coroutine_yieldto(expected.made_inner, NULL);
    expected.thread_inner = &inner;
    if (coroutine_init(&inner) != 0)
        fail("coroutine_init");
    sink += (int)(long)coroutine_yieldto(expected.heap_outer, NULL);
    return NULL;
}

/* ---- the rest ---- */

static void *return_at_once(void *arg)
{
    return arg;
}

static void raw_entry(struct continuation *cc)
{
    cc_swap(cc, &raw_main);
}

static struct coroutine *new_coroutine(void *(*entry)(void *))
{
    struct coroutine *co = malloc(sizeof(*co));

    if (!co)
        fail("malloc");
    memset(co, 0, sizeof(*co));
    co->stack_size = STACK_SIZE;
    co->entry = entry;
    if (coroutine_init(co) != 0)
        fail("coroutine_init");
    return co;
}

int main(void)
{
    struct coroutine stack_outer = {.stack_size = STACK_SIZE, .entry = outer_body};
    pthread_t thread2;

    global_co.stack_size = STACK_SIZE;
    global_co.entry = suspended_body;
    if (coroutine_init(&global_co) != 0)
        fail("coroutine_init");
    expected.global = &global_co;
    coroutine_yieldto(&global_co, NULL);

    expected.made_inner = ucoro_create(STACK_SIZE, inner_body, 0, NULL);
    if (!expected.made_inner)
        fail("ucoro_create");
    expected.heap_outer = new_coroutine(thread_outer_body);
    if (sem_init(&thread2_parked, 0, 0) != 0 ||
        pthread_create(&thread2, NULL, thread2_main, NULL) != 0)
        fail("thread 2");
    while (sem_wait(&thread2_parked) != 0)
        ;

    expected.not_started = new_coroutine(return_at_once);
    expected.finished = new_coroutine(return_at_once);
    coroutine_yieldto(expected.finished, NULL);
    expected.done_made = ucoro_create(STACK_SIZE, return_at_once, 0, NULL);
    if (!expected.done_made)
        fail("ucoro_create");
    coroutine_yieldto(expected.done_made, NULL);

    raw_cc.stack_size = STACK_SIZE;
    raw_cc.entry = raw_entry;
    if (cc_init(&raw_cc) != 0)
        fail("cc_init");
    expected.raw = &raw_cc;
    cc_swap(&raw_main, &raw_cc);

    expected.stack_outer = &stack_outer;
    if (coroutine_init(&stack_outer) != 0)
        fail("coroutine_init");
    resume_outer(&stack_outer);
    printf("stopped once, thread 2 parked\n");
    return 0;
}
