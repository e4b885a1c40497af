//! Adversarial use: what an unkind (or unlucky) user does with the safe API
//! and the C API, and what they get instead of undefined behaviour, an
//! abort or a hang.
//!
//! How these tests are built:
//!
//! - Everything that could abort, crash or leave the thread's panic state
//!   changed runs in a child process of its own (this binary again, see
//!   `common::in_own_process` / `in_child_expecting`): a regression then
//!   fails one test instead of killing the whole binary, and each child
//!   starts with a clean panic count.
//! - CI also runs this file under AddressSanitizer and Valgrind, so a
//!   use-after-free (a stack freed under live frames, memory reused while a
//!   leaked coroutine's scoped thread reads it) fails the run.
//! - Misuse that became a type error is checked by `compile_fail` doc tests
//!   in `src/coroutine.rs` (borrowed inputs, yielded handles that carry a
//!   borrow back in, a `Yielder` passed into another coroutine).
//! - Cross-thread misuse of the C API (section "C API across threads") must
//!   be refused with the documented NULL / -1 and message in every switch
//!   mode: CI runs this file once per mode.
#![warn(clippy::undocumented_unsafe_blocks)]
#![deny(unsafe_op_in_unsafe_fn)]

use std::cell::{Cell, RefCell};
use std::ffi::c_void;
use std::panic::{self, AssertUnwindSafe};
use std::ptr;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use ucoro::{sys, Builder, Coroutine, CoroutineResult, Error, Generator, Yielder};

mod common;
use common::{
    assert_panic_state_clean, current, in_child_expecting, in_own_process, num, panic_text,
    proc_status_bytes, val, with_errno, DropCounter, Owned, SendPtr, SWAP_OTHER_MAIN,
    YIELDTO_CALLER, YIELD_FROM,
};

/// A test whose scenario runs in a child process of its own and must pass
/// without any diagnostic (`common::in_own_process`).
macro_rules! in_own_process_test {
    ($name:ident, $body:block) => {
        #[test]
        fn $name() {
            in_own_process(stringify!($name), || $body);
        }
    };
}

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

// ---------------------------------------------------------------------------
// Leaks: a stack that may hold live frames is never freed or reused
// ---------------------------------------------------------------------------

#[test]
fn forgotten_coroutine_keeps_the_data_its_scoped_thread_reads() {
    // The owned-data twin of the borrowed-input hole (which no longer
    // compiles): the coroutine owns the string, a scoped thread it started
    // reads it after the coroutine was forgotten. The stack is never freed,
    // so the thread reads the string intact (ASan and Valgrind would see a
    // use-after-free otherwise).
    let read = Arc::new(Mutex::new(String::new()));
    let out = read.clone();
    let mut co = Coroutine::new(move |y: &Yielder<(), ()>, ()| {
        let data = String::from("owned by the coroutine's frame");
        thread::scope(|sc| {
            let (data, out) = (&data, &out);
            sc.spawn(move || {
                thread::sleep(Duration::from_millis(50));
                *out.lock().unwrap() = data.clone();
            });
            y.suspend(());
        });
    });
    co.resume(()).unwrap();
    std::mem::forget(co);
    // New coroutines must not be handed the forgotten stack.
    for _ in 0..64 {
        let mut g = Generator::new(|y| y.suspend([0xA5u8; 4096]));
        assert!(g.next().is_some());
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while read.lock().unwrap().is_empty() && std::time::Instant::now() < deadline {
        thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(*read.lock().unwrap(), "owned by the coroutine's frame");
}

/// The address of a local of a coroutine suspended for good (leaked), and
/// the addresses of locals in coroutines made afterwards: none of those may
/// lie in the leaked stack.
fn assert_leaked_stack_not_reused(leaked_local: usize, stack_size: usize) {
    for _ in 0..32 {
        let mut g = Builder::new()
            .stack_size(stack_size)
            .build(|y: &Yielder<(), usize>, ()| {
                let here = 0u8;
                y.suspend(&here as *const u8 as usize);
            })
            .unwrap();
        let Ok(CoroutineResult::Yield(local)) = g.resume(()) else {
            panic!("the probe coroutine must yield its local's address");
        };
        assert!(
            local.abs_diff(leaked_local) > stack_size,
            "a new coroutine got the leaked stack ({local:#x} near {leaked_local:#x})"
        );
    }
}

// ---------------------------------------------------------------------------
// Destructors that suspend while a panic unwinds the coroutine
// ---------------------------------------------------------------------------

/// Suspends with -1 when dropped.
struct SuspendOnDrop<'a>(&'a Yielder<(), i32>);

impl Drop for SuspendOnDrop<'_> {
    fn drop(&mut self) {
        self.0.suspend(-1);
    }
}

