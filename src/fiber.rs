//! Fibers: a future whose body is ordinary synchronous code on a stack of
//! its own, which awaits other futures by suspending that stack.
//!
//! A `Fiber` is a coroutine whose input is the `Context` of the poll that
//! resumes it and which yields `()` whenever a future it awaits is
//! pending: each `poll` resumes it, a pending `Awaiter::block_on` suspends
//! it (the poll returns `Pending`) and its return is the future's output.

use std::cell::Cell;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::{pin, Pin};
use std::ptr::NonNull;
use std::task::{Context, Poll};

use crate::{Builder, Coroutine, CoroutineResult, Error, Yielder};

/// The input of a fiber's coroutine: the `Context` of the poll that
/// resumes it, valid until the coroutine suspends or returns (the poll
/// waits for that).
struct PollContext(NonNull<Context<'static>>);

/// A future that runs a synchronous closure on a stack of its own; inside,
/// [`Awaiter::block_on`] awaits other futures.
///
/// Each `poll` resumes the closure where it was. When a future given to
/// `block_on` is pending, the fiber's stack is suspended and its `poll`
/// returns [`Poll::Pending`]; the awaited future was polled with that
/// poll's waker, so the executor polls the fiber again when it is woken,
/// and `block_on` polls the awaited future again. When the closure
/// returns, `poll` returns [`Poll::Ready`] with its value. So code that
/// cannot be made `async` (a callback, a parser, a deep recursion, C code
/// calling back into Rust) can await futures, with any executor.
///
/// ```
/// use std::future::Future;
/// use std::pin::Pin;
/// use std::task::{Context, Poll};
///
/// /// Pending `n` times (waking itself each time), then ready with `n`.
/// struct CountDown(u32, u32);
/// impl Future for CountDown {
///     type Output = u32;
///     fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<u32> {
///         if self.0 == 0 {
///             return Poll::Ready(self.1);
///         }
///         self.0 -= 1;
///         cx.waker().wake_by_ref();
///         Poll::Pending
///     }
/// }
///
/// // Synchronous code, with no `async` in sight, awaiting futures.
/// fn sum_of_both(a: &ucoro::Awaiter) -> u32 {
///     a.block_on(CountDown(2, 40)) + a.block_on(CountDown(1, 2))
/// }
///
/// let fiber = ucoro::Fiber::new(|a| sum_of_both(a));
/// let total = futures_executor::block_on(fiber);
/// println!("{total}");
/// assert_eq!(total, 42);
/// ```
///
/// prints
///
/// ```text
/// 42
/// ```
///
/// # Dropping
/// Dropping a pending fiber unwinds its stack, as dropping a suspended
/// [`Coroutine`] does: the awaited future and everything else on the
/// fiber's stack are dropped. A fiber that is polled again after it
/// returned panics, as futures may.
///
/// # Not `Send`
/// A pending fiber's stack holds whatever its closure touched — `Rc`s,
/// `RefCell` borrows, the futures it awaits, which need not be `Send` —
/// and none of it shows in its type (as for [`Coroutine`]). So `Fiber` is
/// neither `Send` nor `Sync`: a multi-threaded executor that may move a
/// task between threads (`tokio::spawn`, `async_std::task::spawn`) does
/// not accept it. Run it where it stays on one thread: a local executor
/// (`futures_executor::LocalPool`, `tokio::task::LocalSet` with
/// `spawn_local`, `tokio`'s current-thread runtime), `block_on`, or
/// awaited from another future that stays on one thread. It may await
/// futures that are `Send` or not.
///
/// ```compile_fail
/// fn assert_send<T: Send>(_: T) {}
/// assert_send(ucoro::Fiber::new(|_| ()));
/// ```
#[must_use = "futures do nothing unless they are polled"]
pub struct Fiber<R> {
    coroutine: Coroutine<PollContext, (), R>,
}

/// Pinning guarantees nothing that a fiber needs: its state is on its own
/// stack and moving a `Fiber` moves only pointers to it.
impl<R> Unpin for Fiber<R> {}

impl<R> Fiber<R> {
    /// Makes a fiber with the default stack size (16 MiB of address space;
    /// only the pages it touches cost memory). The closure does not run
    /// until the first poll.
    ///
    /// The closure is `'static`, as a [`Coroutine`]'s is (a pending fiber
    /// may be leaked).
    ///
    /// # Panics
    /// If the system refuses the stack's memory; use
    /// [`with_builder`](Self::with_builder) to get an [`Error`].
    ///
    /// ```
    /// use std::cell::Cell;
    /// use std::rc::Rc;
    ///
    /// let ran = Rc::new(Cell::new(false));
    /// let flag = ran.clone();
    /// let fiber = ucoro::Fiber::new(move |a| {
    ///     flag.set(true);
    ///     a.block_on(std::future::ready(5)) * 2
    /// });
    /// assert!(!ran.get(), "not before the first poll");
    /// assert_eq!(futures_executor::block_on(fiber), 10);
    /// assert!(ran.get());
    /// ```
    pub fn new<F>(func: F) -> Self
    where
        F: FnOnce(&Awaiter) -> R + 'static,
    {
        Fiber::with_builder(Builder::new(), func).unwrap_or_else(|e| panic!("ucoro: {e}"))
    }

    /// Makes a fiber with the settings of `builder`.
    ///
    /// # Errors
    /// As [`Builder::build`].
    ///
    /// ```
    /// use ucoro::{Builder, Fiber};
    ///
    /// let fiber = Fiber::with_builder(Builder::new().stack_size(128 << 10), |a| {
    ///     a.block_on(async { 1 + 1 })
    /// })?;
    /// assert_eq!(futures_executor::block_on(fiber), 2);
    /// # Ok::<(), ucoro::Error>(())
    /// ```
    pub fn with_builder<F>(builder: Builder, func: F) -> Result<Self, Error>
    where
        F: FnOnce(&Awaiter) -> R + 'static,
    {
        let coroutine = builder.build(move |yielder: &Yielder<PollContext, ()>, first| {
            let awaiter = Awaiter {
                yielder: NonNull::from(yielder),
                context: Cell::new(Some(first)),
                polling: Cell::new(false),
                _not_send: PhantomData,
            };
            func(&awaiter)
        })?;
        Ok(Fiber { coroutine })
    }
}

impl<R> Future for Fiber<R> {
    type Output = R;

    /// Resumes the closure until it returns (`Ready`) or a future it awaits
    /// is pending (`Pending`).
    ///
    /// # Panics
    /// Resumes a panic of the closure; panics if polled after it returned
    /// or panicked.
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<R> {
        let this = self.get_mut();
        // The coroutine uses it only until it suspends or returns, all
        // inside this call (see `Awaiter::block_on`).
        let context = PollContext(NonNull::from(cx).cast());
        match this.coroutine.resume(context) {
            Ok(CoroutineResult::Yield(())) => Poll::Pending,
            Ok(CoroutineResult::Return(value)) => Poll::Ready(value),
            Err(Error::Finished) => panic!("ucoro: Fiber polled after it completed"),
            Err(e) => panic!("ucoro: {e}"),
        }
    }
}

impl<R> fmt::Debug for Fiber<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fiber")
            .field("coroutine", &self.coroutine)
            .finish()
    }
}

