//! The safe coroutine: a closure that runs on a stack of its own, is resumed
//! with an input and suspends with a value, built on the C coroutine layer.
//!
//! Memory layout: no heap allocation. `ucoro_create` puts the C `struct
//! coroutine` at the top of the coroutine's own stack and reserves room
//! next to it for `Inner`: the values in transit and the closure (which the
//! first resume moves into the coroutine's frame). Both stay put until
//! `ucoro_destroy`, as the C struct must (its address is part of its magic
//! and of every `caller` link). Everything both sides touch is in a `Cell`,
//! because the resumer and the coroutine reach the block through shared
//! pointers while the other side is switched out.

use std::any::Any;
use std::cell::Cell;
use std::ffi::c_void;
use std::io;
use std::marker::PhantomData;
use std::mem::{align_of, size_of};
use std::panic::{self, AssertUnwindSafe};
use std::ptr::{self, NonNull};

use crate::{sys, Error};

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

/// Sent from the resumer into the coroutine.
enum Message<I> {
    Resume(I),
    /// The `Coroutine` is being dropped: unwind the stack.
    Unwind,
}

/// The panic payload that unwinds a dropped coroutine's stack.
struct ForcedUnwind;

/// How the closure ended.
enum Outcome<R> {
    Returned(R),
    Panicked(Box<dyn Any + Send>),
    /// Unwound on drop.
    Unwound,
}

/// The part a [`Yielder`] sees (no return type, no closure type).
#[repr(C)]
struct Header<I, Y> {
    /// The C coroutine, just below this block on the same stack.
    co: *mut sys::coroutine,
    inbox: Cell<Option<Message<I>>>,
    outbox: Cell<Option<Y>>,
    /// Set once a forced unwind has begun; a suspend after that gives
    /// control back to the dropper for good.
    unwinding: Cell<bool>,
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
    let outcome = match (header.inbox.take(), inner.func.take()) {
        (Some(Message::Resume(input)), Some(func)) => {
            let yielder = Yielder::from_header(header);
            // No panic may cross into C: catch everything, hand it over.
            match panic::catch_unwind(AssertUnwindSafe(move || func(yielder, input))) {
                Ok(value) => Outcome::Returned(value),
                Err(payload) if payload.is::<ForcedUnwind>() => Outcome::Unwound,
                Err(payload) => Outcome::Panicked(payload),
            }
        }
        // Not reachable: the first switch in always carries an input and
        // the closure is taken only here.
        _ => Outcome::Unwound,
    };
    inner.shared.outcome.set(Some(outcome));
    ptr::null_mut()
}

