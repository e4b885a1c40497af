//! Scoped coroutines: coroutines whose closures, inputs and yields borrow
//! what outlives a scope, as `std::thread::scope` does for threads.
//!
//! They are the crate's one coroutine type ([`Coroutine`]), made without
//! the `'static` bounds, and owned by the scope rather than by their
//! handle: each lives in a heap slot that both its handle and the scope's
//! registry point to. Dropping the handle ends the coroutine at once (and
//! frees the slot); whatever is still in the registry when the scope's
//! closure returns (a forgotten handle, one held by a leaked value) is
//! ended there, before `scope` returns. The proof is in [`scope`]'s docs.

use std::any::Any;
use std::cell::{Cell, RefCell, UnsafeCell};
use std::fmt;
use std::iter::FusedIterator;
use std::marker::PhantomData;
use std::panic::{self, AssertUnwindSafe};
use std::ptr::NonNull;

use crate::coroutine::Closed;
use crate::generator::next_value;
use crate::{Builder, Coroutine, CoroutineResult, Error, Yielder};

/// Runs `f` with a [`Scope`] in which coroutines may borrow anything that
/// outlives the call, and returns what `f` returns once every coroutine
/// made in the scope has ended.
///
/// When `f` returns (or panics), the coroutines of the scope that are still
/// there — their handle was forgotten, or is held by something leaked —
/// are ended: one not started is dropped with its closure, a suspended one
/// is unwound so that its destructors run, as dropping its handle would
/// do. Only then does `scope` return, or resume `f`'s panic. A panic that
/// a coroutine raises while it is unwound there (it caught the unwind and
/// panicked; a destructor's panic that escapes during an unwind aborts, as
/// anywhere in Rust) is resumed by `scope` once every other coroutine has
/// been ended too.
///
/// ```
/// let words = vec!["one", "two", "three"];
/// let mut lengths = Vec::new();
/// ucoro::scope(|s| {
///     // A generator over a borrowed `Vec`.
///     let mut gen = s.generator(|y| words.iter().for_each(|w| y.suspend(*w)));
///     // A coroutine that pushes to a borrowed `&mut Vec`.
///     let mut sink = s.coroutine(|y, mut word: &str| loop {
///         lengths.push(word.len());
///         word = y.suspend(());
///     });
///     for word in gen.by_ref() {
///         println!("{word}");
///         sink.resume(word).unwrap();
///     }
/// });
/// println!("{lengths:?}");
/// assert_eq!(lengths, [3, 3, 5]);
/// ```
///
/// prints
///
/// ```text
/// one
/// two
/// three
/// [3, 3, 5]
/// ```
///
/// # Why this is sound
/// A coroutine's frames may hold borrows that its closure, inputs and
/// yields brought in, all of which outlive `'scope` (the bounds of
/// [`Scope::coroutine`]), hence the whole call of `scope`; after `scope`
/// returns they may dangle. So it suffices that no frame of a coroutine of
/// the scope can run, or be reached by other code, once `scope` has
/// returned:
///
/// 1. **Every coroutine is tracked.** A coroutine is made only by the
///    scope, which puts it in a heap slot it records before handing out
///    the handle. Only dropping the handle takes a slot out of the record,
///    after ending the coroutine. `mem::forget` of a handle, an `Rc`
///    cycle, a handle moved into a coroutine that is then leaked: the slot
///    stays recorded.
/// 2. **Every tracked coroutine is ended before `scope` returns.** `scope`
///    catches a panic of `f` (`f` cannot return or unwind past it without
///    going through that), then ends every recorded coroutine in turn,
///    also those that destructors running meanwhile make, and only then
///    returns or resumes the panic. A coroutine that was not started has
///    no frames; one that finished has none left; a suspended one is
///    unwound to its end.
/// 3. **Where it cannot be unwound, the process aborts.** Built with
///    `panic = "abort"`, there is no unwinding. A coroutine that catches
///    the unwind that ends it and suspends again, or that suspended in a
///    destructor while a panic unwound it (input type other than `()`, see
///    [`Yielder::suspend`]), stops for good. One that suspended while its
///    resumer was panicking (it ran in a destructor during a panic) may be
///    in the middle of an unwind of its own, where a second one would
///    abort; once the thread no longer panics it provably is not, so a
///    handle dropped while that panic lasts leaves it to the end of the
///    scope, which unwinds it then, unless the whole scope runs inside
///    that panic. A plain
///    [`Coroutine`] leaks its stack then, which is sound only because
///    everything such a stack reaches is `'static`. A scoped one may still
///    reach borrowed data, and not only from its own frames, which would
///    never run again: a scoped thread that it started
///    (`std::thread::scope` inside the coroutine) goes on running and
///    reading the borrowed data while its frame waits, suspended, for
///    that thread to be joined. So a scoped coroutine whose stack would be
///    leaked aborts the process instead, with a message, at the point
///    where it is dropped (its handle, or the end of the scope).
/// 4. **No handle outlives the scope.** A handle's type carries `'scope`,
///    which the closure `f` receives as a universally quantified lifetime:
///    nothing of that type can be returned from `f` nor stored anywhere
///    that outlives the call (see the `compile_fail` examples below).
///    Every use of a handle goes through its slot, which lives until the
///    handle is dropped or, for handles still around when `f` has returned,
///    until every coroutine is ended; after that only leaked values (never
///    used again) can hold a handle. A handle used by a destructor while the
///    scope ends finds its coroutine already ended, and says so
///    ([`Error::Finished`]).
/// 5. **`'scope` cannot be shortened.** [`Scope`] is invariant in
///    `'scope`, so a coroutine cannot borrow a local of `f` (or of another
///    coroutine) that dies before the scope ends.
/// 6. **Nothing crosses threads.** Handles and [`Scope`] are neither
///    `Send` nor `Sync`: the scope ends coroutines on the thread that made
///    them, and no other thread can make, resume or drop one.
///
/// 7. **A scope that never returns keeps what it lends.** If `scope`
///    runs inside a coroutine that is suspended inside `f` and then leaked
///    (a plain [`Coroutine`] or [`Fiber`](crate::Fiber), whose stacks may
///    be leaked), `scope` never returns and its coroutines are never
///    ended; but everything they borrow is then owned by that coroutine's
///    leaked frames, which are never freed, or is `'static`. Inside a
///    scoped coroutine, that coroutine is itself ended by its own scope:
///    the unwind goes through this `scope`, which ends its coroutines on
///    the way.
///
/// Points 1 and 2 are why a scope owns its coroutines instead of each
/// handle owning its own: `scope` cannot rely on destructors of handles
/// having run.
///
/// A handle cannot escape the scope:
///
/// ```compile_fail
/// let escaped = ucoro::scope(|s| s.generator(|y| y.suspend(1)));
/// ```
///
/// nor be sent to a thread that outlives it:
///
/// ```compile_fail
/// let v = vec![1, 2, 3];
/// ucoro::scope(|s| {
///     let mut g = s.generator(|y| v.iter().for_each(|x| y.suspend(*x)));
///     std::thread::spawn(move || g.next());
/// });
/// ```
///
/// nor to a scoped thread (it is not `Send`):
///
/// ```compile_fail
/// let v = vec![1, 2, 3];
/// ucoro::scope(|s| {
///     let mut g = s.generator(|y| v.iter().for_each(|x| y.suspend(*x)));
///     std::thread::scope(|t| {
///         t.spawn(move || g.next());
///     });
/// });
/// ```
///
/// nor can a scoped thread use the scope to make coroutines there (`Scope`
/// is not `Sync`):
///
/// ```compile_fail
/// ucoro::scope(|s| {
///     std::thread::scope(|t| {
///         t.spawn(|| s.generator(|y| y.suspend(1)).next());
///     });
/// });
/// ```
///
/// A coroutine cannot borrow a local of the scope's closure, which dies
/// before the scope ends its coroutines:
///
/// ```compile_fail
/// ucoro::scope(|s| {
///     let local = vec![1, 2, 3];
///     let g = s.generator(|y| local.iter().for_each(|x| y.suspend(*x)));
///     std::mem::forget(g);
/// });
/// ```
///
/// nor a local of another coroutine's frame:
///
/// ```compile_fail
/// ucoro::scope(|s| {
///     let mut outer = s.generator(|y| {
///         let local = 7;
///         let inner = s.generator(|y2| y2.suspend(&local));
///         std::mem::forget(inner);
///         y.suspend(0);
///     });
///     outer.next();
/// });
/// ```
///
/// # Panics
/// Resumes a panic of `f`, or else the first panic raised while the
/// scope's remaining coroutines were unwound.
pub fn scope<'env, F, T>(f: F) -> T
where
    F: for<'scope> FnOnce(&'scope Scope<'scope, 'env>) -> T,
{
    let scope = Scope {
        registry: Registry {
            slots: RefCell::new(Vec::new()),
            closing: Cell::new(false),
        },
        _scope: PhantomData,
        _env: PhantomData,
    };
    // `f` must not leave without the coroutines being ended: catch its
    // panic, end them, then resume it.
    let result = panic::catch_unwind(AssertUnwindSafe(|| f(&scope)));
    let cleanup_panic = scope.registry.end_all();
    match result {
        Err(payload) => panic::resume_unwind(payload),
        Ok(value) => {
            if let Some(payload) = cleanup_panic {
                panic::resume_unwind(payload);
            }
            value
        }
    }
}

