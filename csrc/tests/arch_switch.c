/*
 * The per-architecture switch (csrc/arch/), checked where a port can go
 * wrong: every register class the ABI makes callee-saved survives a switch,
 * a new stack and the exit hook's frame are aligned as the ABI requires, a
 * backtrace taken in a nested coroutine goes on through its resumers to
 * main with an assembly switch (whoever resumed it last, on whatever
 * thread) and ends cleanly at the coroutine's first frame in the portable
 * modes, and the default build names an assembly switch on every
 * architecture that has one.
 *
 * Built together with csrc (it looks up the library's hidden stubs by
 * name), natively by .ci/c-tools.sh and for every target under qemu-user
 * by .ci/cross.sh, with -funwind-tables: compilers for arm, riscv64 and
 * mips64el emit no unwind tables for C by default, and a backtrace needs
 * them for every C frame on the way. Programs using it must link libgcc's
 * unwinder (the default, with static glibc too).
 *
 * SPDX-License-Identifier: MIT OR Apache-2.0
 */
#define _GNU_SOURCE

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "coroutine.h"

#include "check.h"

/* musl-gcc links the host compiler's libgcc_eh, whose unwinder is built
 * against glibc: there the backtrace test is left out. */
#ifdef __GLIBC__
#define HAVE_UNWINDER 1
#include <execinfo.h>
#include <pthread.h>
#include <unwind.h>
#endif

#define STACK_SIZE ((size_t)64 << 10)
#define ROUNDS 3

/* ---- callee-saved registers ---- */

/*
 * Each side of a switch holds many integers, doubles and vectors live
 * across its coroutine_yield/yieldto calls. They come from volatile reads,
 * so the compiler can neither recompute nor reload them: it keeps them in
 * the callee-saved registers of every class the ABI has (then spills the
 * rest). The other side fills the same registers with different values, so
 * a register the switch fails to save shows up as a changed value.
 */
typedef int vec4 __attribute__((vector_size(16)));

#define INT_VALUES 20 /* ppc64 has 18 callee-saved of each */
#define FLOAT_VALUES 20
#define VECTOR_VALUES 12

static volatile long int_seed[2][INT_VALUES];
static volatile double float_seed[2][FLOAT_VALUES];
static volatile int vector_seed[2][VECTOR_VALUES][4];

static struct coroutine holder;
static void *holder_result;

static void plant_seeds(void)
{
    int side, k, lane;

    for (side = 0; side < 2; side++) {
        for (k = 0; k < INT_VALUES; k++)
            int_seed[side][k] = (side + 1) * 1000003L + k * 7919L;
        for (k = 0; k < FLOAT_VALUES; k++)
            float_seed[side][k] = (side + 1) * 1024.5 + k * 0.25;
        for (k = 0; k < VECTOR_VALUES; k++)
            for (lane = 0; lane < 4; lane++)
                vector_seed[side][k][lane] = (side + 1) * 65537 + k * 31 + lane;
    }
}

/* Macros, not functions: a vector argument or result would change the ABI
 * (and warn) where the target has no vector registers. */
#define VECTOR_OF(side, k)                                                   \
    {vector_seed[side][k][0], vector_seed[side][k][1], vector_seed[side][k][2], \
     vector_seed[side][k][3]}
#define SAME_LANE(v, side, k, lane) ((v)[lane] == vector_seed[side][k][lane])
#define SAME_VECTOR_AS_SEED(v, side, k)                                      \
    (SAME_LANE(v, side, k, 0) & SAME_LANE(v, side, k, 1) & SAME_LANE(v, side, k, 2) & \
     SAME_LANE(v, side, k, 3))

/* One switch from this side: main resumes the holder, the holder yields. */
static void switch_side(int side)
{
    if (side == 0)
        holder_result = coroutine_yieldto(&holder, NULL);
    else
        coroutine_yield(NULL);
}

/* Side 0 (main) switches ROUNDS + 1 times, the last one ending the holder
 * (its exit path); side 1 (the holder) ROUNDS times. 1 if every value held. */
