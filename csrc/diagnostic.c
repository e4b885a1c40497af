/*
 * The one place non-fatal misuse is reported. GLib programs replace the
 * default (a line on stderr) to turn these into GLib criticals, as the
 * originals' g_return_val_if_fail checks were.
 *
 * SPDX-License-Identifier: MIT OR Apache-2.0
 */
#include <stdio.h>

#include "coroutine.h"
#include "ucoro_internal.h"

/* The handler and its user data change together under the lock, so a
 * diagnostic never pairs one handler with another's data. */
static ucoro_diagnostic_fn handler_fn;
static void *handler_data;

void ucoro_set_diagnostic_handler(ucoro_diagnostic_fn fn, void *user_data)
{
    ucoro__lock(UCORO_LOCK_DIAGNOSTIC);
    handler_fn = fn;
    handler_data = fn ? user_data : NULL;
    ucoro__unlock(UCORO_LOCK_DIAGNOSTIC);
}

void ucoro__diagnose(const char *function, const char *condition)
{
    ucoro_diagnostic_fn fn;
    void *data;

    ucoro__lock(UCORO_LOCK_DIAGNOSTIC);
    fn = handler_fn;
    data = handler_data;
    ucoro__unlock(UCORO_LOCK_DIAGNOSTIC);

    /* Called outside the lock: a handler may itself install a handler. */
    if (fn)
        fn(function, condition, data);
    else
        fprintf(stderr, "%s: assertion '%s' failed\n", function, condition);
}
