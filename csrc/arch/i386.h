/*
 * i386 (System V i386 psABI, Linux) switch: the fast default on 32-bit x86.
 *
 * A switched-out context is a stack pointer; what must survive sits on its
 * own stack, pushed by ucoro__switch:
 *
 *     saved sp -> [ edi ][ esi ][ ebx ][ ebp ][ return address ]
 *
 * Those are exactly the registers the psABI makes callee-saved (its
 * "Registers" table, section 2.2.2: ebx, esi, edi, ebp, esp). No x87 or
 * SSE register is callee-saved: the x87 stack is empty at every call and
 * xmm0-7 are scratch. The x87 control word and MXCSR are left per thread,
 * as on x86_64.
 *
 * The switch functions take their arguments in registers (regparm(3):
 * eax, edx, ecx). On the stack, a three-argument switch could not be
 * tail-called by coroutine_yieldto(to, arg), whose own two argument words
 * leave no room for a third; in registers it is, as on x86_64. Resuming
 * ends in an indirect jmp, never a ret, for the reason given in
 * arch/x86_64.h. ebx is free at every point here: calls to the hidden
 * ucoro__cc_entry need no GOT pointer.
 *
 * CFI and the stubs as in arch/x86_64.h. Included through
 * cc_switch.h; continuation.c defines UCORO_ARCH_IMPLEMENTATION to emit
 * the assembly once.
 *
 * SPDX-License-Identifier: MIT OR Apache-2.0
 */
#ifndef UCORO_ARCH_I386_H
#define UCORO_ARCH_I386_H

#include <stddef.h>
#include <stdint.h>

#include "../ucoro_internal.h"

#ifdef UCORO_SWITCH_ASM_WANTED
#define UCORO_SWITCH_ASM 1
#define UCORO_SWITCH_NAME "i386 assembly"

/* The switch functions take their arguments in eax, edx, ecx. */
#define UCORO_ARCH_SWITCH_CALL __attribute__((regparm(3)))
#endif
#include "interface.h"

#ifdef UCORO_SWITCH_ASM
/* A saved context's size: the CFA of its frame is the saved sp + 20. */
#define UCORO_I386_FRAME 20

/*
 * Makes the top of [stack, stack + size) a saved context whose resumption
 * runs ucoro__start_stub with ebx = start_arg and esp 16-byte aligned,
 * pointing at the stub's argument (start_arg again), and above the
 * argument area the fake context of arch/interface.h (ebp 0, return
 * address ucoro__no_resumer; its other slots are only ever read as the
 * registers of that outermost frame).
 */
static inline void *ucoro_arch_prepare(char *stack, size_t size, void *start_arg,
                                       void ***fp_link)
{
    *fp_link = NULL; /* no frame-pointer link here (arch/interface.h) */
    uintptr_t top = ((uintptr_t)stack + size) & ~(uintptr_t)15;
    /* The stub runs with esp = top - 48: 16 bytes of argument area, then
     * the fake context; the context below is popped by the switch (4
     * registers and the return address). */
    void **args = (void **)(top - 48);
    void **fake = args + 4;
    void **sp = args - 5;

    sp[0] = NULL;                      /* edi */
    sp[1] = NULL;                      /* esi */
    sp[2] = start_arg;                 /* ebx: the continuation */
    sp[3] = NULL;                      /* ebp: outermost frame */
    sp[4] = (void *)((uintptr_t)ucoro__start_stub + 1); /* "return address": past its nop */
    args[0] = start_arg;               /* ucoro__cc_entry's argument */
    fake[3] = NULL;                      /* ebp */
    fake[4] = (void *)(uintptr_t)ucoro__no_resumer; /* return address */
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
UCORO_ASM_SYMBOL(ucoro__enter_stack) ":\n"            /* 4(%esp) = cc, 8(%esp) = top */
    ".cfi_startproc\n"
    ".cfi_undefined eip\n"         /* the outermost frame: unwinders stop */
    "movl 4(%esp), %eax\n"
    "movl 8(%esp), %esp\n"
    "xorl %ebp, %ebp\n"            /* and frame-pointer walkers too */
    "subl $12, %esp\n"             /* with the argument: 16 bytes, aligned */
    "pushl %eax\n"
    "calll " UCORO_ASM_SYMBOL(ucoro__cc_entry) "\n"      /* never returns */
    "ud2\n"
    ".cfi_endproc\n"
    ".size " UCORO_ASM_SYMBOL(ucoro__enter_stack) ", .-" UCORO_ASM_SYMBOL(ucoro__enter_stack) "\n");
#else
/* Where a saved context keeps each register relative to its CFA (just
 * above the return address): sp -> edi ... ebp, return address. */
#define UCORO_I386_CFI_SLOTS     \
    ".cfi_offset edi, -20\n"     \
    ".cfi_offset esi, -16\n"     \
    ".cfi_offset ebx, -12\n"     \
    ".cfi_offset ebp, -8\n"
