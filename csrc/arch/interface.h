/*
 * What each architecture header in csrc/arch/ provides, declared once.
 * An arch header defines UCORO_SWITCH_ASM (and UCORO_SWITCH_NAME) when it
 * supplies the switch in this build, and UCORO_ARCH_SWITCH_CALL where its
 * switch functions need a calling convention of their own (i386), then
 * includes this file; it then defines ucoro_arch_prepare and, under
 * UCORO_ARCH_IMPLEMENTATION, the assembly. arch/x86_64.h explains the
 * design; each header says what its ABI requires.
 *
 * SPDX-License-Identifier: MIT OR Apache-2.0
 */
#ifndef UCORO_ARCH_INTERFACE_H
#define UCORO_ARCH_INTERFACE_H

#include "../ucoro_internal.h"

/*
 * Moves onto a new stack (sp = top, 16-byte aligned, less whatever frame
 * the ABI wants a caller to leave) and calls ucoro__cc_entry(cc) there,
 * marked the outermost frame: how the portable modes enter a stack without
 * makecontext. Never returns. Emitted only in those modes.
 */
UCORO_HIDDEN __attribute__((noreturn)) void ucoro__enter_stack(void *cc, void *top);
#define UCORO_ARCH_ENTER_STACK 1

#ifdef UCORO_SWITCH_ASM
#ifndef UCORO_ARCH_SWITCH_CALL
#define UCORO_ARCH_SWITCH_CALL
#endif

/*
 * Saves the running context (callee-saved registers and the return
 * address) into *save and resumes the context to, whose pending
 * ucoro__switch call returns value. Returns the value handed over when
 * something resumes the saved context.
 */
#ifdef UCORO_ARCH_FP_LINK
/* Where the switch also links frame-pointer chains (see below): *fp_link
 * receives the address of the frame record in the context saved. */
UCORO_HIDDEN UCORO_ARCH_SWITCH_CALL void *ucoro__switch(void **save, void *to, void *value,
                                                        void **fp_link);
#define UCORO_SWITCH_IN(save, to, value, fp_link) ucoro__switch(save, to, value, fp_link)
#else
UCORO_HIDDEN UCORO_ARCH_SWITCH_CALL void *ucoro__switch(void **save, void *to, void *value);
#define UCORO_SWITCH_IN(save, to, value, fp_link) ucoro__switch(save, to, value)
#endif

/*
 * The same switch under a second name, used for the way back (yield to the
 * caller). Each copy's final indirect jump then has one usual target (the
 * resumed coroutine's yield site, or the resumer's yieldto site), which the
 * branch predictor learns; one shared jump alternating between the two is
 * predicted worse (about 0.5 ns per round trip on x86_64).
 */
UCORO_HIDDEN UCORO_ARCH_SWITCH_CALL void *ucoro__switch_back(void **save, void *to,
                                                             void *value);

/*
 * Abandons the running context, moves onto the context to, runs hook(arg)
 * there (so it may free the stack just left) and makes to's pending
 * ucoro__switch call return hook's result.
 */
UCORO_HIDDEN UCORO_ARCH_SWITCH_CALL __attribute__((noreturn)) void
ucoro__switch_exit(void *to, void *(*hook)(void *), void *arg);

/* First code on a stack that ucoro_arch_prepare made: calls
 * ucoro__cc_entry with the continuation prepare stored, never returns.
 * It begins with a nop that never runs: the prepared context "returns"
 * past it, so that an unwinder stopped in the first switch into the
 * stack, which looks its caller up at the return address - 1 (- 2 with
 * Arm EHABI), finds the stub's frame and not whatever precedes it. */
UCORO_HIDDEN void ucoro__start_stub(void);

