/*
 * A GLib program turns ucoro's diagnostics into GLib criticals, as the
 * originals' g_return_val_if_fail checks were: a three-line forwarder to
 * g_return_if_fail_warning, with plain `ucoro` (no ucoro-glib module).
 * Checked with g_test_expect_message, so a missing or different critical
 * fails, and an unexpected one is fatal.
 *
 * SPDX-License-Identifier: MIT OR Apache-2.0
 */
#define G_LOG_DOMAIN "ucoro-test"

#include "glib_criticals.h"

#ifdef UCORO_GLIB
#error "this test is of the program's own forwarder: build with ucoro, not ucoro-glib"
#endif

static void forward_to_glib(const char *function, const char *condition, void *user_data)
{
    (void)user_data;
    g_return_if_fail_warning(G_LOG_DOMAIN, function, condition);
}

int main(int argc, char *argv[])
{
    int cases;

    g_test_init(&argc, &argv, NULL);
    ucoro_set_diagnostic_handler(forward_to_glib, NULL);
    cases = add_glib_cases("glib");
    return run_glib_cases(cases);
}
