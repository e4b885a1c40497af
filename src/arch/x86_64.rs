//! The inline switch on x86_64 (System V), on the C switch's context
//! layout (csrc/arch/x86_64.h): a switched-out context is its stack
//! pointer, and there
//!
//! ```text
//! saved sp -> [ r15 ][ r14 ][ r13 ][ r12 ][ rbx ][ rbp ][ return address ]
//! ```
//!
//! The C switch stores and loads all six registers; here only rbx and rbp
//! are (`asm!` may not name them), and r12-r15 are declared clobbered
//! instead, so the compiler saves them once per function if it uses them
//! at all; their slots are reserved and left as they are, so that gdb and
//! the C library read the layout they expect. Nothing the inline switch
//! resumes needs its r12-r15 back: a context `switch_out` saved was saved
//! with them clobbered, a fresh context (`ucoro__crate_prepare`) starts
//! the stub with only rbx and rbp, and a coroutine of the safe API never
//! suspends through the C switch except for good (`suspend_for_good`,
//! never resumed). Suspending loads only rbx and rbp too: the resumer's
//! context is always one that `switch_in` saved.
//!
//! What a resume returns rides in rax, as in the C switch: a suspend
//! leaves there the (non-null) address its context was saved to, an exit
//! 0 (the crate's start stub, `ucoro__crate_start_stub`, or the C exit
//! hook's NULL).

use std::arch::{asm, global_asm};
use std::ffi::c_void;

/// The address of the C library's `ucoro__thread_state` in this thread,
/// read the way the C library reads it (csrc/coroutine_ucontext.c): the
/// thread pointer, plus the variable's initial-exec offset from the GOT.
/// A volatile `asm!` that the compiler cannot merge with a read made on the
/// other side of a switch, where the coroutine may run on another thread.
#[inline(always)]
pub(super) fn thread_state() -> *mut u8 {
    let t: *mut u8;
    // SAFETY: reads the thread pointer and a GOT entry the linker filled;
    // writes only the output register. The symbol is hidden in the C
    // library, which is linked statically into the same output.
    unsafe {
        asm!(
            "movq %fs:0, {t}",
            "addq ucoro__thread_state@gottpoff(%rip), {t}",
            t = out(reg) t,
            options(att_syntax, nostack, readonly),
        );
    }
    t
}

// The two halves of the switch, as functions with CFI right at every
// instruction (a signal may interrupt them anywhere, and its handler may
// take a backtrace): the inline `asm!` around them never moves the stack
// pointer. Once on the other stack, the CFI describes the context resumed
// there, whose layout is the same.
//
// ucoro__crate_switch_in: called by `switch_in`; saves the running context
// into *rdi (its frame record's address into *rdx: the frame-pointer link)
// and resumes the context rsi (its rbx and rbp), jumping to its return
// address.
//
// ucoro__crate_switch_out: jumped to by `switch_out` with the address to
// resume at in rcx; saves the running context into *rax and returns with
// `ret` into the context rsi, which `ucoro__crate_switch_in` saved: to the
// address its caller's `call` pushed, which is what the return-address
// predictor expects, with rax (non-null) as the call's result.

/// The tail both stubs share: from the resumer's saved context at rsi,
/// past its r12-r15 slots, rbx and rbp back, with the CFI of that
/// context (its return address at the top of the stack afterwards).
macro_rules! load_resumer_rbx_rbp {
    () => {
        concat!(
            "leaq 32(%rsi), %rsp\n",
            ".cfi_def_cfa_offset 24\n",
            ".cfi_offset %rbx, -24\n",
            ".cfi_offset %rbp, -16\n",
            ".cfi_offset %rip, -8\n",
            "popq %rbx\n",
            ".cfi_adjust_cfa_offset -8\n",
            ".cfi_restore %rbx\n",
            "popq %rbp\n",
            ".cfi_adjust_cfa_offset -8\n",
            ".cfi_restore %rbp\n",
        )
    };
}

