/*
 * SPEC §2, the C API, checked through the installed <coroutine.h> and
 * libucoro (shared or static, as tests/c_dropin.rs links it): one function
 * per rule a caller relies on.
 *
 * SPDX-License-Identifier: MIT OR Apache-2.0
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "coroutine.h"

#include "check.h"

#define DEFAULT_STACK_SIZE ((size_t)16 << 20)
#define SMALL_STACK_SIZE ((size_t)64 << 10)

#define INT_TO_PTR(i) ((void *)(intptr_t)(i))
#define PTR_TO_INT(p) ((int)(intptr_t)(p))

/* ---- diagnostics, captured through the replaceable handler ---- */

static int diagnostics;
static char last_function[64];
static char last_condition[64];
static void *last_user_data;

static void capture_diagnostic(const char *function, const char *condition, void *user_data)
{
    diagnostics++;
    snprintf(last_function, sizeof last_function, "%s", function);
    snprintf(last_condition, sizeof last_condition, "%s", condition);
    last_user_data = user_data;
}

static void forget_diagnostics(void)
{
    diagnostics = 0;
    last_function[0] = '\0';
    last_condition[0] = '\0';
    last_user_data = NULL;
}

/* Exactly one diagnostic since forget_diagnostics(), from function (and
 * about condition, unless condition is NULL). */
static int diagnosed(const char *function, const char *condition)
{
    return diagnostics == 1 && strcmp(last_function, function) == 0 &&
           (!condition || strcmp(last_condition, condition) == 0);
}

/* ---- helpers ---- */

/* What malloc may hand back: a struct coroutine that was never zeroed. */
static struct coroutine *never_zeroed(void *(*entry)(void *), size_t stack_size)
{
    struct coroutine *co = malloc(sizeof *co);

    if (!co)
        abort();
    memset(co, 0xa5, sizeof *co);
    co->stack_size = stack_size;
    co->entry = entry;
    co->release = NULL;
    return co;
}

static int entry_runs;

static void *count_and_return_arg(void *arg)
{
    entry_runs++;
    return arg;
}

/* Yields arg * 10 for every non-zero arg it is given; returns -1 on 0. */
static void *times_ten(void *arg)
{
    int v = PTR_TO_INT(arg);

    while (v != 0)
        v = PTR_TO_INT(coroutine_yield(INT_TO_PTR(v * 10)));
    return INT_TO_PTR(-1);
}

static void *yield_once(void *arg)
{
    coroutine_yield(arg);
    return arg;
}

/* ---- the struct ---- */

static void fields_keep_the_original_order(void)
{
    CHECK(offsetof(struct coroutine, stack_size) < offsetof(struct coroutine, entry));
    CHECK(offsetof(struct coroutine, entry) < offsetof(struct coroutine, release));
    CHECK(offsetof(struct coroutine, release) < offsetof(struct coroutine, exited));
    CHECK(offsetof(struct coroutine, exited) < offsetof(struct coroutine, caller));
    CHECK(offsetof(struct coroutine, caller) < offsetof(struct coroutine, data));
}

/* ---- init ---- */

static void init_accepts_never_zeroed_memory_and_does_not_run_entry(void)
{
    struct coroutine *co = never_zeroed(count_and_return_arg, 0);

    entry_runs = 0;
    CHECK(coroutine_init(co) == 0);
    CHECK(entry_runs == 0);
    CHECK(co->exited == 0);
    CHECK(co->caller == NULL);
    CHECK(co->stack_size == DEFAULT_STACK_SIZE);
    CHECK(coroutine_yieldto(co, INT_TO_PTR(7)) == INT_TO_PTR(7));
    CHECK(entry_runs == 1);
    CHECK(co->exited == 1);
    CHECK(coroutine_release(co) == 0);
    free(co);
}

static void init_writes_back_the_stack_size_it_used(void)
{
    struct coroutine *co = never_zeroed(count_and_return_arg, 1);

    CHECK(coroutine_init(co) == 0);
    CHECK(co->stack_size >= 1);
    CHECK(coroutine_release(co) == 0);

    co->stack_size = SMALL_STACK_SIZE + 1;
    CHECK(coroutine_init(co) == 0);
    CHECK(co->stack_size > SMALL_STACK_SIZE);
    CHECK(coroutine_release(co) == 0);
    free(co);
}