/// Where the coroutines of one call of [`scope`] are made; see there.
///
/// `'scope` is the lifetime of the scope itself: everything a coroutine's
/// closure, inputs and yields borrow must outlive it. `'env` is the
/// lifetime of what the scope's closure borrows from outside.
pub struct Scope<'scope, 'env: 'scope> {
    registry: Registry<'scope>,
    /// Invariant in both lifetimes (point 5 of `scope`'s proof).
    _scope: PhantomData<&'scope mut &'scope ()>,
    _env: PhantomData<&'env mut &'env ()>,
}

impl<'scope, 'env> Scope<'scope, 'env> {
    /// Makes a coroutine in this scope, with the default stack size; like
    /// [`Coroutine::new`], but its closure, input and yield types need only
    /// outlive the scope.
    ///
    /// # Panics
    /// If the system refuses the stack's memory; use
    /// [`coroutine_with`](Self::coroutine_with) to get an [`Error`].
    ///
    /// ```
    /// use ucoro::CoroutineResult;
    ///
    /// let mut log = Vec::new();
    /// ucoro::scope(|s| {
    ///     let mut co = s.coroutine(|y, mut line: &str| {
    ///         while !line.is_empty() {
    ///             log.push(line.to_uppercase());
    ///             line = y.suspend(log.len());
    ///         }
    ///     });
    ///     assert_eq!(co.resume("a").unwrap(), CoroutineResult::Yield(1));
    ///     assert_eq!(co.resume("b").unwrap(), CoroutineResult::Yield(2));
    ///     assert_eq!(co.resume("").unwrap(), CoroutineResult::Return(()));
    /// });
    /// assert_eq!(log, ["A", "B"]);
    /// ```
    pub fn coroutine<I, Y, R, F>(&'scope self, func: F) -> ScopedCoroutine<'scope, I, Y, R>
    where
        F: FnOnce(&Yielder<I, Y>, I) -> R + 'scope,
        I: 'scope,
        Y: 'scope,
        R: 'scope,
    {
        self.coroutine_with(Builder::new(), func)
            .unwrap_or_else(|e| panic!("ucoro: {e}"))
    }

    /// Makes a coroutine in this scope with the settings of `builder`.
    ///
    /// # Errors
    /// As [`Builder::build`].
    ///
    /// ```
    /// use ucoro::{Builder, CoroutineResult};
    ///
    /// let data = [1, 2, 3];
    /// ucoro::scope(|s| {
    ///     let mut co = s.coroutine_with(Builder::new().stack_size(64 << 10), |_: &ucoro::Yielder<(), ()>, ()| {
    ///         data.iter().sum::<i32>()
    ///     })?;
    ///     assert_eq!(co.resume(())?, CoroutineResult::Return(6));
    ///     Ok::<(), ucoro::Error>(())
    /// })?;
    /// # Ok::<(), ucoro::Error>(())
    /// ```
    pub fn coroutine_with<I, Y, R, F>(
        &'scope self,
        builder: Builder,
        func: F,
    ) -> Result<ScopedCoroutine<'scope, I, Y, R>, Error>
    where
        F: FnOnce(&Yielder<I, Y>, I) -> R + 'scope,
        I: 'scope,
        Y: 'scope,
        R: 'scope,
    {
        let coroutine = builder.create(func)?;
        Ok(ScopedCoroutine {
            slot: self.registry.add(coroutine),
            registry: &self.registry,
            _scope: PhantomData,
        })
    }

    /// Makes a generator in this scope, with the default stack size; like
    /// [`Generator::new`](crate::Generator::new), but its closure and yield
    /// type need only outlive the scope.
    ///
    /// # Panics
    /// If the system refuses the stack's memory; use
    /// [`generator_with`](Self::generator_with) to get an [`Error`].
    ///
    /// ```
    /// let text = String::from("a borrowed string");
    /// let words: Vec<&str> = ucoro::scope(|s| {
    ///     s.generator(|y| text.split(' ').for_each(|w| y.suspend(w))).collect()
    /// });
    /// assert_eq!(words, ["a", "borrowed", "string"]);
    /// ```
    pub fn generator<Y, R, F>(&'scope self, func: F) -> ScopedGenerator<'scope, Y, R>
    where
        F: FnOnce(&Yielder<(), Y>) -> R + 'scope,
        Y: 'scope,
        R: 'scope,
    {
        self.generator_with(Builder::new(), func)
            .unwrap_or_else(|e| panic!("ucoro: {e}"))
    }

    /// Makes a generator in this scope with the settings of `builder`.
    ///
    /// # Errors
    /// As [`Builder::build`].
    ///
    /// ```
    /// use ucoro::Builder;
    ///
    /// let v = vec![1, 2, 3];
    /// let sum: i32 = ucoro::scope(|s| {
    ///     let g = s.generator_with(Builder::new().stack_size(64 << 10), |y| {
    ///         v.iter().for_each(|x| y.suspend(x * 10))
    ///     })?;
    ///     Ok::<i32, ucoro::Error>(g.sum())
    /// })?;
    /// assert_eq!(sum, 60);
    /// # Ok::<(), ucoro::Error>(())
    /// ```
    pub fn generator_with<Y, R, F>(
        &'scope self,
        builder: Builder,
        func: F,
    ) -> Result<ScopedGenerator<'scope, Y, R>, Error>
    where
        F: FnOnce(&Yielder<(), Y>) -> R + 'scope,
        Y: 'scope,
        R: 'scope,
    {
        Ok(ScopedGenerator {
            coroutine: self.coroutine_with(builder, move |y, ()| func(y))?,
            returned: None,
        })
    }
}

impl fmt::Debug for Scope<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scope")
            .field("coroutines", &self.registry.slots.borrow().len())
            .finish()
    }
}

