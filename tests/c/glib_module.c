/*
 * The ucoro-glib module: built with `pkg-config --cflags --libs ucoro-glib`
 * and no handler code of its own, this program gets ucoro's misuse messages
 * as GLib criticals in its own G_LOG_DOMAIN. Checked with
 * g_test_expect_message, so a missing or different critical fails, and an
 * unexpected one is fatal (g_test_init makes criticals fatal).
 *
 * SPDX-License-Identifier: MIT OR Apache-2.0
 */
#define G_LOG_DOMAIN "ucoro-module-test"

#include <glib.h>

#include "coroutine.h"

#ifndef UCORO_GLIB
#error "build with the ucoro-glib pkg-config module (its Cflags define UCORO_GLIB)"
#endif

static int tests_passed;

static void *return_arg(void *arg)
{
    return arg;
}

static void finish(struct coroutine *co)
{
    co->stack_size = 64 << 10;
    co->entry = return_arg;
    g_assert_cmpint(coroutine_init(co), ==, 0);
    g_assert_true(coroutine_yieldto(co, co) == co);
    g_assert_true(co->exited);
}

static void resuming_an_exited_coroutine_is_a_critical_in_the_callers_domain(void)
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

static void resuming_a_running_coroutine_is_a_critical_in_the_callers_domain(void)
{
    struct coroutine co = { .stack_size = 64 << 10, .entry = resume_itself };

    g_assert_cmpint(coroutine_init(&co), ==, 0);
    coroutine_yieldto(&co, NULL);
    g_assert_true(co.exited);
    g_assert_cmpint(coroutine_release(&co), ==, 0);
    tests_passed++;
}

static void other_functions_report_in_the_callers_domain_too(void)
{
    struct continuation cc = { 0 };

    g_test_expect_message(G_LOG_DOMAIN, G_LOG_LEVEL_CRITICAL,
                          "coroutine_release: assertion '!coroutine_is_main(co)' failed");
    g_assert_cmpint(coroutine_release(coroutine_self()), ==, -1);
    g_test_assert_expected_messages();

    g_test_expect_message(G_LOG_DOMAIN, G_LOG_LEVEL_CRITICAL,
                          "cc_init: assertion 'cc->entry != NULL' failed");
    g_assert_cmpint(cc_init(&cc), ==, -1);
    g_test_assert_expected_messages();
    tests_passed++;
}

static void correct_use_logs_nothing(void)
{
    struct coroutine co = { 0 };

    /* Any critical here would be fatal. */
    finish(&co);
    g_assert_cmpint(coroutine_release(&co), ==, 0);
    tests_passed++;
}

/* The documented limit: a call through a function pointer bypasses the
 * macro, so its critical carries no domain. */
static void a_call_through_a_pointer_is_a_critical_without_domain(void)
{
    void *(*yieldto)(struct coroutine *, void *) = &coroutine_yieldto;
    struct coroutine co = { 0 };

    finish(&co);
    g_test_expect_message(NULL, G_LOG_LEVEL_CRITICAL,
                          "coroutine_yieldto: assertion '!to->exited' failed");
    g_assert_null(yieldto(&co, NULL));
    g_test_assert_expected_messages();
    g_assert_cmpint(coroutine_release(&co), ==, 0);
    tests_passed++;
}

static int own_handler_calls;

static void count_messages(const char *function, const char *condition, void *user_data)
{
    (void)function;
    (void)condition;
    *(int *)user_data += 1;
}

static void an_own_handler_replaces_the_criticals_until_reset_with_null(void)
{
    struct coroutine co = { 0 };

    finish(&co);
    ucoro_set_diagnostic_handler(count_messages, &own_handler_calls);
    g_assert_null(coroutine_yieldto(&co, NULL));
    g_assert_cmpint(own_handler_calls, ==, 1);

    ucoro_set_diagnostic_handler(NULL, NULL);
    g_test_expect_message(G_LOG_DOMAIN, G_LOG_LEVEL_CRITICAL, "*!to->exited*");
    g_assert_null(coroutine_yieldto(&co, NULL));
    g_test_assert_expected_messages();
    g_assert_cmpint(own_handler_calls, ==, 1);
    g_assert_cmpint(coroutine_release(&co), ==, 0);
    tests_passed++;
}

int main(int argc, char *argv[])
{
    int status;

    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/ucoro/glib-module/exited-is-critical",
                    resuming_an_exited_coroutine_is_a_critical_in_the_callers_domain);
    g_test_add_func("/ucoro/glib-module/running-is-critical",
                    resuming_a_running_coroutine_is_a_critical_in_the_callers_domain);
    g_test_add_func("/ucoro/glib-module/other-functions",
                    other_functions_report_in_the_callers_domain_too);
    g_test_add_func("/ucoro/glib-module/correct-use-is-silent", correct_use_logs_nothing);
    g_test_add_func("/ucoro/glib-module/function-pointer-has-no-domain",
                    a_call_through_a_pointer_is_a_critical_without_domain);
    g_test_add_func("/ucoro/glib-module/own-handler",
                    an_own_handler_replaces_the_criticals_until_reset_with_null);
    status = g_test_run();
    /* The harness line tests/c_dropin.rs reads (g_test_run aborted on any
     * failed assertion before this). */
    g_print("%d passed, %d failed\n", tests_passed, status == 0 ? 0 : 1);
    return status == 0 && tests_passed == 6 ? 0 : 1;
}
