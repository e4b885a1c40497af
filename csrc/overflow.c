/*
 * Stack overflow reporting: a fault in the guard region below a coroutine
 * stack is reported by name instead of as a bare SIGSEGV.
 *
 * The SIGSEGV/SIGBUS handler is installed when the first continuation is
 * initialised; it runs on a per-thread alternate signal stack (the
 * overflowing stack has no room left), set up the first time a thread uses
 * coroutines unless the thread already has one (Rust's runtime gives its
 * threads one). A fault in a guard region prints
 *
 *     ucoro: stack overflow in coroutine 0x... (stack N bytes)
 *
 * with async-signal-safe calls, and the process then dies of the signal.
 * What it names comes from the stack's own record (its owner, which the
 * coroutine layer sets to the struct coroutine): this file knows stacks
 * and signals, not coroutines.
 * Every other fault goes to the handler that was installed before ours.
 * A program that installs its own handler afterwards owns fault reporting
 * from then on. ucoro_set_overflow_reporting(0) or the environment variable
 * UCORO_OVERFLOW_REPORTING=0 turns ours off (and restores the previous
 * handlers if ours was installed).
 *
 * SPDX-License-Identifier: MIT OR Apache-2.0
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "coroutine.h" /* ucoro_set_overflow_reporting */
#include "ucoro_internal.h"

#define ALT_STACK_SIZE ((size_t)64 << 10)

static int installed;      /* under the overflow lock */
static int disabled = -1;  /* -1: environment not read yet */
static struct sigaction previous_segv, previous_bus;

/* The alternate signal stack this library made for the thread, if any;
 * (void *)-1 once the thread's exit destructor gave it back: coroutines run
 * by destructors that come later get none (one made then might never be
 * given back), so an overflow there dies of a plain SIGSEGV. (A thread
 * whose first coroutine runs in the last destructor round keeps its 64 KiB:
 * the destructor registered then is never called.) */
#define ALT_STACK_GONE ((void *)-1)
static __thread UCORO_TLS void *thread_alt_stack;
static pthread_key_t alt_key;
static pthread_once_t alt_key_once = PTHREAD_ONCE_INIT;

static void put_str(char *buf, size_t *len, const char *s)
{
    while (*s)
        buf[(*len)++] = *s++;
}

static void put_hex(char *buf, size_t *len, uintptr_t v)
{
    char digits[2 * sizeof(v)];
    int n = 0;

    put_str(buf, len, "0x");
    do {
        digits[n++] = "0123456789abcdef"[v & 15];
        v >>= 4;
    } while (v);
    while (n)
        buf[(*len)++] = digits[--n];
}

