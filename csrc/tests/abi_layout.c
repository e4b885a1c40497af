/*
 * The frozen ABI, as a caller's compiler sees the installed headers: the
 * size and alignment of struct coroutine and struct continuation and every
 * offset in ../abi/layout.h (the one committed table) match, for this
 * architecture's pointer width. Built like any caller (C89 and up, through
 * pkg-config or against csrc/include/ucoro) by make check, meson test,
 * tests/c_dropin.rs, and for every architecture by .ci/cross.sh. Prints
 * each value it checked, so a failure shows what moved.
 *
 * SPDX-License-Identifier: MIT OR Apache-2.0
 */
#include <stddef.h>
#include <stdio.h>

#include "coroutine.h"

#include "../abi/layout.h"
#include "check.h"

/* The column of the table for this target. */
#define LP64 (sizeof(void *) == 8)
#define FROZEN(lp64, ilp32) ((size_t)(LP64 ? (lp64) : (ilp32)))

/* C89 has no _Alignof: where a member of the type lands after one char. */
#define ALIGN_OF(type) offsetof(struct { char c; type member; }, member)

static void check_value(const char *what, size_t actual, size_t frozen)
{
    printf("%-28s %3lu (frozen: %lu)\n", what, (unsigned long)actual, (unsigned long)frozen);
    CHECK(actual == frozen);
}

#define CHECK_SIZE(type, lp64, ilp32)                                          \
    check_value("sizeof(struct " #type ")", sizeof(struct type), FROZEN(lp64, ilp32)); \
    check_value("alignof(struct " #type ")", ALIGN_OF(struct type), ALIGN_OF(void *));
#define CHECK_OFFSET(type, field, lp64, ilp32)                                 \
    check_value(#type "." #field, offsetof(struct type, field), FROZEN(lp64, ilp32));

static void both_structs_have_their_frozen_layout(void)
{
    UCORO_FROZEN_SIZES(CHECK_SIZE)
    UCORO_FROZEN_OFFSETS(CHECK_OFFSET)
}

int main(void)
{
    /* A call into the library, so that the program links to it as a caller
     * does (and the link is checked too). */
    printf("pointers of %lu bits: the %s column; switch: %s\n",
           (unsigned long)sizeof(void *) * 8, LP64 ? "LP64" : "ILP32", ucoro_switch_mode());
    RUN(both_structs_have_their_frozen_layout);
    return check_report();
}
