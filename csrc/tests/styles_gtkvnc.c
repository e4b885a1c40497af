/*
 * Code in the style of gtk-vnc, which must compile and run unchanged
 * against ucoro: fields assigned one by one (co->release = NULL included),
 * coroutine_init's int result checked, and coroutine_swap, which gtk-vnc's
 * header makes public, used next to coroutine_yieldto / coroutine_yield.
 * Written in C89, which the headers support too. (Written for this test; no
 * gtk-vnc code is copied.)
 *
 * SPDX-License-Identifier: MIT OR Apache-2.0
 */
#include <stdlib.h>
#include <string.h>

#include "coroutine.h"

#include "check.h"

/* A connection whose protocol reader runs in a coroutine and yields for
 * every byte it needs. */
struct demo_connection {
    struct coroutine *coroutine;
    const unsigned char *input;
    size_t input_length;
    unsigned long checksum;
    int has_error;
};

static unsigned char read_byte(struct demo_connection *conn)
{
    while (conn->input_length == 0)
        coroutine_yield(NULL); /* back to the main loop until data arrives */
    conn->input_length--;
    return *conn->input++;
}

static void *reader_coroutine(void *opaque)
{
    struct demo_connection *conn = opaque;
    unsigned char length;
    unsigned char i;

    length = read_byte(conn);
    for (i = 0; i < length; i++)
        conn->checksum = conn->checksum * 31 + read_byte(conn);
    return conn;
}

static int connection_open(struct demo_connection *conn)
{
    struct coroutine *co;
    int ret;

    co = malloc(sizeof(*co));
    if (!co)
        return -1;
    co->stack_size = 16 << 20;
    co->entry = reader_coroutine;
    co->release = NULL;
    ret = coroutine_init(co);
    if (ret != 0) {
        free(co);
        return -1;
    }
    conn->coroutine = co;
    return 0;
}

static void connection_feed(struct demo_connection *conn, const char *bytes, size_t n)
{
    conn->input = (const unsigned char *)bytes;
    conn->input_length = n;
    if (!conn->coroutine->exited)
        coroutine_yieldto(conn->coroutine, conn);
}

static void a_reader_consumes_data_in_pieces(void)
{
    struct demo_connection conn;
    unsigned long expected = 0;
    const char *message = "abcdef";
    size_t i;

    memset(&conn, 0, sizeof conn);
    CHECK(connection_open(&conn) == 0);
    CHECK(conn.coroutine->stack_size == 16 << 20);
    connection_feed(&conn, "\006ab", 3);
    CHECK(!conn.coroutine->exited);
    connection_feed(&conn, "cd", 2);
    connection_feed(&conn, "", 0);
    connection_feed(&conn, "ef", 2);
    CHECK(conn.coroutine->exited);
    for (i = 0; i < strlen(message); i++)
        expected = expected * 31 + (unsigned char)message[i];
    CHECK(conn.checksum == expected);
    CHECK(coroutine_release(conn.coroutine) == 0);
    free(conn.coroutine);
}

/* coroutine_swap: the primitive, used without callers. The coroutine swaps
 * back to the main coroutine by name. */
static struct coroutine *swap_main;

static void *swap_back_twice(void *arg)
{
    void *next;

    CHECK(arg == (void *)&swap_main);
    next = coroutine_swap(coroutine_self(), swap_main, (void *)1);
    CHECK(next == (void *)2);
    next = coroutine_swap(coroutine_self(), swap_main, (void *)3);
    CHECK(next == (void *)4);
    return (void *)5;
}

static void swap_passes_values_without_callers(void)
{
    struct coroutine *co;
    int ret;

    swap_main = coroutine_self();
    co = malloc(sizeof(*co));
    co->stack_size = 0;
    co->entry = swap_back_twice;
    co->release = NULL;
    ret = coroutine_init(co);
    CHECK(ret == 0);
    CHECK(coroutine_swap(swap_main, co, &swap_main) == (void *)1);
    CHECK(coroutine_self() == swap_main);
    CHECK(coroutine_swap(coroutine_self(), co, (void *)2) == (void *)3);
    CHECK(coroutine_swap(coroutine_self(), co, (void *)4) == (void *)5);
    CHECK(co->exited == 1);
    CHECK(coroutine_self() == swap_main);
    CHECK(coroutine_release(co) == 0);
    free(co);
}

int main(void)
{
    RUN(a_reader_consumes_data_in_pieces);
    RUN(swap_passes_values_without_callers);
    return check_report();
}
