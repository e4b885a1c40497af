/*
 * AArch64 (AAPCS64) switch: the fast default on this architecture.
 *
 * A switched-out context is a stack pointer; what must survive sits on its
 * own stack, stored by ucoro__switch (160 bytes, 16-byte aligned):
 *
 *     saved sp -> [ d8 d9 ][ d10 d11 ][ d12 d13 ][ d14 d15 ]
 *                 [ x19 x20 ][ x21 x22 ][ x23 x24 ][ x25 x26 ][ x27 x28 ]
 *                 [ x29 (frame pointer) x30 (return address) ]
 *
 * Those are exactly the registers AAPCS64 makes callee-saved (of v8-v15
 * only the low 64 bits are). The floating-point control and status
 * registers (FPCR/FPSR) are left per thread, as on x86_64.
 *
 * Resuming ends in `ret` to the saved x30 rather than `br`: a br to a
 * return address is not a valid target where branch target identification
 * (BTI) is enforced, and ret is. Like the x86_64 switch, it is tail-called
 * by the coroutine layer, so a resumed coroutine_yield/yieldto returns
 * straight into user code.
 *
 * CFI and the stubs as in arch/x86_64.h.
 *
 * Included through cc_switch.h; continuation.c defines
 * UCORO_ARCH_IMPLEMENTATION to emit the assembly once.
 *
 * SPDX-License-Identifier: MIT OR Apache-2.0
 */
#ifndef UCORO_ARCH_AARCH64_H
#define UCORO_ARCH_AARCH64_H

#include <stddef.h>
#include <stdint.h>

#include "../ucoro_internal.h"

#ifdef UCORO_SWITCH_ASM_WANTED
#define UCORO_SWITCH_ASM 1
#define UCORO_SWITCH_NAME "aarch64 assembly"
#define UCORO_ARCH_FP_LINK 1 /* x29 -> {x29, x30} */
#define UCORO_ARCH_CRATE_START 1 /* ucoro__crate_start_stub (arch/interface.h) */
#endif
#include "interface.h"

#ifdef UCORO_SWITCH_ASM
#define UCORO_AARCH64_FRAME 160

/*
 * Makes the top of [stack, stack + size) a saved context whose resumption
 * runs the start stub `stub` (ucoro__start_stub or ucoro__crate_start_stub)
 * with x19 = start_arg and sp = the aligned top less 160, and there the
 * fake context of arch/interface.h (x29 0, x30 ucoro__no_resumer; its
 * other slots are only ever read as the registers of that outermost
 * frame).
 */
static inline void *ucoro_arch_prepare_stub(char *stack, size_t size, void *start_arg,
                                            void ***fp_link, void (*stub)(void))
{
    uintptr_t top = ((uintptr_t)stack + size) & ~(uintptr_t)15;
    void **fake = (void **)(top - UCORO_AARCH64_FRAME);
    void **sp = (void **)((uintptr_t)fake - UCORO_AARCH64_FRAME);
    int i;

    for (i = 0; i < UCORO_AARCH64_FRAME / 8; i++)
        sp[i] = NULL;
    sp[8] = start_arg;                  /* x19: the continuation */
    sp[18] = &fake[18];                 /* x29: the fake frame record */
    sp[19] = (void *)((uintptr_t)stub + 4); /* x30: where ret goes, past the nop */
    fake[18] = NULL;                     /* x29: the link slot (0: no resumer yet) */
    fake[19] = (void *)(uintptr_t)ucoro__no_resumer; /* x30 */
    *fp_link = (void **)&fake[18];
    return sp;
}

static inline void *ucoro_arch_prepare(char *stack, size_t size, void *start_arg,
                                       void ***fp_link)
{
    return ucoro_arch_prepare_stub(stack, size, start_arg, fp_link, ucoro__start_stub);
}
#endif /* UCORO_SWITCH_ASM */

#ifdef UCORO_ARCH_IMPLEMENTATION
/* clang-format off */
#ifndef UCORO_SWITCH_ASM
__asm__(
    ".text\n"
    ".p2align 4\n"
    ".globl " UCORO_ASM_SYMBOL(ucoro__enter_stack) "\n"
    ".hidden " UCORO_ASM_SYMBOL(ucoro__enter_stack) "\n"
    ".type " UCORO_ASM_SYMBOL(ucoro__enter_stack) ",%function\n"
UCORO_ASM_SYMBOL(ucoro__enter_stack) ":\n"            /* x0 = cc, x1 = top */
    ".cfi_startproc\n"
    ".cfi_undefined x30\n"         /* the outermost frame: unwinders stop */
    "mov sp, x1\n"
    "mov x29, #0\n"                /* and frame-pointer walkers too */
    "bl " UCORO_ASM_SYMBOL(ucoro__cc_entry) "\n"         /* never returns */
    "brk #0\n"
    ".cfi_endproc\n"
    ".size " UCORO_ASM_SYMBOL(ucoro__enter_stack) ", .-" UCORO_ASM_SYMBOL(ucoro__enter_stack) "\n");