/// A generator that yields 1 with a `SuspendOnDrop` and a `DropCounter`
/// (counting into `drops`) on its stack, then panics ("oops") if `panic`,
/// else yields 2.
fn generator_suspending_in_a_destructor(drops: &Rc<Cell<u32>>, panic: bool) -> Generator<i32> {
    let d = drops.clone();
    Generator::new(move |y| {
        let _counted = DropCounter(d);
        let _f = SuspendOnDrop(y);
        y.suspend(1);
        if panic {
            panic!("oops");
        }
        y.suspend(2);
    })
}

in_own_process_test!(
    generator_destructor_suspending_during_a_panic_lets_the_panic_through,
    {
        let drops = Rc::new(Cell::new(0));
        let mut g = generator_suspending_in_a_destructor(&drops, true);
        assert_eq!(g.next(), Some(1));
        // The destructor's suspend cannot suspend (a panic unwinds the
        // stack): it returns at once, the unwind finishes, and the
        // closure's panic reaches the caller of next().
        let err = panic::catch_unwind(AssertUnwindSafe(|| g.next())).unwrap_err();
        assert_eq!(panic_text(&*err), "oops");
        assert_eq!(drops.get(), 1, "every destructor on the stack ran");
        assert_eq!(g.next(), None);
        drop(g);
        assert_panic_state_clean();
    }
);

in_own_process_test!(
    generator_destructor_suspending_during_the_drop_unwind_finishes_it,
    {
        let drops = Rc::new(Cell::new(0));
        let mut g = generator_suspending_in_a_destructor(&drops, false);
        assert_eq!(g.next(), Some(1));
        drop(g);
        assert_eq!(drops.get(), 1, "the unwind went on past the suspend");
        assert_panic_state_clean();
    }
);

/// Suspends with -1 (and ignores the input) when dropped.
struct SuspendWithInputOnDrop<'a>(&'a Yielder<u8, i32>, Rc<Cell<usize>>);

impl Drop for SuspendWithInputOnDrop<'_> {
    fn drop(&mut self) {
        let here = 0u8;
        self.1.set(&here as *const u8 as usize);
        self.0.suspend(-1);
    }
}

/// Resumes `co`, which suspends in a destructor during its own panic:
/// the resume panics saying the coroutine was abandoned, and it is over.
fn resume_panics_abandoning(co: &mut Coroutine<u8, i32, ()>) {
    let err = panic::catch_unwind(AssertUnwindSafe(|| co.resume(0))).unwrap_err();
    assert!(
        panic_text(&*err).contains("abandoned"),
        "{}",
        panic_text(&*err)
    );
    assert!(co.is_finished());
}

in_own_process_test!(
    coroutine_destructor_suspending_during_a_panic_abandons_it,
    {
        let drops = Rc::new(Cell::new(0));
        let local = Rc::new(Cell::new(0));
        let (d, l) = (drops.clone(), local.clone());
        let mut co = Builder::new()
            .stack_size(256 << 10)
            .build(move |y: &Yielder<u8, i32>, _: u8| {
                let _counted = DropCounter(d);
                let _f = SuspendWithInputOnDrop(y, l);
                y.suspend(1);
                panic!("oops");
            })
            .unwrap();
        assert_eq!(co.resume(0).unwrap(), CoroutineResult::Yield(1));
        resume_panics_abandoning(&mut co);
        assert!(matches!(co.resume(0), Err(Error::Finished)));
        assert_eq!(drops.get(), 0, "the frames below the suspend never ran");
        drop(co);
        assert_panic_state_clean();
        assert_leaked_stack_not_reused(local.get(), 256 << 10);
    }
);

/// Resumes the coroutine it shares once when dropped, expecting a yield.
struct ResumeOnDrop(Rc<RefCell<Coroutine<u8, i32, ()>>>);

