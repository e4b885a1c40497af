/*
 * What a runtime that embeds ucoro needs besides the drop-in API (QEMU's
 * coroutine backend first): an owner's pointer per coroutine, and what the
 * library's stacks cost and which sanitizers it serves, so that the runtime
 * sizes its caches and checks its build against the library's. The trusted
 * switch, ucoro_switch, lives beside the other switches in
 * coroutine_ucontext.c, whose thread state it needs.
 *
 * SPDX-License-Identifier: MIT OR Apache-2.0
 */
#include <errno.h>

#include "ucoro_internal.h" /* first: it names the private fields */
#include "coroutine.h"
#include "tools.h"

/* An initialised coroutine (released ones are not) or a main coroutine:
 * the structs whose reserve the library owns and has cleared. */
static int has_user_data(const struct coroutine *co)
{
    return co != NULL && (co->magic == ucoro__magic(co, UCORO_MAGIC_COROUTINE) ||
                          co->magic == ucoro__magic(co, UCORO_MAGIC_LEADER));
}

void *ucoro_get_user_data(const struct coroutine *co)
{
    return has_user_data(co) ? UCORO_USER_DATA(co) : NULL;
}

int ucoro_set_user_data(struct coroutine *co, void *data)
{
    if (!has_user_data(co)) {
        ucoro__diagnose("ucoro_set_user_data", "co is initialised");
        errno = EINVAL;
        return -1;
    }
    UCORO_USER_DATA(co) = data;
    return 0;
}

int ucoro_guard_mode(void)
{
    return ucoro__stack_guards_are_advice() ? UCORO_GUARD_MADVISE : UCORO_GUARD_MPROTECT;
}

unsigned ucoro_sanitizers(void)
{
    unsigned mask = 0;

#ifdef UCORO_ASAN
    mask |= UCORO_SANITIZER_ADDRESS;
#endif
#ifdef UCORO_TSAN
    mask |= UCORO_SANITIZER_THREAD;
#endif
    return mask;
}
