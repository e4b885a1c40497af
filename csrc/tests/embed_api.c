/*
 * The functions for runtimes that embed ucoro (coroutine.h, "For runtimes
 * that embed ucoro"), used the way QEMU's backend uses them: a runtime
 * object per coroutine found through the user data, symmetric switches
 * through ucoro_switch with the runtime keeping the books (also across
 * threads), and the queries that size its caches and check its build.
 * Each misuse row of docs/bad-input.md for these functions is a test here.
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

#include "coroutine.h"

#include "check.h"

/* ---- diagnostics, captured ---- */

static int diagnostics;
static char last_function[64];
static char last_condition[128];

static void capture(const char *function, const char *condition, void *user_data)
{
    (void)user_data;
    diagnostics++;
    snprintf(last_function, sizeof(last_function), "%s", function);
    snprintf(last_condition, sizeof(last_condition), "%s", condition);
}

/* Exactly one diagnostic since the last call, naming function and condition. */
static int diagnosed(const char *function, const char *condition)
{
    int ok = diagnostics == 1 && strcmp(last_function, function) == 0 &&
             strcmp(last_condition, condition) == 0;

    if (!ok)
        fprintf(stderr, "diagnostics: %d, last: %s: '%s'\n", diagnostics, last_function,
                last_condition);
    diagnostics = 0;
    return ok;
}

static void *val(intptr_t n)
{
    return (void *)n;
}

/* ---- user data ---- */

static void *return_arg(void *arg)
{
    return arg;
}

static void user_data_starts_null_and_keeps_what_is_set(void)
{
    struct coroutine co;
    struct coroutine *made;
    void *extra;
    int marker;

    memset(&co, 0xA5, sizeof(co)); /* never initialised: init clears it */
    co.stack_size = 0;
    co.entry = return_arg;
    co.release = NULL;
    CHECK(coroutine_init(&co) == 0);
    CHECK(ucoro_get_user_data(&co) == NULL);
    CHECK(ucoro_set_user_data(&co, &marker) == 0);
    CHECK(ucoro_get_user_data(&co) == &marker);
    CHECK(coroutine_yieldto(&co, val(7)) == val(7));
    CHECK(co.exited);
    CHECK(coroutine_release(&co) == 0);

    made = ucoro_create(0, return_arg, 32, &extra);
    CHECK(made != NULL);
    CHECK(ucoro_get_user_data(made) == NULL);
    CHECK(ucoro_set_user_data(made, extra) == 0);
    CHECK(ucoro_get_user_data(made) == extra);
    CHECK(ucoro_destroy(made) == 0);
    CHECK(diagnostics == 0);
}

static void init_clears_the_user_data_of_a_reused_struct(void)
{
    struct coroutine co;
    int marker;

    memset(&co, 0, sizeof(co));
    co.entry = return_arg;
    CHECK(coroutine_init(&co) == 0);
    CHECK(ucoro_set_user_data(&co, &marker) == 0);
    CHECK(coroutine_release(&co) == 0);
    CHECK(coroutine_init(&co) == 0);
    CHECK(ucoro_get_user_data(&co) == NULL);
    CHECK(coroutine_release(&co) == 0);
}

/* Threads report to main, which counts: the counters are not atomic. */
static void *main_user_data_of_new_thread(void *arg)
{
    struct coroutine *self = coroutine_self();
    int ok;

    /* A new thread's main coroutine starts with none, and its own. */
    ok = ucoro_get_user_data(self) == NULL;
    ok &= ucoro_set_user_data(self, arg) == 0;
    ok &= ucoro_get_user_data(coroutine_self()) == arg;
    ok &= ucoro_self_user_data() == arg;
    return ok ? arg : NULL;
}

static void main_coroutines_have_user_data_of_their_own_per_thread(void)
{
    int mine, theirs;
    pthread_t thread;
    void *result = NULL;

    CHECK(ucoro_set_user_data(coroutine_self(), &mine) == 0);
    CHECK(ucoro_self_user_data() == &mine);

    CHECK(pthread_create(&thread, NULL, main_user_data_of_new_thread, &theirs) == 0);
    CHECK(pthread_join(thread, &result) == 0);
    CHECK(result == &theirs);
    CHECK(ucoro_get_user_data(coroutine_self()) == &mine);
    CHECK(ucoro_set_user_data(coroutine_self(), NULL) == 0);
}