#else
/* Where a saved context keeps each register relative to its CFA (the
 * saved sp + 160). */
#define UCORO_A64_CFI_SLOTS                 \
    ".cfi_offset d8, -160\n"                \
    ".cfi_offset d9, -152\n"                \
    ".cfi_offset d10, -144\n"               \
    ".cfi_offset d11, -136\n"               \
    ".cfi_offset d12, -128\n"               \
    ".cfi_offset d13, -120\n"               \
    ".cfi_offset d14, -112\n"               \
    ".cfi_offset d15, -104\n"               \
    ".cfi_offset x19, -96\n"                \
    ".cfi_offset x20, -88\n"                \
    ".cfi_offset x21, -80\n"                \
    ".cfi_offset x22, -72\n"                \
    ".cfi_offset x23, -64\n"                \
    ".cfi_offset x24, -56\n"                \
    ".cfi_offset x25, -48\n"                \
    ".cfi_offset x26, -40\n"                \
    ".cfi_offset x27, -32\n"                \
    ".cfi_offset x28, -24\n"                \
    ".cfi_offset x29, -16\n"                \
    ".cfi_offset x30, -8\n"
/* A start stub's CFA: the resumer's context, or the fake one at sp. */
#define UCORO_A64_STUB_CFA UCORO_STUB_LINKED_CFA(19 /* x19 */, 31 /* sp */, 0, UCORO_AARCH64_FRAME)
/* The same, for the running context: sp is the saved sp. */
#define UCORO_A64_CFI_SAVED                 \
    ".cfi_def_cfa_offset 160\n"             \
    UCORO_A64_CFI_SLOTS
#define UCORO_A64_SAVE                      \
    "sub sp, sp, #160\n"                    \
    ".cfi_def_cfa_offset 160\n"             \
    "stp d8, d9, [sp, #0]\n"                \
    "stp d10, d11, [sp, #16]\n"             \
    "stp d12, d13, [sp, #32]\n"             \
    "stp d14, d15, [sp, #48]\n"             \
    "stp x19, x20, [sp, #64]\n"             \
    "stp x21, x22, [sp, #80]\n"             \
    "stp x23, x24, [sp, #96]\n"             \
    "stp x25, x26, [sp, #112]\n"            \
    "stp x27, x28, [sp, #128]\n"            \
    "stp x29, x30, [sp, #144]\n"            \
    UCORO_A64_CFI_SAVED
#define UCORO_A64_RESTORE                   \
    "ldp d8, d9, [sp, #0]\n"                \
    "ldp d10, d11, [sp, #16]\n"             \
    "ldp d12, d13, [sp, #32]\n"             \
    "ldp d14, d15, [sp, #48]\n"             \
    "ldp x19, x20, [sp, #64]\n"             \
    "ldp x21, x22, [sp, #80]\n"             \
    "ldp x23, x24, [sp, #96]\n"             \
    "ldp x25, x26, [sp, #112]\n"            \
    "ldp x27, x28, [sp, #128]\n"            \
    "ldp x29, x30, [sp, #144]\n"            \
    "add sp, sp, #160\n"                    \
    ".cfi_def_cfa_offset 0\n"               \
    ".cfi_restore d8\n" ".cfi_restore d9\n"                  \
    ".cfi_restore d10\n" ".cfi_restore d11\n"                \
    ".cfi_restore d12\n" ".cfi_restore d13\n"                \
    ".cfi_restore d14\n" ".cfi_restore d15\n"                \
    ".cfi_restore x19\n" ".cfi_restore x20\n"                \
    ".cfi_restore x21\n" ".cfi_restore x22\n"                \
    ".cfi_restore x23\n" ".cfi_restore x24\n"                \
    ".cfi_restore x25\n" ".cfi_restore x26\n"                \
    ".cfi_restore x27\n" ".cfi_restore x28\n"                \
    ".cfi_restore x29\n" ".cfi_restore x30\n"
