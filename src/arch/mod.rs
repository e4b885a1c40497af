//! The safe API's switch: resume and suspend of a Rust coroutine, on the C
//! library's stacks, context layout and bookkeeping.
//!
//! Where `build.rs` sets `ucoro_inline_switch` (x86_64 and aarch64 with the
//! C library's assembly switch, no sanitizer), every resume and suspend is
//! inlined into the caller: the bookkeeping below in Rust, the register
//! switch in `asm!` (`x86_64.rs`, `aarch64.rs`); the C side prepares a
//! coroutine's first context when it is created. Resume
//! enters with a call and suspend leaves with a return to that call's
//! address, so the CPU's return-address predictor stays balanced; the
//! callee-saved registers the compiler may allocate are declared clobbered,
//! so it saves only those it uses, once per function. Everywhere else, one
//! C entry point per direction (`ucoro__crate_resume`,
//! `ucoro__crate_suspend` in csrc/coroutine_ucontext.c), without the checks
//! that the safe API's types make unnecessary.
//!
//! What the C side reads stays as the C switch leaves it, so the rest of
//! the library cannot tell the two apart: the thread's running coroutine
//! (`coroutine_self()`), `caller` (which the registry gdb's `ucoro list`
//! walks shows, and which `ucoro_destroy` checks), the continuation's
//! `ctx` (0 while running, the saved stack pointer while switched out),
//! `return_to` (the resumer link that backtraces follow through the start
//! stub's CFI) and the frame-pointer link (csrc/arch/interface.h). A
//! context saved here has the C switch's layout, so the C side can resume
//! it (a coroutine's exit returns through `ucoro__switch_exit`) and gdb can
//! unwind it; the inline switch resumes contexts it saved itself and the
//! first one the C side prepares, loading only the registers those need
//! (see `x86_64.rs`). The fields are the C header's, through the bindings:
//! one definition of the layout.
//!
//! Per round trip the safe API adds to the switch: the two
//! `thread::panicking()` checks its unwinding rules need, and the values
//! in transit, handed over untagged (the switch's result register tells a
//! suspend from an exit, see `coroutine.rs`'s `Header`).

use std::ffi::c_void;
use std::ptr;
#[cfg(ucoro_inline_switch)]
use std::ptr::addr_of_mut;

use crate::sys::coroutine;

#[cfg(all(ucoro_inline_switch, target_arch = "aarch64"))]
mod aarch64;
#[cfg(all(ucoro_inline_switch, target_arch = "aarch64"))]
use aarch64 as machine;
#[cfg(all(ucoro_inline_switch, target_arch = "x86_64"))]
mod x86_64;
#[cfg(all(ucoro_inline_switch, target_arch = "x86_64"))]
use x86_64 as machine;

extern "C" {
    /// Switches into `co` as its caller; returns when it suspends or
    /// exits, with what the suspend handed over (NULL for an exit). `co`
    /// must be live, not exited, not running and not waiting
    /// in a resume (nothing is checked). `arg` is the entry's argument on
    /// the first switch.
    #[cfg_attr(ucoro_inline_switch, allow(dead_code))]
    fn ucoro__crate_resume(co: *mut coroutine, arg: *mut c_void) -> *mut c_void;
    /// Suspends `co` back to its caller; NULL at once (no switch) unless
    /// `co` is this thread's running coroutine, else `arg` when resumed.
    fn ucoro__crate_suspend(co: *mut coroutine, arg: *mut c_void) -> *mut c_void;
    /// Where this thread's running coroutine is kept, its main coroutine
    /// made first if the thread has none yet.
    #[cfg_attr(not(ucoro_inline_switch), allow(dead_code))]
    fn ucoro__crate_current() -> *mut *mut coroutine;
    /// Makes `co`, fresh from `ucoro_create`, a switched-out context that
    /// starts its entry with `arg`.
    #[cfg_attr(not(ucoro_inline_switch), allow(dead_code))]
    fn ucoro__crate_prepare(co: *mut coroutine, arg: *mut c_void);
    /// `ucoro_destroy` without its checks; `co` must not be running nor
    /// waiting in a resume.
    fn ucoro__crate_destroy(co: *mut coroutine);
}

