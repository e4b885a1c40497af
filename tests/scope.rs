//! Scoped coroutines (`ucoro::scope`): what a user who lends them local
//! data relies on. Above all, that nothing a coroutine of the scope runs
//! touches that data after `scope` returns, however the handles were lost:
//! CI runs this file under AddressSanitizer and Valgrind, where the
//! borrowed data is freed right after the scope and any later access would
//! be reported. Misuse closed by types is in `src/scope.rs`'s `compile_fail`
//! examples; abuse (panics, suspending destructors, aborts) is in
//! `tests/adversarial_scope.rs`.

use std::cell::{Cell, RefCell};
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::thread;
use std::time::Duration;

use ucoro::{Builder, CoroutineResult, Error, Yielder};

mod common;
use common::DropCounter;

/// Pushes `word` onto the borrowed `log` when dropped.
struct LogOnDrop<'a> {
    log: &'a RefCell<Vec<String>>,
    word: &'static str,
}

impl Drop for LogOnDrop<'_> {
    fn drop(&mut self) {
        self.log.borrow_mut().push(self.word.to_owned());
    }
}

#[test]
fn generator_iterates_a_borrowed_vec() {
    let v = vec![10, 20, 30];
    let doubled: Vec<i32> = ucoro::scope(|s| {
        s.generator(|y| {
            for x in &v {
                y.suspend(x * 2);
            }
        })
        .collect()
    });
    assert_eq!(doubled, [20, 40, 60]);
    assert_eq!(v, [10, 20, 30], "the Vec is only borrowed");
}

#[test]
fn coroutine_pushes_to_a_borrowed_mut_vec() {
    let mut out = Vec::new();
    ucoro::scope(|s| {
        let mut sink = s.coroutine(|y, mut x: u32| loop {
            out.push(x);
            x = y.suspend(out.len());
        });
        for i in 1..=5 {
            assert_eq!(
                sink.resume(i * i).unwrap(),
                CoroutineResult::Yield(i as usize)
            );
        }
    });
    assert_eq!(out, [1, 4, 9, 16, 25]);
}

#[test]
fn inputs_and_yields_may_borrow() {
    let names = [String::from("ada"), String::from("grace")];
    let longest = ucoro::scope(|s| {
        // Borrowed inputs in, borrowed yields out.
        let mut co = s.coroutine(|y: &Yielder<&String, &String>, first: &String| {
            let mut best = first;
            loop {
                let next = y.suspend(best);
                if next.len() > best.len() {
                    best = next;
                }
            }
        });
        let mut last = None;
        for name in &names {
            last = co.resume(name).unwrap().into_yield();
        }
        last
    });
    assert_eq!(longest.map(String::as_str), Some("grace"));
}

#[test]
fn forgotten_suspended_coroutine_is_unwound_before_scope_returns() {
    // The acceptance case: the coroutine holds borrows (a `&mut Vec` and a
    // `&String`) and a scoped thread of its own reads the string; its
    // handle is forgotten. `scope` must unwind it (the destructor pushes
    // to the Vec, the thread is joined) before returning; then the string
    // and the Vec are freed. ASan and Valgrind see any later access.
    let mut log = Vec::new();
    let data = String::from("borrowed by a scoped coroutine");
    let read_by_thread = AtomicUsize::new(0);
    let thread_may_go = AtomicBool::new(false);
    ucoro::scope(|s| {
        let mut co = s.coroutine(|y: &Yielder<(), ()>, ()| {
            let log = RefCell::new(&mut log);
            let _guard = scopeguard(|| log.borrow_mut().push(data.len()));
            thread::scope(|t| {
                t.spawn(|| {
                    while !thread_may_go.load(SeqCst) {
                        thread::sleep(Duration::from_millis(1));
                    }
                    // Runs after the handle was forgotten: the frame is
                    // still waiting to join this thread.
                    thread::sleep(Duration::from_millis(20));
                    read_by_thread.store(data.len(), SeqCst);
                });
                y.suspend(());
                unreachable!("never resumed again");
            });
        });
        co.resume(()).unwrap();
        std::mem::forget(co);
        thread_may_go.store(true, SeqCst);
    });
    assert_eq!(
        read_by_thread.load(SeqCst),
        data.len(),
        "the thread was joined"
    );
    assert_eq!(
        log,
        [data.len()],
        "the destructor ran before scope returned"
    );
    drop(data);
    drop(log);
}

/// Runs `f` when dropped.
fn scopeguard<F: FnMut()>(f: F) -> impl Drop {
    struct Guard<F: FnMut()>(F);
    impl<F: FnMut()> Drop for Guard<F> {
        fn drop(&mut self) {
            (self.0)();
        }
    }
    Guard(f)
}

