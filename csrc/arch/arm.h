/*
 * 32-bit Arm (AAPCS, Linux EABI): the entry stub on every Arm target, and
 * the switch, the fast default, where the hard-float ABI (armhf) promises
 * VFP registers. armel (soft-float, ARMv5TE in Debian) keeps the _setjmp
 * switch and enters stacks through the stub.
 *
 * A switched-out context is a stack pointer; what must survive sits on its
 * own stack, pushed by ucoro__switch (104 bytes, so a saved sp keeps the
 * 8-byte alignment AAPCS wants at every call):
 *
 *     saved sp -> [ d8 ... d15 ][ r3 (padding) ][ r4 ... r11 ][ lr ]
 *
 * Those are exactly the registers AAPCS makes callee-saved: r4-r11
 * (section 5.1.1, r9 included: Linux does not use it as a platform
 * register) and d8-d15 (5.1.2.1, VFP registers). The FPSCR (rounding mode,
 * flags) is left per thread, as on x86_64; the thread pointer lives in a
 * coprocessor register no switch touches.
 *
 * Resuming ends in `bx ip` to the saved return address: a `bx lr` or a pop
 * into pc is predicted as a return, which a switch never matches; an
 * indirect branch through ip is predicted like x86_64's jmp. bx also
 * interworks: a return address saved by Thumb code has bit 0 set.
 * Debian's armhf compiler emits Thumb-2 by default, so the assembly here is
 * in whichever instruction set the compiler uses (unified syntax serves
 * both), and a call or tail call from C into it never changes state.
 *
 * Unwind information is given twice: Arm EHABI (.fnstart, .save: what
 * _Unwind_Backtrace and C++ exceptions read; the start stub has a
 * personality routine of its own, the other stubs are .cantunwind) and
 * DWARF CFI (what debuggers read), both right at every instruction of the
 * switch (see UCORO_ARM_RESTORE for EHABI's). Included through cc_switch.h;
 * continuation.c defines UCORO_ARCH_IMPLEMENTATION to emit the assembly
 * once.
 *
 * SPDX-License-Identifier: MIT OR Apache-2.0
 */
#ifndef UCORO_ARCH_ARM_H
#define UCORO_ARCH_ARM_H

#include <stddef.h>
#include <stdint.h>

#include "../ucoro_internal.h"

#if defined(UCORO_SWITCH_ASM_WANTED) && defined(__ARM_PCS_VFP)
#define UCORO_SWITCH_ASM 1
#define UCORO_SWITCH_NAME "armhf assembly"
#endif
#include "interface.h"

#ifdef UCORO_SWITCH_ASM
#define UCORO_ARM_FRAME 104
/* The size of the nop the start stub begins with (nop.n in Thumb-2; the
 * functions are in Arm code otherwise, see UCORO_ARM_FUNCTION). */
#ifdef __thumb2__
#define UCORO_ARM_STUB_NOP 2
#define UCORO_ARM_NOP "nop.n\n"
#else
#define UCORO_ARM_STUB_NOP 4
#define UCORO_ARM_NOP "nop\n"
#endif

/*
 * Makes the top of [stack, stack + size) a saved context whose resumption
 * runs ucoro__start_stub with r4 = start_arg, the frame pointers (r7 in
 * Thumb code, r11 in Arm code) 0 and sp = the aligned top less 104, and
 * there the fake context of arch/interface.h (lr ucoro__no_resumer, r7
 * and r11 0; its other slots are only ever read as the registers of that
 * outermost frame).
 */
