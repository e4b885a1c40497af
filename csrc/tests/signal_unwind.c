/*
 * A signal handler that unwinds (what in-process sampling profilers and
 * crash reporters do) while coroutines switch as fast as they can: a
 * helper process sends this one SIGPROF without pause, and the
 * handler walks the stack, alternately with glibc's backtrace() and with
 * libgcc's _Unwind_Backtrace, wherever the signal landed: in user code, in
 * the library, at any instruction of a switch, a start stub or the exit
 * path (issue 17: the signal landing inside the switch used to kill the
 * process with SIGSEGV within seconds). No walk may crash, loop or report
 * a frame that has no unwind entry (a garbage return address); where the
 * program links the library's sources (its hidden stubs are then
 * visible), every walk must also reach main or end at a coroutine's first
 * frame.
 *
 * The storm lasts UCORO_STORM_SECONDS (default 1; CI runs 10). The round
 * trip covers a first start, a nested first start, yields, resumptions and
 * both exits (the stack freed on the resumer's stack).
 *
 * Built with -funwind-tables where the compiler emits no unwind tables for
 * C by default (arm, riscv64, mips64el). Run by .ci/c-tools.sh,
 * .ci/cross.sh and tests/c_dropin.rs.
 *
 * SPDX-License-Identifier: MIT OR Apache-2.0
 */
#define _GNU_SOURCE

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "coroutine.h"

#include "check.h"

/* musl-gcc links the host compiler's libgcc_eh, whose unwinder is built
 * against glibc: there the test is left out (as in arch_switch.c). */
#ifdef __GLIBC__
#include <execinfo.h>
#include <sys/wait.h>
#include <unwind.h>

#define STACK_SIZE ((size_t)64 << 10)
#define MAX_FRAMES 64
#define ROUNDS 64 /* resumptions per coroutine */

/* Hidden in the library, visible where this program links its sources;
 * weak, since each build has only some of them. */
extern void ucoro__start_stub(void) __attribute__((weak));
extern void ucoro__no_resumer(void) __attribute__((weak));
extern void ucoro__enter_stack(void *cc, void *top) __attribute__((weak));
extern void ucoro__cc_entry(void *cc) __attribute__((weak));

/* Where this program is built with csrc (not against an installed
 * library), the switch's own declaration, whose type link-time
 * optimisation checks: it tells where the assembly begins. */
#if defined(__has_include)
#if __has_include("cc_switch.h")
#include "cc_switch.h"
#endif
#endif

#ifdef __ARM_EABI_UNWINDER__
/* Arm EHABI: a walk ends with _URC_FAILURE at a .cantunwind function and
 * reports no frame for it (the stubs' callee is the last reported). */
#define WALK_ENDED(result) ((result) == _URC_FAILURE || (result) == _URC_END_OF_STACK)
#else
#define WALK_ENDED(result) ((result) == _URC_END_OF_STACK)
#endif
/* Function starts without Arm's Thumb bit (only there: elsewhere a
 * function may start at an odd address, as main does under ASan at -O1). */
#ifdef __arm__
#define CODE_ADDRESS(p) ((uintptr_t)(p) & ~(uintptr_t)1)
#else
#define CODE_ADDRESS(p) ((uintptr_t)(p))
#endif

int main(void);

/* What the handler saw; written only by the handler, read once the storm
 * is over. */
static volatile struct {
    unsigned long walks, glibc_walks, in_switch, too_deep, not_ended, garbage, lost;
    int deepest;
    uintptr_t garbage_ip; /* the first frame without an unwind entry */
    uintptr_t lost_at, lost_end; /* the first lost walk: where it began, ended */
    uintptr_t too_deep_at;       /* the first walk that did not end */
} seen;

struct walk {
    int frames;
    int passed_main;
    uintptr_t last_start;
    uintptr_t interrupted; /* the interrupted pc (frame 2) */
};

static _Unwind_Reason_Code note_frame(struct _Unwind_Context *context, void *arg)
{
    struct walk *w = arg;
    uintptr_t ip = _Unwind_GetIP(context);
    uintptr_t start = ip ? CODE_ADDRESS(_Unwind_GetRegionStart(context)) : 0;

    /* Frames 0 and 1 are this handler and the signal return trampoline,
     * which may have no unwind entry of its own (the unwinder knows its
     * code instead). */
    if (ip && !start && w->frames != 1 && !seen.garbage++)
        seen.garbage_ip = ip;
    if (start == CODE_ADDRESS(main))
        w->passed_main = 1;
    if (start)
        w->last_start = start;
    if (w->frames == 2)
        w->interrupted = ip;
    return ++w->frames < MAX_FRAMES ? _URC_NO_REASON : _URC_END_OF_STACK;
}

