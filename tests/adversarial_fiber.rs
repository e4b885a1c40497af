//! Adversarial use of `Fiber`: `block_on` where it cannot suspend the fiber
//! (a nested coroutine, inside a poll it drives, in a destructor while the
//! fiber is dropped), panics of awaited futures, fibers nested in fibers
//! and in coroutines, drops mid-way. What the user gets must be a panic
//! with a clear message or the documented leak, never undefined behaviour.
//!
//! Every scenario runs in a child process of its own (this binary again,
//! `common::in_own_process`). CI runs this file under AddressSanitizer and
//! Valgrind.

use std::cell::Cell;
use std::future::Future;
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use ucoro::{Awaiter, CoroutineResult, Fiber, Generator, Yielder};

mod common;
use common::{assert_panic_state_clean, in_own_process, panic_text, DropCounter};

/// A test whose scenario runs in a child process of its own and must pass
/// without any diagnostic.
macro_rules! in_own_process_test {
    ($name:ident, $body:block) => {
        #[test]
        fn $name() {
            in_own_process(stringify!($name), || $body);
        }
    };
}

/// Pending once (waking at once), then ready with its value.
struct PendingOnce<T>(Option<T>, bool);

impl<T: Unpin> Future for PendingOnce<T> {
    type Output = T;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        if std::mem::replace(&mut self.1, true) {
            Poll::Ready(self.0.take().expect("polled after ready"))
        } else {
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
}

fn pending_once<T>(value: T) -> PendingOnce<T> {
    PendingOnce(Some(value), false)
}

struct NoWake;

impl Wake for NoWake {
    fn wake(self: Arc<Self>) {}
}

/// Polls `fiber` once with a waker that does nothing.
fn poll_once<R>(fiber: &mut Fiber<R>) -> Poll<R> {
    let waker = Waker::from(Arc::new(NoWake));
    Pin::new(fiber).poll(&mut Context::from_waker(&waker))
}

// ---------------------------------------------------------------------------
// block_on where it cannot suspend the fiber
// ---------------------------------------------------------------------------

in_own_process_test!(block_on_from_a_coroutine_nested_in_the_fiber_panics, {
    let fiber = Fiber::new(|a: &Awaiter| {
        // A plain generator cannot capture `a` (it is 'static), but a scoped
        // one or on_stack's closure can.
        let nested = ucoro::scope(|s| {
            let mut g = s.generator(|y| y.suspend(a.block_on(pending_once(1))));
            panic::catch_unwind(AssertUnwindSafe(|| g.next())).map_err(|e| panic_text(&*e))
        });
        let deep = panic::catch_unwind(AssertUnwindSafe(|| {
            ucoro::on_stack(0, || a.block_on(pending_once(2)))
        }))
        .map_err(|e| panic_text(&*e));
        // The fiber itself still awaits normally afterwards.
        (nested, deep, a.block_on(pending_once(3)))
    });
    let (nested, deep, after) = futures_executor::block_on(fiber);
    for r in [nested.map(|_| ()), deep.map(|_| ())] {
        let text = r.expect_err("refused");
        assert!(text.contains("nested inside the fiber"), "{text}");
    }
    assert_eq!(after, 3);
    assert_panic_state_clean();
});

/// A future whose poll calls `block_on` on the awaiter that drives it.
struct Reentrant<'a>(&'a Awaiter);

impl Future for Reentrant<'_> {
    type Output = String;
    fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<String> {
        let r = panic::catch_unwind(AssertUnwindSafe(|| self.0.block_on(pending_once(()))));
        Poll::Ready(panic_text(&*r.expect_err("refused")))
    }
}

in_own_process_test!(block_on_inside_a_poll_it_drives_panics, {
    let fiber = Fiber::new(|a: &Awaiter| {
        let text = a.block_on(Reentrant(a));
        (text, a.block_on(pending_once(5)))
    });
    let (text, after) = futures_executor::block_on(fiber);
    assert!(
        text.contains("inside the poll of a future it awaits"),
        "{text}"
    );
    assert_eq!(after, 5);
    assert_panic_state_clean();
});

/// Awaits a future from its destructor.
struct AwaitOnDrop<'a>(&'a Awaiter, Rc<Cell<bool>>);

impl Drop for AwaitOnDrop<'_> {
    fn drop(&mut self) {
        self.1.set(true);
        self.0.block_on(pending_once(()));
        unreachable!("no poll can finish this await while the fiber is dropped");
    }
}