static void init_failure_sets_errno_and_yieldto_rejects(void)
{
    struct coroutine *co = never_zeroed(NULL, 0);

    forget_diagnostics();
    errno = 0;
    CHECK(coroutine_init(co) == -1);
    CHECK(errno == EINVAL);

    co->entry = count_and_return_arg;
    co->stack_size = SIZE_MAX;
    errno = 0;
    CHECK(coroutine_init(co) == -1);
    CHECK(errno == EINVAL || errno == ENOMEM);

    /* Fits in size_t, rounded up too, but no system has it. */
#if SIZE_MAX > 0xffffffffu
    co->stack_size = (size_t)1 << 62;
#else
    co->stack_size = SIZE_MAX / 16 * 15; /* 3.75 GiB of a 4 GiB address space */
#endif
    errno = 0;
    CHECK(coroutine_init(co) == -1);
    CHECK(errno == ENOMEM || errno == EINVAL);

    forget_diagnostics();
    entry_runs = 0;
    CHECK(coroutine_yieldto(co, NULL) == NULL);
    CHECK(diagnosed("coroutine_yieldto", NULL));
    CHECK(entry_runs == 0);
    free(co);

    forget_diagnostics();
    errno = 0;
    CHECK(coroutine_init(NULL) == -1);
    CHECK(errno == EINVAL);
}

static void init_again_after_exit_runs_entry_again(void)
{
    struct coroutine *co = never_zeroed(count_and_return_arg, SMALL_STACK_SIZE);
    int round;

    entry_runs = 0;
    for (round = 1; round <= 3; round++) {
        CHECK(coroutine_init(co) == 0);
        CHECK(co->exited == 0);
        CHECK(coroutine_yieldto(co, INT_TO_PTR(round)) == INT_TO_PTR(round));
        CHECK(co->exited == 1);
    }
    CHECK(entry_runs == 3);
    CHECK(coroutine_release(co) == 0);
    free(co);
}

/* ---- yieldto / yield ---- */

static void yieldto_and_yield_pass_values_both_ways(void)
{
    struct coroutine *co = never_zeroed(times_ten, SMALL_STACK_SIZE);
    struct coroutine *self = coroutine_self();

    CHECK(coroutine_init(co) == 0);
    CHECK(coroutine_yieldto(co, INT_TO_PTR(1)) == INT_TO_PTR(10));
    CHECK(co->caller == NULL); /* yield cleared it */
    CHECK(coroutine_self() == self);
    CHECK(coroutine_yieldto(co, INT_TO_PTR(2)) == INT_TO_PTR(20));
    CHECK(coroutine_yieldto(co, INT_TO_PTR(3)) == INT_TO_PTR(30));
    CHECK(co->exited == 0);
    CHECK(coroutine_yieldto(co, INT_TO_PTR(0)) == INT_TO_PTR(-1));
    CHECK(co->exited == 1);
    CHECK(co->caller == NULL);
    CHECK(coroutine_self() == self);
    CHECK(coroutine_release(co) == 0);
    free(co);
}

static int release_calls;
static int exited_seen_by_release;
static int release_result;

static int note_release(struct coroutine *co)
{
    release_calls++;
    exited_seen_by_release = co->exited;
    return release_result;
}

static void entry_return_runs_release_and_frees_once(void)
{
    struct coroutine *co = never_zeroed(count_and_return_arg, SMALL_STACK_SIZE);

    co->release = note_release;
    release_calls = 0;
    release_result = 0;
    CHECK(coroutine_init(co) == 0);
    CHECK(release_calls == 0);
    CHECK(coroutine_yieldto(co, INT_TO_PTR(5)) == INT_TO_PTR(5));
    CHECK(release_calls == 1);
    CHECK(exited_seen_by_release == 1);
    /* Exited: nothing left to free, so release is not called again. */
    CHECK(coroutine_release(co) == 0);
    CHECK(coroutine_release(co) == 0);
    CHECK(release_calls == 1);
    free(co);
}

