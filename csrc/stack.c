/*
 * Where coroutine stacks come from.
 *
 * Stacks are carved from large slabs: one MAP_NORESERVE mapping holds many
 * stacks of one size, each with a guard region directly below it, so an
 * overflow faults instead of corrupting a neighbour. Pages are committed
 * only when touched, so a 16 MiB stack costs what it uses.
 *
 * Guards are made with madvise(MADV_GUARD_INSTALL) where the kernel has it
 * (Linux >= 6.13): such a guard is not a memory mapping of its own, so a
 * slab stays one VMA however many stacks it holds and vm.max_map_count
 * (65530 by default) does not limit the number of stacks. Older kernels
 * fall back to mprotect(PROT_NONE), which splits the slab into two VMAs per
 * stack: there, about 32,000 stacks can exist at once. Detected at run time.
 *
 * Freed stacks are reused, never unmapped:
 * - each thread keeps a small pool of freed stacks (POOL_SIZE), so the
 *   create -> run -> exit -> release cycle makes no system call in the
 *   steady state. The most recent stack keeps its pages; the others give
 *   back everything below their top WATERMARK bytes (MADV_DONTNEED), so idle
 *   capacity does not pin memory. A stack freed on another thread than the
 *   one that made it simply joins the freeing thread's pool;
 * - beyond that, freed stacks give back all their pages and go to a
 *   process-wide free list of their size (under a lock);
 * - a thread's pool moves to that list when the thread exits.
 *
 * Every slab is recorded in an append-only table that a signal handler may
 * read, to tell a fault in a guard region (a stack overflow) from any other.
 *
 * SPDX-License-Identifier: MIT OR Apache-2.0
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "tools.h"
#include "ucoro_internal.h"

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102 /* Linux 6.13 uapi value */
#endif

/* Below every stack: 64 KiB of address space, no memory. Large enough that
 * a function with a big frame cannot step over it unnoticed. */
#define GUARD_SIZE ((size_t)64 << 10)
/* A slab holds this much address space (or one stack, if larger). */
#define SLAB_TARGET ((size_t)1 << 30)
#define SLAB_MAX_STACKS 4096
/* Freed stacks a thread keeps for reuse without a system call. */
#define POOL_SIZE 8
/* A pooled stack keeps its top pages resident: the frames a new coroutine
 * touches first. */
#define WATERMARK ((size_t)16 << 10)
/* How many slabs the process may have (each >= 1 GiB of address space,
 * or one huge stack): the x86_64 user address space is 128 TiB. */
#define MAX_SLABS 65536

/* All slabs of one stack size. */
struct size_class {
    struct size_class *next;
    size_t size;
    char **free; /* freed stacks, pages given back (kept outside the stacks,
                    so memory tools see no write into a dead stack) */
    size_t free_count, free_capacity;
    char *carve; /* next unused stride in the newest slab */
    char *carve_end;
};

struct slab {
    char *base;
    size_t bytes;
    size_t stride; /* guard + stack */
    size_t size;   /* usable stack size */
};

static pthread_mutex_t global_lock = PTHREAD_MUTEX_INITIALIZER;
static struct size_class *classes; /* under global_lock */

/* Append-only: an entry is written completely before slab_count is raised
 * (release), and never changed again, so a signal handler may read
 * slab_count (acquire) entries without a lock. */
static struct slab slabs[MAX_SLABS];
static size_t slab_count;

struct pool {
    unsigned count;
    int registered; /* the exit destructor knows this thread's pool */
    struct {
        char *base;
        size_t size;
    } entry[POOL_SIZE];
};

static __thread UCORO_TLS struct pool thread_pool;
static pthread_key_t pool_key;
static pthread_once_t pool_key_once = PTHREAD_ONCE_INIT;

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
        /* EINVAL: the kernel does not know this advice; remember that. */
        if (errno != EINVAL)
            return -1;
        __atomic_store_n(&guard_install_works, -1, __ATOMIC_RELAXED);
    }
    return mprotect(addr, len, PROT_NONE);
}

/* Gives back the pages of [base, base + len); the guard stays. */
static void give_back(char *base, size_t len)
{
    if (len)
        madvise(base, len, MADV_DONTNEED);
}

static struct size_class *find_class(size_t size)
{
    struct size_class *c;

    for (c = classes; c; c = c->next)
        if (c->size == size)
            return c;
    c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->size = size;
    c->next = classes;
    classes = c;
    return c;
}

