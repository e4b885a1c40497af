/*
 * RISC-V 64 (lp64d) switch: the fast default on riscv64.
 *
 * A switched-out context is a stack pointer; what must survive sits on its
 * own stack, stored by ucoro__switch (208 bytes, 16-byte aligned):
 *
 *     saved sp -> [ ra ][ s0 ][ s1 ] ... [ s11 ][ fs0 ] ... [ fs11 ][ pad ]
 *
 * Those are exactly the registers the RISC-V psABI makes callee-saved
 * ("Integer Register Convention": sp, s0-s11; "Floating-point Register
 * Convention": fs0-fs11, all 64 bits of them under lp64d). gp and tp are
 * never saved: gp is constant and tp is the thread's, which a coroutine
 * resumed on another thread must see. The fcsr (rounding mode, flags) is
 * left per thread, as on x86_64.
 *
 * Resuming ends in `jr t1` to the saved return address, not `ret`: a jump
 * through ra (or t0, the alternate link register) is taken as a return and
 * predicted from the return-address stack, which a switch never matches;
 * through t1 it is a plain indirect jump. Like the x86_64 switch it is
 * tail-called by the coroutine layer (see arch/x86_64.h); ra needs no
 * restoring, as the ABI leaves it clobbered after a call.
 *
 * CFI and the stubs as in arch/x86_64.h. Included through
 * cc_switch.h; continuation.c defines UCORO_ARCH_IMPLEMENTATION to emit
 * the assembly once.
 *
 * SPDX-License-Identifier: MIT OR Apache-2.0
 */
#ifndef UCORO_ARCH_RISCV64_H
#define UCORO_ARCH_RISCV64_H

#include <stddef.h>
#include <stdint.h>

#include "../ucoro_internal.h"

#ifdef UCORO_SWITCH_ASM_WANTED
#define UCORO_SWITCH_ASM 1
#define UCORO_SWITCH_NAME "riscv64 assembly"
#endif
#include "interface.h"

#ifdef UCORO_SWITCH_ASM
#define UCORO_RISCV64_FRAME 208

/*
 * Makes the top of [stack, stack + size) a saved context whose resumption
 * runs ucoro__start_stub with s1 = start_arg, s0 (the frame pointer) 0 and
 * sp = the aligned top less 208, and there the fake context of
 * arch/interface.h (ra ucoro__no_resumer, s0 0; its other slots are only
 * ever read as the registers of that outermost frame).
 */
static inline void *ucoro_arch_prepare(char *stack, size_t size, void *start_arg,
                                       void ***fp_link)
{
    *fp_link = NULL; /* no frame-pointer link here (arch/interface.h) */
    uintptr_t top = ((uintptr_t)stack + size) & ~(uintptr_t)15;
    void **fake = (void **)(top - UCORO_RISCV64_FRAME);
    void **sp = (void **)((uintptr_t)fake - UCORO_RISCV64_FRAME);
    int i;

    for (i = 0; i < UCORO_RISCV64_FRAME / 8; i++)
        sp[i] = NULL;
    sp[0] = (void *)((uintptr_t)ucoro__start_stub + 4); /* ra: past the stub's nop */
    sp[2] = start_arg;                 /* s1: the continuation */
    fake[0] = (void *)(uintptr_t)ucoro__no_resumer; /* ra */
    fake[1] = NULL;                      /* s0 */
    return sp;
}
#endif /* UCORO_SWITCH_ASM */

#ifdef UCORO_ARCH_IMPLEMENTATION
/* clang-format off */
#ifndef UCORO_SWITCH_ASM
__asm__(
    ".text\n"
    ".p2align 2\n"
    ".globl " UCORO_ASM_SYMBOL(ucoro__enter_stack) "\n"
    ".hidden " UCORO_ASM_SYMBOL(ucoro__enter_stack) "\n"
    ".type " UCORO_ASM_SYMBOL(ucoro__enter_stack) ",@function\n"
UCORO_ASM_SYMBOL(ucoro__enter_stack) ":\n"            /* a0 = cc, a1 = top */
    ".cfi_startproc\n"
    ".cfi_undefined ra\n"          /* the outermost frame: unwinders stop */
    "mv sp, a1\n"
    "li s0, 0\n"                   /* and frame-pointer walkers too */
    "call " UCORO_ASM_SYMBOL(ucoro__cc_entry) "\n"       /* never returns */
    "unimp\n"
    ".cfi_endproc\n"
    ".size " UCORO_ASM_SYMBOL(ucoro__enter_stack) ", .-" UCORO_ASM_SYMBOL(ucoro__enter_stack) "\n");
