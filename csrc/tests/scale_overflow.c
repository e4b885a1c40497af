/*
 * Issue "Scale and stack safety", as a C program would check it: written
 * only against the installed coroutine.h, built through pkg-config.
 *
 *   scale_overflow many N      N suspended coroutines with the default
 *                              stack size: memory per coroutine, every
 *                              guard traps, each finishes with its own
 *                              result ("<n> passed, 0 failed")
 *   scale_overflow overflow    a coroutine recurses without end: the
 *                              library reports it and the process dies of
 *                              SIGSEGV (stdout names the victim first)
 *   scale_overflow judged      the same overflow, but a SIGSEGV handler of
 *                              this program's, installed after the
 *                              library's, judges it: the fault is in the
 *                              victim's guard and the neighbour's stack
 *                              below it is intact
 *
 * SPDX-License-Identifier: MIT OR Apache-2.0
 */
#define _GNU_SOURCE
#include <coroutine.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "check.h"

/* The guard below every stack, as the README documents it. */
#define GUARD ((size_t)64 << 10)
/* Targets of the issue, per suspended coroutine, struct included. */
#define RESIDENT_MAX 4608
#define RESIDENT_AND_PAGE_TABLES_MAX 9216

static long status_bytes(const char *field)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    size_t len = strlen(field);
    long kb = -1;

    if (!f)
        return -1;
    while (fgets(line, sizeof(line), f))
        if (strncmp(line, field, len) == 0)
            kb = atol(line + len);
    fclose(f);
    return kb * 1024;
}

static long maps_lines(void)
{
    FILE *f = fopen("/proc/self/maps", "r");
    long lines = 0;
    int c;

    if (!f)
        return -1;
    while ((c = fgetc(f)) != EOF)
        lines += c == '\n';
    fclose(f);
    return lines;
}

/* Whether the kernel makes guards without a mapping each; if not, the
 * library falls back to mprotect and vm.max_map_count bounds the count. */
static int guard_install_supported(void)
{
    char *p = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    int ok;

    if (p == MAP_FAILED)
        return 0;
    ok = madvise(p, 4096, 102 /* MADV_GUARD_INSTALL */) == 0;
    munmap(p, 8192);
    return ok;
}

/* Whether the kernel can read one byte at addr: write(2) from an address
 * with no memory fails with EFAULT instead of raising SIGSEGV. */
static int readable(int pipefd[2], const char *addr)
{
    char back;

    if (write(pipefd[1], addr, 1) == 1) {
        if (read(pipefd[0], &back, 1) != 1)
            abort();
        return 1;
    }
    if (errno != EFAULT)
        abort();
    return 0;
}

static void *suspend_once(void *arg)
{
    void *more = coroutine_yield(arg);

    return (void *)((uintptr_t)arg + (uintptr_t)more);
}

static void many(long n)
{
    struct coroutine *co;
    long rss0, pte0, rss, pte, i, lines;
    long bad_start = 0, bad_guard = 0, bad_end = 0;
    int pipefd[2];
    int guards_unmapped = guard_install_supported();

    if (!guards_unmapped) {
        FILE *f = fopen("/proc/sys/vm/max_map_count", "r");
        long maps = 65530, fits;

        if (f) {
            if (fscanf(f, "%ld", &maps) != 1)
                maps = 65530;
            fclose(f);
        }
        fits = (maps - 4096) / 2;
        if (fits < n) {
            printf("NOTE: no MADV_GUARD_INSTALL and vm.max_map_count = %ld: "
                   "%ld coroutines instead of %ld\n", maps, fits, n);
            n = fits;
        }
    }
    CHECK(pipe(pipefd) == 0);
    rss0 = status_bytes("VmRSS:");
    pte0 = status_bytes("VmPTE:");
    co = calloc((size_t)n, sizeof(*co));
    CHECK(co != NULL);
    if (!co)
        return;
    for (i = 0; i < n; i++) {
        co[i].entry = suspend_once; /* stack_size 0: the default */
        if (coroutine_init(&co[i]) != 0) {
            printf("coroutine_init failed at %ld: %s\n", i, strerror(errno));
            CHECK(!"every coroutine_init succeeds");
            exit(check_report());
        }
        bad_start += coroutine_yieldto(&co[i], (void *)(uintptr_t)i) != (void *)(uintptr_t)i;
    }
    rss = status_bytes("VmRSS:") - rss0;
    pte = status_bytes("VmPTE:") - pte0;
    lines = maps_lines();
    printf("suspended at once: %ld\n", n);
    printf("per coroutine: %ld bytes resident, %ld bytes of page tables\n", rss / n, pte / n);
    printf("lines in /proc/self/maps: %ld\n", lines);
    CHECK(bad_start == 0);
    CHECK(co[0].stack_size == (size_t)16 << 20);
    CHECK(rss / n <= RESIDENT_MAX);
    CHECK((rss + pte) / n <= RESIDENT_AND_PAGE_TABLES_MAX);
    if (guards_unmapped)
        CHECK(lines < 1000); /* guards are not mappings of their own */

    /* Every guard: its top and bottom byte trap; the stack's lowest byte
     * does not. */
    for (i = 0; i < n; i++) {
        const char *lo = co[i].cc.stack;

        bad_guard += readable(pipefd, lo - 1) || readable(pipefd, lo - GUARD) ||
                     !readable(pipefd, lo);
    }
    CHECK(bad_guard == 0);

    for (i = 0; i < n; i++) {
        bad_end += coroutine_yieldto(&co[i], (void *)1) != (void *)(uintptr_t)(i + 1);
        bad_end += !co[i].exited;
        bad_end += coroutine_release(&co[i]) != 0;
    }
    CHECK(bad_end == 0);
    free(co);
}

