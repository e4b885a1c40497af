/*
 * Memory tools see the stacks in use, not whole slabs: built with csrc and
 * run under Valgrind's Memcheck or AddressSanitizer by .ci/stacks.sh.
 *
 *   stack_tools clean       coroutines of several sizes, in turn and nested,
 *                           created, run and freed: no report from the tool
 *                           ("<n> passed, 0 failed")
 *   stack_tools dead-read   reads a local of a coroutine that has finished
 *                           (its stack is back in the pool): the tool must
 *                           report the read
 *   stack_tools slab-read   reads the next, never handed out stack of a
 *                           slab (Memcheck only: it must report the read,
 *                           where a slab made "defined" as a whole would
 *                           let it pass)
 *
 * Without a tool the reads succeed (the memory stays mapped) and the
 * program prints what it read.
 *
 * SPDX-License-Identifier: MIT OR Apache-2.0
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "coroutine.h"

#define GUARD ((size_t)64 << 10)

static volatile unsigned char *volatile local_seen;

/* Keeps a local with a known value, shows where it is, yields once. */
static void *hold_local(void *arg)
{
    volatile unsigned char local = 0x5A;

    local_seen = &local;
    coroutine_yield(arg);
    return (void *)(uintptr_t)local;
}

/* Runs a child coroutine to its end from inside a coroutine. */
static void *parent(void *arg)
{
    struct coroutine child;

    memset(&child, 0, sizeof(child));
    child.stack_size = (size_t)(uintptr_t)arg;
    child.entry = hold_local;
    CHECK(coroutine_init(&child) == 0);
    CHECK(coroutine_yieldto(&child, arg) == arg);
    CHECK(coroutine_yieldto(&child, NULL) == (void *)0x5A);
    return arg;
}

static void clean(void)
{
    static const size_t sizes[] = {0, 16 << 10, 100000, 1 << 20, 3 << 20};
    struct coroutine co[40];
    size_t i;

    memset(co, 0, sizeof(co));
    for (i = 0; i < 40; i++) {
        co[i].stack_size = sizes[i % 5];
        co[i].entry = i % 2 ? parent : hold_local;
        CHECK(coroutine_init(&co[i]) == 0);
    }
    for (i = 0; i < 40; i++) {
        void *arg = (void *)(uintptr_t)(64 << 10);

        CHECK(coroutine_yieldto(&co[i], arg) == arg);
    }
    for (i = 0; i < 40; i += 2)
        CHECK(coroutine_yieldto(&co[i], NULL) == (void *)0x5A);
    for (i = 0; i < 40; i++)
        CHECK(coroutine_release(&co[i]) == 0);
}

static int dead_read(void)
{
    struct coroutine co;

    memset(&co, 0, sizeof(co));
    co.entry = hold_local;
    CHECK(coroutine_init(&co) == 0);
    coroutine_yieldto(&co, NULL);
    CHECK(coroutine_yieldto(&co, NULL) == (void *)0x5A);
    CHECK(co.exited);
    /* The stack went back to the pool: this read is the error. */
    printf("read 0x%x from a finished coroutine's stack\n", *local_seen);
    return check_report();
}

static int slab_read(void)
{
    struct coroutine co;
    volatile unsigned char *next;

    memset(&co, 0, sizeof(co));
    co.entry = hold_local;
    co.stack_size = 1 << 20; /* a class no other coroutine here uses */
    CHECK(coroutine_init(&co) == 0);
    /* The first slab of a class holds several strides; the one above ours
     * has not been handed out. */
    next = (volatile unsigned char *)co.cc.stack + co.stack_size + GUARD;
    printf("read 0x%x from a stack not handed out\n", *next);
    CHECK(coroutine_release(&co) == 0);
    return check_report();
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "clean") == 0) {
        clean();
        return check_report();
    }
    if (argc == 2 && strcmp(argv[1], "dead-read") == 0)
        return dead_read();
    if (argc == 2 && strcmp(argv[1], "slab-read") == 0)
        return slab_read();
    fprintf(stderr, "usage: %s clean | dead-read | slab-read\n", argv[0]);
    return 2;
}
