/*
 * libucoro-glib: the wrappers that ucoro_glib.h routes API calls through.
 * Each records its call site's log domain for the running coroutine, then
 * calls libucoro; the diagnostic handler installed when this library is
 * loaded turns a misuse message into g_return_if_fail_warning() in that
 * domain. libucoro reports misuse before it switches, so the record is read
 * by the same coroutine on the same thread that wrote it.
 *
 * SPDX-License-Identifier: MIT OR Apache-2.0
 */
#undef UCORO_GLIB /* this file calls the real functions, not the macros */

#include "ucoro_glib.h"

/* Initial-exec TLS, as in libucoro: no __tls_get_addr call per API call. */
#if defined(__GNUC__)
#define UCORO_GLIB_TLS __attribute__((tls_model("initial-exec")))
#define UCORO_GLIB_NOINLINE __attribute__((noinline))
#define UCORO_GLIB_CONSTRUCTOR __attribute__((constructor))
#else
#error "libucoro-glib needs GCC or Clang (TLS model, noinline, constructor)"
#endif

/* The wrapped call in progress on this thread: who made it, in which log
 * domain. caller NULL: none (an unwrapped call gets no domain). */
struct call_site {
    struct coroutine *caller;
    const char *log_domain;
};

static _Thread_local struct call_site current_call UCORO_GLIB_TLS;

/* Out of line, so that each call computes this thread's record afresh: a
 * call that switched coroutines may return on another thread, and an
 * address of the old thread's record kept across it would be stale. */
static UCORO_GLIB_NOINLINE void enter_call(const char *log_domain)
{
    current_call.caller = coroutine_self();
    current_call.log_domain = log_domain;
}

static UCORO_GLIB_NOINLINE void leave_call(void)
{
    current_call.caller = NULL;
}

/* The domain for a message reported now: the wrapped call's, if the
 * coroutine that made it is the one running (it has not switched away). */
static const char *reporting_domain(void)
{
    if (current_call.caller && current_call.caller == coroutine_self())
        return current_call.log_domain;
    return NULL;
}

static void report_as_critical(const char *function, const char *condition, void *user_data)
{
    (void)user_data;
    g_return_if_fail_warning(reporting_domain(), function, condition);
}

/* At load time, shared or static: a program that uses the wrappers links
 * this object, so no further reference is needed. A handler the program
 * installs later (from main) replaces this one. */
static UCORO_GLIB_CONSTRUCTOR void install_critical_reporting(void)
{
    ucoro_set_diagnostic_handler(report_as_critical, NULL);
}

void ucoro_glib_set_diagnostic_handler(ucoro_diagnostic_fn fn, void *user_data)
{
    if (fn)
        ucoro_set_diagnostic_handler(fn, user_data);
    else
        ucoro_set_diagnostic_handler(report_as_critical, NULL);
}

int ucoro_glib_coroutine_init(const char *log_domain, struct coroutine *co)
{
    int result;

    enter_call(log_domain);
    result = coroutine_init(co);
    leave_call();
    return result;
}

int ucoro_glib_coroutine_release(const char *log_domain, struct coroutine *co)
{
    int result;

    enter_call(log_domain);
    result = coroutine_release(co);
    leave_call();
    return result;
}

void *ucoro_glib_coroutine_swap(const char *log_domain, struct coroutine *from,
                                struct coroutine *to, void *arg)
{
    void *result;

    enter_call(log_domain);
    result = coroutine_swap(from, to, arg);
    leave_call();
    return result;
}

void *ucoro_glib_coroutine_yieldto(const char *log_domain, struct coroutine *to, void *arg)
{
    void *result;

    enter_call(log_domain);
    result = coroutine_yieldto(to, arg);
    leave_call();
    return result;
}

struct coroutine *ucoro_glib_ucoro_create(const char *log_domain, size_t stack_size,
                                          void *(*entry)(void *), size_t extra,
                                          void **extra_out)
{
    struct coroutine *result;

    enter_call(log_domain);
    result = ucoro_create(stack_size, entry, extra, extra_out);
    leave_call();
    return result;
}

int ucoro_glib_ucoro_destroy(const char *log_domain, struct coroutine *co)
{
    int result;

    enter_call(log_domain);
    result = ucoro_destroy(co);
    leave_call();
    return result;
}

void *ucoro_glib_ucoro_yield_from(const char *log_domain, struct coroutine *co, void *arg)
{
    void *result;

    enter_call(log_domain);
    result = ucoro_yield_from(co, arg);
    leave_call();
    return result;
}

int ucoro_glib_cc_init(const char *log_domain, struct continuation *cc)
{
    int result;

    enter_call(log_domain);
    result = cc_init(cc);
    leave_call();
    return result;
}

int ucoro_glib_cc_swap(const char *log_domain, struct continuation *from,
                       struct continuation *to)
{
    int result;

    enter_call(log_domain);
    result = cc_swap(from, to);
    leave_call();
    return result;
}