static void put_dec(char *buf, size_t *len, size_t v)
{
    char digits[24];
    int n = 0;

    do {
        digits[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        buf[(*len)++] = digits[--n];
}

/* Passes a fault on to the handler installed before ours. */
static void chain(int sig, siginfo_t *info, void *uctx)
{
    const struct sigaction *prev = sig == SIGBUS ? &previous_bus : &previous_segv;

    if (prev->sa_flags & SA_SIGINFO) {
        prev->sa_sigaction(sig, info, uctx);
    } else if (prev->sa_handler == SIG_DFL || prev->sa_handler == SIG_IGN) {
        /* Returning re-runs the faulting instruction, which now kills the
         * process the default way (ignoring a fault would loop forever). */
        signal(sig, SIG_DFL);
    } else {
        prev->sa_handler(sig);
    }
}

static void on_fault(int sig, siginfo_t *info, void *uctx)
{
    size_t size;
    const void *owner;

    if (ucoro__stack_guard_hit(info->si_addr, &size, &owner)) {
        char msg[128];
        size_t len = 0;
        ssize_t ignored;

        put_str(msg, &len, "ucoro: stack overflow in coroutine ");
        put_hex(msg, &len, (uintptr_t)owner);
        put_str(msg, &len, " (stack ");
        put_dec(msg, &len, size);
        put_str(msg, &len, " bytes)\n");
        ignored = write(STDERR_FILENO, msg, len);
        (void)ignored;
        /* Die of the signal: the fault repeats with the default action. */
        signal(sig, SIG_DFL);
        return;
    }
    chain(sig, info, uctx);
}

static int reporting_disabled(void)
{
    if (disabled < 0) {
        const char *env = getenv("UCORO_OVERFLOW_REPORTING");

        disabled = env && strcmp(env, "0") == 0;
    }
    return disabled;
}

void ucoro__overflow_install(void)
{
    struct sigaction sa;

    if (__atomic_load_n(&installed, __ATOMIC_ACQUIRE))
        return;
    ucoro__lock(UCORO_LOCK_OVERFLOW);
    if (!installed && !reporting_disabled()) {
        memset(&sa, 0, sizeof(sa));
        sa.sa_sigaction = on_fault;
        sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
        sigemptyset(&sa.sa_mask);
        if (sigaction(SIGSEGV, &sa, &previous_segv) == 0 &&
            sigaction(SIGBUS, &sa, &previous_bus) == 0)
            __atomic_store_n(&installed, 1, __ATOMIC_RELEASE);
    }
    ucoro__unlock(UCORO_LOCK_OVERFLOW);
}

void ucoro_set_overflow_reporting(int enable)
{
    ucoro__lock(UCORO_LOCK_OVERFLOW);
    disabled = !enable;
    if (!enable && installed) {
        struct sigaction cur;

        /* Put back what was there before us, unless someone has replaced
         * our handler since: then theirs stays. */
        if (sigaction(SIGSEGV, NULL, &cur) == 0 && (cur.sa_flags & SA_SIGINFO) &&
            cur.sa_sigaction == on_fault)
            sigaction(SIGSEGV, &previous_segv, NULL);
        if (sigaction(SIGBUS, NULL, &cur) == 0 && (cur.sa_flags & SA_SIGINFO) &&
            cur.sa_sigaction == on_fault)
            sigaction(SIGBUS, &previous_bus, NULL);
        __atomic_store_n(&installed, 0, __ATOMIC_RELEASE);
    }
    ucoro__unlock(UCORO_LOCK_OVERFLOW);
    if (enable)
        ucoro__overflow_install();
}

/* The alt key's destructor, at thread exit. The signal stack is turned off
 * only if it is still ours: a program that set its own since keeps it for
 * its own destructors. If it cannot be turned off (the thread runs on it),
 * it is left mapped rather than pulled from under the thread. */
static void free_alt_stack(void *stack)
{
    stack_t current, off;

    thread_alt_stack = ALT_STACK_GONE;
    if (sigaltstack(NULL, &current) != 0)
        return;
    if (!(current.ss_flags & SS_DISABLE) && current.ss_sp == stack) {
        memset(&off, 0, sizeof(off));
        off.ss_flags = SS_DISABLE;
        if (sigaltstack(&off, NULL) != 0)
            return;
    }
    munmap(stack, ALT_STACK_SIZE);
}

static void make_alt_key(void)
{
    /* On failure the alternate stacks of exiting threads leak. */
    if (pthread_key_create(&alt_key, free_alt_stack) != 0)
        alt_key = (pthread_key_t)-1;
}

/* Passed at load, as stack.c's pool key (see make_pool_key_at_load). */
__attribute__((constructor)) static void make_alt_key_at_load(void)
{
    pthread_once(&alt_key_once, make_alt_key);
}

void ucoro__overflow_arm_thread(void)
{
    stack_t current, ss;
    void *mem;

    if (thread_alt_stack || sigaltstack(NULL, &current) != 0)
        return;
    if (!(current.ss_flags & SS_DISABLE))
        return; /* the thread has one already (Rust threads do) */
    mem = mmap(NULL, ALT_STACK_SIZE, PROT_READ | PROT_WRITE,
               MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (mem == MAP_FAILED)
        return; /* overflows on this thread then die without the message */
    memset(&ss, 0, sizeof(ss));
    ss.ss_sp = mem;
    ss.ss_size = ALT_STACK_SIZE;
    if (sigaltstack(&ss, NULL) != 0) {
        munmap(mem, ALT_STACK_SIZE);
        return;
    }
    thread_alt_stack = mem;
    pthread_once(&alt_key_once, make_alt_key);
    if (alt_key != (pthread_key_t)-1)
        pthread_setspecific(alt_key, mem);
}
