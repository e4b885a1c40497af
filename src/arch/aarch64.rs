//! The inline switch on AArch64 (AAPCS64), on the C switch's context layout
//! (csrc/arch/aarch64.h): a switched-out context is its stack pointer, and
//! there, 160 bytes:
//!
//! ```text
//! saved sp -> [ d8 d9 ][ d10 d11 ][ d12 d13 ][ d14 d15 ]
//!             [ x19 x20 ][ x21 x22 ][ x23 x24 ][ x25 x26 ][ x27 x28 ]
//!             [ x29 (frame pointer) x30 (return address) ]
//! ```
//!
//! Only x19, x29 and x30 are stored and loaded here (`asm!` may not name
//! x19 and x29); d8-d15 and x20-x28 are declared clobbered, so the
//! compiler saves those it uses once per function, and their slots are
//! reserved and left as they are, so that gdb and the C library read the
//! layout they expect. Nothing the inline switch resumes needs the other
//! registers back: a context `switch_out` saved was saved with them
//! clobbered, a fresh context (`ucoro__crate_prepare`) starts the stub with
//! only x19, x29 and x30, and a coroutine of the safe API never suspends
//! through the C switch except for good (`suspend_for_good`, never
//! resumed).
//!
//! What a resume returns rides in x0, as in the C switch: a suspend leaves
//! there the (non-null) address its context was saved to, an exit 0 (the
//! crate's start stub, `ucoro__crate_start_stub`, or the C exit hook's
//! NULL).
//!
//! Resume enters the stub with `bl` and the stub jumps into the coroutine
//! with `br`; suspend returns into the resumer with `ret` to the address
//! that `bl` set, so the return-address stack stays balanced. The C switch
//! uses `ret` both ways because `br` to a return address is refused where
//! branch target identification (BTI) is enforced; build.rs takes the C
//! switch instead when the Rust code is built with branch protection
//! (without it the executable is never BTI-enforced).

use std::arch::{asm, global_asm};
use std::ffi::c_void;

