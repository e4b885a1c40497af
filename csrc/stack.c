/*
 * Where coroutine stacks come from, and where they go back to.
 *
 * Size classes. A request is rounded up to whole pages and then to one of
 * four classes per power of two (2^k, 1.25, 1.5 and 1.75 x 2^k), so a
 * program can make at most CLASS_COUNT kinds of slab (200 on 64-bit, 72 on
 * 32-bit) whatever sizes it asks for; ucoro_stack_size_for says which class
 * a request gets, and init writes that size back.
 *
 * Slabs. Stacks of one class are carved from slabs: one MAP_NORESERVE
 * mapping holding several strides of guard + stack, so an overflow faults
 * in the guard instead of corrupting a neighbour, and pages are committed
 * only when touched. A class's first slab holds SLAB_FIRST_STACKS stacks
 * and each next one twice as many as the one before, up to SLAB_MAX_BYTES
 * (or SLAB_MAX_STACKS, or one stack if that is larger). When a mapping is
 * refused (RLIMIT_AS, RLIMIT_DATA, strict overcommit, a full address
 * space), the cached memory is given back (this thread's pool, empty slabs,
 * the unused tails of all slabs) and the mapping is retried, then retried at
 * half the size down to one guard + one stack: ucoro then succeeds wherever
 * one mmap per stack would (unless other threads' pools, or freed stacks in
 * slabs still in use, hold the room).
 *
 * Guards are made with madvise(MADV_GUARD_INSTALL) where the kernel has it
 * (Linux >= 6.13): such a guard is not a memory mapping of its own, so a
 * slab stays one VMA however many stacks it holds and vm.max_map_count
 * (65530 by default) does not limit the number of stacks. Older kernels
 * fall back to mprotect(PROT_NONE), which splits the slab into two VMAs per
 * stack: there, about 32,000 stacks can exist at once. Detected at run time.
 *
 * Giving back:
 * - each thread keeps a small pool of freed stacks (POOL_SIZE, at most
 *   POOL_BYTES in all), so create -> run -> exit -> release makes no system
 *   call in the steady state. The most recent stack keeps its pages; the
 *   others give back everything below their top WATERMARK bytes
 *   (MADV_DONTNEED). A stack freed on another thread than the one that made
 *   it joins the freeing thread's pool; a thread's pool goes back to the
 *   slabs when the thread exits (and a stack freed after that, by a later
 *   thread-exit destructor, goes there directly: see enum pool_state);
 * - beyond that, a freed stack gives back all its pages and returns to its
 *   slab. A slab none of whose stacks is in use is empty; beyond
 *   EMPTY_SLABS_KEPT empty slabs (process-wide) it is unmapped, which also
 *   frees its page tables (MADV_DONTNEED frees pages, not page tables).
 *
 * Cost, per stack in use: its size + GUARD_SIZE of address space, and the
 * same in commit charge under strict overcommit (vm.overcommit_memory=2
 * ignores MAP_NORESERVE). Slack beyond that: per class in use, the strides
 * of its newest slab not carved yet (< SLAB_MAX_BYTES); up to
 * EMPTY_SLABS_KEPT empty slabs; the stacks in thread pools; freed stacks
 * in slabs that still have a stack in use; and the slab records (groups
 * of 16, 32, ... up to 1024 slabs, 16 KiB each, never unmapped). When a
 * mapping is refused, the calling thread's pool, the empty slabs and the
 * tails are given back.
 *
 * Records. Every stack has a record (ucoro_internal.h) with its range and
 * owner. Slab descriptors and records live in slab groups, mappings that
 * are never unmapped, listed in ucoro__stack_registry: a debugger can walk
 * them without running code, and a signal handler can read them without a
 * lock (see slab_guard_hit for how it stays safe while slabs come and go).
 *
 * SPDX-License-Identifier: MIT OR Apache-2.0
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stddef.h>
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

/* Size classes: 2^CLASS_STEP_BITS per power of two, from the minimum
 * stack size (2^MIN_SHIFT) up to half the address space. */
#define CLASS_STEP_BITS 2
#define MIN_SHIFT 14
#define SIZE_BITS (sizeof(size_t) * CHAR_BIT)
#define CLASS_COUNT ((SIZE_BITS - MIN_SHIFT) << CLASS_STEP_BITS)
_Static_assert(UCORO_MIN_STACK_SIZE == (size_t)1 << MIN_SHIFT, "MIN_SHIFT");