static inline void *ucoro_arch_prepare(char *stack, size_t size, void *start_arg,
                                       void ***fp_link)
{
    *fp_link = NULL; /* no frame-pointer link here (arch/interface.h) */
    uintptr_t top = ((uintptr_t)stack + size) & ~(uintptr_t)15;
    void **fake = (void **)(top - UCORO_ARM_FRAME);
    void **sp = (void **)((uintptr_t)fake - UCORO_ARM_FRAME);
    int i;

    for (i = 0; i < UCORO_ARM_FRAME / 4; i++)
        sp[i] = NULL;
    sp[17] = start_arg;                 /* r4: the continuation */
    /* lr, past the stub's nop (see arch/x86_64.h); Thumb bit included */
    sp[25] = (void *)((uintptr_t)ucoro__start_stub + UCORO_ARM_STUB_NOP);
    fake[20] = NULL;                      /* r7 */
    fake[24] = NULL;                      /* r11 */
    fake[25] = (void *)(uintptr_t)ucoro__no_resumer; /* lr */
    return sp;
}
#endif /* UCORO_SWITCH_ASM */

#ifdef UCORO_ARCH_IMPLEMENTATION
/* clang-format off */
/* Each function in the compiler's instruction set; after the block the
 * assembler is left in it too. */
#if defined(__thumb2__)
#define UCORO_ARM_ISA ".thumb\n"
#define UCORO_ARM_FUNCTION(name) ".thumb\n" ".thumb_func\n" ".type " name ",%function\n"
#elif defined(__thumb__)
#define UCORO_ARM_ISA ".thumb\n"
#define UCORO_ARM_FUNCTION(name) ".arm\n" ".type " name ",%function\n" /* Thumb-1 is too small */
#else
#define UCORO_ARM_ISA ".arm\n"
#define UCORO_ARM_FUNCTION(name) ".arm\n" ".type " name ",%function\n"
#endif
#define UCORO_ARM_BEGIN(name)                                                  \
    ".p2align 2\n"                                                            \
    ".globl " name "\n"                                                       \
    ".hidden " name "\n"                                                      \
    UCORO_ARM_FUNCTION(name)                                                  \
    name ":\n"                                                                \
    ".fnstart\n"                                                              \
    ".cfi_startproc\n"
/* The same, preceded by a pad that never runs, whose EHABI range
 * describes the state at the entry (the return address in lr), for an
 * unwinder interrupted at the first instruction (see UCORO_ARM_RESTORE). */
#define UCORO_ARM_BEGIN_PADDED(name)                                           \
    ".p2align 2\n"                                                            \
    ".globl " name "\n"                                                       \
    ".hidden " name "\n"                                                      \
    UCORO_ARM_FUNCTION(name)                                                  \
    ".fnstart\n"                                                              \
    UCORO_ARM_NOP                                                             \
    ".fnend\n"                                                                \
    name ":\n"                                                                \
    ".fnstart\n"                                                              \
    ".cfi_startproc\n"
#define UCORO_ARM_END(name)                                                    \
    ".cfi_endproc\n"                                                          \
    ".fnend\n"                                                                \
    ".size " name ", .-" name "\n"

#ifdef UCORO_SWITCH_ASM
/* clang-format on */
#include <unwind.h>

/*
 * The start stub's EHABI "personality": how _Unwind_Backtrace (and so
 * glibc's backtrace()) gets past the stub into the resumer, as the DWARF
 * rule of arch/interface.h does for debuggers. EHABI's unwind opcodes
 * cannot read through pointers, so this routine unwinds the stub's frame
 * itself: from the continuation in r4 to its resumer's saved context,
 * whose d8-d15, r3-r11 and lr it loads (sp then lies above the context,
 * pc is lr). With no resumer switched out it ends the walk. Exceptions
 * and forced unwinds are refused, as the .cantunwind stub did before:
 * none may leave a coroutine's stack for frames that are not waiting for
 * it to return.
 */
