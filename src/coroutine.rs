//! The safe coroutine: a closure that runs on a stack of its own, is resumed
//! with an input and suspends with a value, built on the C coroutine layer.
//!
//! Memory layout: no heap allocation. `ucoro_create` puts the C `struct
//! coroutine` at the top of the coroutine's own stack and reserves room
//! next to it for `Inner`: the values in transit and the closure (which the
//! first resume moves into the coroutine's frame). Both stay put until
//! `ucoro_destroy`, as the C struct must (its address is part of its magic
//! and of every `caller` link). A dropped coroutine whose frames are gone
//! may instead be kept by its thread and rearmed in place for the next one
//! (src/stack_cache.rs). Everything both sides touch is in a `Cell`,
//! because the resumer and the coroutine reach the block through shared
//! pointers while the other side is switched out.
//!
//! Ending: a closure returns or panics (caught in `coroutine_main`), or its
//! suspended stack is unwound by `Drop` with a `ForcedUnwind` payload. A
//! stack that can never run again but may still hold live frames (they
//! suspended after catching that unwind, or while a panic was unwinding
//! them) is leaked: never resumed, never freed, so that nothing its frames
//! point into is reused (see `Coroutine`'s docs).

use std::any::Any;
use std::cell::{Cell, UnsafeCell};
use std::ffi::c_void;
use std::io;
use std::marker::PhantomData;
use std::mem::{align_of, size_of, MaybeUninit};
use std::panic::{self, AssertUnwindSafe};
use std::ptr::{self, NonNull};
use std::thread;

use crate::unwind::{self, ForcedUnwind};
use crate::{arch, stack_cache, sys, Error};

/// The smallest stack the safe API hands out: a panic that prints a full
/// backtrace (`RUST_BACKTRACE=full`) needs about 24 KiB of it, more than
/// the C library's own 16 KiB minimum.
const MIN_STACK_SIZE: usize = 64 << 10;

/// What a [`Coroutine::resume`] brings back.
///
/// ```
/// use ucoro::{Coroutine, CoroutineResult};
///
/// let mut co = Coroutine::new(|y, first: i32| y.suspend(first * 2) + 1);
/// assert_eq!(co.resume(10).unwrap(), CoroutineResult::Yield(20));
/// assert_eq!(co.resume(5).unwrap(), CoroutineResult::Return(6));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CoroutineResult<Y, R> {
    /// The coroutine suspended with this value; it can be resumed again.
    Yield(Y),
    /// The coroutine's closure returned this value; the coroutine is done.
    Return(R),
}

impl<Y, R> CoroutineResult<Y, R> {
    /// The yielded value, if the coroutine suspended.
    ///
    /// ```
    /// use ucoro::CoroutineResult;
    ///
    /// let r: CoroutineResult<u8, &str> = CoroutineResult::Yield(1);
    /// assert_eq!(r.as_yield(), Some(&1));
    /// assert_eq!(r.as_return(), None);
    /// ```
    #[must_use]
    pub fn as_yield(&self) -> Option<&Y> {
        match self {
            CoroutineResult::Yield(value) => Some(value),
            CoroutineResult::Return(_) => None,
        }
    }

    /// The returned value, if the coroutine finished.
    ///
    /// ```
    /// use ucoro::CoroutineResult;
    ///
    /// let r: CoroutineResult<u8, &str> = CoroutineResult::Return("done");
    /// assert_eq!(r.as_return(), Some(&"done"));
    /// assert_eq!(r.as_yield(), None);
    /// ```
    #[must_use]
    pub fn as_return(&self) -> Option<&R> {
        match self {
            CoroutineResult::Yield(_) => None,
            CoroutineResult::Return(value) => Some(value),
        }
    }

    /// The yielded value, by value (corosensei's `as_yield`).
    ///
    /// ```
    /// let mut co = ucoro::Coroutine::new(|y, ()| y.suspend(String::from("hi")));
    /// assert_eq!(co.resume(()).unwrap().into_yield(), Some(String::from("hi")));
    /// assert_eq!(co.resume(()).unwrap().into_yield(), None);
    /// ```
    #[must_use]
    pub fn into_yield(self) -> Option<Y> {
        match self {
            CoroutineResult::Yield(value) => Some(value),
            CoroutineResult::Return(_) => None,
        }
    }

    /// The returned value, by value (corosensei's `as_return`).
    ///
    /// ```
    /// let mut co = ucoro::Coroutine::new(|_: &ucoro::Yielder<(), ()>, ()| vec![1, 2]);
    /// assert_eq!(co.resume(()).unwrap().into_return(), Some(vec![1, 2]));
    /// ```
    #[must_use]
    pub fn into_return(self) -> Option<R> {
        match self {
            CoroutineResult::Yield(_) => None,
            CoroutineResult::Return(value) => Some(value),
        }
    }
}

/// How the closure ended.
enum Outcome<R> {
    Returned(R),
    Panicked(Box<dyn Any + Send>),
    /// Unwound on drop.
    Unwound,
}

/// How a resume that brought no value ended (`Coroutine::ended`).
enum NoValue<R> {
    Returned(R),
    /// It ended without an outcome, which only a switch the C layer
    /// refused could do (`Error::Running`; the crate's own switches are
    /// never refused).
    Refused,
    /// It stopped for good while this thread unwinds (`Error::Abandoned`).
    Abandoned,
}

