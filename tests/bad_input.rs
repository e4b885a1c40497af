//! Bad input at the C API and misuse of the safe API: one test per row of
//! `docs/bad-input.md` (the table names each test in its last column).
//!
//! How these tests are built:
//!
//! - Every row runs in a child process of its own (this binary again, with
//!   `UCORO_CHILD=<test name>`, see [`child`]): diagnostics go to stderr,
//!   which tests in one process would share, and some rows abort or crash.
//!   The parent checks that the child's scenario passed and that stderr holds
//!   exactly the diagnostic lines the row documents, in order (none, for
//!   most accepted calls).
//! - Code that must run inside a coroutine is a closure run by the entry
//!   [`run_inside`], which catches its panics (a panic must not leave an
//!   `extern "C"` entry) and hands them to the test's thread to re-raise.
//! - Coroutine structs come from `malloc`, filled with 0xA5 (never zeroed),
//!   as C callers pass them.
//! - Every row asserts what the documentation promises; the four gaps this
//!   file found when it was written were fixed in the library, not here.
#![warn(clippy::undocumented_unsafe_blocks)]
#![deny(unsafe_op_in_unsafe_fn)]

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::ffi::{c_int, c_void};
use std::panic::{self, AssertUnwindSafe};
use std::ptr;
use std::rc::Rc;
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering::SeqCst};
use std::sync::{mpsc, Mutex, PoisonError};
use std::thread;

use ucoro::{sys, Builder, Coroutine, CoroutineResult, Error, Generator, Yielder};

mod common;
use common::{
    arg, assert_child_aborted, assert_child_passed, calls_of, child, co_of, count_runs, current,
    describe, diagnostics, filled_co, in_child_expecting, init_with, is_main, malloc_filled, num,
    page_size, return_7, set_fields, tracked, val, with_errno, Co, DropCounter, Owned, SendPtr,
    CC_INIT_NO_ENTRY, CC_INIT_NULL, CC_SWAP_EXITED, CC_SWAP_FROM_NULL, CC_SWAP_RUNNING,
    CC_SWAP_TO_NULL, CC_SWAP_UNINIT, DEFAULT_STACK, INIT_NO_ENTRY, INIT_NULL, MIN_STACK,
    RELEASE_BUSY, RELEASE_MAIN, RELEASE_NULL, RELEASE_UNINIT, SMALL_STACK, SWAP_EXITED, SWAP_FROM,
    SWAP_NULL, SWAP_OTHER_MAIN, SWAP_SELF, SWAP_UNINIT, UNMAPPABLE, YIELDTO_UNINIT, YIELD_FROM,
    YIELD_TO_NO_ONE,
};

type Cc = *mut sys::continuation;

// The documented messages ("FUNCTION: assertion 'CONDITION' failed") are in
// common.

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// Yields 1, then returns 2.
///
/// # Safety
/// Must be entered through `coroutine_yieldto` (so that it has a caller).
unsafe extern "C" fn yield_1_return_2(_arg: *mut c_void) -> *mut c_void {
    // SAFETY: entered through yieldto, so this coroutine has a caller.
    unsafe { sys::coroutine_yield(val(1)) };
    val(2)
}

/// Runs `co` (initialised, unstarted, whose entry touches only what `first`
/// points to) and returns what comes back.
fn start(co: Co, first: *mut c_void) -> usize {
    // SAFETY: the callers pass an initialised, unstarted coroutine whose
    // entry only touches `first`, which they keep alive.
    num(unsafe { sys::coroutine_yieldto(co, first) })
}

/// An initialised coroutine that has run to its end.
fn exited_coroutine() -> Owned {
    let co = Owned::small(return_7);
    assert_eq!(start(co.ptr(), ptr::null_mut()), 7);
    assert!(co.exited());
    co
}

/// The main coroutine of another thread, which stays alive (and keeps it)
/// until the returned guard is dropped.
struct OtherThread {
    leader: Co,
    done: Option<mpsc::Sender<()>>,
    handle: Option<thread::JoinHandle<()>>,
}

impl OtherThread {
    fn spawn() -> Self {
        let (tx, rx) = mpsc::channel();
        let (done_tx, done_rx) = mpsc::channel::<()>();
        let handle = thread::spawn(move || {
            tx.send(SendPtr(current())).unwrap();
            done_rx.recv().ok();
        });
        let leader = rx.recv().unwrap().get();
        OtherThread {
            leader,
            done: Some(done_tx),
            handle: Some(handle),
        }
    }
}

impl Drop for OtherThread {
    fn drop(&mut self) {
        drop(self.done.take());
        if let Some(h) = self.handle.take() {
            h.join().unwrap();
        }
    }
}

// ---- closures run inside coroutines ----------------------------------------

const INSIDE_DONE: usize = 0x1D0E;

/// A closure to run inside a coroutine (by [`run_inside`]), and the message
/// of its panic, caught there.
struct Inside<'a> {
    body: Cell<Option<Box<dyn FnOnce() + 'a>>>,
    panic: Cell<Option<String>>,
}

impl<'a> Inside<'a> {
    fn new(body: impl FnOnce() + 'a) -> Self {
        Inside {
            body: Cell::new(Some(Box::new(body))),
            panic: Cell::new(None),
        }
    }

    /// The first argument for a coroutine whose entry is `run_inside`.
    fn arg(&self) -> *mut c_void {
        arg(self)
    }

    /// Re-raises here a panic the closure raised inside its coroutine.
    fn rethrow(&self) {
        if let Some(msg) = self.panic.take() {
            panic!("inside the coroutine: {msg}");
        }
    }
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(non-string panic)".into())
}

/// Runs the closure of the `Inside` its argument points to, catching any
/// panic; returns INSIDE_DONE.
///
/// # Safety
/// `arg` must point to an `Inside` that outlives the coroutine.
unsafe extern "C" fn run_inside(arg: *mut c_void) -> *mut c_void {
    // SAFETY: guaranteed by the caller; the lifetime of the closure's
    // captures is the caller's business (it keeps them alive meanwhile).
    let inside = unsafe { &*arg.cast::<Inside<'_>>() };
    if let Some(body) = inside.body.take() {
        if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(body)) {
            inside.panic.set(Some(panic_message(&*payload)));
        }
    }
    val(INSIDE_DONE)
}

/// Runs `body` in a fresh coroutine (started with yieldto) to its end.
fn in_coroutine(body: impl FnOnce()) {
    let co = Owned::small(run_inside);
    let inside = Inside::new(body);
    let r = start(co.ptr(), inside.arg());
    inside.rethrow();
    assert_eq!(r, INSIDE_DONE, "the coroutine must run to its end");
}

// ---- child processes ---------------------------------------------------------

