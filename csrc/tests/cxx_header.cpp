/*
 * <coroutine.h> from C++17 (-Wall -Wextra -Werror -pedantic): the extern "C"
 * guards give the functions C linkage, so this links against libucoro; the
 * prototypes are checked at compile time and a coroutine runs a captureless
 * lambda.
 *
 * SPDX-License-Identifier: MIT OR Apache-2.0
 */
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "coroutine.h"
#include "ucoro_version.h"

#include "check.h"

static_assert(std::is_same<decltype(&coroutine_init), int (*)(coroutine *)>::value,
              "coroutine_init");
static_assert(std::is_same<decltype(&coroutine_yieldto), void *(*)(coroutine *, void *)>::value,
              "coroutine_yieldto");
static_assert(std::is_same<decltype(&coroutine_yield), void *(*)(void *)>::value,
              "coroutine_yield");
static_assert(std::is_same<decltype(&coroutine_swap),
                           void *(*)(coroutine *, coroutine *, void *)>::value,
              "coroutine_swap");
static_assert(std::is_same<decltype(&coroutine_self), coroutine *(*)()>::value,
              "coroutine_self");
static_assert(std::is_same<decltype(&coroutine_is_main), int (*)(coroutine *)>::value,
              "coroutine_is_main");
static_assert(std::is_same<decltype(&coroutine_self_is_main), int (*)()>::value,
              "coroutine_self_is_main");
static_assert(std::is_same<decltype(&cc_swap), int (*)(continuation *, continuation *)>::value,
              "cc_swap");
static_assert(std::is_standard_layout<coroutine>::value, "struct coroutine is plain C");
static_assert(UCORO_VERSION_MAJOR >= 0, "ucoro_version.h");

static void a_lambda_runs_as_a_coroutine()
{
    coroutine co{};
    co.stack_size = 0;
    co.entry = [](void *arg) -> void * {
        auto n = reinterpret_cast<std::intptr_t>(arg);
        while (n > 0)
            n = reinterpret_cast<std::intptr_t>(coroutine_yield(reinterpret_cast<void *>(n * 2)));
        return nullptr;
    };
    co.release = nullptr;
    CHECK(coroutine_init(&co) == 0);
    CHECK(coroutine_yieldto(&co, reinterpret_cast<void *>(1)) == reinterpret_cast<void *>(2));
    CHECK(coroutine_yieldto(&co, reinterpret_cast<void *>(21)) == reinterpret_cast<void *>(42));
    CHECK(coroutine_yieldto(&co, nullptr) == nullptr);
    CHECK(co.exited == 1);
    CHECK(coroutine_self_is_main());
    CHECK(coroutine_release(&co) == 0);
}

static int diagnostics_seen;

static void a_diagnostic_handler_may_be_a_lambda()
{
    ucoro_set_diagnostic_handler(
        [](const char *function, const char *condition, void *user) {
            (void)user;
            if (std::strcmp(function, "coroutine_yieldto") == 0 && condition)
                diagnostics_seen++;
        },
        nullptr);
    CHECK(coroutine_yieldto(nullptr, nullptr) == nullptr);
    CHECK(diagnostics_seen == 1);
    ucoro_set_diagnostic_handler(nullptr, nullptr);
}

int main()
{
    RUN(a_lambda_runs_as_a_coroutine);
    RUN(a_diagnostic_handler_may_be_a_lambda);
    return check_report();
}
