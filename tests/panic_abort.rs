//! The safe API when the program is built with `panic = "abort"`: dropping
//! a suspended coroutine cannot unwind its stack, and must not abort; a
//! suspended scoped coroutine cannot be leaked either (it may still reach
//! borrowed data), so there the process aborts, with a message.
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
fn scoped_coroutines_run_to_their_end_work() {
    if !aborting() {
        return;
    }
    let v = [1, 2, 3];
    let mut pushed = Vec::new();
    let sum: i32 = ucoro::scope(|s| {
        let mut sink = s.coroutine(|y, mut x: i32| {
            while x != 0 {
                pushed.push(x);
                x = y.suspend(());
            }
        });
        let total = s.generator(|y| v.iter().for_each(|x| y.suspend(*x))).sum();
        for x in [4, 5, 0] {
            sink.resume(x).unwrap();
        }
        assert!(sink.is_finished());
        total
    });
    assert_eq!((sum, pushed), (6, vec![4, 5]));
    // Never started: nothing to unwind either.
    ucoro::scope(|s| drop(s.generator(|y| y.suspend(1))));
}

/// Runs `scenario` in a child process, which must abort with the scope's
/// message: a suspended scoped coroutine cannot be unwound without
/// unwinding, and leaking it could leave borrowed data reachable.
fn scope_aborts_in_child(test: &str, scenario: impl FnOnce()) {
    if let Some(out) = common::child(test, scenario) {
        // libtest runs each test of a panic = "abort" harness in a process
        // of its own and reports its death, so only the message and the
        // failure are seen here.
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success()
                && stderr.contains("a scoped coroutine was dropped while suspended"),
            "the child must abort with the scope's message:\n{}",
            common::describe(&out)
        );
    }
}

#[test]
fn suspended_scoped_coroutine_dropped_aborts() {
    if !aborting() {
        return;
    }
    scope_aborts_in_child("suspended_scoped_coroutine_dropped_aborts", || {
        let v = [1, 2, 3];
        ucoro::scope(|s| {
            let mut g = s.generator(|y| v.iter().for_each(|x| y.suspend(*x)));
            assert_eq!(g.next(), Some(1));
            drop(g);
            unreachable!("dropping it must abort");
        });
    });
}

#[test]
fn forgotten_suspended_scoped_coroutine_aborts_at_the_end_of_the_scope() {
    if !aborting() {
        return;
    }
    scope_aborts_in_child(
        "forgotten_suspended_scoped_coroutine_aborts_at_the_end_of_the_scope",
        || {
            let v = [1, 2, 3];
            ucoro::scope(|s| {
                let mut g = s.generator(|y| v.iter().for_each(|x| y.suspend(*x)));
                assert_eq!(g.next(), Some(1));
                std::mem::forget(g);
            });
            unreachable!("the end of the scope must abort");
        },
    );
}

#[test]
fn built_in_the_mode_ci_asks_for() {
    // Under `--profile panic-abort` with -Zpanic-abort-tests CI sets
    // UCORO_EXPECT_PANIC_ABORT=1; this makes sure the other tests ran.
    if std::env::var_os("UCORO_EXPECT_PANIC_ABORT").is_some() {
        assert!(aborting(), "expected a panic = \"abort\" build");
    }
}