/// The part a [`Yielder`] sees (no return type, no closure type).
///
/// The values in transit need no tags: who switched tells what waits.
/// `inbox` holds an input from a resume that carries one (every resume of
/// `Coroutine::resume`) until the coroutine takes it, right after it is
/// switched into; a switch in without one is the forced unwind, which sets
/// `unwind_id` first. `outbox` holds a value from a suspend until the
/// resume that the suspend returned to (true from `arch::resume`) takes it.
#[repr(C)]
struct Header<I, Y> {
    /// The C coroutine, just below this block on the same stack.
    co: *mut sys::coroutine,
    /// The running-coroutine slot of the thread that made it, the only
    /// thread it runs on (it is not `Send`).
    slot: arch::Slot,
    inbox: UnsafeCell<MaybeUninit<I>>,
    outbox: UnsafeCell<MaybeUninit<Y>>,
    /// The id of the forced unwind once `Drop` has begun it (0 before).
    unwind_id: Cell<u64>,
    /// The thread was already panicking when it last switched into this
    /// coroutine (true only during such a switch: resumes while not
    /// panicking, the common case, leave it false and write nothing).
    resumer_panicking: Cell<bool>,
    /// It is suspended where a panic may be unwinding its stack (which
    /// cannot be told when its resumer was panicking too).
    maybe_mid_unwind: Cell<bool>,
    /// It stopped for good while a panic was unwinding its stack: it must
    /// never run again nor be freed.
    abandoned: Cell<bool>,
}

/// The part a [`Coroutine`] sees (no closure type).
#[repr(C)]
struct Shared<I, Y, R> {
    header: Header<I, Y>,
    outcome: Cell<Option<Outcome<R>>>,
    /// Drops the whole `Inner<.., F>` block this `Shared` heads, in place.
    drop_inner: unsafe fn(*mut Shared<I, Y, R>),
}

#[repr(C)]
struct Inner<I, Y, R, F> {
    shared: Shared<I, Y, R>,
    func: Cell<Option<F>>,
}

/// Drops an `Inner` written by `Coroutine::create`, in place.
///
/// # Safety
/// `shared` must point to a live `Inner<I, Y, R, F>` written by `create`,
/// used no more afterwards.
unsafe fn drop_inner<I, Y, R, F>(shared: *mut Shared<I, Y, R>) {
    // SAFETY: the caller's contract; `Shared` is the first field of a
    // `repr(C)` `Inner`, so the pointers are the same.
    unsafe { ptr::drop_in_place(shared.cast::<Inner<I, Y, R, F>>()) };
}

/// The C entry: runs on the coroutine's stack. `data` is the `Inner` block.
///
/// # Safety
/// Called by the C layer only, with the pointer `resume` passed, which
/// points to a live `Inner<I, Y, R, F>` (the `Coroutine` is borrowed
/// mutably by `resume` for the whole run).
unsafe extern "C" fn coroutine_main<I, Y, R, F>(data: *mut c_void) -> *mut c_void
where
    F: FnOnce(&Yielder<I, Y>, I) -> R,
{
    // SAFETY: see above; only shared references are made, all mutation goes
    // through cells.
    let inner = unsafe { &*data.cast::<Inner<I, Y, R, F>>() };
    let header = &inner.shared.header;
    // SAFETY: the first switch in is always a resume with an input (an
    // unstarted coroutine is dropped without one), and only this reads it.
    let input = unsafe { (*header.inbox.get()).assume_init_read() };
    let outcome = match inner.func.take() {
        Some(func) => {
            let yielder = Yielder::from_header(header);
            // No panic may cross into C: catch everything, hand it over.
            match panic::catch_unwind(AssertUnwindSafe(move || func(yielder, input))) {
                Ok(value) => Outcome::Returned(value),
                // Only this coroutine's own forced unwind: a payload caught
                // elsewhere and re-raised here is an ordinary panic.
                Err(payload)
                    if payload
                        .downcast_ref::<ForcedUnwind>()
                        .is_some_and(|f| f.0 == header.unwind_id.get()) =>
                {
                    Outcome::Unwound
                }
                Err(payload) => Outcome::Panicked(payload),
            }
        }
        // Not reachable: the closure is taken only here, once.
        None => Outcome::Unwound,
    };
    // The slot is empty (only this sets it, once): skip `set`'s drop of
    // the old value.
    std::mem::forget(inner.shared.outcome.replace(Some(outcome)));
    // Returning ends the coroutine. With the inlined switch this returns
    // into `ucoro__crate_entry`, whose start stub returns into the resumer
    // (csrc/arch/interface.h), so every call since the first resume is
    // returned from; elsewhere the C exit takes over. (A `ret` into the
    // resumer from here measured slower: the C frames below this one were
    // entered with calls it would skip, and it popped one of their
    // return-stack entries.)
    ptr::null_mut()
}

/// The handle a coroutine's closure uses to suspend itself.
///
/// It only exists behind a reference handed to the closure, cannot leave
/// the closure (the reference's lifetime is the closure call) and is neither
/// `Send` nor `Sync`. Nor can it reach another plain coroutine, whose
/// closure and inputs are `'static` (a scoped coroutine's can borrow it:
/// suspending through it from there panics, see below):
///
/// ```compile_fail
/// use ucoro::{Coroutine, Yielder};
///
/// let mut outer = Coroutine::new(|outer_y: &Yielder<(), u32>, ()| {
///     let mut inner = Coroutine::new(|_: &Yielder<(), ()>, y: &Yielder<(), u32>| {
///         y.suspend(7); // the outer coroutine's yielder, inside the inner one
///     });
///     inner.resume(outer_y).map(|_| ())
/// });
/// ```
///
/// A thread started inside the closure cannot suspend the coroutine from
/// under it either (`Yielder` is not `Sync`):
///
/// ```compile_fail
/// use ucoro::Generator;
///
/// let mut g = Generator::new(|y| {
///     std::thread::scope(|s| {
///         s.spawn(|| y.suspend(1)); // suspend, but on another thread
///     });
/// });
/// g.next();
/// ```
///
/// ```
/// use ucoro::{Coroutine, CoroutineResult};
///
/// // Echo the inputs back, doubled, until a zero arrives.
/// let mut co = Coroutine::new(|yielder, mut input: u32| {
///     while input != 0 {
///         input = yielder.suspend(input * 2);
///     }
///     "done"
/// });
/// assert_eq!(co.resume(1).unwrap(), CoroutineResult::Yield(2));
/// assert_eq!(co.resume(21).unwrap(), CoroutineResult::Yield(42));
/// assert_eq!(co.resume(0).unwrap(), CoroutineResult::Return("done"));
/// ```
#[repr(transparent)]
pub struct Yielder<I, Y> {
    header: Header<I, Y>,
}

