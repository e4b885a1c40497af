/*
 * The few lines of harness the C tests share. CHECK counts a result and
 * reports a failure with its line; check_report() prints the last line,
 * "<n> passed, <m> failed", which tests/c_dropin.rs looks for, and gives the
 * exit status (non-zero on any failure). C89, so that every test may use it.
 *
 * SPDX-License-Identifier: MIT OR Apache-2.0
 */
#ifndef UCORO_TEST_CHECK_H
#define UCORO_TEST_CHECK_H

#include <stdio.h>

static int check_passed;
static int check_failed;

#define CHECK(cond) check_record((cond) != 0, #cond, __FILE__, __LINE__)

/* Runs one test function, naming it so that a failure can be placed. */
#define RUN(test)                                                              \
    do {                                                                       \
        printf("test %s\n", #test);                                            \
        fflush(stdout);                                                        \
        test();                                                                \
    } while (0)

static void check_record(int ok, const char *what, const char *file, int line)
{
    if (ok) {
        check_passed++;
        return;
    }
    check_failed++;
    fprintf(stderr, "%s:%d: check failed: %s\n", file, line, what);
    fflush(stderr);
}

static int check_report(void)
{
    printf("%d passed, %d failed\n", check_passed, check_failed);
    fflush(stdout);
    return check_failed ? 1 : 0;
}

#endif /* UCORO_TEST_CHECK_H */