__attribute__((noinline)) static int hold_values_across_switches(int side, int switches)
{
#define TWELVE(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)
#define TWENTY(X) TWELVE(X) X(12) X(13) X(14) X(15) X(16) X(17) X(18) X(19)
#define INTS(X) TWENTY(X)
#define FLOATS(X) TWENTY(X)
#define VECTORS(X) TWELVE(X)
#define LOAD_INT(k) long i##k = int_seed[side][k];
#define LOAD_FLOAT(k) double f##k = float_seed[side][k];
#define LOAD_VECTOR(k) vec4 v##k = VECTOR_OF(side, k);
#define SAME_INT(k) &(i##k == int_seed[side][k])
#define SAME_FLOAT(k) &(f##k == float_seed[side][k])
#define SAME_VECTOR(k) &SAME_VECTOR_AS_SEED(v##k, side, k)
    INTS(LOAD_INT)
    FLOATS(LOAD_FLOAT)
    VECTORS(LOAD_VECTOR)
    int held = 1;
    int r;

    for (r = 0; r < switches; r++) {
        switch_side(side);
        held = held INTS(SAME_INT) VECTORS(SAME_VECTOR);
#if defined(UCORO_SWITCH_UCONTEXT) && defined(__powerpc64__)
        /* glibc's swapcontext is a system call on ppc64, and qemu-user's
         * emulation of it loses f14-f31 (a program of two bare
         * swapcontext calls shows it): not ucoro's switch to test. */
        (void)(1 FLOATS(SAME_FLOAT));
#else
        held = held FLOATS(SAME_FLOAT);
#endif
    }
    return held;
}

static void *holder_body(void *arg)
{
    (void)arg;
    return (void *)(intptr_t)hold_values_across_switches(1, ROUNDS);
}

static void callee_saved_registers_of_every_class_survive_switches(void)
{
    plant_seeds();
    holder.stack_size = STACK_SIZE;
    holder.entry = holder_body;
    holder.release = NULL;
    CHECK(coroutine_init(&holder) == 0);
    CHECK(hold_values_across_switches(0, ROUNDS + 1) == 1);
    CHECK(holder.exited == 1);
    CHECK(holder_result == (void *)(intptr_t)1);
    coroutine_release(&holder);
}

/* ---- stack alignment ---- */

/* Whether this function's frame is aligned as the ABI promises: the
 * compiler places an object with the strictest fundamental alignment
 * without realigning the stack, trusting the caller's alignment. */
__attribute__((noinline)) static int frame_is_aligned(void)
{
    max_align_t probe;
    volatile uintptr_t at = (uintptr_t)&probe;

    return at % _Alignof(max_align_t) == 0;
}

static int aligned_in_entry;
static int aligned_in_release;

static void *check_alignment_in_entry(void *arg)
{
    aligned_in_entry = frame_is_aligned();
    return arg;
}

/* Runs in the exit hook, on the caller's stack below its saved context. */
static int check_alignment_in_release(struct coroutine *co)
{
    (void)co;
    aligned_in_release = frame_is_aligned();
    return 0;
}

static void new_stacks_and_the_exit_hook_are_aligned_for_the_abi(void)
{
    struct coroutine co;
    int depth;

    /* From frames at several depths, so that no alignment is there by luck. */
    for (depth = 0; depth < 4; depth++) {
        char *pad = __builtin_alloca(depth * 8 + 1);

        pad[0] = 0;
        memset(&co, 0, sizeof co);
        co.stack_size = STACK_SIZE;
        co.entry = check_alignment_in_entry;
        co.release = check_alignment_in_release;
        aligned_in_entry = aligned_in_release = 0;
        CHECK(coroutine_init(&co) == 0);
        CHECK(coroutine_yieldto(&co, pad) == pad);
        CHECK(aligned_in_entry);
        CHECK(aligned_in_release);
    }
}

/* ---- backtraces ---- */
#ifdef HAVE_UNWINDER

/* The library's stacks begin in one of these (hidden, but this program
 * links csrc itself); weak, since each build has only some of them. */
extern void ucoro__start_stub(void) __attribute__((weak));
extern void ucoro__enter_stack(void *cc, void *top) __attribute__((weak));
extern void ucoro__cc_entry(void *cc) __attribute__((weak));

#ifdef __ARM_EABI_UNWINDER__
/* Arm EHABI: a walk ends with _URC_FAILURE at a .cantunwind function (a
 * stub of the portable modes, glibc's _start) and reports no frame for
 * it: the last one reported is the stub's callee. The start stub's own
 * routine ends a walk with _URC_END_OF_STACK where there is no resumer. */
