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
#endif /* UCORO_SWITCH_ASM */

#endif /* UCORO_ARCH_INTERFACE_H */