static void negative_release_keeps_the_stack_until_a_later_release(void)
{
    struct coroutine *co = never_zeroed(count_and_return_arg, SMALL_STACK_SIZE);

    co->release = note_release;
    release_calls = 0;
    CHECK(coroutine_init(co) == 0);
    release_result = -1;
    CHECK(coroutine_release(co) == -1);
    CHECK(release_calls == 1);
    release_result = 0;
    CHECK(coroutine_release(co) == 0);
    CHECK(release_calls == 2);
    CHECK(coroutine_release(co) == 0); /* twice is safe */
    CHECK(release_calls == 2);
    free(co);
}

static void yieldto_an_exited_coroutine_returns_null_with_a_message(void)
{
    struct coroutine *co = never_zeroed(count_and_return_arg, SMALL_STACK_SIZE);

    CHECK(coroutine_init(co) == 0);
    CHECK(coroutine_yieldto(co, INT_TO_PTR(1)) == INT_TO_PTR(1));
    entry_runs = 0;
    forget_diagnostics();
    CHECK(coroutine_yieldto(co, INT_TO_PTR(2)) == NULL);
    CHECK(diagnosed("coroutine_yieldto", "!to->exited"));
    CHECK(entry_runs == 0);
    CHECK(coroutine_release(co) == 0);
    free(co);
}

static void yieldto_null_zeroed_or_uninitialised_is_rejected(void)
{
    struct coroutine *zeroed = calloc(1, sizeof *zeroed);
    struct coroutine *garbage = never_zeroed(count_and_return_arg, 0);
    struct coroutine *released = never_zeroed(count_and_return_arg, SMALL_STACK_SIZE);

    entry_runs = 0;
    forget_diagnostics();
    CHECK(coroutine_yieldto(NULL, NULL) == NULL);
    CHECK(diagnosed("coroutine_yieldto", NULL));

    forget_diagnostics();
    CHECK(coroutine_yieldto(zeroed, NULL) == NULL);
    CHECK(diagnosed("coroutine_yieldto", NULL));

    forget_diagnostics();
    CHECK(coroutine_yieldto(garbage, NULL) == NULL);
    CHECK(diagnosed("coroutine_yieldto", NULL));

    CHECK(coroutine_init(released) == 0);
    CHECK(coroutine_release(released) == 0);
    forget_diagnostics();
    CHECK(coroutine_yieldto(released, NULL) == NULL);
    CHECK(diagnosed("coroutine_yieldto", NULL));
    CHECK(entry_runs == 0);

    free(zeroed);
    free(garbage);
    free(released);
}

/* The coroutines of the caller-chain test. */
static struct coroutine *chain_outer;
static struct coroutine *chain_inner;
static struct coroutine *chain_main;

static void *chain_inner_body(void *arg)
{
    (void)arg;
    CHECK(chain_inner->caller == chain_outer);
    CHECK(chain_outer->caller == chain_main);
    /* Both wait for us: neither may be resumed. */
    forget_diagnostics();
    CHECK(coroutine_yieldto(chain_outer, NULL) == NULL);
    CHECK(diagnosed("coroutine_yieldto", "!to->caller"));
    forget_diagnostics();
    CHECK(coroutine_yieldto(chain_main, NULL) == NULL);
    CHECK(diagnosed("coroutine_yieldto", "!to->caller"));
    forget_diagnostics();
    CHECK(coroutine_yieldto(coroutine_self(), NULL) == NULL);
    CHECK(diagnosed("coroutine_yieldto", "!to->caller"));
    return INT_TO_PTR(2);
}

static void *chain_outer_body(void *arg)
{
    (void)arg;
    forget_diagnostics();
    CHECK(coroutine_yieldto(chain_outer, NULL) == NULL); /* itself */
    CHECK(diagnosed("coroutine_yieldto", "!to->caller"));
    CHECK(coroutine_yieldto(chain_inner, NULL) == INT_TO_PTR(2));
    CHECK(coroutine_self() == chain_outer);
    return INT_TO_PTR(1);
}

