/*
 * SampleWorker over ucoro's coroutine API, written as spice-gtk writes its
 * coroutine code. Built with the ucoro-glib dependency, so a misuse that
 * ucoro refuses (coroutine_yieldto into a finished or running worker) is a
 * critical in this file's G_LOG_DOMAIN, with no code here to make it so.
 *
 * SPDX-License-Identifier: MIT OR Apache-2.0
 */
#include "sample-worker.h"

#include "coroutine.h"

struct SampleWorker {
    struct coroutine coroutine; /* first: the coroutine is the worker */
    SampleWorkFunc func;
    gpointer user_data;
};

static void *worker_body(void *first_value)
{
    SampleWorker *worker = (SampleWorker *)coroutine_self();

    worker->func(worker, first_value, worker->user_data);
    return NULL;
}

SampleWorker *sample_worker_new(SampleWorkFunc func, gpointer user_data)
{
    SampleWorker *worker = g_new0(SampleWorker, 1);

    worker->coroutine.stack_size = 256 << 10;
    worker->coroutine.entry = worker_body;
    worker->func = func;
    worker->user_data = user_data;
    if (coroutine_init(&worker->coroutine) < 0) {
        g_free(worker);
        return NULL;
    }
    return worker;
}

gpointer sample_worker_resume(SampleWorker *worker, gpointer value)
{
    return coroutine_yieldto(&worker->coroutine, value);
}

gpointer sample_worker_wait(gpointer value)
{
    return coroutine_yield(value);
}

gboolean sample_worker_is_done(SampleWorker *worker)
{
    return worker->coroutine.exited;
}

void sample_worker_free(SampleWorker *worker)
{
    coroutine_release(&worker->coroutine);
    g_free(worker);
}