impl Drop for ResumeOnDrop {
    fn drop(&mut self) {
        let resumed = self.0.borrow_mut().resume(0);
        assert_eq!(resumed.unwrap(), CoroutineResult::Yield(1));
    }
}

in_own_process_test!(a_resume_during_a_panic_leaves_no_mark_on_later_resumes, {
    // The resumer's panic state is only recorded for resumes made while
    // it panics; a later resume made while it does not must be seen as
    // such, so that a destructor suspending during the coroutine's own
    // panic abandons it instead of leaving with the panic half done.
    let local = Rc::new(Cell::new(0));
    let l = local.clone();
    let co = Builder::new()
        .stack_size(256 << 10)
        .build(move |y: &Yielder<u8, i32>, _: u8| {
            let _f = SuspendWithInputOnDrop(y, l);
            y.suspend(1);
            panic!("oops");
        })
        .unwrap();
    let shared = Rc::new(RefCell::new(co));
    let resumer = ResumeOnDrop(shared.clone());
    let r = panic::catch_unwind(AssertUnwindSafe(move || {
        let _resumer = resumer;
        panic!("unwinding past the resumer");
    }));
    assert!(r.is_err());
    let mut co = Rc::try_unwrap(shared).expect("one owner").into_inner();
    resume_panics_abandoning(&mut co);
    drop(co);
    assert_panic_state_clean();
    assert_leaked_stack_not_reused(local.get(), 256 << 10);
});

in_own_process_test!(
    coroutine_destructor_suspending_during_the_drop_unwind_leaks_it_once,
    {
        let local = Rc::new(Cell::new(0));
        let l = local.clone();
        let mut co = Builder::new()
            .stack_size(256 << 10)
            .build(move |y: &Yielder<u8, i32>, _: u8| {
                let _f = SuspendWithInputOnDrop(y, l);
                y.suspend(1);
            })
            .unwrap();
        assert_eq!(co.resume(0).unwrap(), CoroutineResult::Yield(1));
        drop(co); // returns: the coroutine is leaked where it suspended
        assert_panic_state_clean();
        assert_leaked_stack_not_reused(local.get(), 256 << 10);

        // A later coroutine's panic while it is dropped is not
        // swallowed (it was, while the thread wrongly seemed panicking).
        let mut later = Coroutine::new(|y: &Yielder<(), ()>, ()| {
            let _ = panic::catch_unwind(AssertUnwindSafe(|| y.suspend(())));
            panic!("panicked while dropped");
        });
        later.resume(()).unwrap();
        let err = panic::catch_unwind(AssertUnwindSafe(move || drop(later))).unwrap_err();
        assert_eq!(panic_text(&*err), "panicked while dropped");
        assert_panic_state_clean();
    }
);

in_own_process_test!(
    catching_the_drop_unwind_and_suspending_in_a_loop_leaks_no_more_than_once_each,
    {
        // Each round leaks the one coroutine that refused to die (its
        // frames are live), and nothing else: the thread's panic state
        // stays clean, so later rounds work the same.
        for _ in 0..100 {
            let mut co = Coroutine::new(|y: &Yielder<(), u32>, ()| loop {
                let _ = panic::catch_unwind(AssertUnwindSafe(|| y.suspend(1)));
                y.suspend(2);
            });
            assert_eq!(co.resume(()).unwrap(), CoroutineResult::Yield(1));
            drop(co);
            assert_panic_state_clean();
        }
    }
);

// ---------------------------------------------------------------------------
// The drop unwind's payload, caught and re-raised elsewhere
// ---------------------------------------------------------------------------

thread_local! {
    static STOLEN: RefCell<Option<Box<dyn std::any::Any + Send>>> = const { RefCell::new(None) };
}