/* Maps a new slab for class c. Called with global_lock held. */
static int new_slab(struct size_class *c)
{
    size_t stride = GUARD_SIZE + c->size;
    size_t n = SLAB_TARGET / stride;
    size_t count = __atomic_load_n(&slab_count, __ATOMIC_RELAXED);
    struct slab *s;
    char *map;

    if (n < 1)
        n = 1;
    if (n > SLAB_MAX_STACKS)
        n = SLAB_MAX_STACKS;
    if (count == MAX_SLABS)
        return -1;
    map = mmap(NULL, n * stride, PROT_READ | PROT_WRITE,
               MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (map == MAP_FAILED)
        return -1;
    s = &slabs[count];
    s->base = map;
    s->bytes = n * stride;
    s->stride = stride;
    s->size = c->size;
    __atomic_store_n(&slab_count, count + 1, __ATOMIC_RELEASE);
    c->carve = map;
    c->carve_end = map + n * stride;
    return 0;
}

/* A stack from the process-wide free list or a slab. */
static char *global_alloc(size_t size)
{
    struct size_class *c;
    char *base = NULL;

    pthread_mutex_lock(&global_lock);
    c = find_class(size);
    if (!c)
        goto out;
    if (c->free_count) {
        base = c->free[--c->free_count];
        goto out;
    }
    if (c->carve == c->carve_end && new_slab(c) != 0)
        goto out;
    if (install_guard(c->carve, GUARD_SIZE) != 0)
        goto out; /* the stride stays unused: retried by the next call */
    base = c->carve + GUARD_SIZE;
    c->carve += GUARD_SIZE + size;
    ucoro__tool_stack_carved(base, size);
out:
    pthread_mutex_unlock(&global_lock);
    return base;
}

static void global_free(char *base, size_t size)
{
    struct size_class *c;

    give_back(base, size);
    pthread_mutex_lock(&global_lock);
    c = find_class(size); /* exists: the stack came from it */
    if (c && c->free_count == c->free_capacity) {
        size_t capacity = c->free_capacity ? 2 * c->free_capacity : 64;
        char **grown = realloc(c->free, capacity * sizeof(*grown));

        if (grown) {
            c->free = grown;
            c->free_capacity = capacity;
        }
    }
    /* Out of memory for the list: the stack's address space stays unused
     * (its pages were given back above). */
    if (c && c->free_count < c->free_capacity)
        c->free[c->free_count++] = base;
    pthread_mutex_unlock(&global_lock);
}

static void pool_drain(void *arg)
{
    struct pool *p = arg;

    while (p->count) {
        p->count--;
        global_free(p->entry[p->count].base, p->entry[p->count].size);
    }
}

static void make_pool_key(void)
{
    /* On failure pools are not drained at thread exit: their stacks leak. */
    if (pthread_key_create(&pool_key, pool_drain) != 0)
        pool_key = (pthread_key_t)-1;
}

size_t ucoro_stack_size_for(size_t stack_size)
{
    size_t ps = page_size();
    size_t want = stack_size ? stack_size : UCORO_DEFAULT_STACK_SIZE;

    if (want < UCORO_MIN_STACK_SIZE)
        want = UCORO_MIN_STACK_SIZE;
    /* Rounding up and adding the guard must not wrap. */
    if (want > SIZE_MAX / 2 - GUARD_SIZE - ps)
        return 0;
    return (want + ps - 1) & ~(ps - 1);
}

int ucoro__stack_alloc(size_t *size, char **base)
{
    struct pool *p = &thread_pool;
    size_t want = *size ? *size : UCORO_DEFAULT_STACK_SIZE;
    unsigned i;

    /* Fast path: the newest pooled stack has exactly the size asked for
     * (the steady state of create/run/release with one stack size). */
    if (p->count && p->entry[p->count - 1].size == want) {
        *base = p->entry[--p->count].base;
        *size = want;
        return 0;
    }
    want = ucoro_stack_size_for(want);
    if (!want) {
        errno = EINVAL;
        return -1;
    }

    for (i = p->count; i-- > 0;) {
        if (p->entry[i].size == want) {
            *base = p->entry[i].base;
            p->entry[i] = p->entry[--p->count];
            *size = want;
            return 0;
        }
    }
    *base = global_alloc(want);
    if (!*base) {
        errno = ENOMEM;
        return -1;
    }
    *size = want;
    return 0;
}

void ucoro__stack_free(char *base, size_t size)
{
    struct pool *p = &thread_pool;

    ucoro__tool_stack_freed(base, size);
    if (p->count < POOL_SIZE) {
        if (!p->registered) {
            pthread_once(&pool_key_once, make_pool_key);
            if (pool_key != (pthread_key_t)-1)
                pthread_setspecific(pool_key, p);
            p->registered = 1;
        }
        /* The first pooled stack keeps its pages: create/run/release in a
         * loop reuses it with no system call. */
        if (p->count > 0 && size > WATERMARK)
            give_back(base, size - WATERMARK);
        p->entry[p->count].base = base;
        p->entry[p->count].size = size;
        p->count++;
        return;
    }
    global_free(base, size);
}

int ucoro__stack_guard_hit(const void *addr, size_t *stack_size)
{
    size_t n = __atomic_load_n(&slab_count, __ATOMIC_ACQUIRE);
    uintptr_t a = (uintptr_t)addr;
    size_t i;

    for (i = 0; i < n; i++) {
        const struct slab *s = &slabs[i];
        uintptr_t b = (uintptr_t)s->base;

        if (a >= b && a - b < s->bytes) {
            if ((a - b) % s->stride < GUARD_SIZE) {
                *stack_size = s->size;
                return 1;
            }
            return 0;
        }
    }
    return 0;
}

size_t ucoro__stack_touched(char *base, size_t size)
{
    size_t ps = page_size();
    size_t pages = size / ps;
    unsigned char vec[256];
    size_t lowest = pages; /* index of the lowest resident page */
    size_t first;

    /* mincore in chunks, from the bottom: the first resident page found is
     * the deepest one touched. */
    for (first = 0; first < pages; first += sizeof(vec)) {
        size_t n = pages - first < sizeof(vec) ? pages - first : sizeof(vec);
        size_t i;

        if (mincore(base + first * ps, n * ps, vec) != 0)
            return 0;
        for (i = 0; i < n; i++) {
            if (vec[i] & 1) {
                lowest = first + i;
                return (pages - lowest) * ps;
            }
        }
    }
    return 0;
}