/* Slab growth: a class's first slab holds a few stacks, each next one
 * twice as many, up to a cap in bytes (the bound on the slack that strict
 * overcommit charges per class) and in stacks (the size of a slab's block
 * of records). On 32-bit (3 GiB of address space) a cap of 64 MiB still
 * holds three default 16 MiB stacks. */
#define SLAB_FIRST_STACKS 4u
#define SLAB_MAX_STACKS 256u
#define SLAB_MAX_BYTES (sizeof(void *) >= 8 ? (size_t)1 << 30 : (size_t)64 << 20)
/* Empty slabs kept mapped process-wide, for the next burst (a slab larger
 * than SLAB_MAX_BYTES, one huge stack, is never kept). */
#define EMPTY_SLABS_KEPT 2u

/* Slab descriptors come in groups: the first of FIRST_GROUP_SLABS, each next
 * one twice as large up to MAX_GROUP_SLABS (so a burst leaves few groups
 * behind, and a program with a few coroutines maps a small one); at most
 * MAX_GROUPS groups, about 65,000 slabs (as many default-size stacks as fit
 * the 128 TiB x86_64 address space). */
#define FIRST_GROUP_SLABS 16u
#define GROWING_GROUPS 6u /* 16 << 6 == MAX_GROUP_SLABS */
#define MAX_GROUP_SLABS 1024u
#define MAX_GROUPS 70u

/* Freed stacks a thread keeps for reuse without a system call, and how many
 * bytes of address space they may hold in all (a larger stack is never
 * pooled): eight default stacks, two on 32-bit. */
#define POOL_SIZE 8
#define POOL_BYTES ((sizeof(void *) >= 8 ? POOL_SIZE : 2) * UCORO_DEFAULT_STACK_SIZE)
/* A pooled stack keeps its top pages resident: the frames a new coroutine
 * touches first. */
#define WATERMARK ((size_t)16 << 10)

/* Values of a record's next_free besides the index of the next free one. */
#define NO_RECORD UINT32_MAX        /* end of a slab's free list */
#define IN_USE (UINT32_MAX - 1)     /* handed out */
#define NO_SLOT UINT32_MAX

struct slab {
    /* Read without a lock by slab_guard_hit: written under the stacks lock
     * only, between slab_change_begin and slab_change_end. */
    unsigned sequence; /* a seqlock: odd while the fields below change */
    char *base;        /* NULL: this slot holds no slab */
    size_t bytes;      /* mapped: count strides */
    size_t stride;     /* GUARD_SIZE + size */
    size_t size;       /* usable size of each stack */
    struct ucoro_stack_record *records; /* SLAB_MAX_STACKS; fixed for the slot */

    /* Under the stacks lock. */
    struct slab *room_prev, *room_next; /* the class's slabs with room */
    uint32_t index;                     /* of this slot, for records */
    uint32_t class_index;
    uint32_t count;     /* strides mapped */
    uint32_t carved;    /* strides from the bottom with a guard and a record */
    uint32_t in_use;    /* stacks handed out (thread pools included) */
    uint32_t free_head; /* carved stacks given back, pages given back too */
    uint32_t next_free_slot;
    unsigned char has_room_listed;
    unsigned char counted_empty;
};

/*
 * The entry point for debuggers and core-file readers (layout version 2;
 * csrc/gdb/ucoro-gdb.py reads it): group g < group_count is an array of
 * group_slabs[g] slab descriptors (one mapping: the descriptors, then each
 * slot's records on pages of their own, so that an unmapped slab's records
 * give back their memory); a slab with a non-NULL base has
 * records_per_slab records, of which those with a non-NULL owner are
 * stacks in use. Groups are only ever appended. The sizes and offsets a
 * reader needs of struct slab and struct ucoro_stack_record are here too,
 * so that it need not know their layout. File-static, so it adds no
 * global symbol (and none of AddressSanitizer's): a debugger finds it by
 * name in the symbol table or the debug info.
 */
struct ucoro__stack_registry {
    unsigned layout_version;
    unsigned group_count; /* published with release ordering */
    size_t guard_size;
    uint16_t records_per_slab;
    uint16_t slab_size, slab_base, slab_records;
    uint16_t record_size, record_base, record_bytes, record_owner;
    struct slab *groups[MAX_GROUPS];
    uint32_t group_slabs[MAX_GROUPS];
};
static struct ucoro__stack_registry ucoro__stack_registry = {
    2,
    0,
    GUARD_SIZE,
    SLAB_MAX_STACKS,
    sizeof(struct slab),
    offsetof(struct slab, base),
    offsetof(struct slab, records),
    sizeof(struct ucoro_stack_record),
    offsetof(struct ucoro_stack_record, base),
    offsetof(struct ucoro_stack_record, size),
    offsetof(struct ucoro_stack_record, owner),
    {0},
    {0},
};

