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
    /// The system refused the memory for the stack (`ENOMEM`), or the size
    /// is too large to round up to whole pages (`EINVAL`).
    #[error("cannot allocate a coroutine stack of {size} bytes: {source}")]
    StackAllocation {
        /// The stack size that was tried: the requested size rounded up as
        /// the library would use it, or the requested size itself when it
        /// cannot be rounded (`EINVAL`).
        size: usize,
        /// The system's reason (`ENOMEM`, or `EINVAL` for an absurd size).
        #[source]
        source: io::Error,
    },
    /// The closure and the values in transit, which live at the top of the
    /// coroutine's stack, would take more than half of it: give it a larger
    /// stack ([`Builder::stack_size`](crate::Builder::stack_size)), or box
    /// what the closure captures.
    #[error(
        "the closure and its values ({needed} bytes) do not fit in a coroutine stack of \
         {stack_size} bytes (they may take at most half of it)"
    )]
    ClosureTooLarge {
        /// The bytes they need at the top of the stack.
        needed: usize,
        /// The size of the stack they were to share.
        stack_size: usize,
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
    /// The coroutine suspended while a panic was unwinding its stack and
    /// its input type is not `()`, so it could not go on: it was abandoned
    /// there (its stack is leaked). `resume` returns this only when called
    /// while its own thread is unwinding; otherwise it panics.
    #[error("the coroutine suspended while a panic unwound its stack and was abandoned")]
    Abandoned,
}
