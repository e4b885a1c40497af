//! The safe API's cache of finished coroutines (src/stack_cache.rs): a
//! dropped coroutine whose frames are gone is kept by its thread, and the
//! next coroutine created there with the same stack size runs on it,
//! rearmed, instead of on a fresh stack.
//!
//! How these tests are built:
//!
//! - Each test runs on a thread of its own (libtest's), so its cache starts
//!   empty and nothing else uses it: which stack a new coroutine gets is
//!   deterministic. That it got a recycled one is seen from inside, where
//!   `coroutine_self()` names the C struct, which sits at a fixed place at
//!   the top of its stack: the same address means the same stack.
//! - Sanitizer builds (AddressSanitizer, ThreadSanitizer) do not recycle
//!   (their per-stack state only resets on a fresh stack): there, the tests
//!   check that everything still works, but not that a stack was reused.
//! - The memory tests run in a process of their own ([`in_own_process`]),
//!   since they measure the whole process (VmSize).
#![warn(clippy::undocumented_unsafe_blocks)]
#![deny(unsafe_op_in_unsafe_fn)]

use std::cell::{Cell, RefCell};
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;

use ucoro::{sys, Builder, Coroutine, CoroutineResult, Yielder};

mod common;
use common::{in_own_process, panic_text, proc_status_kib, DropCounter};

const MIB: usize = 1 << 20;

/// The running coroutine's C struct, as an address.
fn self_address() -> usize {
    // SAFETY: coroutine_self has no preconditions.
    unsafe { sys::coroutine_self() as usize }
}

/// Whether this process runs under a sanitizer, which does not recycle
/// stacks: AddressSanitizer and ThreadSanitizer both reserve terabytes of
/// shadow memory at startup, far more than anything else here maps.
fn sanitized() -> bool {
    proc_status_kib("VmSize") > 1 << 30 // KiB: 1 TiB
}

/// Asserts that a coroutine ran on the stack of the one before it, where
/// this build recycles.
fn assert_recycled(now: usize, before: usize) {
    if !sanitized() {
        assert_eq!(now, before, "the finished coroutine's stack was not reused");
    }
}

/// Runs a coroutine to its end on a stack asked as `stack_size` and drops
/// it (so that it is cached); returns where its C struct was.
fn finished_one(stack_size: usize) -> usize {
    let mut co = Builder::new()
        .stack_size(stack_size)
        .build(|_: &Yielder<(), ()>, ()| self_address())
        .unwrap();
    co.resume(()).unwrap().into_return().unwrap()
}

#[test]
fn recycled_coroutine_runs_a_new_closure_with_its_values() {
    let before = finished_one(0);
    let seen = Rc::new(Cell::new(0usize));
    let inside = seen.clone();
    let mut co = Coroutine::new(move |y: &Yielder<u32, String>, first: u32| {
        inside.set(self_address());
        let second = y.suspend(format!("got {first}"));
        let third = y.suspend(format!("then {second}"));
        vec![first, second, third]
    });
    assert_eq!(
        co.resume(1).unwrap(),
        CoroutineResult::Yield("got 1".to_string())
    );
    // Inside, the running coroutine is this one: not the thread's main one,
    // resumed by it, on a stack of this coroutine's size.
    let me = seen.get() as *mut sys::coroutine;
    // SAFETY: plain reads of a live, suspended coroutine's public fields;
    // coroutine_is_main takes any pointer.
    unsafe {
        assert_eq!(sys::coroutine_is_main(me), 0);
        assert_eq!((*me).stack_size, co.stack_size());
        assert_eq!((*me).exited, 0);
    }
    assert_recycled(seen.get(), before);
    assert_eq!(
        co.resume(2).unwrap(),
        CoroutineResult::Yield("then 2".to_string())
    );
    assert_eq!(
        co.resume(3).unwrap(),
        CoroutineResult::Return(vec![1, 2, 3])
    );
    assert!(co.is_finished());
    assert!(co.stack_used() > 0 && co.stack_used() <= co.stack_size());
}

#[test]
fn panic_in_recycled_coroutine_propagates_with_its_payload() {
    let before = finished_one(0);
    let mut co = Coroutine::new(move |_: &Yielder<u32, ()>, n: u32| -> u32 {
        assert_recycled(self_address(), before);
        std::panic::panic_any(format!("recycled panic {n}"))
    });
    let payload = panic::catch_unwind(AssertUnwindSafe(|| co.resume(7))).unwrap_err();
    assert_eq!(panic_text(&*payload), "recycled panic 7");
    assert!(co.is_finished());
    drop(co);
    // The panicked coroutine went back to the cache and serves again.
    let mut again = Coroutine::new(move |_: &Yielder<u32, ()>, n: u32| {
        assert_recycled(self_address(), before);
        n * 2
    });
    assert_eq!(again.resume(21).unwrap(), CoroutineResult::Return(42));
}