#ifdef UCORO_ARCH_CRATE_START
/*
 * The start stub of the coroutines the Rust crate starts with its inlined
 * switch (ucoro__cc_prepare, ucoro__cc_rearm), where the architecture has
 * one: the same frame and CFI as ucoro__start_stub, but it calls
 * ucoro__crate_entry(cc), which runs the coroutine and returns the saved
 * context of its resumer, and then resumes that context with a return
 * (result 0: the coroutine exited). The resumer entered the crate's switch
 * with a call, so the return-address predictor sees every call of a
 * coroutine's life returned from: none is left behind to mispredict the
 * resumer's later returns, as an exit through ucoro__switch_exit's jump
 * does. Only such a coroutine, whose stack outlives its exit (its owner
 * frees it), may leave so: nothing runs on the resumer's stack first.
 */
UCORO_HIDDEN void ucoro__crate_start_stub(void);
/* Defined by the coroutine layer (coroutine_ucontext.c). Called from
 * assembly only, so link-time optimisation must keep it, under this name. */
UCORO_HIDDEN __attribute__((used, externally_visible)) void *ucoro__crate_entry(void *cc);
#endif

/* Never runs: the return address an unwinder finds above a start stub
 * whose coroutine has no resumer to show (see below); its CFI marks it the
 * outermost frame. */
UCORO_HIDDEN void ucoro__no_resumer(void);

/*
 * Linked backtraces. The start stub's frame is the first frame of every
 * coroutine; its CFI does not stop unwinders there but leads them into
 * the frames of whoever resumed the coroutine last, so a backtrace taken
 * in a coroutine goes on through its resumer (and the resumer's resumer,
 * ...) to main. The stub keeps its continuation cc in a callee-saved
 * register (so every unwinder can recover it), and its CFA is a DWARF
 * expression:
 *
 *     link = cc->return_to     the continuation that switched in last
 *     ctx  = link ? link->ctx  its saved context, 0 unless switched out
 *     CFA  = (ctx ? ctx : fake) + the saved context's size
 *
 * With the register rules of a saved context relative to that CFA (the
 * same as the switch's own CFI), the frame above the stub is the
 * resumer's, at its pending call into the library. return_to is written
 * on every switch in and cleared when the coroutine yields (cc_switch.h),
 * so that a suspended coroutine's chain ends at its stub: there, and
 * whenever the resumer is not switched out (it runs on another thread, or
 * is being resumed this instant), ctx is 0 and the expression falls back
 * to `fake`, a saved context at the top of the stack that
 * ucoro_arch_prepare wrote and nothing overwrites, whose return address is
 * ucoro__no_resumer: one more frame, marked outermost, and the walk ends
 * cleanly. No switch does more work for any of this.
 *
 * The stub is also marked a signal frame (.cfi_signal_frame): gdb refuses
 * a frame whose CFA lies below the next one's ("previous frame inner to
 * this frame") unless a signal frame is between, as happens with
 * sigaltstack; a coroutine's resumer may well run on a stack at a lower
 * address. The cost: unwinders look up the frame above the stub at its
 * return address rather than just before it (harmless: a call into the
 * library is never a function's last instruction), and gdb prints the
 * stub as "<signal handler called>" unless ucoro-gdb.py is loaded.
 *
 * Exceptions must not follow the same way: the frames above a stub are
 * not waiting for the coroutine to throw, and an exception caught there
 * would leave the library believing the coroutine still runs. So the
 * stubs have a personality routine (continuation.c; Arm EHABI's in
 * arch/arm.h) that ends the search phase of an exception there, as the
 * outermost frame did before (C++ then calls std::terminate), and lets a
 * forced unwind (a thread's exit or cancellation) go on. Backtraces call
 * no personality routine.
 *
 * Frame-pointer walkers (perf --call-graph fp, the kernel's and most
 * profilers' own) follow a chain of frame records instead, reading memory
 * only: they cannot evaluate an expression. Where an architecture keeps
 * such records (x86_64: rbp -> {rbp, return address}; aarch64: x29 ->
 * {x29, x30}) and its saved context holds its record in that layout, the
 * switch into a coroutine (ucoro__switch, not the way back) also writes
 * the address of the record it just saved into the coroutine's link slot,
 * cc->fp_link, which is the frame-pointer slot of the fake context; the
 * start stub begins with its frame pointer pointing at that slot. A walker
 * then goes from the coroutine's first frame through the fake record (one
 * frame: ucoro__no_resumer) into the resumer's saved record and on into
 * its frames. The cost is one store per switch in (UCORO_ARCH_FP_LINK).
 * Before the first switch in, and for a suspended coroutine, the slot
 * holds 0 or a record of a resumer that may have moved on: walkers sample
 * running code only, and gdb unwinds by CFI.
 *
 * Offsets the expression reads, checked against struct continuation in
 * continuation.c.
 */