/// The slots of a scope's coroutines whose handle has not been dropped.
struct Registry<'scope> {
    /// Each from `Box::into_raw`; freed by the handle's drop (taken out of
    /// this list first) or by `end_all` (after every coroutine ended).
    slots: RefCell<Vec<NonNull<dyn Tracked + 'scope>>>,
    /// `end_all` has begun: slots are no longer freed by handles.
    closing: Cell<bool>,
}

/// One scoped coroutine, boxed so that its handle and the registry both
/// reach it wherever the handle moves.
struct Slot<I, Y, R> {
    /// Where it is in `Registry::slots`.
    index: Cell<usize>,
    /// `None` once it was ended (its handle's drop, or `end_all`). Reached
    /// from the handle (`&mut` for the length of one of its calls) and from
    /// the registry, which only takes the coroutine out, never while such a
    /// call runs (see `ScopedCoroutine::coroutine_mut`).
    coroutine: UnsafeCell<Option<Coroutine<I, Y, R>>>,
}

/// What the registry needs of a slot, whatever its types.
trait Tracked {
    fn index(&self) -> &Cell<usize>;
    /// Takes the coroutine out, if it is still there, and ends it.
    fn end(&self);
}

impl<I, Y, R> Tracked for Slot<I, Y, R> {
    fn index(&self) -> &Cell<usize> {
        &self.index
    }