in_own_process_test!(stolen_drop_unwind_payload_is_an_ordinary_panic_elsewhere, {
    let rss_before = proc_status_bytes("VmRSS");
    for round in 0..2000 {
        // A: catches its own forced unwind, keeps the payload, and
        // returns, so its drop finishes.
        let mut a = Coroutine::new(|y: &Yielder<(), ()>, ()| {
            if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(|| y.suspend(()))) {
                STOLEN.with(|s| *s.borrow_mut() = Some(payload));
            }
        });
        a.resume(()).unwrap();
        drop(a);
        // B: re-raises it. That is B's own panic, like any other.
        let mut b = Coroutine::new(|_: &Yielder<(), ()>, ()| {
            let payload = STOLEN.with(|s| s.borrow_mut().take()).expect("stolen");
            panic::resume_unwind(payload)
        });
        let err = panic::catch_unwind(AssertUnwindSafe(|| b.resume(())));
        assert!(err.is_err(), "round {round}: B's resume must panic");
        assert!(b.is_finished());
        assert!(matches!(b.resume(()), Err(Error::Finished)));
        drop(b);
    }
    assert_panic_state_clean();
    // Both stacks are freed each round (the bug leaked one: 2000 x
    // ~128 KiB resident).
    let grown = proc_status_bytes("VmRSS").saturating_sub(rss_before);
    assert!(
        grown < 32 << 20,
        "RSS grew by {grown} bytes over 2000 rounds"
    );
});

// ---------------------------------------------------------------------------
// More destructors: other coroutines, thread exit, unwinding droppers
// ---------------------------------------------------------------------------

in_own_process_test!(
    suspended_generator_owned_by_a_dropped_coroutine_is_unwound_too,
    {
        let drops = Rc::new(Cell::new(0));
        let d = drops.clone();
        let mut outer = Coroutine::new(move |y: &Yielder<(), ()>, ()| {
            let d2 = d.clone();
            let mut inner = Generator::new(move |yi| {
                let _counted = DropCounter(d2);
                yi.suspend(1);
                yi.suspend(2);
            });
            assert_eq!(inner.next(), Some(1));
            let _counted = DropCounter(d);
            y.suspend(());
            drop(inner);
        });
        outer.resume(()).unwrap();
        drop(outer);
        assert_eq!(drops.get(), 2, "the outer and the inner stack were unwound");
        assert_panic_state_clean();
    }
);

/// Drains a generator when dropped.
struct DrainOnDrop(Generator<u32>, Rc<Cell<u32>>);

impl Drop for DrainOnDrop {
    fn drop(&mut self) {
        let sum: u32 = self.0.by_ref().sum();
        self.1.set(sum);
    }
}

in_own_process_test!(
    destructor_resuming_another_coroutine_during_the_drop_unwind_works,
    {
        let sum = Rc::new(Cell::new(0));
        let s = sum.clone();
        let mut outer = Coroutine::new(move |y: &Yielder<(), ()>, ()| {
            let _drain = DrainOnDrop(Generator::new(|yi| (1..=4).for_each(|i| yi.suspend(i))), s);
            y.suspend(());
        });
        outer.resume(()).unwrap();
        drop(outer);
        assert_eq!(
            sum.get(),
            10,
            "the generator ran to its end inside the destructor"
        );
        assert_panic_state_clean();
    }
);

/// Resumes the generator it holds once when dropped, and keeps it in `keep`
/// (suspended) for after the panic.
struct StartOnDrop(Option<Generator<u32>>, Rc<RefCell<Option<Generator<u32>>>>);

impl Drop for StartOnDrop {
    fn drop(&mut self) {
        let mut g = self.0.take().expect("set");
        assert_eq!(g.next(), Some(1));
        *self.1.borrow_mut() = Some(g);
    }
}

in_own_process_test!(
    generator_started_during_a_panic_and_dropped_after_it_is_unwound,
    {
        // It suspends while its resumer is panicking, so while suspended it
        // might be in the middle of an unwind of its own; once the thread
        // no longer panics, it provably is not, and dropping it unwinds it.
        let drops = Rc::new(Cell::new(0));
        let d = drops.clone();
        let keep = Rc::new(RefCell::new(None));
        let g = Generator::new(move |y| {
            let _counted = DropCounter(d);
            y.suspend(1);
            y.suspend(2);
        });
        let starter = StartOnDrop(Some(g), keep.clone());
        let r = panic::catch_unwind(AssertUnwindSafe(move || {
            let _starter = starter;
            panic!("unwinding past the starter");
        }));
        assert!(r.is_err());
        assert_eq!(drops.get(), 0);
        drop(keep.borrow_mut().take());
        assert_eq!(
            drops.get(),
            1,
            "its destructors ran: it was unwound, not leaked"
        );
        assert_panic_state_clean();
    }
);

