/*
 * x86_64 (System V) switch: the fast default on this architecture.
 *
 * A switched-out context is a stack pointer; what must survive sits on its
 * own stack, pushed by ucoro__switch:
 *
 *     saved sp -> [ r15 ][ r14 ][ r13 ][ r12 ][ rbx ][ rbp ][ return address ]
 *
 * Those are exactly the callee-saved registers; the rest are dead across a
 * call by the ABI. The floating-point control state (MXCSR, x87 control
 * word) is left per thread, as in the _setjmp originals and in corosensei.
 *
 * Resuming ends in an indirect jmp to the saved return address, never a
 * ret: a ret whose address was not pushed by the matching call is
 * mispredicted every time. The coroutine layer tail-calls ucoro__switch, so
 * the saved return address is its own caller's, and a resumed
 * coroutine_yield/coroutine_yieldto "returns" straight into user code with
 * no ret at all.
 *
 * Every function carries DWARF CFI that follows each push, pop and move
 * of the stack pointer, so debuggers and unwinders (a profiler's signal
 * handler) can walk through a switch at any instruction: after the stack
 * pointer moves, the frame described is the resumed context's, which has
 * the same layout; after the last pop the return address is in rcx.
 * The start stub leads them on into the coroutine's resumer
 * (arch/interface.h); the portable modes' entry stub marks itself the
 * outermost frame.
 *
 * Included through cc_switch.h; continuation.c defines
 * UCORO_ARCH_IMPLEMENTATION to emit the assembly once. In the portable
 * modes only the entry stub (ucoro__enter_stack) is used.
 *
 * SPDX-License-Identifier: MIT OR Apache-2.0
 */
#ifndef UCORO_ARCH_X86_64_H
#define UCORO_ARCH_X86_64_H

#include <stddef.h>
#include <stdint.h>

#include "../ucoro_internal.h"

#ifdef UCORO_SWITCH_ASM_WANTED
#define UCORO_SWITCH_ASM 1
#define UCORO_SWITCH_NAME "x86_64 assembly"
#define UCORO_ARCH_FP_LINK 1 /* rbp -> {rbp, return address} */
#define UCORO_ARCH_CRATE_START 1 /* ucoro__crate_start_stub (arch/interface.h) */
#endif
#include "interface.h"

#ifdef UCORO_SWITCH_ASM
/* A saved context's size: the CFA of its frame is the saved sp + 56. */
#define UCORO_X86_FRAME 56

/*
 * Makes the top of [stack, stack + size) a saved context whose resumption
 * runs the start stub `stub` (ucoro__start_stub or ucoro__crate_start_stub)
 * with rbx = start_arg and a 16-byte aligned stack, and above the stub's
 * stack pointer the fake context of arch/interface.h (its rbp 0, its
 * return address ucoro__no_resumer; its other slots are only ever read as
 * the registers of that outermost frame).
 */
static inline void *ucoro_arch_prepare_stub(char *stack, size_t size, void *start_arg,
                                            void ***fp_link, void (*stub)(void))
{
    uintptr_t top = ((uintptr_t)stack + size) & ~(uintptr_t)15;
    /* The stub runs with rsp = top - 64, aligned as its call needs, the
     * fake context in [rsp, rsp + 56); the context below it is popped by
     * the switch (6 registers and the return address). */
    void **fake = (void **)(top - 64);
    void **sp = fake - 7;

    sp[0] = NULL;                       /* r15 */
    sp[1] = NULL;                       /* r14 */
    sp[2] = NULL;                       /* r13 */
    sp[3] = NULL;                       /* r12 */
    sp[4] = start_arg;                  /* rbx: the continuation */
    sp[5] = &fake[5];                   /* rbp: the fake frame record */
    sp[6] = (void *)((uintptr_t)stub + 1); /* "return address": past its nop */
    fake[5] = NULL;                     /* rbp: the link slot (0: no resumer yet) */
    fake[6] = (void *)(uintptr_t)ucoro__no_resumer; /* return address */
    *fp_link = &fake[5];
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
    ".type " UCORO_ASM_SYMBOL(ucoro__enter_stack) ",@function\n"
UCORO_ASM_SYMBOL(ucoro__enter_stack) ":\n"            /* rdi = cc, rsi = top */
    ".cfi_startproc\n"
    ".cfi_undefined rip\n"         /* the outermost frame: unwinders stop */
    "movq %rsi, %rsp\n"
    "xorl %ebp, %ebp\n"            /* and frame-pointer walkers too */
    "callq " UCORO_ASM_SYMBOL(ucoro__cc_entry) "\n"      /* rsp is 16-byte aligned: never returns */
    "ud2\n"
    ".cfi_endproc\n"
    ".size " UCORO_ASM_SYMBOL(ucoro__enter_stack) ", .-" UCORO_ASM_SYMBOL(ucoro__enter_stack) "\n");
