/*
 * Stacks freed while a thread exits are given back. A program may free
 * coroutines from its own thread-exit destructors (a pthread key, GLib's
 * GPrivate destroy notify, a C++ or Rust thread_local) and run coroutines
 * there, before or after the library's own destructors ran: none of that
 * may leave address space or memory behind.
 *
 * Each test starts THREADS threads one after another. Every thread runs a
 * coroutine to its end (so the library knows the thread), then leaves a
 * suspended one, that has touched TOUCH bytes of its stack, to a destructor
 * of the kind the test names. That destructor releases it, then runs a fresh
 * coroutine to its end. The process's VmSize and VmRSS, measured after a
 * warm-up of the same kind, must stay flat: a stack left behind per thread
 * would add 16 MiB of address space and TOUCH bytes of memory each time.
 *
 * Key order: glibc runs key destructors in the order the keys were made,
 * in up to four rounds (a destructor that sets a value again is called in
 * the next round). The library makes its keys when it is loaded. The early
 * key here is made by a constructor that runs before the library's where
 * the program is linked with it statically (constructor priority 101); the
 * late one is made in main, after the library's in every build.
 *
 * The last test also checks that a signal stack the thread set for itself
 * (after the library gave it one) is still in place in a destructor that
 * runs after the library's. Under a sanitizer two tests are skipped (see
 * UNDER_SANITIZER).
 *
 * SPDX-License-Identifier: MIT OR Apache-2.0
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "coroutine.h"

#include "check.h"

#define THREADS 1000
#define WARM_UP 50
#define TOUCH ((size_t)128 << 10)
#define MIB ((size_t)1 << 20)

/* How much may the process grow over THREADS threads: far below what one
 * stack left behind per thread costs (16 GiB of address space, 128 MiB of
 * memory for 1000 threads), above what caches keep (empty slabs, glibc's
 * cache of thread stacks and malloc arenas), and below what the library's
 * 64 KiB signal stack left behind per thread would add. */
#define VMSIZE_SLACK (32 * MIB)
#define RSS_SLACK (16 * MIB)
#define SIGNAL_STACK ((size_t)64 << 10)

static pthread_key_t early_key, late_key, last_round_key, signal_stack_key;
static int early_key_made;

static void release_and_run_another(void *arg);

__attribute__((constructor(101))) static void make_early_key(void)
{
    early_key_made = pthread_key_create(&early_key, release_and_run_another) == 0;
}

/* A field of /proc/self/status in bytes, or 0. */
static size_t status_bytes(const char *field)
{
    char line[256];
    size_t len = strlen(field), kib = 0;
    FILE *f = fopen("/proc/self/status", "r");

    if (!f)
        return 0;
    while (fgets(line, sizeof(line), f))
        if (strncmp(line, field, len) == 0 && line[len] == ':')
            kib = strtoul(line + len + 1, NULL, 10);
    fclose(f);
    return kib << 10;
}

/* Touches TOUCH bytes of the stack, then yields once (if asked to). */
static void *touch_stack(void *arg)
{
    volatile unsigned char frame[TOUCH];

    memset((void *)frame, 0x5A, sizeof(frame));
    if (arg)
        coroutine_yield(NULL);
    return (void *)(uintptr_t)frame[TOUCH / 2];
}

static struct coroutine *new_coroutine(void)
{
    struct coroutine *co = calloc(1, sizeof(*co));

    CHECK(co != NULL);
    co->entry = touch_stack;
    CHECK(coroutine_init(co) == 0);
    return co;
}

static void run_to_end(void)
{
    struct coroutine *co = new_coroutine();

    CHECK(coroutine_yieldto(co, NULL) == (void *)(uintptr_t)0x5A);
    CHECK(co->exited);
    CHECK(coroutine_release(co) == 0);
    free(co);
}

/* A coroutine suspended inside touch_stack. */
static struct coroutine *suspended_coroutine(void)
{
    struct coroutine *co = new_coroutine();

    CHECK(coroutine_yieldto(co, co) == NULL);
    CHECK(!co->exited);
    return co;
}

/* What every destructor does with the coroutine it is given. */
static void release_and_run_another(void *arg)
{
    struct coroutine *co = arg;

    CHECK(coroutine_release(co) == 0);
    free(co);
    run_to_end();
}

/* Sets its key again until the fourth (glibc's last) round, then frees:
 * the library's destructors ran rounds before. */
static void in_the_last_round(void *arg)
{
    static __thread int round;

    if (++round < 4) {
        pthread_setspecific(last_round_key, arg);
        return;
    }
    round = 0;
    release_and_run_another(arg);
}

/* Runs after the library's destructors: the signal stack the thread set
 * for itself after its first coroutine (so after the library gave it one)
 * must still be in place. */
static void check_own_signal_stack(void *buffer)
{
    stack_t current, off;

    CHECK(sigaltstack(NULL, &current) == 0);
    CHECK(!(current.ss_flags & SS_DISABLE) && current.ss_sp == buffer);
    memset(&off, 0, sizeof(off));
    off.ss_flags = SS_DISABLE;
    CHECK(sigaltstack(&off, NULL) == 0);
    CHECK(munmap(buffer, SIGNAL_STACK) == 0);
}

