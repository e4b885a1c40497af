/*
 * s390x (z/Architecture ELF ABI) switch: the fast default on s390x.
 *
 * A switched-out context is a stack pointer S. What must survive is stored
 * by ucoro__switch in two places the ABI provides: r6-r15 in the 160-byte
 * register save area that every caller allocates at the bottom of its
 * frame for its callee (slots at 48..127), and f8-f15 in a 64-byte frame
 * of the switch's own just below it:
 *
 *     S + 0:   f8 ... f15          (the switch's frame)
 *     S + 64:  the caller's sp: its register save area, of which
 *     S + 112: r6 ... r13, r14 (the return address), r15 (S + 64)
 *
 * Those are exactly the registers the ABI makes callee-saved (its
 * "Register usage" table: r6-r13, r15 the stack pointer, f8-f15; r14 is
 * the return address). The access registers a0/a1 hold the thread pointer
 * and are never touched, so a coroutine resumed on another thread sees
 * that thread's; the floating-point control register is left per thread,
 * as on x86_64.
 *
 * Resuming ends in `br %r1` to the saved return address rather than
 * `br %r14`, for the reason given in arch/x86_64.h (a return that no call
 * matched). Like the x86_64 switch it is tail-called by the coroutine
 * layer.
 *
 * CFI and the stubs as in arch/x86_64.h (the CFA is r15 + 160 at a
 * function's entry, as the ABI's frame puts it). Included through
 * cc_switch.h; continuation.c defines UCORO_ARCH_IMPLEMENTATION to emit
 * the assembly once.
 *
 * SPDX-License-Identifier: MIT OR Apache-2.0
 */
#ifndef UCORO_ARCH_S390X_H
#define UCORO_ARCH_S390X_H

#include <stddef.h>
#include <stdint.h>

#include "../ucoro_internal.h"

#ifdef UCORO_SWITCH_ASM_WANTED
#define UCORO_SWITCH_ASM 1
#define UCORO_SWITCH_NAME "s390x assembly"
#endif
#include "interface.h"

#ifdef UCORO_SWITCH_ASM
#define UCORO_S390X_SAVE_AREA 160 /* what a caller leaves its callee */
#define UCORO_S390X_FPRS 64       /* f8-f15, below it */

/* A saved context's CFA: its sp + 224 (the switch's frame and the
 * caller's 160 bytes). */
#define UCORO_S390X_FRAME 224

/*
 * Makes the top of [stack, stack + size) a saved context whose resumption
 * runs ucoro__start_stub with r6 = start_arg and r15 = top - 384: a frame
 * whose save area is the stub's callee's, and above it the fake context
 * of arch/interface.h (r14 ucoro__no_resumer, r11 0; its other slots are
 * only ever read as the registers of that outermost frame).
 */
static inline void *ucoro_arch_prepare(char *stack, size_t size, void *start_arg,
                                       void ***fp_link)
{
    *fp_link = NULL; /* no frame-pointer link here (arch/interface.h) */
    uintptr_t top = ((uintptr_t)stack + size) & ~(uintptr_t)15;
    void **frame = (void **)(top - UCORO_S390X_SAVE_AREA - UCORO_S390X_FRAME);
    void **sp = (void **)((uintptr_t)frame - UCORO_S390X_FPRS);
    void **fake = (void **)((uintptr_t)frame + UCORO_S390X_SAVE_AREA);
    int i;

    for (i = 0; i < (UCORO_S390X_FPRS + UCORO_S390X_SAVE_AREA) / 8; i++)
        sp[i] = NULL;                     /* f8-f15, back chain: outermost */
    frame[6] = start_arg;                 /* r6 (slot 48): the continuation */
    /* r14 (slot 112): where to go, past the stub's nop (see arch/x86_64.h) */
    frame[14] = (void *)((uintptr_t)ucoro__start_stub + 2);
    frame[15] = frame;                    /* r15 (slot 120): the stub's sp */
    fake[19] = NULL;                      /* r11, the frame pointer */
    fake[22] = (void *)(uintptr_t)ucoro__no_resumer; /* r14: its return address */
    return sp;
}
#endif /* UCORO_SWITCH_ASM */

