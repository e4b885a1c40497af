//! The operations that both benchmark binaries measure, ucoro's safe API
//! beside corosensei's: `switch.rs` times them with criterion,
//! `instructions.rs` runs them under callgrind for instructions per
//! operation. One definition, so the two tables measure the same code.
//!
//! Each `*_step` and `*_next` is `#[inline(never)]` on purpose: a resume
//! inside a function that returns (an iterator's `next`, a protocol step)
//! is what callers write, and after a switch every `ret` between it and
//! the user's code depends on the return-address predictor, which a tight
//! loop with everything inlined does not show.

#![allow(dead_code)] // each binary uses its own subset

use std::ffi::c_void;
use std::hint::black_box;

use corosensei::stack::DefaultStack;

/// Yields its input plus one, forever.
pub fn ucoro_echo() -> ucoro::Coroutine<u64, u64, ()> {
    let mut co = ucoro::Coroutine::new(|y, mut v: u64| loop {
        v = y.suspend(v.wrapping_add(1));
    });
    co.resume(0).unwrap(); // started: later resumes are pure switches
    co
}

/// The same for corosensei.
pub fn corosensei_echo() -> corosensei::Coroutine<u64, u64, ()> {
    let mut co = corosensei::Coroutine::new(|y, mut v: u64| loop {
        v = y.suspend(v.wrapping_add(1));
    });
    co.resume(0);
    co
}

/// One round trip, inlined into the caller's loop.
#[inline(always)]
pub fn ucoro_round_trip(co: &mut ucoro::Coroutine<u64, u64, ()>, v: u64) -> u64 {
    match co.resume(black_box(v)) {
        Ok(ucoro::CoroutineResult::Yield(next)) => next,
        _ => unreachable!(),
    }
}

/// One round trip, inlined into the caller's loop.
#[inline(always)]
pub fn corosensei_round_trip(co: &mut corosensei::Coroutine<u64, u64, ()>, v: u64) -> u64 {
    match co.resume(black_box(v)) {
        corosensei::CoroutineResult::Yield(next) => next,
        corosensei::CoroutineResult::Return(()) => unreachable!(),
    }
}

/// One round trip inside a function that returns.
#[inline(never)]
pub fn ucoro_step(co: &mut ucoro::Coroutine<u64, u64, ()>, v: u64) -> u64 {
    ucoro_round_trip(co, v)
}

/// One round trip inside a function that returns.
#[inline(never)]
pub fn corosensei_step(co: &mut corosensei::Coroutine<u64, u64, ()>, v: u64) -> u64 {
    corosensei_round_trip(co, v)
}

/// Values the generators yield: 0, 1, 2, ... (endless, so a measurement
/// never runs out).
pub fn ucoro_counter() -> ucoro::Generator<u64> {
    ucoro::Generator::new(|y| {
        let mut i = 0u64;
        loop {
            y.suspend(i);
            i += 1;
        }
    })
}

/// The same for corosensei.
pub fn corosensei_counter() -> corosensei::Coroutine<(), u64, ()> {
    corosensei::Coroutine::new(|y, ()| {
        let mut i = 0u64;
        loop {
            y.suspend(i);
            i += 1;
        }
    })
}

/// The generator's next value, through a `next()` that is not inlined.
#[inline(never)]
pub fn ucoro_next(g: &mut ucoro::Generator<u64>) -> Option<u64> {
    g.next()
}

/// The same for corosensei (its coroutine has no `Iterator`).
#[inline(never)]
pub fn corosensei_next(co: &mut corosensei::Coroutine<(), u64, ()>) -> Option<u64> {
    co.resume(()).as_yield()
}

/// Runs `n` round trips `op` on `co`, each handing on the value the last
/// one brought back.
#[inline(always)]
pub fn echo_n<C>(co: &mut C, n: u64, op: impl Fn(&mut C, u64) -> u64) -> u64 {
    (0..n).fold(0, |v, _| op(co, v))
}