impl<I, Y> Yielder<I, Y> {
    fn from_header(header: &Header<I, Y>) -> &Self {
        // SAFETY: `Yielder` is a `repr(transparent)` wrapper of `Header`.
        unsafe { &*(header as *const Header<I, Y>).cast::<Self>() }
    }

    /// Whether its coroutine is the one running (not one it resumed).
    pub(crate) fn is_running(&self) -> bool {
        // SAFETY: coroutine_self only reads this thread's state.
        unsafe { sys::coroutine_self() == self.header.co }
    }

    /// Suspends the coroutine, handing `value` to whoever called
    /// [`Coroutine::resume`]; returns the input of the next `resume`.
    ///
    /// # While a panic unwinds the coroutine
    /// A destructor that runs while a panic unwinds the coroutine's stack
    /// (its own panic, or the unwind that dropping it starts) cannot really
    /// suspend: nothing could resume it to finish the unwind without an
    /// input, and leaving would carry the panic away. If the input type is
    /// `()` (every [`Generator`](crate::Generator)), `suspend` drops `value`
    /// and returns at once, and the unwind goes on. Otherwise the coroutine
    /// stops there for good: `value` is dropped, its remaining destructors do
    /// not run and its stack is leaked (see [`Coroutine`]); `resume` then
    /// panics (or, called while its thread is itself unwinding, returns
    /// [`Error::Abandoned`]), and dropping it does nothing more.
    ///
    /// # Panics
    /// If called from another coroutine than the one this `Yielder` belongs
    /// to: a scoped coroutine ([`scope`](crate::scope())) or
    /// [`on_stack`](crate::on_stack)'s closure nested inside it may borrow
    /// it; nothing switches then. When the `Coroutine` is dropped while
    /// suspended, this call unwinds the stack (with a private payload) so
    /// that destructors run.
    ///
    /// ```
    /// use ucoro::Generator;
    ///
    /// let squares: Vec<u64> = Generator::new(|y| {
    ///     for i in 1..=4 {
    ///         y.suspend(i * i);
    ///     }
    /// })
    /// .collect();
    /// assert_eq!(squares, [1, 4, 9, 16]);
    /// ```
    // Inlined into the caller's loop on purpose: after a switch the CPU's
    // return-address predictor holds the other side's addresses, so every
    // `ret` between the switch and the user's code is mispredicted; the
    // rare cases live in cold functions below.
    #[inline(always)]
    pub fn suspend(&self, value: Y) -> I {
        if thread::panicking() {
            return self.suspend_while_panicking(value);
        }
        self.switch_out(value)
    }

    /// The suspend itself: hand `value` over, switch to the resumer, take
    /// the input it brings.
    #[inline(always)]
    fn switch_out(&self, value: Y) -> I {
        let header = &self.header;
        // SAFETY: the outbox is empty: the resume this suspend returns to
        // takes what the last one left before this coroutine runs again.
        unsafe { (*header.outbox.get()).write(value) };
        // SAFETY: `co` is this coroutine's live C struct (the Yielder only
        // exists while its closure runs) and the slot is this thread's
        // (neither is `Send`); `arch::suspend` refuses (false, switching
        // nowhere) unless it is the running coroutine.
        if !unsafe { arch::suspend(header.co, header.slot) } {
            self.refused();
        }
        if header.unwind_id.get() != 0 {
            self.resumed_to_unwind();
        }
        // SAFETY: resumed, and not to unwind: by a resume with an input.
        unsafe { (*header.inbox.get()).assume_init_read() }
    }

    /// `suspend` while this thread is panicking: find out whose panic it is.
    #[cold]
    #[inline(never)]
    fn suspend_while_panicking(&self, value: Y) -> I {
        let header = &self.header;
        // SAFETY: coroutine_self only reads this thread's state.
        if unsafe { sys::coroutine_self() } != header.co {
            drop(value);
            panic!("ucoro: Yielder::suspend called outside the coroutine it belongs to");
        }
        if !header.resumer_panicking.get() {
            // The resumer was not panicking, so the panic is unwinding this
            // very stack and we are in one of its destructors.
            drop(value);
            if let Some(unit) = unwind::unit_input::<I>() {
                return unit;
            }
            header.abandoned.set(true);
            self.leave_for_good();
        }
        if header.unwind_id.get() != 0 {
            // The forced unwind was caught (or is in flight: with the
            // dropper panicking too, this cannot be told) and the closure
            // went on to suspend: it stops here.
            drop(value);
            self.leave_for_good();
        }
        // The resumer is panicking: a panic of our own may or may not be
        // unwinding this stack too. Suspend as usual, and let `Drop` know
        // that it must not start an unwind here (inside a destructor that
        // would abort the process).
        header.maybe_mid_unwind.set(true);
        unwind::count_maybe_mid_unwind(true);
        let input = self.switch_out(value);
        header.maybe_mid_unwind.set(false);
        unwind::count_maybe_mid_unwind(false);
        input
    }

    /// Gives control back to the resumer for good: the owner never resumes
    /// or frees this coroutine again (it checks `abandoned` or finds no
    /// outcome after a forced unwind).
    #[cold]
    #[inline(never)]
    fn leave_for_good(&self) -> ! {
        // SAFETY: as in `switch_out`; the resume returns with no value.
        unsafe { arch::suspend_for_good(self.header.co) };
        // Resumed after all (only possible by going around the safe API),
        // or refused (not the running coroutine, checked before): nothing
        // sound is left to do.
        std::process::abort()
    }