    fn end(&self) {
        // SAFETY: called by `end_all` between two slots, when no call of a
        // handle is running (see `ScopedCoroutine::coroutine_mut`), so no
        // other reference to the `Option` exists; none is kept.
        let coroutine = unsafe { (*self.coroutine.get()).take() };
        if let Some(coroutine) = coroutine {
            end(coroutine);
        }
    }
}

/// Drops a scoped coroutine, or aborts the process if its stack would be
/// leaked (point 3 of `scope`'s proof).
fn end<I, Y, R>(coroutine: Coroutine<I, Y, R>) {
    if coroutine.close() == Closed::Leaked {
        eprintln!(
            "ucoro: a scoped coroutine was dropped while suspended and could not be unwound \
             (built with panic = \"abort\", it suspended again while being unwound, or it \
             suspended during a panic that is still in flight); its frames may still borrow \
             data that outlives it only until the scope ends: aborting"
        );
        std::process::abort();
    }
}

impl<'scope> Registry<'scope> {
    /// Records a new coroutine; returns its slot.
    fn add<I, Y, R>(&self, coroutine: Coroutine<I, Y, R>) -> NonNull<Slot<I, Y, R>>
    where
        Slot<I, Y, R>: 'scope,
    {
        let slot = Box::new(Slot {
            index: Cell::new(0),
            coroutine: UnsafeCell::new(Some(coroutine)),
        });
        let slot = NonNull::from(Box::leak(slot));
        let mut slots = self.slots.borrow_mut();
        // SAFETY: just made, not shared yet.
        unsafe { slot.as_ref() }.index.set(slots.len());
        slots.push(slot);
        slot
    }

