/*
 * ppc64le (64-bit ELF ABI v2, "ELFv2") switch: the fast default on
 * ppc64el.
 *
 * A switched-out context is a stack pointer S, the bottom of a 528-byte
 * frame that ucoro__switch pushes like any ELFv2 function (back chain at
 * S + 0); the return address goes where the ABI puts a callee's, in the
 * LR save doubleword of its caller's frame (S + 528 + 16):
 *
 *     S + 0:    back chain          S + 24:  r2 (TOC)
 *     S + 32:   CR (word), VRSAVE (word)
 *     S + 40:   r14 ... r31         S + 184: f14 ... f31
 *     S + 336:  v20 ... v31 (16-byte aligned)
 *
 * Those are exactly the registers ELFv2 makes nonvolatile (section 2.2.1.1,
 * "Register Roles"): r1 (the stack pointer), r14-r31, f14-f31, v20-v31,
 * VRSAVE and the CR fields cr2-cr4, plus r2, the TOC pointer, which a
 * resumed local caller relies on as on return from any local call. No
 * word of a context lies below its S: the 288-byte red zone under a stack
 * pointer belongs to the running function. Slots 8 and 16 are left to the
 * ABI (a callee's CR and LR saves). r13, the thread pointer, is never
 * touched, so a coroutine resumed on another thread sees that thread's;
 * the FPSCR and VSCR are left per thread, as on x86_64.
 *
 * Resuming ends in `bctr` to the saved return address, not `blr`: blr is
 * predicted from the link stack, which a switch never matches (see
 * arch/x86_64.h). The address travels in r12, so the start stub can
 * compute its TOC pointer from it like a global entry point. Like the
 * x86_64 switch it is tail-called by the coroutine layer.
 *
 * CFI and the stubs as in arch/x86_64.h. Included through
 * cc_switch.h; continuation.c defines UCORO_ARCH_IMPLEMENTATION to emit
 * the assembly once.
 *
 * SPDX-License-Identifier: MIT OR Apache-2.0
 */
#ifndef UCORO_ARCH_PPC64_H
#define UCORO_ARCH_PPC64_H

#include <stddef.h>
#include <stdint.h>

#include "../ucoro_internal.h"

#ifdef UCORO_SWITCH_ASM_WANTED
#define UCORO_SWITCH_ASM 1
#define UCORO_SWITCH_NAME "ppc64le assembly"
#endif
#include "interface.h"

#ifdef UCORO_SWITCH_ASM
#define UCORO_PPC64_FRAME 528    /* the switch's frame */
#define UCORO_PPC64_MIN_FRAME 32 /* back chain, CR, LR and TOC doublewords */

/*
 * Makes the top of [stack, stack + size) a saved context whose resumption
 * runs ucoro__start_stub with r31 = start_arg, on a minimal frame at
 * top - 592 whose back chain is 0 (the outermost frame), and above that
 * frame the fake context of arch/interface.h (its return address, in the
 * LR save doubleword of the frame above it, ucoro__no_resumer; its other
 * slots are only ever read as the registers of that outermost frame).
 */
static inline void *ucoro_arch_prepare(char *stack, size_t size, void *start_arg,
                                       void ***fp_link)
{
    *fp_link = NULL; /* no frame-pointer link here (arch/interface.h) */
    uintptr_t top = ((uintptr_t)stack + size) & ~(uintptr_t)15;
    /* The fake context: a 528-byte frame and the 24 bytes above it that
     * hold its LR, 16-byte aligned, right above the stub's frame. */
    void **stub_frame = (void **)(top - 592);
    void **fake = stub_frame + UCORO_PPC64_MIN_FRAME / 8;
    void **sp = (void **)((uintptr_t)stub_frame - UCORO_PPC64_FRAME);
    int i;

    for (i = 0; i < (UCORO_PPC64_FRAME + UCORO_PPC64_MIN_FRAME) / 8; i++)
        sp[i] = NULL;                          /* r2: the stub computes it */
    sp[0] = stub_frame;                        /* back chain */
    sp[22] = start_arg;                        /* r31 (S + 176): the continuation */
    /* the LR save doubleword: past the stub's nop (see arch/x86_64.h) */
    stub_frame[2] = (void *)((uintptr_t)ucoro__start_stub + 4);
    fake[(UCORO_PPC64_FRAME + 16) / 8] = (void *)(uintptr_t)ucoro__no_resumer;
    return sp;
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
    ".type " UCORO_ASM_SYMBOL(ucoro__enter_stack) ",@function\n"
UCORO_ASM_SYMBOL(ucoro__enter_stack) ":\n"            /* r3 = cc, r4 = top; r2 is this module's */
    ".cfi_startproc\n"
    ".cfi_undefined lr\n"          /* the outermost frame: unwinders stop */
    "addi %r1, %r4, -32\n"
    "li %r0, 0\n"
    "std %r0, 0(%r1)\n"            /* back chain: none */
    "bl " UCORO_ASM_SYMBOL(ucoro__cc_entry) "\n"         /* never returns */
    "nop\n"
    "trap\n"
    ".cfi_endproc\n"
    ".size " UCORO_ASM_SYMBOL(ucoro__enter_stack) ", .-" UCORO_ASM_SYMBOL(ucoro__enter_stack) "\n");
