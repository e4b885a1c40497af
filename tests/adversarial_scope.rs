//! Adversarial use of scoped coroutines (`ucoro::scope`): panics inside
//! them and around them, handles dropped mid-way or in the wrong order,
//! destructors that suspend, catch the unwind or make coroutines, and the
//! cases where a scoped stack cannot be unwound (which must abort the
//! process, never leak a stack that may still reach borrowed data).
//!
//! As in `tests/adversarial.rs`, every scenario runs in a child process of
//! its own (this binary again, `common::in_own_process`), so that a crash
//! or an abort fails one test and each child starts with a clean panic
//! count. CI runs this file under AddressSanitizer and Valgrind.

use std::cell::{Cell, RefCell};
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;

use ucoro::{CoroutineResult, Error, Yielder};

mod common;
use common::{
    assert_child_aborted, assert_panic_state_clean, child, describe, in_child_expecting,
    panic_text, DropCounter, YIELD_FROM,
};

/// A test whose scenario runs in a child process of its own and must pass,
/// with exactly the diagnostics listed on its stderr.
macro_rules! in_child_test {
    ($name:ident, [$($diag:expr),* $(,)?], $body:block) => {
        #[test]
        fn $name() {
            in_child_expecting(stringify!($name), || $body, &[$($diag),*]);
        }
    };
}

/// A test whose scenario runs in a child process of its own and must pass
/// without any diagnostic.
macro_rules! in_own_process_test {
    ($name:ident, $body:block) => {
        in_child_test!($name, [], $body);
    };
}

/// A test whose scenario must abort the child process, after writing the
/// scope's message on stderr.
macro_rules! aborts_test {
    ($name:ident, $body:block) => {
        #[test]
        fn $name() {
            if let Some(out) = child(stringify!($name), || $body) {
                assert_child_aborted(&out);
                assert!(
                    String::from_utf8_lossy(&out.stderr).contains(CANNOT_UNWIND),
                    "the abort must say why:\n{}",
                    describe(&out)
                );
            }
        }
    };
}

/// What the scope writes before it aborts.
const CANNOT_UNWIND: &str = "ucoro: a scoped coroutine was dropped while suspended and could \
                             not be unwound";

/// Pushes `word` onto the borrowed `log` when dropped.
struct LogOnDrop<'a>(&'a RefCell<Vec<&'static str>>, &'static str);

impl Drop for LogOnDrop<'_> {
    fn drop(&mut self) {
        self.0.borrow_mut().push(self.1);
    }
}

// ---------------------------------------------------------------------------
// Panics inside and around scoped coroutines
// ---------------------------------------------------------------------------

in_own_process_test!(panic_in_a_scoped_coroutine_reaches_its_resumer, {
    let log = RefCell::new(Vec::new());
    let caught = ucoro::scope(|s| {
        let mut g = s.generator(|y| {
            let _a = LogOnDrop(&log, "unwound by its own panic");
            y.suspend(1);
            panic!("scoped oops");
        });
        assert_eq!(g.next(), Some(1));
        let err = panic::catch_unwind(AssertUnwindSafe(|| g.next())).unwrap_err();
        assert_eq!(g.next(), None, "finished");
        panic_text(&*err)
    });
    assert_eq!(caught, "scoped oops");
    assert_eq!(*log.borrow(), ["unwound by its own panic"]);
    assert_panic_state_clean();
});

/// A generator that, when its scope unwinds it, catches that unwind and
/// panics instead (a panic that escapes a destructor during an unwind would
/// abort, as anywhere in Rust).
fn panics_when_unwound<'s>(s: &'s ucoro::Scope<'s, '_>) -> ucoro::ScopedGenerator<'s, ()> {
    let mut g = s.generator(|y| {
        let _ = panic::catch_unwind(AssertUnwindSafe(|| y.suspend(())));
        panic!("panicked while unwound");
    });
    g.next();
    g
}