/// Sums `n` values of a generator `g`, each fetched by `next`.
#[inline(always)]
pub fn sum_n<G>(g: &mut G, n: u64, next: impl Fn(&mut G) -> Option<u64>) -> u64 {
    (0..n).map(|_| next(g).unwrap()).fold(0, u64::wrapping_add)
}

/// Create, run to the end, drop (default stack size).
#[inline(always)]
pub fn ucoro_lifecycle() -> u64 {
    let mut co: ucoro::Coroutine<u64, (), u64> = ucoro::Coroutine::new(|_, v| v + 1);
    let r = co.resume(black_box(1)).unwrap();
    drop(co);
    match r {
        ucoro::CoroutineResult::Return(v) => v,
        ucoro::CoroutineResult::Yield(()) => unreachable!(),
    }
}

/// corosensei's lifecycle on a stack handed back each time (`with_stack`,
/// `into_stack`): its cheapest.
#[inline(always)]
pub fn corosensei_lifecycle_reused(stack: &mut Option<DefaultStack>) -> u64 {
    let mut co: corosensei::Coroutine<u64, (), u64, DefaultStack> =
        corosensei::Coroutine::with_stack(stack.take().unwrap(), |_, v| v + 1);
    let r = co.resume(black_box(1));
    *stack = Some(co.into_stack());
    r.as_return().unwrap()
}

/// Create, resume until its one suspend, resume to its end, drop: the
/// life of a short coroutine that yields once (default stack size).
#[inline(always)]
pub fn ucoro_lifecycle_suspend() -> u64 {
    let mut co: ucoro::Coroutine<u64, u64, u64> =
        ucoro::Coroutine::new(|y, v: u64| y.suspend(v).wrapping_add(1));
    let Ok(ucoro::CoroutineResult::Yield(v)) = co.resume(black_box(1)) else {
        unreachable!()
    };
    let Ok(ucoro::CoroutineResult::Return(r)) = co.resume(black_box(v)) else {
        unreachable!()
    };
    r
}

/// The same for corosensei, on a stack handed back each time.
#[inline(always)]
pub fn corosensei_lifecycle_suspend(stack: &mut Option<DefaultStack>) -> u64 {
    let mut co: corosensei::Coroutine<u64, u64, u64, DefaultStack> =
        corosensei::Coroutine::with_stack(stack.take().unwrap(), |y, v: u64| {
            y.suspend(v).wrapping_add(1)
        });
    let v = co.resume(black_box(1)).as_yield().unwrap();
    let r = co.resume(black_box(v)).as_return().unwrap();
    *stack = Some(co.into_stack());
    r
}

/// A `struct coroutine` of the C API, for its lifecycle: boxed, since its
/// address must not change.
pub struct CCoroutine(Box<ucoro::sys::coroutine>);

impl CCoroutine {
    /// Never initialised; its entry returns at once.
    pub fn new() -> Self {
        /// The entry: returns its argument.
        unsafe extern "C" fn return_at_once(arg: *mut c_void) -> *mut c_void {
            arg
        }
        // SAFETY: struct coroutine is plain C data for which all-zero is
        // valid.
        let mut co: Box<ucoro::sys::coroutine> =
            Box::new(unsafe { std::mem::MaybeUninit::zeroed().assume_init() });
        co.entry = Some(return_at_once);
        CCoroutine(co)
    }

    /// `coroutine_init` with the default stack, one `coroutine_yieldto`
    /// that runs it to its end, `coroutine_release`.
    #[inline(always)]
    pub fn lifecycle(&mut self) -> *mut c_void {
        let co: *mut ucoro::sys::coroutine = &mut *self.0;
        // SAFETY: init accepts an exited (or never used) struct; the
        // coroutine runs to its end in its one yieldto, before the release.
        unsafe {
            (*co).stack_size = 0; // the default, as a fresh caller would
            assert_eq!(ucoro::sys::coroutine_init(co), 0, "coroutine_init");
            let r = ucoro::sys::coroutine_yieldto(co, black_box(co.cast::<c_void>()));
            assert_ne!((*co).exited, 0, "the coroutine ran to its end");
            ucoro::sys::coroutine_release(co);
            r
        }
    }
}
