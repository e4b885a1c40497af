/*
 * A GLib program turns ucoro's diagnostics into GLib criticals, as the
 * originals' g_return_val_if_fail checks were: a three-line forwarder to
 * g_return_if_fail_warning. Checked with g_test_expect_message, so a
 * missing or different critical fails, and an unexpected one is fatal.
 *
 * SPDX-License-Identifier: MIT OR Apache-2.0
 */
#define G_LOG_DOMAIN "ucoro-test"

#include <glib.h>

#include "coroutine.h"

static void forward_to_glib(const char *function, const char *condition, void *user_data)
{
    (void)user_data;
    g_return_if_fail_warning(G_LOG_DOMAIN, function, condition);
}

static int tests_passed;

static void *return_arg(void *arg)
{
    return arg;
}

static void resuming_an_exited_coroutine_is_a_critical(void)
{
    struct coroutine co = { .stack_size = 64 << 10, .entry = return_arg };

    g_assert_cmpint(coroutine_init(&co), ==, 0);
    g_assert_true(coroutine_yieldto(&co, &co) == &co);
    g_assert_true(co.exited);

    g_test_expect_message(G_LOG_DOMAIN, G_LOG_LEVEL_CRITICAL, "*!to->exited*");
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
    struct coroutine co = { .stack_size = 64 << 10, .entry = return_arg };

    /* Any critical here would be fatal (g_test_init makes them so). */
    g_assert_cmpint(coroutine_init(&co), ==, 0);
    g_assert_true(coroutine_yieldto(&co, &co) == &co);
    g_assert_cmpint(coroutine_release(&co), ==, 0);
    tests_passed++;
}

int main(int argc, char *argv[])
{
    int status;

    g_test_init(&argc, &argv, NULL);
    ucoro_set_diagnostic_handler(forward_to_glib, NULL);
    g_test_add_func("/ucoro/glib/exited-is-critical", resuming_an_exited_coroutine_is_a_critical);
    g_test_add_func("/ucoro/glib/running-is-critical", resuming_a_running_coroutine_is_a_critical);
    g_test_add_func("/ucoro/glib/correct-use-is-silent", correct_use_logs_nothing);
    status = g_test_run();
    /* The harness line tests/c_dropin.rs reads (g_test_run aborted on any
     * failed assertion before this). */
    g_print("%d passed, %d failed\n", tests_passed, status == 0 ? 0 : 1);
    return status == 0 && tests_passed == 3 ? 0 : 1;
}
