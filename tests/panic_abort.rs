//! The safe API when the program is built with `panic = "abort"`: dropping
//! a suspended coroutine cannot unwind its stack, and must not abort.
//!
//! Run in that mode with
//! `cargo +nightly test -Zpanic-abort-tests --profile panic-abort --test panic_abort`
//! (CI does). In an ordinary `cargo test` (unwinding) these tests check
//! that they are not in that mode and do nothing else.

use std::cell::Cell;
use std::rc::Rc;

use ucoro::{Coroutine, Generator, Yielder};

mod common;
use common::DropCounter;

/// Whether this test binary was built to abort on panic.
fn aborting() -> bool {
    cfg!(panic = "abort")
}

#[test]
fn front_page_generator_example_does_not_abort() {
    if !aborting() {
        return;
    }
    // The crate's own front-page example drops a suspended generator.
    let fib: Vec<u64> = Generator::new(|y| {
        let (mut a, mut b) = (0, 1);
        loop {
            y.suspend(a);
            (a, b) = (b, a + b);
        }
    })
    .take(8)
    .collect();
    assert_eq!(fib, [0, 1, 1, 2, 3, 5, 8, 13]);
}

#[test]
fn dropped_suspended_coroutine_is_leaked_with_its_frames_intact() {
    if !aborting() {
        return;
    }
    let drops = Rc::new(Cell::new(0));
    let d = drops.clone();
    let mut co = Coroutine::new(move |y: &Yielder<(), *const u64>, ()| {
        let _counted = DropCounter(d);
        let on_stack = 0x5eed_u64;
        y.suspend(&on_stack);
        unreachable!("never resumed");
    });
    let ucoro::CoroutineResult::Yield(p) = co.resume(()).unwrap() else {
        panic!("the coroutine must yield");
    };
    drop(co);
    assert_eq!(drops.get(), 0, "its destructors do not run");
    // SAFETY: the documented behaviour under test: the stack stays allocated
    // and untouched for the life of the process, so this local is readable.
    assert_eq!(unsafe { *p }, 0x5eed, "its memory stays reserved");
    // The thread goes on normally.
    let mut again = Coroutine::new(|y: &Yielder<u8, u8>, x| y.suspend(x) + 1);
    assert!(again.resume(1).is_ok());
    drop(again);
}

#[test]
fn built_in_the_mode_ci_asks_for() {
    // Under `--profile panic-abort` with -Zpanic-abort-tests CI sets
    // UCORO_EXPECT_PANIC_ABORT=1; this makes sure the other tests ran.
    if std::env::var_os("UCORO_EXPECT_PANIC_ABORT").is_some() {
        assert!(aborting(), "expected a panic = \"abort\" build");
    }
}