UCORO_HIDDEN __attribute__((used)) _Unwind_Reason_Code
ucoro__stub_personality(_Unwind_State state, _Unwind_Control_Block *ucbp,
                        _Unwind_Context *context)
{
    const struct continuation *cc, *link;
    _uw r4, ctx, lr;

    (void)ucbp;
    if ((state & _US_ACTION_MASK) != _US_VIRTUAL_UNWIND_FRAME || !(state & _US_FORCE_UNWIND))
        return _URC_FAILURE; /* not _Unwind_Backtrace */
    if (_Unwind_VRS_Get(context, _UVRSC_CORE, 4, _UVRSD_UINT32, &r4) != _UVRSR_OK)
        return _URC_FAILURE;
    cc = (const struct continuation *)r4;
    link = cc->return_to;
    ctx = link ? (_uw)link->ctx : 0;
    if (!ctx)
        return _URC_END_OF_STACK;
    _Unwind_VRS_Set(context, _UVRSC_CORE, 13, _UVRSD_UINT32, &ctx);
    if (_Unwind_VRS_Pop(context, _UVRSC_VFP, (8 << 16) | 8, _UVRSD_DOUBLE) != _UVRSR_OK ||
        _Unwind_VRS_Pop(context, _UVRSC_CORE, 0x4ff8 /* r3-r11, lr */, _UVRSD_UINT32) !=
            _UVRSR_OK ||
        _Unwind_VRS_Get(context, _UVRSC_CORE, 14, _UVRSD_UINT32, &lr) != _UVRSR_OK)
        return _URC_FAILURE;
    _Unwind_VRS_Set(context, _UVRSC_CORE, 15, _UVRSD_UINT32, &lr);
    return _URC_CONTINUE_UNWIND;
}

/*
 * The EHABI "personality" of the instructions after a switch's last pop,
 * where the return address is in ip (lr still holds the other context's)
 * and sp is the caller's already: unwinding that frame is pc = ip. Only
 * _Unwind_Backtrace gets here (no call is made from there).
 */
UCORO_HIDDEN __attribute__((used)) _Unwind_Reason_Code
ucoro__ip_personality(_Unwind_State state, _Unwind_Control_Block *ucbp,
                      _Unwind_Context *context)
{
    _uw ip;

    (void)ucbp;
    if ((state & _US_ACTION_MASK) != _US_VIRTUAL_UNWIND_FRAME || !(state & _US_FORCE_UNWIND))
        return _URC_FAILURE; /* not _Unwind_Backtrace */
    if (_Unwind_VRS_Get(context, _UVRSC_CORE, 12, _UVRSD_UINT32, &ip) != _UVRSR_OK)
        return _URC_FAILURE;
    _Unwind_VRS_Set(context, _UVRSC_CORE, 15, _UVRSD_UINT32, &ip);
    return _URC_CONTINUE_UNWIND;
}
/* clang-format off */
#endif

#ifndef UCORO_SWITCH_ASM
__asm__(
    ".text\n"
    ".syntax unified\n"
    UCORO_ARM_BEGIN(UCORO_ASM_SYMBOL(ucoro__enter_stack)) /* r0 = cc, r1 = top */
    ".cantunwind\n"                /* the outermost frame: unwinders stop */
    ".cfi_undefined lr\n"
    "mov sp, r1\n"
    "mov r7, #0\n"                 /* and frame-pointer walkers too */
    "mov r11, #0\n"
    "bl " UCORO_ASM_SYMBOL(ucoro__cc_entry) "\n"         /* never returns */
    "bkpt #0\n"
    UCORO_ARM_END(UCORO_ASM_SYMBOL(ucoro__enter_stack))
    UCORO_ARM_ISA);
#else
/* Where a saved context keeps each register relative to its CFA (the
 * saved sp + 104). The d registers are described as the pairs of s
 * registers they are made of, as GCC does. */
