/*
 * The GLib criticals every GLib-facing way of using ucoro must give (the
 * program's own forwarder, glib_forward.c; the ucoro-glib module,
 * glib_module.c): misuse is a critical in the program's
 * G_LOG_DOMAIN, correct use is silent. Included by those programs after
 * they define G_LOG_DOMAIN; each registers the cases with add_glib_cases().
 *
 * SPDX-License-Identifier: MIT OR Apache-2.0
 */
#ifndef UCORO_TEST_GLIB_CRITICALS_H
#define UCORO_TEST_GLIB_CRITICALS_H

#include <glib.h>

#include "coroutine.h"

/* Counted by every case, printed by main as the harness line. */
static int tests_passed;

static void *return_arg(void *arg)
{
    return arg;
}

/* Leaves co exited, its entry having run to completion. */
static void finish(struct coroutine *co)
{
    co->stack_size = 64 << 10;
    co->entry = return_arg;
    g_assert_cmpint(coroutine_init(co), ==, 0);
    g_assert_true(coroutine_yieldto(co, co) == co);
    g_assert_true(co->exited);
}

static void resuming_an_exited_coroutine_is_a_critical(void)
{
    struct coroutine co = { 0 };

    finish(&co);
    g_test_expect_message(G_LOG_DOMAIN, G_LOG_LEVEL_CRITICAL,
                          "coroutine_yieldto: assertion '!to->exited' failed");
    g_assert_null(coroutine_yieldto(&co, NULL));
    g_test_assert_expected_messages();
    g_assert_cmpint(coroutine_release(&co), ==, 0);
    tests_passed++;
}

static void *resume_itself(void *arg)
{
    (void)arg;
    g_test_expect_message(G_LOG_DOMAIN, G_LOG_LEVEL_CRITICAL,
                          "coroutine_yieldto: assertion '!to->caller' failed");
    g_assert_null(coroutine_yieldto(coroutine_self(), NULL));
    g_test_assert_expected_messages();
    return NULL;
}

static void resuming_a_running_coroutine_is_a_critical(void)
{
    struct coroutine co = { .stack_size = 64 << 10, .entry = resume_itself };

    g_assert_cmpint(coroutine_init(&co), ==, 0);
    coroutine_yieldto(&co, NULL);
    g_assert_true(co.exited);
    g_assert_cmpint(coroutine_release(&co), ==, 0);
    tests_passed++;
}

static void correct_use_logs_nothing(void)
{
    struct coroutine co = { 0 };

    /* Any critical here would be fatal (g_test_init makes them so). */
    finish(&co);
    g_assert_cmpint(coroutine_release(&co), ==, 0);
    tests_passed++;
}

/* Registers the shared cases under /ucoro/PREFIX/; returns how many. */
static int add_glib_cases(const char *prefix)
{
    static const struct {
        const char *name;
        void (*run)(void);
    } cases[] = {
        { "exited-is-critical", resuming_an_exited_coroutine_is_a_critical },
        { "running-is-critical", resuming_a_running_coroutine_is_a_critical },
        { "correct-use-is-silent", correct_use_logs_nothing },
    };
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(cases); i++) {
        char *path = g_strdup_printf("/ucoro/%s/%s", prefix, cases[i].name);

        g_test_add_func(path, cases[i].run);
        g_free(path);
    }
    return (int)G_N_ELEMENTS(cases);
}

/* g_test_run, then the harness line tests/c_dropin.rs reads ("<n> passed,
 * 0 failed"); exits non-zero unless all expected cases passed (g_test_run
 * aborted on any failed assertion before this). */
static int run_glib_cases(int expected)
{
    int status = g_test_run();

    g_print("%d passed, %d failed\n", tests_passed, status == 0 ? 0 : 1);
    return status == 0 && tests_passed == expected ? 0 : 1;
}

#endif /* UCORO_TEST_GLIB_CRITICALS_H */
