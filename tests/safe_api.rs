//! The safe Rust API: what a user of `Coroutine`, `Yielder` and `Generator`
//! relies on.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use ucoro::{Builder, Coroutine, CoroutineResult, Error, Generator, Yielder};

mod common;
use common::DropCounter;

#[test]
fn generator_yields_values_in_order() {
    let counts: Vec<u32> = Generator::new(|y| {
        let mut count = 0;
        loop {
            y.suspend(count);
            count += 1;
        }
    })
    .take(10)
    .collect();
    assert_eq!(counts, (0..10).collect::<Vec<_>>());
}

#[test]
fn generator_ends_and_keeps_its_return_value() {
    let mut g = Generator::new(|y| {
        y.suspend("a");
        y.suspend("b");
        42
    });
    assert_eq!(g.next(), Some("a"));
    assert_eq!(g.next(), Some("b"));
    assert_eq!(g.next(), None);
    assert_eq!(g.next(), None, "a finished generator stays finished");
    assert_eq!(g.take_return(), Some(42));
}

#[test]
fn resume_passes_inputs_and_returns_result() {
    let mut co = Coroutine::new(|y: &Yielder<i32, i32>, first| {
        let second = y.suspend(first + 1);
        let third = y.suspend(second * 10);
        format!("{first},{second},{third}")
    });
    assert_eq!(co.resume(1).unwrap(), CoroutineResult::Yield(2));
    assert_eq!(co.resume(5).unwrap(), CoroutineResult::Yield(50));
    assert_eq!(
        co.resume(9).unwrap(),
        CoroutineResult::Return("1,5,9".to_string())
    );
    assert!(co.is_finished());
}

#[test]
fn resume_after_finish_is_an_error() {
    let mut co = Coroutine::new(|_: &Yielder<u8, ()>, x: u8| x);
    assert_eq!(co.resume(3).unwrap(), CoroutineResult::Return(3));
    assert!(matches!(co.resume(4), Err(Error::Finished)));
    assert!(matches!(co.resume(5), Err(Error::Finished)));
}

#[test]
fn closure_does_not_run_before_first_resume() {
    let ran = Rc::new(Cell::new(false));
    let flag = ran.clone();
    let mut co = Coroutine::new(move |_: &Yielder<(), ()>, ()| flag.set(true));
    assert!(!ran.get());
    assert!(!co.started());
    co.resume(()).unwrap();
    assert!(ran.get());
}

#[test]
fn producer_consumer_hand_off_without_locks() {
    let log = Rc::new(RefCell::new(Vec::new()));
    let plog = log.clone();
    let mut producer = Coroutine::new(move |y, mut queue: VecDeque<u32>| {
        for batch in 0..4 {
            for i in 0..3 {
                queue.push_back(batch * 3 + i);
            }
            plog.borrow_mut().push(format!("produced batch {batch}"));
            queue = y.suspend(queue);
        }
        "producer done"
    });
    let mut queue = VecDeque::new();
    let mut consumed = Vec::new();
    let result = loop {
        match producer.resume(queue).unwrap() {
            CoroutineResult::Yield(mut q) => {
                consumed.extend(q.drain(..));
                log.borrow_mut()
                    .push(format!("consumed up to {}", consumed.len()));
                queue = q;
            }
            CoroutineResult::Return(r) => break r,
        }
    };
    assert_eq!(result, "producer done");
    assert_eq!(consumed, (0..12).collect::<Vec<_>>());
    // Strict alternation: each batch is consumed before the next is made.
    let log = log.borrow();
    for (i, pair) in log.chunks(2).enumerate() {
        assert_eq!(pair[0], format!("produced batch {i}"));
        assert_eq!(pair[1], format!("consumed up to {}", (i + 1) * 3));
    }
}