    /// The C layer refused: this is not the running coroutine. The value
    /// was not handed over; take it back and drop it.
    #[cold]
    #[inline(never)]
    fn refused(&self) -> ! {
        // SAFETY: `switch_out` just wrote it, and nothing took it.
        drop(unsafe { (*self.header.outbox.get()).assume_init_read() });
        panic!("ucoro: Yielder::suspend called outside the coroutine it belongs to");
    }

    /// Resumed by the dropper: unwind this coroutine's stack.
    #[cold]
    #[inline(never)]
    fn resumed_to_unwind(&self) -> ! {
        panic::resume_unwind(Box::new(ForcedUnwind(self.header.unwind_id.get())))
    }
}

/// A stackful coroutine: a closure `FnOnce(&Yielder<I, Y>, I) -> R` running
/// on its own stack.
///
/// Each [`resume`](Self::resume) runs it until it calls
/// [`Yielder::suspend`] (giving [`CoroutineResult::Yield`]) or returns
/// (giving [`CoroutineResult::Return`]). A panic in the closure unwinds the
/// coroutine's stack and resumes in the caller of `resume`. Dropping a
/// coroutine that is suspended unwinds its stack so that destructors run.
///
/// # Why the closure, the input and the yield type are `'static`
/// A coroutine can be leaked while suspended (`std::mem::forget`, an `Rc`
/// cycle): its frames then stay alive forever without running again, and
/// everything they borrow must stay alive as long. That is what makes the
/// bounds necessary and enough:
///
/// - what the frames can reach comes from the closure (`F: 'static`), from
///   the inputs (`I: 'static`), from values the coroutine makes itself, or
///   from statics;
/// - a yielded value goes out, but it may be a shared handle (an
///   `Rc<RefCell<Option<&'a T>>>`) through which the resumer hands a borrow
///   back in, so the yield type is `'static` too. The return value only
///   leaves when the frames are gone, so it may borrow;
/// - what the coroutine makes itself lives in its frames or in allocations
///   they own. A leaked stack is never freed or reused (a drop that cannot
///   finish leaks it too, see below), so pointers into it stay valid, pinned
///   data included, and a scoped thread it started can go on using them.
///
/// So a suspended stack only ever points to data that lives at least as
/// long as the stack itself. Borrowed inputs are refused at compile time,
/// such as one a scoped thread goes on reading after the coroutine was
/// forgotten and the data freed:
///
/// ```compile_fail
/// use std::time::Duration;
/// use ucoro::Coroutine;
///
/// let data = String::from("borrowed by a scoped thread");
/// let mut co: Coroutine<&String, (), ()> = Coroutine::new(|y, s: &String| {
///     std::thread::scope(|sc| {
///         sc.spawn(move || {
///             std::thread::sleep(Duration::from_millis(100));
///             println!("{s:?}")
///         });
///         y.suspend(());
///     });
/// });
/// co.resume(&data).unwrap();
/// std::mem::forget(co);
/// drop(data);
/// ```
///
/// and so are yielded handles that could carry a borrow back in:
///
/// ```compile_fail
/// use std::cell::RefCell;
/// use std::rc::Rc;
///
/// fn lend<'a>(data: &'a String) {
///     type Slot<'a> = Rc<RefCell<Option<&'a String>>>;
///     let mut co = ucoro::Coroutine::new(|y, ()| {
///         let slot: Slot<'a> = Rc::new(RefCell::new(None));
///         y.suspend(slot.clone());
///         // ... `slot` now holds a borrow of `data` ...
///     });
///     if let Ok(ucoro::CoroutineResult::Yield(slot)) = co.resume(()) {
///         *slot.borrow_mut() = Some(data);
///     }
/// }
/// ```
///
/// One hole remains that no stackful coroutine library for Rust closes (a
/// thread's exit frees its thread-locals even when a leaked coroutine of
/// that thread is suspended inside a thread-local's `with` closure): do not
/// leak a coroutine that is suspended inside `LocalKey::with` while a
/// scoped thread it started still borrows that thread-local.
///
/// # Dropping
/// A suspended coroutine is unwound: a private panic goes through its
/// frames so that their destructors run, and the stack is freed. If that
/// cannot finish — user code catches the unwind and suspends again, or a
/// destructor suspends while it runs and the input type is not `()` — the
/// coroutine is leaked there, once: its frames never run again and its
/// stack is never freed. The thread's panic state
/// (`std::thread::panicking()`) is left as it was before the drop. One that
/// suspended while its resumer was panicking (resumed from a destructor
/// during a panic) might be in the middle of an unwind of its own, where
/// another would abort: dropped while the thread is still panicking, it is
/// leaked too; dropped once the thread no longer panics, it provably is not
/// (its own panic would still count) and is unwound. If the
/// closure panics while it is unwound, that panic resumes in the dropper
/// (unless the dropper is itself unwinding: then it is dropped). A
/// destructor whose panic escapes while the stack unwinds aborts the
/// process, as it does in any Rust unwind.
///
/// Built with `panic = "abort"`, a suspended coroutine that is dropped is
/// leaked instead: its frames never run again, their destructors do not
/// run, and its stack (the address space and the pages it touched) stays
/// allocated for the life of the process.
///
/// # Not `Send`
/// A suspended coroutine's stack may hold anything its closure touched:
/// `Rc`s, `RefCell` borrows, references into thread-locals of the thread it
/// ran on. None of that is visible in the closure's type, so moving the
/// coroutine to another thread cannot be proven safe, and `Coroutine` is
/// neither `Send` nor `Sync`. Every thread can run its own coroutines at
/// the same time (the C library keeps its state per thread).
///
/// ```compile_fail
/// fn assert_send<T: Send>() {}
/// assert_send::<ucoro::Coroutine<(), (), ()>>();
/// ```
///
/// ```
/// use ucoro::{Coroutine, CoroutineResult};
///
/// let mut co = Coroutine::new(|yielder, a: i32| {
///     let b = yielder.suspend(a + 1);
///     a * b
/// });
/// assert_eq!(co.resume(4).unwrap(), CoroutineResult::Yield(5));
/// assert_eq!(co.resume(3).unwrap(), CoroutineResult::Return(12));
/// assert!(co.is_finished());
/// ```
#[must_use = "a coroutine does nothing until it is resumed"]
pub struct Coroutine<I, Y, R> {
    /// The C coroutine (made by `ucoro_create`), at the top of its stack.
    co: NonNull<sys::coroutine>,
    /// Our block next to it on the same stack.
    shared: NonNull<Shared<I, Y, R>>,
    finished: bool,
    /// Its stack must never be freed (see "Dropping" above).
    leaked: bool,
    /// Zeros that complete the flags' word. `create`'s result is copied a
    /// word at a time, and a word loaded right after only two of its bytes
    /// were stored cannot be forwarded from the store buffer: the load
    /// waits until the stores reach the cache (measured on an Intel Ice
    /// Lake: create, run and drop took 29.0 ns with the two bytes alone,
    /// 23.5 ns with the whole word written).
    _whole_word: [u8; size_of::<usize>() - 2],
    /// Owns the `Inner` block (for drop check) and keeps the type `!Send`
    /// and `!Sync` (see above).
    _owns: PhantomData<(Shared<I, Y, R>, *mut ())>,
}