/// What a [`Fiber`]'s closure awaits futures with.
///
/// It exists only inside the closure (the fiber hands it over by
/// reference), and it is neither `Send` nor `Sync`: another thread cannot
/// suspend the fiber.
///
/// ```compile_fail
/// let fiber = ucoro::Fiber::new(|a: &ucoro::Awaiter| {
///     std::thread::scope(|t| {
///         t.spawn(|| a.block_on(async { 1 }));
///     });
/// });
/// ```
///
/// ```
/// let fiber = ucoro::Fiber::new(|a: &ucoro::Awaiter| {
///     let x = a.block_on(async { 20 });
///     let y = a.block_on(async { 22 });
///     x + y
/// });
/// assert_eq!(futures_executor::block_on(fiber), 42);
/// ```
pub struct Awaiter {
    /// The fiber's yielder, which lives as long as the closure runs, that
    /// is as long as this awaiter (a local of the closure's first frame).
    yielder: NonNull<Yielder<PollContext, ()>>,
    /// The current poll's context; `None` while the fiber is suspended or
    /// being unwound by its drop, when there is no poll.
    context: Cell<Option<PollContext>>,
    /// `block_on` is inside the `poll` of the future it awaits.
    polling: Cell<bool>,
    /// Holds a raw pointer to a thread's state: not `Send`, not `Sync`.
    _not_send: PhantomData<*mut ()>,
}

