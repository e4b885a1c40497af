/*
 * SampleWorker: a function that runs in a coroutine of its own and trades
 * values with whoever resumes it, as spice-gtk's channels run their I/O.
 * The small library of the GLib + Meson sample that uses ucoro.
 *
 * SPDX-License-Identifier: MIT OR Apache-2.0
 */
#ifndef SAMPLE_WORKER_H
#define SAMPLE_WORKER_H

#include <glib.h>

G_BEGIN_DECLS

typedef struct SampleWorker SampleWorker;

/* The worker's body: runs at the first sample_worker_resume, gets its
 * value, and finishes when it returns. */
typedef void (*SampleWorkFunc)(SampleWorker *worker, gpointer first_value, gpointer user_data);

/* A worker that has not started yet. Returns NULL if no coroutine could be
 * made (no memory). */
SampleWorker *sample_worker_new(SampleWorkFunc func, gpointer user_data);

/* Runs worker until it waits or finishes, passing value in. Returns what
 * it handed out in sample_worker_wait, or NULL once it finished. Resuming a
 * finished or running worker is a programming error: a critical (in this
 * library's log domain, "Sample") and NULL. */
gpointer sample_worker_resume(SampleWorker *worker, gpointer value);

/* From inside the worker's body: hands value to the resumer and waits;
 * returns the value of the next sample_worker_resume. */
gpointer sample_worker_wait(gpointer value);

gboolean sample_worker_is_done(SampleWorker *worker);

/* Frees a worker that is not running. */
void sample_worker_free(SampleWorker *worker);

G_END_DECLS

#endif /* SAMPLE_WORKER_H */