in_own_process_test!(
    generator_dropped_by_a_panicking_loop_runs_its_destructors,
    {
        let drops = Rc::new(Cell::new(0));
        let d = drops.clone();
        let r = panic::catch_unwind(AssertUnwindSafe(move || {
            let g = Generator::new(move |y| {
                let _counted = DropCounter(d);
                for i in 0.. {
                    y.suspend(i);
                }
            });
            for i in g {
                assert!(i < 3, "the consumer gives up");
            }
        }));
        assert!(r.is_err());
        assert_eq!(
            drops.get(),
            1,
            "dropped during the unwind, the generator was unwound"
        );
        assert_panic_state_clean();
    }
);

#[test]
fn coroutine_in_a_thread_local_is_unwound_when_its_thread_exits() {
    thread_local! {
        static KEPT: RefCell<Option<Generator<u32>>> = const { RefCell::new(None) };
    }
    struct Flag(Arc<AtomicBool>);
    impl Drop for Flag {
        fn drop(&mut self) {
            self.0.store(true, SeqCst);
        }
    }
    let dropped = Arc::new(AtomicBool::new(false));
    let d = dropped.clone();
    thread::spawn(move || {
        let mut g = Generator::new(move |y| {
            let _flag = Flag(d);
            for i in 0.. {
                y.suspend(i);
            }
        });
        assert_eq!(g.next(), Some(0));
        KEPT.with(|k| *k.borrow_mut() = Some(g));
    })
    .join()
    .unwrap();
    assert!(
        dropped.load(SeqCst),
        "the thread-local's drop unwound the stack"
    );
}

in_own_process_test!(
    generator_drained_in_a_destructor_during_a_panic_delivers_every_value,
    {
        let sum = Rc::new(Cell::new(0));
        let s = sum.clone();
        let r = panic::catch_unwind(AssertUnwindSafe(move || {
            let _drain = DrainOnDrop(Generator::new(|y| (1..=4).for_each(|i| y.suspend(i))), s);
            panic!("the owner fails");
        }));
        assert!(r.is_err());
        assert_eq!(sum.get(), 10);
        assert_panic_state_clean();
    }
);

in_child_test!(
    on_stack_inside_a_coroutine_cannot_suspend_it,
    [YIELD_FROM],
    {
        // The coroutine's yielder, reached from inside on_stack's closure, is
        // refused: the running coroutine is on_stack's, not its own. The panic
        // says so and unwinds the fresh stack.
        let mut co = Coroutine::new(|y: &Yielder<(), u8>, ()| {
            let r = panic::catch_unwind(AssertUnwindSafe(|| ucoro::on_stack(0, || y.suspend(1))));
            panic_text(&*r.expect_err("refused"))
        });
        let CoroutineResult::Return(text) = co.resume(()).unwrap() else {
            panic!("the coroutine must return");
        };
        assert!(
            text.contains("outside the coroutine it belongs to"),
            "{text}"
        );
        assert_panic_state_clean();
    }
);

// ---------------------------------------------------------------------------
// Errors, sizes and what the docs say
// ---------------------------------------------------------------------------

#[test]
fn stack_used_after_the_coroutine_finished_reports_its_run() {
    let mut co = Builder::new()
        .stack_size(1 << 20)
        .build(|_: &Yielder<(), ()>, ()| std::hint::black_box([7u8; 300 * 1024])[0])
        .unwrap();
    assert_eq!(co.resume(()).unwrap(), CoroutineResult::Return(7));
    assert!(co.is_finished());
    let used = co.stack_used();
    assert!(
        used >= 300 * 1024 && used <= co.stack_size(),
        "stack_used after the end: {used}"
    );
}

#[test]
fn closure_too_large_for_its_stack_is_a_typed_error_naming_the_sizes() {
    let big = [1u8; 64 << 10];
    let err = Builder::new()
        .stack_size(64 << 10)
        .build(move |_: &Yielder<(), ()>, ()| big[0])
        .unwrap_err();
    match &err {
        Error::ClosureTooLarge { needed, stack_size } => {
            assert_eq!(*stack_size, 64 << 10, "the size actually used");
            assert!(*needed > 64 << 10, "needed {needed}");
        }
        other => panic!("expected ClosureTooLarge, got {other:?}"),
    }
    let text = err.to_string();
    assert!(
        text.contains("do not fit in a coroutine stack of 65536 bytes"),
        "{text}"
    );
}

