//! Turning the library's stack-overflow report on and off from safe code
//! (the C call and the `UCORO_OVERFLOW_REPORTING` variable do the same).

use std::ffi::c_int;

use crate::sys;

/// Turns the stack-overflow report on (the default) or off, for the whole
/// process.
///
/// On: a fault in the guard region below a coroutine's stack prints
/// `ucoro: stack overflow in coroutine 0x… (stack N bytes)` and the process
/// dies of the signal; faults elsewhere go to the handler that was
/// installed before ucoro's (Rust's own, which reports overflows of thread
/// stacks). Off: ucoro's SIGSEGV/SIGBUS handler is taken out again (the one
/// before it is put back, unless another was installed since, which then
/// stays), so a program that wants to own fault handling can have it. An
/// overflow still kills the process, without the message. The environment
/// variable `UCORO_OVERFLOW_REPORTING=0` turns it off from the start.
///
/// ```
/// ucoro::set_overflow_reporting(false);
/// let mut g = ucoro::Generator::new(|y| y.suspend(1));
/// assert_eq!(g.next(), Some(1));
/// ucoro::set_overflow_reporting(true);
/// ```
pub fn set_overflow_reporting(enable: bool) {
    // SAFETY: takes a plain integer; the C side serialises callers with its
    // own lock and only swaps signal handlers it installed itself.
    unsafe { sys::ucoro_set_overflow_reporting(c_int::from(enable)) }
}
