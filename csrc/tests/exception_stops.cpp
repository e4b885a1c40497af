/*
 * An exception thrown in a coroutine and not caught there ends the
 * program (std::terminate), as it did before backtraces went on into the
 * resumer: the start stub's personality routine ends the search at the
 * coroutine's first frame (csrc/arch/interface.h). Without it, the handler
 * below would catch it, in frames not waiting for the coroutine to throw,
 * with the library believing the coroutine still runs.
 *
 * resume_it has no cleanup and no handler, so the search would pass it
 * by. Built by .ci/debugging.sh, which expects this program to die of
 * SIGABRT with the C++ runtime's "terminate called" message.
 *
 * SPDX-License-Identifier: MIT OR Apache-2.0
 */
#include <cstdio>

#include "coroutine.h"

static volatile long sink;

extern "C" void *throw_in_the_coroutine(void *)
{
    throw 42;
}

__attribute__((noinline)) static void resume_it(struct coroutine *co)
{
    sink = (long)coroutine_yieldto(co, nullptr);
}

int main()
{
    struct coroutine co = {};

    co.entry = throw_in_the_coroutine;
    if (coroutine_init(&co) != 0)
        return 2;
    try {
        resume_it(&co);
    } catch (...) {
        std::puts("FAILED: the exception was caught outside the coroutine");
        return 1;
    }
    std::puts("FAILED: the coroutine returned");
    return 1;
}