#else
/* Where a saved context keeps each register relative to its CFA (the
 * saved sp + 208). */
#define UCORO_RV_CFI_SLOTS                                                     \
    ".cfi_offset ra, -208\n"                                                  \
    ".cfi_offset s0, -200\n" ".cfi_offset s1, -192\n"                         \
    ".cfi_offset s2, -184\n" ".cfi_offset s3, -176\n"                         \
    ".cfi_offset s4, -168\n" ".cfi_offset s5, -160\n"                         \
    ".cfi_offset s6, -152\n" ".cfi_offset s7, -144\n"                         \
    ".cfi_offset s8, -136\n" ".cfi_offset s9, -128\n"                         \
    ".cfi_offset s10, -120\n" ".cfi_offset s11, -112\n"                       \
    ".cfi_offset fs0, -104\n" ".cfi_offset fs1, -96\n"                        \
    ".cfi_offset fs2, -88\n" ".cfi_offset fs3, -80\n"                         \
    ".cfi_offset fs4, -72\n" ".cfi_offset fs5, -64\n"                         \
    ".cfi_offset fs6, -56\n" ".cfi_offset fs7, -48\n"                         \
    ".cfi_offset fs8, -40\n" ".cfi_offset fs9, -32\n"                         \
    ".cfi_offset fs10, -24\n" ".cfi_offset fs11, -16\n"
/* The same, for the running context: sp is the saved sp. */
#define UCORO_RV_CFI_SAVED                                                     \
    ".cfi_def_cfa_offset 208\n"                                               \
    UCORO_RV_CFI_SLOTS
#define UCORO_RV_SAVE                                                          \
    "addi sp, sp, -208\n"                                                     \
    ".cfi_def_cfa_offset 208\n"                                               \
    "sd ra, 0(sp)\n"                                                          \
    "sd s0, 8(sp)\n"    "sd s1, 16(sp)\n"   "sd s2, 24(sp)\n"                 \
    "sd s3, 32(sp)\n"   "sd s4, 40(sp)\n"   "sd s5, 48(sp)\n"                 \
    "sd s6, 56(sp)\n"   "sd s7, 64(sp)\n"   "sd s8, 72(sp)\n"                 \
    "sd s9, 80(sp)\n"   "sd s10, 88(sp)\n"  "sd s11, 96(sp)\n"                \
    "fsd fs0, 104(sp)\n"  "fsd fs1, 112(sp)\n"  "fsd fs2, 120(sp)\n"          \
    "fsd fs3, 128(sp)\n"  "fsd fs4, 136(sp)\n"  "fsd fs5, 144(sp)\n"          \
    "fsd fs6, 152(sp)\n"  "fsd fs7, 160(sp)\n"  "fsd fs8, 168(sp)\n"          \
    "fsd fs9, 176(sp)\n"  "fsd fs10, 184(sp)\n" "fsd fs11, 192(sp)\n"         \
    UCORO_RV_CFI_SAVED
/* Loads a saved context's registers, its return address into t1. */
#define UCORO_RV_RESTORE                                                       \
    "ld t1, 0(sp)\n"                                                          \
    ".cfi_register ra, t1\n"                                                  \
    "ld s0, 8(sp)\n"    "ld s1, 16(sp)\n"   "ld s2, 24(sp)\n"                 \
    "ld s3, 32(sp)\n"   "ld s4, 40(sp)\n"   "ld s5, 48(sp)\n"                 \
    "ld s6, 56(sp)\n"   "ld s7, 64(sp)\n"   "ld s8, 72(sp)\n"                 \
    "ld s9, 80(sp)\n"   "ld s10, 88(sp)\n"  "ld s11, 96(sp)\n"                \
    "fld fs0, 104(sp)\n"  "fld fs1, 112(sp)\n"  "fld fs2, 120(sp)\n"          \
    "fld fs3, 128(sp)\n"  "fld fs4, 136(sp)\n"  "fld fs5, 144(sp)\n"          \
    "fld fs6, 152(sp)\n"  "fld fs7, 160(sp)\n"  "fld fs8, 168(sp)\n"          \
    "fld fs9, 176(sp)\n"  "fld fs10, 184(sp)\n" "fld fs11, 192(sp)\n"         \
    "addi sp, sp, 208\n"                                                      \
    ".cfi_def_cfa_offset 0\n"                                                 \
    ".cfi_restore s0\n" ".cfi_restore s1\n" ".cfi_restore s2\n"               \
    ".cfi_restore s3\n" ".cfi_restore s4\n" ".cfi_restore s5\n"               \
    ".cfi_restore s6\n" ".cfi_restore s7\n" ".cfi_restore s8\n"               \
    ".cfi_restore s9\n" ".cfi_restore s10\n" ".cfi_restore s11\n"             \
    ".cfi_restore fs0\n" ".cfi_restore fs1\n" ".cfi_restore fs2\n"            \
    ".cfi_restore fs3\n" ".cfi_restore fs4\n" ".cfi_restore fs5\n"            \
    ".cfi_restore fs6\n" ".cfi_restore fs7\n" ".cfi_restore fs8\n"            \
    ".cfi_restore fs9\n" ".cfi_restore fs10\n" ".cfi_restore fs11\n"
