//! Running a closure to completion on a fresh stack: deep recursion
//! without growing the thread's own stack.

use std::mem::size_of;

use crate::{Builder, CoroutineResult, Yielder};

/// Runs `f` to completion on a fresh guarded stack of at least `stack_size`
/// bytes, and returns what it returns.
///
/// For recursion deeper than a thread's stack allows (8 MiB for the main
/// thread, 2 MiB for spawned ones): the stack is a coroutine's, rounded up
/// as [`Builder::stack_size`] says (0 means the default, 16 MiB), with the
/// room `f` itself takes at its top added, and only the pages `f` touches
/// cost memory. It goes back to the library's pool when `f` returns. A
/// panic in `f` unwinds the fresh stack and resumes in the caller; an
/// overflow of it hits its guard region and is reported like any
/// coroutine's (`ucoro: stack overflow in coroutine 0x… (stack N bytes)`,
/// then the process dies of the signal).
///
/// `f` may borrow anything: it cannot be suspended (it has no
/// [`Yielder`]; suspending a coroutine further out from inside it panics,
/// as [`Yielder::suspend`] says), so its frames are gone before `on_stack`
/// returns, whether `f` returns or panics.
///
/// # Panics
/// If the system refuses the stack's memory, and with `f`'s own panic.
///
/// ```
/// fn depth(n: u64) -> u64 {
///     let frame = std::hint::black_box([n; 64]); // 512 bytes a level
///     if n == 0 { 0 } else { 1 + depth(n - 1) + frame[0] - n }
/// }
///
/// let levels = 100_000; // about 50 MiB of frames: too deep for a thread
/// let reached = ucoro::on_stack(256 << 20, || depth(levels));
/// println!("{reached} levels deep");
/// assert_eq!(reached, levels);
/// ```
///
/// prints
///
/// ```text
/// 100000 levels deep
/// ```
pub fn on_stack<R, F>(stack_size: usize, f: F) -> R
where
    F: FnOnce() -> R,
{
    // The closure and its result wait at the top of the stack, next to the
    // C struct and the coroutine's own state (well under 4 KiB): add that,
    // so that `f`'s frames get at least `stack_size` bytes.
    let room = size_of::<F>() + size_of::<R>() + 4096;
    let stack_size = if stack_size == 0 {
        0
    } else {
        stack_size.saturating_add(room)
    };
    // SAFETY (of leaving out the 'static bounds): the coroutine is local,
    // resumed once and dropped here; `f` has no way to suspend it, so it
    // has returned or panicked (its frames gone) by the end of `resume`.
    let mut coroutine = Builder::new()
        .stack_size(stack_size)
        .create(move |_: &Yielder<(), ()>, ()| f())
        .unwrap_or_else(|e| panic!("ucoro: {e}"));
    match coroutine.resume(()) {
        Ok(CoroutineResult::Return(value)) => value,
        // Not reachable: nothing can suspend it, and a fresh coroutine is
        // never running; a panic of `f` was resumed by `resume`.
        Ok(CoroutineResult::Yield(())) | Err(_) => {
            unreachable!("ucoro: on_stack's coroutine did not run to its end")
        }
    }
}