static void set_user_data_rejects_what_is_no_coroutine(void)
{
    struct coroutine garbage, zero, released;
    int marker;

    memset(&garbage, 0xA5, sizeof(garbage));
    memset(&zero, 0, sizeof(zero));
    memset(&released, 0, sizeof(released));
    released.entry = return_arg;
    CHECK(coroutine_init(&released) == 0);
    CHECK(coroutine_release(&released) == 0);

    errno = 0;
    CHECK(ucoro_set_user_data(NULL, &marker) == -1 && errno == EINVAL);
    CHECK(diagnosed("ucoro_set_user_data", "co is initialised"));
    errno = 0;
    CHECK(ucoro_set_user_data(&garbage, &marker) == -1 && errno == EINVAL);
    CHECK(diagnosed("ucoro_set_user_data", "co is initialised"));
    errno = 0;
    CHECK(ucoro_set_user_data(&zero, &marker) == -1 && errno == EINVAL);
    CHECK(diagnosed("ucoro_set_user_data", "co is initialised"));
    errno = 0;
    CHECK(ucoro_set_user_data(&released, &marker) == -1 && errno == EINVAL);
    CHECK(diagnosed("ucoro_set_user_data", "co is initialised"));

    /* Reading is silent: NULL is a valid value too. */
    CHECK(ucoro_get_user_data(NULL) == NULL);
    CHECK(ucoro_get_user_data(&garbage) == NULL);
    CHECK(ucoro_get_user_data(&zero) == NULL);
    CHECK(ucoro_get_user_data(&released) == NULL);
    CHECK(diagnostics == 0);
}

/* ---- ucoro_switch, as a runtime with its own books uses it ---- */

/* The runtime's object per coroutine, QEMU style: who entered it. */
struct task {
    struct coroutine *co;
    struct coroutine *entered_by;
    int rounds;
};

static struct task *task_of(struct coroutine *co)
{
    return ucoro_get_user_data(co);
}

/* Switches back to whoever entered it, passing round numbers; never
 * returns (a pooled coroutine of a runtime runs forever). */
static void *task_body(void *arg)
{
    struct task *t = ucoro_self_user_data(); /* as task_of(coroutine_self()) */
    void *in = arg;

    for (;;) {
        int status = 1;

        t->rounds++;
        in = ucoro_switch(t->co, t->entered_by, in, &status);
        if (status != 0)
            abort(); /* cannot be reported: there is nowhere to go */
    }
    return NULL;
}

static struct task *task_new(void)
{
    struct task *t = calloc(1, sizeof(*t));

    t->co = ucoro_create(64 << 10, task_body, 0, NULL);
    CHECK(t->co != NULL);
    CHECK(ucoro_set_user_data(t->co, t) == 0);
    return t;
}

static void task_free(struct task *t)
{
    /* Suspended for good inside task_body: destroyable, as in QEMU. */
    CHECK(ucoro_destroy(t->co) == 0);
    free(t);
}

/* Enters t from the running coroutine; returns what t passed back. */
static void *enter(struct task *t, void *arg)
{
    int status = 1;
    void *out;

    t->entered_by = coroutine_self();
    out = ucoro_switch(t->entered_by, t->co, arg, &status);
    return status == 0 ? out : val(-2); /* what the callers' checks then report */
}

static void switch_passes_values_both_ways_null_included(void)
{
    struct task *t = task_new();

    CHECK(enter(t, val(1)) == val(1));
    CHECK(enter(t, val(2)) == val(2));
    /* NULL is a value like any other: the status says it arrived. */
    CHECK(enter(t, NULL) == NULL);
    CHECK(t->rounds == 3);
    CHECK(diagnostics == 0);
    task_free(t);
}

static void *nest_body(void *arg)
{
    struct task *t = task_of(coroutine_self());
    struct task *inner = arg;
    int status = 1;

    (void)arg;
    for (;;) {
        /* A coroutine enters another and gets its value back. */
        void *got = enter(inner, val(40));

        t->rounds++;
        (void)ucoro_switch(t->co, t->entered_by, (char *)got + 2, &status);
        if (status != 0)
            abort();
    }
    return NULL;
}