#[test]
fn dropping_a_handle_unwinds_its_coroutine_at_once() {
    let log = RefCell::new(Vec::new());
    ucoro::scope(|s| {
        let mut g = s.generator(|y| {
            let _a = LogOnDrop {
                log: &log,
                word: "unwound",
            };
            y.suspend(1);
            y.suspend(2);
        });
        assert_eq!(g.next(), Some(1));
        drop(g);
        log.borrow_mut().push("after drop".into());
    });
    assert_eq!(*log.borrow(), ["unwound", "after drop"]);
}

/// A value that keeps itself alive (an `Rc` cycle) with a generator in it.
struct Cycle<'s> {
    me: RefCell<Option<Rc<Cycle<'s>>>>,
    _generator: ucoro::ScopedGenerator<'s, ()>,
}

#[test]
fn coroutines_still_there_are_ended_when_the_closure_returns() {
    let log = RefCell::new(Vec::new());
    let drops = Rc::new(Cell::new(0));
    ucoro::scope(|s| {
        // Suspended, forgotten.
        let mut a = s.generator(|y| {
            let _a = LogOnDrop {
                log: &log,
                word: "a",
            };
            y.suspend(());
        });
        a.next();
        std::mem::forget(a);
        // Never started: its closure is dropped.
        let d = DropCounter(drops.clone());
        let b = s.coroutine(move |_: &Yielder<(), ()>, ()| drop(d));
        std::mem::forget(b);
        // In an Rc cycle (never dropped).
        let mut c = s.generator(|y| {
            let _c = LogOnDrop {
                log: &log,
                word: "c",
            };
            y.suspend(());
        });
        c.next();
        let node = Rc::new(Cycle {
            me: RefCell::new(None),
            _generator: c,
        });
        *node.me.borrow_mut() = Some(node.clone());
        drop(node);
        log.borrow_mut().push("closure returns".into());
    });
    let log = log.into_inner();
    assert_eq!(log[0], "closure returns");
    let mut rest = log[1..].to_vec();
    rest.sort();
    assert_eq!(rest, ["a", "c"]);
    assert_eq!(drops.get(), 1, "the closure that never ran was dropped");
}

#[test]
fn scope_returns_the_closures_value_and_works_without_coroutines() {
    assert_eq!(ucoro::scope(|_| 42), 42);
    let v = [1, 2];
    let r: &[i32] = ucoro::scope(|_| &v[..]);
    assert_eq!(r, [1, 2]);
}

#[test]
fn panic_in_the_scope_closure_unwinds_its_coroutines_then_propagates() {
    let log = RefCell::new(Vec::new());
    let caught = panic::catch_unwind(AssertUnwindSafe(|| {
        ucoro::scope(|s| {
            let mut g = s.generator(|y| {
                let _a = LogOnDrop {
                    log: &log,
                    word: "unwound",
                };
                y.suspend(());
            });
            g.next();
            std::mem::forget(g);
            panic!("body");
        })
    }));
    let payload = caught.expect_err("the body's panic propagates");
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"body"));
    assert_eq!(*log.borrow(), ["unwound"]);
    assert!(!thread::panicking());
}

#[test]
fn scopes_nest_and_run_inside_coroutines() {
    let outer_data = [1, 2, 3];
    let sums = ucoro::scope(|outer| {
        let mut g = outer.generator(|y| {
            // A scope inside a scoped coroutine, whose coroutines borrow
            // both the outer data and this frame's own.
            let inner_data = vec![10, 20, 30];
            ucoro::scope(|inner| {
                let pairs = inner.generator(|y2| {
                    for (a, b) in outer_data.iter().zip(&inner_data) {
                        y2.suspend(a + b);
                    }
                });
                for sum in pairs {
                    y.suspend(sum);
                }
            });
        });
        g.by_ref().collect::<Vec<_>>()
    });
    assert_eq!(sums, [11, 22, 33]);
}

#[test]
fn scope_inside_a_plain_coroutine_is_unwound_with_it() {
    // Dropping the suspended plain coroutine unwinds through `scope`, which
    // ends its scoped coroutine on the way.
    let log = Rc::new(RefCell::new(Vec::new()));
    let l = log.clone();
    let mut plain = ucoro::Coroutine::new(move |y: &Yielder<(), ()>, ()| {
        let lent = RefCell::new(Vec::<String>::new());
        ucoro::scope(|s| {
            let mut g = s.generator(|y2| {
                let _a = LogOnDrop {
                    log: &lent,
                    word: "scoped unwound",
                };
                y2.suspend(());
            });
            g.next();
            y.suspend(());
        });
        l.borrow_mut().extend(lent.into_inner());
    });
    plain.resume(()).unwrap();
    drop(plain);
    // The plain coroutine's frames were unwound, so it never reached the
    // line after the scope; the scoped one was ended inside the unwind.
    assert!(log.borrow().is_empty());
}