#define WALK_ENDED(result) ((result) == _URC_FAILURE || (result) == _URC_END_OF_STACK)
#define OUTERMOST_REPORTED(stub) ((void)(stub), (uintptr_t)ucoro__cc_entry)
#else
/* DWARF: a walk ends where CFI says the return address is undefined
 * (libgcc then reports one more frame, with ip 0). */
#define WALK_ENDED(result) ((result) == _URC_END_OF_STACK)
#define OUTERMOST_REPORTED(stub) ((uintptr_t)(stub))
#endif

/* Function starts without Arm's Thumb bit. */
#define CODE_ADDRESS(p) ((uintptr_t)(p) & ~(uintptr_t)1)

#define MAX_FRAMES 64

int main(void); /* a walk from a coroutine should reach it, or not */

/* One backtrace, taken twice: frame by frame with libgcc's unwinder (which
 * also says where each frame's function starts) and with glibc's
 * backtrace(), what programs call. */
struct walk {
    _Unwind_Reason_Code result;
    int frames;
    uintptr_t ip[MAX_FRAMES];
    uintptr_t start[MAX_FRAMES]; /* of the function; 0 if no unwind entry */
    int glibc_frames;
    void *glibc[MAX_FRAMES];
};

static struct walk walk;

static _Unwind_Reason_Code note_frame(struct _Unwind_Context *context, void *arg)
{
    struct walk *w = arg;
    uintptr_t ip = _Unwind_GetIP(context);

    w->ip[w->frames] = ip;
    w->start[w->frames] = ip ? CODE_ADDRESS(_Unwind_GetRegionStart(context)) : 0;
    /* Any reason but _URC_NO_REASON stops the walk (too deep: a loop). */
    return ++w->frames < MAX_FRAMES ? _URC_NO_REASON : _URC_END_OF_STACK;
}

__attribute__((noinline)) static void take_backtrace(void)
{
    memset(&walk, 0, sizeof walk);
    walk.result = _Unwind_Backtrace(note_frame, &walk);
    walk.glibc_frames = backtrace(walk.glibc, MAX_FRAMES);
}

/* Whether the walk passed through function fn. */
static int walk_passed(void (*fn)(void))
{
    int i;

    for (i = 0; i < walk.frames; i++)
        if (walk.start[i] == CODE_ADDRESS(fn))
            return 1;
    return 0;
}
#define PASSED(fn) walk_passed((void (*)(void))(uintptr_t)(fn))

/* A walk that ended where it should, with no frame the unwinder had no
 * unwind entry for (garbage read as a return address has none), and the
 * same frames, in the same order, from backtrace() (which leaves out the
 * very first, its own caller's position, and the final ip 0; under
 * AddressSanitizer its interceptor adds a frame of its own). */
static void check_walk_is_clean(void)
{
    int i, at = 0;

    CHECK(WALK_ENDED(walk.result));
    CHECK(walk.frames >= 3 && walk.frames < MAX_FRAMES);
    for (i = 0; i < walk.frames; i++)
        CHECK(!walk.ip[i] || walk.start[i] != 0);
    for (i = 1; i < walk.frames; i++) {
        if (!walk.ip[i])
            continue;
        while (at < walk.glibc_frames && (uintptr_t)walk.glibc[at] != walk.ip[i])
            at++;
        CHECK(at < walk.glibc_frames); /* backtrace() found this frame too */
    }
}

/* Which switch this build uses: the assembly ones link backtraces. */
static int linked_backtraces(void)
{
    return strstr(ucoro_switch_mode(), " assembly") != NULL;
}

/* ---- in the portable modes, a walk ends at the stack's entry stub ---- */

static void *backtrace_twice(void *arg)
{
    take_backtrace();
    coroutine_yield(NULL);
    take_backtrace(); /* again after a resumption */
    return arg;
}