#if __SIZEOF_POINTER__ == 8
#define UCORO_CC_RETURN_TO_OFFSET 40
#define UCORO_CC_CTX_OFFSET 48
#else
#define UCORO_CC_RETURN_TO_OFFSET 24
#define UCORO_CC_CTX_OFFSET 28
#endif

/* ucoro__no_resumer, in assembly: aligned by align (a directive), of
 * symbol type type ("@function" or "%function"), with the return address
 * register ra undefined (the outermost frame), its one instruction trap. */
#define UCORO_NO_RESUMER_ASM(align, type, ra, trap)                                \
    align "\n"                                                                 \
    ".globl " UCORO_ASM_SYMBOL(ucoro__no_resumer) "\n"                         \
    ".hidden " UCORO_ASM_SYMBOL(ucoro__no_resumer) "\n"                        \
    ".type " UCORO_ASM_SYMBOL(ucoro__no_resumer) "," type "\n"                 \
    UCORO_ASM_SYMBOL(ucoro__no_resumer) ":\n"                                  \
    ".cfi_startproc\n"                                                         \
    ".cfi_undefined " ra "\n"                                                  \
    trap "\n"                                                                  \
    ".cfi_endproc\n"                                                           \
    ".size " UCORO_ASM_SYMBOL(ucoro__no_resumer) ", .-" UCORO_ASM_SYMBOL(ucoro__no_resumer) "\n"

/* The stubs' DWARF personality routine (see above), pc-relative. */
#define UCORO_STUB_PERSONALITY \
    ".cfi_personality 0x1b, " UCORO_ASM_SYMBOL(ucoro__stub_personality) "\n"

/* The head of a start stub named name (ucoro__start_stub,
 * ucoro__crate_start_stub), of symbol type type: its frame's CFI (a signal
 * frame with the stubs' personality, the CFA rule cfa, normally
 * UCORO_STUB_LINKED_CFA, and the saved registers' rules slots), then the
 * nop that never runs: a fresh context "returns" past it, so that an
 * unwinder stopped in the switch on its way there, which looks its caller
 * up at the return address - 1, finds this frame. */
#define UCORO_START_STUB_HEAD(name, type, cfa, slots)                              \
    ".p2align 4\n"                                                              \
    ".globl " UCORO_ASM_SYMBOL(name) "\n"                                       \
    ".hidden " UCORO_ASM_SYMBOL(name) "\n"                                      \
    ".type " UCORO_ASM_SYMBOL(name) "," type "\n"                               \
    UCORO_ASM_SYMBOL(name) ":\n"                                                \
    ".cfi_startproc\n"                                                         \
    ".cfi_signal_frame\n"                                                      \
    UCORO_STUB_PERSONALITY                                                     \
    cfa                                                                        \
    slots                                                                      \
    "nop\n"

/* clang-format off */
/* Operands as .cfi_escape bytes: LEB128 in two bytes, whatever the value
 * (0 <= v < 8192; a longer form than needed is valid), so that the
 * expression has the same length on every architecture. */
#define UCORO_DW_LEB2(v) "((" UCORO_ASM_STRING(v) ") & 0x7f) | 0x80, (" UCORO_ASM_STRING(v) ") >> 7"