#[test]
fn dropping_a_suspended_recycled_coroutine_runs_its_destructors() {
    let before = finished_one(0);
    let drops = Rc::new(Cell::new(0));
    for round in 1..=3 {
        let guard = DropCounter(drops.clone());
        let mut co = Coroutine::new(move |y: &Yielder<(), u32>, ()| {
            let _held = guard;
            assert_recycled(self_address(), before);
            y.suspend(round);
            unreachable!("resumed after it was dropped");
        });
        assert_eq!(co.resume(()).unwrap(), CoroutineResult::Yield(round));
        drop(co); // forced unwind: `_held` is dropped on the coroutine's stack
        assert_eq!(drops.get(), round, "destructors run by the forced unwind");
    }
}

#[test]
fn never_started_coroutine_drops_its_closure_and_its_stack_serves_again() {
    let drops = Rc::new(Cell::new(0));
    let guard = DropCounter(drops.clone());
    let unstarted = Coroutine::new(move |_: &Yielder<(), ()>, ()| drop(guard));
    drop(unstarted);
    assert_eq!(drops.get(), 1, "the closure that never ran is dropped");
    let first = finished_one(0);
    // The stack of the one that never ran was the one reused just now, and
    // it is back in the cache once more.
    assert_recycled(finished_one(0), first);
}

/// A closure's state aligned beyond what the C library guarantees.
#[repr(C, align(64))]
#[derive(Clone, Copy)]
struct Aligned([u8; 4096]);

#[test]
fn closures_of_different_sizes_and_alignments_alternate_on_recycled_stacks() {
    for round in 0..200u32 {
        // A small closure...
        let small = u64::from(round) * 3;
        let mut co = Coroutine::new(move |y: &Yielder<u64, u64>, add: u64| y.suspend(small) + add);
        assert_eq!(co.resume(10).unwrap(), CoroutineResult::Yield(small));
        assert_eq!(
            co.resume(small).unwrap(),
            CoroutineResult::Return(small + 10)
        );
        drop(co);
        // ... then one with a 4 KiB, 64-aligned capture, and an unstarted
        // medium one (dropped without running), in turn.
        let fill = (round % 251) as u8;
        let big = Aligned([fill; 4096]);
        let mut co = Coroutine::new(move |y: &Yielder<(), usize>, ()| {
            let at = &big as *const Aligned as usize;
            y.suspend(at % 64);
            big.0.iter().map(|&b| usize::from(b)).sum::<usize>()
        });
        assert_eq!(
            co.resume(()).unwrap(),
            CoroutineResult::Yield(0),
            "aligned to 64"
        );
        assert_eq!(
            co.resume(()).unwrap(),
            CoroutineResult::Return(usize::from(fill) * 4096),
            "the capture arrived intact"
        );
        drop(co);
        let medium = [round; 100];
        let unstarted = Coroutine::new(move |_: &Yielder<(), ()>, ()| medium[0]);
        drop(unstarted);
    }
}

#[test]
fn coroutines_created_inside_a_coroutine_use_the_threads_cache() {
    // Fill the cache with several finished coroutines first.
    let mut warm: Vec<_> = (0..3)
        .map(|_| Coroutine::new(|_: &Yielder<(), ()>, ()| self_address()))
        .collect();
    let cached: Vec<usize> = warm
        .iter_mut()
        .map(|co| co.resume(()).unwrap().into_return().unwrap())
        .collect();
    drop(warm);
    let mut outer = Coroutine::new(move |y: &Yielder<(), (usize, u64)>, ()| {
        let outer_address = self_address();
        let mut total = 0;
        for i in 0..10u64 {
            let mut inner = Coroutine::new(move |yi: &Yielder<u64, usize>, n: u64| {
                let twice = yi.suspend(self_address());
                n + twice
            });
            let inner_address = inner.resume(i).unwrap().into_yield().unwrap();
            assert_ne!(inner_address, outer_address);
            assert_eq!(self_address(), outer_address, "back in the outer one");
            total += inner.resume(i).unwrap().into_return().unwrap();
            y.suspend((inner_address, total));
        }
        total
    });
    let mut inner_addresses = Vec::new();
    while let CoroutineResult::Yield((address, _)) = outer.resume(()).unwrap() {
        inner_addresses.push(address);
    }
    assert_eq!(inner_addresses.len(), 10);
    assert!(outer.is_finished());
    if !sanitized() {
        for address in &inner_addresses {
            assert!(
                cached.contains(address),
                "inner coroutines reuse cached stacks"
            );
        }
    }
}