/// One row: `body` runs in a child process and must pass; the child's
/// stderr must hold exactly `diagnostics`, in order.
macro_rules! row {
    ($(#[$attr:meta])* $name:ident, [$($diag:expr),* $(,)?], $body:block) => {
        $(#[$attr])*
        #[test]
        fn $name() {
            in_child_expecting(stringify!($name), || $body, &[$($diag),*]);
        }
    };
}

const BEFORE_FATAL: &str = "ucoro-test: about to yield with no caller\n";
const AFTER_FATAL: &str = "ucoro-test: the fatal call returned";

/// One fatal row: `body` runs in a child process, prints BEFORE_FATAL and
/// makes the fatal call; the child must die of SIGABRT right after writing
/// the fatal message, and never print AFTER_FATAL.
fn fatal_row(name: &str, body: impl FnOnce()) {
    let Some(out) = child(name, body) else {
        return;
    };
    assert_child_aborted(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("{BEFORE_FATAL}{YIELD_TO_NO_ONE}")),
        "expected the message and newline right after the call:\n{}",
        describe(&out)
    );
    assert!(!stderr.contains(AFTER_FATAL), "{}", describe(&out));
    assert_eq!(
        diagnostics(&out),
        Vec::<String>::new(),
        "{}",
        describe(&out)
    );
}

// ---------------------------------------------------------------------------
// coroutine_init
// ---------------------------------------------------------------------------

row!(init_null, [INIT_NULL], {
    // SAFETY: NULL is documented as rejected.
    let (rc, err) = with_errno(|| unsafe { sys::coroutine_init(ptr::null_mut()) });
    assert_eq!((rc, err), (-1, libc::EINVAL));
});

row!(init_never_initialised_memory_succeeds, [], {
    let runs = AtomicUsize::new(0);
    let co = filled_co(0xA5);
    // SAFETY: co is a fresh malloc'd struct of the right size.
    let (rc, _) = unsafe { init_with(co, Some(count_runs), 0) };
    assert_eq!(rc, 0);
    // SAFETY: co is live; stack_size is an in/out field.
    assert_eq!(unsafe { (*co).stack_size }, DEFAULT_STACK);
    assert_eq!(start(co, arg(&runs)), 0x600D);
    assert_eq!(runs.load(SeqCst), 1);
    drop(Owned(co));
});

row!(init_all_zero_struct_rejected, [INIT_NO_ENTRY], {
    // All zeros: entry is NULL.
    let co = filled_co(0);
    // SAFETY: co is a live allocation of the right size, not running.
    let (rc, err) = with_errno(|| unsafe { sys::coroutine_init(co) });
    assert_eq!((rc, err), (-1, libc::EINVAL));
    // SAFETY: co is ours, never initialised.
    unsafe { libc::free(co.cast()) };
});

row!(init_zeroed_struct_with_entry_succeeds, [], {
    let runs = AtomicUsize::new(0);
    let co = filled_co(0);
    // SAFETY: co is a fresh malloc'd struct of the right size.
    unsafe { (*co).entry = Some(count_runs) };
    // SAFETY: as above; stack_size 0 and release NULL come from the zeros.
    let (rc, _) = with_errno(|| unsafe { sys::coroutine_init(co) });
    assert_eq!(rc, 0);
    assert_eq!(start(co, arg(&runs)), 0x600D);
    drop(Owned(co));
});

row!(init_exited_coroutine_succeeds, [], {
    let runs = AtomicUsize::new(0);
    let co = Owned::small(count_runs);
    assert_eq!(start(co.ptr(), arg(&runs)), 0x600D);
    assert!(co.exited());
    // SAFETY: co has exited: init may reset it (its in-fields are still set).
    let (rc, _) = with_errno(|| unsafe { sys::coroutine_init(co.ptr()) });
    assert_eq!(rc, 0);
    assert!(!co.exited(), "init resets exited");
    assert_eq!(start(co.ptr(), arg(&runs)), 0x600D);
    assert_eq!(runs.load(SeqCst), 2, "the entry runs again");
});

row!(init_suspended_coroutine_restarts_it, [], {
    let co = Owned::small(yield_1_return_2);
    assert_eq!(start(co.ptr(), ptr::null_mut()), 1);
    // Suspended in coroutine_yield: the header says re-initialising it
    // leaks its stack; the struct starts afresh.
    // SAFETY: co is suspended, not running nor on the chain.
    let (rc, _) = with_errno(|| unsafe { sys::coroutine_init(co.ptr()) });
    assert_eq!(rc, 0);
    assert_eq!(
        start(co.ptr(), ptr::null_mut()),
        1,
        "the entry starts again"
    );
    // SAFETY: co is suspended in yield with no caller.
    let r = unsafe { sys::coroutine_yieldto(co.ptr(), ptr::null_mut()) };
    assert_eq!(num(r), 2);
    assert!(co.exited());
});

row!(init_released_coroutine_succeeds, [], {
    let runs = AtomicUsize::new(0);
    let co = Owned::small(count_runs);
    // SAFETY: co is initialised and not running.
    assert_eq!(unsafe { sys::coroutine_release(co.ptr()) }, 0);
    // SAFETY: co is released: init may reuse it.
    let (rc, _) = with_errno(|| unsafe { sys::coroutine_init(co.ptr()) });
    assert_eq!(rc, 0);
    assert_eq!(start(co.ptr(), arg(&runs)), 0x600D);
});

row!(init_stack_size_1_rounds_up, [], {
    let co = filled_co(0xA5);
    // SAFETY: co is a fresh malloc'd struct of the right size.
    let (rc, _) = unsafe { init_with(co, Some(return_7), 1) };
    assert_eq!(rc, 0);
    // SAFETY: co is live; stack_size is an in/out field.
    let size = unsafe { (*co).stack_size };
    assert_eq!(size, MIN_STACK.next_multiple_of(page_size()));
    assert_eq!(start(co, ptr::null_mut()), 7, "the rounded stack is usable");
    drop(Owned(co));
});

row!(init_stack_size_max_rejected, [], {
    let co = filled_co(0xA5);
    // SAFETY: co is a fresh malloc'd struct of the right size.
    let (rc, err) = unsafe { init_with(co, Some(return_7), usize::MAX) };
    assert_eq!((rc, err), (-1, libc::EINVAL));
    // SAFETY: co is live; nothing is written back on failure.
    assert_eq!(unsafe { (*co).stack_size }, usize::MAX);
    // SAFETY: co is ours, never initialised.
    unsafe { libc::free(co.cast()) };
});

row!(init_stack_size_unmappable_enomem, [], {
    let co = filled_co(0xA5);
    // SAFETY: co is a fresh malloc'd struct of the right size.
    let (rc, err) = unsafe { init_with(co, Some(return_7), UNMAPPABLE) };
    assert_eq!((rc, err), (-1, libc::ENOMEM));
    // SAFETY: co is ours, never initialised.
    unsafe { libc::free(co.cast()) };
});

row!(init_null_entry_rejected, [INIT_NO_ENTRY], {
    let co = filled_co(0xA5);
    // SAFETY: co is a fresh malloc'd struct of the right size.
    let (rc, err) = unsafe { init_with(co, None, 0) };
    assert_eq!((rc, err), (-1, libc::EINVAL));
    // SAFETY: co is ours, never initialised.
    unsafe { libc::free(co.cast()) };
});

/// Rows the library does not check: what the header implies ("-1 with a
/// diagnostic, nothing changed"), asserted loosely (any errno, one
/// coroutine_init diagnostic), in a child.
fn init_refused_row(name: &str, scenario: impl FnOnce()) {
    let Some(out) = child(name, scenario) else {
        return;
    };
    assert_child_passed(&out);
    assert_eq!(
        diagnostics(&out),
        ["coroutine_init: assertion '!co->caller' failed"],
        "{}",
        describe(&out)
    );
}

#[test]
fn init_running_coroutine_refused() {
    init_refused_row("init_running_coroutine_refused", || {
        in_coroutine(|| {
            let me = current();
            // SAFETY: a documented misuse: must be refused without changes.
            let (rc, err) = with_errno(|| unsafe { sys::coroutine_init(me) });
            assert_eq!(
                (rc, err),
                (-1, libc::EBUSY),
                "init of the running coroutine"
            );
        });
    });
}

#[test]
fn init_coroutine_on_caller_chain_refused() {
    init_refused_row("init_coroutine_on_caller_chain_refused", || {
        let a = Owned::small(run_inside);
        let b = Owned::small(run_inside);
        let pa = a.ptr();
        let b_body = Inside::new(move || {
            // SAFETY: a documented misuse: must be refused without changes.
            let (rc, err) = with_errno(|| unsafe { sys::coroutine_init(pa) });
            assert_eq!(
                (rc, err),
                (-1, libc::EBUSY),
                "init of a coroutine waiting in yieldto"
            );
        });
        let b_ptr = b.ptr();
        let b_arg = b_body.arg();
        let a_body = Inside::new(move || {
            assert_eq!(start(b_ptr, b_arg), INSIDE_DONE);
        });
        assert_eq!(start(pa, a_body.arg()), INSIDE_DONE);
        b_body.rethrow();
        a_body.rethrow();
    });
}

/// The main coroutine `leader` of the calling thread behaves as main: a
/// coroutine entered through coroutine_swap can switch back to it, and
/// coroutine_release refuses it with EBUSY.
fn assert_main_intact(leader: Co) {
    let co = Owned::small(run_inside);
    let pco = co.ptr();
    let body = Inside::new(move || {
        // SAFETY: pco is running (entered through swap); main is suspended.
        let r = unsafe { sys::coroutine_swap(pco, leader, val(0x51)) };
        assert_eq!(num(r), 0x52, "main resumed it");
    });
    // SAFETY: leader is running; co is initialised and only runs `body`.
    let r = unsafe { sys::coroutine_swap(leader, pco, body.arg()) };
    assert_eq!(num(r), 0x51, "the coroutine switched back to main");
    // SAFETY: as above; co is suspended in its swap.
    let r = unsafe { sys::coroutine_swap(leader, pco, val(0x52)) };
    body.rethrow();
    assert_eq!(num(r), INSIDE_DONE);
    // SAFETY: releasing main is documented as refused.
    let (rc, err) = with_errno(|| unsafe { sys::coroutine_release(leader) });
    assert_eq!(
        (rc, err),
        (-1, libc::EBUSY),
        "release(main) after init(main)"
    );
}

#[test]
fn init_own_main_leaves_main_intact() {
    let Some(out) = child("init_own_main_leaves_main_intact", || {
        let main = current();
        // SAFETY: a documented misuse: must be refused.
        let (rc, err) = with_errno(|| unsafe { sys::coroutine_init(main) });
        assert_eq!((rc, err), (-1, libc::EBUSY));
        assert!(is_main(main) && current() == main);
        assert_main_intact(main);
    }) else {
        return;
    };
    assert_child_passed(&out);
    let diags = diagnostics(&out);
    assert!(
        diags.len() == 2
            && diags[0] == "coroutine_init: assertion '!coroutine_is_main(co)' failed"
            && diags[1] == RELEASE_MAIN,
        "{}",
        describe(&out)
    );
}

#[test]
fn init_other_threads_main_leaves_it_intact() {
    let Some(out) = child("init_other_threads_main_leaves_it_intact", || {
        let (tx, rx) = mpsc::channel();
        let (go_tx, go_rx) = mpsc::channel::<()>();
        let other = thread::spawn(move || {
            tx.send(SendPtr(current())).unwrap();
            go_rx.recv().unwrap();
            // After the other thread's init: this thread's main must be intact.
            assert_main_intact(current());
        });
        let leader = rx.recv().unwrap().get();
        // SAFETY: a documented misuse: must be refused without changes.
        let (rc, err) = with_errno(|| unsafe { sys::coroutine_init(leader) });
        assert_eq!((rc, err), (-1, libc::EINVAL), "its entry is NULL");
        go_tx.send(()).unwrap();
        other.join().expect("the other thread's checks");
    }) else {
        return;
    };
    assert_child_passed(&out);
    let diags = diagnostics(&out);
    assert!(
        diags.len() == 2
            && diags[0] == "coroutine_init: assertion 'co->entry != NULL' failed"
            && diags[1] == RELEASE_MAIN,
        "{}",
        describe(&out)
    );
}

// ---------------------------------------------------------------------------
// coroutine_swap
// ---------------------------------------------------------------------------

row!(swap_from_null_rejected, [SWAP_FROM], {
    let runs = AtomicUsize::new(0);
    let co = Owned::small(count_runs);
    // SAFETY: documented as refused without switching.
    let r = unsafe { sys::coroutine_swap(ptr::null_mut(), co.ptr(), arg(&runs)) };
    assert!(r.is_null());
    assert_eq!(runs.load(SeqCst), 0, "nothing may run");
});

row!(
    swap_wrong_from_rejected,
    [SWAP_FROM, SWAP_FROM, SWAP_FROM],
    {
        let runs = AtomicUsize::new(0);
        let main = current();
        let target = Owned::small(count_runs);
        let idle = Owned::small(count_runs);
        let garbage = filled_co(0xA5);
        // SAFETY: each is documented as refused without switching: from is an
        // initialised coroutine that is not running, then garbage.
        let r = unsafe {
            [
                sys::coroutine_swap(idle.ptr(), target.ptr(), arg(&runs)),
                sys::coroutine_swap(garbage, target.ptr(), arg(&runs)),
            ]
        };
        assert_eq!(r, [ptr::null_mut(); 2]);
        // From inside a coroutine, naming main (suspended) as from.
        let t = target.ptr();
        let runs_arg = arg(&runs);
        in_coroutine(move || {
            // SAFETY: documented as refused without switching.
            let r = unsafe { sys::coroutine_swap(main, t, runs_arg) };
            assert!(r.is_null());
        });
        assert_eq!(runs.load(SeqCst), 0, "nothing may run");
        assert_eq!(current(), main);
        // SAFETY: garbage is ours.
        unsafe { libc::free(garbage.cast()) };
    }
);

row!(swap_to_null_rejected, [SWAP_NULL], {
    // SAFETY: documented as refused without switching.
    let r = unsafe { sys::coroutine_swap(current(), ptr::null_mut(), val(1)) };
    assert!(r.is_null());
    assert!(is_main(current()));
});

row!(
    swap_to_never_initialised_rejected,
    [SWAP_UNINIT, SWAP_UNINIT],
    {
        let runs = AtomicUsize::new(0);
        let co = filled_co(0xA5);
        // SAFETY: documented as refused without switching (garbage, then with
        // the in-fields set as a caller would before forgetting init).
        let r1 = unsafe { sys::coroutine_swap(current(), co, arg(&runs)) };
        // SAFETY: co is a live allocation, not live as a coroutine.
        unsafe { set_fields(co, Some(count_runs), 0) };
        // SAFETY: as above.
        let r2 = unsafe { sys::coroutine_swap(current(), co, arg(&runs)) };
        assert!(r1.is_null() && r2.is_null());
        assert_eq!(runs.load(SeqCst), 0);
        // SAFETY: co is ours.
        unsafe { libc::free(co.cast()) };
    }
);

row!(swap_to_all_zero_rejected, [SWAP_UNINIT], {
    let co = filled_co(0);
    // SAFETY: documented as refused without switching.
    let r = unsafe { sys::coroutine_swap(current(), co, val(1)) };
    assert!(r.is_null());
    // SAFETY: co is ours.
    unsafe { libc::free(co.cast()) };
});

row!(swap_to_exited_rejected, [SWAP_EXITED], {
    let done = exited_coroutine();
    // SAFETY: documented as refused without switching.
    let r = unsafe { sys::coroutine_swap(current(), done.ptr(), val(1)) };
    assert!(r.is_null());
    assert!(is_main(current()));
});

row!(swap_to_self_rejected, [SWAP_SELF, SWAP_SELF], {
    let main = current();
    // SAFETY: documented as refused without switching.
    let r = unsafe { sys::coroutine_swap(main, main, val(1)) };
    assert!(r.is_null());
    in_coroutine(|| {
        let me = current();
        // SAFETY: documented as refused without switching.
        let r = unsafe { sys::coroutine_swap(me, me, val(2)) };
        assert!(r.is_null());
        assert_eq!(current(), me);
    });
});

row!(swap_to_coroutine_on_caller_chain_switches, [], {
    // main -> A -> B (yieldto); B swaps into A, which waits in its yieldto:
    // not refused (swap does not look at callers), A's yieldto returns B's
    // value; A swaps back into B, which then returns to its caller, A.
    let a = Owned::small(run_inside);
    let b = Owned::small(run_inside);
    let (pa, pb) = (a.ptr(), b.ptr());
    let b_body = Inside::new(move || {
        // SAFETY: B is running; A waits in yieldto (switched out).
        let r = unsafe { sys::coroutine_swap(pb, pa, val(0x5A)) };
        assert_eq!(num(r), 0x6B, "A swapped back");
        assert_eq!(current(), pb);
    });
    let b_arg = b_body.arg();
    let a_body = Inside::new(move || {
        // SAFETY: B is initialised and unstarted; it only runs b_body.
        let r = unsafe { sys::coroutine_yieldto(pb, b_arg) };
        assert_eq!(num(r), 0x5A, "B's swap arrives in A's yieldto");
        assert_eq!(current(), pa);
        // SAFETY: A is running; B is suspended in its swap.
        let r = unsafe { sys::coroutine_swap(pa, pb, val(0x6B)) };
        assert_eq!(num(r), INSIDE_DONE, "B returned to its caller, A");
        assert_eq!(current(), pa);
    });
    assert_eq!(start(pa, a_body.arg()), INSIDE_DONE);
    b_body.rethrow();
    a_body.rethrow();
    assert!(a.exited() && b.exited());
    assert!(is_main(current()));
});

row!(swap_to_own_main_switches, [], {
    let main = current();
    let co = Owned::small(run_inside);
    let pco = co.ptr();
    let body = Inside::new(move || {
        // SAFETY: pco is running (entered through swap); main is suspended.
        let r = unsafe { sys::coroutine_swap(pco, main, val(0x77)) };
        assert_eq!(num(r), 0x78);
    });
    // SAFETY: main is running; co only runs `body`.
    let r = unsafe { sys::coroutine_swap(main, pco, body.arg()) };
    assert_eq!(num(r), 0x77);
    assert_eq!(current(), main);
    // SAFETY: co is suspended in its swap.
    let r = unsafe { sys::coroutine_swap(main, pco, val(0x78)) };
    body.rethrow();
    assert_eq!(num(r), INSIDE_DONE, "its exit returns to the last switcher");
    assert!(co.exited());
});

row!(
    swap_to_other_threads_main_rejected,
    [SWAP_OTHER_MAIN, SWAP_OTHER_MAIN],
    {
        let other = OtherThread::spawn();
        let main = current();
        // SAFETY: documented as refused without switching.
        let r = unsafe { sys::coroutine_swap(main, other.leader, val(1)) };
        assert!(r.is_null());
        let their = other.leader;
        in_coroutine(move || {
            // SAFETY: as above, from a coroutine.
            let r = unsafe { sys::coroutine_swap(current(), their, val(2)) };
            assert!(r.is_null());
        });
        assert_eq!(current(), main);
    }
);

row!(swap_to_released_rejected, [SWAP_UNINIT, SWAP_EXITED], {
    let runs = AtomicUsize::new(0);
    let fresh = Owned::small(count_runs);
    // SAFETY: fresh is initialised and not running.
    assert_eq!(unsafe { sys::coroutine_release(fresh.ptr()) }, 0);
    let done = exited_coroutine();
    // SAFETY: done has exited.
    assert_eq!(unsafe { sys::coroutine_release(done.ptr()) }, 0);
    // SAFETY: documented as refused without switching.
    let r = unsafe {
        [
            sys::coroutine_swap(current(), fresh.ptr(), arg(&runs)),
            sys::coroutine_swap(current(), done.ptr(), arg(&runs)),
        ]
    };
    assert_eq!(r, [ptr::null_mut(); 2]);
    assert_eq!(runs.load(SeqCst), 0);
});

row!(swap_to_failed_init_rejected, [SWAP_UNINIT], {
    let runs = AtomicUsize::new(0);
    let co = filled_co(0xA5);
    // SAFETY: co is a fresh malloc'd struct of the right size.
    let (rc, _) = unsafe { init_with(co, Some(count_runs), usize::MAX) };
    assert_eq!(rc, -1);
    // SAFETY: documented as refused without switching.
    let r = unsafe { sys::coroutine_swap(current(), co, arg(&runs)) };
    assert!(r.is_null());
    assert_eq!(runs.load(SeqCst), 0);
    // SAFETY: co is ours.
    unsafe { libc::free(co.cast()) };
});

// ---------------------------------------------------------------------------
// coroutine_release
// ---------------------------------------------------------------------------

row!(release_null_rejected, [RELEASE_NULL], {
    // SAFETY: NULL is documented as rejected.
    let (rc, err) = with_errno(|| unsafe { sys::coroutine_release(ptr::null_mut()) });
    assert_eq!((rc, err), (-1, libc::EINVAL));
});

row!(release_never_initialised_rejected, [RELEASE_UNINIT], {
    let co = filled_co(0xA5);
    // SAFETY: co is a live allocation; release must only read it.
    let (rc, err) = with_errno(|| unsafe { sys::coroutine_release(co) });
    assert_eq!((rc, err), (-1, libc::EINVAL));
    // SAFETY: co is ours.
    unsafe { libc::free(co.cast()) };
});

row!(release_all_zero_rejected, [RELEASE_UNINIT], {
    let co = filled_co(0);
    // SAFETY: co is a live allocation; release must only read it.
    let (rc, err) = with_errno(|| unsafe { sys::coroutine_release(co) });
    assert_eq!((rc, err), (-1, libc::EINVAL));
    // SAFETY: co is ours.
    unsafe { libc::free(co.cast()) };
});

row!(release_after_failed_init_rejected, [RELEASE_UNINIT], {
    let co = filled_co(0xA5);
    // SAFETY: co is a fresh malloc'd struct of the right size.
    let (rc, _) = unsafe { init_with(co, Some(return_7), usize::MAX) };
    assert_eq!(rc, -1);
    // SAFETY: co is a live allocation; release must only read it.
    let (rc, err) = with_errno(|| unsafe { sys::coroutine_release(co) });
    assert_eq!((rc, err), (-1, libc::EINVAL));
    // SAFETY: co is ours.
    unsafe { libc::free(co.cast()) };
});

row!(release_exited_is_a_no_op, [], {
    let t = tracked(return_7, SMALL_STACK, 0);
    assert_eq!(start(co_of(t), ptr::null_mut()), 7);
    assert_eq!(calls_of(t), 1, "the exit released the stack");
    // SAFETY: the coroutine has exited.
    let (rc, _) = with_errno(|| unsafe { sys::coroutine_release(co_of(t)) });
    assert_eq!(rc, 0);
    assert_eq!(calls_of(t), 1, "nothing left to release");
    // SAFETY: nothing refers to t any more.
    unsafe { libc::free(t.cast()) };
});

row!(release_twice_is_a_no_op, [], {
    let t = tracked(return_7, SMALL_STACK, 0);
    // SAFETY: the coroutine is initialised and not running.
    let rcs = unsafe {
        [
            sys::coroutine_release(co_of(t)),
            sys::coroutine_release(co_of(t)),
        ]
    };
    assert_eq!(rcs, [0, 0]);
    assert_eq!(calls_of(t), 1, "the callback runs once");
    // SAFETY: nothing refers to t any more.
    unsafe { libc::free(t.cast()) };
});

row!(release_suspended_coroutine_frees_it, [YIELDTO_UNINIT], {
    let t = tracked(yield_1_return_2, SMALL_STACK, 0);
    assert_eq!(start(co_of(t), ptr::null_mut()), 1);
    // Suspended in yield, with no caller: not running, so it may go.
    // SAFETY: the coroutine is suspended, not on the chain.
    let (rc, _) = with_errno(|| unsafe { sys::coroutine_release(co_of(t)) });
    assert_eq!(rc, 0);
    assert_eq!(calls_of(t), 1);
    // SAFETY: released: yieldto must refuse it without switching.
    let r = unsafe { sys::coroutine_yieldto(co_of(t), ptr::null_mut()) };
    assert!(r.is_null(), "a released coroutine never runs again");
    // SAFETY: nothing refers to t any more.
    unsafe { libc::free(t.cast()) };
});

row!(
    release_running_coroutine_refused,
    [RELEASE_BUSY, RELEASE_BUSY],
    {
        // Entered through yieldto (it has a caller) ...
        in_coroutine(|| {
            let me = current();
            // SAFETY: documented as refused (EBUSY).
            let (rc, err) = with_errno(|| unsafe { sys::coroutine_release(me) });
            assert_eq!((rc, err), (-1, libc::EBUSY));
        });
        // ... and through coroutine_swap (no caller, but running).
        let main = current();
        let co = Owned::small(run_inside);
        let body = Inside::new(|| {
            let me = current();
            // SAFETY: documented as refused (EBUSY).
            let (rc, err) = with_errno(|| unsafe { sys::coroutine_release(me) });
            assert_eq!((rc, err), (-1, libc::EBUSY));
        });
        // SAFETY: main is running; co only runs `body`.
        let r = unsafe { sys::coroutine_swap(main, co.ptr(), body.arg()) };
        body.rethrow();
        assert_eq!(num(r), INSIDE_DONE);
    }
);

row!(release_on_caller_chain_refused, [RELEASE_BUSY], {
    let a = Owned::small(run_inside);
    let b = Owned::small(run_inside);
    let (pa, pb) = (a.ptr(), b.ptr());
    let b_body = Inside::new(move || {
        // SAFETY: A waits in yieldto: documented as refused (EBUSY).
        let (rc, err) = with_errno(|| unsafe { sys::coroutine_release(pa) });
        assert_eq!((rc, err), (-1, libc::EBUSY));
    });
    let b_arg = b_body.arg();
    let a_body = Inside::new(move || {
        assert_eq!(start(pb, b_arg), INSIDE_DONE);
    });
    assert_eq!(start(pa, a_body.arg()), INSIDE_DONE);
    b_body.rethrow();
    a_body.rethrow();
});

row!(release_own_main_refused, [RELEASE_MAIN, RELEASE_MAIN], {
    let main = current();
    // SAFETY: documented as refused (EBUSY).
    let (rc, err) = with_errno(|| unsafe { sys::coroutine_release(main) });
    assert_eq!((rc, err), (-1, libc::EBUSY));
    in_coroutine(move || {
        // SAFETY: as above, from a coroutine (main waits in yieldto).
        let (rc, err) = with_errno(|| unsafe { sys::coroutine_release(main) });
        assert_eq!((rc, err), (-1, libc::EBUSY));
    });
    assert!(is_main(current()));
});

row!(release_other_threads_main_refused, [RELEASE_MAIN], {
    let other = OtherThread::spawn();
    // SAFETY: documented as refused (EBUSY); release only reads the struct.
    let (rc, err) = with_errno(|| unsafe { sys::coroutine_release(other.leader) });
    assert_eq!((rc, err), (-1, libc::EBUSY));
});

/// Tells its creator it runs, then waits for the go-ahead.
///
/// # Safety
/// `arg` must point to a `Handshake` that outlives the coroutine.
unsafe extern "C" fn wait_for_go(arg: *mut c_void) -> *mut c_void {
    // SAFETY: guaranteed by the caller.
    let h = unsafe { &*arg.cast::<Handshake>() };
    let tx = h
        .running
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take();
    if let Some(tx) = tx {
        let _ = tx.send(());
    }
    let rx = h.go.lock().unwrap_or_else(PoisonError::into_inner).take();
    if let Some(rx) = rx {
        let _ = rx.recv();
    }
    val(0x60)
}

struct Handshake {
    running: Mutex<Option<mpsc::Sender<()>>>,
    go: Mutex<Option<mpsc::Receiver<()>>>,
}

impl Handshake {
    /// The handshake, the receiver that hears "running" and the sender that
    /// says "go".
    fn new() -> (Self, mpsc::Receiver<()>, mpsc::Sender<()>) {
        let (running_tx, running_rx) = mpsc::channel();
        let (go_tx, go_rx) = mpsc::channel();
        let h = Handshake {
            running: Mutex::new(Some(running_tx)),
            go: Mutex::new(Some(go_rx)),
        };
        (h, running_rx, go_tx)
    }
}

row!(
    release_coroutine_running_on_another_thread_refused,
    [RELEASE_BUSY],
    {
        let co = Owned::small(wait_for_go);
        let (h, running_rx, go_tx) = Handshake::new();
        let (pco, ph) = (SendPtr(co.ptr()), SendPtr(arg(&h)));
        let runner = thread::spawn(move || {
            // SAFETY: co is initialised and unstarted; it only touches h, which
            // outlives this thread (joined below).
            num(unsafe { sys::coroutine_yieldto(pco.get(), ph.get()) })
        });
        running_rx.recv().unwrap();
        // The coroutine runs on the other thread (its caller is that thread's main).
        // SAFETY: documented as refused (EBUSY); release only reads the struct.
        let (rc, err) = with_errno(|| unsafe { sys::coroutine_release(co.ptr()) });
        assert_eq!((rc, err), (-1, libc::EBUSY));
        go_tx.send(()).unwrap();
        assert_eq!(runner.join().unwrap(), 0x60);
        assert!(co.exited());
    }
);

#[test]
fn release_swap_started_coroutine_running_on_another_thread_refused() {
    let name = "release_swap_started_coroutine_running_on_another_thread_refused";
    in_child_expecting(
        name,
        || {
            let co = Owned::small(wait_for_go);
            let (h, running_rx, go_tx) = Handshake::new();
            let (pco, ph) = (SendPtr(co.ptr()), SendPtr(arg(&h)));
            let runner = thread::spawn(move || {
                // SAFETY: this thread's main is running; co is initialised and
                // unstarted; it only touches h, which outlives this thread.
                num(unsafe { sys::coroutine_swap(current(), pco.get(), ph.get()) })
            });
            running_rx.recv().unwrap();
            // SAFETY: documented as refused (EBUSY) for a running coroutine.
            let (rc, err) = with_errno(|| unsafe { sys::coroutine_release(co.ptr()) });
            // Let it finish first, so that a failure does not leave it hanging.
            go_tx.send(()).unwrap();
            let r = runner.join().unwrap();
            assert_eq!(
                (rc, err),
                (-1, libc::EBUSY),
                "release of a running coroutine"
            );
            assert_eq!(r, 0x60);
        },
        &[RELEASE_BUSY],
    );
}

// ---------------------------------------------------------------------------
// coroutine_yield and ucoro_yield_from with no caller (fatal)
// ---------------------------------------------------------------------------

#[test]
fn yield_in_swap_started_coroutine_aborts() {
    fatal_row("yield_in_swap_started_coroutine_aborts", || {
        let co = Owned::small(run_inside);
        let body = Inside::new(|| {
            eprint!("{BEFORE_FATAL}");
            // SAFETY: entered through swap, this coroutine has no caller:
            // documented to print and abort.
            unsafe { sys::coroutine_yield(val(1)) };
            eprintln!("{AFTER_FATAL}");
        });
        // SAFETY: main is running; co only runs `body`.
        unsafe { sys::coroutine_swap(current(), co.ptr(), body.arg()) };
        eprintln!("{AFTER_FATAL}");
    });
}

#[test]
fn yield_from_swap_started_coroutine_aborts() {
    fatal_row("yield_from_swap_started_coroutine_aborts", || {
        let co = Owned::small(run_inside);
        let body = Inside::new(|| {
            eprint!("{BEFORE_FATAL}");
            // SAFETY: as for coroutine_yield: no caller, documented to abort.
            unsafe { sys::ucoro_yield_from(current(), val(1)) };
            eprintln!("{AFTER_FATAL}");
        });
        // SAFETY: main is running; co only runs `body`.
        unsafe { sys::coroutine_swap(current(), co.ptr(), body.arg()) };
        eprintln!("{AFTER_FATAL}");
    });
}

// ---------------------------------------------------------------------------
// ucoro_yield_from (non-fatal)
// ---------------------------------------------------------------------------

/// Calls ucoro_yield_from(target) from main and from inside a coroutine:
/// both must be refused (NULL) without switching.
fn yield_from_refused(target: Co) {
    // SAFETY: documented as refused without switching.
    let r = unsafe { sys::ucoro_yield_from(target, val(1)) };
    assert!(r.is_null());
    assert!(is_main(current()));
    in_coroutine(move || {
        let me = current();
        // SAFETY: as above.
        let r = unsafe { sys::ucoro_yield_from(target, val(2)) };
        assert!(r.is_null());
        assert_eq!(current(), me, "still running");
    });
}

row!(yield_from_null_rejected, [YIELD_FROM, YIELD_FROM], {
    yield_from_refused(ptr::null_mut());
});

row!(
    yield_from_never_initialised_rejected,
    [YIELD_FROM, YIELD_FROM],
    {
        let co = filled_co(0xA5);
        yield_from_refused(co);
        // SAFETY: co is ours.
        unsafe { libc::free(co.cast()) };
    }
);

row!(yield_from_all_zero_rejected, [YIELD_FROM, YIELD_FROM], {
    let co = filled_co(0);
    yield_from_refused(co);
    // SAFETY: co is ours.
    unsafe { libc::free(co.cast()) };
});

row!(yield_from_exited_rejected, [YIELD_FROM, YIELD_FROM], {
    let done = exited_coroutine();
    yield_from_refused(done.ptr());
});

row!(
    yield_from_coroutine_on_caller_chain_rejected,
    [YIELD_FROM],
    {
        let a = Owned::small(run_inside);
        let b = Owned::small(run_inside);
        let (pa, pb) = (a.ptr(), b.ptr());
        let b_body = Inside::new(move || {
            // SAFETY: A waits in yieldto: documented as refused without switching.
            let r = unsafe { sys::ucoro_yield_from(pa, val(1)) };
            assert!(r.is_null());
            assert_eq!(current(), pb);
        });
        let b_arg = b_body.arg();
        let a_body = Inside::new(move || {
            assert_eq!(start(pb, b_arg), INSIDE_DONE);
        });
        assert_eq!(start(pa, a_body.arg()), INSIDE_DONE);
        b_body.rethrow();
        a_body.rethrow();
    }
);

row!(yield_from_own_main_rejected, [YIELD_FROM, YIELD_FROM], {
    // From main itself: refused, not fatal (unlike coroutine_yield).
    yield_from_refused(current());
});

row!(
    yield_from_other_threads_main_rejected,
    [YIELD_FROM, YIELD_FROM],
    {
        let other = OtherThread::spawn();
        yield_from_refused(other.leader);
    }
);

row!(yield_from_released_rejected, [YIELD_FROM, YIELD_FROM], {
    let co = Owned::small(return_7);
    // SAFETY: co is initialised and not running.
    assert_eq!(unsafe { sys::coroutine_release(co.ptr()) }, 0);
    yield_from_refused(co.ptr());
});

// ---------------------------------------------------------------------------
// The continuation layer: cc_init, cc_swap, cc_release
// ---------------------------------------------------------------------------

/// A continuation, the context that switches into it, and what it saw.
#[repr(C)]
struct CcPair {
    /// Must stay first: the entry gets a pointer to it.
    cc: sys::continuation,
    main: sys::continuation,
    /// Never set up: a `from` for refused switches.
    scratch: sys::continuation,
    steps: AtomicUsize,
    release_calls: AtomicUsize,
    release_ret: AtomicI32,
    /// (result, errno) of the cc_swap calls the entry made.
    seen: Mutex<Vec<(c_int, i32)>>,
}

impl CcPair {
    /// A pair in never-zeroed memory; `cc` gets `entry` and `stack_size`
    /// (and a counting release callback) but is not initialised.
    fn new(entry: Option<CcEntry>, stack_size: usize) -> *mut CcPair {
        let p: *mut CcPair = malloc_filled(0xA5);
        // SAFETY: p points to a writable CcPair-sized block; every field
        // that is read before cc_init or cc_swap sets it up is written here.
        unsafe {
            ptr::addr_of_mut!((*p).steps).write(AtomicUsize::new(0));
            ptr::addr_of_mut!((*p).release_calls).write(AtomicUsize::new(0));
            ptr::addr_of_mut!((*p).release_ret).write(AtomicI32::new(0));
            ptr::addr_of_mut!((*p).seen).write(Mutex::new(Vec::new()));
            (*p).cc.stack_size = stack_size;
            (*p).cc.entry = entry;
            (*p).cc.release = Some(count_cc_release);
        }
        p
    }

    /// cc_init of the pair's continuation; (result, errno).
    ///
    /// # Safety
    /// `p` must be live and its continuation neither running nor blocked.
    unsafe fn init(p: *mut CcPair) -> (c_int, i32) {
        // SAFETY: guaranteed by the caller.
        with_errno(|| unsafe { sys::cc_init(ptr::addr_of_mut!((*p).cc)) })
    }

    /// Switches from the pair's main context into its continuation.
    ///
    /// # Safety
    /// `p` must be live; the continuation's entry only touches `p`.
    unsafe fn enter(p: *mut CcPair) -> (c_int, i32) {
        // SAFETY: guaranteed by the caller; main is (re)captured as from.
        with_errno(|| unsafe {
            sys::cc_swap(ptr::addr_of_mut!((*p).main), ptr::addr_of_mut!((*p).cc))
        })
    }

    fn cc(p: *mut CcPair) -> Cc {
        // SAFETY: only the field's address is taken.
        unsafe { ptr::addr_of_mut!((*p).cc) }
    }

    fn steps(p: *mut CcPair) -> usize {
        // SAFETY: p is live while the test uses it.
        unsafe { (*p).steps.load(SeqCst) }
    }

    fn release_calls(p: *mut CcPair) -> usize {
        // SAFETY: p is live while the test uses it.
        unsafe { (*p).release_calls.load(SeqCst) }
    }

    fn seen(p: *mut CcPair) -> Vec<(c_int, i32)> {
        // SAFETY: p is live while the test uses it.
        let seen = unsafe { &(*p).seen };
        seen.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    fn exited(p: *mut CcPair) -> bool {
        // SAFETY: p is live; exited is the read-only out field.
        unsafe { (*p).cc.exited != 0 }
    }

    fn stack(p: *mut CcPair) -> *mut std::ffi::c_char {
        // SAFETY: p is live; stack is an out field.
        unsafe { (*p).cc.stack }
    }

    /// Releases (a no-op if already released) and frees the pair.
    ///
    /// # Safety
    /// The continuation must not be running nor blocked in cc_swap.
    unsafe fn free(p: *mut CcPair) {
        // SAFETY: guaranteed by the caller; the Mutex is dropped in place.
        unsafe {
            sys::cc_release(Self::cc(p));
            ptr::drop_in_place(ptr::addr_of_mut!((*p).seen));
            libc::free(p.cast());
        }
    }
}

type CcEntry = unsafe extern "C" fn(*mut sys::continuation);

/// Counts the call in the `CcPair` around `cc`; returns its `release_ret`.
///
/// # Safety
/// `cc` must be the `cc` field of a live `CcPair`.
unsafe extern "C" fn count_cc_release(cc: *mut sys::continuation) -> c_int {
    // SAFETY: guaranteed by the caller; cc is the first field of a repr(C) CcPair.
    let p = unsafe { &*cc.cast::<CcPair>() };
    p.release_calls.fetch_add(1, SeqCst);
    p.release_ret.load(SeqCst)
}

/// One step, a switch back to main, another step, then returns.
///
/// # Safety
/// `cc` must be the `cc` field of a live `CcPair` whose `main` switched in.
unsafe extern "C" fn cc_two_steps(cc: *mut sys::continuation) {
    let p = cc.cast::<CcPair>();
    // SAFETY: guaranteed by the caller; only shared references to the
    // atomics are made, the continuations are used through raw pointers.
    unsafe {
        (*p).steps.fetch_add(1, SeqCst);
        sys::cc_swap(cc, ptr::addr_of_mut!((*p).main));
        (*p).steps.fetch_add(1, SeqCst);
    }
}

/// Tries to switch into itself (as from, and from scratch), recording the
/// results, then returns.
///
/// # Safety
/// As for [`cc_two_steps`].
unsafe extern "C" fn cc_swap_into_itself(cc: *mut sys::continuation) {
    let p = cc.cast::<CcPair>();
    // SAFETY: guaranteed by the caller; both calls are documented to refuse
    // without switching.
    unsafe {
        (*p).steps.fetch_add(1, SeqCst);
        let first = with_errno(|| sys::cc_swap(cc, cc));
        let second = with_errno(|| sys::cc_swap(ptr::addr_of_mut!((*p).scratch), cc));
        let mut seen = (*p).seen.lock().unwrap_or_else(PoisonError::into_inner);
        seen.push(first);
        seen.push(second);
    }
}

/// A continuation that has run to its end (not released).
fn exited_cc() -> *mut CcPair {
    let p = CcPair::new(Some(cc_two_steps), 64 << 10);
    // SAFETY: p is fresh; its entry only touches p.
    unsafe {
        assert_eq!(CcPair::init(p).0, 0);
        assert_eq!(CcPair::enter(p).0, 0, "switched back");
        assert_eq!(CcPair::enter(p).0, 1, "exited");
    }
    assert!(CcPair::exited(p));
    p
}

row!(cc_init_null_rejected, [CC_INIT_NULL], {
    // SAFETY: NULL is documented as rejected.
    let (rc, err) = with_errno(|| unsafe { sys::cc_init(ptr::null_mut()) });
    assert_eq!((rc, err), (-1, libc::EINVAL));
});

row!(cc_init_never_initialised_memory_succeeds, [], {
    let p = CcPair::new(Some(cc_two_steps), 0);
    // SAFETY: p is fresh; its entry only touches p.
    unsafe {
        assert_eq!(CcPair::init(p).0, 0);
        assert_eq!((*p).cc.stack_size, DEFAULT_STACK);
        assert!(!CcPair::stack(p).is_null());
        assert_eq!(CcPair::enter(p).0, 0);
        assert_eq!(CcPair::enter(p).0, 1);
        assert_eq!(CcPair::steps(p), 2);
        CcPair::free(p);
    }
});

row!(cc_init_all_zero_rejected, [CC_INIT_NO_ENTRY], {
    let cc: Cc = malloc_filled(0);
    // SAFETY: cc is a live allocation of the right size.
    let (rc, err) = with_errno(|| unsafe { sys::cc_init(cc) });
    assert_eq!((rc, err), (-1, libc::EINVAL));
    // SAFETY: cc is ours.
    unsafe { libc::free(cc.cast()) };
});

row!(cc_init_null_entry_rejected, [CC_INIT_NO_ENTRY], {
    let p = CcPair::new(None, 0);
    // SAFETY: p is fresh.
    unsafe {
        assert_eq!(CcPair::init(p), (-1, libc::EINVAL));
        CcPair::free(p);
    }
});

row!(cc_init_stack_size_1_rounds_up, [], {
    let p = CcPair::new(Some(cc_two_steps), 1);
    // SAFETY: p is fresh; its entry only touches p.
    unsafe {
        assert_eq!(CcPair::init(p).0, 0);
        assert_eq!((*p).cc.stack_size, MIN_STACK.next_multiple_of(page_size()));
        assert_eq!(CcPair::enter(p).0, 0, "the rounded stack is usable");
        assert_eq!(CcPair::enter(p).0, 1);
        CcPair::free(p);
    }
});

row!(cc_init_stack_size_max_rejected, [], {
    let p = CcPair::new(Some(cc_two_steps), usize::MAX);
    // SAFETY: p is fresh.
    unsafe {
        assert_eq!(CcPair::init(p), (-1, libc::EINVAL));
        assert!(CcPair::stack(p).is_null());
        CcPair::free(p);
    }
});

row!(cc_init_exited_continuation_succeeds, [], {
    let p = exited_cc();
    // Re-initialised without cc_release: the old stack is not freed (the
    // continuation layer frees a stack only in cc_release).
    // SAFETY: the continuation has exited; its entry only touches p.
    unsafe {
        assert_eq!(CcPair::init(p).0, 0);
        assert!(!CcPair::exited(p));
        assert_eq!(CcPair::enter(p).0, 0);
        assert_eq!(CcPair::enter(p).0, 1);
        assert_eq!(CcPair::steps(p), 4, "the entry ran again");
        CcPair::free(p);
    }
});

row!(cc_init_released_continuation_succeeds, [], {
    let p = exited_cc();
    // SAFETY: the continuation has exited; its entry only touches p.
    unsafe {
        assert_eq!(sys::cc_release(CcPair::cc(p)), 0);
        assert_eq!(CcPair::init(p).0, 0);
        assert_eq!(CcPair::enter(p).0, 0);
        assert_eq!(CcPair::enter(p).0, 1);
        CcPair::free(p);
    }
});

row!(cc_swap_from_null_rejected, [CC_SWAP_FROM_NULL], {
    let p = CcPair::new(Some(cc_two_steps), 64 << 10);
    // SAFETY: p is fresh; the switch is documented as refused.
    unsafe {
        assert_eq!(CcPair::init(p).0, 0);
        let r = with_errno(|| sys::cc_swap(ptr::null_mut(), CcPair::cc(p)));
        assert_eq!(r, (-1, libc::EINVAL));
        assert_eq!(CcPair::steps(p), 0, "nothing ran");
        CcPair::free(p);
    }
});

row!(cc_swap_to_null_rejected, [CC_SWAP_TO_NULL], {
    let p = CcPair::new(None, 0);
    // SAFETY: documented as refused without switching.
    let r = with_errno(|| unsafe { sys::cc_swap(ptr::addr_of_mut!((*p).main), ptr::null_mut()) });
    assert_eq!(r, (-1, libc::EINVAL));
    // SAFETY: p was never initialised.
    unsafe { CcPair::free(p) };
});

row!(cc_swap_to_never_initialised_rejected, [CC_SWAP_UNINIT], {
    // The continuation has its in-fields set, but no cc_init.
    let p = CcPair::new(Some(cc_two_steps), 0);
    // SAFETY: documented as refused without switching.
    let r = unsafe { CcPair::enter(p) };
    assert_eq!(r, (-1, libc::EINVAL));
    assert_eq!(CcPair::steps(p), 0);
    // SAFETY: p was never initialised.
    unsafe { CcPair::free(p) };
});

row!(cc_swap_to_all_zero_rejected, [CC_SWAP_UNINIT], {
    let p = CcPair::new(None, 0);
    let to: Cc = malloc_filled(0);
    // SAFETY: documented as refused without switching.
    let r = with_errno(|| unsafe { sys::cc_swap(ptr::addr_of_mut!((*p).main), to) });
    assert_eq!(r, (-1, libc::EINVAL));
    // SAFETY: both are ours, never initialised.
    unsafe {
        libc::free(to.cast());
        CcPair::free(p);
    }
});

row!(cc_swap_to_exited_rejected, [CC_SWAP_EXITED], {
    let p = exited_cc();
    // SAFETY: documented as refused without switching.
    let r = unsafe { CcPair::enter(p) };
    assert_eq!(r, (-1, libc::EINVAL));
    assert_eq!(CcPair::steps(p), 2);
    // SAFETY: exited, not running.
    unsafe { CcPair::free(p) };
});

row!(
    cc_swap_to_itself_rejected,
    [CC_SWAP_RUNNING, CC_SWAP_RUNNING, CC_SWAP_RUNNING],
    {
        // Not started yet: from == to.
        let p = CcPair::new(Some(cc_swap_into_itself), 64 << 10);
        // SAFETY: p is fresh; the first switch is documented as refused, the
        // second runs the entry, which only touches p.
        unsafe {
            assert_eq!(CcPair::init(p).0, 0);
            let r = with_errno(|| sys::cc_swap(CcPair::cc(p), CcPair::cc(p)));
            assert_eq!(r, (-1, libc::EINVAL));
            assert_eq!(CcPair::steps(p), 0);
            // Running: into itself as from, and from a never-set-up scratch.
            assert_eq!(CcPair::enter(p).0, 1, "the entry returned");
            assert_eq!(CcPair::steps(p), 1);
            assert_eq!(CcPair::seen(p), [(-1, libc::EINVAL), (-1, libc::EINVAL)]);
            CcPair::free(p);
        }
    }
);

row!(cc_swap_to_failed_init_rejected, [CC_SWAP_UNINIT], {
    let p = CcPair::new(Some(cc_two_steps), usize::MAX);
    // SAFETY: p is fresh; the switch is documented as refused.
    unsafe {
        assert_eq!(CcPair::init(p), (-1, libc::EINVAL));
        assert_eq!(CcPair::enter(p), (-1, libc::EINVAL));
        assert_eq!(CcPair::steps(p), 0);
        CcPair::free(p);
    }
});

#[test]
fn cc_swap_to_released_rejected() {
    in_child_expecting(
        "cc_swap_to_released_rejected",
        || {
            let p = CcPair::new(Some(cc_two_steps), 64 << 10);
            // SAFETY: p is fresh; the switch into the released continuation is
            // what the documentation must refuse.
            unsafe {
                assert_eq!(CcPair::init(p).0, 0);
                assert_eq!(sys::cc_release(CcPair::cc(p)), 0);
                assert_eq!(CcPair::enter(p), (-1, libc::EINVAL));
                assert_eq!(CcPair::steps(p), 0);
                CcPair::free(p);
            }
        },
        &["cc_swap: assertion 'to is initialised' failed"],
    );
}

#[test]
fn cc_swap_to_released_suspended_rejected() {
    in_child_expecting(
        "cc_swap_to_released_suspended_rejected",
        || {
            let p = CcPair::new(Some(cc_two_steps), 64 << 10);
            // SAFETY: p is fresh; its entry only touches p; the last switch is
            // what the documentation must refuse.
            unsafe {
                assert_eq!(CcPair::init(p).0, 0);
                assert_eq!(CcPair::enter(p).0, 0, "suspended in its swap");
                assert_eq!(sys::cc_release(CcPair::cc(p)), 0);
                assert_eq!(CcPair::enter(p), (-1, libc::EINVAL));
                assert_eq!(CcPair::steps(p), 1, "nothing ran on the freed stack");
                CcPair::free(p);
            }
        },
        &["cc_swap: assertion 'to is initialised' failed"],
    );
}

row!(cc_release_null_is_a_no_op, [], {
    // SAFETY: NULL is documented as nothing to free.
    assert_eq!(unsafe { sys::cc_release(ptr::null_mut()) }, 0);
});

row!(cc_release_never_initialised_is_a_no_op, [], {
    // In-fields set (with the counting callback), no cc_init.
    let p = CcPair::new(Some(cc_two_steps), 0);
    // SAFETY: never initialised: documented as nothing to free.
    assert_eq!(unsafe { sys::cc_release(CcPair::cc(p)) }, 0);
    assert_eq!(CcPair::release_calls(p), 0, "the callback must not run");
    // SAFETY: p is ours.
    unsafe { CcPair::free(p) };
});

row!(cc_release_all_zero_is_a_no_op, [], {
    let cc: Cc = malloc_filled(0);
    // SAFETY: never initialised: documented as nothing to free.
    assert_eq!(unsafe { sys::cc_release(cc) }, 0);
    // SAFETY: cc is ours.
    unsafe { libc::free(cc.cast()) };
});

row!(cc_release_after_failed_init_is_a_no_op, [], {
    let p = CcPair::new(Some(cc_two_steps), usize::MAX);
    // SAFETY: p is fresh.
    unsafe {
        assert_eq!(CcPair::init(p).0, -1);
        assert_eq!(sys::cc_release(CcPair::cc(p)), 0);
    }
    assert_eq!(CcPair::release_calls(p), 0, "the callback must not run");
    // SAFETY: p is ours.
    unsafe { CcPair::free(p) };
});

row!(cc_release_exited_frees_the_stack, [], {
    let p = exited_cc();
    assert!(
        !CcPair::stack(p).is_null(),
        "an exit alone frees nothing here"
    );
    assert_eq!(CcPair::release_calls(p), 0);
    // SAFETY: exited, not running.
    assert_eq!(unsafe { sys::cc_release(CcPair::cc(p)) }, 0);
    assert!(CcPair::stack(p).is_null());
    assert_eq!(CcPair::release_calls(p), 1);
    // SAFETY: p is ours.
    unsafe { CcPair::free(p) };
});

row!(cc_release_twice_is_a_no_op, [], {
    let p = CcPair::new(Some(cc_two_steps), 64 << 10);
    // SAFETY: p is fresh, initialised and never run.
    unsafe {
        assert_eq!(CcPair::init(p).0, 0);
        assert_eq!(sys::cc_release(CcPair::cc(p)), 0);
        assert_eq!(sys::cc_release(CcPair::cc(p)), 0);
    }
    assert_eq!(CcPair::release_calls(p), 1, "the callback runs once");
    // SAFETY: p is ours.
    unsafe { CcPair::free(p) };
});

row!(cc_release_negative_callback_keeps_the_stack, [], {
    let p = CcPair::new(Some(cc_two_steps), 64 << 10);
    // SAFETY: p is fresh, initialised and never run.
    unsafe {
        assert_eq!(CcPair::init(p).0, 0);
        (*p).release_ret.store(-5, SeqCst);
        assert_eq!(sys::cc_release(CcPair::cc(p)), -5);
        assert!(!CcPair::stack(p).is_null(), "nothing freed");
        (*p).release_ret.store(0, SeqCst);
        assert_eq!(sys::cc_release(CcPair::cc(p)), 0);
        assert!(CcPair::stack(p).is_null());
    }
    assert_eq!(CcPair::release_calls(p), 2);
    // SAFETY: p is ours.
    unsafe { CcPair::free(p) };
});

// ---------------------------------------------------------------------------
// Other functions
// ---------------------------------------------------------------------------

row!(is_main_of_null_garbage_and_other_main_is_false, [], {
    let garbage = filled_co(0xA5);
    let other = OtherThread::spawn();
    assert!(!is_main(ptr::null_mut()));
    assert!(!is_main(garbage));
    assert!(!is_main(other.leader));
    // SAFETY: garbage is ours.
    unsafe { libc::free(garbage.cast()) };
});

row!(stack_used_of_bad_input_is_zero, [], {
    let garbage = filled_co(0xA5);
    let released = Owned::small(return_7);
    // SAFETY: released is initialised and not running.
    assert_eq!(unsafe { sys::coroutine_release(released.ptr()) }, 0);
    let done = exited_coroutine();
    // SAFETY: documented to return 0 for each of these.
    let used = unsafe {
        [
            sys::ucoro_stack_used(ptr::null_mut()),
            sys::ucoro_stack_used(garbage),
            sys::ucoro_stack_used(released.ptr()),
            sys::ucoro_stack_used(done.ptr()),
        ]
    };
    assert_eq!(used, [0; 4]);
    // SAFETY: garbage is ours.
    unsafe { libc::free(garbage.cast()) };
});

// ---------------------------------------------------------------------------
// The safe API: misuse that compiles is a typed error (or a panic in the
// caller of resume); nothing aborts, nothing is printed but where noted.
// ---------------------------------------------------------------------------

row!(safe_resume_after_return_is_finished, [], {
    let drops = Rc::new(Cell::new(0));
    let mut co = Coroutine::new(|_: &Yielder<DropCounter, ()>, _first: DropCounter| 7);
    let r = co.resume(DropCounter(drops.clone()));
    assert!(matches!(r, Ok(CoroutineResult::Return(7))));
    assert_eq!(drops.get(), 1);
    for _ in 0..2 {
        assert!(matches!(
            co.resume(DropCounter(drops.clone())),
            Err(Error::Finished)
        ));
    }
    assert_eq!(drops.get(), 3, "the refused inputs are dropped");
    assert!(co.is_finished());
});

row!(safe_resume_after_panic_is_finished, [], {
    let mut co = Coroutine::new(|y: &Yielder<(), u8>, ()| {
        y.suspend(1);
        panic!("boom");
    });
    assert!(matches!(co.resume(()), Ok(CoroutineResult::Yield(1))));
    let err = panic::catch_unwind(AssertUnwindSafe(|| co.resume(()))).unwrap_err();
    assert_eq!(panic_message(&*err), "boom");
    assert!(matches!(co.resume(()), Err(Error::Finished)));
});

row!(safe_builder_stack_size_max_is_an_error, [], {
    let r = Builder::new()
        .stack_size(usize::MAX)
        .build(|_: &Yielder<(), ()>, ()| ());
    match r {
        Err(Error::StackAllocation { size, source }) => {
            assert_eq!(size, usize::MAX);
            assert_eq!(source.raw_os_error(), Some(libc::EINVAL));
        }
        other => panic!("expected StackAllocation, got {other:?}"),
    }
});

row!(safe_builder_unmappable_stack_is_an_error, [], {
    let r = Builder::new()
        .stack_size(UNMAPPABLE)
        .build(|_: &Yielder<(), ()>, ()| ());
    match r {
        Err(Error::StackAllocation { size, source }) => {
            assert_eq!(size, UNMAPPABLE);
            assert_eq!(source.raw_os_error(), Some(libc::ENOMEM));
        }
        other => panic!("expected StackAllocation, got {other:?}"),
    }
});

row!(safe_builder_stack_size_1_rounds_up, [], {
    let mut co = Builder::new()
        .stack_size(1)
        .build(|y: &Yielder<(), u8>, ()| y.suspend(3))
        .expect("a 1-byte stack is rounded up");
    // The safe API's minimum: room for a panic with a full backtrace.
    assert_eq!(
        co.stack_size(),
        (64_usize << 10).next_multiple_of(page_size())
    );
    assert!(matches!(co.resume(()), Ok(CoroutineResult::Yield(3))));
    assert!(matches!(co.resume(()), Ok(CoroutineResult::Return(()))));
});

row!(safe_generator_with_absurd_stack_is_an_error, [], {
    let r = Generator::with_builder(Builder::new().stack_size(usize::MAX), |y| {
        y.suspend(1u8);
    });
    assert!(matches!(r, Err(Error::StackAllocation { .. })));
});

row!(safe_generator_after_its_end_yields_none, [], {
    let mut g = Generator::new(|y| {
        y.suspend(1u8);
        "done"
    });
    assert_eq!(g.next(), Some(1));
    assert_eq!(g.next(), None);
    assert_eq!(g.next(), None, "and stays ended");
    assert_eq!(g.take_return(), Some("done"));
    assert_eq!(g.take_return(), None);
});

row!(safe_resume_inside_itself_is_refused_by_the_borrow, [], {
    // A coroutine can reach itself only through shared ownership with a
    // runtime borrow check: the RefCell refuses the nested resume before
    // ucoro sees it (Error::Running is unreachable from safe code).
    type SelfRef = Coroutine<(), (), bool>;
    let cell: Rc<RefCell<Option<SelfRef>>> = Rc::new(RefCell::new(None));
    let inner = cell.clone();
    let co: SelfRef = Coroutine::new(move |_, ()| inner.try_borrow_mut().is_err());
    *cell.borrow_mut() = Some(co);
    let r = cell.borrow_mut().as_mut().unwrap().resume(());
    assert!(
        matches!(r, Ok(CoroutineResult::Return(true))),
        "the nested borrow must fail: {r:?}"
    );
});
