/*
 * libunwind (the nongnu one, which profilers and crash reporters use)
 * walks from inside a nested coroutine through both resumers to main, as
 * the start stub's unwind information promises (csrc/arch/interface.h),
 * and from a suspended-then-resumed one on the second caller's side only.
 * In the portable modes (-DUCORO_SWITCH_SETJMP / _UCONTEXT) the walk ends
 * at the coroutine's first frame instead.
 *
 * Built with csrc and -lunwind by .ci/debugging.sh; frames are named with
 * unw_get_proc_name, which reads the program's symbol table.
 *
 * SPDX-License-Identifier: MIT OR Apache-2.0
 */
#define _GNU_SOURCE
#define UNW_LOCAL_ONLY
#include <libunwind.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "coroutine.h"

#include "check.h"

#define STACK_SIZE ((size_t)64 << 10)
#define MAX_FRAMES 64

static char names[MAX_FRAMES][64];
static int frames, step_result;
static volatile uintptr_t sink; /* keeps calls from becoming tail calls */
static struct coroutine outer, inner;

/* Walks this thread's stack with libunwind, noting every frame's name. */
__attribute__((noinline)) static void walk(void)
{
    unw_context_t context;
    unw_cursor_t cursor;
    unw_word_t offset;

    frames = 0;
    unw_getcontext(&context);
    unw_init_local(&cursor, &context);
    do {
        if (unw_get_proc_name(&cursor, names[frames], sizeof names[frames], &offset) != 0)
            strcpy(names[frames], "?");
        frames++;
    } while (frames < MAX_FRAMES && (step_result = unw_step(&cursor)) > 0);
}

static int walked_through(const char *name)
{
    int i;

    for (i = 0; i < frames; i++)
        if (strcmp(names[i], name) == 0)
            return 1;
    return 0;
}

static int linked(void)
{
    return strstr(ucoro_switch_mode(), " assembly") != NULL;
}

static void *inner_body(void *arg)
{
    walk();
    coroutine_yield(NULL);
    walk();
    return arg;
}

static void *outer_body(void *arg)
{
    sink = (uintptr_t)coroutine_yieldto(&inner, arg);
    return arg;
}

__attribute__((noinline)) static void resume_outer(void)
{
    sink = (uintptr_t)coroutine_yieldto(&outer, NULL);
}

__attribute__((noinline)) static void resume_inner(void)
{
    sink = (uintptr_t)coroutine_yieldto(&inner, NULL);
}

static void libunwind_walks_from_a_nested_coroutine_to_main(void)
{
    outer.stack_size = inner.stack_size = STACK_SIZE;
    outer.entry = outer_body;
    inner.entry = inner_body;
    CHECK(coroutine_init(&outer) == 0 && coroutine_init(&inner) == 0);

    resume_outer();
    CHECK(step_result == 0); /* the walk ended, not failed */
    CHECK(frames < MAX_FRAMES);
    CHECK(walked_through("inner_body"));
    CHECK(walked_through("outer_body") == linked());
    CHECK(walked_through("resume_outer") == linked());
    CHECK(walked_through("main") == linked());

    /* Resumed by another caller: the walk follows it, not outer. */
    resume_inner();
    CHECK(step_result == 0);
    CHECK(walked_through("inner_body"));
    CHECK(!walked_through("outer_body"));
    CHECK(walked_through("resume_inner") == linked());
    CHECK(walked_through("main") == linked());
    CHECK(inner.exited == 1 && outer.exited == 1);
}

int main(void)
{
    printf("switch: %s\n", ucoro_switch_mode());
    RUN(libunwind_walks_from_a_nested_coroutine_to_main);
    return check_report();
}
