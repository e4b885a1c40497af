/*
 * The installed headers in every C dialect a caller may use: this file is
 * built with -std=c89, c99 and c11, -Wall -Wextra -Werror -pedantic. Each
 * API function is assigned to a pointer of its documented type, so a changed
 * prototype fails the build; a tiny run proves the link. Also prints the
 * version macros, which tests/c_dropin.rs compares with the crate version.
 *
 * SPDX-License-Identifier: MIT OR Apache-2.0
 */
#include <stdio.h>
#include <string.h>

#include "coroutine.h"
#include "continuation.h" /* included by coroutine.h too: must be harmless */
#include "ucoro_version.h"

#include "check.h"

static void *echo(void *arg)
{
    return coroutine_yield(arg);
}

static void every_declaration_has_its_documented_type(void)
{
    int (*init)(struct coroutine *) = coroutine_init;
    int (*release)(struct coroutine *) = coroutine_release;
    struct coroutine *(*self)(void) = coroutine_self;
    void *(*swap)(struct coroutine *, struct coroutine *, void *) = coroutine_swap;
    void *(*yieldto)(struct coroutine *, void *) = coroutine_yieldto;
    void *(*yield)(void *) = coroutine_yield;
    int (*is_main)(struct coroutine *) = coroutine_is_main;
    int (*self_is_main)(void) = coroutine_self_is_main;
    void (*set_handler)(ucoro_diagnostic_fn, void *) = ucoro_set_diagnostic_handler;
    int (*cc_init_fn)(struct continuation *) = cc_init;
    int (*cc_swap_fn)(struct continuation *, struct continuation *) = cc_swap;
    int (*cc_release_fn)(struct continuation *) = cc_release;
    struct coroutine co;

    CHECK(init && release && self && swap && yieldto && yield && is_main);
    CHECK(self_is_main && set_handler && cc_init_fn && cc_swap_fn && cc_release_fn);

    /* The documented fields, by name and type. */
    co.stack_size = (size_t)0;
    co.entry = echo;
    co.release = (int (*)(struct coroutine *))0;
    co.exited = 0;
    co.caller = (struct coroutine *)0;
    co.data = (void *)0;
    CHECK(sizeof co.cc.stack == sizeof(char *));
    CHECK(co.entry == echo);
}

static void a_coroutine_runs(void)
{
    struct coroutine co; /* left uninitialised: init must cope */
    int token = 0;

    co.stack_size = 0;
    co.entry = echo;
    co.release = 0;
    CHECK(coroutine_init(&co) == 0);
    CHECK(coroutine_yieldto(&co, &token) == &token);
    CHECK(coroutine_yieldto(&co, &co) == &co);
    CHECK(co.exited == 1);
    CHECK(coroutine_self_is_main());
    CHECK(coroutine_release(&co) == 0);
}

static void version_macros_agree(void)
{
    char text[64];

    sprintf(text, "%d.%d.%d", UCORO_VERSION_MAJOR, UCORO_VERSION_MINOR, UCORO_VERSION_PATCH);
    CHECK(strncmp(UCORO_VERSION, text, strlen(text)) == 0);
    CHECK(UCORO_CHECK_VERSION(UCORO_VERSION_MAJOR, UCORO_VERSION_MINOR, UCORO_VERSION_PATCH));
    CHECK(UCORO_CHECK_VERSION(0, 0, 0));
    CHECK(!UCORO_CHECK_VERSION(UCORO_VERSION_MAJOR + 1, 0, 0));
    CHECK(!UCORO_CHECK_VERSION(UCORO_VERSION_MAJOR, UCORO_VERSION_MINOR + 1, 0));
    printf("UCORO_VERSION=%s\n", UCORO_VERSION);
}

int main(void)
{
    RUN(every_declaration_has_its_documented_type);
    RUN(a_coroutine_runs);
    RUN(version_macros_agree);
    return check_report();
}
