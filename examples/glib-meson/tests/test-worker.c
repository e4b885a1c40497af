/*
 * The sample's tests, shaped like spice-gtk's tests/coroutine.c: misuse of
 * the coroutine API must be a GLib critical in the log domain of the code
 * that made the call. The library (src/) logs as "Sample"; this file as
 * "Sample-test" (meson.build sets both). It links the library's objects
 * straight from its static convenience library (extract_all_objects).
 *
 * SPDX-License-Identifier: MIT OR Apache-2.0
 */
#include "sample-worker.h"

#include "coroutine.h"

/* Sums the values it is given until it gets NULL; hands out each sum. */
static void sum_values(SampleWorker *worker, gpointer first_value, gpointer user_data)
{
    gsize sum = 0;
    gpointer value;

    (void)worker;
    (void)user_data;
    for (value = first_value; value; value = sample_worker_wait(GSIZE_TO_POINTER(sum)))
        sum += GPOINTER_TO_SIZE(value);
}

static SampleWorker *finished_worker(void)
{
    SampleWorker *worker = sample_worker_new(sum_values, NULL);

    g_assert_nonnull(worker);
    g_assert_true(sample_worker_resume(worker, GSIZE_TO_POINTER(2)) == GSIZE_TO_POINTER(2));
    g_assert_null(sample_worker_resume(worker, NULL));
    g_assert_true(sample_worker_is_done(worker));
    return worker;
}

static void test_worker_sums_what_it_is_given(void)
{
    SampleWorker *worker = sample_worker_new(sum_values, NULL);

    /* Criticals are fatal in a GTest: any here fails the test. */
    g_assert_true(sample_worker_resume(worker, GSIZE_TO_POINTER(1)) == GSIZE_TO_POINTER(1));
    g_assert_true(sample_worker_resume(worker, GSIZE_TO_POINTER(2)) == GSIZE_TO_POINTER(3));
    g_assert_true(sample_worker_resume(worker, GSIZE_TO_POINTER(4)) == GSIZE_TO_POINTER(7));
    g_assert_null(sample_worker_resume(worker, NULL));
    g_assert_true(sample_worker_is_done(worker));
    sample_worker_free(worker);
}

static void test_resuming_a_finished_worker_is_a_critical(void)
{
    SampleWorker *worker = finished_worker();

    g_test_expect_message("Sample", G_LOG_LEVEL_CRITICAL, "*!to->exited*");
    g_assert_null(sample_worker_resume(worker, GSIZE_TO_POINTER(1)));
    g_test_assert_expected_messages();
    sample_worker_free(worker);
}

static void resume_itself(SampleWorker *worker, gpointer first_value, gpointer user_data)
{
    (void)first_value;
    (void)user_data;
    g_test_expect_message("Sample", G_LOG_LEVEL_CRITICAL, "*!to->caller*");
    g_assert_null(sample_worker_resume(worker, NULL));
    g_test_assert_expected_messages();
}

static void test_resuming_a_running_worker_is_a_critical(void)
{
    SampleWorker *worker = sample_worker_new(resume_itself, NULL);

    g_assert_null(sample_worker_resume(worker, NULL));
    g_assert_true(sample_worker_is_done(worker));
    sample_worker_free(worker);
}

static void *return_arg(void *arg)
{
    return arg;
}

/* As spice-gtk's test does it: the API called from this file, so the
 * critical is in this file's domain. */
static void test_yieldto_an_exited_coroutine_is_a_critical_in_the_callers_domain(void)
{
    struct coroutine co = { .stack_size = 64 << 10, .entry = return_arg };

    g_assert_cmpint(coroutine_init(&co), ==, 0);
    g_assert_true(coroutine_yieldto(&co, &co) == &co);
    g_test_expect_message(G_LOG_DOMAIN, G_LOG_LEVEL_CRITICAL,
                          "coroutine_yieldto: assertion '!to->exited' failed");
    g_assert_null(coroutine_yieldto(&co, NULL));
    g_test_assert_expected_messages();
    coroutine_release(&co);
}

/* Without g_test_expect_message the critical stops the program, as
 * G_DEBUG=fatal-criticals would stop any GLib program. */
static void test_an_unexpected_critical_is_fatal(void)
{
    if (g_test_subprocess()) {
        sample_worker_resume(finished_worker(), NULL);
        return; /* not reached */
    }
    g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
    g_test_trap_assert_failed();
    g_test_trap_assert_stderr("*Sample-CRITICAL*coroutine_yieldto: assertion '!to->exited' failed*");
}

int main(int argc, char *argv[])
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/sample/worker/sums-what-it-is-given", test_worker_sums_what_it_is_given);
    g_test_add_func("/sample/worker/resume-finished-is-critical",
                    test_resuming_a_finished_worker_is_a_critical);
    g_test_add_func("/sample/worker/resume-running-is-critical",
                    test_resuming_a_running_worker_is_a_critical);
    g_test_add_func("/sample/coroutine/yieldto-exited-in-callers-domain",
                    test_yieldto_an_exited_coroutine_is_a_critical_in_the_callers_domain);
    g_test_add_func("/sample/worker/unexpected-critical-is-fatal", test_an_unexpected_critical_is_fatal);
    return g_test_run();
}