// No padding: every byte of a `Coroutine` is written when it is made (see
// `_whole_word`). A new field must keep it so.
const _: () = assert!(size_of::<Coroutine<(), (), ()>>() == 3 * size_of::<usize>());

impl<I: 'static, Y: 'static, R> Coroutine<I, Y, R> {
    /// Creates a coroutine with the default stack size (16 MiB of address
    /// space; only the pages it touches cost memory). The closure does not
    /// run until the first [`resume`](Self::resume), whose input is its
    /// second argument.
    ///
    /// # Panics
    /// If the system refuses the stack's memory; use [`Builder::build`] to
    /// get that as an [`Error`] instead.
    ///
    /// ```
    /// use ucoro::{Coroutine, CoroutineResult};
    ///
    /// let mut co: Coroutine<(), &str, ()> = Coroutine::new(|y, ()| {
    ///     y.suspend("hello");
    /// });
    /// assert_eq!(co.resume(()).unwrap(), CoroutineResult::Yield("hello"));
    /// ```
    pub fn new<F>(func: F) -> Self
    where
        F: FnOnce(&Yielder<I, Y>, I) -> R + 'static,
    {
        Builder::new()
            .build(func)
            .unwrap_or_else(|e| panic!("ucoro: {e}"))
    }
}

impl<I, Y, R> Coroutine<I, Y, R> {
    /// Makes a coroutine with no lifetime bounds: the public constructors
    /// add `'static`, and the crate's other users (scopes, `on_stack`)
    /// make sure by other means that no frame outlives what it borrows.
    pub(crate) fn create<F>(stack_size: usize, func: F) -> Result<Self, Error>
    where
        F: FnOnce(&Yielder<I, Y>, I) -> R,
    {
        let requested = if stack_size == 0 {
            0 // the C default
        } else {
            stack_size.max(MIN_STACK_SIZE)
        };
        // Room for Inner, aligned beyond the 16 bytes C guarantees if the
        // closure's state needs it.
        let align = align_of::<Inner<I, Y, R, F>>();
        let needed = size_of::<Inner<I, Y, R, F>>() + align.saturating_sub(16);
        let entry = coroutine_main::<I, Y, R, F>;
        // A finished coroutine of this thread, rearmed (see stack_cache.rs),
        // or a new one.
        // SAFETY: coroutine_main takes the Inner block written below.
        let (co, inner, fresh) =
            match unsafe { stack_cache::reuse(requested, needed, align, entry) } {
                Some((co, block)) => (co, block.cast::<Inner<I, Y, R, F>>(), false),
                None => {
                    // SAFETY: as above; on success the block holds `needed`
                    // bytes, valid until the coroutine is destroyed.
                    let (co, block) = unsafe { stack_cache::create(requested, needed, entry) };
                    let Some(co) = NonNull::new(co) else {
                        return Err(Self::create_error(stack_size, requested, needed));
                    };
                    let inner = block.wrapping_add(block.align_offset(align));
                    (co, inner.cast::<Inner<I, Y, R, F>>(), true)
                }
            };
        // SAFETY: `inner` is aligned and its size_of bytes lie within the
        // `needed` bytes reserved for us; nothing else uses that memory. `co`
        // is fresh from ucoro_create, or rearmed by reuse (which prepared
        // it with this block).
        unsafe {
            inner.write(Inner {
                shared: Shared {
                    header: Header {
                        co: co.as_ptr(),
                        slot: arch::Slot::of_this_thread(),
                        inbox: UnsafeCell::new(MaybeUninit::uninit()),
                        outbox: UnsafeCell::new(MaybeUninit::uninit()),
                        unwind_id: Cell::new(0),
                        resumer_panicking: Cell::new(false),
                        maybe_mid_unwind: Cell::new(false),
                        abandoned: Cell::new(false),
                    },
                    outcome: Cell::new(None),
                    drop_inner: drop_inner::<I, Y, R, F>,
                },
                func: Cell::new(Some(func)),
            });
            if fresh {
                // The block is what `coroutine_main` expects; co is fresh.
                arch::prepare(co.as_ptr(), inner.cast());
            }
        };
        Ok(Coroutine {
            co,
            // SAFETY: derived from the non-null block just written.
            shared: unsafe { NonNull::new_unchecked(inner.cast::<Shared<I, Y, R>>()) },
            finished: false,
            leaked: false,
            _whole_word: [0; size_of::<usize>() - 2],
            _owns: PhantomData,
        })
    }
}