in_own_process_test!(
    panic_while_the_scope_ends_a_coroutine_is_resumed_after_all_ended,
    {
        let log = RefCell::new(Vec::new());
        let err = panic::catch_unwind(AssertUnwindSafe(|| {
            ucoro::scope(|s| {
                std::mem::forget(panics_when_unwound(s));
                let mut second = s.generator(|y| {
                    let _a = LogOnDrop(&log, "second unwound");
                    y.suspend(());
                });
                second.next();
                std::mem::forget(second);
            })
        }))
        .unwrap_err();
        assert_eq!(panic_text(&*err), "panicked while unwound");
        assert_eq!(
            *log.borrow(),
            ["second unwound"],
            "the other one was ended too"
        );
        assert_panic_state_clean();
    }
);

in_own_process_test!(scope_body_panic_wins_over_a_panic_while_ending, {
    let err = panic::catch_unwind(|| {
        ucoro::scope(|s| {
            std::mem::forget(panics_when_unwound(s));
            panic!("the body's panic");
        })
    })
    .unwrap_err();
    assert_eq!(panic_text(&*err), "the body's panic");
    assert_panic_state_clean();
});

in_child_test!(
    yielder_of_one_scoped_coroutine_used_in_another_is_refused,
    [YIELD_FROM],
    {
        // Scoped closures may borrow another coroutine's Yielder (it outlives
        // the inner scope); suspending through it from the wrong coroutine is
        // refused with a panic, never a switch.
        let mut outer = ucoro::Coroutine::new(|y: &Yielder<(), u8>, ()| {
            ucoro::scope(|s| {
                let mut inner = s.generator(|_: &Yielder<(), ()>| y.suspend(1));
                let err = panic::catch_unwind(AssertUnwindSafe(|| inner.next())).unwrap_err();
                panic_text(&*err)
            })
        });
        let CoroutineResult::Return(text) = outer.resume(()).unwrap() else {
            panic!("the outer coroutine must return");
        };
        assert!(
            text.contains("outside the coroutine it belongs to"),
            "{text}"
        );
        assert_panic_state_clean();
    }
);

// ---------------------------------------------------------------------------
// Destructors that suspend, resume or make coroutines
// ---------------------------------------------------------------------------

/// Suspends the generator it belongs to when dropped.
struct SuspendOnDrop<'a>(&'a Yielder<(), i32>);

impl Drop for SuspendOnDrop<'_> {
    fn drop(&mut self) {
        self.0.suspend(-1);
    }
}

in_own_process_test!(
    scoped_generator_suspending_in_a_destructor_while_the_scope_unwinds_it,
    {
        // Input type (): the suspend returns at once and the unwind goes
        // on, so the scope ends it completely.
        let log = RefCell::new(Vec::new());
        ucoro::scope(|s| {
            let mut g = s.generator(|y| {
                let _a = LogOnDrop(&log, "below the suspend");
                let _s = SuspendOnDrop(y);
                y.suspend(1);
            });
            assert_eq!(g.next(), Some(1));
            std::mem::forget(g);
        });
        assert_eq!(*log.borrow(), ["below the suspend"]);
        assert_panic_state_clean();
    }
);

/// Resumes a fresh generator of the scope once when dropped, then drops it
/// (suspended): during a panic, that coroutine suspended while its resumer
/// was panicking.
struct StartAndDropOnDrop<'s, 'e> {
    scope: &'s ucoro::Scope<'s, 'e>,
    log: &'s RefCell<Vec<&'static str>>,
}

impl Drop for StartAndDropOnDrop<'_, '_> {
    fn drop(&mut self) {
        let log = self.log;
        let mut g = self.scope.generator(move |y| {
            let _a = LogOnDrop(log, "started during the panic, unwound after it");
            y.suspend(());
        });
        g.next();
        drop(g);
        log.borrow_mut().push("handle dropped during the panic");
    }
}

in_own_process_test!(handle_dropped_during_a_panic_is_ended_with_the_scope, {
    let log = RefCell::new(Vec::new());
    ucoro::scope(|s| {
        let r = panic::catch_unwind(AssertUnwindSafe(|| {
            let _d = StartAndDropOnDrop {
                scope: s,
                log: &log,
            };
            panic!("unwinding past it");
        }));
        assert!(r.is_err());
        log.borrow_mut().push("panic over");
    });
    assert_eq!(
        *log.borrow(),
        [
            "handle dropped during the panic",
            "panic over",
            "started during the panic, unwound after it"
        ]
    );
    assert_panic_state_clean();
});