static void yieldto_a_coroutine_with_a_caller_is_rejected(void)
{
    chain_main = coroutine_self();
    chain_outer = never_zeroed(chain_outer_body, SMALL_STACK_SIZE);
    chain_inner = never_zeroed(chain_inner_body, SMALL_STACK_SIZE);
    CHECK(coroutine_init(chain_outer) == 0);
    CHECK(coroutine_init(chain_inner) == 0);

    forget_diagnostics();
    CHECK(coroutine_yieldto(chain_main, NULL) == NULL); /* main, from main */
    CHECK(diagnosed("coroutine_yieldto", "!to->caller"));

    CHECK(coroutine_yieldto(chain_outer, NULL) == INT_TO_PTR(1));
    CHECK(chain_outer->exited && chain_inner->exited);
    CHECK(coroutine_self() == chain_main);
    CHECK(coroutine_release(chain_outer) == 0);
    CHECK(coroutine_release(chain_inner) == 0);
    free(chain_outer);
    free(chain_inner);
}

static void yield_from_main_aborts_with_the_original_message(void)
{
    int err[2];
    pid_t pid;
    char buf[256];
    ssize_t n;
    size_t len = 0;
    int status = 0;

    fflush(stdout);
    fflush(stderr);
    CHECK(pipe(err) == 0);
    pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        struct rlimit no_core = {0, 0};

        setrlimit(RLIMIT_CORE, &no_core);
        dup2(err[1], STDERR_FILENO);
        close(err[0]);
        coroutine_yield(NULL);
        _exit(0); /* not reached if the library is right */
    }
    close(err[1]);
    while ((n = read(err[0], buf + len, sizeof buf - 1 - len)) > 0)
        len += (size_t)n;
    buf[len] = '\0';
    close(err[0]);
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
    /* The line comes first; an emulator (qemu-user, for the aarch64 run)
     * may add its own report of the signal after it. */
    CHECK(strncmp(buf, "Co-routine is yielding to no one\n", 33) == 0);
    CHECK(len == 33 || strncmp(buf + 33, "qemu:", 5) == 0);
}

/* ---- self / is_main ---- */

static struct coroutine *identity_main;
static struct coroutine *identity_co;

static void *check_identity_inside(void *arg)
{
    (void)arg;
    CHECK(coroutine_self() == identity_co);
    CHECK(!coroutine_is_main(coroutine_self()));
    CHECK(!coroutine_self_is_main());
    CHECK(coroutine_is_main(identity_main)); /* still this thread's main */
    return NULL;
}

static void self_is_never_null_and_is_main_names_the_leader(void)
{
    identity_main = coroutine_self();
    CHECK(identity_main != NULL);
    CHECK(coroutine_self() == identity_main);
    CHECK(coroutine_is_main(identity_main));
    CHECK(coroutine_self_is_main());
    CHECK(!coroutine_is_main(NULL));

    identity_co = never_zeroed(check_identity_inside, SMALL_STACK_SIZE);
    CHECK(coroutine_init(identity_co) == 0);
    CHECK(!coroutine_is_main(identity_co));
    coroutine_yieldto(identity_co, NULL);
    CHECK(coroutine_self() == identity_main);
    CHECK(coroutine_self_is_main());
    CHECK(coroutine_release(identity_co) == 0);
    free(identity_co);
}

/* ---- release ---- */

static struct coroutine *busy_outer;
static struct coroutine *busy_inner;

static void *busy_inner_body(void *arg)
{
    (void)arg;
    forget_diagnostics();
    errno = 0;
    CHECK(coroutine_release(busy_outer) == -1); /* waits in yieldto */
    CHECK(errno == EBUSY);
    CHECK(diagnostics == 1);
    return NULL;
}

static void *busy_outer_body(void *arg)
{
    (void)arg;
    forget_diagnostics();
    errno = 0;
    CHECK(coroutine_release(coroutine_self()) == -1); /* running */
    CHECK(errno == EBUSY);
    CHECK(diagnostics == 1);
    coroutine_yieldto(busy_inner, NULL);
    return NULL;
}