/* The same, for the running context: sp is the saved sp. */
#define UCORO_I386_CFI_SAVED     \
    ".cfi_def_cfa_offset 20\n"   \
    UCORO_I386_CFI_SLOTS
/* Saves a callee-saved register, and loads one back, the CFI following
 * the stack pointer at every instruction (see arch/x86_64.h). */
#define UCORO_I386_PUSH(reg, offset)                  \
    "pushl %" reg "\n"                                \
    ".cfi_adjust_cfa_offset 4\n"                      \
    ".cfi_offset " reg ", " offset "\n"
#define UCORO_I386_POP(reg)                           \
    "popl %" reg "\n"                                 \
    ".cfi_adjust_cfa_offset -4\n"                     \
    ".cfi_restore " reg "\n"
/* Loads a saved context's registers and its return address (into ecx). */
#define UCORO_I386_RESTORE                            \
    UCORO_I386_POP("edi")                             \
    UCORO_I386_POP("esi")                             \
    UCORO_I386_POP("ebx")                             \
    UCORO_I386_POP("ebp")                             \
    "popl %ecx\n"                                     \
    ".cfi_adjust_cfa_offset -4\n"                     \
    ".cfi_register eip, ecx\n"
/* The switch, emitted under two names (see arch/x86_64.h). */
#define UCORO_I386_SWITCH(name)                                                \
    ".p2align 4\n"                                                            \
    ".globl " name "\n"                                                       \
    ".hidden " name "\n"                                                      \
    ".type " name ",@function\n"                                              \
    name ":\n" /* eax = save, edx = to, ecx = value */                        \
    ".cfi_startproc\n"                                                        \
    UCORO_I386_PUSH("ebp", "-8")                                              \
    UCORO_I386_PUSH("ebx", "-12")                                             \
    UCORO_I386_PUSH("esi", "-16")                                             \
    UCORO_I386_PUSH("edi", "-20")                                             \
    "movl %esp, (%eax)\n"    /* our context is complete */                    \
    "movl %edx, %esp\n"      /* now on the other stack, same layout */        \
    "movl %ecx, %eax\n"      /* what the resumed call returns */              \
    UCORO_I386_RESTORE                                                        \
    "jmpl *%ecx\n"                                                            \
    ".cfi_endproc\n"                                                          \
    ".size " name ", .-" name "\n"
__asm__(
    ".text\n"
    UCORO_I386_SWITCH(UCORO_ASM_SYMBOL(ucoro__switch))
    UCORO_I386_SWITCH(UCORO_ASM_SYMBOL(ucoro__switch_back))

    ".p2align 4\n"
    ".globl " UCORO_ASM_SYMBOL(ucoro__switch_exit) "\n"
    ".hidden " UCORO_ASM_SYMBOL(ucoro__switch_exit) "\n"
    ".type " UCORO_ASM_SYMBOL(ucoro__switch_exit) ",@function\n"
UCORO_ASM_SYMBOL(ucoro__switch_exit) ":\n"            /* eax = to, edx = hook, ecx = arg */
    ".cfi_startproc\n"
    "movl %eax, %esp\n"            /* the old stack is abandoned */
    UCORO_I386_CFI_SAVED
    /* A saved sp is 12 mod 16 (4 pushes below a call's return address):
     * 8 bytes of padding and the argument align the hook's call. */
    "subl $8, %esp\n"
    ".cfi_adjust_cfa_offset 8\n"
    "pushl %ecx\n"
    ".cfi_adjust_cfa_offset 4\n"
    "calll *%edx\n"                /* hook(arg), below to's saved registers */
    "addl $12, %esp\n"
    ".cfi_adjust_cfa_offset -12\n"
    UCORO_I386_RESTORE             /* eax: hook's result */
    "jmpl *%ecx\n"
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
    /* The frame above: the resumer's, or the fake context at esp + 16. */
    UCORO_STUB_LINKED_CFA(3 /* ebx */, 4 /* esp */, 16, UCORO_I386_FRAME)
    UCORO_I386_CFI_SLOTS
    /* Never runs: a fresh context "returns" past it (see arch/x86_64.h). */
    "nop\n"
    /* The argument is in place (ucoro_arch_prepare), esp aligned. */
    "calll " UCORO_ASM_SYMBOL(ucoro__cc_entry) "\n"      /* never returns */
    "ud2\n"
    ".cfi_endproc\n"
    ".size " UCORO_ASM_SYMBOL(ucoro__start_stub) ", .-" UCORO_ASM_SYMBOL(ucoro__start_stub) "\n"

    UCORO_NO_RESUMER_ASM(".p2align 4", "@function", "eip", "ud2"));
#undef UCORO_I386_SWITCH
#undef UCORO_I386_RESTORE
#undef UCORO_I386_POP
#undef UCORO_I386_PUSH
#undef UCORO_I386_CFI_SAVED
#undef UCORO_I386_CFI_SLOTS
#endif /* UCORO_SWITCH_ASM: the switch, or else the entry stub */
/* clang-format on */
#endif /* UCORO_ARCH_IMPLEMENTATION */

#endif /* UCORO_ARCH_I386_H */
