//! `Fiber`: synchronous code on its own stack, polled as a future, awaiting
//! other futures with `Awaiter::block_on`. Driven by a hand-written poll
//! loop (which counts polls and wakes) and by a real executor
//! (`futures-executor`). CI runs this file under AddressSanitizer and
//! Valgrind too. Misuse (nesting, panics, destructors) is in
//! `tests/adversarial_fiber.rs`.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::panic::{self, AssertUnwindSafe};
use std::pin::{pin, Pin};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::thread;

use ucoro::{Awaiter, Fiber};

mod common;
use common::DropCounter;

/// A waker that counts its wakes.
#[derive(Default)]
struct CountingWaker(AtomicUsize);

impl Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, SeqCst);
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.fetch_add(1, SeqCst);
    }
}

/// Polls `future` until it is ready, by hand; returns its output, how many
/// polls it took and how many wakes it asked for. Every `Pending` must have
/// been preceded by a wake (the futures below wake at once).
fn poll_by_hand<F: Future>(future: F) -> (F::Output, usize, usize) {
    let counter = Arc::new(CountingWaker::default());
    let waker = Waker::from(counter.clone());
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    let mut polls = 0;
    loop {
        polls += 1;
        let wakes_before = counter.0.load(SeqCst);
        match future.as_mut().poll(&mut cx) {
            Poll::Ready(output) => return (output, polls, counter.0.load(SeqCst)),
            Poll::Pending => assert!(
                counter.0.load(SeqCst) > wakes_before,
                "pending without a wake: the awaited future got another waker"
            ),
        }
        assert!(polls < 1000, "never ready");
    }
}

/// Pending `pending` times (waking its waker each time), then ready with
/// `value`; counts its polls in `polls`.
struct PendingTimes<T> {
    pending: u32,
    value: Option<T>,
    polls: Rc<Cell<u32>>,
}

fn pending_times<T>(pending: u32, value: T, polls: &Rc<Cell<u32>>) -> PendingTimes<T> {
    PendingTimes {
        pending,
        value: Some(value),
        polls: polls.clone(),
    }
}

