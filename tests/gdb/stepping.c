/*
 * A resume/yield round trip for tests/gdb/stepping.py to single-step
 * through, taking a backtrace at every instruction: main starts outer
 * (first start), outer starts inner (a first start from a coroutine),
 * inner yields, outer resumes it, inner returns (the exit path, which
 * frees its stack on outer's stack), outer yields to main, main resumes
 * it and outer returns. Everything between step_begin() and step_end()
 * is stepped; the stacks are allocated before.
 *
 * Run alone, it checks that the round trip ends where it should.
 *
 * SPDX-License-Identifier: MIT OR Apache-2.0
 */
#include <stdio.h>
#include <stdlib.h>

#include "coroutine.h"

static struct coroutine outer, inner;

/* The stepped range's ends, kept out of line for their breakpoints. */
__attribute__((noinline)) void step_begin(void)
{
    __asm__ volatile("" ::: "memory");
}

__attribute__((noinline)) void step_end(void)
{
    __asm__ volatile("" ::: "memory");
}

static void *inner_body(void *arg)
{
    return (char *)coroutine_yield((char *)arg + 1) + 1;
}

static void *outer_body(void *arg)
{
    char *p = coroutine_yieldto(&inner, arg);
    p = coroutine_yieldto(&inner, p);
    return (char *)coroutine_yield(p) + 1;
}

int main(void)
{
    static char base[8];
    char *p;

    outer.stack_size = inner.stack_size = 64 << 10;
    outer.entry = outer_body;
    inner.entry = inner_body;
    if (coroutine_init(&outer) != 0 || coroutine_init(&inner) != 0) {
        perror("coroutine_init");
        return 1;
    }
    step_begin();
    p = coroutine_yieldto(&outer, base);  /* inner yields 1, outer yields 2 */
    p = coroutine_yieldto(&outer, p);     /* outer returns 3 */
    step_end();
    if (p != base + 3 || !outer.exited || !inner.exited) {
        fprintf(stderr, "stepping: the round trip ended at %td\n", p - base);
        return 1;
    }
    return coroutine_release(&outer) == 0 ? 0 : 1;
}