#ifdef UCORO_ARCH_IMPLEMENTATION
/* clang-format off */
#ifndef UCORO_SWITCH_ASM
__asm__(
    ".text\n"
    ".p2align 3\n"
    ".globl " UCORO_ASM_SYMBOL(ucoro__enter_stack) "\n"
    ".hidden " UCORO_ASM_SYMBOL(ucoro__enter_stack) "\n"
    ".type " UCORO_ASM_SYMBOL(ucoro__enter_stack) ",@function\n"
UCORO_ASM_SYMBOL(ucoro__enter_stack) ":\n"            /* r2 = cc, r3 = top */
    ".cfi_startproc\n"
    ".cfi_undefined %r14\n"        /* the outermost frame: unwinders stop */
    "lay %r15, -160(%r3)\n"        /* the callee's register save area */
    "lghi %r0, 0\n"
    "stg %r0, 0(%r15)\n"           /* back chain: none */
    "brasl %r14, " UCORO_ASM_SYMBOL(ucoro__cc_entry) "\n" /* never returns */
    ".word 0\n"                    /* an invalid opcode */
    ".cfi_endproc\n"
    ".size " UCORO_ASM_SYMBOL(ucoro__enter_stack) ", .-" UCORO_ASM_SYMBOL(ucoro__enter_stack) "\n");
#else
/* Where a saved context keeps each register, relative to the CFA (the
 * caller's sp + 160, so S + 224 = UCORO_S390X_FRAME): r6-r15 in the
 * caller's save area, then f8-f15 in the switch's own frame. */
#define UCORO_S390X_CFI_GPRS                                                   \
    ".cfi_offset %r6, -112\n" ".cfi_offset %r7, -104\n"                       \
    ".cfi_offset %r8, -96\n" ".cfi_offset %r9, -88\n"                         \
    ".cfi_offset %r10, -80\n" ".cfi_offset %r11, -72\n"                       \
    ".cfi_offset %r12, -64\n" ".cfi_offset %r13, -56\n"                       \
    ".cfi_offset %r14, -48\n" ".cfi_offset %r15, -40\n"
#define UCORO_S390X_CFI_FPRS                                                   \
    ".cfi_offset %f8, -224\n" ".cfi_offset %f9, -216\n"                       \
    ".cfi_offset %f10, -208\n" ".cfi_offset %f11, -200\n"                     \
    ".cfi_offset %f12, -192\n" ".cfi_offset %f13, -184\n"                     \
    ".cfi_offset %f14, -176\n" ".cfi_offset %f15, -168\n"
/* Loads the context saved at S (in register base): f8-f15, the return
 * address into r1, then r6-r15 (r15 last of all, from its slot). */
#define UCORO_S390X_RESTORE(base)                                              \
    "ld %f8, 0(" base ")\n"   "ld %f9, 8(" base ")\n"                         \
    "ld %f10, 16(" base ")\n" "ld %f11, 24(" base ")\n"                       \
    "ld %f12, 32(" base ")\n" "ld %f13, 40(" base ")\n"                       \
    "ld %f14, 48(" base ")\n" "ld %f15, 56(" base ")\n"                       \
    "lg %r1, 176(" base ")\n"                                                 \
    "lmg %r6, %r15, 112(" base ")\n"                                          \
    ".cfi_def_cfa_offset 160\n"                                               \
    ".cfi_restore %r6\n" ".cfi_restore %r7\n" ".cfi_restore %r8\n"            \
    ".cfi_restore %r9\n" ".cfi_restore %r10\n" ".cfi_restore %r11\n"          \
    ".cfi_restore %r12\n" ".cfi_restore %r13\n" ".cfi_restore %r14\n"         \
    ".cfi_restore %r15\n"                                                     \
    ".cfi_restore %f8\n" ".cfi_restore %f9\n" ".cfi_restore %f10\n"           \
    ".cfi_restore %f11\n" ".cfi_restore %f12\n" ".cfi_restore %f13\n"         \
    ".cfi_restore %f14\n" ".cfi_restore %f15\n"
/* The switch, emitted under two names (see arch/x86_64.h). Until the
 * final lmg the CFI describes the context being saved; after it, the
 * resumed one, whose r15 that lmg loads. */