static void check_walk_ends_at_a_stub(void)
{
    uintptr_t outermost = 0;
    int i;

    check_walk_is_clean();
    for (i = 0; i < walk.frames; i++)
        if (walk.ip[i])
            outermost = walk.start[i];
    /* Where the library has a stub, the walk ends in it, not in whatever
     * lies above a stack's first frame. */
    if (ucoro__start_stub || ucoro__enter_stack)
        CHECK((ucoro__start_stub &&
               outermost == CODE_ADDRESS(OUTERMOST_REPORTED(ucoro__start_stub))) ||
              (ucoro__enter_stack &&
               outermost == CODE_ADDRESS(OUTERMOST_REPORTED(ucoro__enter_stack))));
    CHECK(!PASSED(main));
}

/* Takes the two backtraces in co and checks them. */
static void walk_twice_in(struct coroutine *co)
{
    coroutine_yieldto(co, NULL);
    check_walk_ends_at_a_stub();
    coroutine_yieldto(co, NULL);
    check_walk_ends_at_a_stub();
    CHECK(co->exited == 1);
}

static void in_the_portable_modes_a_backtrace_ends_at_the_coroutines_first_frame(void)
{
    struct coroutine co;
    struct coroutine *made;
    void *extra;

    memset(&co, 0, sizeof co);
    co.stack_size = STACK_SIZE;
    co.entry = backtrace_twice;
    CHECK(coroutine_init(&co) == 0);
    walk_twice_in(&co);
    coroutine_release(&co);

    /* With ucoro_create the words just above the first frame are the
     * struct and the extra bytes, not zeroes: an unwinder that did not
     * stop at the stub would read a return address from them. */
    made = ucoro_create(STACK_SIZE, backtrace_twice, 256, &extra);
    CHECK(made != NULL);
    if (!made)
        return;
    memset(extra, 0xa5, 256);
    walk_twice_in(made);
    CHECK(ucoro_destroy(made) == 0);
}

/* ---- with an assembly switch, a walk goes on into the resumer ---- */

static struct coroutine outer;
static struct coroutine *inner; /* made by ucoro_create: see below */
static volatile uintptr_t sink;  /* keeps calls from becoming tail calls */
static struct walk nested_walk, second_caller_walk, other_thread_walk;

static void *inner_body(void *arg)
{
    take_backtrace();
    nested_walk = walk;
    coroutine_yield(NULL);
    take_backtrace();
    second_caller_walk = walk;
    coroutine_yield(NULL);
    take_backtrace();
    other_thread_walk = walk;
    return arg;
}

static void *outer_body(void *arg)
{
    sink = (uintptr_t)coroutine_yieldto(inner, arg);
    return arg;
}

__attribute__((noinline)) static void resume_outer_from_main(void)
{
    sink = (uintptr_t)coroutine_yieldto(&outer, NULL);
}

__attribute__((noinline)) static void resume_inner_from_main(void)
{
    sink = (uintptr_t)coroutine_yieldto(inner, NULL);
}

static void *resume_inner_on_a_thread(void *unused)
{
    (void)unused;
    sink = (uintptr_t)coroutine_yieldto(inner, NULL);
    return NULL;
}

static void a_backtrace_in_a_nested_coroutine_goes_on_through_its_resumers_to_main(void)
{
    void *extra;
    pthread_t thread;

    /* inner's struct and extra bytes sit just above its first frame, not
     * zeroes: a walk that misread the stub's frame would find them. */
    inner = ucoro_create(STACK_SIZE, inner_body, 256, &extra);
    CHECK(inner != NULL);
    if (!inner)
        return;
    memset(extra, 0xa5, 256);
    memset(&outer, 0, sizeof outer);
    outer.stack_size = STACK_SIZE;
    outer.entry = outer_body;
    CHECK(coroutine_init(&outer) == 0);

    /* main -> resume_outer_from_main -> outer -> inner */
    resume_outer_from_main();
    walk = nested_walk;
    check_walk_is_clean();
    CHECK(PASSED(inner_body));
    CHECK(PASSED(outer_body));
    CHECK(PASSED(resume_outer_from_main));
    CHECK(PASSED(main));

    /* inner is resumed by another caller: main directly, not outer. */
    resume_inner_from_main();
    walk = second_caller_walk;
    check_walk_is_clean();
    CHECK(PASSED(inner_body));
    CHECK(!PASSED(outer_body));
    CHECK(PASSED(resume_inner_from_main));
    CHECK(PASSED(main));

    /* ... and on another thread, which never saw it before. How a walk
     * ends above a thread's start is the libc's business (under qemu-user
     * not always cleanly): only the frames up to there are checked. */
    CHECK(pthread_create(&thread, NULL, resume_inner_on_a_thread, NULL) == 0);
    CHECK(pthread_join(thread, NULL) == 0);
    walk = other_thread_walk;
    CHECK(walk.frames >= 6 && walk.frames < MAX_FRAMES);
    CHECK(PASSED(inner_body));
    CHECK(PASSED(resume_inner_on_a_thread));
    CHECK(!PASSED(main) && !PASSED(resume_inner_from_main));

    CHECK(inner->exited == 1);
    CHECK(ucoro_destroy(inner) == 0);
    CHECK(outer.exited == 1); /* since inner's first yield */
    coroutine_release(&outer);
}