#else

/* Where a saved context keeps each register relative to its CFA (just
 * above the return address): sp -> r15 ... rbp, return address. */
#define UCORO_X86_CFI_SLOTS      \
    ".cfi_offset r15, -56\n"     \
    ".cfi_offset r14, -48\n"     \
    ".cfi_offset r13, -40\n"     \
    ".cfi_offset r12, -32\n"     \
    ".cfi_offset rbx, -24\n"     \
    ".cfi_offset rbp, -16\n"
/* A start stub's CFA: the resumer's context, or the fake one at rsp. */
#define UCORO_X86_STUB_CFA UCORO_STUB_LINKED_CFA(3 /* rbx */, 7 /* rsp */, 0, UCORO_X86_FRAME)
/* The same, for the running context: sp is the saved sp. */
#define UCORO_X86_CFI_SAVED      \
    ".cfi_def_cfa_offset 56\n"   \
    UCORO_X86_CFI_SLOTS
/* Saves a callee-saved register into its slot at CFA + offset, the CFI
 * following the stack pointer at every instruction. */
#define UCORO_X86_PUSH(reg, offset)                   \
    "pushq %" reg "\n"                                \
    ".cfi_adjust_cfa_offset 8\n"                      \
    ".cfi_offset " reg ", " offset "\n"
/* Loads one back: from the next instruction on, the register holds the
 * value of the frame the CFI describes (the resumed context's). */
#define UCORO_X86_POP(reg)                            \
    "popq %" reg "\n"                                 \
    ".cfi_adjust_cfa_offset -8\n"                     \
    ".cfi_restore " reg "\n"
/* Loads a saved context's six registers: sp -> r15 ... rbp, leaving sp
 * at its return address. */
#define UCORO_X86_RESTORE_REGISTERS                   \
    UCORO_X86_POP("r15")                              \
    UCORO_X86_POP("r14")                              \
    UCORO_X86_POP("r13")                              \
    UCORO_X86_POP("r12")                              \
    UCORO_X86_POP("rbx")                              \
    UCORO_X86_POP("rbp")
/* The same, and its return address into rcx. */
#define UCORO_X86_RESTORE                             \
    UCORO_X86_RESTORE_REGISTERS                       \
    "popq %rcx\n"              /* the return address */ \
    ".cfi_adjust_cfa_offset -8\n"                     \
    ".cfi_register rip, rcx\n"
/* The switch, emitted under two names (see ucoro__switch_back); link is
 * what the copy does with its fourth argument (see arch/interface.h). */
#define UCORO_X86_SWITCH(name, link)                                           \
    ".p2align 6\n"                                                            \
    ".globl " name "\n"                                                       \
    ".hidden " name "\n"                                                      \
    ".type " name ",@function\n"                                              \
    name ":\n" /* rdi = save, rsi = to, rdx = value */                        \
    ".cfi_startproc\n"                                                        \
    UCORO_X86_PUSH("rbp", "-16")                                              \
    UCORO_X86_PUSH("rbx", "-24")                                              \
    UCORO_X86_PUSH("r12", "-32")                                              \
    UCORO_X86_PUSH("r13", "-40")                                              \
    UCORO_X86_PUSH("r14", "-48")                                              \
    UCORO_X86_PUSH("r15", "-56")                                              \
    "movq %rsp, (%rdi)\n"    /* our context is complete */                    \
    link                                                                      \
    "movq %rsi, %rsp\n"      /* now on the other stack, same layout */        \
    "movq %rdx, %rax\n"      /* what the resumed call returns */              \
    UCORO_X86_RESTORE                                                         \
    "jmpq *%rcx\n"                                                            \
    ".cfi_endproc\n"                                                          \
    ".size " name ", .-" name "\n"