impl<T: Unpin> Future for PendingTimes<T> {
    type Output = T;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        self.polls.set(self.polls.get() + 1);
        if self.pending == 0 {
            return Poll::Ready(self.value.take().expect("polled after ready"));
        }
        self.pending -= 1;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

#[test]
fn fiber_awaiting_pending_futures_returns_after_the_right_number_of_polls() {
    let polls = Rc::new(Cell::new(0));
    let p = polls.clone();
    let fiber = Fiber::new(move |a| {
        let x = a.block_on(pending_times(3, 40, &p));
        let y = a.block_on(pending_times(2, 2, &p));
        format!("{}", x + y)
    });
    let (output, fiber_polls, wakes) = poll_by_hand(fiber);
    assert_eq!(output, "42");
    // Pending 3 + 2 times, then the poll that finishes.
    assert_eq!(fiber_polls, 6);
    assert_eq!(wakes, 5, "every pending woke the fiber's waker");
    // Each awaited future was polled once more than it was pending.
    assert_eq!(polls.get(), 4 + 3);
}

#[test]
fn fiber_that_awaits_nothing_is_ready_at_the_first_poll() {
    let (output, polls, wakes) = poll_by_hand(Fiber::new(|_| 7));
    assert_eq!((output, polls, wakes), (7, 1, 0));
    let (output, polls, _) = poll_by_hand(Fiber::new(|a| a.block_on(async { 8 })));
    assert_eq!((output, polls), (8, 1));
}

#[test]
fn fiber_runs_under_a_real_executor() {
    let polls = Rc::new(Cell::new(0));
    let p = polls.clone();
    let out = futures_executor::block_on(Fiber::new(move |a| {
        (0..5)
            .map(|i| a.block_on(pending_times(i, i * 10, &p)))
            .sum::<u32>()
    }));
    assert_eq!(out, 100);
    assert_eq!(polls.get(), (1..=5).sum::<u32>());
}

/// Ready once `flag` is set; stores the waker for the thread that sets it.
struct WaitForFlag {
    flag: Arc<AtomicBool>,
    waker: Arc<Mutex<Option<Waker>>>,
}

impl Future for WaitForFlag {
    type Output = &'static str;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<&'static str> {
        *self.waker.lock().unwrap() = Some(cx.waker().clone());
        if self.flag.load(SeqCst) {
            Poll::Ready("woken from another thread")
        } else {
            Poll::Pending
        }
    }
}

#[test]
fn fiber_is_woken_from_another_thread_in_a_local_pool() {
    // A real wake-up: the fiber stays pending (the pool sleeps) until a
    // thread sets the flag and wakes the waker the awaited future stored.
    let flag = Arc::new(AtomicBool::new(false));
    let waker: Arc<Mutex<Option<Waker>>> = Arc::new(Mutex::new(None));
    let (f, w) = (flag.clone(), waker.clone());
    let setter = thread::spawn(move || {
        while w.lock().unwrap().is_none() {
            thread::yield_now();
        }
        f.store(true, SeqCst);
        w.lock().unwrap().take().expect("stored").wake();
    });
    let (f, w) = (flag.clone(), waker.clone());
    let mut pool = futures_executor::LocalPool::new();
    let out = pool.run_until(Fiber::new(move |a| {
        a.block_on(WaitForFlag { flag: f, waker: w })
    }));
    assert_eq!(out, "woken from another thread");
    setter.join().unwrap();
}

#[test]
fn dropping_a_pending_fiber_runs_its_destructors() {
    let drops = Rc::new(Cell::new(0));
    let polls = Rc::new(Cell::new(0));
    let (d, p) = (drops.clone(), polls.clone());
    let mut fiber = Fiber::new(move |a: &Awaiter| {
        let _on_the_fibers_stack = DropCounter(d.clone());
        // The awaited future itself is dropped too.
        struct Counted<F>(F, #[allow(dead_code)] DropCounter);
        impl<F: Future + Unpin> Future for Counted<F> {
            type Output = F::Output;
            fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
                Pin::new(&mut self.0).poll(cx)
            }
        }
        a.block_on(Counted(pending_times(u32::MAX, (), &p), DropCounter(d)));
        unreachable!("never ready");
    });
    let waker = Waker::from(Arc::new(CountingWaker::default()));
    let mut cx = Context::from_waker(&waker);
    for _ in 0..3 {
        assert!(Pin::new(&mut fiber).poll(&mut cx).is_pending());
    }
    assert_eq!(polls.get(), 3);
    assert_eq!(drops.get(), 0);
    drop(fiber);
    assert_eq!(drops.get(), 2, "the closure's local and the awaited future");
    assert!(!thread::panicking());
}

#[test]
fn panic_in_a_fiber_resumes_in_its_poller_and_later_polls_panic() {
    let mut fiber = Fiber::new(|a: &Awaiter| -> u8 {
        a.block_on(async {});
        panic!("inside the fiber")
    });
    let waker = Waker::from(Arc::new(CountingWaker::default()));
    let mut cx = Context::from_waker(&waker);
    let r = panic::catch_unwind(AssertUnwindSafe(|| Pin::new(&mut fiber).poll(&mut cx)));
    assert_eq!(
        r.unwrap_err().downcast_ref::<&str>(),
        Some(&"inside the fiber")
    );
    let r = panic::catch_unwind(AssertUnwindSafe(|| Pin::new(&mut fiber).poll(&mut cx)));
    let payload = r.unwrap_err();
    let text = payload.downcast_ref::<&str>().copied().unwrap_or_default();
    assert!(text.contains("polled after it completed"), "{text}");
}

#[test]
fn fiber_inside_a_coroutine_and_coroutines_inside_a_fiber() {
    // A generator suspended inside the fiber across the fiber's own
    // suspensions, and the fiber polled from inside a coroutine.
    let polls = Rc::new(Cell::new(0));
    let p = polls.clone();
    let mut outer = ucoro::Coroutine::new(move |y: &ucoro::Yielder<(), u32>, ()| {
        let fiber = Fiber::new(move |a| {
            let mut squares =
                ucoro::Generator::new(|gy| (1..=3u32).for_each(|i| gy.suspend(i * i)));
            let mut total = 0;
            for sq in squares.by_ref() {
                total += a.block_on(pending_times(1, sq, &p));
            }
            total
        });
        let total = futures_executor::block_on(fiber);
        y.suspend(total);
        total + 1
    });
    assert_eq!(
        outer.resume(()).unwrap(),
        ucoro::CoroutineResult::Yield(1 + 4 + 9)
    );
    assert_eq!(
        outer.resume(()).unwrap(),
        ucoro::CoroutineResult::Return(15)
    );
    assert_eq!(polls.get(), 6);
}

#[test]
fn fiber_state_survives_between_polls() {
    // Locals on the fiber's stack (a RefCell borrow held across awaits)
    // stay where they are between polls.
    let log = Rc::new(RefCell::new(Vec::new()));
    let l = log.clone();
    let polls = Rc::new(Cell::new(0));
    let p = polls.clone();
    let fiber = Fiber::new(move |a| {
        let mut held = l.borrow_mut();
        for i in 0..4 {
            held.push(a.block_on(pending_times(1, i, &p)));
        }
        held.len()
    });
    let (len, fiber_polls, _) = poll_by_hand(fiber);
    assert_eq!((len, fiber_polls), (4, 5));
    assert_eq!(*log.borrow(), [0, 1, 2, 3]);
}
