//! Unwinding across coroutine stacks: the payload that dropping a suspended
//! coroutine unwinds its stack with, and the repair of the thread's panic
//! count when a stack is abandoned while a panic unwinds it.
//!
//! Rust keeps one panic count per thread (`std::thread::panicking()` reads
//! it): a panic raises it when it starts and `catch_unwind` lowers it when it
//! catches. Coroutines share their thread's count. A panic that is unwinding
//! a coroutine's stack when that stack stops for good (it suspends from a
//! destructor and can never be resumed) is never caught, so the thread would
//! stay "panicking" forever: every `Mutex` it then unlocks is poisoned, every
//! `Drop` that checks `panicking()` takes its unwinding path. The count is
//! private to std, but it is lowered on whichever thread catches a panic and
//! raised on whichever thread starts one, and a coroutine can start on one
//! thread and finish on another: [`absorb_stuck_panics`] uses that to lower
//! this thread's count, one stuck panic at a time, with no access to std's
//! internals.

use std::any::TypeId;
use std::cell::Cell;
use std::ffi::c_void;
use std::marker::PhantomData;
use std::panic::{self, AssertUnwindSafe};
use std::ptr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;

use crate::sys;

/// The payload of the unwind that dropping a suspended coroutine starts on
/// its stack. It carries the id of that one drop, so that a payload user
/// code caught, kept and re-raised somewhere else is not mistaken for that
/// other coroutine's own forced unwind: there it is an ordinary panic.
pub(crate) struct ForcedUnwind(pub(crate) u64);

/// A fresh id for a forced unwind (never 0: 0 means "no forced unwind").
pub(crate) fn next_unwind_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// `()` as an `I`, if `I` is `()`: the one input a suspended-while-unwinding
/// coroutine can be given without a resumer. `I` may carry lifetimes (the
/// inputs of scoped coroutines): `()` has none, so `I` is `()` exactly when
/// its type with lifetimes erased is, which is what [`erased_type_id`] gives.
pub(crate) fn unit_input<I>() -> Option<I> {
    if erased_type_id::<I>() == TypeId::of::<()>() {
        // SAFETY: I is (), so this copies a () into a () (no bytes at all).
        Some(unsafe { std::mem::transmute_copy::<(), I>(&()) })
    } else {
        None
    }
}

/// The `TypeId` of `T` with its lifetimes erased (`TypeId::of` wants
/// `T: 'static`). A trait object's methods are compiled once per type with
/// lifetimes erased, so the `TypeId` that `PhantomData<T>`'s method returns
/// is the same for every lifetime `T` may carry.
fn erased_type_id<T>() -> TypeId {
    trait TypeIdOf {
        fn type_id_of(&self) -> TypeId
        where
            Self: 'static;
    }
    impl<T> TypeIdOf for PhantomData<T> {
        fn type_id_of(&self) -> TypeId
        where
            Self: 'static,
        {
            TypeId::of::<T>()
        }
    }
    let marker = PhantomData::<T>;
    let object: &dyn TypeIdOf = &marker;
    // SAFETY: only the lifetime bound of the trait object changes. The
    // method reads no data (`PhantomData` has none) and returns a `TypeId`,
    // which borrows nothing; codegen erases lifetimes, so the method
    // behind the vtable is the same whatever the bound says.
    let object: &(dyn TypeIdOf + 'static) = unsafe { std::mem::transmute(object) };
    object.type_id_of()
}

thread_local! {
    /// How many coroutines of this thread are suspended at a point where a
    /// panic may have been unwinding their stack (undecidable: their
    /// resumer was panicking too). Each may hold panics that a later resume
    /// will catch; while there are any, this thread's count cannot be told
    /// apart from stuck panics, so [`absorb_stuck_panics`] leaves it alone.
    static MAYBE_MID_UNWIND: Cell<usize> = const { Cell::new(0) };
}

/// One more (`true`) or one fewer (`false`) coroutine suspended maybe in the
/// middle of an unwind.
pub(crate) fn count_maybe_mid_unwind(more: bool) {
    MAYBE_MID_UNWIND.with(|n| n.set(if more { n.get() + 1 } else { n.get() - 1 }));
}

/// Lowers this thread's panic count by the panics left unwinding on stacks
/// that will never run again.
///
/// Called only where the count is known to hold nothing else: by a resumer
/// that was not panicking when it switched into a coroutine that was then
/// abandoned, with no coroutine of this thread suspended maybe mid-unwind.
/// If a helper thread cannot be started, the count stays as it is.
#[cold]
pub(crate) fn absorb_stuck_panics() {
    if MAYBE_MID_UNWIND.with(Cell::get) != 0 {
        return;
    }
    while thread::panicking() {
        if !absorb_one() {
            return;
        }
    }
}

/// A panic that was raised on another thread and is caught on this one:
/// this thread's count goes down by one, the helper's up by one, and the
/// helper ends right after.
///
/// A helper thread creates a coroutine whose entry starts a panic and,
/// while that panic unwinds, suspends from a destructor (the helper's count
/// is now one higher). This thread resumes that coroutine: the destructor
/// returns, the unwind goes on and is caught inside the coroutine, on this
/// thread.
fn absorb_one() -> bool {
    struct Carrier(*mut sys::coroutine);
    // SAFETY: the coroutine is suspended when it changes hands (its entry
    // touches no thread-bound state), and the C library lets a suspended
    // coroutine be resumed on another thread.
    unsafe impl Send for Carrier {}

    /// Suspends the coroutine it lives in when dropped: mid-unwind.
    struct SuspendOnDrop;
    impl Drop for SuspendOnDrop {
        fn drop(&mut self) {
            // SAFETY: runs inside `carry`, entered through coroutine_yieldto
            // by the helper thread, so the coroutine has a caller to return
            // to.
            unsafe { sys::coroutine_yield(ptr::null_mut()) };
        }
    }

    /// The coroutine's entry: nothing unwinds out of it.
    extern "C" fn carry(_: *mut c_void) -> *mut c_void {
        let _ = panic::catch_unwind(AssertUnwindSafe(|| {
            let _suspend = SuspendOnDrop;
            // No hook, no message: a panic that only moves a count.
            panic::resume_unwind(Box::new(()))
        }));
        ptr::null_mut()
    }

    let helper = thread::Builder::new()
        .name("ucoro-panic-count".into())
        .spawn(|| {
            // SAFETY: a plain call; the entry is `carry` and no extra bytes.
            let co = unsafe { sys::ucoro_create(64 << 10, Some(carry), 0, ptr::null_mut()) };
            if !co.is_null() {
                // SAFETY: co is fresh; `carry` suspends back here from its
                // destructor, mid-unwind.
                unsafe { sys::coroutine_yieldto(co, ptr::null_mut()) };
            }
            Carrier(co)
        });
    let Ok(Ok(Carrier(co))) = helper.map(|h| h.join()) else {
        return false;
    };
    if co.is_null() {
        return false;
    }
    // SAFETY: co is suspended in SuspendOnDrop::drop, with no caller; here
    // its unwind goes on to the catch_unwind in `carry`, which lowers this
    // thread's count, and `carry` returns. Its stack holds nothing after
    // that, so destroying it is sound.
    unsafe {
        sys::coroutine_yieldto(co, ptr::null_mut());
        sys::ucoro_destroy(co);
    }
    true
}