impl Awaiter {
    /// Awaits `future` from synchronous code: polls it with the waker of
    /// the poll that is running the fiber, and while it is pending,
    /// suspends the fiber (that poll returns `Pending`), polling it again
    /// each time the fiber is polled. Returns its output.
    ///
    /// # Panics
    /// - If called from a coroutine nested inside the fiber (a
    ///   [`Coroutine`], a [`Generator`](crate::Generator), a scoped one or
    ///   [`on_stack`](crate::on_stack)'s), which it cannot suspend the
    ///   fiber from, or from inside the `poll` of a future that this same
    ///   awaiter is awaiting (that poll would hold a `Context` of a poll
    ///   that is over by the time the fiber is resumed). Nothing is polled
    ///   then.
    /// - With the awaited future's own panic.
    ///
    /// ```
    /// use std::future::Future;
    /// use std::pin::Pin;
    /// use std::task::{Context, Poll};
    ///
    /// // Pending once, then ready.
    /// struct YieldOnce(bool);
    /// impl Future for YieldOnce {
    ///     type Output = &'static str;
    ///     fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<&'static str> {
    ///         if std::mem::replace(&mut self.0, true) {
    ///             Poll::Ready("ready")
    ///         } else {
    ///             cx.waker().wake_by_ref();
    ///             Poll::Pending
    ///         }
    ///     }
    /// }
    ///
    /// let mut pool = futures_executor::LocalPool::new();
    /// let out = pool.run_until(ucoro::Fiber::new(|a| a.block_on(YieldOnce(false))));
    /// assert_eq!(out, "ready");
    /// ```
    pub fn block_on<T: Future>(&self, future: T) -> T::Output {
        if !self.yielder().is_running() {
            panic!(
                "ucoro: Awaiter::block_on called from a coroutine nested inside the fiber; \
                 only the fiber's own stack can be suspended"
            );
        }
        if self.polling.get() {
            panic!(
                "ucoro: Awaiter::block_on called inside the poll of a future it awaits; \
                 that poll would outlive its Context"
            );
        }
        let mut future = pin!(future);
        loop {
            if let Some(PollContext(mut context)) = self.context.take() {
                let polled = {
                    // Puts the context back and clears `polling` when the
                    // poll is over, even if the future panics (the closure
                    // may catch that and await something else).
                    let _polling = Polling::start(self, context);
                    // SAFETY: the context of the poll that is running this
                    // fiber right now (`Fiber::poll` passes it on every
                    // resume and waits for the fiber to suspend or return
                    // before it uses it again); the fiber's stack is running
                    // (checked above), so that poll is not over. The only
                    // reference made from it is this one, ended before the
                    // fiber can suspend (no `block_on` inside, by
                    // `polling`).
                    future.as_mut().poll(unsafe { context.as_mut() })
                };
                if let Poll::Ready(output) = polled {
                    return output;
                }
                self.context.set(None);
            }
            // Pending (or no poll: the fiber is being unwound by its drop,
            // where `suspend` stops it for good). No context is kept
            // across the suspension: the next poll brings its own.
            let PollContext(next) = self.yielder().suspend(());
            self.context.set(Some(PollContext(next)));
        }
    }

    fn yielder(&self) -> &Yielder<PollContext, ()> {
        // SAFETY: the yielder outlives this awaiter (field doc).
        unsafe { self.yielder.as_ref() }
    }
}

impl fmt::Debug for Awaiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Awaiter").finish_non_exhaustive()
    }
}

/// While `block_on` polls: `polling` is set, and the context is put back
/// when it is over.
struct Polling<'a> {
    awaiter: &'a Awaiter,
    context: NonNull<Context<'static>>,
}

impl<'a> Polling<'a> {
    fn start(awaiter: &'a Awaiter, context: NonNull<Context<'static>>) -> Self {
        awaiter.polling.set(true);
        Polling { awaiter, context }
    }
}

impl Drop for Polling<'_> {
    fn drop(&mut self) {
        self.awaiter.polling.set(false);
        self.awaiter.context.set(Some(PollContext(self.context)));
    }
}