#[test]
fn different_stack_sizes_interleaved_each_get_their_own_size() {
    // Requests (0: the default) and how deep each coroutine goes (a
    // quarter of its stack, leaving room for unoptimised frames): a
    // smaller stack of another request would overflow.
    let requests: [(usize, usize); 4] = [
        (64 << 10, 16 << 10),
        (MIB, 256 << 10),
        (0, 4 * MIB),
        (256 << 10, 64 << 10),
    ];
    for round in 0..50 {
        for &(request, depth) in &requests {
            let mut co = Builder::new()
                .stack_size(request)
                .build(move |y: &Yielder<(), usize>, ()| {
                    y.suspend(touch_stack(depth));
                    request
                })
                .unwrap();
            let want = if request == 0 {
                16 * MIB
            } else {
                // SAFETY: a pure computation on a number.
                unsafe { sys::ucoro_stack_size_for(request) }
            };
            assert_eq!(co.stack_size(), want, "round {round}, request {request}");
            assert_eq!(co.resume(()).unwrap(), CoroutineResult::Yield(depth));
            assert_eq!(co.resume(()).unwrap(), CoroutineResult::Return(request));
        }
    }
}

/// Writes `depth` bytes of this stack, 4 KiB per frame; returns `depth`.
#[inline(never)]
fn touch_stack(depth: usize) -> usize {
    if depth < 4096 {
        return depth;
    }
    let page = std::hint::black_box([1u8; 4096]);
    touch_stack(depth - 4096) + usize::from(page[0]) * 4096
}

/// How a dropped coroutine and the cache's own thread-exit destructor meet:
/// one coroutine dropped by a thread-local destructor registered before
/// the cache's, one by a destructor registered after it.
struct Holder(RefCell<Option<Coroutine<(), (), ()>>>);

impl Drop for Holder {
    fn drop(&mut self) {
        drop(self.0.borrow_mut().take());
    }
}

thread_local! {
    static EARLY: Holder = const { Holder(RefCell::new(None)) };
    static LATE: Holder = const { Holder(RefCell::new(None)) };
}

/// A finished coroutine with a default stack.
fn finished() -> Coroutine<(), (), ()> {
    let mut co = Coroutine::new(|_: &Yielder<(), ()>, ()| ());
    co.resume(()).unwrap();
    co
}

#[test]
fn thread_exit_frees_the_cached_coroutines() {
    in_own_process("thread_exit_frees_the_cached_coroutines", || {
        let run_threads = |count: usize| {
            for _ in 0..count {
                std::thread::spawn(|| {
                    // Registered before the cache's destructor...
                    EARLY.with(|h| *h.0.borrow_mut() = Some(finished()));
                    // ... four finished coroutines alive at once, cached
                    // when dropped (the cache's destructor is registered)...
                    let batch: Vec<_> = (0..4).map(|_| finished()).collect();
                    drop(batch);
                    // ... and one registered after it: at exit, whichever
                    // runs later must free, not keep.
                    LATE.with(|h| *h.0.borrow_mut() = Some(finished()));
                })
                .join()
                .unwrap();
            }
        };
        run_threads(20); // the slabs and pools settle
        let before = proc_status_kib("VmSize");
        run_threads(1000);
        let grown = proc_status_kib("VmSize").saturating_sub(before);
        // Kept past their threads, 1000 threads' five or six 16 MiB stacks
        // would be 80 GiB or more.
        assert!(grown < 1 << 20, "VmSize grew {grown} KiB over 1000 threads");
    });
}

#[test]
fn lifecycles_in_a_loop_keep_the_address_space_flat() {
    in_own_process("lifecycles_in_a_loop_keep_the_address_space_flat", || {
        let batch = |alive: usize| {
            // `alive` coroutines at once, more than the cache keeps.
            let mut cos: Vec<_> = (0..alive)
                .map(|i| Coroutine::new(move |_: &Yielder<(), ()>, ()| i))
                .collect();
            for (i, co) in cos.iter_mut().enumerate() {
                assert_eq!(co.resume(()).unwrap(), CoroutineResult::Return(i));
            }
        };
        for _ in 0..100 {
            batch(8);
        }
        let before = proc_status_kib("VmSize");
        for _ in 0..100_000 {
            batch(1);
        }
        for _ in 0..10_000 {
            batch(8);
        }
        let grown = proc_status_kib("VmSize").saturating_sub(before);
        assert!(grown < 64 << 10, "VmSize grew {grown} KiB");
    });
}