global_asm!(
    ".text",
    ".p2align 4",
    ".globl ucoro__crate_switch_in",
    ".hidden ucoro__crate_switch_in",
    ".type ucoro__crate_switch_in,@function",
    "ucoro__crate_switch_in:",
    ".cfi_startproc",
    "pushq %rbp",
    ".cfi_adjust_cfa_offset 8",
    ".cfi_offset %rbp, -16",
    "pushq %rbx",
    ".cfi_adjust_cfa_offset 8",
    ".cfi_offset %rbx, -24",
    "subq $32, %rsp", // r12-r15: clobbered by the caller, slots only
    ".cfi_adjust_cfa_offset 32",
    "movq %rsp, (%rdi)",
    "leaq 40(%rsp), %rax", // our frame record {rbp, return address}
    "movq %rax, (%rdx)",
    // The other context: its r12-r15 are not loaded, nothing the stub
    // resumes needs them (see the module's docs).
    load_resumer_rbx_rbp!(),
    "popq %rcx",
    ".cfi_adjust_cfa_offset -8",
    ".cfi_register %rip, %rcx",
    "jmpq *%rcx",
    ".cfi_endproc",
    ".size ucoro__crate_switch_in, .-ucoro__crate_switch_in",
    "",
    ".p2align 4",
    ".globl ucoro__crate_switch_out",
    ".hidden ucoro__crate_switch_out",
    ".type ucoro__crate_switch_out,@function",
    "ucoro__crate_switch_out:",
    ".cfi_startproc",
    ".cfi_def_cfa %rsp, 0", // entered by a jump: no return address pushed
    ".cfi_register %rip, %rcx",
    "pushq %rcx",
    ".cfi_adjust_cfa_offset 8",
    ".cfi_offset %rip, -8",
    "pushq %rbp",
    ".cfi_adjust_cfa_offset 8",
    ".cfi_offset %rbp, -16",
    "pushq %rbx",
    ".cfi_adjust_cfa_offset 8",
    ".cfi_offset %rbx, -24",
    "subq $32, %rsp",
    ".cfi_adjust_cfa_offset 32",
    "movq %rsp, (%rax)",
    load_resumer_rbx_rbp!(),
    "retq",
    ".cfi_endproc",
    ".size ucoro__crate_switch_out, .-ucoro__crate_switch_out",
    options(att_syntax),
);

/// Saves the running context into `*save`, writes the address of its
/// frame record to `*fp_link`, resumes the context `to`; returns when
/// something resumes the saved context (with `ret`, or the C switch's
/// jump: to the address the `call` pushed), with whether that was a
/// suspend (`switch_out`) rather than an exit.
///
/// # Safety
/// `to` is a switched-out context (its owner already marked it consumed)
/// that was saved by `switch_out` or prepared by the C side, `save` and
/// `fp_link` are writable. The resumed side must one day resume the
/// context saved here, on this thread's behalf, or never.
#[inline(always)]
pub(super) unsafe fn switch_in(
    save: *mut *mut c_void,
    to: *mut c_void,
    fp_link: *mut *mut c_void,
) -> bool {
    let resumed_by: usize;
    // SAFETY: the caller's contract. The stack pointer is 16-byte aligned
    // here (no `nostack`), so the saved sp is 8 mod 16 as in the C switch.
    // Every register the other side may change is an output or clobbered:
    // the C ABI's caller-saved ones and r12-r15; rbx and rbp are saved and
    // restored by the stub. Memory is clobbered (no `nomem`): what the
    // other side wrote is read afresh.
    unsafe {
        asm!(
            "call ucoro__crate_switch_in",
            in("rdi") save,
            in("rsi") to,
            in("rdx") fp_link,
            lateout("rax") resumed_by,
            out("r12") _,
            out("r13") _,
            out("r14") _,
            out("r15") _,
            clobber_abi("C"),
        );
    }
    resumed_by != 0
}

/// Saves the running context into `*save` with the address after this
/// block as its return address, resumes the context `to` and returns into
/// it with `ret`: `to` is the context of the `switch_in` that resumed us,
/// whose call pushed that address, and which returns true.
///
/// # Safety
/// `to` is the context a `switch_in` saved for the resumer (marked
/// consumed), `save` is writable and not null.
#[inline(always)]
pub(super) unsafe fn switch_out(save: *mut *mut c_void, to: *mut c_void) {
    // SAFETY: as in `switch_in`; the stack pointer is 16-byte aligned
    // here, and after the stub's pushes of the return address, rbp, rbx
    // and the four slots it is 8 mod 16, the layout above. The resumer's
    // context holds valid rbx and rbp (its r12-r15 slots are not ours to
    // need: `switch_in` declared those registers clobbered). Execution
    // comes back at `2:` with the stack pointer as it is here.
    unsafe {
        asm!(
            "leaq 2f(%rip), %rcx",
            "jmp ucoro__crate_switch_out",
            "2:",
            in("rax") save,
            in("rsi") to,
            out("r12") _,
            out("r13") _,
            out("r14") _,
            out("r15") _,
            clobber_abi("C"),
            options(att_syntax),
        );
    }
}