/* The switch, emitted under two names (see arch/x86_64.h); link is what
 * the copy does with its fourth argument (see arch/interface.h). */
#define UCORO_A64_SWITCH(name, link)                                           \
    ".p2align 4\n"                                                            \
    ".globl " name "\n"                                                       \
    ".hidden " name "\n"                                                      \
    ".type " name ",%function\n"                                              \
    name ":\n" /* x0 = save, x1 = to, x2 = value */                           \
    ".cfi_startproc\n"                                                        \
    UCORO_A64_SAVE                                                            \
    "mov x9, sp\n"                                                            \
    "str x9, [x0]\n"         /* our context is complete */                    \
    link                                                                      \
    "mov sp, x1\n"           /* now on the other stack, same layout */        \
    UCORO_A64_RESTORE                                                         \
    "mov x0, x2\n"           /* what the resumed call returns */              \
    "ret\n"                                                                   \
    ".cfi_endproc\n"                                                          \
    ".size " name ", .-" name "\n"
__asm__(
    ".text\n"
    /* x3 = fp_link: our frame record {x29, x30} is at 144. */
    UCORO_A64_SWITCH(UCORO_ASM_SYMBOL(ucoro__switch),
                     "add x9, x9, #144\n" "str x9, [x3]\n")
    UCORO_A64_SWITCH(UCORO_ASM_SYMBOL(ucoro__switch_back), "")

    ".p2align 4\n"
    ".globl " UCORO_ASM_SYMBOL(ucoro__switch_exit) "\n"
    ".hidden " UCORO_ASM_SYMBOL(ucoro__switch_exit) "\n"
    ".type " UCORO_ASM_SYMBOL(ucoro__switch_exit) ",%function\n"
UCORO_ASM_SYMBOL(ucoro__switch_exit) ":\n"            /* x0 = to, x1 = hook, x2 = arg */
    ".cfi_startproc\n"
    "mov sp, x0\n"                 /* the old stack is abandoned */
    UCORO_A64_CFI_SAVED
    "mov x0, x2\n"
    "blr x1\n"                     /* hook(arg), below to's saved registers */
    UCORO_A64_RESTORE              /* x0: hook's result */
    "ret\n"
    ".cfi_endproc\n"
    ".size " UCORO_ASM_SYMBOL(ucoro__switch_exit) ", .-" UCORO_ASM_SYMBOL(ucoro__switch_exit) "\n"

    /* The frame above: the resumer's, or the fake context at sp. */
    UCORO_START_STUB_HEAD(ucoro__start_stub, "%function", UCORO_A64_STUB_CFA, UCORO_A64_CFI_SLOTS)
    "mov x0, x19\n"
    "bl " UCORO_ASM_SYMBOL(ucoro__cc_entry) "\n"         /* never returns */
    "brk #0\n"
    ".cfi_endproc\n"
    ".size " UCORO_ASM_SYMBOL(ucoro__start_stub) ", .-" UCORO_ASM_SYMBOL(ucoro__start_stub) "\n"

    /* The same frame; leaves by returning into the resumer's context
     * (arch/interface.h), every register loaded as by the switch. */
    UCORO_START_STUB_HEAD(ucoro__crate_start_stub, "%function", UCORO_A64_STUB_CFA,
                          UCORO_A64_CFI_SLOTS)
    "mov x0, x19\n"
    "bl " UCORO_ASM_SYMBOL(ucoro__crate_entry) "\n"     /* x0 = the resumer's context */
    "mov sp, x0\n"                 /* on its stack: its frame from here */
    ".cfi_def_cfa sp, 160\n"
    UCORO_A64_RESTORE
    "mov x0, #0\n"                 /* what its switch returns: 0, an exit */
    "ret\n"
    ".cfi_endproc\n"
    ".size " UCORO_ASM_SYMBOL(ucoro__crate_start_stub) ", .-" UCORO_ASM_SYMBOL(ucoro__crate_start_stub) "\n"

    UCORO_NO_RESUMER_ASM(".p2align 2", "%function", "x30", "brk #0"));
#undef UCORO_A64_SWITCH
#undef UCORO_A64_SAVE
#undef UCORO_A64_RESTORE
#undef UCORO_A64_CFI_SAVED
#undef UCORO_A64_STUB_CFA
#undef UCORO_A64_CFI_SLOTS
#endif /* UCORO_SWITCH_ASM: the switch, or else the entry stub */
/* clang-format on */
#endif /* UCORO_ARCH_IMPLEMENTATION */

#endif /* UCORO_ARCH_AARCH64_H */
