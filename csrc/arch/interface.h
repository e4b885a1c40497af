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
UCORO_HIDDEN UCORO_ARCH_SWITCH_CALL void *ucoro__switch(void **save, void *to, void *value);

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
 * ucoro__cc_entry with the continuation prepare stored, never returns. */
UCORO_HIDDEN void ucoro__start_stub(void);

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
 *     CFA  = (ctx ? ctx : fake) + UCORO_ARCH_FRAME
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

/* clang-format off */
/* Operands as .cfi_escape bytes: LEB128 in two bytes, whatever the value
 * (0 <= v < 8192; a longer form than needed is valid), so that the
 * expression has the same length, and branches the same offsets, on every
 * architecture; DW_OP_bra/skip offsets in the target's byte order. */
#define UCORO_DW_LEB2(v) "((" UCORO_ASM_STRING(v) ") & 0x7f) | 0x80, (" UCORO_ASM_STRING(v) ") >> 7"
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define UCORO_DW_S16(v) "0, " #v
#else
#define UCORO_DW_S16(v) #v ", 0"
#endif

/*
 * The stub's CFA rule, for cc in DWARF register cc_reg, the stack pointer
 * in sp_reg (its value in the stub's frame, as unwinders recover it),
 * the fake context at sp + fake_offset and a saved context's CFA at
 * ctx + frame (all literal numbers). 28 bytes: DW_CFA_def_cfa_expression,
 * the length (26), then
 *
 *     DW_OP_breg<cc> return_to; DW_OP_deref     link
 *     DW_OP_dup; DW_OP_bra +3                   link != 0: to L1
 *     DW_OP_skip +4                             to L2 with 0
 *  L1 DW_OP_plus_uconst ctx; DW_OP_deref        link->ctx
 *  L2 DW_OP_dup; DW_OP_bra +4                   non-zero: to L3
 *     DW_OP_drop; DW_OP_breg<sp> fake_offset    the fake context
 *  L3 DW_OP_plus_uconst frame                   the CFA
 */
#define UCORO_STUB_LINKED_CFA(cc_reg, sp_reg, fake_offset, frame)                  \
    ".cfi_escape 0x0f, 26, "                                                    \
    "0x70 + " #cc_reg ", " UCORO_DW_LEB2(UCORO_CC_RETURN_TO_OFFSET) ", 0x06, "   \
    "0x12, 0x28, " UCORO_DW_S16(3) ", "                                          \
    "0x2f, " UCORO_DW_S16(4) ", "                                                \
    "0x23, " UCORO_DW_LEB2(UCORO_CC_CTX_OFFSET) ", 0x06, "                       \
    "0x12, 0x28, " UCORO_DW_S16(4) ", "                                          \
    "0x13, 0x70 + " #sp_reg ", " UCORO_DW_LEB2(fake_offset) ", "                 \
    "0x23, " UCORO_DW_LEB2(frame) "\n"
/* clang-format on */
#endif /* UCORO_SWITCH_ASM */

#endif /* UCORO_ARCH_INTERFACE_H */
