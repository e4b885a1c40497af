//! The errors a safe call can return instead of aborting.

use std::io;

/// What can go wrong when creating or resuming a coroutine.
///
/// ```
/// use ucoro::{Coroutine, CoroutineResult, Error};
///
/// let mut co: Coroutine<(), (), u32> = Coroutine::new(|_, ()| 7);
/// assert!(matches!(co.resume(()), Ok(CoroutineResult::Return(7))));
/// assert!(matches!(co.resume(()), Err(Error::Finished)));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The system refused the memory for a stack of the requested size, or
    /// the size is too large to round up to whole pages.
    #[error("cannot allocate a coroutine stack of {size} bytes: {source}")]
    StackAllocation {
        /// The stack size that was asked for.
        size: usize,
        /// The system's reason (`ENOMEM`, or `EINVAL` for an absurd size).
        #[source]
        source: io::Error,
    },
    /// `resume` was called on a coroutine that has already returned or
    /// panicked.
    #[error("coroutine resumed after it finished")]
    Finished,
    /// The C library refused the switch (the coroutine is already running
    /// or waiting on the caller chain). Safe code cannot reach this; it
    /// guards against a coroutine whose state was changed through `sys`.
    #[error("the coroutine is already running")]
    Running,
}