static int starts_at(uintptr_t start, void (*fn)(void))
{
    return fn && start == CODE_ADDRESS(fn);
}
#define STARTS_AT(start, fn) starts_at(start, (void (*)(void))(uintptr_t)(fn))

/* Whether a walk that did not pass main ended where a coroutine's chain
 * may end: its first frame (the stubs, or their callee under EHABI). */
static int ended_at_a_first_frame(uintptr_t start)
{
    return STARTS_AT(start, ucoro__start_stub) || STARTS_AT(start, ucoro__no_resumer) ||
           STARTS_AT(start, ucoro__enter_stack) || STARTS_AT(start, ucoro__cc_entry);
}

/* Whether pc lies in the switch functions or the start stub: emitted in
 * this order by one asm statement (csrc/arch/), so between ucoro__switch
 * and ucoro__no_resumer. (Arm EHABI's region starts cut the switch into
 * pieces: a function's start does not tell.) */
static int in_the_assembly(uintptr_t pc)
{
#ifdef UCORO_SWITCH_ASM
    return pc >= CODE_ADDRESS(ucoro__switch) && pc < CODE_ADDRESS(ucoro__no_resumer);
#else
    (void)pc;
    return 0;
#endif
}

/* Only what is async-signal-safe in practice: the unwinders (backtrace()
 * was called once before, so its lazy loading of libgcc is done) and
 * writes to seen. */
static volatile sig_atomic_t probing; /* the next signal is the probe's */
static volatile sig_atomic_t probe_reached_main;

static void on_sigprof(int sig)
{
    int saved = errno;
    struct walk w;
    _Unwind_Reason_Code result;

    (void)sig;
    if (probing) {
        memset(&w, 0, sizeof w);
        _Unwind_Backtrace(note_frame, &w);
        probe_reached_main = w.passed_main;
        probing = 0;
        return;
    }
    seen.walks++;
    if (seen.walks % 2) {
        void *frames[MAX_FRAMES];
        int n = backtrace(frames, MAX_FRAMES);

        seen.glibc_walks++;
        if (n >= MAX_FRAMES)
            seen.too_deep++;
        errno = saved;
        return;
    }
    memset(&w, 0, sizeof w);
    result = _Unwind_Backtrace(note_frame, &w);
    if (w.frames >= MAX_FRAMES && !seen.too_deep++)
        seen.too_deep_at = w.interrupted;
    else if (!WALK_ENDED(result))
        seen.not_ended++;
    if (w.frames > seen.deepest)
        seen.deepest = w.frames;
    if (!in_the_assembly(w.interrupted)) {
        errno = saved;
        return;
    }
    /* Interrupted in the assembly (known where this program links the
     * library's sources): the walk must go on through the frames of
     * whichever context the CFI describes, to main or to a coroutine's
     * first frame. (Elsewhere, C library code without unwind information,
     * such as i386's pc thunks, may end a walk early, cleanly.) */
    seen.in_switch++;
    if (!w.passed_main && !ended_at_a_first_frame(w.last_start) && !seen.lost++) {
        seen.lost_at = w.interrupted;
        seen.lost_end = w.last_start;
    }
    errno = saved;
}

/* ---- the storm ---- */

/* The sender: a child process, so that this one stays single-threaded
 * and every signal lands in the main thread (qemu-i386 mixes up threads'
 * TLS when one signals another with tgkill). It stops when its parent
 * is gone. */
static pid_t start_sender(void)
{
    pid_t parent = getpid();
    pid_t child = fork();

    if (child == 0) {
        while (getppid() == parent && kill(parent, SIGPROF) == 0)
            ;
        _exit(0);
    }
    return child;
}

static volatile uintptr_t sink;

static void *inner_body(void *arg)
{
    int i;

    for (i = 0; i < ROUNDS; i++)
        arg = coroutine_yield((char *)arg + 1);
    return arg;
}

/* Starts a nested coroutine, resumes it until it exits (its stack is
 * freed on this one's), yielding to main after each resumption. */
