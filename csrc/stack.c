/*
 * Where coroutine stacks come from: one anonymous mapping per stack, with a
 * guard region directly below the usable part so that an overflow faults
 * instead of corrupting a neighbour. Pages are committed only when touched
 * (MAP_NORESERVE), so a 16 MiB stack costs what it uses.
 *
 * The guard is made with madvise(MADV_GUARD_INSTALL) where the kernel has it
 * (Linux >= 6.13): such a guard is not a separate memory mapping, so
 * neighbouring stacks merge into one VMA and vm.max_map_count (65530 by
 * default) stops being the limit on how many stacks can exist. Older kernels
 * fall back to mprotect(PROT_NONE), which costs one extra mapping per stack.
 *
 * SPDX-License-Identifier: MIT OR Apache-2.0
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ucoro_internal.h"

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102 /* Linux 6.13 uapi value */
#endif

/* One page of guard: a frame larger than that could step over it. */
#define GUARD_PAGES 1

static size_t page_size(void)
{
    /* Benign race: every thread computes and stores the same value. */
    static size_t cached;
    size_t ps = __atomic_load_n(&cached, __ATOMIC_RELAXED);

    if (!ps) {
        long v = sysconf(_SC_PAGESIZE);
        ps = v > 0 ? (size_t)v : 4096;
        __atomic_store_n(&cached, ps, __ATOMIC_RELAXED);
    }
    return ps;
}

/* 0: not probed yet, 1: MADV_GUARD_INSTALL works, -1: use mprotect. */
static int guard_install_works;

static int install_guard(char *addr, size_t len)
{
    int state = __atomic_load_n(&guard_install_works, __ATOMIC_RELAXED);

    if (state >= 0) {
        if (madvise(addr, len, MADV_GUARD_INSTALL) == 0) {
            if (state == 0)
                __atomic_store_n(&guard_install_works, 1, __ATOMIC_RELAXED);
            return 0;
        }
        /* EINVAL: the kernel does not know the advice; remember that. */
        if (errno != EINVAL)
            return -1;
        __atomic_store_n(&guard_install_works, -1, __ATOMIC_RELAXED);
    }
    return mprotect(addr, len, PROT_NONE);
}

int ucoro__stack_alloc(size_t *size, char **base)
{
    size_t ps = page_size();
    size_t guard = GUARD_PAGES * ps;
    size_t want = *size ? *size : UCORO_DEFAULT_STACK_SIZE;
    char *map;

    if (want < UCORO_MIN_STACK_SIZE)
        want = UCORO_MIN_STACK_SIZE;
    /* Rounding up to a page and adding the guard must not wrap. */
    if (want > SIZE_MAX - guard - ps) {
        errno = EINVAL;
        return -1;
    }
    want = (want + ps - 1) & ~(ps - 1);

    map = mmap(NULL, want + guard, PROT_READ | PROT_WRITE,
               MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (map == MAP_FAILED) {
        errno = ENOMEM;
        return -1;
    }
    if (install_guard(map, guard) != 0) {
        munmap(map, want + guard);
        errno = ENOMEM;
        return -1;
    }
    *base = map + guard;
    *size = want;
    return 0;
}

void ucoro__stack_free(char *base, size_t size)
{
    size_t guard = GUARD_PAGES * page_size();

    munmap(base - guard, size + guard);
}