#else
/* Where a saved context keeps each register relative to its CFA (S + 528;
 * DWARF numbers f14 = 46, v20 = 97, cr2 = 70). */
#define UCORO_PPC64_CFI_SLOTS                                                  \
    ".cfi_offset lr, 16\n"                                                    \
    ".cfi_offset %r2, -504\n"                                                 \
    ".cfi_offset 70, -496\n" ".cfi_offset 71, -496\n" ".cfi_offset 72, -496\n" \
    ".cfi_offset %r14, -488\n" ".cfi_offset %r15, -480\n" ".cfi_offset %r16, -472\n"\
    ".cfi_offset %r17, -464\n" ".cfi_offset %r18, -456\n" ".cfi_offset %r19, -448\n"\
    ".cfi_offset %r20, -440\n" ".cfi_offset %r21, -432\n" ".cfi_offset %r22, -424\n"\
    ".cfi_offset %r23, -416\n" ".cfi_offset %r24, -408\n" ".cfi_offset %r25, -400\n"\
    ".cfi_offset %r26, -392\n" ".cfi_offset %r27, -384\n" ".cfi_offset %r28, -376\n"\
    ".cfi_offset %r29, -368\n" ".cfi_offset %r30, -360\n" ".cfi_offset %r31, -352\n"\
    ".cfi_offset 46, -344\n" ".cfi_offset 47, -336\n" ".cfi_offset 48, -328\n"\
    ".cfi_offset 49, -320\n" ".cfi_offset 50, -312\n" ".cfi_offset 51, -304\n"\
    ".cfi_offset 52, -296\n" ".cfi_offset 53, -288\n" ".cfi_offset 54, -280\n"\
    ".cfi_offset 55, -272\n" ".cfi_offset 56, -264\n" ".cfi_offset 57, -256\n"\
    ".cfi_offset 58, -248\n" ".cfi_offset 59, -240\n" ".cfi_offset 60, -232\n"\
    ".cfi_offset 61, -224\n" ".cfi_offset 62, -216\n" ".cfi_offset 63, -208\n"\
    ".cfi_offset 97, -192\n" ".cfi_offset 98, -176\n" ".cfi_offset 99, -160\n"\
    ".cfi_offset 100, -144\n" ".cfi_offset 101, -128\n" ".cfi_offset 102, -112\n"\
    ".cfi_offset 103, -96\n" ".cfi_offset 104, -80\n" ".cfi_offset 105, -64\n"\
    ".cfi_offset 106, -48\n" ".cfi_offset 107, -32\n" ".cfi_offset 108, -16\n"
/* The same, for the running context: r1 is S. */
#define UCORO_PPC64_CFI_SAVED                                                  \
    ".cfi_def_cfa_offset 528\n"                                               \
    UCORO_PPC64_CFI_SLOTS