#[test]
fn nested_coroutines_resume_each_other() {
    let mut outer = Coroutine::new(|y: &Yielder<(), String>, ()| {
        let mut inner = Coroutine::new(|yi: &Yielder<(), u32>, ()| {
            let mut innermost = Coroutine::new(|yii: &Yielder<(), char>, ()| {
                yii.suspend('x');
                'y'
            });
            let a = match innermost.resume(()).unwrap() {
                CoroutineResult::Yield(c) => c,
                CoroutineResult::Return(_) => unreachable!(),
            };
            yi.suspend(a as u32);
            match innermost.resume(()).unwrap() {
                CoroutineResult::Return(c) => c as u32,
                CoroutineResult::Yield(_) => unreachable!(),
            }
        });
        let first = inner.resume(()).unwrap();
        y.suspend(format!("{first:?}"));
        let second = inner.resume(()).unwrap();
        format!("{second:?}")
    });
    assert_eq!(
        outer.resume(()).unwrap(),
        CoroutineResult::Yield(format!(
            "{:?}",
            CoroutineResult::<u32, u32>::Yield('x' as u32)
        ))
    );
    assert_eq!(
        outer.resume(()).unwrap(),
        CoroutineResult::Return(format!(
            "{:?}",
            CoroutineResult::<u32, u32>::Return('y' as u32)
        ))
    );
}

#[test]
fn panic_propagates_to_the_resumer() {
    let mut co = Coroutine::new(|y: &Yielder<(), u32>, ()| {
        y.suspend(1);
        panic!("boom in coroutine");
    });
    assert_eq!(co.resume(()).unwrap(), CoroutineResult::Yield(1));
    let err = panic::catch_unwind(AssertUnwindSafe(|| co.resume(()))).unwrap_err();
    assert_eq!(err.downcast_ref::<&str>(), Some(&"boom in coroutine"));
    assert!(co.is_finished());
    assert!(matches!(co.resume(()), Err(Error::Finished)));
}

#[test]
fn panic_unwinds_the_coroutine_stack() {
    let drops = Rc::new(Cell::new(0));
    let d = drops.clone();
    let mut co = Coroutine::new(move |_: &Yielder<(), ()>, ()| {
        let _guard = DropCounter(d);
        panic!("unwind me");
    });
    assert!(panic::catch_unwind(AssertUnwindSafe(|| co.resume(()))).is_err());
    assert_eq!(
        drops.get(),
        1,
        "the guard on the coroutine stack was dropped"
    );
}

#[test]
fn panic_in_nested_coroutine_reaches_the_outermost_resumer() {
    let mut outer = Coroutine::new(|_: &Yielder<(), ()>, ()| {
        let mut inner = Coroutine::new(|_: &Yielder<(), ()>, ()| -> () {
            panic!("inner failure");
        });
        let _ = inner.resume(());
    });
    let err = panic::catch_unwind(AssertUnwindSafe(|| outer.resume(()))).unwrap_err();
    assert_eq!(err.downcast_ref::<&str>(), Some(&"inner failure"));
}

#[test]
fn dropping_a_suspended_coroutine_runs_destructors() {
    let drops = Rc::new(Cell::new(0));
    let after_suspend = Rc::new(Cell::new(false));
    let (d, a) = (drops.clone(), after_suspend.clone());
    let mut co = Coroutine::new(move |y: &Yielder<(), ()>, ()| {
        let _outer = DropCounter(d.clone());
        {
            let _inner = DropCounter(d);
            y.suspend(());
        }
        a.set(true);
    });
    co.resume(()).unwrap();
    assert_eq!(drops.get(), 0);
    drop(co);
    assert_eq!(
        drops.get(),
        2,
        "both guards on the suspended stack were dropped"
    );
    assert!(
        !after_suspend.get(),
        "code after the suspend point never ran"
    );
}

#[test]
fn dropping_an_unstarted_coroutine_drops_its_closure() {
    let drops = Rc::new(Cell::new(0));
    let guard = DropCounter(drops.clone());
    let co = Coroutine::new(move |_: &Yielder<(), ()>, ()| drop(guard));
    drop(co);
    assert_eq!(drops.get(), 1);
}

#[test]
fn catch_unwind_cannot_keep_a_dropped_coroutine_alive() {
    let resumed_after_catch = Rc::new(Cell::new(0));
    let r = resumed_after_catch.clone();
    let mut co = Coroutine::new(move |y: &Yielder<(), u32>, ()| loop {
        // A user loop that swallows every panic, including our unwind.
        let _ = panic::catch_unwind(AssertUnwindSafe(|| y.suspend(1)));
        r.set(r.get() + 1);
        y.suspend(2);
        r.set(r.get() + 100);
    });
    assert_eq!(co.resume(()).unwrap(), CoroutineResult::Yield(1));
    drop(co); // must return, not hang, and not resume the coroutine again
    assert_eq!(
        resumed_after_catch.get(),
        1,
        "the catch block ran once; the suspend after it ended the coroutine's life"
    );
}