static void release_refuses_what_is_running_or_not_a_coroutine(void)
{
    struct coroutine *garbage = never_zeroed(count_and_return_arg, 0);
    struct coroutine *unstarted = never_zeroed(count_and_return_arg, SMALL_STACK_SIZE);

    forget_diagnostics();
    errno = 0;
    CHECK(coroutine_release(NULL) == -1);
    CHECK(errno == EINVAL);
    CHECK(diagnostics == 1);

    forget_diagnostics();
    errno = 0;
    CHECK(coroutine_release(garbage) == -1);
    CHECK(errno == EINVAL);

    forget_diagnostics();
    errno = 0;
    CHECK(coroutine_release(coroutine_self()) == -1); /* this thread's main */
    CHECK(errno == EBUSY);

    entry_runs = 0;
    CHECK(coroutine_init(unstarted) == 0);
    CHECK(coroutine_release(unstarted) == 0);
    CHECK(coroutine_release(unstarted) == 0);
    CHECK(entry_runs == 0);

    busy_outer = never_zeroed(busy_outer_body, SMALL_STACK_SIZE);
    busy_inner = never_zeroed(busy_inner_body, SMALL_STACK_SIZE);
    CHECK(coroutine_init(busy_outer) == 0);
    CHECK(coroutine_init(busy_inner) == 0);
    coroutine_yieldto(busy_outer, NULL);
    CHECK(busy_outer->exited && busy_inner->exited);
    CHECK(coroutine_release(busy_outer) == 0);
    CHECK(coroutine_release(busy_inner) == 0);

    free(garbage);
    free(unstarted);
    free(busy_outer);
    free(busy_inner);
}

/* ---- swap ---- */

static void swap_checks_from_and_to(void)
{
    struct coroutine *self = coroutine_self();
    struct coroutine *co = never_zeroed(yield_once, SMALL_STACK_SIZE);

    CHECK(coroutine_init(co) == 0);
    forget_diagnostics();
    CHECK(coroutine_swap(co, self, NULL) == NULL); /* from is not running */
    CHECK(diagnosed("coroutine_swap", NULL));
    forget_diagnostics();
    CHECK(coroutine_swap(self, self, NULL) == NULL);
    CHECK(diagnosed("coroutine_swap", NULL));
    forget_diagnostics();
    CHECK(coroutine_swap(self, NULL, NULL) == NULL);
    CHECK(diagnosed("coroutine_swap", NULL));
    CHECK(coroutine_release(co) == 0);
    free(co);
}

/* ---- nesting ---- */

#define NEST_DEPTH 8
static struct coroutine *nest[NEST_DEPTH + 1]; /* nest[0]: main */

/* Level n resumes level n + 1, which yields back; resumes it again (passing
 * -(n + 1)) to let it finish; then yields to level n - 1 and, resumed with
 * -n, returns. self must be right around every switch. */
static void *nest_body(void *arg)
{
    int level = PTR_TO_INT(arg);
    struct coroutine *me = nest[level];

    CHECK(coroutine_self() == me);
    CHECK(me->caller == nest[level - 1]);
    if (level < NEST_DEPTH) {
        CHECK(coroutine_yieldto(nest[level + 1], INT_TO_PTR(level + 1)) ==
              INT_TO_PTR(100 + level + 1));
        CHECK(coroutine_self() == me);
        CHECK(coroutine_yieldto(nest[level + 1], INT_TO_PTR(-(level + 1))) ==
              INT_TO_PTR(200 + level + 1));
        CHECK(coroutine_self() == me);
        CHECK(nest[level + 1]->exited == 1);
    }
    CHECK(coroutine_yield(INT_TO_PTR(100 + level)) == INT_TO_PTR(-level));
    CHECK(coroutine_self() == me);
    return INT_TO_PTR(200 + level);
}

static void nesting_keeps_self_right_at_every_level(void)
{
    int i;

    nest[0] = coroutine_self();
    for (i = 1; i <= NEST_DEPTH; i++) {
        nest[i] = never_zeroed(nest_body, SMALL_STACK_SIZE);
        CHECK(coroutine_init(nest[i]) == 0);
    }
    CHECK(coroutine_yieldto(nest[1], INT_TO_PTR(1)) == INT_TO_PTR(101));
    CHECK(coroutine_self() == nest[0]);
    CHECK(coroutine_yieldto(nest[1], INT_TO_PTR(-1)) == INT_TO_PTR(201));
    CHECK(coroutine_self() == nest[0]);
    for (i = 1; i <= NEST_DEPTH; i++) {
        CHECK(nest[i]->exited == 1);
        CHECK(coroutine_release(nest[i]) == 0);
        free(nest[i]);
    }
}