static void switch_nests_as_the_runtime_books_say(void)
{
    struct task *inner = task_new();
    struct task *outer = calloc(1, sizeof(*outer));

    outer->co = ucoro_create(64 << 10, nest_body, 0, NULL);
    CHECK(ucoro_set_user_data(outer->co, outer) == 0);
    CHECK(enter(outer, inner) == val(42));
    CHECK(enter(outer, inner) == val(42));
    CHECK(outer->rounds == 2 && inner->rounds == 2);
    task_free(inner);
    task_free(outer);
}

/* A coroutine suspended on one thread resumed from another (QEMU's
 * coroutines move between AioContexts' threads). */
static void *enter_from_thread(void *arg)
{
    struct task *t = arg;
    int ok = enter(t, val(5)) == val(5);

    /* Back on this thread's main coroutine, with its own (unset) data. */
    ok &= ucoro_self_user_data() == NULL;
    return ok && task_of(t->co) == t ? t : NULL;
}

static void switch_resumes_a_coroutine_on_another_thread(void)
{
    struct task *t = task_new();
    pthread_t thread;
    void *result = NULL;

    CHECK(enter(t, val(4)) == val(4));
    CHECK(pthread_create(&thread, NULL, enter_from_thread, t) == 0);
    CHECK(pthread_join(thread, &result) == 0);
    CHECK(result == t);
    CHECK(enter(t, val(6)) == val(6));
    CHECK(t->rounds == 3);
    task_free(t);
}

static void *ends_with(void *arg)
{
    return (char *)arg + 1;
}

static void switch_returns_the_result_of_an_entry_that_returns(void)
{
    struct coroutine *co = ucoro_create(0, ends_with, 0, NULL);
    int status = 1;

    CHECK(ucoro_switch(coroutine_self(), co, val(9), &status) == val(10));
    CHECK(status == 0);
    CHECK(co->exited);
    CHECK(ucoro_destroy(co) == 0);
    /* Without a status pointer, the value alone. */
    co = ucoro_create(0, ends_with, 0, NULL);
    CHECK(ucoro_switch(coroutine_self(), co, val(1), NULL) == val(2));
    CHECK(ucoro_destroy(co) == 0);
}

static struct coroutine *other_main;
static pthread_mutex_t other_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t other_cond = PTHREAD_COND_INITIALIZER;
static int other_state; /* 1: other_main published, 2: may exit */

static void *publish_main_and_wait(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&other_lock);
    other_main = coroutine_self();
    other_state = 1;
    pthread_cond_broadcast(&other_cond);
    while (other_state != 2)
        pthread_cond_wait(&other_cond, &other_lock);
    pthread_mutex_unlock(&other_lock);
    return NULL;
}

/* The refusal: NULL, status -1, errno EINVAL. */
static int switch_status = 1;

static int refused(void *value)
{
    int ok = value == NULL && switch_status == -1 && errno == EINVAL;

    errno = 0;
    switch_status = 1;
    return ok;
}

static void switch_refuses_misuse_it_can_see_without_switching(void)
{
    struct task *t = task_new();
    struct coroutine garbage, zero, released;
    struct coroutine *self = coroutine_self();
    pthread_t thread;

    memset(&garbage, 0xA5, sizeof(garbage));
    memset(&zero, 0, sizeof(zero));
    memset(&released, 0, sizeof(released));
    released.entry = return_arg;
    CHECK(coroutine_init(&released) == 0);
    CHECK(coroutine_release(&released) == 0);

    CHECK(refused(ucoro_switch(t->co, self, NULL, &switch_status))); /* from not running */
    CHECK(diagnosed("ucoro_switch", "from == coroutine_self()"));
    CHECK(refused(ucoro_switch(NULL, t->co, NULL, &switch_status)));
    CHECK(diagnosed("ucoro_switch", "from == coroutine_self()"));
    CHECK(refused(ucoro_switch(self, NULL, NULL, &switch_status)));
    CHECK(diagnosed("ucoro_switch", "to is initialised"));
    CHECK(refused(ucoro_switch(self, self, NULL, &switch_status)));
    CHECK(diagnosed("ucoro_switch", "to != from"));
    CHECK(refused(ucoro_switch(self, &garbage, NULL, &switch_status)));
    CHECK(diagnosed("ucoro_switch", "to is initialised"));
    CHECK(refused(ucoro_switch(self, &zero, NULL, &switch_status)));
    CHECK(diagnosed("ucoro_switch", "to is initialised"));
    CHECK(refused(ucoro_switch(self, &released, NULL, &switch_status)));
    CHECK(diagnosed("ucoro_switch", "to is initialised"));

    CHECK(pthread_create(&thread, NULL, publish_main_and_wait, NULL) == 0);
    pthread_mutex_lock(&other_lock);
    while (other_state != 1)
        pthread_cond_wait(&other_cond, &other_lock);
    pthread_mutex_unlock(&other_lock);
    CHECK(refused(ucoro_switch(self, other_main, NULL, &switch_status)));
    CHECK(diagnosed("ucoro_switch", "!to->caller"));
    pthread_mutex_lock(&other_lock);
    other_state = 2;
    pthread_cond_broadcast(&other_cond);
    pthread_mutex_unlock(&other_lock);
    CHECK(pthread_join(thread, NULL) == 0);

    /* Nothing ran. */
    CHECK(t->rounds == 0 && coroutine_self() == self);
    task_free(t);
}