    /// Takes a slot out of the record and frees it (its coroutine already
    /// taken out); before `end_all` only.
    ///
    /// # Safety
    /// `slot` was returned by `add` of this registry and not freed yet, and
    /// nothing uses it afterwards.
    unsafe fn free<I, Y, R>(&self, slot: NonNull<Slot<I, Y, R>>) {
        // SAFETY: the caller's contract: the slot is live.
        let index = unsafe { slot.as_ref() }.index.get();
        let mut slots = self.slots.borrow_mut();
        slots.swap_remove(index);
        if let Some(moved) = slots.get(index) {
            // SAFETY: every recorded slot is live.
            unsafe { moved.as_ref() }.index().set(index);
        }
        drop(slots);
        // SAFETY: made by Box::leak in `add`, no longer recorded, and the
        // caller uses it no more.
        drop(unsafe { Box::from_raw(slot.as_ptr()) });
    }

    /// Ends every recorded coroutine, those made meanwhile included, then
    /// frees every slot. Returns the first panic raised on the way.
    fn end_all(&self) -> Option<Box<dyn Any + Send>> {
        self.closing.set(true);
        let mut first_panic = None;
        let mut next = 0;
        // Not an iterator over the list: ending a coroutine runs its
        // destructors, which may make more (pushed at the end).
        loop {
            // (The list's borrow must end before any user code runs.)
            let Some(slot) = self.slots.borrow().get(next).copied() else {
                break;
            };
            next += 1;
            // SAFETY: slots are freed only below, once this loop is over.
            let slot = unsafe { slot.as_ref() };
            if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(|| slot.end())) {
                // Later ones are dropped: `scope` resumes one panic.
                first_panic.get_or_insert(payload);
            }
        }
        for slot in self.slots.take() {
            // SAFETY: made by Box::leak in `add`; its coroutine has ended,
            // and no code that could still hold its handle can run (point 4
            // of `scope`'s proof).
            drop(unsafe { Box::from_raw(slot.as_ptr()) });
        }
        first_panic
    }
}

/// A coroutine made by [`Scope::coroutine`]: a [`Coroutine`] whose closure,
/// input and yield types may borrow what outlives the scope.
///
/// It is used like a [`Coroutine`]. Dropping it ends the coroutine at once
/// (a suspended one is unwound); one that is never dropped is ended when
/// the scope ends. A suspended scoped coroutine that cannot be unwound
/// aborts the process where it is dropped (see point 3 of [`scope`]'s
/// proof): in a program built with `panic = "abort"`, run scoped
/// coroutines to their end.
///
/// Neither `Send` nor `Sync`, for the reasons given for [`Coroutine`]:
///
/// ```compile_fail
/// fn assert_send<T: Send>(_: &T) {}
/// ucoro::scope(|s| {
///     let co = s.coroutine(|_: &ucoro::Yielder<(), ()>, ()| ());
///     assert_send(&co);
/// });
/// ```
///
/// ```
/// use ucoro::CoroutineResult;
///
/// let mut total = 0;
/// ucoro::scope(|s| {
///     let mut adder = s.coroutine(|y, mut x: i32| loop {
///         total += x;
///         x = y.suspend(());
///     });
///     for i in 1..=4 {
///         assert_eq!(adder.resume(i).unwrap(), CoroutineResult::Yield(()));
///     }
/// }); // the suspended adder is unwound here, releasing `total`
/// assert_eq!(total, 10);
/// ```
#[must_use = "a coroutine does nothing until it is resumed"]
pub struct ScopedCoroutine<'scope, I, Y, R> {
    /// Lives until this handle's drop frees it, or until the scope has
    /// ended every coroutine (point 4 of `scope`'s proof).
    slot: NonNull<Slot<I, Y, R>>,
    registry: &'scope Registry<'scope>,
    /// Invariant in `'scope` like the scope; `NonNull` keeps the handle
    /// neither `Send` nor `Sync`.
    _scope: PhantomData<&'scope mut &'scope ()>,
}