/* The switch, emitted under two names (see arch/x86_64.h). */
#define UCORO_RV_SWITCH(name)                                                  \
    ".p2align 2\n"                                                            \
    ".globl " name "\n"                                                       \
    ".hidden " name "\n"                                                      \
    ".type " name ",@function\n"                                              \
    name ":\n" /* a0 = save, a1 = to, a2 = value */                           \
    ".cfi_startproc\n"                                                        \
    UCORO_RV_SAVE                                                             \
    "sd sp, 0(a0)\n"         /* our context is complete */                    \
    "mv sp, a1\n"            /* now on the other stack, same layout */        \
    UCORO_RV_RESTORE                                                          \
    "mv a0, a2\n"            /* what the resumed call returns */              \
    "jr t1\n"                                                                 \
    ".cfi_endproc\n"                                                          \
    ".size " name ", .-" name "\n"
__asm__(
    ".text\n"
    UCORO_RV_SWITCH(UCORO_ASM_SYMBOL(ucoro__switch))
    UCORO_RV_SWITCH(UCORO_ASM_SYMBOL(ucoro__switch_back))

    ".p2align 2\n"
    ".globl " UCORO_ASM_SYMBOL(ucoro__switch_exit) "\n"
    ".hidden " UCORO_ASM_SYMBOL(ucoro__switch_exit) "\n"
    ".type " UCORO_ASM_SYMBOL(ucoro__switch_exit) ",@function\n"
UCORO_ASM_SYMBOL(ucoro__switch_exit) ":\n"            /* a0 = to, a1 = hook, a2 = arg */
    ".cfi_startproc\n"
    "mv sp, a0\n"                  /* the old stack is abandoned */
    UCORO_RV_CFI_SAVED
    "mv a0, a2\n"
    "jalr a1\n"                    /* hook(arg), below to's saved registers */
    UCORO_RV_RESTORE               /* a0: hook's result */
    "jr t1\n"
    ".cfi_endproc\n"
    ".size " UCORO_ASM_SYMBOL(ucoro__switch_exit) ", .-" UCORO_ASM_SYMBOL(ucoro__switch_exit) "\n"

    ".p2align 2\n"
    ".globl " UCORO_ASM_SYMBOL(ucoro__start_stub) "\n"
    ".hidden " UCORO_ASM_SYMBOL(ucoro__start_stub) "\n"
    ".type " UCORO_ASM_SYMBOL(ucoro__start_stub) ",@function\n"
UCORO_ASM_SYMBOL(ucoro__start_stub) ":\n"
    ".cfi_startproc\n"
    ".cfi_signal_frame\n"          /* see arch/interface.h */
    UCORO_STUB_PERSONALITY
    /* The frame above: the resumer's, or the fake context at sp. */
    UCORO_STUB_LINKED_CFA(9 /* s1 */, 2 /* sp */, 0, UCORO_RISCV64_FRAME)
    UCORO_RV_CFI_SLOTS
    /* Never runs: a fresh context "returns" past it (see arch/x86_64.h);
     * 4 bytes, compressed instructions or not. */
    ".option push\n"
    ".option norvc\n"
    "nop\n"
    ".option pop\n"
    "mv a0, s1\n"
    "call " UCORO_ASM_SYMBOL(ucoro__cc_entry) "\n"       /* never returns */
    "unimp\n"
    ".cfi_endproc\n"
    ".size " UCORO_ASM_SYMBOL(ucoro__start_stub) ", .-" UCORO_ASM_SYMBOL(ucoro__start_stub) "\n"

    UCORO_NO_RESUMER_ASM(".p2align 2", "@function", "ra", "unimp"));
#undef UCORO_RV_SWITCH
#undef UCORO_RV_SAVE
#undef UCORO_RV_RESTORE
#undef UCORO_RV_CFI_SAVED
#undef UCORO_RV_CFI_SLOTS
#endif /* UCORO_SWITCH_ASM: the switch, or else the entry stub */
/* clang-format on */
#endif /* UCORO_ARCH_IMPLEMENTATION */

#endif /* UCORO_ARCH_RISCV64_H */