/* ---- overflow ------------------------------------------------------------ */

#define SMALL_STACK ((size_t)64 << 10)
#define PATTERN 4096

static unsigned char *volatile neighbour_buf;
static const char *volatile victim_guard_lo;
static const char *volatile victim_guard_hi;
static volatile unsigned long depth_limit = (unsigned long)-1;

static unsigned char pattern_byte(size_t i)
{
    return (unsigned char)((i * 31 + 7) % 251);
}

static int pattern_intact(void)
{
    size_t i;

    for (i = 0; i < PATTERN; i++)
        if (neighbour_buf[i] != pattern_byte(i))
            return 0;
    return 1;
}

/* Holds the pattern in a frame of its stack while suspended. */
static void *hold_pattern(void *arg)
{
    unsigned char buf[PATTERN];
    size_t i;

    for (i = 0; i < PATTERN; i++)
        buf[i] = pattern_byte(i);
    neighbour_buf = buf;
    coroutine_yield(NULL);
    return buf[0] == pattern_byte(0) ? arg : NULL;
}

/* Recursion with 1 KiB frames and work after the call, so it is neither a
 * loop nor a tail call; depth_limit (never reached) keeps it finite. */
static unsigned long deeper(volatile unsigned char *above)
{
    volatile unsigned char frame[1024];

    frame[0] = (unsigned char)(above ? above[0] + 1 : 0);
    if (depth_limit-- == 0)
        return frame[0];
    return deeper(frame) + frame[1];
}

static void *overflow_entry(void *arg)
{
    (void)arg;
    return (void *)(uintptr_t)deeper(NULL);
}

static void say(const char *s)
{
    ssize_t ignored = write(2, s, strlen(s));

    (void)ignored;
}

static void judge(int sig, siginfo_t *info, void *ctx)
{
    const char *addr = info->si_addr;

    (void)sig;
    (void)ctx;
    if (addr < victim_guard_lo || addr >= victim_guard_hi) {
        say("verdict: fault outside the victim's guard\n");
        _exit(4);
    }
    if (!pattern_intact()) {
        say("verdict: neighbour's pattern corrupted\n");
        _exit(3);
    }
    say("verdict: fault in the victim's guard, neighbour intact\n");
    _exit(0);
}

static void overflow(int judged)
{
    struct coroutine co[8];
    struct coroutine *n = NULL, *v = NULL;
    int i, j;

    memset(co, 0, sizeof(co));
    for (i = 0; i < 8; i++) {
        co[i].stack_size = SMALL_STACK;
        co[i].entry = hold_pattern;
        if (coroutine_init(&co[i]) != 0)
            exit(5);
    }
    /* The neighbour's stack top is the bottom of the victim's guard. */
    for (i = 0; i < 8 && !v; i++)
        for (j = 0; j < 8; j++)
            if (co[i].cc.stack + co[i].stack_size == co[j].cc.stack - GUARD) {
                n = &co[i];
                v = &co[j];
                break;
            }
    if (!v) {
        say("no two stacks lie guard-to-top\n");
        exit(6);
    }
    victim_guard_lo = v->cc.stack - GUARD;
    victim_guard_hi = v->cc.stack;
    v->entry = overflow_entry;
    coroutine_yieldto(n, NULL);
    if (!pattern_intact())
        exit(7);
    if (judged) {
        static char alt[64 << 10];
        stack_t ss;
        struct sigaction sa;

        ss.ss_sp = alt;
        ss.ss_size = sizeof(alt);
        ss.ss_flags = 0;
        memset(&sa, 0, sizeof(sa));
        sa.sa_sigaction = judge;
        sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
        sigemptyset(&sa.sa_mask);
        if (sigaltstack(&ss, NULL) != 0 || sigaction(SIGSEGV, &sa, NULL) != 0)
            exit(8);
    }
    printf("victim %p\n", (void *)v);
    fflush(stdout);
    coroutine_yieldto(v, NULL);
    say("the victim overflowed its stack and the process survived\n");
    exit(9);
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "many") == 0) {
        many(atol(argv[2]));
        return check_report();
    }
    if (argc == 2 && strcmp(argv[1], "overflow") == 0)
        overflow(0);
    if (argc == 2 && strcmp(argv[1], "judged") == 0)
        overflow(1);
    fprintf(stderr, "usage: %s many N | overflow | judged\n", argv[0]);
    return 2;
}