aborts_test!(
    scope_ending_during_a_panic_with_an_undecidable_coroutine_aborts,
    {
        // The whole scope lives inside a destructor that runs during a panic:
        // a coroutine suspended there might be mid-unwind, so it can be
        // neither unwound nor leaked.
        struct ScopeOnDrop;
        impl Drop for ScopeOnDrop {
            fn drop(&mut self) {
                ucoro::scope(|s| {
                    let mut g = s.generator(|y| y.suspend(1));
                    g.next();
                });
            }
        }
        let _ = panic::catch_unwind(|| {
            let _s = ScopeOnDrop;
            panic!("unwinding");
        });
        unreachable!("the scope must abort");
    }
);

aborts_test!(catching_the_scope_unwind_and_suspending_again_aborts, {
    let data = String::from("abc");
    ucoro::scope(|s| {
        let mut co = s.coroutine(|y: &Yielder<(), usize>, ()| loop {
            let _ = panic::catch_unwind(AssertUnwindSafe(|| y.suspend(data.len())));
            y.suspend(0);
        });
        co.resume(()).unwrap();
    });
    unreachable!("the handle's drop must abort");
});

aborts_test!(
    scoped_destructor_suspending_during_a_panic_with_an_input_aborts,
    {
        struct SuspendWithInput<'a>(&'a Yielder<u8, i32>);
        impl Drop for SuspendWithInput<'_> {
            fn drop(&mut self) {
                self.0.suspend(-1);
            }
        }
        let data = String::from("borrowed");
        ucoro::scope(|s| {
            let mut co = s.coroutine(|y: &Yielder<u8, i32>, _: u8| {
                let _f = SuspendWithInput(y);
                y.suspend(data.len() as i32);
                panic!("oops");
            });
            assert_eq!(co.resume(0).unwrap(), CoroutineResult::Yield(8));
            // Abandoned mid-unwind: resume panics, the handle cannot be
            // unwound any further, and dropping it aborts.
            let r = panic::catch_unwind(AssertUnwindSafe(|| co.resume(0)));
            assert!(panic_text(&*r.unwrap_err()).contains("abandoned"));
            assert!(matches!(co.resume(0), Err(Error::Finished)));
        });
        unreachable!("the handle's drop must abort");
    }
);

in_own_process_test!(handles_held_by_each_other_in_a_cycle_are_all_ended, {
    // Two coroutines each own the other's handle (through a shared cell):
    // the scope ends both, whichever way their destructors run.
    type Cell2<'s> = Rc<RefCell<Vec<ucoro::ScopedGenerator<'s, ()>>>>;
    let log = RefCell::new(Vec::new());
    ucoro::scope(|s| {
        let shared: Cell2<'_> = Rc::new(RefCell::new(Vec::new()));
        let (a_holds, b_holds) = (shared.clone(), shared.clone());
        let mut a = s.generator(|y| {
            let _keep = a_holds;
            let _l = LogOnDrop(&log, "a");
            y.suspend(());
        });
        let mut b = s.generator(|y| {
            let _keep = b_holds;
            let _l = LogOnDrop(&log, "b");
            y.suspend(());
        });
        a.next();
        b.next();
        shared.borrow_mut().push(a);
        shared.borrow_mut().push(b);
    });
    let mut ended = log.borrow().clone();
    ended.sort();
    assert_eq!(ended, ["a", "b"]);
    assert_panic_state_clean();
});

in_own_process_test!(
    dropping_a_scoped_coroutine_while_it_is_unwound_by_the_scope_is_a_no_op,
    {
        // A coroutine whose own handle sits in its frame (an Rc cycle):
        // ending it drops its handle from inside the unwind.
        let drops = Rc::new(Cell::new(0));
        ucoro::scope(|s| {
            type Slot<'s> = Rc<RefCell<Option<ucoro::ScopedGenerator<'s, ()>>>>;
            let me: Slot<'_> = Rc::new(RefCell::new(None));
            let mine = me.clone();
            let d = DropCounter(drops.clone());
            let mut g = s.generator(move |y| {
                let _mine = mine;
                let _d = d;
                y.suspend(());
            });
            g.next();
            *me.borrow_mut() = Some(g);
        });
        assert_eq!(drops.get(), 1);
        assert_panic_state_clean();
    }
);
