//! A generator: a coroutine that yields values to a loop, as an `Iterator`.

use std::iter::FusedIterator;

use crate::{Builder, Coroutine, CoroutineResult, Error, Yielder};

/// A coroutine that produces a sequence: its closure calls
/// [`Yielder::suspend`] for each value, and the `Generator` hands those out
/// as an [`Iterator`]. Like a Python generator, it runs only when asked for
/// the next value. Its closure may return a final value of type `R`, kept
/// for [`take_return`](Self::take_return).
///
/// ```
/// use ucoro::Generator;
///
/// let mut counter = Generator::new(|y| {
///     let mut count = 0;
///     loop {
///         y.suspend(count);
///         count += 1;
///     }
/// });
/// for i in 0..10 {
///     assert_eq!(counter.next(), Some(i));
/// }
/// // Dropping the suspended generator unwinds its stack.
/// ```
#[must_use = "a generator does nothing until it is iterated"]
pub struct Generator<Y, R = ()> {
    coroutine: Coroutine<(), Y, R>,
    returned: Option<R>,
}

impl<Y: 'static, R> Generator<Y, R> {
    /// Creates a generator with the default stack size.
    ///
    /// # Panics
    /// If the system refuses the stack's memory; use [`Generator::with_builder`]
    /// to get an [`Error`] instead.
    ///
    /// ```
    /// let v: Vec<char> = ucoro::Generator::new(|y| "abc".chars().for_each(|c| y.suspend(c))).collect();
    /// assert_eq!(v, ['a', 'b', 'c']);
    /// ```
    pub fn new<F>(func: F) -> Self
    where
        F: FnOnce(&Yielder<(), Y>) -> R + 'static,
    {
        Generator::from_coroutine(Coroutine::new(move |y, ()| func(y)))
    }

    /// Creates a generator with the settings of `builder`.
    ///
    /// # Errors
    /// [`Error::StackAllocation`] when the stack cannot be allocated.
    ///
    /// ```
    /// use ucoro::{Builder, Generator};
    ///
    /// let g = Generator::with_builder(Builder::new().stack_size(64 << 10), |y| {
    ///     (1..=3).for_each(|i| y.suspend(i))
    /// })?;
    /// assert_eq!(g.sum::<i32>(), 6);
    /// # Ok::<(), ucoro::Error>(())
    /// ```
    pub fn with_builder<F>(builder: Builder, func: F) -> Result<Self, Error>
    where
        F: FnOnce(&Yielder<(), Y>) -> R + 'static,
    {
        Ok(Generator::from_coroutine(
            builder.build(move |y, ()| func(y))?,
        ))
    }

    fn from_coroutine(coroutine: Coroutine<(), Y, R>) -> Self {
        Generator {
            coroutine,
            returned: None,
        }
    }

    /// The closure's return value, once the iterator has ended (`None`
    /// before that, and after it was taken).
    ///
    /// ```
    /// let mut g = ucoro::Generator::new(|y| {
    ///     y.suspend(1);
    ///     "finished"
    /// });
    /// assert_eq!(g.next(), Some(1));
    /// assert_eq!(g.next(), None);
    /// assert_eq!(g.take_return(), Some("finished"));
    /// ```
    pub fn take_return(&mut self) -> Option<R> {
        self.returned.take()
    }
}

impl<Y, R> Iterator for Generator<Y, R> {
    type Item = Y;

    /// Runs the closure until its next `suspend` (`Some(value)`) or its end
    /// (`None`, for good). A panic in the closure resumes here.
    // Inlined into the caller like `Coroutine::resume` (see there).
    #[inline(always)]
    fn next(&mut self) -> Option<Y> {
        next_value(self.coroutine.resume(()), &mut self.returned)
    }
}

/// A generator's `next` from what `resume` brought: the yielded value, or
/// `None` with the return value kept in `returned`. Inlined, so that the
/// `Result` from `resume` is never built in memory.
#[inline(always)]
pub(crate) fn next_value<Y, R>(
    resumed: Result<CoroutineResult<Y, R>, Error>,
    returned: &mut Option<R>,
) -> Option<Y> {
    match resumed {
        Ok(CoroutineResult::Yield(value)) => Some(value),
        Ok(CoroutineResult::Return(value)) => {
            *returned = Some(value);
            None
        }
        Err(_) => None,
    }
}

/// Once `next` has returned `None` (the closure returned, panicked or was
/// abandoned), every later call returns `None` without running anything.
impl<Y, R> FusedIterator for Generator<Y, R> {}

impl<Y, R> std::fmt::Debug for Generator<Y, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Generator")
            .field("coroutine", &self.coroutine)
            .finish_non_exhaustive()
    }
}