/* ---- the queries ---- */

static int count_mappings(void)
{
    FILE *maps = fopen("/proc/self/maps", "r");
    int lines = 0;
    int c;

    if (!maps)
        return -1;
    while ((c = fgetc(maps)) != EOF)
        lines += c == '\n';
    fclose(maps);
    return lines;
}

#define MANY 64

static void guard_mode_tells_what_stacks_cost_in_mappings(void)
{
    static struct coroutine cos[MANY];
    int mode, before, after, i;

    errno = 1234;
    mode = ucoro_guard_mode();
    CHECK(errno == 1234);
    CHECK(mode == UCORO_GUARD_MADVISE || mode == UCORO_GUARD_MPROTECT);
    CHECK(ucoro_guard_mode() == mode);
    /* A size class of its own, so the stacks come from fresh slabs. */
    before = count_mappings();
    for (i = 0; i < MANY; i++) {
        cos[i].stack_size = 80 << 10;
        cos[i].entry = return_arg;
        CHECK(coroutine_init(&cos[i]) == 0);
    }
    after = count_mappings();
    printf("guard mode %s: %d stacks added %d mappings\n",
           mode == UCORO_GUARD_MADVISE ? "madvise" : "mprotect", MANY, after - before);
    /* Sanitizers map shadow memory for new mappings: no count there. */
    if (ucoro_sanitizers() == 0 && mode == UCORO_GUARD_MADVISE)
        CHECK(after - before < MANY / 4); /* a few slabs */
    else if (ucoro_sanitizers() == 0)
        CHECK(after - before >= MANY); /* guard and stack, each */
    for (i = 0; i < MANY; i++)
        CHECK(coroutine_release(&cos[i]) == 0);
}

static void sanitizers_are_those_of_the_build(void)
{
    unsigned expected = 0;

#if defined(__SANITIZE_ADDRESS__)
    expected |= UCORO_SANITIZER_ADDRESS;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
    expected |= UCORO_SANITIZER_ADDRESS;
#endif
#endif
#if defined(__SANITIZE_THREAD__)
    expected |= UCORO_SANITIZER_THREAD;
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
    expected |= UCORO_SANITIZER_THREAD;
#endif
#endif
    /* The suite builds the library and the program with the same flags. */
    CHECK(ucoro_sanitizers() == expected);
}

int main(void)
{
    ucoro_set_diagnostic_handler(capture, NULL);
    RUN(user_data_starts_null_and_keeps_what_is_set);
    RUN(init_clears_the_user_data_of_a_reused_struct);
    RUN(main_coroutines_have_user_data_of_their_own_per_thread);
    RUN(set_user_data_rejects_what_is_no_coroutine);
    RUN(switch_passes_values_both_ways_null_included);
    RUN(switch_nests_as_the_runtime_books_say);
    RUN(switch_resumes_a_coroutine_on_another_thread);
    RUN(switch_returns_the_result_of_an_entry_that_returns);
    RUN(switch_refuses_misuse_it_can_see_without_switching);
    RUN(guard_mode_tells_what_stacks_cost_in_mappings);
    RUN(sanitizers_are_those_of_the_build);
    return check_report();
}