static struct coroutine *parent;
static struct coroutine *child;

static void *child_body(void *arg)
{
    CHECK(arg == INT_TO_PTR(1));
    CHECK(coroutine_yield(INT_TO_PTR(2)) == INT_TO_PTR(3)); /* resumed by main */
    CHECK(child->caller == nest[0]);
    return INT_TO_PTR(4);
}

static void *parent_body(void *arg)
{
    (void)arg;
    CHECK(coroutine_yieldto(child, INT_TO_PTR(1)) == INT_TO_PTR(2));
    /* Return while the child is suspended: control goes to our caller. */
    return INT_TO_PTR(10);
}

static void parent_exit_returns_to_its_caller(void)
{
    nest[0] = coroutine_self();
    parent = never_zeroed(parent_body, SMALL_STACK_SIZE);
    child = never_zeroed(child_body, SMALL_STACK_SIZE);
    CHECK(coroutine_init(parent) == 0);
    CHECK(coroutine_init(child) == 0);
    CHECK(coroutine_yieldto(parent, NULL) == INT_TO_PTR(10));
    CHECK(parent->exited == 1);
    CHECK(child->exited == 0);
    CHECK(coroutine_self() == nest[0]);
    /* The suspended child may be resumed by anyone, here main. */
    CHECK(coroutine_yieldto(child, INT_TO_PTR(3)) == INT_TO_PTR(4));
    CHECK(child->exited == 1);
    CHECK(coroutine_self() == nest[0]);
    CHECK(coroutine_release(parent) == 0);
    CHECK(coroutine_release(child) == 0);
    free(parent);
    free(child);
}

/* ---- stacks come back ---- */

#define MANY 40

/* Uses a quarter of its 64 KiB stack, then waits. */
static void *use_stack(void *arg)
{
    volatile char frame[16 << 10];
    size_t i;

    for (i = 0; i < sizeof frame; i++)
        frame[i] = 0x5a;
    coroutine_yield(arg);
    return INT_TO_PTR(frame[0] + frame[sizeof frame - 1]);
}

/* More coroutines than any per-thread cache holds, all suspended at once,
 * released, and made again: every stack must be whole and apart. */
static void released_stacks_come_back_whole(void)
{
    struct coroutine *co[MANY];
    int round, i, j;

    for (round = 0; round < 3; round++) {
        for (i = 0; i < MANY; i++) {
            co[i] = never_zeroed(use_stack, SMALL_STACK_SIZE);
            CHECK(coroutine_init(co[i]) == 0);
            CHECK(coroutine_yieldto(co[i], INT_TO_PTR(i)) == INT_TO_PTR(i));
        }
        for (i = 0; i < MANY; i++)
            for (j = 0; j < i; j++)
                CHECK(co[i]->cc.stack + co[i]->stack_size <= co[j]->cc.stack ||
                      co[j]->cc.stack + co[j]->stack_size <= co[i]->cc.stack);
        for (i = 0; i < MANY; i++) {
            CHECK(coroutine_yieldto(co[i], NULL) == INT_TO_PTR(2 * 0x5a));
            CHECK(coroutine_release(co[i]) == 0);
            free(co[i]);
        }
    }
}

/* ---- threads ---- */

#define THREADS 4
#define ROUNDS 20000

struct thread_result {
    int failures;
    struct coroutine *leader;
};

static void *count_up(void *arg)
{
    long n = 0;

    (void)arg;
    for (;;) {
        if (coroutine_self_is_main())
            return INT_TO_PTR(-1); /* wrong: reported by the resumer */
        n = (long)(intptr_t)coroutine_yield((void *)(intptr_t)(n + 1));
        if (n < 0)
            return NULL;
    }
}

