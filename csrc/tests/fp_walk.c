/*
 * Frame-pointer walks go through coroutines: from inside a nested
 * coroutine, the chain of frame records (what perf --call-graph fp and the
 * kernel's own walker follow) leads into the frames of each resumer and on
 * to main, also after the coroutine was resumed by another caller and on
 * another thread. Only for the assembly switches that keep such a link
 * (x86_64, aarch64: UCORO_ARCH_FP_LINK); elsewhere the walk must at least
 * end without a fault.
 *
 * Build with frame pointers and symbols for dladdr:
 *   cc -O2 -g -fno-omit-frame-pointer -mno-omit-leaf-frame-pointer -rdynamic \
 *      -Icsrc/include/ucoro -Icsrc/tests csrc/tests/fp_walk.c csrc/... -lpthread -ldl
 * `fp_walk --spin` instead spins inside a nested coroutine for a second,
 * for a profiler to sample (.ci/debugging.sh runs perf on it).
 *
 * SPDX-License-Identifier: MIT OR Apache-2.0
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "coroutine.h"

#if (defined(__x86_64__) || defined(__aarch64__)) && !defined(UCORO_SWITCH_SETJMP) && \
    !defined(UCORO_SWITCH_UCONTEXT)
#define LINKED 1 /* the default switch links frame-pointer chains here */
#else
#define LINKED 0
#endif

#define MAX_FRAMES 64

/* The function names a frame-pointer walk passed, in order (the functions
 * below are global so that -rdynamic lets dladdr name them). */
struct walk {
    int n;
    char names[MAX_FRAMES][64];
};

static int spinning;

/* Follows the chain of frame records from this function's own, as a
 * sampling profiler does: each record is {caller's record, return
 * address}. Stops at a null or misaligned link, or one that goes nowhere
 * a return address could be named. */
__attribute__((noinline)) static void walk_frames(struct walk *w)
{
    void **fp = __builtin_frame_address(0);

    w->n = 0;
    while (fp && ((uintptr_t)fp & (sizeof(void *) - 1)) == 0 && w->n < MAX_FRAMES) {
        Dl_info info;
        void *ret = fp[1];

        if (!ret)
            break;
        if (dladdr(ret, &info) && info.dli_sname)
            snprintf(w->names[w->n], sizeof(w->names[0]), "%s", info.dli_sname);
        else
            snprintf(w->names[w->n], sizeof(w->names[0]), "?");
        w->n++;
        fp = fp[0];
    }
}

/* The first index at or after from where name appears in the walk, or -1. */
static int find(const struct walk *w, const char *name, int from)
{
    int i;

    for (i = from < 0 ? 0 : from; i < w->n; i++)
        if (strcmp(w->names[i], name) == 0)
            return i;
    return -1;
}

struct walk seen;

/* Walks from here; with --spin, first spins for about a second in plain
 * code with frame pointers (libc's own functions may have none, so a
 * profiler's samples should land here, not in them). */
__attribute__((noinline)) void busy_here(void)
{
    static volatile unsigned long sink;
    struct timespec start, now;

    clock_gettime(CLOCK_MONOTONIC, &start);
    while (spinning) {
        unsigned long i;

        for (i = 0; i < 10000000; i++)
            sink += i;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if ((now.tv_sec - start.tv_sec) * 1000000000L + (now.tv_nsec - start.tv_nsec) >
            1000000000L)
            break;
    }
    walk_frames(&seen);
}

/* The inner coroutine: walks, yields, walks again when resumed. */
__attribute__((noinline)) void *inner_body(void *arg)
{
    (void)arg;
    busy_here();
    coroutine_yield(NULL);
    busy_here();
    return NULL;
}

static struct coroutine inner = {.stack_size = 256 << 10, .entry = inner_body};

__attribute__((noinline)) void resume_inner(void)
{
    coroutine_yieldto(&inner, NULL);
    __asm__ volatile("" ::: "memory"); /* not a tail call */
}

/* The outer coroutine: resumes the inner one from a function of its own. */
__attribute__((noinline)) void *outer_body(void *arg)
{
    (void)arg;
    resume_inner();
    __asm__ volatile("" ::: "memory");
    return NULL;
}

static struct coroutine outer = {.stack_size = 256 << 10, .entry = outer_body};

__attribute__((noinline)) void finish_inner_here(void)
{
    coroutine_yieldto(&inner, NULL);
    __asm__ volatile("" ::: "memory");
}

__attribute__((noinline)) void *finish_on_a_thread(void *arg)
{
    (void)arg;
    finish_inner_here();
    return NULL;
}

int main(int argc, char **argv)
{
    pthread_t t;

    spinning = argc > 1 && strcmp(argv[1], "--spin") == 0;
    CHECK(coroutine_init(&outer) == 0);
    CHECK(coroutine_init(&inner) == 0);

    /* main -> outer_body -> resume_inner -> inner_body -> busy_here */
    coroutine_yieldto(&outer, NULL);
    {
        int b = find(&seen, "busy_here", 0), i = find(&seen, "inner_body", 0);
        int r = find(&seen, "resume_inner", i), o = find(&seen, "outer_body", r);
        int m = find(&seen, "main", o);

        CHECK(b >= 0 && i > b); /* the coroutine's own frames */
        if (LINKED) {
            CHECK(r > i); /* then its resumer */
            CHECK(o > r); /* then the resumer's frames */
            CHECK(m > o); /* and on to main */
        }
    }
    /* inner yielded to outer, which returned: outer has exited, inner is
     * suspended with no caller. */
    CHECK(outer.exited && !inner.exited);

    /* Resumed from another caller, on another thread: the walk follows. */
    CHECK(pthread_create(&t, NULL, finish_on_a_thread, NULL) == 0);
    CHECK(pthread_join(t, NULL) == 0);
    CHECK(inner.exited);
    {
        int i = find(&seen, "inner_body", 0);
        int f = find(&seen, "finish_inner_here", i), a = find(&seen, "finish_on_a_thread", f);

        CHECK(i >= 0);
        if (LINKED) {
            CHECK(f > i);
            CHECK(a > f);
            CHECK(find(&seen, "resume_inner", 0) == -1); /* the old resumer is gone */
        }
    }
    coroutine_release(&inner);
    coroutine_release(&outer);
    return check_report();
}