impl<I, Y, R> Coroutine<I, Y, R> {
    /// Why `ucoro_create` failed (`errno`), for a stack of `stack_size`
    /// asked as `requested` and an Inner block of `needed` bytes.
    #[cold]
    fn create_error(stack_size: usize, requested: usize, needed: usize) -> Error {
        let source = io::Error::last_os_error();
        // SAFETY: a pure computation on a number: the size that was
        // tried (0 if `requested` cannot be rounded).
        let size = match unsafe { sys::ucoro_stack_size_for(requested) } {
            0 => stack_size,
            size => size,
        };
        if source.raw_os_error() == Some(libc::E2BIG) {
            // What ucoro_create puts at the top: the C struct and our
            // block, each rounded up to 16 bytes.
            let round16 = |n: usize| n.saturating_add(15) & !15;
            return Error::ClosureTooLarge {
                needed: round16(size_of::<sys::coroutine>())
                    .saturating_add(round16(stack_cache::extra_for(needed))),
                stack_size: size,
            };
        }
        Error::StackAllocation { size, source }
    }

    /// The shared block, with a lifetime not tied to `self` so that the
    /// flags in `self` stay writable while it is in use.
    fn shared<'a>(&self) -> &'a Shared<I, Y, R> {
        // SAFETY: the block lives until `drop` frees it, after its last use
        // there; only shared references to it are ever made.
        unsafe { &*self.shared.as_ptr() }
    }

    /// Switches into the coroutine; true if it suspended with a value in
    /// its outbox. The caller put an input in its inbox, or began the
    /// forced unwind.
    #[inline(always)]
    fn enter(&mut self) -> bool {
        // SAFETY: `co` was made by ucoro_create and not destroyed, and
        // `finished` is false (callers check), so it has not exited; `&mut
        // self` means it is not running nor waiting on the chain (it only
        // runs inside resume or drop), and `Coroutine` is not `Send`, so
        // this is the thread of the slot. The argument is our block, which
        // `coroutine_main` expects.
        unsafe {
            arch::resume(
                self.co.as_ptr(),
                self.shared().header.slot,
                self.shared.as_ptr().cast(),
            )
        }
    }

    /// Runs the coroutine until it suspends or returns, passing `input`: to
    /// the closure as its argument on the first call, as the result of
    /// [`Yielder::suspend`] after that.
    ///
    /// # Errors
    /// [`Error::Finished`] if the coroutine has already returned or
    /// panicked; the input is dropped and nothing else happens.
    /// [`Error::Abandoned`] if it stopped for good while this thread was
    /// itself unwinding (see [`Yielder::suspend`]).
    ///
    /// # Panics
    /// Resumes the panic if the closure panics (the coroutine is then
    /// finished). Panics if the coroutine stopped for good because it
    /// suspended while a panic unwound its stack (see [`Yielder::suspend`]).
    ///
    /// ```
    /// use ucoro::{Coroutine, CoroutineResult, Error};
    ///
    /// let mut co = Coroutine::new(|y, x: u8| y.suspend(x));
    /// assert_eq!(co.resume(1).unwrap(), CoroutineResult::Yield(1));
    /// assert_eq!(co.resume(2).unwrap(), CoroutineResult::Return(2));
    /// assert!(matches!(co.resume(3), Err(Error::Finished)));
    /// ```
    // Inlined into the caller's loop on purpose (see Yielder::suspend);
    // the end of the coroutine is handled out of line.
    #[inline(always)]
    pub fn resume(&mut self, input: I) -> Result<CoroutineResult<Y, R>, Error> {
        if self.finished {
            return Err(Error::Finished);
        }
        let header = &self.shared().header;
        // SAFETY: the inbox is empty: the coroutine took the last input
        // when it was switched into (see `Header`).
        unsafe { (*header.inbox.get()).write(input) };
        let suspended = if thread::panicking() {
            self.enter_while_panicking()
        } else {
            self.enter()
        };
        if suspended {
            // SAFETY: it suspended, which left a value (see `Header`).
            Ok(CoroutineResult::Yield(unsafe {
                (*header.outbox.get()).assume_init_read()
            }))
        } else {
            // Mapped here, not in `ended`: its small result comes back in
            // registers, so the common path builds no `Result` in memory.
            match self.ended() {
                NoValue::Returned(value) => Ok(CoroutineResult::Return(value)),
                NoValue::Refused => Err(Error::Running),
                NoValue::Abandoned => Err(Error::Abandoned),
            }
        }
    }

    /// `enter` while this thread is panicking: the coroutine must know (it
    /// tells by that whose panic it sees) for as long as it runs, and
    /// `ended` after it, which clears the flag.
    #[cold]
    #[inline(never)]
    fn enter_while_panicking(&mut self) -> bool {
        let header = &self.shared().header;
        header.resumer_panicking.set(true);
        let suspended = self.enter();
        if suspended {
            header.resumer_panicking.set(false);
        }
        suspended
    }

