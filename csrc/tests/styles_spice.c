/*
 * Code in the style of spice-gtk's channels, which must compile and run
 * unchanged against ucoro: the coroutine is embedded in a bigger object and
 * set up with a compound literal of designated initialisers (.stack_size,
 * .entry), coroutine_init's result is ignored, and the code asks
 * coroutine_self_is_main() / coroutine_is_main() which side it is on.
 * (Written for this test; no spice-gtk code is copied.)
 *
 * SPDX-License-Identifier: MIT OR Apache-2.0
 */
#include <stdlib.h>
#include <string.h>

#include "coroutine.h"

#include "check.h"

/* A channel reads messages in its coroutine and waits (yields) whenever it
 * has none, as a socket read would; the main loop feeds it. */
struct demo_channel {
    int id;
    struct coroutine coroutine;
    const char *pending;
    char received[64];
    size_t length;
    int waits;
    int finished;
};

static struct demo_channel *channel_of(struct coroutine *co)
{
    return (struct demo_channel *)(void *)((char *)co -
                                           offsetof(struct demo_channel, coroutine));
}

/* Blocks the channel's coroutine until the main loop has data for it. */
static const char *channel_wait_for_data(struct demo_channel *channel)
{
    CHECK(!coroutine_self_is_main());
    while (!channel->pending) {
        channel->waits++;
        coroutine_yield(NULL);
    }
    return channel->pending;
}

static void *channel_coroutine(void *opaque)
{
    struct demo_channel *channel = opaque;

    CHECK(channel_of(coroutine_self()) == channel);
    CHECK(!coroutine_is_main(coroutine_self()));
    for (;;) {
        const char *data = channel_wait_for_data(channel);

        channel->pending = NULL;
        if (strcmp(data, "quit") == 0)
            break;
        memcpy(channel->received + channel->length, data, strlen(data));
        channel->length += strlen(data);
    }
    channel->finished = 1;
    return NULL;
}

static void channel_connect(struct demo_channel *channel)
{
    CHECK(coroutine_self_is_main());
    channel->coroutine = (struct coroutine){
        .stack_size = 16 << 20,
        .entry = channel_coroutine,
    };
    coroutine_init(&channel->coroutine); /* result ignored, as in spice-gtk */
    coroutine_yieldto(&channel->coroutine, channel);
}

/* The main loop's side: hand data over and let the channel run. */
static void channel_deliver(struct demo_channel *channel, const char *data)
{
    CHECK(coroutine_is_main(coroutine_self()));
    channel->pending = data;
    if (!channel->coroutine.exited)
        coroutine_yieldto(&channel->coroutine, NULL);
}

static void channels_run_in_turn(void)
{
    struct demo_channel *a = calloc(1, sizeof *a);
    struct demo_channel *b = calloc(1, sizeof *b);

    a->id = 1;
    b->id = 2;
    channel_connect(a);
    channel_connect(b);
    CHECK(a->waits == 1 && b->waits == 1);
    CHECK(a->coroutine.stack_size == 16 << 20);

    channel_deliver(a, "hel");
    channel_deliver(b, "wor");
    channel_deliver(a, "lo");
    channel_deliver(b, "ld");
    CHECK(strcmp(a->received, "hello") == 0);
    CHECK(strcmp(b->received, "world") == 0);
    CHECK(!a->coroutine.exited && !b->coroutine.exited);

    channel_deliver(a, "quit");
    channel_deliver(b, "quit");
    CHECK(a->finished && b->finished);
    CHECK(a->coroutine.exited && b->coroutine.exited);
    CHECK(coroutine_self_is_main());

    coroutine_release(&a->coroutine);
    coroutine_release(&b->coroutine);
    free(a);
    free(b);
}

/* Reconnecting re-initialises the same embedded struct after exit. */
static void a_channel_reconnects_after_exit(void)
{
    struct demo_channel *channel = calloc(1, sizeof *channel);
    int round;

    for (round = 0; round < 3; round++) {
        channel->length = 0;
        memset(channel->received, 0, sizeof channel->received);
        channel->finished = 0;
        channel_connect(channel);
        channel_deliver(channel, "x");
        channel_deliver(channel, "quit");
        CHECK(channel->finished);
        CHECK(strcmp(channel->received, "x") == 0);
    }
    coroutine_release(&channel->coroutine);
    free(channel);
}

int main(void)
{
    RUN(channels_run_in_turn);
    RUN(a_channel_reconnects_after_exit);
    return check_report();
}