static void *outer_body(void *arg)
{
    struct coroutine inner;
    int i;

    memset(&inner, 0, sizeof inner);
    inner.stack_size = STACK_SIZE;
    inner.entry = inner_body;
    if (coroutine_init(&inner) != 0)
        return NULL;
    for (i = 0; !inner.exited; i++) {
        arg = coroutine_yieldto(&inner, arg);
        arg = coroutine_yield(arg);
    }
    coroutine_release(&inner);
    return (char *)arg + i;
}

static double storm_seconds(void)
{
    const char *s = getenv("UCORO_STORM_SECONDS");
    double v = s ? atof(s) : 1.0;

    return v > 0 ? v : 1.0;
}

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void a_signal_handler_unwinds_cleanly_at_any_instruction_of_a_switch(void)
{
    struct sigaction sa;
    pid_t sender;
    int status;
    void *warm[4];
    double end = now() + storm_seconds();
    unsigned long round_trips = 0;

    backtrace(warm, 4); /* loads libgcc now, outside the handler */
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigprof;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    CHECK(sigaction(SIGPROF, &sa, NULL) == 0);
    /* Whether this unwinder can leave a signal handler at all: libgcc
     * recognises the kernel's signal frame by its code, and qemu-user's
     * ppc64le frame is not the one it knows. */
    probing = 1;
    raise(SIGPROF);
    if (!probe_reached_main) {
        printf("skipped: a walk from this signal handler does not reach main here (the "
               "unwinder cannot leave the signal frame)\n");
        signal(SIGPROF, SIG_IGN);
        return;
    }
    sender = start_sender();
    CHECK(sender > 0);

    do {
        struct coroutine outer;
        int i;

        for (i = 0; i < 16; i++, round_trips++) {
            void *arg = NULL;

            memset(&outer, 0, sizeof outer);
            outer.stack_size = STACK_SIZE;
            outer.entry = outer_body;
            if (coroutine_init(&outer) != 0) {
                CHECK(!"coroutine_init");
                break;
            }
            while (!outer.exited)
                arg = coroutine_yieldto(&outer, arg);
            sink = (uintptr_t)arg;
            coroutine_release(&outer);
        }
    } while (now() < end);

    signal(SIGPROF, SIG_IGN);
    if (sender > 0) {
        kill(sender, SIGKILL);
        CHECK(waitpid(sender, &status, 0) == sender);
    }

    printf("%lu round trips, %lu unwinds (%lu with backtrace()), %lu in a switch or stub, "
           "deepest %d frames\n",
           round_trips, seen.walks, seen.glibc_walks, seen.in_switch, seen.deepest);
    if (seen.garbage)
        printf("first frame without an unwind entry: %#lx\n", (unsigned long)seen.garbage_ip);
    if (seen.too_deep)
        printf("first walk that did not end: interrupted at %#lx\n",
               (unsigned long)seen.too_deep_at);
    if (seen.lost)
        printf("first walk from the assembly neither through main nor to a first frame: "
               "interrupted at %#lx, ended in the function at %#lx\n",
               (unsigned long)seen.lost_at, (unsigned long)seen.lost_end);
    CHECK(seen.walks > 0);
    CHECK(seen.too_deep == 0);
    CHECK(seen.not_ended == 0);
    CHECK(seen.garbage == 0);
    CHECK(seen.lost == 0);
}
#endif /* __GLIBC__ */

int main(void)
{
#ifdef __GLIBC__
    /* Only the library's own switches are checked: in the portable modes
     * the switch is glibc's _longjmp or swapcontext, whose unwind
     * information is glibc's business and wrong right after they load the
     * new stack pointer (x86_64 swapcontext.S: libgcc reads garbage and
     * faults; 32-bit Arm's __longjmp: walks that never end or fault, seen
     * under qemu-user; aarch64's setcontext sends libgcc round in
     * circles). Any program that switches with them has that, the
     * originals included. */
    if (!strstr(ucoro_switch_mode(), "assembly")) {
        printf("skipped: this mode switches with glibc's %s, whose unwind information an "
               "unwinder cannot follow at every instruction\n", ucoro_switch_mode());
        CHECK(1);
        return check_report();
    }
    RUN(a_signal_handler_unwinds_cleanly_at_any_instruction_of_a_switch);
#else
    printf("skipped: no unwinder for this C library\n");
    CHECK(1);
#endif
    return check_report();
}