struct size_class {
    struct slab *room;   /* slabs with a free or an uncarved stride */
    uint32_t next_count; /* strides of the class's next slab; 0: the first */
    uint32_t slabs;
};

/* Non-zero when a memory tool watches the stacks (AddressSanitizer built
 * in, or Valgrind seen when a slab was mapped): only then are hand-outs
 * and give-backs announced, so the hot path pays one load otherwise. */
static int tools_watch_stacks = UCORO_STACK_TOOL_BUILT_IN;

/* All under the stacks lock. */
static struct size_class classes[CLASS_COUNT];
static uint32_t free_slot_head = NO_SLOT;
static unsigned empty_slabs;

/*
 * A thread's pool goes through three states. It is drained by a
 * thread-specific-data destructor, which the C library runs at thread exit
 * for keys with a value, in rounds: a destructor that sets a value again is
 * called in the next round, up to PTHREAD_DESTRUCTOR_ITERATIONS (4 in glibc
 * and musl). The program's own destructors (and C++ or Rust thread_local
 * destructors, which glibc runs before any key's) may free or run
 * coroutines before or after ours: once ours has run, the thread's pool is
 * closed, and stacks freed later go straight back to the slabs. The one
 * case left: a thread whose first stack or free comes in the last round
 * registers a destructor that is never called, and its pool (at most
 * POOL_SIZE stacks) is not given back.
 */
enum pool_state {
    POOL_UNREGISTERED, /* the exit destructor does not know this pool yet */
    POOL_OPEN,         /* it does: it drains the pool when the thread exits */
    POOL_CLOSED,       /* it has run (or cannot): nothing is pooled any more */
};

struct pool {
    unsigned count;
    enum pool_state state;
    size_t bytes;
    struct ucoro_stack_record *entry[POOL_SIZE];
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

static size_t round_up(size_t n, size_t multiple_pow2)
{
    return (n + multiple_pow2 - 1) & ~(multiple_pow2 - 1);
}

static unsigned floor_log2(size_t n)
{
    return (unsigned)(sizeof(unsigned long long) * CHAR_BIT - 1) -
           (unsigned)__builtin_clzll((unsigned long long)n);
}

/* ---- size classes -------------------------------------------------------- */

size_t ucoro_stack_size_for(size_t stack_size)
{
    size_t ps = page_size();
    size_t want = stack_size ? stack_size : UCORO_DEFAULT_STACK_SIZE;

    if (want < UCORO_MIN_STACK_SIZE)
        want = UCORO_MIN_STACK_SIZE;
    /* Rounding up and adding the guard must not wrap. */
    if (want > SIZE_MAX / 2 - GUARD_SIZE - ps)
        return 0;
    want = round_up(want, ps);
    /* To a multiple of a quarter of its power of two. When that quarter is
     * smaller than a page, want (whole pages) is one already; otherwise the
     * result is whole pages too. */
    return round_up(want, (size_t)1 << (floor_log2(want) - CLASS_STEP_BITS));
}

/* The class of a size that ucoro_stack_size_for returned: 2^k + j * 2^(k-2)
 * is class (k - MIN_SHIFT) * 4 + j. */
static uint32_t class_of(size_t size)
{
    unsigned k = floor_log2(size);

    return ((k - MIN_SHIFT) << CLASS_STEP_BITS) |
           (uint32_t)((size >> (k - CLASS_STEP_BITS)) & ((1u << CLASS_STEP_BITS) - 1));
}

/* ---- guards and pages ---------------------------------------------------- */

/* 0: not probed yet, 1: MADV_GUARD_INSTALL works, -1: use mprotect. */
static int guard_install_works;

/* Whether reading addr faults, asked of the kernel: writing a byte from
 * there into a pipe fails with EFAULT, and raises no signal, if it does.
 * An emulator that ignored the guard (qemu-user) writes it instead. If no
 * pipe can be had, the guard is trusted. */
static int guard_faults(const char *addr)
{
    int fds[2];
    int saved = errno;
    ssize_t n;

    if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) {
        errno = saved;
        return 1;
    }
    ucoro__tool_quiet_begin(); /* Memcheck: the read is meant to fail */
    n = write(fds[1], addr, 1);
    ucoro__tool_quiet_end();
    close(fds[0]);
    close(fds[1]);
    errno = saved;
    return n != 1;
}