/// The address of the C library's `ucoro__thread_state` in this thread:
/// the thread pointer plus the variable's initial-exec offset from the GOT,
/// as the C library's own accesses compute it. A volatile `asm!` that the
/// compiler cannot merge with a read made on the other side of a switch,
/// where the coroutine may run on another thread.
#[inline(always)]
pub(super) fn thread_state() -> *mut u8 {
    let t: *mut u8;
    // SAFETY: reads the thread pointer and a GOT entry the linker filled;
    // writes only the output registers. The symbol is hidden in the C
    // library, which is linked statically into the same output.
    unsafe {
        asm!(
            "mrs {t}, tpidr_el0",
            "adrp {o}, :gottprel:ucoro__thread_state",
            "ldr {o}, [{o}, #:gottprel_lo12:ucoro__thread_state]",
            "add {t}, {t}, {o}",
            t = out(reg) t,
            o = out(reg) _,
            options(nostack, preserves_flags, readonly),
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
// ucoro__crate_switch_in: called with `bl` by `switch_in`; saves the
// running context into *x0 (its frame record's address into *x2: the
// frame-pointer link), restores the context x1 (its x19, x29 and x30) and
// branches to its return address.
//
// ucoro__crate_switch_out: branched to by `switch_out` with the address to
// resume at in x9; saves the running context into *x0 and returns with
// `ret` into the context x1, which `ucoro__crate_switch_in` saved: to the
// address its caller's `bl` set, which is what the return-address
// predictor expects, with x0 (non-null) as the call's result.
global_asm!(
    ".text",
    ".p2align 4",
    ".globl ucoro__crate_switch_in",
    ".hidden ucoro__crate_switch_in",
    ".type ucoro__crate_switch_in,%function",
    "ucoro__crate_switch_in:",
    ".cfi_startproc",
    "sub sp, sp, #160",
    ".cfi_def_cfa_offset 160",
    "str x19, [sp, #64]",
    ".cfi_offset x19, -96",
    "stp x29, x30, [sp, #144]",
    ".cfi_offset x29, -16",
    ".cfi_offset x30, -8",
    "mov x9, sp",
    "str x9, [x0]",
    "add x9, x9, #144", // our frame record {x29, x30}
    "str x9, [x2]",
    // The other context's x19, x29 and x30, while the CFI still reads
    // ours; its other slots are not loaded: nothing the stub resumes
    // needs them (see the module's docs).
    "ldr x19, [x1, #64]",
    "ldp x29, x30, [x1, #144]",
    "add sp, x1, #160",
    ".cfi_def_cfa_offset 0",
    ".cfi_restore x19",
    ".cfi_restore x29",
    ".cfi_restore x30",
    "br x30",
    ".cfi_endproc",
    ".size ucoro__crate_switch_in, .-ucoro__crate_switch_in",
    "",
    ".p2align 4",
    ".globl ucoro__crate_switch_out",
    ".hidden ucoro__crate_switch_out",
    ".type ucoro__crate_switch_out,%function",
    "ucoro__crate_switch_out:",
    ".cfi_startproc",
    ".cfi_def_cfa sp, 0", // entered by a branch, the return address in x9
    ".cfi_register x30, x9",
    "sub sp, sp, #160",
    ".cfi_def_cfa_offset 160",
    "str x19, [sp, #64]",
    ".cfi_offset x19, -96",
    "stp x29, x9, [sp, #144]",
    ".cfi_offset x29, -16",
    ".cfi_offset x30, -8",
    "mov x10, sp",
    "str x10, [x0]",
    "ldr x19, [x1, #64]", // the resumer's, while the CFI still reads ours
    "ldp x29, x30, [x1, #144]",
    "add sp, x1, #160", // the resumer's frame, its registers loaded
    ".cfi_def_cfa_offset 0",
    ".cfi_restore x19",
    ".cfi_restore x29",
    ".cfi_restore x30",
    "ret",
    ".cfi_endproc",
    ".size ucoro__crate_switch_out, .-ucoro__crate_switch_out",
);

/// Saves the running context into `*save`, writes the address of its
/// frame record to `*fp_link`, resumes the context `to`; returns when
/// something resumes the saved context (to the address `bl` set), with
/// whether that was a suspend (`switch_out`) rather than an exit.
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
    // SAFETY: the caller's contract. sp is 16-byte aligned in `asm!`, and
    // so is the saved sp. Every register the other side may change is an
    // output or clobbered: the C ABI's caller-saved ones (x30 among them),
    // x20-x28 and d8-d15 (the whole of v8-v15); x19 and x29 are saved and
    // restored by the stub. Memory is clobbered (no `nomem`).
    unsafe {
        asm!(
            "bl ucoro__crate_switch_in",
            inlateout("x0") save => resumed_by,
            in("x1") to,
            in("x2") fp_link,
            out("x20") _, out("x21") _, out("x22") _, out("x23") _, out("x24") _,
            out("x25") _, out("x26") _, out("x27") _, out("x28") _,
            clobber_abi("C"),
        );
    }
    resumed_by != 0
}

/// Saves the running context into `*save` with the address after this
/// block as its return address, and returns with `ret` into the resumer's
/// context `to`, which a `switch_in` saved (x30 there is the address its
/// `bl` set), and which returns true (x0 is `save`).
///
/// # Safety
/// `to` is the context a `switch_in` saved for the resumer (marked
/// consumed), `save` is writable and not null.
#[inline(always)]
pub(super) unsafe fn switch_out(save: *mut *mut c_void, to: *mut c_void) {
    // SAFETY: as in `switch_in`. The resumer's context holds valid x19,
    // x29 and x30 (its other slots are not ours to need: `switch_in`
    // declared those registers clobbered). Execution comes back at `2:`
    // with sp as it is here; `bti j` (a no-op hint where BTI is off) marks
    // it as the target of the stub's `br`.
    unsafe {
        asm!(
            "adr x9, 2f",
            "b ucoro__crate_switch_out",
            "2:",
            "hint #36",
            in("x0") save,
            in("x1") to,
            out("x20") _, out("x21") _, out("x22") _, out("x23") _, out("x24") _,
            out("x25") _, out("x26") _, out("x27") _, out("x28") _,
            clobber_abi("C"),
        );
    }
}