#[test]
// 32-bit targets have no size that rounds up but cannot be mapped (see
// common::UNMAPPABLE); the code path is the same there.
#[cfg(target_pointer_width = "64")]
fn stack_allocation_error_names_the_rounded_size() {
    let asked = common::UNMAPPABLE + 1;
    // SAFETY: a pure computation.
    let rounded = unsafe { sys::ucoro_stack_size_for(asked) };
    assert!(rounded > asked);
    match Builder::new()
        .stack_size(asked)
        .build(|_: &Yielder<(), ()>, ()| ())
    {
        Err(Error::StackAllocation { size, source }) => {
            assert_eq!(
                size, rounded,
                "the size that was tried, not the one asked for"
            );
            assert_eq!(source.raw_os_error(), Some(libc::ENOMEM));
        }
        other => panic!("expected StackAllocation, got {other:?}"),
    }
}

#[test]
fn panic_with_a_full_backtrace_fits_the_smallest_stack() {
    let name = "panic_with_a_full_backtrace_fits_the_smallest_stack";
    if std::env::var_os(common::CHILD_ENV).is_some_and(|v| v == name) {
        // The child, with RUST_BACKTRACE=full: the panic hook prints the
        // message and a symbolised backtrace from inside the coroutine.
        let mut co = Builder::new()
            .stack_size(1)
            .build(|_: &Yielder<(), ()>, ()| -> () { panic!("deliberate, with a backtrace") })
            .unwrap();
        let err = panic::catch_unwind(AssertUnwindSafe(|| co.resume(()))).unwrap_err();
        assert_eq!(panic_text(&*err), "deliberate, with a backtrace");
        return;
    }
    let out = common::output_within_deadline(
        common::child_command(name, name).env("RUST_BACKTRACE", "full"),
    );
    common::assert_child_passed(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("stack backtrace"),
        "{}",
        common::describe(&out)
    );
    assert!(
        !stderr.contains("stack overflow"),
        "{}",
        common::describe(&out)
    );
}

// ---------------------------------------------------------------------------
// C API across threads: a target that runs or waits on another thread
// ---------------------------------------------------------------------------

static RUNNING: AtomicUsize = AtomicUsize::new(0);
static GO: AtomicBool = AtomicBool::new(false);

/// Says "running", then waits until GO.
fn check_in_and_wait() {
    RUNNING.fetch_add(1, SeqCst);
    while !GO.load(SeqCst) {
        thread::sleep(Duration::from_millis(1));
    }
}

/// Runs `start` on a thread of its own, where it starts a coroutine that
/// checks in and waits; runs `meanwhile` here while it waits, then lets it
/// finish. Returns what `start` and `meanwhile` returned.
fn while_it_runs_elsewhere<T>(
    start: impl FnOnce() -> usize + Send + 'static,
    meanwhile: impl FnOnce() -> T,
) -> (usize, T) {
    let runner = thread::spawn(start);
    while RUNNING.load(SeqCst) < 1 {
        thread::sleep(Duration::from_millis(1));
    }
    let seen = meanwhile();
    GO.store(true, SeqCst);
    (runner.join().unwrap(), seen)
}

extern "C" fn wait_then_return_0x60(_: *mut c_void) -> *mut c_void {
    check_in_and_wait();
    val(0x60)
}

/// Resumes the coroutine `arg` (entry `wait_then_return_0x60`) and returns
/// what it returned.
extern "C" fn resume_inner(arg: *mut c_void) -> *mut c_void {
    // SAFETY: arg is an initialised, unstarted coroutine whose entry only
    // touches the statics above.
    unsafe { sys::coroutine_yieldto(arg.cast(), ptr::null_mut()) }
}

/// What starts `co` (entry `wait_then_return_0x60`) on the runner thread
/// through coroutine_swap alone, so that it runs there without a caller.
fn swap_started(co: *mut sys::coroutine) -> impl FnOnce() -> usize + Send + 'static {
    let p = SendPtr(co);
    // SAFETY: the runner's main is running; co is fresh and only waits.
    move || num(unsafe { sys::coroutine_swap(current(), p.get(), ptr::null_mut()) })
}

