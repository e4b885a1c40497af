//! The safe API's switch for tests/gdb/stepping.py to single-step
//! through, as tests/gdb/stepping.c is the C library's: where the switch
//! is inlined (src/arch/), every resume and suspend below runs the
//! crate's own stubs and their hand-written CFI, and the walk of the stack
//! at each instruction must go through them to the resumer.
//!
//! Between `step_begin()` and `step_end()`: main starts `outer` (a first
//! entry, through the C start stub), which suspends; main resumes it and
//! it starts `inner` (a first entry from a coroutine), which suspends to
//! it; `outer` suspends with `inner` suspended, main resumes it, `inner`
//! is resumed and returns (an exit into a coroutine), then `outer` returns
//! (an exit into main). A generator is started and resumed by `next()`
//! from a function of its own, and a suspended coroutine is dropped (the
//! forced unwind of its stack). The coroutines are made before, so that
//! no stack is mapped while stepping.
//!
//! Built as an example (`cargo build --example stepping`); run alone, it
//! checks that the round trip ends where it should.
//!
//! SPDX-License-Identifier: MIT OR Apache-2.0

use std::cell::Cell;
use std::hint::black_box;
use std::process::ExitCode;
use std::rc::Rc;

use ucoro::{Coroutine, CoroutineResult, Generator};

/// The stepped range's ends, kept out of line, and with symbols of their
/// own, for gdb's breakpoints (different bodies: never merged).
#[inline(never)]
#[no_mangle]
pub extern "C" fn step_begin() {
    black_box(1u8);
}

#[inline(never)]
#[no_mangle]
pub extern "C" fn step_end() {
    black_box(2u8);
}

/// A generator's `next()`, inlined here, in a frame of its own.
#[inline(never)]
fn next_of(counter: &mut Generator<u32>) -> Option<u32> {
    counter.next()
}

/// Something for the forced unwind to drop.
struct Noisy(Rc<Cell<bool>>);

impl Drop for Noisy {
    fn drop(&mut self) {
        self.0.set(true);
    }
}

/// A coroutine suspended with a `Noisy` on its stack, which sets `dropped`
/// when the coroutine's drop unwinds it.
fn suspended_with_a_destructor(dropped: &Rc<Cell<bool>>) -> Option<Coroutine<(), (), ()>> {
    let dropped = Rc::clone(dropped);
    let mut co: Coroutine<(), (), ()> = Coroutine::new(move |y, ()| {
        let _noisy = Noisy(dropped);
        y.suspend(());
    });
    if co.resume(()).ok() != Some(CoroutineResult::Yield(())) {
        eprintln!("stepping: the coroutine to drop did not suspend");
        return None;
    }
    Some(co)
}

fn main() -> ExitCode {
    let mut inner: Coroutine<u32, u32, u32> = Coroutine::new(|y, first| y.suspend(first + 1) + 1);
    let mut outer: Coroutine<u32, u32, u32> = Coroutine::new(move |y, first| {
        let second = y.suspend(first + 1);
        let from_inner = match inner.resume(second) {
            Ok(CoroutineResult::Yield(value)) => value,
            _ => return 0,
        };
        let third = y.suspend(from_inner + 1);
        match inner.resume(third) {
            Ok(CoroutineResult::Return(value)) => value + 1,
            _ => 0,
        }
    });
    let mut counter = Generator::new(|y| {
        for i in 1..=2 {
            y.suspend(i);
        }
    });
    // The first unwind readies the unwinder (lazy bindings; in a static
    // binary, sorting every FDE): tens of thousands of instructions that
    // are not stepped.
    let warm_up = Rc::default();
    let Some(first) = suspended_with_a_destructor(&warm_up) else {
        return ExitCode::FAILURE;
    };
    drop(first);
    let dropped = Rc::default();
    let Some(doomed) = suspended_with_a_destructor(&dropped) else {
        return ExitCode::FAILURE;
    };

    step_begin();
    let a = outer.resume(1); // outer suspends 2
    let b = outer.resume(10); // inner suspends 11, outer 12
    let c = outer.resume(20); // inner returns 21, outer 22
    let d = next_of(&mut counter); // 1
    let e = next_of(&mut counter); // 2
    drop(doomed);
    step_end();

    let expected = (
        Some(CoroutineResult::Yield(2)),
        Some(CoroutineResult::Yield(12)),
        Some(CoroutineResult::Return(22)),
        Some(1),
        Some(2),
        true,
    );
    let got = (a.ok(), b.ok(), c.ok(), d, e, warm_up.get() && dropped.get());
    if got != expected {
        eprintln!("stepping: the round trip ended with {got:?}, not {expected:?}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