/// The handle a coroutine's closure uses to suspend itself.
///
/// It only exists behind a reference handed to the closure, cannot leave
/// the closure (the reference's lifetime is the closure call) and is neither
/// `Send` nor `Sync`.
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

    /// Suspends the coroutine, handing `value` to whoever called
    /// [`Coroutine::resume`]; returns the input of the next `resume`.
    ///
    /// # Panics
    /// If called from another coroutine than the one this `Yielder` belongs
    /// to (possible only by passing it into a nested coroutine). When the
    /// `Coroutine` is dropped while suspended, this call unwinds the stack
    /// (with a private payload) so that destructors run.
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
        let header = &self.header;
        if header.unwinding.get() {
            self.suspend_while_unwinding();
        }
        header.outbox.set(Some(value));
        if !self.yield_to_caller() {
            self.refused();
        }
        match header.inbox.take() {
            Some(Message::Resume(input)) => input,
            other => self.resumed_to_unwind(other),
        }
    }

    /// User code caught the forced unwind and tried to go on. Give control
    /// back to the dropper, which will never resume us: the coroutine cannot
    /// be kept alive this way.
    #[cold]
    #[inline(never)]
    fn suspend_while_unwinding(&self) -> ! {
        if self.yield_to_caller() {
            unreachable!("ucoro: a coroutine was resumed after it was dropped");
        }
        panic!("ucoro: Yielder::suspend called outside the coroutine it belongs to");
    }

    /// The C layer refused: this is not the running coroutine. The value
    /// was not handed over; take it back and drop it.
    #[cold]
    #[inline(never)]
    fn refused(&self) -> ! {
        drop(self.header.outbox.take());
        panic!("ucoro: Yielder::suspend called outside the coroutine it belongs to");
    }

    /// Resumed by the dropper: unwind this coroutine's stack.
    #[cold]
    #[inline(never)]
    fn resumed_to_unwind(&self, message: Option<Message<I>>) -> ! {
        match message {
            Some(Message::Unwind) => {
                self.header.unwinding.set(true);
                panic::resume_unwind(Box::new(ForcedUnwind))
            }
            _ => unreachable!("ucoro: coroutine resumed without an input"),
        }
    }

    /// Switches back to whoever resumed this coroutine; returns true when
    /// it is resumed again, false at once if this is not the running
    /// coroutine (nothing happened).
    #[inline(always)]
    fn yield_to_caller(&self) -> bool {
        // SAFETY: `co` is this coroutine's live C struct (the Yielder only
        // exists while its closure runs). ucoro_yield_from checks that it
        // is the running coroutine and refuses (returning NULL, switching
        // nowhere) otherwise. Our resumer always passes a non-null pointer,
        // so NULL can only mean refused.
        let back = unsafe {
            sys::ucoro_yield_from(self.header.co, ptr::null_mut::<c_void>().wrapping_add(1))
        };
        !back.is_null()
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
pub struct Coroutine<I, Y, R> {
    /// The C coroutine (made by `ucoro_create`), at the top of its stack.
    co: NonNull<sys::coroutine>,
    /// Our block next to it on the same stack.
    shared: NonNull<Shared<I, Y, R>>,
    started: bool,
    finished: bool,
    /// Owns the `Inner` block (for drop check) and keeps the type `!Send`
    /// and `!Sync` (see above).
    _owns: PhantomData<(Shared<I, Y, R>, *mut ())>,
}

impl<I, Y, R> Coroutine<I, Y, R> {
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

    fn create<F>(stack_size: usize, func: F) -> Result<Self, Error>
    where
        F: FnOnce(&Yielder<I, Y>, I) -> R + 'static,
    {
        // Room for Inner, aligned beyond the 16 bytes C guarantees if the
        // closure's state needs it.
        let align = align_of::<Inner<I, Y, R, F>>();
        let extra = size_of::<Inner<I, Y, R, F>>() + align.saturating_sub(16);
        let mut block: *mut c_void = ptr::null_mut();
        // SAFETY: plain call; on success C hands us `extra` writable bytes
        // at `block`, valid until ucoro_destroy.
        let co = unsafe {
            sys::ucoro_create(
                stack_size,
                Some(coroutine_main::<I, Y, R, F>),
                extra,
                &mut block,
            )
        };
        let Some(co) = NonNull::new(co) else {
            return Err(Error::StackAllocation {
                size: stack_size,
                source: io::Error::last_os_error(),
            });
        };
        let inner = block
            .wrapping_add(block.align_offset(align))
            .cast::<Inner<I, Y, R, F>>();
        // SAFETY: `inner` is aligned and its size_of bytes lie within the
        // `extra` bytes reserved for us; nothing else uses that memory.
        unsafe {
            inner.write(Inner {
                shared: Shared {
                    header: Header {
                        co: co.as_ptr(),
                        inbox: Cell::new(None),
                        outbox: Cell::new(None),
                        unwinding: Cell::new(false),
                    },
                    outcome: Cell::new(None),
                    drop_inner: drop_inner::<I, Y, R, F>,
                },
                func: Cell::new(Some(func)),
            })
        };
        Ok(Coroutine {
            co,
            // SAFETY: derived from the non-null block just written.
            shared: unsafe { NonNull::new_unchecked(inner.cast::<Shared<I, Y, R>>()) },
            started: false,
            finished: false,
            _owns: PhantomData,
        })
    }

    /// The shared block, with a lifetime not tied to `self` so that the
    /// flags in `self` stay writable while it is in use.
    fn shared<'a>(&self) -> &'a Shared<I, Y, R> {
        // SAFETY: the block lives until `drop` frees it, after its last use
        // there; only shared references to it are ever made.
        unsafe { &*self.shared.as_ptr() }
    }

    /// Runs the coroutine until it suspends or returns, passing `input`: to
    /// the closure as its argument on the first call, as the result of
    /// [`Yielder::suspend`] after that.
    ///
    /// # Errors
    /// [`Error::Finished`] if the coroutine has already returned or
    /// panicked; the input is dropped and nothing else happens.
    ///
    /// # Panics
    /// Resumes the panic if the closure panics (the coroutine is then
    /// finished).
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
        let raw = self.co.as_ptr();
        let shared = self.shared();
        shared.header.inbox.set(Some(Message::Resume(input)));
        // SAFETY: `raw` was made by ucoro_create and not destroyed;
        // `&mut self` means it is not running nor waiting on the chain (it
        // only runs inside resume or drop). The argument is our block, which
        // `coroutine_main` expects.
        unsafe { sys::coroutine_yieldto(raw, self.shared.as_ptr().cast()) };
        self.started = true;
        match shared.header.outbox.take() {
            Some(value) => Ok(CoroutineResult::Yield(value)),
            None => self.ended(),
        }
    }

    /// After a resume that brought no value: the closure returned or
    /// panicked, or the C layer refused the switch.
    #[cold]
    #[inline(never)]
    fn ended(&mut self) -> Result<CoroutineResult<Y, R>, Error> {
        let shared = self.shared();
        match shared.outcome.take() {
            Some(Outcome::Returned(value)) => {
                self.finished = true;
                Ok(CoroutineResult::Return(value))
            }
            Some(Outcome::Panicked(payload)) => {
                self.finished = true;
                panic::resume_unwind(payload)
            }
            Some(Outcome::Unwound) | None => {
                // The C layer refused to switch: nothing ran.
                shared.header.inbox.take();
                Err(Error::Running)
            }
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
        self.started
    }

    /// Whether the closure has returned or panicked; `resume` then fails
    /// with [`Error::Finished`].
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
    /// reserved it (the requested size rounded up to at least 16 KiB, whole
    /// pages and its size class: at most a quarter more; see
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
    /// its top: use it to size stacks. 0 once the coroutine has finished
    /// (its stack is gone). A stack reused from the pool may count pages an
    /// earlier coroutine touched.
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
    /// # Ok::<(), ucoro::Error>(())
    /// ```
    pub fn stack_used(&self) -> usize {
        // SAFETY: the struct is initialised (or its stack released, which
        // ucoro_stack_used reports as 0) and not running.
        unsafe { sys::ucoro_stack_used(self.co.as_ptr()) }
    }
}

impl<I, Y, R> Drop for Coroutine<I, Y, R> {
    fn drop(&mut self) {
        let raw = self.co.as_ptr();
        let mut deferred_panic = None;
        if self.started && !self.finished {
            let shared = self.shared();
            shared.header.inbox.set(Some(Message::Unwind));
            // SAFETY: as in resume: initialised, suspended, not on the chain.
            unsafe { sys::coroutine_yieldto(raw, self.shared.as_ptr().cast()) };
            match shared.outcome.take() {
                Some(Outcome::Panicked(payload)) => deferred_panic = Some(payload),
                Some(Outcome::Returned(_)) | Some(Outcome::Unwound) => {}
                None => {
                    // It suspended again while unwinding (user code caught
                    // the unwind): its stack still holds live frames that
                    // must never run, so leak it rather than free it.
                    return;
                }
            }
        }
        // SAFETY: the coroutine is not running (never started, finished, or
        // just unwound to its end). Our block is dropped in place first
        // (a closure that never ran is dropped here), then ucoro_destroy
        // frees the stack that holds it and the C struct; nothing uses
        // either afterwards.
        let drop_inner = self.shared().drop_inner;
        unsafe {
            drop_inner(self.shared.as_ptr());
            sys::ucoro_destroy(raw);
        }
        if let Some(payload) = deferred_panic {
            // A destructor panicked during the unwind: report it, unless we
            // are already unwinding (a second panic would abort).
            if !std::thread::panicking() {
                panic::resume_unwind(payload);
            }
        }
    }
}

impl<I, Y, R> std::fmt::Debug for Coroutine<I, Y, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Coroutine")
            .field("started", &self.started)
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
    pub fn new() -> Self {
        Builder::default()
    }

    /// Sets the stack size in bytes; 0 means the default. The C library
    /// rounds it up to at least 16 KiB, to whole pages and to its size class
    /// (at most a quarter more; [`Coroutine::stack_size`] tells the result);
    /// a size too large to allocate makes [`build`](Self::build) fail.
    ///
    /// ```
    /// let co = ucoro::Builder::new()
    ///     .stack_size(1)
    ///     .build(|_: &ucoro::Yielder<(), ()>, ()| ())
    ///     .unwrap();
    /// assert_eq!(co.stack_size(), 16 * 1024);
    /// ```
    pub fn stack_size(mut self, bytes: usize) -> Self {
        self.stack_size = bytes;
        self
    }

    /// Creates the coroutine.
    ///
    /// # Errors
    /// [`Error::StackAllocation`] when the stack cannot be allocated.
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
    pub fn build<I, Y, R, F>(self, func: F) -> Result<Coroutine<I, Y, R>, Error>
    where
        F: FnOnce(&Yielder<I, Y>, I) -> R + 'static,
    {
        Coroutine::create(self.stack_size, func)
    }
}