impl<I, Y, R> ScopedCoroutine<'_, I, Y, R> {
    /// The coroutine, unless the scope has ended it already.
    fn coroutine(&self) -> Option<&Coroutine<I, Y, R>> {
        // SAFETY: the slot is live (field doc); the only writes to the
        // `Option` come from this handle's `&mut` calls and from the
        // registry between two user calls, neither during `&self`.
        unsafe { (*self.slot.as_ref().coroutine.get()).as_ref() }
    }

    /// The coroutine, unless the scope has ended it already.
    fn coroutine_mut(&mut self) -> Option<&mut Coroutine<I, Y, R>> {
        // SAFETY: the slot is live (field doc). This handle is its only
        // handle, borrowed mutably here. The registry takes the coroutine
        // out only from `end_all`, which runs on the stack that called
        // `scope` after `f` returned, between two slots: at that point no
        // handle call is running, since such a call runs either in `f`
        // (over) or in a coroutine resumed from `end_all`, which has
        // returned to it (a coroutine can only switch back to whoever
        // resumed it).
        unsafe { (*self.slot.as_ref().coroutine.get()).as_mut() }
    }

    /// Runs the coroutine until it suspends or returns, as
    /// [`Coroutine::resume`].
    ///
    /// # Errors
    /// As [`Coroutine::resume`]; also [`Error::Finished`] when the scope
    /// has already ended the coroutine (only code that runs while the scope
    /// ends, such as a destructor of another coroutine, can see that).
    ///
    /// # Panics
    /// As [`Coroutine::resume`].
    ///
    /// ```
    /// use ucoro::CoroutineResult;
    ///
    /// let base = 100;
    /// ucoro::scope(|s| {
    ///     let mut co = s.coroutine(|y, x: i32| y.suspend(base + x) + base);
    ///     assert_eq!(co.resume(1).unwrap(), CoroutineResult::Yield(101));
    ///     assert_eq!(co.resume(2).unwrap(), CoroutineResult::Return(102));
    /// });
    /// ```
    #[inline(always)]
    pub fn resume(&mut self, input: I) -> Result<CoroutineResult<Y, R>, Error> {
        match self.coroutine_mut() {
            Some(coroutine) => coroutine.resume(input),
            None => Err(Error::Finished),
        }
    }

    /// Whether the closure has been entered, as [`Coroutine::started`]
    /// (true once the scope has ended the coroutine).
    ///
    /// ```
    /// ucoro::scope(|s| {
    ///     let mut co = s.coroutine(|y, ()| y.suspend(()));
    ///     assert!(!co.started());
    ///     co.resume(()).unwrap();
    ///     assert!(co.started());
    /// });
    /// ```
    pub fn started(&self) -> bool {
        self.coroutine().map_or(true, Coroutine::started)
    }

    /// Whether the closure has returned or panicked, as
    /// [`Coroutine::is_finished`] (true once the scope has ended the
    /// coroutine).
    ///
    /// ```
    /// ucoro::scope(|s| {
    ///     let mut co = s.coroutine(|_: &ucoro::Yielder<(), ()>, ()| 1);
    ///     assert!(!co.is_finished());
    ///     co.resume(()).unwrap();
    ///     assert!(co.is_finished());
    /// });
    /// ```
    pub fn is_finished(&self) -> bool {
        self.coroutine().map_or(true, Coroutine::is_finished)
    }

    /// The size of the coroutine's stack, as [`Coroutine::stack_size`]
    /// (0 once the scope has ended the coroutine and freed it).
    ///
    /// ```
    /// ucoro::scope(|s| {
    ///     let builder = ucoro::Builder::new().stack_size(100_000);
    ///     let co = s.coroutine_with(builder, |_: &ucoro::Yielder<(), ()>, ()| ())?;
    ///     assert!(co.stack_size() >= 100_000);
    ///     Ok::<(), ucoro::Error>(())
    /// })?;
    /// # Ok::<(), ucoro::Error>(())
    /// ```
    pub fn stack_size(&self) -> usize {
        self.coroutine().map_or(0, Coroutine::stack_size)
    }

    /// How much of the stack has been touched, as [`Coroutine::stack_used`]
    /// (0 once the scope has ended the coroutine and freed it).
    ///
    /// ```
    /// ucoro::scope(|s| {
    ///     let mut co = s.coroutine(|y, ()| {
    ///         let buf = std::hint::black_box([1u8; 100 * 1024]);
    ///         y.suspend(buf[0]);
    ///     });
    ///     co.resume(()).unwrap();
    ///     assert!(co.stack_used() >= 100 * 1024);
    /// });
    /// ```
    pub fn stack_used(&self) -> usize {
        self.coroutine().map_or(0, Coroutine::stack_used)
    }
}