    /// After a resume that brought no value: the closure returned or
    /// panicked, it stopped for good, or the C layer refused the switch.
    #[cold]
    #[inline(never)]
    fn ended(&mut self) -> NoValue<R> {
        let shared = self.shared();
        let resumer_panicking = shared.header.resumer_panicking.replace(false);
        if shared.header.abandoned.get() {
            self.finished = true;
            self.leaked = true;
            if resumer_panicking {
                return NoValue::Abandoned;
            }
            unwind::absorb_stuck_panics();
            panic!(
                "ucoro: the coroutine suspended while a panic was unwinding its stack; \
                 it was abandoned there and its stack is leaked"
            );
        }
        match shared.outcome.take() {
            Some(Outcome::Returned(value)) => {
                self.finished = true;
                NoValue::Returned(value)
            }
            Some(Outcome::Panicked(payload)) => {
                self.finished = true;
                panic::resume_unwind(payload)
            }
            // Only a refused switch could end so (nothing ran, and the input
            // stays unread: leaked, not dropped); the crate's never is.
            Some(Outcome::Unwound) | None => NoValue::Refused,
        }
    }

    /// Whether the closure has been entered (by a first `resume`).
    ///
    /// ```
    /// let mut co = ucoro::Coroutine::new(|y, ()| y.suspend(()));
    /// assert!(!co.started());
    /// co.resume(()).unwrap();
    /// assert!(co.started());
    /// ```
    pub fn started(&self) -> bool {
        // SAFETY: reading a field the C side sets when the coroutine's
        // first context begins to run; it is not running now (&self
        // outside resume).
        unsafe { (*self.co.as_ptr()).cc.started != 0 }
    }

    /// Whether the closure has returned or panicked (or the coroutine was
    /// abandoned); `resume` then fails with [`Error::Finished`].
    ///
    /// ```
    /// let mut co = ucoro::Coroutine::new(|_: &ucoro::Yielder<(), ()>, ()| 1);
    /// assert!(!co.is_finished());
    /// co.resume(()).unwrap();
    /// assert!(co.is_finished());
    /// ```
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// The size of the coroutine's stack in bytes, as the C library
    /// reserved it: the requested size rounded up to at least 64 KiB, the
    /// safe API's minimum (room for a panic that prints a full backtrace),
    /// then to what the C library hands out: whole pages and the size class
    /// (at most a quarter more; see
    /// [`sys::ucoro_stack_size_for`](crate::sys::ucoro_stack_size_for)).
    ///
    /// ```
    /// let co = ucoro::Builder::new()
    ///     .stack_size(100_000)
    ///     .build(|_: &ucoro::Yielder<(), ()>, ()| ())
    ///     .unwrap();
    /// assert!(co.stack_size() >= 100_000);
    /// ```
    pub fn stack_size(&self) -> usize {
        // SAFETY: reading an in/out field the C side wrote at init; the
        // coroutine is not running (we hold &self outside resume).
        unsafe { (*self.co.as_ptr()).stack_size }
    }

    /// How many bytes of the stack have been touched so far, counted from
    /// its top: use it to size stacks. The stack stays until the coroutine
    /// is dropped, so after it finished this is how deep its whole run went.
    /// A stack reused from the pool may count pages an earlier coroutine
    /// touched, so this is an upper bound.
    ///
    /// ```
    /// use ucoro::{Builder, Yielder};
    ///
    /// let mut co = Builder::new()
    ///     .stack_size(1 << 20)
    ///     .build(|y: &Yielder<(), ()>, ()| {
    ///         let buf = std::hint::black_box([1u8; 200 * 1024]);
    ///         y.suspend(());
    ///         buf[0]
    ///     })?;
    /// co.resume(())?;
    /// assert!(co.stack_used() >= 200 * 1024);
    /// assert!(co.stack_used() <= co.stack_size());
    /// co.resume(())?;
    /// assert!(co.is_finished() && co.stack_used() >= 200 * 1024);
    /// # Ok::<(), ucoro::Error>(())
    /// ```
    pub fn stack_used(&self) -> usize {
        // SAFETY: the struct is initialised (made by ucoro_create, whose
        // stack lives until ucoro_destroy) and not running.
        unsafe { sys::ucoro_stack_used(self.co.as_ptr()) }
    }
}

impl<I, Y, R> Coroutine<I, Y, R> {
    /// Drops the coroutine and tells whether its stack had to be leaked
    /// (see "Dropping" above): scopes must know, since a leaked scoped
    /// stack may still hold borrows.
    pub(crate) fn close(self) -> Closed {
        std::mem::ManuallyDrop::new(self).release()
    }

    /// Whether dropping it now would leak a stack that could be unwound
    /// later: it suspended while its resumer was panicking, and this thread
    /// is still panicking (see `release`).
    pub(crate) fn unwinding_must_wait(&self) -> bool {
        self.started()
            && !self.finished
            && !self.leaked
            && self.shared().header.maybe_mid_unwind.get()
            && thread::panicking()
    }

    /// The body of `Drop`, run exactly once (by `drop` or by `close`).
    fn release(&mut self) -> Closed {
        if self.leaked {
            return Closed::Leaked;
        }
        let mut deferred_panic = None;
        if self.started() && !self.finished {
            // Out of line: dropping a finished coroutine is the common case.
            match self.unwind_suspended() {
                Ok(payload) => deferred_panic = payload,
                Err(closed) => return closed,
            }
        }
        // A started coroutine took its closure as it began, and its outcome
        // was taken when it ended (by `ended`, or above by the unwind): its
        // block holds nothing to drop, and the type-erased, out-of-line
        // drop is only needed for a closure that never ran.
        let drop_inner = (!self.started()).then_some(self.shared().drop_inner);
        debug_assert!(
            drop_inner.is_some() || self.shared().outcome.take().is_none(),
            "a started coroutine's outcome outlived its end"
        );
        // SAFETY: the coroutine is not running (never started, finished, or
        // just unwound to its end): no frame is left on its stack. Our
        // block is dropped in place first where it holds anything, then the
        // C coroutine is kept for reuse or destroyed with its stack
        // (stack_cache::retire); nothing here uses either afterwards.
        unsafe {
            if let Some(drop_inner) = drop_inner {
                drop_inner(self.shared.as_ptr());
            }
            stack_cache::retire(self.co);
        }
        if let Some(payload) = deferred_panic {
            // A destructor panicked during the unwind: report it, unless we
            // are already unwinding (a second panic would abort).
            if !thread::panicking() {
                panic::resume_unwind(payload);
            }
        }
        Closed::Freed
    }