#define UCORO_PPC64_SAVE                                                       \
    "mflr %r0\n"                                                              \
    "std %r0, 16(%r1)\n"      /* the return address, in the caller's frame */ \
    "stdu %r1, -528(%r1)\n"   /* with the back chain */                       \
    ".cfi_def_cfa_offset 528\n"                                               \
    "mfcr %r0\n"                                                              \
    "stw %r0, 32(%r1)\n"                                                      \
    "mfvrsave %r0\n"                                                          \
    "stw %r0, 36(%r1)\n"                                                      \
    "std %r2, 24(%r1)\n"                                                      \
    "std %r14, 40(%r1)\n" "std %r15, 48(%r1)\n" "std %r16, 56(%r1)\n"       \
    "std %r17, 64(%r1)\n" "std %r18, 72(%r1)\n" "std %r19, 80(%r1)\n"       \
    "std %r20, 88(%r1)\n" "std %r21, 96(%r1)\n" "std %r22, 104(%r1)\n"      \
    "std %r23, 112(%r1)\n" "std %r24, 120(%r1)\n" "std %r25, 128(%r1)\n"    \
    "std %r26, 136(%r1)\n" "std %r27, 144(%r1)\n" "std %r28, 152(%r1)\n"    \
    "std %r29, 160(%r1)\n" "std %r30, 168(%r1)\n" "std %r31, 176(%r1)\n"    \
    "stfd %f14, 184(%r1)\n" "stfd %f15, 192(%r1)\n" "stfd %f16, 200(%r1)\n" \
    "stfd %f17, 208(%r1)\n" "stfd %f18, 216(%r1)\n" "stfd %f19, 224(%r1)\n" \
    "stfd %f20, 232(%r1)\n" "stfd %f21, 240(%r1)\n" "stfd %f22, 248(%r1)\n" \
    "stfd %f23, 256(%r1)\n" "stfd %f24, 264(%r1)\n" "stfd %f25, 272(%r1)\n" \
    "stfd %f26, 280(%r1)\n" "stfd %f27, 288(%r1)\n" "stfd %f28, 296(%r1)\n" \
    "stfd %f29, 304(%r1)\n" "stfd %f30, 312(%r1)\n" "stfd %f31, 320(%r1)\n" \
    "li %r0, 336\n" "stvx %v20, %r1, %r0\n" "li %r0, 352\n" "stvx %v21, %r1, %r0\n"\
    "li %r0, 368\n" "stvx %v22, %r1, %r0\n" "li %r0, 384\n" "stvx %v23, %r1, %r0\n"\
    "li %r0, 400\n" "stvx %v24, %r1, %r0\n" "li %r0, 416\n" "stvx %v25, %r1, %r0\n"\
    "li %r0, 432\n" "stvx %v26, %r1, %r0\n" "li %r0, 448\n" "stvx %v27, %r1, %r0\n"\
    "li %r0, 464\n" "stvx %v28, %r1, %r0\n" "li %r0, 480\n" "stvx %v29, %r1, %r0\n"\
    "li %r0, 496\n" "stvx %v30, %r1, %r0\n" "li %r0, 512\n" "stvx %v31, %r1, %r0\n"\
    UCORO_PPC64_CFI_SAVED
/* Loads the context saved at r1 and pops its frame; its return address is
 * left in r12 and ctr (r3 is untouched). */