/* Makes [addr, addr + len) fault on any access. Returns 0, or -1 with errno
 * from madvise or mprotect (ENOMEM: for mprotect, vm.max_map_count). The
 * first MADV_GUARD_INSTALL is checked to fault before it is trusted. */
static int install_guard(char *addr, size_t len)
{
    int state = __atomic_load_n(&guard_install_works, __ATOMIC_RELAXED);

    if (state >= 0) {
        if (madvise(addr, len, MADV_GUARD_INSTALL) == 0) {
            if (state == 1 || guard_faults(addr)) {
                if (state == 0)
                    __atomic_store_n(&guard_install_works, 1, __ATOMIC_RELAXED);
                return 0;
            }
            /* Accepted but not enforced (an emulator that ignores advice
             * it does not know, such as qemu-user): no guard was made. */
            __atomic_store_n(&guard_install_works, -1, __ATOMIC_RELAXED);
            return mprotect(addr, len, PROT_NONE);
        }
        /* EINVAL: the kernel does not know this advice; remember that. */
        if (errno != EINVAL)
            return -1;
        __atomic_store_n(&guard_install_works, -1, __ATOMIC_RELAXED);
    }
    return mprotect(addr, len, PROT_NONE);
}

/* 1 if guards are made with MADV_GUARD_INSTALL, else 0; the first call
 * before any stack was carved probes with a page of its own. errno is
 * kept: callers treat this as a query that cannot fail. */