/* ---- contexts that swap back and forth (cc_swap) ---- */

static struct continuation swap_main, swap_a, swap_b, swap_c;
static struct walk swapped_walk;

static void swap_c_entry(struct continuation *cc)
{
    take_backtrace();
    swapped_walk = walk;
    cc_swap(cc, &swap_a);
}

static void swap_b_entry(struct continuation *cc)
{
    cc_swap(cc, &swap_a); /* back to a, which switched in */
}

static void swap_a_entry(struct continuation *cc)
{
    cc_swap(cc, &swap_b);
    cc_swap(cc, &swap_c); /* b is switched out, waiting for nothing */
    cc_swap(cc, &swap_main);
}

static void a_backtrace_after_contexts_swapped_back_and_forth_ends(void)
{
    swap_a.entry = swap_a_entry;
    swap_b.entry = swap_b_entry;
    swap_c.entry = swap_c_entry;
    swap_a.stack_size = swap_b.stack_size = swap_c.stack_size = STACK_SIZE;
    CHECK(cc_init(&swap_a) == 0 && cc_init(&swap_b) == 0 && cc_init(&swap_c) == 0);
    /* main -> a -> b -> back to a -> c: c's walk goes through a (which
     * resumed it) and ends at b, which swapped back to a, rather than
     * going round between a and b. */
    cc_swap(&swap_main, &swap_a);
    walk = swapped_walk;
    check_walk_is_clean();
    CHECK(PASSED(swap_c_entry));
    CHECK(PASSED(swap_a_entry));
    CHECK(!PASSED(main));
    cc_release(&swap_a);
    cc_release(&swap_b);
    cc_release(&swap_c);
}

#endif /* HAVE_UNWINDER */

/* ---- which switch ---- */

static void the_default_build_names_an_assembly_switch_where_there_is_one(void)
{
    const char *mode = ucoro_switch_mode();

    printf("switch: %s\n", mode);
#if defined(UCORO_SWITCH_UCONTEXT)
    CHECK(strcmp(mode, "swapcontext (strict)") == 0);
#elif defined(UCORO_SWITCH_SETJMP)
    CHECK(strcmp(mode, "_setjmp/_longjmp") == 0);
#elif defined(__x86_64__) || defined(__aarch64__) || defined(__i386__) ||                 \
    (defined(__arm__) && defined(__ARM_PCS_VFP)) ||                                       \
    (defined(__powerpc64__) && defined(_CALL_ELF) && _CALL_ELF == 2) || defined(__s390x__) || \
    (defined(__riscv) && __riscv_xlen == 64)
    CHECK(strstr(mode, " assembly") != NULL);
#else
    CHECK(strcmp(mode, "_setjmp/_longjmp") == 0);
#endif
}

int main(void)
{
    RUN(the_default_build_names_an_assembly_switch_where_there_is_one);
    RUN(callee_saved_registers_of_every_class_survive_switches);
    RUN(new_stacks_and_the_exit_hook_are_aligned_for_the_abi);
#ifdef HAVE_UNWINDER
    if (linked_backtraces()) {
        RUN(a_backtrace_in_a_nested_coroutine_goes_on_through_its_resumers_to_main);
        RUN(a_backtrace_after_contexts_swapped_back_and_forth_ends);
    } else
        RUN(in_the_portable_modes_a_backtrace_ends_at_the_coroutines_first_frame);
#else
    printf("skipped the backtrace tests: no unwinder\n");
#endif
    return check_report();
}