/* Runs on its own thread, at the same time as the others. */
static void *thread_main(void *arg)
{
    struct thread_result *result = arg;
    struct coroutine *co = never_zeroed(count_up, SMALL_STACK_SIZE);
    long i;

    result->leader = coroutine_self();
    if (!coroutine_is_main(result->leader) || coroutine_init(co) != 0)
        result->failures++;
    for (i = 0; i < ROUNDS; i++) {
        if ((long)(intptr_t)coroutine_yieldto(co, (void *)(intptr_t)i) != i + 1)
            result->failures++;
        if (coroutine_self() != result->leader)
            result->failures++;
    }
    if (coroutine_yieldto(co, INT_TO_PTR(-1)) != NULL || !co->exited)
        result->failures++;
    coroutine_release(co);
    free(co);
    return NULL;
}

static void threads_have_their_own_main_and_run_at_once(void)
{
    pthread_t threads[THREADS];
    struct thread_result results[THREADS];
    int i, j;

    memset(results, 0, sizeof results);
    for (i = 0; i < THREADS; i++)
        CHECK(pthread_create(&threads[i], NULL, thread_main, &results[i]) == 0);
    for (i = 0; i < THREADS; i++)
        CHECK(pthread_join(threads[i], NULL) == 0);
    for (i = 0; i < THREADS; i++) {
        CHECK(results[i].failures == 0);
        CHECK(results[i].leader != NULL);
        CHECK(results[i].leader != coroutine_self());
        CHECK(!coroutine_is_main(results[i].leader));
        for (j = 0; j < i; j++)
            CHECK(results[i].leader != results[j].leader);
    }
}

/* pthread_self() is declared const, so at -O2 the compiler may merge two
 * calls on either side of a switch, exactly as QEMU's compiler hoisted a
 * thread-local address. The empty asm makes this wrapper impure. */
__attribute__((noinline)) static pthread_t running_thread(void)
{
    pthread_t self = pthread_self();

    __asm__ volatile("" : "+r"(self));
    return self;
}

static struct coroutine *traveller;
static pthread_t traveller_threads[2];
static struct coroutine *traveller_callers[2];

static void *travel(void *arg)
{
    (void)arg;
    traveller_threads[0] = running_thread();
    traveller_callers[0] = traveller->caller;
    coroutine_yield(NULL);
    /* Resumed on another thread: the state must be that thread's. */
    traveller_threads[1] = running_thread();
    traveller_callers[1] = traveller->caller;
    CHECK(coroutine_self() == traveller);
    CHECK(coroutine_is_main(traveller_callers[1]));
    return INT_TO_PTR(99);
}

static void *start_traveller(void *arg)
{
    (void)arg;
    coroutine_yieldto(traveller, NULL);
    return NULL;
}

static void a_coroutine_may_resume_on_another_thread(void)
{
    pthread_t starter;

    traveller = never_zeroed(travel, SMALL_STACK_SIZE);
    CHECK(coroutine_init(traveller) == 0);
    CHECK(pthread_create(&starter, NULL, start_traveller, NULL) == 0);
    CHECK(pthread_join(starter, NULL) == 0);
    CHECK(traveller->exited == 0);
    CHECK(coroutine_yieldto(traveller, NULL) == INT_TO_PTR(99));
    CHECK(traveller->exited == 1);
    CHECK(!pthread_equal(traveller_threads[0], traveller_threads[1]));
    CHECK(pthread_equal(traveller_threads[1], pthread_self()));
    CHECK(traveller_callers[1] == coroutine_self());
    CHECK(traveller_callers[0] != traveller_callers[1]);
    CHECK(coroutine_self_is_main());
    CHECK(coroutine_release(traveller) == 0);
    free(traveller);
}

/* ---- diagnostics ---- */

