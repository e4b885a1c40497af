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
 *   stack_tools remap-freed-slab
 *                           maps memory of its own where the library
 *                           unmapped a slab whose stacks had run, and
 *                           writes all of it: no report (the tools must
 *                           forget a stack before its memory goes)
 *   stack_tools release-suspended
 *                           releases coroutines while they are suspended,
 *                           many times: the address space stays flat (with
 *                           AddressSanitizer's detect_stack_use_after_return,
 *                           each has a fake stack that must be freed too),
 *                           also by a release callback that runs as
 *                           another coroutine exits
 *
 * Without a tool the reads succeed (the memory stays mapped) and the
 * program prints what it read.
 *
 * SPDX-License-Identifier: MIT OR Apache-2.0
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

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

#define FREED_SLABS 3 /* one more than the empty slabs the library keeps */

static char *freed_stack[FREED_SLABS];
static size_t freed_size[FREED_SLABS];

/* Runs a coroutine of each of FREED_SLABS stack sizes (one slab each) to
 * its end, and exits: the thread's pool goes back to the slabs, all of them
 * empty, and the library unmaps those beyond the ones it keeps. */
static void *run_in_fresh_slabs(void *unused)
{
    size_t i;

    (void)unused;
    for (i = 0; i < FREED_SLABS; i++) {
        struct coroutine co;

        memset(&co, 0, sizeof(co));
        co.entry = hold_local;
        co.stack_size = (size_t)(i + 2) << 18; /* classes no other test here uses */
        CHECK(coroutine_init(&co) == 0);
        CHECK(coroutine_yieldto(&co, &co) == &co);
        freed_stack[i] = co.cc.stack; /* NULL once it exited */
        freed_size[i] = co.stack_size;
        CHECK(coroutine_yieldto(&co, NULL) == (void *)0x5A);
    }
    return unused;
}

static int is_unmapped(char *addr)
{
    unsigned char vec[1];

    return mincore(addr, (size_t)getpagesize(), vec) != 0 && errno == ENOMEM;
}

static int remap_freed_slab(void)
{
    pthread_t t;
    size_t i, unmapped = 0;

    CHECK(pthread_create(&t, NULL, run_in_fresh_slabs, NULL) == 0);
    CHECK(pthread_join(t, NULL) == 0);
    for (i = 0; i < FREED_SLABS; i++) {
        volatile char *mine;
        size_t j;

        CHECK(freed_stack[i] != NULL);
        if (!freed_stack[i] || !is_unmapped(freed_stack[i]))
            continue;
        unmapped++;
        /* Memory of the program's own at the stack's old address: every
         * byte of it is the program's to write. */
        mine = mmap(freed_stack[i], freed_size[i], PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
        CHECK(mine == (volatile char *)freed_stack[i]);
        if (mine != (volatile char *)freed_stack[i])
            continue;
        for (j = 0; j < freed_size[i]; j += 64)
            mine[j] = 1;
        CHECK(mine[freed_size[i] - 64] == 1);
        CHECK(munmap((void *)mine, freed_size[i]) == 0);
    }
    printf("%zu of %d slabs unmapped, mapped again and written\n", unmapped, FREED_SLABS);
    CHECK(unmapped > 0);
    return check_report();
}

/* Calls down with a local whose address escapes: with AddressSanitizer's
 * detect_stack_use_after_return, such frames live on a fake stack. */
static void *suspend_in_a_frame(void *arg)
{
    volatile char local[256];

    memset((void *)local, 1, sizeof(local));
    local_seen = (volatile unsigned char *)local;
    coroutine_yield(arg);
    return (void *)(uintptr_t)local[0];
}

static size_t vm_size(void)
{
    char line[256];
    size_t kib = 0;
    FILE *f = fopen("/proc/self/status", "r");

    if (!f)
        return 0;
    while (fgets(line, sizeof(line), f))
        if (strncmp(line, "VmSize:", 7) == 0)
            kib = strtoul(line + 7, NULL, 10);
    fclose(f);
    return kib << 10;
}

static struct coroutine *released_by_callback;

/* A release callback that releases another, suspended coroutine: it runs
 * while the library finishes the switch out of the one that exited. */
static int release_another(struct coroutine *co)
{
    (void)co;
    CHECK(coroutine_release(released_by_callback) == 0);
    return 0;
}

static int release_suspended(void)
{
    struct coroutine other, exiting;
    size_t before = 0, after, i;

    for (i = 0; i < 1000; i++) {
        struct coroutine co;

        if (i == 100)
            before = vm_size(); /* after the pools and slabs filled */
        memset(&co, 0, sizeof(co));
        co.entry = suspend_in_a_frame;
        CHECK(coroutine_init(&co) == 0);
        CHECK(coroutine_yieldto(&co, &co) == &co);
        CHECK(coroutine_release(&co) == 0);
    }
    after = vm_size();
    printf("VmSize %+.1f MiB over 900 coroutines released while suspended\n",
           ((double)after - (double)before) / (1 << 20));
    CHECK(before && after < before + ((size_t)64 << 20));

    memset(&other, 0, sizeof(other));
    other.entry = suspend_in_a_frame;
    CHECK(coroutine_init(&other) == 0);
    CHECK(coroutine_yieldto(&other, &other) == &other);
    memset(&exiting, 0, sizeof(exiting));
    exiting.entry = suspend_in_a_frame;
    exiting.release = release_another;
    released_by_callback = &other;
    CHECK(coroutine_init(&exiting) == 0);
    CHECK(coroutine_yieldto(&exiting, &exiting) == &exiting);
    CHECK(coroutine_yieldto(&exiting, NULL) == (void *)1);
    CHECK(other.magic != exiting.magic); /* released: no longer a coroutine */
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
    if (argc == 2 && strcmp(argv[1], "remap-freed-slab") == 0)
        return remap_freed_slab();
    if (argc == 2 && strcmp(argv[1], "release-suspended") == 0)
        return release_suspended();
    fprintf(stderr, "usage: %s clean | dead-read | slab-read | remap-freed-slab | "
                    "release-suspended\n",
            argv[0]);
    return 2;
}