#define UCORO_PPC64_RESTORE                                                    \
    "li %r0, 336\n" "lvx %v20, %r1, %r0\n" "li %r0, 352\n" "lvx %v21, %r1, %r0\n"\
    "li %r0, 368\n" "lvx %v22, %r1, %r0\n" "li %r0, 384\n" "lvx %v23, %r1, %r0\n"\
    "li %r0, 400\n" "lvx %v24, %r1, %r0\n" "li %r0, 416\n" "lvx %v25, %r1, %r0\n"\
    "li %r0, 432\n" "lvx %v26, %r1, %r0\n" "li %r0, 448\n" "lvx %v27, %r1, %r0\n"\
    "li %r0, 464\n" "lvx %v28, %r1, %r0\n" "li %r0, 480\n" "lvx %v29, %r1, %r0\n"\
    "li %r0, 496\n" "lvx %v30, %r1, %r0\n" "li %r0, 512\n" "lvx %v31, %r1, %r0\n"\
    "lfd %f14, 184(%r1)\n" "lfd %f15, 192(%r1)\n" "lfd %f16, 200(%r1)\n"    \
    "lfd %f17, 208(%r1)\n" "lfd %f18, 216(%r1)\n" "lfd %f19, 224(%r1)\n"    \
    "lfd %f20, 232(%r1)\n" "lfd %f21, 240(%r1)\n" "lfd %f22, 248(%r1)\n"    \
    "lfd %f23, 256(%r1)\n" "lfd %f24, 264(%r1)\n" "lfd %f25, 272(%r1)\n"    \
    "lfd %f26, 280(%r1)\n" "lfd %f27, 288(%r1)\n" "lfd %f28, 296(%r1)\n"    \
    "lfd %f29, 304(%r1)\n" "lfd %f30, 312(%r1)\n" "lfd %f31, 320(%r1)\n"    \
    "ld %r14, 40(%r1)\n" "ld %r15, 48(%r1)\n" "ld %r16, 56(%r1)\n"          \
    "ld %r17, 64(%r1)\n" "ld %r18, 72(%r1)\n" "ld %r19, 80(%r1)\n"          \
    "ld %r20, 88(%r1)\n" "ld %r21, 96(%r1)\n" "ld %r22, 104(%r1)\n"         \
    "ld %r23, 112(%r1)\n" "ld %r24, 120(%r1)\n" "ld %r25, 128(%r1)\n"       \
    "ld %r26, 136(%r1)\n" "ld %r27, 144(%r1)\n" "ld %r28, 152(%r1)\n"       \
    "ld %r29, 160(%r1)\n" "ld %r30, 168(%r1)\n" "ld %r31, 176(%r1)\n"       \
    "ld %r2, 24(%r1)\n"                                                       \
    "lwz %r0, 36(%r1)\n"                                                      \
    "mtvrsave %r0\n"                                                          \
    "lwz %r0, 32(%r1)\n"                                                      \
    "mtcrf 0x38, %r0\n"       /* cr2-cr4 only */                              \
    "addi %r1, %r1, 528\n"                                                    \
    ".cfi_def_cfa_offset 0\n"                                                 \
    "ld %r12, 16(%r1)\n"                                                      \
    "mtctr %r12\n"                                                            \
    ".cfi_restore %r2\n" ".cfi_restore 70\n" ".cfi_restore 71\n"              \
    ".cfi_restore 72\n"                                                       \
    ".cfi_restore %r14\n" ".cfi_restore %r15\n" ".cfi_restore %r16\n" ".cfi_restore %r17\n"\
    ".cfi_restore %r18\n" ".cfi_restore %r19\n" ".cfi_restore %r20\n" ".cfi_restore %r21\n"\
    ".cfi_restore %r22\n" ".cfi_restore %r23\n" ".cfi_restore %r24\n" ".cfi_restore %r25\n"\
    ".cfi_restore %r26\n" ".cfi_restore %r27\n" ".cfi_restore %r28\n" ".cfi_restore %r29\n"\
    ".cfi_restore %r30\n" ".cfi_restore %r31\n"                             \
    ".cfi_restore 46\n" ".cfi_restore 47\n" ".cfi_restore 48\n" ".cfi_restore 49\n"\
    ".cfi_restore 50\n" ".cfi_restore 51\n" ".cfi_restore 52\n" ".cfi_restore 53\n"\
    ".cfi_restore 54\n" ".cfi_restore 55\n" ".cfi_restore 56\n" ".cfi_restore 57\n"\
    ".cfi_restore 58\n" ".cfi_restore 59\n" ".cfi_restore 60\n" ".cfi_restore 61\n"\
    ".cfi_restore 62\n" ".cfi_restore 63\n"                                 \
    ".cfi_restore 97\n" ".cfi_restore 98\n" ".cfi_restore 99\n" ".cfi_restore 100\n"\
    ".cfi_restore 101\n" ".cfi_restore 102\n" ".cfi_restore 103\n" ".cfi_restore 104\n"\
    ".cfi_restore 105\n" ".cfi_restore 106\n" ".cfi_restore 107\n" ".cfi_restore 108\n"