/* Declared weak: glibc has it (C++ thread_local and Rust's thread_local!
 * destructors go through it); elsewhere that test reports it is skipped. */
extern int __cxa_thread_atexit_impl(void (*fn)(void *), void *arg, void *dso) __attribute__((weak));
extern void *__dso_handle __attribute__((weak));

enum destructor_kind { EARLY_KEY, LATE_KEY, LAST_ROUND, THREAD_LOCAL, OWN_SIGNAL_STACK };

static void *thread_body(void *arg)
{
    enum destructor_kind kind = (enum destructor_kind)(uintptr_t)arg;
    struct coroutine *co;

    run_to_end();
    co = suspended_coroutine();
    switch (kind) {
    case EARLY_KEY:
        CHECK(pthread_setspecific(early_key, co) == 0);
        break;
    case LATE_KEY:
        CHECK(pthread_setspecific(late_key, co) == 0);
        break;
    case LAST_ROUND:
        CHECK(pthread_setspecific(last_round_key, co) == 0);
        break;
    case THREAD_LOCAL:
        CHECK(__cxa_thread_atexit_impl(release_and_run_another, co, &__dso_handle) == 0);
        break;
    case OWN_SIGNAL_STACK: {
        stack_t own;

        memset(&own, 0, sizeof(own));
        own.ss_size = SIGNAL_STACK;
        /* mmap, not malloc: memory tools keep freed blocks for a while */
        own.ss_sp = mmap(NULL, SIGNAL_STACK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                         -1, 0);
        CHECK(own.ss_sp != MAP_FAILED && sigaltstack(&own, NULL) == 0);
        CHECK(pthread_setspecific(signal_stack_key, own.ss_sp) == 0);
        CHECK(pthread_setspecific(late_key, co) == 0);
        break;
    }
    }
    return NULL;
}

static void run_threads(enum destructor_kind kind, int count)
{
    int i;

    for (i = 0; i < count; i++) {
        pthread_t t;

        if (pthread_create(&t, NULL, thread_body, (void *)(uintptr_t)kind) != 0) {
            CHECK(!"pthread_create");
            return;
        }
        CHECK(pthread_join(t, NULL) == 0);
    }
}

/* The sanitizers tear their own per-thread state down in the last
 * destructor round, and AddressSanitizer replaces and frees threads' signal
 * stacks: there, code that runs in that round and signal-stack memory are
 * theirs to account for, not the library's. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define UNDER_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define UNDER_SANITIZER 1
#endif
#endif
#ifndef UNDER_SANITIZER
#define UNDER_SANITIZER 0
#endif

static void stays_flat(const char *name, enum destructor_kind kind)
{
    size_t vm0, rss0, vm1, rss1;

    if (UNDER_SANITIZER && (kind == LAST_ROUND || kind == OWN_SIGNAL_STACK)) {
        printf("%s: skipped under a sanitizer\n", name);
        return;
    }

    run_threads(kind, WARM_UP);
    vm0 = status_bytes("VmSize");
    rss0 = status_bytes("VmRSS");
    run_threads(kind, THREADS);
    vm1 = status_bytes("VmSize");
    rss1 = status_bytes("VmRSS");
    printf("%s: %d threads: VmSize %+.1f MiB, VmRSS %+.1f MiB\n", name, THREADS,
           ((double)vm1 - (double)vm0) / MIB, ((double)rss1 - (double)rss0) / MIB);
    CHECK(vm0 && rss0);
    CHECK(vm1 < vm0 + VMSIZE_SLACK);
    CHECK(rss1 < rss0 + RSS_SLACK);
}

static void stacks_freed_in_an_early_key_destructor_are_given_back(void)
{
    stays_flat("early key", EARLY_KEY);
}

static void stacks_freed_in_a_key_destructor_after_the_librarys_are_given_back(void)
{
    stays_flat("late key", LATE_KEY);
}

static void stacks_freed_in_the_last_destructor_round_are_given_back(void)
{
    stays_flat("last round", LAST_ROUND);
}

static void stacks_freed_in_a_thread_local_destructor_are_given_back(void)
{
    if (!__cxa_thread_atexit_impl) {
        printf("thread_local: skipped (no __cxa_thread_atexit_impl in this C library)\n");
        return;
    }
    stays_flat("thread_local", THREAD_LOCAL);
}

static void the_programs_own_signal_stack_outlives_the_librarys_exit_destructor(void)
{
    stays_flat("own signal stack", OWN_SIGNAL_STACK);
}

int main(void)
{
    CHECK(early_key_made);
    CHECK(pthread_key_create(&late_key, release_and_run_another) == 0);
    CHECK(pthread_key_create(&last_round_key, in_the_last_round) == 0);
    CHECK(pthread_key_create(&signal_stack_key, check_own_signal_stack) == 0);
    RUN(stacks_freed_in_an_early_key_destructor_are_given_back);
    RUN(stacks_freed_in_a_key_destructor_after_the_librarys_are_given_back);
    RUN(stacks_freed_in_the_last_destructor_round_are_given_back);
    RUN(stacks_freed_in_a_thread_local_destructor_are_given_back);
    RUN(the_programs_own_signal_stack_outlives_the_librarys_exit_destructor);
    return check_report();
}