/// Frees a coroutine made by `ucoro_create`: its stack, with the C struct
/// and the crate's block on it.
///
/// # Safety
/// `co` was made by `ucoro_create`, is not destroyed, and is not running
/// nor waiting in a resume; nothing uses it or its stack afterwards.
#[inline]
pub(crate) unsafe fn destroy(co: *mut coroutine) {
    // SAFETY: the caller's contract is the C function's.
    unsafe { ucoro__crate_destroy(co) }
}

/// Readies a coroutine fresh from `ucoro_create` for its first resume,
/// whose input the entry finds at `arg`.
///
/// # Safety
/// `co` was just made by `ucoro_create` and never switched into.
#[inline]
pub(crate) unsafe fn prepare(co: *mut coroutine, arg: *mut c_void) {
    // SAFETY: the caller's contract is the C function's. Where the switch
    // is not inlined, the first resume through C prepares it instead.
    #[cfg(ucoro_inline_switch)]
    unsafe {
        ucoro__crate_prepare(co, arg)
    };
    let _ = (co, arg);
}

/// Where this thread keeps its running coroutine, for [`resume`] and
/// [`suspend`] to read and write without finding it afresh each time. The
/// thread's main coroutine is made now if it has none, so the slot is
/// never empty afterwards (the C library never empties it). A slot is only
/// good on the thread that asked for it: every coroutine of the safe API
/// is `!Send` and keeps the slot of the thread that made it.
#[derive(Clone, Copy)]
pub(crate) struct Slot(*mut *mut coroutine);

impl Slot {
    /// This thread's slot.
    #[inline]
    pub(crate) fn of_this_thread() -> Self {
        #[cfg(ucoro_inline_switch)]
        {
            let slot = current_slot();
            // SAFETY: slot is this thread's (just read from its thread
            // pointer); reading it is a plain load.
            if unsafe { *slot }.is_null() {
                first_current();
            }
            Slot(slot)
        }
        #[cfg(not(ucoro_inline_switch))]
        {
            // The C entry points find the thread's state themselves.
            Slot(ptr::null_mut())
        }
    }
}

/// Switches into `co`, which runs until it suspends or exits; true if it
/// suspended with a value ([`suspend`]), false if it exited or stopped for
/// good ([`suspend_for_good`]).
///
/// # Safety
/// `co` was made by `ucoro_create` and readied by [`prepare`], is not
/// destroyed, has not exited, is not running (on any thread) and is not
/// waiting in a resume. `slot` is this thread's. `arg` is what a first
/// switch through C hands the entry.
#[inline(always)]
pub(crate) unsafe fn resume(co: *mut coroutine, slot: Slot, arg: *mut c_void) -> bool {
    // SAFETY: the caller's contract, which is the inline resume's (the
    // prepared first context is a switched-out one) and the C entry
    // point's.
    #[cfg(ucoro_inline_switch)]
    unsafe {
        let _ = arg;
        resume_inline(co, slot.0)
    }
    #[cfg(not(ucoro_inline_switch))]
    unsafe {
        let _ = slot;
        // What a suspend hands back is never NULL (`suspend` passes a
        // dangling pointer); an exit or `suspend_for_good` hands NULL.
        !ucoro__crate_resume(co, arg).is_null()
    }
}

/// Suspends `co` back to whoever resumed it, telling it that a value
/// waits; returns true once resumed, false at once (nothing happened) if
/// `co` is not this thread's running coroutine.
///
/// # Safety
/// `co` was made by `ucoro_create` and is not destroyed (it is, when it is
/// the running coroutine, at least until it suspends); `slot` is this
/// thread's.
#[inline(always)]
pub(crate) unsafe fn suspend(co: *mut coroutine, slot: Slot) -> bool {
    #[cfg(ucoro_inline_switch)]
    {
        // SAFETY: the caller's contract.
        unsafe { suspend_inline(co, slot.0) }
    }
    #[cfg(not(ucoro_inline_switch))]
    {
        let _ = slot;
        // SAFETY: the caller's contract; the C side checks that co runs.
        // What a resume hands over is never NULL (ours pass the crate's
        // block), so NULL can only mean refused.
        !unsafe { ucoro__crate_suspend(co, ptr::NonNull::dangling().as_ptr()) }.is_null()
    }
}