#define UCORO_S390X_SWITCH(name)                                               \
    ".p2align 3\n"                                                            \
    ".globl " name "\n"                                                       \
    ".hidden " name "\n"                                                      \
    ".type " name ",@function\n"                                              \
    name ":\n" /* r2 = save, r3 = to, r4 = value */                           \
    ".cfi_startproc\n"                                                        \
    "stmg %r6, %r15, 48(%r15)\n"  /* into the caller's save area */           \
    UCORO_S390X_CFI_GPRS                                                      \
    "aghi %r15, -64\n"                                                        \
    ".cfi_def_cfa_offset 224\n"                                               \
    "std %f8, 0(%r15)\n"   "std %f9, 8(%r15)\n"                               \
    "std %f10, 16(%r15)\n" "std %f11, 24(%r15)\n"                             \
    "std %f12, 32(%r15)\n" "std %f13, 40(%r15)\n"                             \
    "std %f14, 48(%r15)\n" "std %f15, 56(%r15)\n"                             \
    UCORO_S390X_CFI_FPRS                                                      \
    "stg %r15, 0(%r2)\n"       /* our context is complete */                  \
    UCORO_S390X_RESTORE("%r3") /* now on the other stack */                   \
    "lgr %r2, %r4\n"           /* what the resumed call returns */            \
    "br %r1\n"                                                                \
    ".cfi_endproc\n"                                                          \
    ".size " name ", .-" name "\n"
__asm__(
    ".text\n"
    UCORO_S390X_SWITCH(UCORO_ASM_SYMBOL(ucoro__switch))
    UCORO_S390X_SWITCH(UCORO_ASM_SYMBOL(ucoro__switch_back))

    ".p2align 3\n"
    ".globl " UCORO_ASM_SYMBOL(ucoro__switch_exit) "\n"
    ".hidden " UCORO_ASM_SYMBOL(ucoro__switch_exit) "\n"
    ".type " UCORO_ASM_SYMBOL(ucoro__switch_exit) ",@function\n"
UCORO_ASM_SYMBOL(ucoro__switch_exit) ":\n"            /* r2 = to, r3 = hook, r4 = arg */
    ".cfi_startproc\n"
    "lgr %r15, %r2\n"              /* the old stack is abandoned */
    ".cfi_def_cfa_offset 224\n"
    UCORO_S390X_CFI_GPRS
    UCORO_S390X_CFI_FPRS
    "aghi %r15, -160\n"            /* the hook's register save area */
    ".cfi_adjust_cfa_offset 160\n"
    "lgr %r2, %r4\n"
    "basr %r14, %r3\n"             /* hook(arg), below to's saved registers */
    "aghi %r15, 160\n"
    ".cfi_adjust_cfa_offset -160\n"
    UCORO_S390X_RESTORE("%r15")    /* r2: hook's result */
    "br %r1\n"
    ".cfi_endproc\n"
    ".size " UCORO_ASM_SYMBOL(ucoro__switch_exit) ", .-" UCORO_ASM_SYMBOL(ucoro__switch_exit) "\n"

    ".p2align 3\n"
    ".globl " UCORO_ASM_SYMBOL(ucoro__start_stub) "\n"
    ".hidden " UCORO_ASM_SYMBOL(ucoro__start_stub) "\n"
    ".type " UCORO_ASM_SYMBOL(ucoro__start_stub) ",@function\n"
UCORO_ASM_SYMBOL(ucoro__start_stub) ":\n"
    ".cfi_startproc\n"
    ".cfi_signal_frame\n"          /* see arch/interface.h */
    UCORO_STUB_PERSONALITY
    /* The frame above: the resumer's, or the fake context at r15 + 160. */
    UCORO_STUB_LINKED_CFA(6 /* r6 */, 15 /* r15 */, 160, UCORO_S390X_FRAME)
    UCORO_S390X_CFI_GPRS
    UCORO_S390X_CFI_FPRS
    /* Never runs: a fresh context "returns" past it (see arch/x86_64.h). */
    "nopr\n"
    "lgr %r2, %r6\n"
    "brasl %r14, " UCORO_ASM_SYMBOL(ucoro__cc_entry) "\n" /* never returns */
    ".word 0\n"                    /* an invalid opcode */
    ".cfi_endproc\n"
    ".size " UCORO_ASM_SYMBOL(ucoro__start_stub) ", .-" UCORO_ASM_SYMBOL(ucoro__start_stub) "\n"

    UCORO_NO_RESUMER_ASM(".p2align 3", "@function", "%r14", ".word 0"));
#undef UCORO_S390X_SWITCH
#undef UCORO_S390X_RESTORE
#undef UCORO_S390X_CFI_GPRS
#undef UCORO_S390X_CFI_FPRS
#endif /* UCORO_SWITCH_ASM: the switch, or else the entry stub */
/* clang-format on */
#endif /* UCORO_ARCH_IMPLEMENTATION */

#endif /* UCORO_ARCH_S390X_H */