__asm__(
    ".text\n"
    /* rcx = fp_link: our frame record {rbp, return address} is at 40. */
    UCORO_X86_SWITCH(UCORO_ASM_SYMBOL(ucoro__switch),
                     "leaq 40(%rsp), %r8\n" "movq %r8, (%rcx)\n")
    UCORO_X86_SWITCH(UCORO_ASM_SYMBOL(ucoro__switch_back), "")

    ".p2align 4\n"
    ".globl " UCORO_ASM_SYMBOL(ucoro__switch_exit) "\n"
    ".hidden " UCORO_ASM_SYMBOL(ucoro__switch_exit) "\n"
    ".type " UCORO_ASM_SYMBOL(ucoro__switch_exit) ",@function\n"
UCORO_ASM_SYMBOL(ucoro__switch_exit) ":\n"            /* rdi = to, rsi = hook, rdx = arg */
    ".cfi_startproc\n"
    "movq %rdi, %rsp\n"            /* the old stack is abandoned */
    UCORO_X86_CFI_SAVED
    "subq $8, %rsp\n"              /* saved sp is 8 mod 16: align the call */
    ".cfi_adjust_cfa_offset 8\n"
    "movq %rdx, %rdi\n"
    "callq *%rsi\n"                /* hook(arg), below to's saved registers */
    "addq $8, %rsp\n"
    ".cfi_adjust_cfa_offset -8\n"
    UCORO_X86_RESTORE              /* rax: hook's result */
    "jmpq *%rcx\n"
    ".cfi_endproc\n"
    ".size " UCORO_ASM_SYMBOL(ucoro__switch_exit) ", .-" UCORO_ASM_SYMBOL(ucoro__switch_exit) "\n"

    /* The frame above: the resumer's, or the fake context at rsp. */
    UCORO_START_STUB_HEAD(ucoro__start_stub, "@function", UCORO_X86_STUB_CFA, UCORO_X86_CFI_SLOTS)
    "movq %rbx, %rdi\n"
    "callq " UCORO_ASM_SYMBOL(ucoro__cc_entry) "\n"      /* never returns */
    "ud2\n"
    ".cfi_endproc\n"
    ".size " UCORO_ASM_SYMBOL(ucoro__start_stub) ", .-" UCORO_ASM_SYMBOL(ucoro__start_stub) "\n"

    /* The same frame; leaves by returning into the resumer's context
     * (arch/interface.h), all six registers loaded as by the switch. */
    UCORO_START_STUB_HEAD(ucoro__crate_start_stub, "@function", UCORO_X86_STUB_CFA,
                          UCORO_X86_CFI_SLOTS)
    "movq %rbx, %rdi\n"
    "callq " UCORO_ASM_SYMBOL(ucoro__crate_entry) "\n"  /* rax = the resumer's context */
    "movq %rax, %rsp\n"            /* on its stack: its frame from here */
    ".cfi_def_cfa rsp, 56\n"
    UCORO_X86_RESTORE_REGISTERS
    "xorl %eax, %eax\n"            /* what its switch returns: 0, an exit */
    "retq\n"
    ".cfi_endproc\n"
    ".size " UCORO_ASM_SYMBOL(ucoro__crate_start_stub) ", .-" UCORO_ASM_SYMBOL(ucoro__crate_start_stub) "\n"

    UCORO_NO_RESUMER_ASM(".p2align 4", "@function", "rip", "ud2"));
#undef UCORO_X86_SWITCH
#undef UCORO_X86_RESTORE
#undef UCORO_X86_RESTORE_REGISTERS
#undef UCORO_X86_POP
#undef UCORO_X86_PUSH
#undef UCORO_X86_CFI_SAVED
#undef UCORO_X86_STUB_CFA
#undef UCORO_X86_CFI_SLOTS
#endif /* UCORO_SWITCH_ASM: the switch, or else the entry stub */
/* clang-format on */
#endif /* UCORO_ARCH_IMPLEMENTATION */

#endif /* UCORO_ARCH_X86_64_H */