    /// The part of `release` for a coroutine suspended mid-run: unwinds
    /// its stack with a forced unwind. Returns the payload of a panic a
    /// destructor raised on the way, if any, once the stack is unwound to
    /// its end; or how it was closed when its stack must be leaked.
    #[cold]
    #[inline(never)]
    fn unwind_suspended(&mut self) -> Result<Option<Box<dyn Any + Send>>, Closed> {
        let header = &self.shared().header;
        if cfg!(panic = "abort") {
            // No unwinding: the frames stay as they are, for good.
            return Err(Closed::Leaked);
        }
        if header.maybe_mid_unwind.get() {
            unwind::count_maybe_mid_unwind(false);
            header.maybe_mid_unwind.set(false);
            if thread::panicking() {
                // A panic may be unwinding its stack (a destructor of
                // it suspended): starting another would abort.
                return Err(Closed::Leaked);
            }
            // This thread is not panicking, so no panic is in flight on
            // any of its stacks (each would count): none is unwinding
            // this one, and it can be unwound.
        }
        header.unwind_id.set(unwind::next_unwind_id());
        let panicking = thread::panicking();
        header.resumer_panicking.set(panicking);
        let suspended = self.enter();
        header.resumer_panicking.set(false);
        match self.shared().outcome.take() {
            Some(Outcome::Panicked(payload)) => Ok(Some(payload)),
            Some(Outcome::Returned(_)) | Some(Outcome::Unwound) => Ok(None),
            None => {
                // It suspended again (user code caught the unwind) or
                // stopped for good inside a destructor: its stack
                // still holds live frames that must never run, and
                // memory they may point into: leak it.
                if suspended {
                    // SAFETY: a suspend left it (see `Header`).
                    drop(unsafe { (*header.outbox.get()).assume_init_read() });
                }
                if header.abandoned.get() && !panicking {
                    unwind::absorb_stuck_panics();
                }
                Err(Closed::Leaked)
            }
        }
    }
}

/// How a dropped coroutine ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Closed {
    /// Its frames are gone (finished, never started, or unwound) and its
    /// stack is freed.
    Freed,
    /// Its stack may hold live frames: it is never resumed nor freed.
    Leaked,
}

impl<I, Y, R> Drop for Coroutine<I, Y, R> {
    fn drop(&mut self) {
        self.release();
    }
}

impl<I, Y, R> std::fmt::Debug for Coroutine<I, Y, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Coroutine")
            .field("started", &self.started())
            .field("finished", &self.finished)
            .field("stack_size", &self.stack_size())
            .finish()
    }
}

/// Configures a coroutine before it is created (for now: its stack size).
///
/// ```
/// use ucoro::{Builder, CoroutineResult};
///
/// let mut co = Builder::new()
///     .stack_size(64 * 1024)
///     .build(|y, n: u32| y.suspend(n + 1))?;
/// assert_eq!(co.resume(1)?, CoroutineResult::Yield(2));
/// # Ok::<(), ucoro::Error>(())
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Builder {
    stack_size: usize,
}

impl Builder {
    /// A builder with the default settings (16 MiB stack).
    ///
    /// ```
    /// let co = ucoro::Builder::new().build(|_: &ucoro::Yielder<(), ()>, ()| ()).unwrap();
    /// assert_eq!(co.stack_size(), 16 << 20);
    /// ```
    #[must_use]
    pub fn new() -> Self {
        Builder::default()
    }

    /// Sets the stack size in bytes; 0 means the default. It is rounded up
    /// to at least 64 KiB (room for a panic that prints a full backtrace)
    /// and to what the C library hands out (`ucoro_stack_size_for`: whole
    /// pages, then its size class, at most a quarter more;
    /// [`Coroutine::stack_size`] tells the result); a size too large to
    /// allocate makes [`build`](Self::build) fail.
    ///
    /// ```
    /// let co = ucoro::Builder::new()
    ///     .stack_size(1)
    ///     .build(|_: &ucoro::Yielder<(), ()>, ()| ())
    ///     .unwrap();
    /// assert_eq!(co.stack_size(), 64 * 1024);
    /// ```
    #[must_use = "the builder is returned, not changed in place"]
    pub fn stack_size(mut self, bytes: usize) -> Self {
        self.stack_size = bytes;
        self
    }

    /// Creates the coroutine.
    ///
    /// # Errors
    /// [`Error::StackAllocation`] when the stack cannot be allocated (it
    /// names the size that was rounded up to, or the one asked for if that
    /// cannot be rounded), [`Error::ClosureTooLarge`] when the closure's
    /// state would take more than half of the stack.
    ///
    /// ```
    /// use ucoro::{Builder, Error};
    ///
    /// let err = Builder::new()
    ///     .stack_size(usize::MAX)
    ///     .build(|_: &ucoro::Yielder<(), ()>, ()| ())
    ///     .unwrap_err();
    /// assert!(matches!(err, Error::StackAllocation { .. }));
    /// ```
    pub fn build<I: 'static, Y: 'static, R, F>(self, func: F) -> Result<Coroutine<I, Y, R>, Error>
    where
        F: FnOnce(&Yielder<I, Y>, I) -> R + 'static,
    {
        self.create(func)
    }

    /// `build` without the `'static` bounds, for the crate's own users
    /// that keep coroutines from outliving their borrows by other means.
    pub(crate) fn create<I, Y, R, F>(self, func: F) -> Result<Coroutine<I, Y, R>, Error>
    where
        F: FnOnce(&Yielder<I, Y>, I) -> R,
    {
        Coroutine::create(self.stack_size, func)
    }
}