const SWAP_RUNNING: &str = "coroutine_swap: assertion 'to is not running' failed";
const CC_SWAP_OTHER_THREAD: &str = "cc_swap: assertion 'to is not another thread's context' failed";

in_child_test!(
    swap_into_a_coroutine_running_on_another_thread_is_refused,
    [SWAP_RUNNING],
    {
        let co = Owned::small(wait_then_return_0x60);
        let (ran, r) = while_it_runs_elsewhere(swap_started(co.ptr()), || {
            // SAFETY: documented to refuse (NULL) a target running elsewhere.
            unsafe { sys::coroutine_swap(current(), co.ptr(), val(1)) }
        });
        assert_eq!(ran, 0x60);
        assert!(r.is_null());
    }
);

in_child_test!(
    swap_into_a_coroutine_waiting_on_another_threads_chain_is_refused,
    [SWAP_OTHER_MAIN],
    {
        let outer = Owned::small(resume_inner);
        let inner = Owned::small(wait_then_return_0x60);
        let (po, pi) = (SendPtr(outer.ptr()), SendPtr(inner.ptr()));
        let start = move || {
            // SAFETY: outer resumes inner, which only waits; both fresh.
            num(unsafe { sys::coroutine_yieldto(po.get(), pi.get().cast()) })
        };
        let (ran, r) = while_it_runs_elsewhere(start, || {
            // outer waits in coroutine_yieldto on the runner's chain.
            // SAFETY: documented to refuse it.
            unsafe { sys::coroutine_swap(current(), outer.ptr(), val(1)) }
        });
        assert_eq!(ran, 0x60);
        assert!(r.is_null());
        assert!(outer.exited() && inner.exited());
    }
);

in_child_test!(
    yieldto_into_a_swap_started_coroutine_running_on_another_thread_is_refused,
    [YIELDTO_CALLER],
    {
        let co = Owned::small(wait_then_return_0x60);
        let (ran, r) = while_it_runs_elsewhere(swap_started(co.ptr()), || {
            // It runs there without a caller: still not ours to resume.
            // SAFETY: documented to refuse (NULL) a running target.
            unsafe { sys::coroutine_yieldto(co.ptr(), val(1)) }
        });
        assert_eq!(ran, 0x60);
        assert!(r.is_null());
    }
);

extern "C" fn cc_wait(_: *mut sys::continuation) {
    check_in_and_wait();
}

in_child_test!(
    cc_swap_into_another_threads_own_context_is_refused,
    [CC_SWAP_OTHER_THREAD],
    {
        // The runner's own context, captured by its cc_swap into `work`.
        let theirs: Box<sys::continuation> = Box::new(
            // SAFETY: all-zero is a valid "never set up" continuation.
            unsafe { std::mem::zeroed() },
        );
        let theirs = SendPtr(Box::into_raw(theirs));
        let start = move || {
            // SAFETY: all-zero, then the in-fields set; cc_init gives it
            // a stack.
            let mut work: sys::continuation = unsafe { std::mem::zeroed() };
            work.entry = Some(cc_wait);
            work.stack_size = 64 << 10;
            // SAFETY: work is a valid struct with its in-fields set.
            assert_eq!(unsafe { sys::cc_init(&mut work) }, 0);
            // SAFETY: `theirs` (never set up) becomes this thread's own
            // context; `work` runs cc_wait and returns.
            let r = unsafe { sys::cc_swap(theirs.get(), &mut work) };
            // SAFETY: work has exited; its stack may go.
            unsafe { sys::cc_release(&mut work) };
            r as usize
        };
        let (ran, (r, err)) = while_it_runs_elsewhere(start, || {
            // SAFETY: zeroed is a never-set-up continuation: it stands
            // for this thread; the target is documented to be refused.
            let mut mine: sys::continuation = unsafe { std::mem::zeroed() };
            // SAFETY: as above.
            with_errno(|| unsafe { sys::cc_swap(&mut mine, theirs.get()) })
        });
        assert_eq!(ran, 1, "the runner's cc_swap saw work exit");
        assert_eq!((r, err), (-1, libc::EINVAL));
        // SAFETY: from Box::into_raw above; the runner is gone.
        drop(unsafe { Box::from_raw(theirs.get()) });
    }
);
