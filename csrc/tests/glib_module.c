/*
 * The ucoro-glib module: built with `pkg-config --cflags --libs ucoro-glib`
 * and no handler code of its own, this program gets ucoro's misuse messages
 * as GLib criticals in its own G_LOG_DOMAIN: the cases of glib_criticals.h,
 * and what is particular to the module. Checked with g_test_expect_message,
 * so a missing or different critical fails, and an unexpected one is fatal
 * (g_test_init makes criticals fatal).
 *
 * SPDX-License-Identifier: MIT OR Apache-2.0
 */
#define G_LOG_DOMAIN "ucoro-module-test"

#include "glib_criticals.h"

#ifndef UCORO_GLIB
#error "build with the ucoro-glib pkg-config module (its Cflags define UCORO_GLIB)"
#endif

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
    int cases;

    g_test_init(&argc, &argv, NULL);
    cases = add_glib_cases("glib-module");
    g_test_add_func("/ucoro/glib-module/other-functions",
                    other_functions_report_in_the_callers_domain_too);
    g_test_add_func("/ucoro/glib-module/function-pointer-has-no-domain",
                    a_call_through_a_pointer_is_a_critical_without_domain);
    g_test_add_func("/ucoro/glib-module/own-handler",
                    an_own_handler_replaces_the_criticals_until_reset_with_null);
    return run_glib_cases(cases + 3);
}
