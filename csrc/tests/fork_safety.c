/*
 * fork() while another thread is inside the library: the child must be able
 * to make and run coroutines. The originals map each stack with mmap and
 * take no lock of their own, so a program that forks a worker (and keeps
 * using coroutines in it) while other threads create and release
 * coroutines works with them; a lock held by a thread that does not exist
 * in the child would hang the child's first coroutine_init for good.
 *
 * A worker thread creates and releases batches of coroutines (more than a
 * thread's pool of freed stacks holds, in several size classes, so that it
 * keeps taking the shared lock, maps and unmaps slabs) and swaps diagnostic
 * handlers (the library's other locks). The main thread forks FORKS times;
 * each child arms an alarm (a hang dies of SIGALRM), creates coroutines of
 * sizes the worker uses, runs each to its end, checks the result and exits
 * 0. The parent counts the children that did, and stops at the first one
 * that did not.
 *
 * SPDX-License-Identifier: MIT OR Apache-2.0
 */
#define _GNU_SOURCE

#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "coroutine.h"

#include "check.h"

#define FORKS 300
#define BATCH 40
#define CHILD_COROUTINES 20

static volatile int stop_worker;

static void *add_one(void *arg)
{
    return (void *)((intptr_t)arg + 1);
}

static void quiet_handler(const char *function, const char *condition, void *data)
{
    (void)function;
    (void)condition;
    (void)data;
}

/* A stack size per batch round: three classes, none the default. */
static size_t size_for(unsigned round)
{
    static const size_t sizes[] = {64 << 10, 256 << 10, 1 << 20};

    return sizes[round % 3];
}

static void *worker(void *arg)
{
    static struct coroutine cos[BATCH];
    unsigned round = 0;

    (void)arg;
    while (!__atomic_load_n(&stop_worker, __ATOMIC_RELAXED)) {
        int i;

        for (i = 0; i < BATCH; i++) {
            cos[i].stack_size = size_for(round);
            cos[i].entry = add_one;
            cos[i].release = NULL;
            if (coroutine_init(&cos[i]) != 0)
                abort();
        }
        for (i = 0; i < BATCH; i++)
            if (coroutine_release(&cos[i]) != 0)
                abort();
        ucoro_set_diagnostic_handler(round & 1 ? quiet_handler : NULL, NULL);
        round++;
    }
    return NULL;
}

/* In the child: a few coroutines of the worker's sizes, each run to its end. */
static int child_main(void)
{
    struct coroutine co;
    int i;

    alarm(20);
    for (i = 0; i < CHILD_COROUTINES; i++) {
        co.stack_size = size_for((unsigned)i);
        co.entry = add_one;
        co.release = NULL;
        if (coroutine_init(&co) != 0)
            return 2;
        if (coroutine_yieldto(&co, (void *)(intptr_t)i) != (void *)(intptr_t)(i + 1))
            return 3;
        if (!co.exited)
            return 4;
    }
    return 0;
}

static void test_children_use_coroutines_while_a_thread_holds_the_library(void)
{
    pthread_t thread;
    int i, ok = 0, hung = 0, other = 0;

    CHECK(pthread_create(&thread, NULL, worker, NULL) == 0);
    for (i = 0; i < FORKS; i++) {
        int status;
        pid_t pid = fork();

        if (pid == 0)
            _exit(child_main());
        CHECK(pid > 0);
        if (pid < 0)
            break;
        if (waitpid(pid, &status, 0) != pid)
            other++;
        else if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
            ok++;
        else if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM)
            hung++;
        else
            other++;
        if (ok != i + 1)
            break; /* one hang is enough to know (each costs the alarm) */
    }
    __atomic_store_n(&stop_worker, 1, __ATOMIC_RELAXED);
    CHECK(pthread_join(thread, NULL) == 0);
    printf("children: %d ran their coroutines, %d hung, %d failed otherwise\n", ok, hung,
           other);
    CHECK(hung == 0);
    CHECK(other == 0);
    CHECK(ok == FORKS);
}

int main(void)
{
    RUN(test_children_use_coroutines_while_a_thread_holds_the_library);
    return check_report();
}