/* DWARF expression operators (DWARF 5, section 7.7.1). */
#define UCORO_DW_OP_DEREF "0x06"
#define UCORO_DW_OP_MUL "0x1e"
#define UCORO_DW_OP_PLUS "0x22"
#define UCORO_DW_OP_PLUS_UCONST "0x23"
#define UCORO_DW_OP_EQ "0x29"
#define UCORO_DW_OP_NE "0x2e"
#define UCORO_DW_OP_LIT0 "0x30"
#define UCORO_DW_OP_BREG(reg) "0x70 + " #reg

/*
 * The expression is branch-free, from operators every unwinder evaluates
 * (Valgrind's has no DW_OP_bra, dup or drop, and stops on any it lacks):
 * a choice is a sum of products with a comparison, and a value used twice
 * is computed twice. 26 bytes leave link->ctx (or 0) on the stack:
 *
 *   (link == 0) * &cc->return_to + (link != 0) * &link->ctx, dereferenced
 *
 * (both addresses are valid to read: when link is 0, so is
 * cc->return_to, whose address is read instead).
 */
#define UCORO_STUB_RESUMER_CTX(cc_reg)                                             \
    UCORO_DW_OP_BREG(cc_reg) ", " UCORO_DW_LEB2(UCORO_CC_RETURN_TO_OFFSET) ", "    \
    UCORO_DW_OP_DEREF ", " UCORO_DW_OP_LIT0 ", " UCORO_DW_OP_EQ ", "               \
    UCORO_DW_OP_BREG(cc_reg) ", " UCORO_DW_LEB2(UCORO_CC_RETURN_TO_OFFSET) ", "    \
    UCORO_DW_OP_MUL ", "                                                          \
    UCORO_DW_OP_BREG(cc_reg) ", " UCORO_DW_LEB2(UCORO_CC_RETURN_TO_OFFSET) ", "    \
    UCORO_DW_OP_DEREF ", " UCORO_DW_OP_LIT0 ", " UCORO_DW_OP_NE ", "               \
    UCORO_DW_OP_BREG(cc_reg) ", " UCORO_DW_LEB2(UCORO_CC_RETURN_TO_OFFSET) ", "    \
    UCORO_DW_OP_DEREF ", "                                                        \
    UCORO_DW_OP_PLUS_UCONST ", " UCORO_DW_LEB2(UCORO_CC_CTX_OFFSET) ", "           \
    UCORO_DW_OP_MUL ", " UCORO_DW_OP_PLUS ", " UCORO_DW_OP_DEREF

/*
 * The stub's CFA rule (DW_CFA_def_cfa_expression, 62 bytes), for cc in
 * DWARF register cc_reg, the stack pointer in sp_reg (its value in the
 * stub's frame, as unwinders recover it; both registers as literal
 * numbers), the fake context at sp + fake_offset and a saved context's
 * CFA at ctx + frame:
 *
 *   v = the resumer's ctx or 0 (above)
 *   CFA = v + (v == 0) * (sp + fake_offset) + frame
 */
#define UCORO_STUB_LINKED_CFA(cc_reg, sp_reg, fake_offset, frame)                  \
    ".cfi_escape 0x0f, 62, "                                                    \
    UCORO_STUB_RESUMER_CTX(cc_reg) ", "                                          \
    UCORO_STUB_RESUMER_CTX(cc_reg) ", " UCORO_DW_OP_LIT0 ", " UCORO_DW_OP_EQ ", " \
    UCORO_DW_OP_BREG(sp_reg) ", " UCORO_DW_LEB2(fake_offset) ", "                \
    UCORO_DW_OP_MUL ", " UCORO_DW_OP_PLUS ", "                                    \
    UCORO_DW_OP_PLUS_UCONST ", " UCORO_DW_LEB2(frame) "\n"
/* clang-format on */
#endif /* UCORO_SWITCH_ASM */

#endif /* UCORO_ARCH_INTERFACE_H */