#[test]
fn a_value_yielded_after_catching_the_drop_unwind_is_dropped() {
    let token = Rc::new(());
    let t = token.clone();
    let mut co = Coroutine::new(move |y: &Yielder<(), Option<Rc<()>>>, ()| {
        let _ = panic::catch_unwind(AssertUnwindSafe(|| y.suspend(None)));
        y.suspend(Some(t.clone())); // the drop leaks the coroutine here
    });
    assert_eq!(co.resume(()).unwrap(), CoroutineResult::Yield(None));
    drop(co);
    // Two owners would remain if the value handed to the leaked suspend
    // were leaked too (the closure's own copy is on the leaked stack).
    assert_eq!(Rc::strong_count(&token), 2, "the yielded clone was dropped");
}

#[test]
fn catch_unwind_then_return_still_finishes_the_drop() {
    let drops = Rc::new(Cell::new(0));
    let d = drops.clone();
    let mut co = Coroutine::new(move |y: &Yielder<(), ()>, ()| {
        let _guard = DropCounter(d);
        let caught = panic::catch_unwind(AssertUnwindSafe(|| y.suspend(())));
        assert!(caught.is_err());
        "returned after catching"
    });
    co.resume(()).unwrap();
    drop(co);
    assert_eq!(drops.get(), 1);
}

#[test]
fn panic_raised_while_being_dropped_propagates_from_drop() {
    let mut co = Coroutine::new(|y: &Yielder<(), ()>, ()| {
        let caught = panic::catch_unwind(AssertUnwindSafe(|| y.suspend(())));
        assert!(caught.is_err(), "the drop-time unwind was caught");
        panic!("failed during cleanup");
    });
    co.resume(()).unwrap();
    let err = panic::catch_unwind(AssertUnwindSafe(move || drop(co))).unwrap_err();
    assert_eq!(err.downcast_ref::<&str>(), Some(&"failed during cleanup"));
}

#[test]
fn builder_sets_stack_size_and_rejects_absurd_sizes() {
    let co = Builder::new()
        .stack_size(256 * 1024)
        .build(|_: &Yielder<(), ()>, ()| ())
        .unwrap();
    assert_eq!(co.stack_size(), 256 * 1024);
    let tiny = Builder::new()
        .stack_size(1)
        .build(|_: &Yielder<(), ()>, ()| ())
        .unwrap();
    assert_eq!(
        tiny.stack_size(),
        64 * 1024,
        "rounded up to the safe API's minimum"
    );
    match Builder::new()
        .stack_size(usize::MAX)
        .build(|_: &Yielder<(), ()>, ()| ())
    {
        Err(Error::StackAllocation { size, source }) => {
            assert_eq!(size, usize::MAX);
            assert_eq!(source.raw_os_error(), Some(libc::EINVAL));
        }
        other => panic!("expected StackAllocation, got {other:?}"),
    }
}

#[test]
fn coroutines_run_on_four_threads_at_once() {
    let total = Arc::new(AtomicUsize::new(0));
    let barrier = Arc::new(std::sync::Barrier::new(4));
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let total = total.clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                let mut gens: Vec<Generator<usize>> = (0..8)
                    .map(|g| {
                        Generator::new(move |y| {
                            for i in 0..1000 {
                                y.suspend(t * 1_000_000 + g * 1000 + i);
                            }
                        })
                    })
                    .collect();
                barrier.wait(); // all four threads switch at the same time
                let mut sum = 0;
                for round in 0..1000 {
                    for (g, gen) in gens.iter_mut().enumerate() {
                        let v = gen.next().unwrap();
                        assert_eq!(v, t * 1_000_000 + g * 1000 + round);
                        sum += 1;
                    }
                }
                assert!(gens.iter_mut().all(|g| g.next().is_none()));
                total.fetch_add(sum, Ordering::Relaxed);
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(total.load(Ordering::Relaxed), 4 * 8 * 1000);
}