#define UCORO_ARM_CFI_SLOTS                                                    \
    ".cfi_offset 80, -104\n" ".cfi_offset 81, -100\n" /* d8 */                \
    ".cfi_offset 82, -96\n" ".cfi_offset 83, -92\n"                           \
    ".cfi_offset 84, -88\n" ".cfi_offset 85, -84\n"                           \
    ".cfi_offset 86, -80\n" ".cfi_offset 87, -76\n"                           \
    ".cfi_offset 88, -72\n" ".cfi_offset 89, -68\n"                           \
    ".cfi_offset 90, -64\n" ".cfi_offset 91, -60\n"                           \
    ".cfi_offset 92, -56\n" ".cfi_offset 93, -52\n"                           \
    ".cfi_offset 94, -48\n" ".cfi_offset 95, -44\n" /* d15 */                 \
    UCORO_ARM_CFI_CORE_SLOTS
/* The core registers' part: where push {r3-r11, lr} puts them. */
#define UCORO_ARM_CFI_CORE_SLOTS                                               \
    ".cfi_offset r4, -36\n" ".cfi_offset r5, -32\n"                           \
    ".cfi_offset r6, -28\n" ".cfi_offset r7, -24\n"                           \
    ".cfi_offset r8, -20\n" ".cfi_offset r9, -16\n"                           \
    ".cfi_offset r10, -12\n" ".cfi_offset r11, -8\n"                          \
    ".cfi_offset lr, -4\n"
/* The same, for the running context: sp is the saved sp. */
#define UCORO_ARM_CFI_SAVED                                                    \
    ".cfi_def_cfa_offset 104\n"                                               \
    UCORO_ARM_CFI_SLOTS
/*
 * EHABI unwind entries are not per instruction as CFI is: one describes a
 * whole range, and unwinders look an interrupted pc up at pc - 2, in the
 * instruction before. So the switch is cut into ranges (.fnend, .fnstart)
 * that each describe the state after their instructions, and its entry
 * point is preceded by a pad that never runs whose range describes the
 * state at the entry (see UCORO_ARM_BEGIN_PADDED).
 */
#define UCORO_ARM_EHABI_NEXT ".fnend\n" ".fnstart\n"
/* Loads a saved context's registers, its return address into ip. Its
 * ranges: after vpop, the core registers' part of the context is left;
 * after pop, the return address is in ip (ucoro__ip_personality). */
#define UCORO_ARM_RESTORE                                                      \
    UCORO_ARM_EHABI_NEXT                                                      \
    ".save {r3-r11, lr}\n"                                                    \
    "vpop {d8-d15}\n"                                                         \
    ".cfi_adjust_cfa_offset -64\n"                                            \
    ".cfi_restore 80\n" ".cfi_restore 81\n" ".cfi_restore 82\n"               \
    ".cfi_restore 83\n" ".cfi_restore 84\n" ".cfi_restore 85\n"               \
    ".cfi_restore 86\n" ".cfi_restore 87\n" ".cfi_restore 88\n"               \
    ".cfi_restore 89\n" ".cfi_restore 90\n" ".cfi_restore 91\n"               \
    ".cfi_restore 92\n" ".cfi_restore 93\n" ".cfi_restore 94\n"               \
    ".cfi_restore 95\n"                                                       \
    UCORO_ARM_EHABI_NEXT                                                      \
    ".personality " UCORO_ASM_SYMBOL(ucoro__ip_personality) "\n"               \
    "pop {r3-r12}\n"                                                          \
    ".cfi_def_cfa_offset 0\n"                                                 \
    ".cfi_restore r4\n" ".cfi_restore r5\n" ".cfi_restore r6\n"               \
    ".cfi_restore r7\n" ".cfi_restore r8\n" ".cfi_restore r9\n"               \
    ".cfi_restore r10\n" ".cfi_restore r11\n"                                 \
    ".cfi_register lr, ip\n"