impl<I, Y, R> Drop for ScopedCoroutine<'_, I, Y, R> {
    fn drop(&mut self) {
        if self.coroutine().is_some_and(Coroutine::unwinding_must_wait) {
            // Suspended during a panic that is still in flight: it cannot be
            // unwound before that panic is over. The scope ends it later;
            // its slot stays recorded until then.
            return;
        }
        // SAFETY: as in `coroutine_mut`; the reference ends here.
        let coroutine = unsafe { (*self.slot.as_ref().coroutine.get()).take() };
        if !self.registry.closing.get() {
            // SAFETY: this handle's slot, recorded by `add` and not freed
            // (only this drop or `end_all` frees it, and `end_all` has not
            // begun); nothing below uses it.
            unsafe { self.registry.free(self.slot) };
        }
        if let Some(coroutine) = coroutine {
            end(coroutine);
        }
    }
}

impl<I, Y, R> fmt::Debug for ScopedCoroutine<'_, I, Y, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.coroutine() {
            Some(coroutine) => f.debug_tuple("ScopedCoroutine").field(coroutine).finish(),
            None => f.write_str("ScopedCoroutine(ended by its scope)"),
        }
    }
}

/// A generator made by [`Scope::generator`]: a
/// [`Generator`](crate::Generator) whose closure and yield type may borrow
/// what outlives the scope. Dropping it and the end of the scope end it as
/// for a [`ScopedCoroutine`].
///
/// ```
/// let v = vec![3, 1, 4, 1, 5];
/// let evens_then_odds: Vec<i32> = ucoro::scope(|s| {
///     s.generator(|y| {
///         v.iter().filter(|x| *x % 2 == 0).for_each(|x| y.suspend(*x));
///         v.iter().filter(|x| *x % 2 == 1).for_each(|x| y.suspend(*x));
///     })
///     .collect()
/// });
/// assert_eq!(evens_then_odds, [4, 3, 1, 1, 5]);
/// ```
#[must_use = "a generator does nothing until it is iterated"]
pub struct ScopedGenerator<'scope, Y, R = ()> {
    coroutine: ScopedCoroutine<'scope, (), Y, R>,
    returned: Option<R>,
}

impl<Y, R> ScopedGenerator<'_, Y, R> {
    /// The closure's return value, once the iterator has ended, as
    /// [`Generator::take_return`](crate::Generator::take_return).
    ///
    /// ```
    /// let v = vec![1, 2];
    /// ucoro::scope(|s| {
    ///     let mut g = s.generator(|y| {
    ///         v.iter().for_each(|x| y.suspend(*x));
    ///         v.len()
    ///     });
    ///     assert_eq!(g.by_ref().count(), 2);
    ///     assert_eq!(g.take_return(), Some(2));
    /// });
    /// ```
    pub fn take_return(&mut self) -> Option<R> {
        self.returned.take()
    }
}

impl<Y, R> Iterator for ScopedGenerator<'_, Y, R> {
    type Item = Y;

    /// Runs the closure until its next `suspend` or its end, as
    /// [`Generator`](crate::Generator)'s `next`.
    #[inline(always)]
    fn next(&mut self) -> Option<Y> {
        next_value(self.coroutine.resume(()), &mut self.returned)
    }
}

/// Ended for good once `next` has returned `None`, as a `Generator`.
impl<Y, R> FusedIterator for ScopedGenerator<'_, Y, R> {}

impl<Y, R> fmt::Debug for ScopedGenerator<'_, Y, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScopedGenerator")
            .field("coroutine", &self.coroutine)
            .finish_non_exhaustive()
    }
}