static void the_default_handler_writes_the_assertion_line(void)
{
    struct coroutine *co = never_zeroed(count_and_return_arg, SMALL_STACK_SIZE);
    FILE *capture = tmpfile();
    int saved_stderr;
    char line[256] = "";

    CHECK(capture != NULL);
    CHECK(coroutine_init(co) == 0);
    coroutine_yieldto(co, NULL);

    ucoro_set_diagnostic_handler(NULL, NULL);
    fflush(stderr);
    saved_stderr = dup(STDERR_FILENO);
    dup2(fileno(capture), STDERR_FILENO);
    CHECK(coroutine_yieldto(co, NULL) == NULL);
    fflush(stderr);
    dup2(saved_stderr, STDERR_FILENO);
    close(saved_stderr);
    ucoro_set_diagnostic_handler(capture_diagnostic, NULL);

    rewind(capture);
    CHECK(fgets(line, sizeof line, capture) != NULL);
    CHECK(strcmp(line, "coroutine_yieldto: assertion '!to->exited' failed\n") == 0);
    CHECK(fgets(line, sizeof line, capture) == NULL); /* one line only */
    fclose(capture);
    CHECK(coroutine_release(co) == 0);
    free(co);
}

static void the_handler_gets_its_user_data(void)
{
    int cookie = 0;

    ucoro_set_diagnostic_handler(capture_diagnostic, &cookie);
    forget_diagnostics();
    CHECK(coroutine_yieldto(NULL, NULL) == NULL);
    CHECK(diagnostics == 1);
    CHECK(last_user_data == &cookie);
    ucoro_set_diagnostic_handler(capture_diagnostic, NULL);
}

/* ---- the continuation layer ---- */

static struct continuation cc_main_context;
static int cc_steps;

static void cc_body(struct continuation *cc)
{
    cc_steps++;
    CHECK(cc_swap(cc, &cc_main_context) == 0);
    cc_steps++;
}

static void continuations_switch_and_report_exit(void)
{
    struct continuation *cc = malloc(sizeof *cc);

    memset(&cc_main_context, 0xa5, sizeof cc_main_context); /* never set up */
    memset(cc, 0xa5, sizeof *cc);
    cc->stack_size = 0;
    cc->entry = cc_body;
    cc->release = NULL;
    cc_steps = 0;
    CHECK(cc_init(cc) == 0);
    CHECK(cc->stack != NULL);
    CHECK(cc->stack_size == DEFAULT_STACK_SIZE);
    CHECK(cc->exited == 0);
    CHECK(cc_steps == 0);
    CHECK(cc_swap(&cc_main_context, cc) == 0); /* it switched back */
    CHECK(cc_steps == 1);
    CHECK(cc_swap(&cc_main_context, cc) == 1); /* it exited */
    CHECK(cc_steps == 2);
    CHECK(cc->exited == 1);

    forget_diagnostics();
    errno = 0;
    CHECK(cc_swap(&cc_main_context, cc) == -1); /* never into an exited one */
    CHECK(errno == EINVAL);
    CHECK(cc_steps == 2);
    CHECK(cc_release(cc) == 0);
    CHECK(cc_release(cc) == 0);
    free(cc);
}

int main(void)
{
    ucoro_set_diagnostic_handler(capture_diagnostic, NULL);

    RUN(fields_keep_the_original_order);
    RUN(init_accepts_never_zeroed_memory_and_does_not_run_entry);
    RUN(init_writes_back_the_stack_size_it_used);
    RUN(init_failure_sets_errno_and_yieldto_rejects);
    RUN(init_again_after_exit_runs_entry_again);
    RUN(yieldto_and_yield_pass_values_both_ways);
    RUN(entry_return_runs_release_and_frees_once);
    RUN(negative_release_keeps_the_stack_until_a_later_release);
    RUN(yieldto_an_exited_coroutine_returns_null_with_a_message);
    RUN(yieldto_null_zeroed_or_uninitialised_is_rejected);
    RUN(yieldto_a_coroutine_with_a_caller_is_rejected);
    RUN(yield_from_main_aborts_with_the_original_message);
    RUN(self_is_never_null_and_is_main_names_the_leader);
    RUN(release_refuses_what_is_running_or_not_a_coroutine);
    RUN(swap_checks_from_and_to);
    RUN(nesting_keeps_self_right_at_every_level);
    RUN(parent_exit_returns_to_its_caller);
    RUN(released_stacks_come_back_whole);
    RUN(threads_have_their_own_main_and_run_at_once);
    RUN(a_coroutine_may_resume_on_another_thread);
    RUN(the_default_handler_writes_the_assertion_line);
    RUN(the_handler_gets_its_user_data);
    RUN(continuations_switch_and_report_exit);

    return check_report();
}