int ucoro__stack_guards_are_advice(void)
{
    int state = __atomic_load_n(&guard_install_works, __ATOMIC_RELAXED);

    if (state == 0) {
        int saved = errno;
        size_t ps = page_size();
        char *probe = mmap(NULL, ps, PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

        if (probe != MAP_FAILED) {
            (void)install_guard(probe, ps);
            munmap(probe, ps);
        }
        errno = saved;
        state = __atomic_load_n(&guard_install_works, __ATOMIC_RELAXED);
    }
    return state > 0;
}

/* Gives back the pages of [base, base + len); a guard stays. */
static void give_back(char *base, size_t len)
{
    if (len)
        madvise(base, len, MADV_DONTNEED);
}

/* ---- the slab table ------------------------------------------------------ */

/* Slabs in group g, and the index of its first slab. */
static uint32_t slabs_in_group(unsigned g)
{
    return g < GROWING_GROUPS ? FIRST_GROUP_SLABS << g : MAX_GROUP_SLABS;
}

static uint32_t first_slab_of_group(unsigned g)
{
    if (g <= GROWING_GROUPS)
        return FIRST_GROUP_SLABS * ((1u << g) - 1);
    return FIRST_GROUP_SLABS * ((1u << GROWING_GROUPS) - 1) + (g - GROWING_GROUPS) * MAX_GROUP_SLABS;
}

static struct slab *slab_at(uint32_t index)
{
    uint32_t growing = first_slab_of_group(GROWING_GROUPS);
    unsigned g = index < growing ? floor_log2(index / FIRST_GROUP_SLABS + 1)
                                 : GROWING_GROUPS + (index - growing) / MAX_GROUP_SLABS;

    return &ucoro__stack_registry.groups[g][index - first_slab_of_group(g)];
}

/* Bytes of one slot's records, on whole pages. */
static size_t records_bytes(void)
{
    return round_up(SLAB_MAX_STACKS * sizeof(struct ucoro_stack_record), page_size());
}

/* Maps one more group of slab slots and adds them to the free slots.
 * Returns 0, or -1 (errno ENOMEM) when the table is full or mmap fails. */
static int add_group(void)
{
    struct ucoro__stack_registry *reg = &ucoro__stack_registry;
    unsigned g = reg->group_count;
    uint32_t n = slabs_in_group(g);
    size_t head = round_up(n * sizeof(struct slab), page_size());
    size_t per_slot = records_bytes();
    struct slab *group;
    char *map;
    uint32_t i;

    if (g == MAX_GROUPS) {
        errno = ENOMEM;
        return -1;
    }
    map = mmap(NULL, head + n * per_slot, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
               -1, 0);
    if (map == MAP_FAILED)
        return -1;
    group = (struct slab *)(void *)map;
    for (i = n; i-- > 0;) {
        struct slab *s = &group[i];

        s->records = (struct ucoro_stack_record *)(void *)(map + head + i * per_slot);
        s->index = first_slab_of_group(g) + i;
        s->next_free_slot = free_slot_head;
        free_slot_head = s->index;
    }
    reg->groups[g] = group;
    reg->group_slabs[g] = n;
    /* Readers that see the new count see the group's contents. */
    __atomic_store_n(&reg->group_count, g + 1, __ATOMIC_RELEASE);
    return 0;
}

/*
 * The writer's half of the seqlock that slab_guard_hit reads under, without
 * fences (ThreadSanitizer does not model them): the sequence turns odd,
 * every field is stored with release order (so a reader that loads a new
 * value, with acquire order, then sees the odd sequence), and the sequence
 * turns even with release order (a reader that sees it sees the fields).
 */
static void slab_change_begin(struct slab *s)
{
    __atomic_store_n(&s->sequence, s->sequence + 1, __ATOMIC_RELAXED);
}

#define SLAB_STORE(s, field, value) __atomic_store_n(&(s)->field, (value), __ATOMIC_RELEASE)

static void slab_change_end(struct slab *s)
{
    __atomic_store_n(&s->sequence, s->sequence + 1, __ATOMIC_RELEASE);
}

static void slab_publish(struct slab *s, char *base, size_t bytes)
{
    slab_change_begin(s);
    SLAB_STORE(s, base, base);
    SLAB_STORE(s, bytes, bytes);
    slab_change_end(s);
}

static void room_add(struct slab *s)
{
    struct size_class *c = &classes[s->class_index];

    if (s->has_room_listed)
        return;
    s->room_prev = NULL;
    s->room_next = c->room;
    if (c->room)
        c->room->room_prev = s;
    c->room = s;
    s->has_room_listed = 1;
}

static void room_remove(struct slab *s)
{
    if (!s->has_room_listed)
        return;
    if (s->room_prev)
        s->room_prev->room_next = s->room_next;
    else
        classes[s->class_index].room = s->room_next;
    if (s->room_next)
        s->room_next->room_prev = s->room_prev;
    s->has_room_listed = 0;
}

/* Maps a slab of count strides for the class of size and lists it as
 * having room. Returns it, or NULL (errno from mmap, or ENOMEM). */
static struct slab *map_slab(uint32_t class_index, size_t size, uint32_t count)
{
    size_t stride = GUARD_SIZE + size;
    struct slab *s;
    char *map;

    if (free_slot_head == NO_SLOT && add_group() != 0)
        return NULL;
    map = mmap(NULL, count * stride, PROT_READ | PROT_WRITE,
               MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (map == MAP_FAILED)
        return NULL;
    s = slab_at(free_slot_head);
    free_slot_head = s->next_free_slot;
    s->class_index = class_index;
    s->count = count;
    s->carved = 0;
    s->in_use = 0;
    s->free_head = NO_RECORD;
    s->counted_empty = 0;
    slab_change_begin(s);
    SLAB_STORE(s, stride, stride);
    SLAB_STORE(s, size, size);
    SLAB_STORE(s, base, map);
    SLAB_STORE(s, bytes, count * stride);
    slab_change_end(s);
    if (ucoro__tool_slab_mapped(map, count * stride))
        __atomic_store_n(&tools_watch_stacks, 1, __ATOMIC_RELAXED);
    classes[class_index].slabs++;
    room_add(s);
    return s;
}

/* The stacks of slab s from index first up are about to be unmapped (all
 * free): the tools forget them, so that nothing they knew of the stacks
 * sticks to whatever is mapped there next. */
static void tools_forget(struct slab *s, uint32_t first)
{
    uint32_t i;

    if (!__atomic_load_n(&tools_watch_stacks, __ATOMIC_RELAXED))
        return;
    for (i = first; i < s->carved; i++)
        ucoro__tool_stack_unmapped(&s->records[i]);
}

/* Unmaps a slab with no stack in use; its slot can take another slab. */
static void unmap_slab(struct slab *s)
{
    struct size_class *c = &classes[s->class_index];
    char *base = s->base;
    size_t bytes = s->bytes;

    tools_forget(s, 0);
    room_remove(s);
    if (s->counted_empty)
        empty_slabs--;
    s->counted_empty = 0;
    /* Out of the table before the range goes: a fault there from now on is
     * not ours. */
    slab_publish(s, NULL, 0);
    munmap(base, bytes);
    /* The records stay mapped (a signal handler may still be reading
     * them); reading them now gives zeros. */
    madvise(s->records, records_bytes(), MADV_DONTNEED);
    if (--c->slabs == 0)
        c->next_count = 0; /* start small again */
    s->next_free_slot = free_slot_head;
    free_slot_head = s->index;
}

/* Unmaps the strides above the highest stack in use (the whole slab if
 * none is); used when a mapping was refused. */
static void trim_slab(struct slab *s)
{
    uint32_t keep = s->carved;
    uint32_t *link;

    while (keep > 0 && s->records[keep - 1].next_free != IN_USE)
        keep--;
    if (keep == 0) {
        unmap_slab(s);
        return;
    }
    if (keep == s->count)
        return;
    for (link = &s->free_head; *link != NO_RECORD;) {
        if (*link >= keep)
            *link = s->records[*link].next_free;
        else
            link = &s->records[*link].next_free;
    }
    tools_forget(s, keep);
    slab_publish(s, s->base, keep * s->stride);
    munmap(s->base + keep * s->stride, (s->count - keep) * s->stride);
    s->count = keep;
    s->carved = keep;
    if (s->free_head == NO_RECORD)
        room_remove(s);
}

/* Takes a stack from a slab with room. Returns its record, or NULL with
 * errno when the guard of a new stride cannot be installed. */
static struct ucoro_stack_record *slab_take(struct slab *s)
{
    struct ucoro_stack_record *r;

    if (s->free_head != NO_RECORD) {
        r = &s->records[s->free_head];
        s->free_head = r->next_free;
    } else {
        char *stride_base = s->base + s->carved * s->stride;

        if (install_guard(stride_base, GUARD_SIZE) != 0)
            return NULL;
        r = &s->records[s->carved++];
        r->base = stride_base + GUARD_SIZE;
        r->size = s->size;
        r->slab = s->index;
        r->tool_poisoned = 0;
        r->tool_fake = NULL;
    }
    r->next_free = IN_USE;
    if (s->in_use++ == 0 && s->counted_empty) {
        s->counted_empty = 0;
        empty_slabs--;
    }
    if (s->free_head == NO_RECORD && s->carved == s->count)
        room_remove(s);
    return r;
}

/* Returns a stack (pages given back already) to its slab; an empty slab
 * beyond the watermark is unmapped. */
static void slab_put(struct ucoro_stack_record *r)
{
    struct slab *s = slab_at(r->slab);

    r->next_free = s->free_head;
    s->free_head = (uint32_t)(r - s->records);
    room_add(s);
    if (--s->in_use == 0) {
        if (empty_slabs >= EMPTY_SLABS_KEPT || s->bytes > SLAB_MAX_BYTES) {
            unmap_slab(s);
        } else {
            empty_slabs++;
            s->counted_empty = 1;
        }
    }
}

/* ---- giving back under pressure ----------------------------------------- */

/* A mapping was refused: gives back what is cached (this thread's pool,
 * empty slabs, the unused tails of slabs). Called with the stacks lock held. */
static void give_back_cached(void)
{
    struct pool *p = &thread_pool;
    uint32_t slabs = first_slab_of_group(ucoro__stack_registry.group_count);
    uint32_t i;

    while (p->count) {
        struct ucoro_stack_record *r = p->entry[--p->count];

        p->bytes -= r->size;
        give_back(r->base, r->size);
        slab_put(r);
    }
    for (i = 0; i < slabs; i++) {
        struct slab *s = slab_at(i);

        if (s->base)
            trim_slab(s);
    }
}

/* Maps one more slab for the class of size: the next one in the class's
 * geometric growth, or smaller ones if the system refuses. Returns 0, or
 * -1 with errno when not even one stride can be had. Called with
 * the stacks lock held; may give back cached memory. */
static int grow_class(uint32_t class_index, size_t size, int *gave_back)
{
    struct size_class *c = &classes[class_index];
    size_t stride = GUARD_SIZE + size;
    uint32_t cap = SLAB_MAX_STACKS;
    uint32_t count;

    if (SLAB_MAX_BYTES / stride < cap)
        cap = SLAB_MAX_BYTES / stride ? (uint32_t)(SLAB_MAX_BYTES / stride) : 1;
    count = c->next_count ? c->next_count : SLAB_FIRST_STACKS;
    if (count > cap)
        count = cap;
    for (;;) {
        if (map_slab(class_index, size, count)) {
            c->next_count = count < cap / 2 ? 2 * count : cap;
            return 0;
        }
        if (!*gave_back) {
            /* Retry at the same size once the cache is back; the caller
             * looks for room again first. */
            *gave_back = 1;
            give_back_cached();
            return 0;
        }
        if (count == 1) {
            errno = ENOMEM;
            return -1;
        }
        count /= 2;
    }
}

/* A stack of size (a class size) from the slabs. Returns its record, or
 * NULL when not even a slab of one stack can be mapped or its guard cannot
 * be installed (the caller reports ENOMEM). */
static struct ucoro_stack_record *global_alloc(size_t size)
{
    uint32_t class_index = class_of(size);
    struct ucoro_stack_record *r = NULL;
    int gave_back = 0;

    ucoro__lock(UCORO_LOCK_STACKS);
    for (;;) {
        struct slab *s = classes[class_index].room;

        if (s) {
            r = slab_take(s);
            break;
        }
        if (grow_class(class_index, size, &gave_back) != 0)
            break;
    }
    ucoro__unlock(UCORO_LOCK_STACKS);
    return r;
}

static void global_free(struct ucoro_stack_record *r)
{
    give_back(r->base, r->size);
    ucoro__lock(UCORO_LOCK_STACKS);
    slab_put(r);
    ucoro__unlock(UCORO_LOCK_STACKS);
}

/* ---- the per-thread pool ------------------------------------------------- */

/* The pool key's destructor: gives the exiting thread's pool back and
 * closes it for the destructors that run after this one. */
static void pool_drain(void *arg)
{
    struct pool *p = arg;

    p->state = POOL_CLOSED;
    while (p->count) {
        struct ucoro_stack_record *r = p->entry[--p->count];

        p->bytes -= r->size;
        global_free(r);
    }
}

static void make_pool_key(void)
{
    /* On failure pools are not drained at thread exit: their stacks leak. */
    if (pthread_key_create(&pool_key, pool_drain) != 0)
        pool_key = (pthread_key_t)-1;
}

/* The once-guard is also passed at load: a fork() that came while another
 * thread was inside it would leave the child's guard "in progress" for good
 * where pthread_once does not restart in a child (musl, ThreadSanitizer;
 * glibc does). A use before this constructor (from another constructor)
 * still goes through the guard. */
__attribute__((constructor)) static void make_pool_key_at_load(void)
{
    pthread_once(&pool_key_once, make_pool_key);
}

/* Lets the exit destructor know the calling thread's pool, on the thread's
 * first stack from the slabs or first free, whichever comes first: a thread
 * that took a stack before it began to exit has its destructor called in
 * the first round, before any later destructor of the program could free
 * into the pool. Without a key the pool stays closed (correct, slower). */
static void pool_register(struct pool *p)
{
    pthread_once(&pool_key_once, make_pool_key);
    if (pool_key != (pthread_key_t)-1 && pthread_setspecific(pool_key, p) == 0)
        p->state = POOL_OPEN;
    else
        p->state = POOL_CLOSED;
}

static struct ucoro_stack_record *hand_out(struct ucoro_stack_record *r)
{
    if (__builtin_expect(__atomic_load_n(&tools_watch_stacks, __ATOMIC_RELAXED), 0))
        ucoro__tool_stack_taken(r);
    return r;
}

struct ucoro_stack_record *ucoro__stack_alloc(size_t size)
{
    struct pool *p = &thread_pool;
    size_t want = size ? size : UCORO_DEFAULT_STACK_SIZE;
    struct ucoro_stack_record *r;
    unsigned i;

    /* Fast path: the newest pooled stack has the size asked for (the
     * steady state of create/run/release with one stack size). */
    if (p->count && p->entry[p->count - 1]->size == want) {
        r = p->entry[--p->count];
        p->bytes -= want;
        return hand_out(r);
    }
    want = ucoro_stack_size_for(want);
    if (!want) {
        errno = EINVAL;
        return NULL;
    }
    for (i = p->count; i-- > 0;) {
        if (p->entry[i]->size == want) {
            r = p->entry[i];
            p->entry[i] = p->entry[--p->count];
            p->bytes -= want;
            return hand_out(r);
        }
    }
    if (p->state == POOL_UNREGISTERED)
        pool_register(p);
    r = global_alloc(want);
    if (!r) {
        errno = ENOMEM;
        return NULL;
    }
    return hand_out(r);
}

void ucoro__stack_free(struct ucoro_stack_record *r)
{
    struct pool *p = &thread_pool;

    ucoro__stack_set_owner(r, NULL);
    if (__builtin_expect(__atomic_load_n(&tools_watch_stacks, __ATOMIC_RELAXED), 0))
        ucoro__tool_stack_given_back(r);
    if (__builtin_expect(p->state != POOL_OPEN, 0)) {
        if (p->state == POOL_UNREGISTERED)
            pool_register(p);
        if (p->state != POOL_OPEN) {
            global_free(r);
            return;
        }
    }
    if (p->count < POOL_SIZE && p->bytes + r->size <= POOL_BYTES) {
        /* The first pooled stack keeps its pages: create/run/release in a
         * loop reuses it with no system call. */
        if (p->count > 0 && r->size > WATERMARK)
            give_back(r->base, r->size - WATERMARK);
        p->entry[p->count++] = r;
        p->bytes += r->size;
        return;
    }
    global_free(r);
}

/* ---- for the signal handler ---------------------------------------------- */

/*
 * Whether addr is in a guard of slab s, read without a lock: 1 (a guard
 * below a stack in use; *size and *owner set), -1 (in s, not such a guard),
 * 0 (not in s, or s kept changing). Safe while other threads map, trim and
 * unmap slabs: the descriptor is read under its seqlock, and a read that
 * overlapped a change is thrown away; every address read is in a group,
 * which is never unmapped (an unmapped slab's records read as zeros), and
 * the record index is bounded, so even a torn read cannot fault.
 */
static int slab_guard_hit(const struct slab *s, uintptr_t a, size_t *size, const void **owner)
{
    int tries;

    for (tries = 0; tries < 8; tries++) {
        unsigned seq = __atomic_load_n(&s->sequence, __ATOMIC_ACQUIRE);
        uintptr_t base = (uintptr_t)__atomic_load_n(&s->base, __ATOMIC_ACQUIRE);
        size_t bytes = __atomic_load_n(&s->bytes, __ATOMIC_ACQUIRE);
        size_t stride = __atomic_load_n(&s->stride, __ATOMIC_ACQUIRE);
        size_t stack_size = __atomic_load_n(&s->size, __ATOMIC_ACQUIRE);
        const void *who = NULL;
        int verdict = 0;

        if (seq & 1)
            continue;
        if (base && a >= base && a - base < bytes && stride) {
            size_t index = (a - base) / stride;

            verdict = -1;
            if ((a - base) % stride < GUARD_SIZE && index < SLAB_MAX_STACKS) {
                who = __atomic_load_n(&s->records[index].owner, __ATOMIC_ACQUIRE);
                if (who)
                    verdict = 1;
            }
        }
        if (__atomic_load_n(&s->sequence, __ATOMIC_RELAXED) != seq)
            continue;
        if (verdict > 0) {
            *size = stack_size;
            *owner = who;
        }
        return verdict;
    }
    return 0;
}

int ucoro__stack_guard_hit(const void *addr, size_t *stack_size, const void **owner)
{
    const struct ucoro__stack_registry *reg = &ucoro__stack_registry;
    unsigned groups = __atomic_load_n(&reg->group_count, __ATOMIC_ACQUIRE);
    unsigned g, i;

    for (g = 0; g < groups; g++) {
        for (i = 0; i < reg->group_slabs[g]; i++) {
            int verdict = slab_guard_hit(&reg->groups[g][i], (uintptr_t)addr,
                                         stack_size, owner);

            if (verdict)
                return verdict > 0;
        }
    }
    return 0;
}

size_t ucoro__stack_touched(char *base, size_t size)
{
    size_t ps = page_size();
    size_t pages = size / ps;
    unsigned char vec[256];
    size_t first;

    /* mincore in chunks, from the bottom: the first resident page found is
     * the deepest one touched. */
    for (first = 0; first < pages; first += sizeof(vec)) {
        size_t n = pages - first < sizeof(vec) ? pages - first : sizeof(vec);
        size_t i;

        if (mincore(base + first * ps, n * ps, vec) != 0)
            return 0;
        for (i = 0; i < n; i++)
            if (vec[i] & 1)
                return (pages - first - i) * ps;
    }
    return 0;
}