/* The switch, emitted under two names (see arch/x86_64.h). */
#define UCORO_PPC64_SWITCH(name)                                               \
    ".p2align 4\n"                                                            \
    ".globl " name "\n"                                                       \
    ".hidden " name "\n"                                                      \
    ".type " name ",@function\n"                                              \
    name ":\n" /* r3 = save, r4 = to, r5 = value */                           \
    ".cfi_startproc\n"                                                        \
    UCORO_PPC64_SAVE                                                          \
    "std %r1, 0(%r3)\n"      /* our context is complete */                    \
    "mr %r1, %r4\n"          /* now on the other stack, same layout */        \
    UCORO_PPC64_RESTORE                                                       \
    "mr %r3, %r5\n"          /* what the resumed call returns */              \
    "bctr\n"                                                                  \
    ".cfi_endproc\n"                                                          \
    ".size " name ", .-" name "\n"
__asm__(
    ".text\n"
    UCORO_PPC64_SWITCH(UCORO_ASM_SYMBOL(ucoro__switch))
    UCORO_PPC64_SWITCH(UCORO_ASM_SYMBOL(ucoro__switch_back))

    ".p2align 4\n"
    ".globl " UCORO_ASM_SYMBOL(ucoro__switch_exit) "\n"
    ".hidden " UCORO_ASM_SYMBOL(ucoro__switch_exit) "\n"
    ".type " UCORO_ASM_SYMBOL(ucoro__switch_exit) ",@function\n"
UCORO_ASM_SYMBOL(ucoro__switch_exit) ":\n"            /* r3 = to, r4 = hook, r5 = arg */
    ".cfi_startproc\n"
    "mr %r1, %r3\n"                /* the old stack is abandoned */
    UCORO_PPC64_CFI_SAVED
    "stdu %r1, -32(%r1)\n"         /* the hook's caller frame, below to's */
    ".cfi_adjust_cfa_offset 32\n"
    "mr %r12, %r4\n"               /* an ELFv2 indirect call: r12 = target */
    "mtctr %r12\n"
    "mr %r3, %r5\n"
    "bctrl\n"                      /* hook(arg) */
    "addi %r1, %r1, 32\n"
    ".cfi_adjust_cfa_offset -32\n"
    UCORO_PPC64_RESTORE            /* r3: hook's result; r2 restored */
    "bctr\n"
    ".cfi_endproc\n"
    ".size " UCORO_ASM_SYMBOL(ucoro__switch_exit) ", .-" UCORO_ASM_SYMBOL(ucoro__switch_exit) "\n"

    ".p2align 4\n"
    ".globl " UCORO_ASM_SYMBOL(ucoro__start_stub) "\n"
    ".hidden " UCORO_ASM_SYMBOL(ucoro__start_stub) "\n"
    ".type " UCORO_ASM_SYMBOL(ucoro__start_stub) ",@function\n"
UCORO_ASM_SYMBOL(ucoro__start_stub) ":\n"
    ".cfi_startproc\n"
    ".cfi_signal_frame\n"          /* see arch/interface.h */
    UCORO_STUB_PERSONALITY
    /* The frame above: the resumer's, or the fake context at r1 + 32. */
    UCORO_STUB_LINKED_CFA(31 /* r31 */, 1 /* r1 */, 32, UCORO_PPC64_FRAME)
    UCORO_PPC64_CFI_SLOTS
    /* Never runs: a fresh context "returns" past it (see arch/x86_64.h),
     * so the stub is only ever entered at 1: with r12 = 1b. */
    "nop\n"
    "1:\n"
    "addis %r2, %r12, (.TOC.-1b)@ha\n"
    "addi %r2, %r2, (.TOC.-1b)@l\n"
    "mr %r3, %r31\n"
    "bl " UCORO_ASM_SYMBOL(ucoro__cc_entry) "\n"         /* never returns */
    "nop\n"
    "trap\n"
    ".cfi_endproc\n"
    ".size " UCORO_ASM_SYMBOL(ucoro__start_stub) ", .-" UCORO_ASM_SYMBOL(ucoro__start_stub) "\n"

    UCORO_NO_RESUMER_ASM(".p2align 4", "@function", "lr", "trap"));
#undef UCORO_PPC64_SWITCH
#undef UCORO_PPC64_SAVE
#undef UCORO_PPC64_RESTORE
#undef UCORO_PPC64_CFI_SAVED
#undef UCORO_PPC64_CFI_SLOTS
#endif /* UCORO_SWITCH_ASM: the switch, or else the entry stub */
/* clang-format on */
#endif /* UCORO_ARCH_IMPLEMENTATION */

#endif /* UCORO_ARCH_PPC64_H */