#[test]
fn deep_recursion_fits_in_a_large_stack() {
    fn depth(n: u64) -> u64 {
        let pad = std::hint::black_box([n; 16]);
        if n == 0 {
            0
        } else {
            1 + depth(n - 1) + pad[0] - n
        }
    }
    // 64 MiB of address space: room for 20,000 frames even with the
    // redzones AddressSanitizer adds; only the touched pages cost memory.
    let mut co = Builder::new()
        .stack_size(64 << 20)
        .build(|_: &Yielder<u64, ()>, n: u64| depth(n))
        .unwrap();
    assert_eq!(co.resume(20_000).unwrap(), CoroutineResult::Return(20_000));
}

// ---------------------------------------------------------------------------
// on_stack, CoroutineResult helpers, FusedIterator
// ---------------------------------------------------------------------------

/// Recurses, at least 1 KiB a level, until this frame lies `need` bytes
/// below `top`; returns how far below `top` the deepest frame was.
fn recurse_until(top: usize, need: usize) -> usize {
    let frame = std::hint::black_box([0u8; 1024]);
    let depth = top.saturating_sub(frame.as_ptr() as usize);
    if depth >= need {
        depth
    } else {
        recurse_until(top, need).max(usize::from(frame[0]))
    }
}

#[test]
fn on_stack_runs_a_recursion_that_needs_64_mib() {
    let need = 64 << 20;
    // Room to spare for the redzones AddressSanitizer adds to each frame.
    let deepest = ucoro::on_stack(160 << 20, || {
        let top = std::hint::black_box(0u8);
        let top = &top as *const u8 as usize;
        // SAFETY: coroutine_self only reads this thread's state.
        let me = unsafe { ucoro::sys::coroutine_self() } as usize;
        if top.abs_diff(me) > 1 << 20 {
            // Not on the coroutine's stack: AddressSanitizer keeps locals
            // on "fake stacks" of its own, so addresses cannot measure the
            // depth. Recurse as many levels as 64 MiB holds natively.
            return count_levels(need / 1024) * 1024;
        }
        recurse_until(top, need)
    });
    assert!(deepest >= need, "{deepest} bytes deep");
}

/// Recurses `levels` levels with 1 KiB of locals each; returns `levels`.
fn count_levels(levels: usize) -> usize {
    let frame = std::hint::black_box([0u8; 1024]);
    if levels == 0 {
        0
    } else {
        1 + count_levels(levels - 1) + usize::from(frame[0])
    }
}

#[test]
fn on_stack_borrows_and_returns() {
    let mut words = vec!["a"];
    let n = ucoro::on_stack(64 << 10, || {
        words.push("b");
        words.len()
    });
    assert_eq!(n, 2);
    assert_eq!(words, ["a", "b"]);
    assert_eq!(ucoro::on_stack(0, || 7), 7, "0 is the default size");
}

#[test]
fn on_stack_panic_propagates_after_unwinding_the_fresh_stack() {
    let drops = Rc::new(Cell::new(0));
    let d = drops.clone();
    let r = panic::catch_unwind(AssertUnwindSafe(|| {
        ucoro::on_stack(1 << 20, move || {
            let _counted = DropCounter(d);
            panic!("deep");
        })
    }));
    assert_eq!(r.unwrap_err().downcast_ref::<&str>(), Some(&"deep"));
    assert_eq!(drops.get(), 1);
}

#[test]
fn coroutine_result_accessors() {
    let y: CoroutineResult<u8, &str> = CoroutineResult::Yield(3);
    let r: CoroutineResult<u8, &str> = CoroutineResult::Return("r");
    assert_eq!((y.as_yield(), y.as_return()), (Some(&3), None));
    assert_eq!((r.as_yield(), r.as_return()), (None, Some(&"r")));
    assert_eq!((y.into_yield(), y.into_return()), (Some(3), None));
    assert_eq!((r.into_yield(), r.into_return()), (None, Some("r")));
}

#[test]
fn generator_is_a_fused_iterator() {
    fn fused<I: std::iter::FusedIterator>(i: I) -> I {
        i
    }
    let mut g = fused(Generator::new(|y| y.suspend(1)));
    assert_eq!(g.next(), Some(1));
    assert_eq!(g.next(), None);
    assert_eq!(g.next(), None);
    // `fuse()` adds nothing: the same values.
    let v: Vec<u8> = Generator::new(|y| (1..=3).for_each(|i| y.suspend(i)))
        .fuse()
        .collect();
    assert_eq!(v, [1, 2, 3]);
}
