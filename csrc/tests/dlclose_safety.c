/*
 * A plugin that brings libucoro with it (say, a module linked to gtk-vnc)
 * is loaded with dlopen, used, and unloaded with dlclose while the program
 * goes on. The originals leave nothing behind in the process; libucoro
 * leaves a per-thread destructor (the thread's pool of freed stacks and its
 * signal stack) and the stack-overflow signal handler, all pointing into
 * its code. If dlclose unmapped that code, the next thread exit (or the
 * next SIGSEGV anywhere) would jump into nothing. So the library is linked
 * -z nodelete: dlclose leaves it loaded.
 *
 * Usage: dlclose_safety PATH/libucoro.so.N
 *
 * SPDX-License-Identifier: MIT OR Apache-2.0
 */
#define _GNU_SOURCE

#include <dlfcn.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "coroutine.h"

#include "check.h"

static int (*init_fn)(struct coroutine *);
static void *(*yieldto_fn)(struct coroutine *, void *);

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int used, may_exit;

static void *add_one(void *arg)
{
    return (void *)((intptr_t)arg + 1);
}

/* Runs a coroutine to its end (its stack goes to this thread's pool, which
 * registers the thread-exit destructor), then waits until main has closed
 * the library before it exits. */
static void *user_thread(void *arg)
{
    struct coroutine co;
    void *result;

    (void)arg;
    memset(&co, 0, sizeof(co));
    co.stack_size = 64 << 10;
    co.entry = add_one;
    result = init_fn(&co) == 0 ? yieldto_fn(&co, (void *)41) : NULL;
    pthread_mutex_lock(&lock);
    used = result == (void *)42 ? 1 : -1;
    pthread_cond_broadcast(&cond);
    while (!may_exit)
        pthread_cond_wait(&cond, &lock);
    pthread_mutex_unlock(&lock);
    return NULL;
}

static void test_dlclose_leaves_the_library_loaded_for_its_destructors(const char *path)
{
    pthread_t thread;
    struct sigaction sa;
    Dl_info info;
    void *handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);

    CHECK(handle != NULL);
    if (!handle) {
        fprintf(stderr, "dlopen: %s\n", dlerror());
        return;
    }
    *(void **)&init_fn = dlsym(handle, "coroutine_init");
    *(void **)&yieldto_fn = dlsym(handle, "coroutine_yieldto");
    CHECK(init_fn && yieldto_fn);
    if (!init_fn || !yieldto_fn)
        return;

    CHECK(pthread_create(&thread, NULL, user_thread, NULL) == 0);
    pthread_mutex_lock(&lock);
    while (!used)
        pthread_cond_wait(&cond, &lock);
    pthread_mutex_unlock(&lock);
    CHECK(used == 1);

    CHECK(dlclose(handle) == 0);
    /* Still loaded: the library's own code is still mapped. */
    handle = dlopen(path, RTLD_NOW | RTLD_NOLOAD);
    CHECK(handle != NULL);
    if (handle)
        dlclose(handle);
    /* The SIGSEGV handler it installed points into mapped code. */
    CHECK(sigaction(SIGSEGV, NULL, &sa) == 0);
    CHECK((sa.sa_flags & SA_SIGINFO) != 0);
    CHECK(dladdr(*(void **)&sa.sa_sigaction, &info) != 0);

    /* The thread's exit runs the library's destructors. */
    pthread_mutex_lock(&lock);
    may_exit = 1;
    pthread_cond_broadcast(&cond);
    pthread_mutex_unlock(&lock);
    CHECK(pthread_join(thread, NULL) == 0);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s PATH/libucoro.so.N\n", argv[0]);
        return 2;
    }
    printf("test test_dlclose_leaves_the_library_loaded_for_its_destructors\n");
    fflush(stdout);
    test_dlclose_leaves_the_library_loaded_for_its_destructors(argv[1]);
    return check_report();
}
