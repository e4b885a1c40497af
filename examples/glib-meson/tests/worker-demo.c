/*
 * A plain GLib program (no GTest, so criticals are not fatal unless
 * G_DEBUG=fatal-criticals says so) that uses the sample library, linked
 * shared. The sample's meson.build runs it under G_DEBUG=fatal-criticals:
 * correct use must log nothing; with --misuse it resumes a finished worker,
 * and the critical must stop it.
 *
 * SPDX-License-Identifier: MIT OR Apache-2.0
 */
#include <string.h>

#include "sample-worker.h"

/* Hands out the Fibonacci numbers, one per resume. */
static void fibonacci(SampleWorker *worker, gpointer first_value, gpointer user_data)
{
    guint64 a = 0, b = 1;
    guint count = GPOINTER_TO_UINT(user_data);

    (void)worker;
    (void)first_value;
    while (count--) {
        guint64 next = a + b;

        sample_worker_wait(&a);
        a = b;
        b = next;
    }
}

int main(int argc, char *argv[])
{
    SampleWorker *worker = sample_worker_new(fibonacci, GUINT_TO_POINTER(10));
    guint64 *value;

    while ((value = sample_worker_resume(worker, NULL)))
        g_print("%" G_GUINT64_FORMAT " ", *value);
    g_print("\n");
    if (argc > 1 && strcmp(argv[1], "--misuse") == 0)
        sample_worker_resume(worker, NULL);
    sample_worker_free(worker);
    g_print("done\n");
    return 0;
}