/// Suspends `co`, this thread's running coroutine, telling its resumer
/// that no value waits: the resume returns false, as after an exit.
/// Through the C entry point in every build (a cold path: the coroutine is
/// never resumed again); returns only if `co` is not the running coroutine
/// or if something resumes it after all.
///
/// # Safety
/// As for [`suspend`].
#[cold]
pub(crate) unsafe fn suspend_for_good(co: *mut coroutine) {
    // SAFETY: the caller's contract; the C side checks that co runs, and
    // hands the resumer NULL, the "no value" of `resume`.
    unsafe { ucoro__crate_suspend(co, ptr::null_mut()) };
}

/// This thread's slot for its running coroutine.
#[cfg(ucoro_inline_switch)]
#[inline(always)]
fn current_slot() -> *mut *mut coroutine {
    // `struct ucoro_thread` is { struct coroutine leader; struct coroutine
    // *current; } (C checks that `current` follows the leader).
    machine::thread_state()
        .wrapping_add(std::mem::size_of::<coroutine>())
        .cast()
}

/// Gives a thread that has not used the C library yet its main coroutine.
#[cfg(ucoro_inline_switch)]
#[cold]
#[inline(never)]
fn first_current() {
    // SAFETY: a plain call on this thread's state.
    unsafe { ucoro__crate_current() };
}

/// The inline resume: the bookkeeping of the C side's `switch_to` for a
/// started coroutine, then the register switch.
///
/// # Safety
/// As for [`resume`].
#[cfg(ucoro_inline_switch)]
#[inline(always)]
unsafe fn resume_inline(co: *mut coroutine, slot: *mut *mut coroutine) -> bool {
    // SAFETY: slot is this thread's and never empty (`Slot`); co is live
    // and switched out (the contract), so its saved context is valid to
    // resume, and from, the running coroutine, is live while it runs.
    // Every write is one the C switch makes (csrc/coroutine_ucontext.c
    // switch_to, cc_switch.h ucoro__cc_transfer).
    unsafe {
        let from = *slot;
        (*co).caller = from;
        *slot = co;
        (*co).cc.return_to = addr_of_mut!((*from).cc);
        let ctx = (*co).cc.ctx;
        (*co).cc.ctx = ptr::null_mut(); // consumed: co runs from now on
        machine::switch_in(addr_of_mut!((*from).cc.ctx), ctx, (*co).cc.fp_link)
    }
}

/// A suspend of `co`, which is not the running coroutine, refused as the
/// C side refuses it: with the diagnostic (through the handler a program
/// may have set) that every refusal gives.
#[cfg(ucoro_inline_switch)]
#[cold]
#[inline(never)]
fn refuse(co: *mut coroutine) {
    // SAFETY: co is not this thread's running coroutine, so
    // ucoro_yield_from switches nowhere: it reports and returns NULL.
    unsafe { crate::sys::ucoro_yield_from(co, ptr::NonNull::dangling().as_ptr()) };
}

/// The inline suspend: the bookkeeping of the C side's `yield_from`, then
/// the register switch back into the resumer.
///
/// # Safety
/// As for [`suspend`].
#[cfg(ucoro_inline_switch)]
#[inline(always)]
unsafe fn suspend_inline(co: *mut coroutine, slot: *mut *mut coroutine) -> bool {
    // SAFETY: slot is this thread's. When co is its running coroutine, co
    // has a caller (the safe API only runs it from a resume), which is
    // switched out in that resume: its context is valid to resume. Every
    // write is one the C side's yield makes (yield_from, ucoro__cc_return).
    unsafe {
        if *slot != co {
            refuse(co);
            return false;
        }
        let to = (*co).caller;
        (*co).caller = ptr::null_mut();
        *slot = to;
        (*co).cc.return_to = ptr::null_mut(); // suspended: nothing waits for it
        let ctx = (*to).cc.ctx;
        (*to).cc.ctx = ptr::null_mut();
        machine::switch_out(addr_of_mut!((*co).cc.ctx), ctx);
    }
    true
}

#[cfg(all(test, ucoro_inline_switch))]
mod tests {
    /// The one piece of C layout that the bindings do not carry: where
    /// `struct ucoro_thread` keeps the running coroutine.
    #[test]
    fn rust_finds_the_running_coroutine_where_the_c_library_keeps_it() {
        let check = || {
            // SAFETY: a plain call; both are this thread's addresses.
            let c_slot = unsafe { super::ucoro__crate_current() };
            assert_eq!(super::current_slot(), c_slot);
            assert_eq!(super::Slot::of_this_thread().0, c_slot);
        };
        check();
        std::thread::spawn(check).join().unwrap();
    }
}