in_own_process_test!(
    block_on_in_a_destructor_while_the_fiber_is_dropped_leaks_it,
    {
        // There is no poll while the fiber is dropped: the awaiting destructor
        // stops the fiber for good, as a suspend during an unwind does, and
        // the fiber is leaked (its closure is 'static). Nothing below it runs.
        let reached = Rc::new(Cell::new(false));
        let drops = Rc::new(Cell::new(0));
        let (r, d) = (reached.clone(), drops.clone());
        let mut fiber = Fiber::new(move |a: &Awaiter| {
            let _below = DropCounter(d);
            let _awaits = AwaitOnDrop(a, r);
            a.block_on(pending_once(()));
            a.block_on(std::future::pending::<()>());
        });
        assert!(poll_once(&mut fiber).is_pending());
        assert!(poll_once(&mut fiber).is_pending());
        drop(fiber);
        assert!(reached.get(), "the destructor ran");
        assert_eq!(drops.get(), 0, "the fiber stopped there for good");
        assert_panic_state_clean();
    }
);

// ---------------------------------------------------------------------------
// Panics
// ---------------------------------------------------------------------------

/// Panics when polled.
struct PanicOnPoll;

impl Future for PanicOnPoll {
    type Output = ();
    fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<()> {
        panic!("awaited future panicked")
    }
}

in_own_process_test!(awaited_future_panic_can_be_caught_and_the_fiber_goes_on, {
    // After the caught panic, the next await still gets the poll's waker
    // (else the fiber would never be woken again).
    let fiber = Fiber::new(|a: &Awaiter| {
        let r = panic::catch_unwind(AssertUnwindSafe(|| a.block_on(PanicOnPoll)));
        (panic_text(&*r.unwrap_err()), a.block_on(pending_once(9)))
    });
    let (text, after) = futures_executor::block_on(fiber);
    assert_eq!(text, "awaited future panicked");
    assert_eq!(after, 9);
    assert_panic_state_clean();
});

in_own_process_test!(awaited_future_panic_reaches_the_poller, {
    let drops = Rc::new(Cell::new(0));
    let d = drops.clone();
    let mut fiber = Fiber::new(move |a: &Awaiter| {
        let _counted = DropCounter(d);
        a.block_on(pending_once(()));
        a.block_on(PanicOnPoll);
    });
    assert!(poll_once(&mut fiber).is_pending());
    let err = panic::catch_unwind(AssertUnwindSafe(|| poll_once(&mut fiber))).unwrap_err();
    assert_eq!(panic_text(&*err), "awaited future panicked");
    assert_eq!(drops.get(), 1, "the fiber's stack was unwound");
    drop(fiber);
    assert_panic_state_clean();
});

// ---------------------------------------------------------------------------
// Nesting and drops mid-way
// ---------------------------------------------------------------------------

in_own_process_test!(fiber_awaiting_another_fiber, {
    let inner_polls = Rc::new(Cell::new(0));
    let p = inner_polls.clone();
    let outer = Fiber::new(move |a: &Awaiter| {
        let inner = Fiber::new(move |b: &Awaiter| {
            p.set(p.get() + 1);
            b.block_on(pending_once(20)) + b.block_on(pending_once(1))
        });
        a.block_on(inner) * 2
    });
    assert_eq!(futures_executor::block_on(outer), 42);
    assert_eq!(inner_polls.get(), 1, "its closure ran once");
    assert_panic_state_clean();
});

in_own_process_test!(pending_fiber_dropped_with_the_coroutine_that_owns_it, {
    // A coroutine holds a pending fiber that holds a suspended generator;
    // dropping the coroutine unwinds all three stacks.
    let drops = Rc::new(Cell::new(0));
    let d = drops.clone();
    let mut co = ucoro::Coroutine::new(move |y: &Yielder<(), ()>, ()| {
        let d2 = d.clone();
        let mut fiber = Fiber::new(move |a: &Awaiter| {
            let d3 = d2.clone();
            let mut g = Generator::new(move |gy| {
                let _c = DropCounter(d3);
                gy.suspend(1);
                gy.suspend(2);
            });
            let _c = DropCounter(d2);
            g.next();
            a.block_on(std::future::pending::<()>());
        });
        assert!(poll_once(&mut fiber).is_pending());
        let _c = DropCounter(d);
        y.suspend(());
        drop(fiber);
    });
    assert_eq!(co.resume(()).unwrap(), CoroutineResult::Yield(()));
    drop(co);
    assert_eq!(
        drops.get(),
        3,
        "coroutine, fiber and generator were unwound"
    );
    assert_panic_state_clean();
});

in_own_process_test!(
    fiber_polled_from_a_scoped_coroutine_and_dropped_by_the_scope,
    {
        let drops = Rc::new(Cell::new(0));
        let d = drops.clone();
        ucoro::scope(|s| {
            let mut co = s.coroutine(move |y: &Yielder<(), ()>, ()| {
                let mut fiber = Fiber::new(move |a: &Awaiter| {
                    let _c = DropCounter(d);
                    a.block_on(std::future::pending::<()>());
                });
                assert!(poll_once(&mut fiber).is_pending());
                y.suspend(());
                drop(fiber);
            });
            co.resume(()).unwrap();
            std::mem::forget(co);
        });
        assert_eq!(
            drops.get(),
            1,
            "the scope unwound the coroutine and its fiber"
        );
        assert_panic_state_clean();
    }
);