/* The switch, emitted under two names (see arch/x86_64.h). */
#define UCORO_ARM_SWITCH(name)                                                 \
    UCORO_ARM_BEGIN_PADDED(name) /* r0 = save, r1 = to, r2 = value */         \
    "push {r3-r11, lr}\n"                                                     \
    ".save {r3-r11, lr}\n"                                                    \
    UCORO_ARM_EHABI_NEXT                                                      \
    ".save {r3-r11, lr}\n"                                                    \
    ".cfi_def_cfa_offset 40\n"                                                \
    UCORO_ARM_CFI_CORE_SLOTS                                                  \
    "vpush {d8-d15}\n"                                                        \
    ".vsave {d8-d15}\n"                                                       \
    UCORO_ARM_CFI_SAVED                                                       \
    "mov r3, sp\n"                                                            \
    "str r3, [r0]\n"         /* our context is complete */                    \
    "mov sp, r1\n"           /* now on the other stack, same layout */        \
    UCORO_ARM_RESTORE                                                         \
    "mov r0, r2\n"           /* what the resumed call returns */              \
    "bx ip\n"                                                                 \
    UCORO_ARM_END(name)
__asm__(
    ".text\n"
    ".syntax unified\n"
    UCORO_ARM_SWITCH(UCORO_ASM_SYMBOL(ucoro__switch))
    UCORO_ARM_SWITCH(UCORO_ASM_SYMBOL(ucoro__switch_back))

    UCORO_ARM_BEGIN_PADDED(UCORO_ASM_SYMBOL(ucoro__switch_exit)) /* r0 = to, r1 = hook, r2 = arg */
    ".save {r3-r11, lr}\n"         /* what to's saved context holds */
    ".vsave {d8-d15}\n"
    "mov sp, r0\n"                 /* the old stack is abandoned */
    UCORO_ARM_CFI_SAVED
    "mov r0, r2\n"
    "blx r1\n"                     /* hook(arg), below to's saved registers */
    UCORO_ARM_RESTORE              /* r0: hook's result */
    "bx ip\n"
    UCORO_ARM_END(UCORO_ASM_SYMBOL(ucoro__switch_exit))

    UCORO_ARM_BEGIN(UCORO_ASM_SYMBOL(ucoro__start_stub))
    ".personality " UCORO_ASM_SYMBOL(ucoro__stub_personality) "\n" /* see above */
    ".cfi_signal_frame\n"          /* see arch/interface.h */
    /* The frame above: the resumer's, or the fake context at sp. */
    UCORO_STUB_LINKED_CFA(4 /* r4 */, 13 /* sp */, 0, UCORO_ARM_FRAME)
    UCORO_ARM_CFI_SLOTS
    /* Never runs: a fresh context "returns" past it (see arch/x86_64.h). */
    UCORO_ARM_NOP
    "mov r0, r4\n"
    "bl " UCORO_ASM_SYMBOL(ucoro__cc_entry) "\n"         /* never returns */
    "bkpt #0\n"
    UCORO_ARM_END(UCORO_ASM_SYMBOL(ucoro__start_stub))

    UCORO_ARM_BEGIN(UCORO_ASM_SYMBOL(ucoro__no_resumer))
    ".cantunwind\n"
    ".cfi_undefined lr\n"          /* the outermost frame: unwinders stop */
    "bkpt #0\n"
    UCORO_ARM_END(UCORO_ASM_SYMBOL(ucoro__no_resumer))
    UCORO_ARM_ISA);
#undef UCORO_ARM_SWITCH
#undef UCORO_ARM_RESTORE
#undef UCORO_ARM_CFI_SAVED
#undef UCORO_ARM_CFI_SLOTS
#undef UCORO_ARM_CFI_CORE_SLOTS
#endif /* UCORO_SWITCH_ASM: the switch, or else the entry stub */
#undef UCORO_ARM_BEGIN
#undef UCORO_ARM_BEGIN_PADDED
#undef UCORO_ARM_EHABI_NEXT
#undef UCORO_ARM_END
#undef UCORO_ARM_FUNCTION
#undef UCORO_ARM_ISA
/* clang-format on */
#endif /* UCORO_ARCH_IMPLEMENTATION */

#endif /* UCORO_ARCH_ARM_H */
