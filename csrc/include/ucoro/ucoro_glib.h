/*
 * ucoro-glib: the misuse messages of the ucoro API as GLib criticals in the
 * calling code's G_LOG_DOMAIN, as the originals' g_return_val_if_fail
 * checks were. Installed next to coroutine.h; programs get it by building
 * with the ucoro-glib pkg-config module, whose Cflags define UCORO_GLIB.
 *
 * How: with UCORO_GLIB defined, coroutine.h and continuation.h include this
 * header, which turns every call of an API function that can report misuse
 * into a call of its ucoro_glib_ wrapper in libucoro-glib, passing the call
 * site's G_LOG_DOMAIN. So every such call references libucoro-glib (it is
 * linked with --as-needed, statically and through convenience libraries
 * alike), and the wrapper tells the library's handler whose domain the
 * critical belongs to. libucoro itself knows nothing of GLib.
 *
 * Where it stops: the macros are function-like, so a call through a
 * function pointer (&coroutine_yieldto), `(coroutine_yieldto)(...)`, or code
 * built without UCORO_GLIB reaches libucoro directly; its messages are then
 * criticals with no domain (G_LOG_DOMAIN NULL) once libucoro-glib is loaded,
 * and lines on stderr before that. A declaration of the API functions after
 * this header does not compile (the macro rewrites it): include the header
 * instead of declaring them.
 *
 * SPDX-License-Identifier: MIT OR Apache-2.0
 */
#ifndef UCORO_GLIB_H
#define UCORO_GLIB_H

#include <glib.h> /* defines G_LOG_DOMAIN (NULL) where the program did not */

#include "coroutine.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * The wrappers: each calls the function of the same name after the prefix,
 * with the same arguments, and returns its result (failures as documented
 * in coroutine.h and continuation.h); a misuse message it reports becomes
 * g_return_if_fail_warning(log_domain, FUNCTION, CONDITION).
 */
int ucoro_glib_coroutine_init(const char *log_domain, struct coroutine *co);
int ucoro_glib_coroutine_release(const char *log_domain, struct coroutine *co);
void *ucoro_glib_coroutine_swap(const char *log_domain, struct coroutine *from,
                                struct coroutine *to, void *arg);
void *ucoro_glib_coroutine_yieldto(const char *log_domain, struct coroutine *to, void *arg);
struct coroutine *ucoro_glib_ucoro_create(const char *log_domain, size_t stack_size,
                                          void *(*entry)(void *), size_t extra,
                                          void **extra_out);
int ucoro_glib_ucoro_destroy(const char *log_domain, struct coroutine *co);
void *ucoro_glib_ucoro_yield_from(const char *log_domain, struct coroutine *co, void *arg);
int ucoro_glib_cc_init(const char *log_domain, struct continuation *cc);
int ucoro_glib_cc_swap(const char *log_domain, struct continuation *from,
                       struct continuation *to);

/*
 * ucoro_set_diagnostic_handler for GLib programs: fn replaces the criticals
 * (as in plain ucoro), and NULL brings the criticals back rather than the
 * stderr line. Cannot fail.
 */
void ucoro_glib_set_diagnostic_handler(ucoro_diagnostic_fn fn, void *user_data);

#ifdef __cplusplus
}
#endif

#ifdef UCORO_GLIB
#define coroutine_init(co) ucoro_glib_coroutine_init(G_LOG_DOMAIN, (co))
#define coroutine_release(co) ucoro_glib_coroutine_release(G_LOG_DOMAIN, (co))
#define coroutine_swap(from, to, arg) ucoro_glib_coroutine_swap(G_LOG_DOMAIN, (from), (to), (arg))
#define coroutine_yieldto(to, arg) ucoro_glib_coroutine_yieldto(G_LOG_DOMAIN, (to), (arg))
#define ucoro_create(stack_size, entry, extra, extra_out)                                  \
    ucoro_glib_ucoro_create(G_LOG_DOMAIN, (stack_size), (entry), (extra), (extra_out))
#define ucoro_destroy(co) ucoro_glib_ucoro_destroy(G_LOG_DOMAIN, (co))
#define ucoro_yield_from(co, arg) ucoro_glib_ucoro_yield_from(G_LOG_DOMAIN, (co), (arg))
#define cc_init(cc) ucoro_glib_cc_init(G_LOG_DOMAIN, (cc))
#define cc_swap(from, to) ucoro_glib_cc_swap(G_LOG_DOMAIN, (from), (to))
#define ucoro_set_diagnostic_handler(fn, user_data)                                        \
    ucoro_glib_set_diagnostic_handler((fn), (user_data))
#endif

#endif /* UCORO_GLIB_H */