#[test]
fn coroutines_made_while_the_scope_ends_are_ended_too() {
    let log = RefCell::new(Vec::new());
    ucoro::scope(|s| {
        let mut g = s.generator(|y| {
            struct MakeAnother<'s, 'e> {
                s: &'s ucoro::Scope<'s, 'e>,
                log: &'s RefCell<Vec<String>>,
            }
            impl Drop for MakeAnother<'_, '_> {
                fn drop(&mut self) {
                    let log = self.log;
                    let mut late = self.s.generator(move |y| {
                        let _l = LogOnDrop {
                            log,
                            word: "late one unwound",
                        };
                        y.suspend(());
                    });
                    late.next();
                    std::mem::forget(late);
                }
            }
            let _m = MakeAnother { s, log: &log };
            y.suspend(());
        });
        g.next();
        std::mem::forget(g);
    });
    assert_eq!(*log.borrow(), ["late one unwound"]);
}

/// Resumes the handle it holds when dropped, and logs what it saw.
struct UseOnDrop<'a, 's> {
    target: ucoro::ScopedCoroutine<'s, (), u8, ()>,
    seen: &'a RefCell<Vec<String>>,
}

impl Drop for UseOnDrop<'_, '_> {
    fn drop(&mut self) {
        let r = self.target.resume(());
        self.seen.borrow_mut().push(format!(
            "{:?} finished={} started={} stack_size={}",
            r.map(|_| ()),
            self.target.is_finished(),
            self.target.started(),
            self.target.stack_size()
        ));
    }
}

#[test]
fn handle_used_by_a_destructor_after_the_scope_ended_it_reports_finished() {
    let seen = RefCell::new(Vec::new());
    ucoro::scope(|s| {
        let mut target = s.coroutine(|y: &Yielder<(), u8>, ()| loop {
            y.suspend(1);
        });
        assert_eq!(target.resume(()).unwrap(), CoroutineResult::Yield(1));
        // The scope ends its coroutines in the order they were made:
        // `target` first, then `user`, whose destructor holds `target`.
        let mut user = s.generator(|y| {
            let _u = UseOnDrop {
                target,
                seen: &seen,
            };
            y.suspend(());
        });
        user.next();
        std::mem::forget(user);
    });
    assert_eq!(
        *seen.borrow(),
        ["Err(Finished) finished=true started=true stack_size=0"]
    );
}

#[test]
fn scoped_coroutine_reports_sizes_and_errors_like_a_coroutine() {
    ucoro::scope(|s| {
        let err = s
            .coroutine_with(
                Builder::new().stack_size(usize::MAX),
                |_: &Yielder<(), ()>, ()| (),
            )
            .unwrap_err();
        assert!(matches!(err, Error::StackAllocation { .. }));
        let mut co = s.coroutine(|_: &Yielder<(), ()>, ()| 5);
        assert!(!co.started());
        assert_eq!(co.resume(()).unwrap(), CoroutineResult::Return(5));
        assert!(co.is_finished());
        assert!(matches!(co.resume(()), Err(Error::Finished)));
        assert!(co.stack_size() >= 64 << 10);
    });
}

#[test]
fn scoped_generator_is_fused_and_keeps_its_return_value() {
    let v = ['x', 'y'];
    ucoro::scope(|s| {
        let mut g = s.generator(|y| {
            v.iter().for_each(|c| y.suspend(*c));
            "end"
        });
        assert_eq!(g.next(), Some('x'));
        assert_eq!(g.next(), Some('y'));
        assert_eq!(g.next(), None);
        assert_eq!(g.next(), None);
        assert_eq!(g.take_return(), Some("end"));
    });
}

#[test]
fn many_scoped_coroutines_dropped_in_any_order() {
    // Handles dropped out of order exercise the registry's removal.
    let counter = Cell::new(0);
    ucoro::scope(|s| {
        let mut handles: Vec<_> = (0..20)
            .map(|i| {
                let counter = &counter;
                s.generator(move |y| {
                    counter.set(counter.get() + i);
                    y.suspend(i);
                })
            })
            .collect();
        for h in handles.iter_mut().step_by(3) {
            h.next();
        }
        while !handles.is_empty() {
            let i = (handles.len() * 7) % handles.len().max(1);
            drop(handles.swap_remove(i.min(handles.len() - 1)));
        }
        let mut again = s.generator(|y| y.suspend(99));
        assert_eq!(again.next(), Some(99));
    });
    assert_eq!(counter.get(), (0..20).step_by(3).sum::<i32>());
}
