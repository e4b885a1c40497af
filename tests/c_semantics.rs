//! SPEC §2 (the C API: "Semantics", "Threads", "Diagnostics", "Names"),
//! checked bullet by bullet through the raw bindings in `ucoro::sys`.
//!
//! How these tests are built:
//!
//! - Entry functions are `extern "C"`, so a panic inside one would abort the
//!   whole binary. Coroutines therefore never assert: they write what they
//!   observe into a [`Log`] (or a counter), and the test asserts on it from
//!   its thread's main context.
//! - Every coroutine struct comes from `malloc` and is filled with 0xA5
//!   before `coroutine_init` (see [`garbage_co`]): init must cope with
//!   memory that was never zeroed everywhere, not only in the test for it.
//! - Misuse messages go to stderr or to the one process-wide diagnostic
//!   handler, and `coroutine_yield` from main aborts. Tests that trigger any
//!   of that re-run this binary for themselves alone with
//!   `UCORO_CHILD=<test name>` (see [`child`]) and check the child's stderr
//!   and exit status. No in-process test triggers a diagnostic or installs a
//!   handler, so the tests need no lock between them.
#![warn(clippy::undocumented_unsafe_blocks)]
#![deny(unsafe_op_in_unsafe_fn)]

use std::env;
use std::ffi::{c_char, c_void, CStr};
use std::io;
use std::path::Path;
use std::process::Command;
use std::ptr;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Barrier, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use ucoro::sys;

mod common;
use common::{
    arg, assert_child_aborted, assert_child_passed, child, clear_errno, count_runs, current,
    describe, diagnostics, errno, filled_co, garbage_co, in_child_expecting, in_own_process,
    init_with, is_main, num, page_size, return_7, tracked, val, vm_size_kib, with_errno, Co, Entry,
    Owned, SendPtr, DEFAULT_STACK, MIN_STACK, UNMAPPABLE, YIELDTO_CALLER, YIELDTO_EXITED,
    YIELDTO_NULL, YIELDTO_UNINIT, YIELD_TO_NO_ONE,
};

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// Whether every page of `[addr, addr + len)` is mapped (`addr` page-aligned).
fn is_mapped(addr: *mut c_void, len: usize) -> bool {
    let pages = len.div_ceil(page_size());
    let mut vec = vec![0u8; pages];
    // SAFETY: mincore only inspects the mapping and writes `pages` bytes into vec.
    let rc = unsafe { libc::mincore(addr, len, vec.as_mut_ptr()) };
    rc == 0
}

/// What coroutines observed, in order. Coroutines record here instead of
/// asserting (a panic cannot leave an `extern "C"` entry).
#[derive(Default)]
struct Log(Mutex<Vec<String>>);

impl Log {
    fn push(&self, event: impl Into<String>) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(event.into());
    }

    /// Records a failed expectation; the exact-sequence assertion on the log
    /// then shows it.
    fn check(&self, ok: bool, what: impl FnOnce() -> String) {
        if !ok {
            self.push(format!("FAILED: {}", what()));
        }
    }

    /// Records whether `co` is the running coroutine (and not main).
    fn check_self(&self, co: Co, at: &str) {
        let now = current();
        self.check(now == co && !is_main(now), || {
            format!("{at}: coroutine_self() is {now:p}, expected {co:p}")
        });
    }

    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// The coroutines of a test and its log; entries get `&World` as their first
/// argument.
struct World {
    log: Log,
    main: Co,
    a: Co,
    b: Co,
    c: Co,
}

impl World {
    fn new(a: Co, b: Co, c: Co) -> Self {
        World {
            log: Log::default(),
            main: current(),
            a,
            b,
            c,
        }
    }
}

/// # Safety
/// `arg` must point to a `World` that outlives the returned reference.
unsafe fn world<'a>(arg: *mut c_void) -> &'a World {
    // SAFETY: guaranteed by the caller.
    unsafe { &*arg.cast::<World>() }
}

// ---------------------------------------------------------------------------
// Shared entries (more in common: return_7, count_runs)
// ---------------------------------------------------------------------------

/// Yields 1, then returns what it was resumed with plus 1.
extern "C" fn yield_once(_arg: *mut c_void) -> *mut c_void {
    // SAFETY: this entry runs as a coroutine resumed by yieldto, so it has a caller.
    let resumed = unsafe { sys::coroutine_yield(val(1)) };
    val(num(resumed) + 1)
}

/// Starts `co` with `first` and returns what comes back: its result, for
/// entries that return without yielding.
///
/// # Safety
/// `co` must be an initialised, unstarted coroutine whose entry touches
/// nothing but what `first` points to, which must outlive the call.
unsafe fn run_to_exit(co: Co, first: *mut c_void) -> usize {
    // SAFETY: guaranteed by the caller.
    num(unsafe { sys::coroutine_yieldto(co, first) })
}

// ---------------------------------------------------------------------------
// init
// ---------------------------------------------------------------------------

#[test]
fn init_accepts_never_zeroed_memory() {
    for byte in [0xA5u8, 0xFF, 0x5A] {
        let co = filled_co(byte);
        let runs = AtomicUsize::new(0);
        // SAFETY: co is a fresh malloc'd struct of the right size.
        let (rc, err) = unsafe { init_with(co, Some(count_runs), 64 << 10) };
        assert_eq!(
            rc,
            0,
            "init on 0x{byte:02X} garbage failed: {}",
            io::Error::from_raw_os_error(err)
        );
        // SAFETY: co is a live allocation.
        let (exited, caller) = unsafe { ((*co).exited, (*co).caller) };
        assert_eq!(exited, 0, "init must reset exited (garbage 0x{byte:02X})");
        assert!(
            caller.is_null(),
            "init must reset caller (garbage 0x{byte:02X})"
        );
        // Garbage left in a private field (caller, magic, the continuation)
        // would make yieldto refuse or crash here.
        // SAFETY: co is initialised and unstarted; count_runs only touches `runs`, which outlives the call.
        let r = unsafe { run_to_exit(co, arg(&runs)) };
        assert_eq!(r, 0x600D);
        assert_eq!(runs.load(SeqCst), 1);
        // SAFETY: co has exited; then the memory is ours to free.
        unsafe {
            assert_eq!((*co).exited, 1);
            assert_eq!(sys::coroutine_release(co), 0);
            libc::free(co.cast());
        }
    }
}

#[test]
fn init_does_not_run_entry() {
    let runs = AtomicUsize::new(0);
    let co = Owned::new(count_runs);
    assert_eq!(runs.load(SeqCst), 0, "entry ran during init");
    assert!(!co.exited());
    // SAFETY: co is initialised and unstarted; count_runs only touches `runs`, which outlives the call.
    let r = unsafe { run_to_exit(co.ptr(), arg(&runs)) };
    assert_eq!(r, 0x600D);
    assert_eq!(
        runs.load(SeqCst),
        1,
        "entry runs at the first yieldto, once"
    );
}

#[test]
fn init_writes_default_stack_size_back() {
    let co = Owned::with_stack(return_7, 0);
    // SAFETY: co.ptr() is a live allocation.
    let size = unsafe { (*co.ptr()).stack_size };
    assert_eq!(
        size, DEFAULT_STACK,
        "stack_size 0 must become the 16 MiB default"
    );
    // SAFETY: co is initialised and unstarted; the entry (return_7) touches nothing.
    let r = unsafe { run_to_exit(co.ptr(), ptr::null_mut()) };
    assert_eq!(r, 7);

    // A page-multiple request is used as is and written back unchanged.
    let co = Owned::with_stack(return_7, 1 << 20);
    // SAFETY: co.ptr() is a live allocation.
    let size = unsafe { (*co.ptr()).stack_size };
    assert_eq!(size, 1 << 20);

    // An odd request is rounded up to whole pages, and the result written back.
    let co = Owned::with_stack(return_7, 100_001);
    // SAFETY: co.ptr() is a live allocation.
    let size = unsafe { (*co.ptr()).stack_size };
    assert!(
        size >= 100_001 && size % page_size() == 0,
        "stack_size written back: {size}"
    );
    // SAFETY: co is initialised and unstarted; the entry (return_7) touches nothing.
    let r = unsafe { run_to_exit(co.ptr(), ptr::null_mut()) };
    assert_eq!(r, 7);
}

#[test]
fn init_rounds_tiny_stack_up() {
    let co = Owned::with_stack(return_7, 1);
    // SAFETY: co.ptr() is a live allocation.
    let size = unsafe { (*co.ptr()).stack_size };
    assert!(
        size >= MIN_STACK,
        "1-byte stack must be rounded up to >= 16 KiB, got {size}"
    );
    assert_eq!(
        size % page_size(),
        0,
        "rounded size must be whole pages: {size}"
    );
    // SAFETY: co is initialised and unstarted; the entry (return_7) touches nothing.
    let r = unsafe { run_to_exit(co.ptr(), ptr::null_mut()) };
    assert_eq!(r, 7, "the rounded stack must be usable");
    assert!(co.exited());
}

#[test]
fn init_rejects_absurd_stack_size() {
    for size in [usize::MAX, usize::MAX - page_size() + 1] {
        let co = garbage_co();
        // SAFETY: co is a fresh malloc'd struct of the right size.
        let (rc, err) = unsafe { init_with(co, Some(return_7), size) };
        assert_eq!(rc, -1, "init with stack_size {size:#x} must fail");
        assert_eq!(err, libc::EINVAL, "errno for stack_size {size:#x}");
        // SAFETY: co is ours and was never successfully initialised.
        unsafe { libc::free(co.cast()) };
    }
}

#[test]
fn init_fails_with_enomem_when_memory_is_refused() {
    // Rounds up without overflow, but no address space is that large.
    let co = garbage_co();
    // SAFETY: co is a fresh malloc'd struct of the right size.
    let (rc, err) = unsafe { init_with(co, Some(return_7), UNMAPPABLE) };
    assert_eq!(rc, -1, "a 1 EiB stack cannot be mapped");
    assert_eq!(err, libc::ENOMEM);
    // SAFETY: co is ours and was never successfully initialised.
    unsafe { libc::free(co.cast()) };
}

#[test]
fn init_rejects_missing_entry() {
    let Some(out) = child("init_rejects_missing_entry", || {
        let co = garbage_co();
        // SAFETY: co is a fresh malloc'd struct of the right size.
        let (rc, err) = unsafe { init_with(co, None, 0) };
        assert_eq!(rc, -1);
        assert_eq!(err, libc::EINVAL);
        // SAFETY: co is ours and was never successfully initialised.
        unsafe { libc::free(co.cast()) };
    }) else {
        return;
    };
    assert_child_passed(&out);
    let diags = diagnostics(&out);
    assert!(
        diags.len() == 1 && diags[0].starts_with("coroutine_init: assertion '"),
        "one coroutine_init diagnostic expected:\n{}",
        describe(&out)
    );
}

#[test]
fn init_resets_an_exited_coroutine() {
    let runs = AtomicUsize::new(0);
    let co = Owned::with_stack(count_runs, 1 << 20);
    // SAFETY: co is initialised and unstarted; count_runs only touches `runs`, which outlives the call.
    let r = unsafe { run_to_exit(co.ptr(), arg(&runs)) };
    assert_eq!(r, 0x600D);
    assert!(co.exited());

    let again = AtomicUsize::new(0);
    // SAFETY: co has exited (its stack is gone); init may reuse the struct.
    let (rc, err) = unsafe { init_with(co.ptr(), Some(yield_once), 0) };
    assert_eq!(
        rc,
        0,
        "re-init of an exited coroutine: {}",
        io::Error::from_raw_os_error(err)
    );
    assert!(!co.exited(), "init must clear exited");
    assert!(co.caller().is_null());
    // SAFETY: co.ptr() is a live allocation.
    assert_eq!(unsafe { (*co.ptr()).stack_size }, DEFAULT_STACK);
    // SAFETY: co is initialised and not started; yield_once touches nothing.
    let first = unsafe { sys::coroutine_yieldto(co.ptr(), arg(&again)) };
    assert_eq!(num(first), 1, "the new entry must run");
    // SAFETY: co is suspended in coroutine_yield with no caller.
    let last = unsafe { sys::coroutine_yieldto(co.ptr(), val(41)) };
    assert_eq!(num(last), 42);
    assert!(co.exited());
    assert_eq!(runs.load(SeqCst), 1, "the old entry must not run again");
}

// ---------------------------------------------------------------------------
// yieldto / yield / exit
// ---------------------------------------------------------------------------

struct ArgProbe {
    seen: AtomicUsize,
    runs: AtomicUsize,
}

extern "C" fn record_arg(arg: *mut c_void) -> *mut c_void {
    // SAFETY: the test passes a pointer to its live ArgProbe.
    let probe = unsafe { &*arg.cast::<ArgProbe>() };
    probe.seen.store(num(arg), SeqCst);
    probe.runs.fetch_add(1, SeqCst);
    val(0)
}

#[test]
fn yieldto_runs_entry_with_arg() {
    let probe = ArgProbe {
        seen: AtomicUsize::new(0),
        runs: AtomicUsize::new(0),
    };
    let co = Owned::new(record_arg);
    // SAFETY: co is initialised and unstarted; the entry only touches `probe`, which outlives the call.
    unsafe { run_to_exit(co.ptr(), arg(&probe)) };
    assert_eq!(probe.runs.load(SeqCst), 1, "entry must run once");
    assert_eq!(
        probe.seen.load(SeqCst),
        num(arg(&probe)),
        "entry must receive yieldto's arg"
    );
}

struct StackProbe {
    local: AtomicUsize,
}

/// Where the running code's stack is: the stack pointer itself where we can
/// read it (a local's address would be off the real stack under
/// AddressSanitizer's use-after-return detection, which moves locals to
/// "fake stacks" on the heap), else a local's address.
#[inline(always)]
fn stack_position() -> usize {
    #[cfg(target_arch = "x86_64")]
    {
        let sp: usize;
        // SAFETY: reads rsp into a register; touches no memory.
        unsafe { std::arch::asm!("mov {}, rsp", out(reg) sp, options(nomem, nostack)) };
        sp
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let local = 0u8;
        std::hint::black_box(&local) as *const u8 as usize
    }
}

extern "C" fn probe_stack(arg: *mut c_void) -> *mut c_void {
    // SAFETY: the test passes a pointer to its live StackProbe.
    let probe = unsafe { &*arg.cast::<StackProbe>() };
    probe.local.store(stack_position(), SeqCst);
    val(0)
}

#[test]
fn entry_runs_on_its_own_stack() {
    let probe = StackProbe {
        local: AtomicUsize::new(0),
    };
    let co = Owned::with_stack(probe_stack, 256 << 10);
    // SAFETY: co.ptr() is a live allocation; cc describes its stack until exit.
    let (lo, size) = unsafe { ((*co.ptr()).cc.stack as usize, (*co.ptr()).cc.stack_size) };
    assert!(lo != 0 && size >= 256 << 10);
    // SAFETY: co is initialised and unstarted; the entry only touches `probe`, which outlives the call.
    unsafe { run_to_exit(co.ptr(), arg(&probe)) };
    let at = probe.local.load(SeqCst);
    assert!(
        (lo..lo + size).contains(&at),
        "entry's local at {at:#x} is not on the coroutine stack {lo:#x}..{:#x}",
        lo + size
    );
}

extern "C" fn yield_three_times(_arg: *mut c_void) -> *mut c_void {
    for v in [11, 22, 33] {
        // SAFETY: this coroutine was entered through yieldto, so it has a caller.
        unsafe { sys::coroutine_yield(val(v)) };
    }
    val(44)
}

#[test]
fn yield_returns_value_to_caller() {
    let co = Owned::new(yield_three_times);
    let mut got = Vec::new();
    for _ in 0..4 {
        // SAFETY: co is unstarted or suspended with no caller; its entry touches nothing.
        let r = unsafe { sys::coroutine_yieldto(co.ptr(), ptr::null_mut()) };
        got.push(num(r));
        assert!(is_main(current()), "control must be back in main");
    }
    assert_eq!(got, [11, 22, 33, 44]);
}

extern "C" fn echo_sum(arg: *mut c_void) -> *mut c_void {
    // SAFETY: the test passes a pointer to its World first.
    let w = unsafe { world(arg) };
    // SAFETY: entered through yieldto, so this coroutine has a caller.
    let x = unsafe { sys::coroutine_yield(val(1)) };
    w.log.push(format!("first yield returned {}", num(x)));
    // SAFETY: resumed through yieldto, so it has a caller again.
    let y = unsafe { sys::coroutine_yield(val(2)) };
    w.log.push(format!("second yield returned {}", num(y)));
    val(num(x) + num(y))
}

#[test]
fn yield_returns_the_next_yieldto_arg() {
    let co = Owned::new(echo_sum);
    let w = World::new(co.ptr(), ptr::null_mut(), ptr::null_mut());
    // SAFETY: co is initialised; echo_sum only touches w, which outlives it.
    let r1 = unsafe { sys::coroutine_yieldto(co.ptr(), arg(&w)) };
    // SAFETY: co is suspended in coroutine_yield with no caller.
    let r2 = unsafe { sys::coroutine_yieldto(co.ptr(), val(100)) };
    // SAFETY: as above.
    let r3 = unsafe { sys::coroutine_yieldto(co.ptr(), val(200)) };
    assert_eq!([num(r1), num(r2), num(r3)], [1, 2, 300]);
    assert_eq!(
        w.log.take(),
        ["first yield returned 100", "second yield returned 200"]
    );
}

#[test]
fn yieldto_returns_entry_result_and_marks_exited() {
    let co = Owned::new(yield_once);
    // SAFETY: co is initialised; yield_once touches nothing.
    let first = unsafe { sys::coroutine_yieldto(co.ptr(), ptr::null_mut()) };
    assert_eq!(num(first), 1);
    assert!(!co.exited(), "a suspended coroutine has not exited");
    assert!(co.caller().is_null(), "yield clears the caller");
    // SAFETY: co is suspended with no caller.
    let last = unsafe { sys::coroutine_yieldto(co.ptr(), val(9)) };
    assert_eq!(num(last), 10, "yieldto returns the entry's return value");
    assert!(co.exited(), "exited becomes 1 when entry returns");
    assert!(co.caller().is_null(), "exit clears the caller");
    assert!(is_main(current()));
}

extern "C" fn yield_then_report(arg: *mut c_void) -> *mut c_void {
    // SAFETY: the test passes a pointer to its World first.
    let w = unsafe { world(arg) };
    // SAFETY: entered through yieldto, so this coroutine has a caller.
    let r = unsafe { sys::coroutine_yield(val(0xA1)) };
    w.log.push(format!("A resumed with {}", num(r)));
    w.log.check_self(w.a, "A after first resume");
    // SAFETY: resumed through yieldto, so it has a caller.
    let r = unsafe { sys::coroutine_yield(val(0xA2)) };
    w.log.push(format!("A resumed with {}", num(r)));
    val(0xA3)
}

extern "C" fn resume_a_from_b(arg: *mut c_void) -> *mut c_void {
    // SAFETY: the test passes a pointer to its World first.
    let w = unsafe { world(arg) };
    // SAFETY: w.a is suspended with no caller; this coroutine becomes its caller.
    let r = unsafe { sys::coroutine_yieldto(w.a, val(0xB0)) };
    w.log.push(format!("B got {:#x} from A", num(r)));
    w.log.check_self(w.b, "B after A yielded");
    val(0xB1)
}

#[test]
fn yield_clears_caller_so_anyone_may_resume() {
    in_own_process("yield_clears_caller_so_anyone_may_resume", || {
        let a = Owned::new(yield_then_report);
        let b = Owned::new(resume_a_from_b);
        let w = World::new(a.ptr(), b.ptr(), ptr::null_mut());
        // SAFETY: a is initialised; its entry only touches w, which outlives it.
        let r = unsafe { sys::coroutine_yieldto(a.ptr(), arg(&w)) };
        assert_eq!(num(r), 0xA1);
        assert!(a.caller().is_null(), "yield must clear the caller");
        // B (not main, which started A) resumes A; A's yield goes back to B.
        // SAFETY: b is initialised; its entry only touches w and a, which outlive it.
        let r = unsafe { sys::coroutine_yieldto(b.ptr(), arg(&w)) };
        assert_eq!(num(r), 0xB1, "B finishes and returns to main");
        assert!(b.exited());
        assert!(a.caller().is_null());
        // SAFETY: a is suspended with no caller.
        let r = unsafe { sys::coroutine_yieldto(a.ptr(), val(0xC0)) };
        assert_eq!(num(r), 0xA3);
        assert!(a.exited());
        assert_eq!(
            w.log.take(),
            [
                "A resumed with 176",
                "B got 0xa2 from A",
                "A resumed with 192"
            ]
        );
    });
}

extern "C" fn parent_a(arg: *mut c_void) -> *mut c_void {
    // SAFETY: the test passes a pointer to its World first.
    let w = unsafe { world(arg) };
    w.log.push("A start");
    // SAFETY: w.b is initialised and unstarted; its entry only touches w.
    let r = unsafe { sys::coroutine_yieldto(w.b, arg) };
    w.log.push(format!("A got {} from B", num(r)));
    w.log.check_self(w.a, "A after B yielded");
    // Return while B is suspended.
    val(0xA)
}

extern "C" fn child_b(arg: *mut c_void) -> *mut c_void {
    // SAFETY: the test passes a pointer to its World first.
    let w = unsafe { world(arg) };
    w.log.push("B start");
    // SAFETY: entered through yieldto (by A), so B has a caller.
    let r = unsafe { sys::coroutine_yield(val(1)) };
    w.log.push(format!("B resumed with {}", num(r)));
    w.log.check_self(w.b, "B after resume");
    val(0xB)
}

#[test]
fn parent_exit_returns_to_its_caller() {
    in_own_process("parent_exit_returns_to_its_caller", || {
        let a = Owned::new(parent_a);
        let b = Owned::new(child_b);
        let w = World::new(a.ptr(), b.ptr(), ptr::null_mut());
        // SAFETY: a is initialised; A and B only touch w, which outlives them.
        let r = unsafe { sys::coroutine_yieldto(a.ptr(), arg(&w)) };
        assert_eq!(num(r), 0xA, "main's yieldto(A) must return A's result");
        assert!(
            current() == w.main && is_main(current()),
            "control must be back in main"
        );
        assert!(a.exited());
        assert!(!b.exited(), "B is still suspended");
        assert!(b.caller().is_null());
        assert_eq!(w.log.take(), ["A start", "B start", "A got 1 from B"]);

        // SAFETY: b is suspended in coroutine_yield with no caller.
        let r = unsafe { sys::coroutine_yieldto(b.ptr(), val(7)) };
        assert_eq!(num(r), 0xB, "B must finish when main resumes it");
        assert!(b.exited());
        assert_eq!(w.log.take(), ["B resumed with 7"]);
        assert!(is_main(current()));
    });
}

// ---------------------------------------------------------------------------
// Nesting
// ---------------------------------------------------------------------------

struct Nest {
    log: Log,
    main: Co,
    levels: Vec<Co>,
}

/// The first argument of level `idx`; the levels' arguments sit in one
/// slice, so level i passes `self + 1` to level i + 1.
struct LevelArg {
    nest: *const Nest,
    idx: usize,
}

extern "C" fn level(arg: *mut c_void) -> *mut c_void {
    // SAFETY: the test passes a pointer into its live slice of LevelArgs.
    let me = unsafe { &*arg.cast::<LevelArg>() };
    // SAFETY: me.nest points to the test's Nest, which outlives every level.
    let nest = unsafe { &*me.nest };
    let i = me.idx;
    let co = nest.levels[i];
    let child = nest.levels.get(i + 1).copied();
    let log = &nest.log;
    log.push(format!("L{i} start"));
    log.check_self(co, &format!("L{i} at start"));
    log.check(!is_main(co) && is_main(nest.main), || {
        format!("L{i}: is_main wrong")
    });
    if let Some(child) = child {
        // SAFETY: the next LevelArg follows this one in the same slice.
        let child_arg = unsafe { arg.cast::<LevelArg>().add(1) };
        log.check_self(co, &format!("L{i} before starting L{}", i + 1));
        // SAFETY: child is initialised and unstarted; it only touches the Nest.
        let r = unsafe { sys::coroutine_yieldto(child, child_arg.cast()) };
        log.check_self(co, &format!("L{i} after L{} yielded", i + 1));
        log.push(format!("L{i} got {}", num(r)));
    }
    log.check_self(co, &format!("L{i} before yield"));
    // SAFETY: this level was entered through yieldto, so it has a caller.
    let r = unsafe { sys::coroutine_yield(val(i * 10 + 1)) };
    log.check_self(co, &format!("L{i} after yield"));
    log.push(format!("L{i} resumed with {}", num(r)));
    if let Some(child) = child {
        log.check_self(co, &format!("L{i} before resuming L{}", i + 1));
        // SAFETY: child is suspended in coroutine_yield with no caller.
        let r = unsafe { sys::coroutine_yieldto(child, val(i * 100)) };
        log.check_self(co, &format!("L{i} after L{} returned", i + 1));
        log.push(format!("L{i} got {}", num(r)));
    }
    log.check_self(co, &format!("L{i} before return"));
    val(i * 10 + 2)
}

/// main -> L0 -> ... -> L(depth-1): all start, yield back up one by one, get
/// resumed top-down and return bottom-up. Returns the problems found.
fn run_nest(depth: usize, stack_size: usize) {
    let owned: Vec<Owned> = (0..depth)
        .map(|_| Owned::with_stack(level, stack_size))
        .collect();
    let nest = Nest {
        log: Log::default(),
        main: current(),
        levels: owned.iter().map(Owned::ptr).collect(),
    };
    let args: Vec<LevelArg> = (0..depth)
        .map(|idx| LevelArg { nest: &nest, idx })
        .collect();

    assert!(current() == nest.main && is_main(nest.main));
    // SAFETY: L0 is initialised; the levels only touch nest and args, which outlive them.
    let r = unsafe { sys::coroutine_yieldto(nest.levels[0], arg(&args[0])) };
    assert_eq!(num(r), 1, "L0 yields 1 to main");
    assert!(current() == nest.main, "self must be main after L0 yielded");
    // SAFETY: L0 is suspended in coroutine_yield with no caller.
    let r = unsafe { sys::coroutine_yieldto(nest.levels[0], val(7)) };
    assert_eq!(num(r), 2, "L0 returns 2 to main");
    assert!(
        current() == nest.main,
        "self must be main after L0 returned"
    );
    assert!(
        owned.iter().all(Owned::exited),
        "every level must have exited"
    );

    let mut expected = Vec::new();
    expected.extend((0..depth).map(|i| format!("L{i} start")));
    expected.extend(
        (0..depth - 1)
            .rev()
            .map(|i| format!("L{i} got {}", (i + 1) * 10 + 1)),
    );
    expected.extend((0..depth).map(|i| {
        let v = if i == 0 { 7 } else { (i - 1) * 100 };
        format!("L{i} resumed with {v}")
    }));
    expected.extend(
        (0..depth - 1)
            .rev()
            .map(|i| format!("L{i} got {}", (i + 1) * 10 + 2)),
    );
    assert_eq!(nest.log.take(), expected);
}

#[test]
fn nesting_keeps_self_right_at_every_level() {
    in_own_process("nesting_keeps_self_right_at_every_level", || run_nest(5, 0));
}

#[test]
fn nesting_works_hundreds_of_levels_deep() {
    in_own_process("nesting_works_hundreds_of_levels_deep", || {
        run_nest(300, 256 << 10)
    });
}

// ---------------------------------------------------------------------------
// self / is_main
// ---------------------------------------------------------------------------

#[test]
fn self_is_main_outside_coroutines() {
    let me = current();
    assert!(!me.is_null(), "coroutine_self() is never NULL");
    assert!(
        is_main(me),
        "outside any coroutine, self is this thread's main"
    );
    assert_eq!(current(), me, "the leader is stable");
    assert!(!is_main(ptr::null_mut()));
    let co = Owned::new(return_7);
    assert!(!is_main(co.ptr()), "an ordinary coroutine is not main");
    // SAFETY: co is initialised and unstarted; the entry (return_7) touches nothing.
    unsafe { run_to_exit(co.ptr(), ptr::null_mut()) };
    assert_eq!(current(), me, "self is main again after a coroutine ran");
    assert!(is_main(current()));
}

extern "C" fn observe_self(arg: *mut c_void) -> *mut c_void {
    // SAFETY: the test passes a pointer to its World first.
    let w = unsafe { world(arg) };
    let me = current();
    w.log.push(format!("self is A: {}", me == w.a));
    w.log.push(format!("is_main(self): {}", is_main(me)));
    w.log.push(format!("is_main(main): {}", is_main(w.main)));
    val(0)
}

#[test]
fn is_main_false_inside_coroutine() {
    let a = Owned::new(observe_self);
    let w = World::new(a.ptr(), ptr::null_mut(), ptr::null_mut());
    // SAFETY: a is initialised and unstarted; the entry only touches `w`, which outlives the call.
    unsafe { run_to_exit(a.ptr(), arg(&w)) };
    assert_eq!(
        w.log.take(),
        [
            "self is A: true",
            "is_main(self): false",
            "is_main(main): true"
        ]
    );
}

// ---------------------------------------------------------------------------
// release
// ---------------------------------------------------------------------------

#[test]
fn exit_runs_release_callback_after_marking_exited() {
    let t = tracked(return_7, 64 << 10, 0);
    // SAFETY: t is live until freed at the end of this test.
    let t_ref = unsafe { &*t };
    // SAFETY: the co field of a live Tracked.
    let co = unsafe { ptr::addr_of_mut!((*t).co) };
    assert_eq!(t_ref.calls.load(SeqCst), 0, "init must not call release");
    // SAFETY: co is initialised and unstarted; the entry (return_7) touches nothing.
    let r = unsafe { run_to_exit(co, ptr::null_mut()) };
    assert_eq!(r, 7);
    assert_eq!(
        t_ref.calls.load(SeqCst),
        1,
        "release runs once when entry returns"
    );
    assert_eq!(
        t_ref.exited_at_call.load(SeqCst),
        1,
        "exited is 1 when release runs"
    );
    // SAFETY: co is live; it has exited.
    let (stack, caller) = unsafe { ((*co).cc.stack, (*co).caller) };
    assert!(stack.is_null(), "the stack is freed after exit");
    assert!(caller.is_null(), "exit clears the caller");
    // SAFETY: co has exited; afterwards the memory is ours.
    unsafe {
        assert_eq!(sys::coroutine_release(co), 0);
        libc::free(t.cast());
    }
}

#[test]
fn exit_gives_the_stack_back() {
    // "The stack is freed (or given back to a pool)": either way, coroutines
    // that run to their end one after another, and are never passed to
    // coroutine_release, must not pile up stacks. In a process of its own so
    // that no other test changes the address space meanwhile.
    in_own_process("exit_gives_the_stack_back", || {
        const RUNS: usize = 1000;
        let run_one = || {
            let co = garbage_co();
            // SAFETY: co is a fresh malloc'd struct of the right size.
            let (rc, _) = unsafe { init_with(co, Some(return_7), 0) };
            assert_eq!(rc, 0);
            // SAFETY: co is initialised and unstarted; the entry (return_7) touches nothing.
            let r = unsafe { run_to_exit(co, ptr::null_mut()) };
            assert_eq!(r, 7);
            // No coroutine_release: the exit alone must give the stack back.
            // SAFETY: co has exited; the struct is ours.
            unsafe { libc::free(co.cast()) };
        };
        // The first run may map a pool's or slab's first chunk.
        run_one();
        let before = vm_size_kib();
        for _ in 0..RUNS {
            run_one();
        }
        let grown_kib = vm_size_kib().saturating_sub(before);
        // Keeping each 16 MiB stack would grow the address space by ~16 GiB.
        assert!(
            grown_kib < 2 << 20,
            "address space grew by {grown_kib} KiB over {RUNS} coroutines that ran to their end"
        );
    });
}

#[test]
fn release_callback_runs_and_negative_keeps_stack() {
    let t = tracked(return_7, 64 << 10, -1);
    // SAFETY: t is live until freed at the end of this test.
    let t_ref = unsafe { &*t };
    // SAFETY: the co field of a live Tracked.
    let co = unsafe { ptr::addr_of_mut!((*t).co) };
    // SAFETY: co is live.
    let (stack, size) = unsafe { ((*co).cc.stack, (*co).cc.stack_size) };

    // SAFETY: co is initialised and unstarted; the entry (return_7) touches nothing.
    let r = unsafe { run_to_exit(co, ptr::null_mut()) };
    assert_eq!(r, 7);
    assert_eq!(
        t_ref.calls.load(SeqCst),
        1,
        "release runs when entry returns"
    );
    // SAFETY: co is live.
    let (exited, kept) = unsafe { ((*co).exited, (*co).cc.stack) };
    assert_eq!(exited, 1);
    assert_eq!(kept, stack, "a negative release keeps the stack");
    assert!(
        is_mapped(stack.cast(), size),
        "the kept stack must still be mapped"
    );
    // SAFETY: the stack was kept (checked above): its lowest and highest bytes are ours.
    unsafe {
        stack.write_volatile(1);
        stack.add(size - 1).write_volatile(2);
        assert_eq!(
            stack.read_volatile() + stack.add(size - 1).read_volatile(),
            3
        );
    }

    // A later coroutine_release tries again; a negative result is returned as is.
    // SAFETY: co has exited and is not running.
    let rc = unsafe { sys::coroutine_release(co) };
    assert_eq!(rc, -1, "release's negative result is returned as is");
    assert_eq!(
        t_ref.calls.load(SeqCst),
        2,
        "coroutine_release calls release again"
    );
    assert!(is_mapped(stack.cast(), size), "still kept");

    t_ref.ret.store(0, SeqCst);
    // SAFETY: as above.
    let rc = unsafe { sys::coroutine_release(co) };
    assert_eq!(rc, 0);
    assert_eq!(t_ref.calls.load(SeqCst), 3);
    // SAFETY: co is live.
    let left = unsafe { (*co).cc.stack };
    assert!(left.is_null(), "now the stack is freed");
    // SAFETY: co is released; nothing is freed twice; the memory is ours.
    unsafe {
        assert_eq!(sys::coroutine_release(co), 0);
        libc::free(t.cast());
    }
}

#[test]
fn release_is_safe_twice_and_after_exit() {
    // Never started: the first release frees (calling the callback), the
    // second does nothing.
    let t = tracked(return_7, 64 << 10, 0);
    // SAFETY: t is live until freed below.
    let t_ref = unsafe { &*t };
    // SAFETY: the co field of a live Tracked.
    let co = unsafe { ptr::addr_of_mut!((*t).co) };
    // SAFETY: co is initialised and not running.
    let (r1, r2) = unsafe { (sys::coroutine_release(co), sys::coroutine_release(co)) };
    assert_eq!((r1, r2), (0, 0));
    assert_eq!(t_ref.calls.load(SeqCst), 1, "the callback runs once");
    // The struct can be initialised again after release.
    // SAFETY: co is released; init may reuse it.
    let rc = unsafe { sys::coroutine_init(co) };
    assert_eq!(rc, 0);
    // SAFETY: co is initialised and unstarted; the entry (return_7) touches nothing.
    let r = unsafe { run_to_exit(co, ptr::null_mut()) };
    assert_eq!(r, 7);
    assert_eq!(t_ref.calls.load(SeqCst), 2, "exit calls the callback");
    // After exit: releasing twice is a no-op.
    // SAFETY: co has exited.
    let (r1, r2) = unsafe { (sys::coroutine_release(co), sys::coroutine_release(co)) };
    assert_eq!((r1, r2), (0, 0));
    assert_eq!(
        t_ref.calls.load(SeqCst),
        2,
        "nothing left to release after exit"
    );
    // SAFETY: nothing refers to t any more.
    unsafe { libc::free(t.cast()) };

    // Without a callback.
    let co = Owned::new(return_7);
    // SAFETY: co is initialised and unstarted; the entry (return_7) touches nothing.
    unsafe { run_to_exit(co.ptr(), ptr::null_mut()) };
    // SAFETY: co has exited and is not running.
    let (r1, r2) = unsafe {
        (
            sys::coroutine_release(co.ptr()),
            sys::coroutine_release(co.ptr()),
        )
    };
    assert_eq!((r1, r2), (0, 0));
}

#[test]
fn release_rejects_null_and_uninitialised() {
    let Some(out) = child("release_rejects_null_and_uninitialised", || {
        clear_errno();
        // SAFETY: NULL is documented as rejected.
        let rc = unsafe { sys::coroutine_release(ptr::null_mut()) };
        assert_eq!((rc, errno()), (-1, libc::EINVAL));
        let co = garbage_co();
        clear_errno();
        // SAFETY: co is a live allocation; release must only read it.
        let rc = unsafe { sys::coroutine_release(co) };
        assert_eq!((rc, errno()), (-1, libc::EINVAL));
        // SAFETY: co is ours.
        unsafe { libc::free(co.cast()) };
    }) else {
        return;
    };
    assert_child_passed(&out);
    let diags = diagnostics(&out);
    assert!(
        diags.len() == 2 && diags.iter().all(|d| d.starts_with("coroutine_release: ")),
        "{}",
        describe(&out)
    );
}

extern "C" fn release_self_then_nest(arg: *mut c_void) -> *mut c_void {
    // SAFETY: the test passes a pointer to its World first.
    let w = unsafe { world(arg) };
    clear_errno();
    // SAFETY: releasing the running coroutine is documented as refused (EBUSY).
    let rc = unsafe { sys::coroutine_release(w.a) };
    w.log
        .push(format!("A release(A) = {rc}, errno {}", errno()));
    // SAFETY: w.b is initialised and unstarted; it only touches w.
    let r = unsafe { sys::coroutine_yieldto(w.b, arg) };
    w.log.push(format!("A got {}", num(r)));
    val(0xA)
}

extern "C" fn release_waiting_parent(arg: *mut c_void) -> *mut c_void {
    // SAFETY: the test passes a pointer to its World first.
    let w = unsafe { world(arg) };
    clear_errno();
    // SAFETY: A waits in yieldto; releasing it is documented as refused (EBUSY).
    let rc = unsafe { sys::coroutine_release(w.a) };
    w.log
        .push(format!("B release(A) = {rc}, errno {}", errno()));
    val(0xB)
}

#[test]
fn release_refuses_running_coroutine_and_main() {
    let Some(out) = child("release_refuses_running_coroutine_and_main", || {
        let a = Owned::new(release_self_then_nest);
        let b = Owned::new(release_waiting_parent);
        let w = World::new(a.ptr(), b.ptr(), ptr::null_mut());
        clear_errno();
        // SAFETY: releasing main is documented as refused (EBUSY).
        let rc = unsafe { sys::coroutine_release(w.main) };
        assert_eq!((rc, errno()), (-1, libc::EBUSY), "release(main)");
        // SAFETY: a is initialised; A and B only touch w, which outlives them.
        let r = unsafe { sys::coroutine_yieldto(a.ptr(), arg(&w)) };
        assert_eq!(num(r), 0xA, "A must still run to its end");
        let busy = libc::EBUSY;
        assert_eq!(
            w.log.take(),
            [
                format!("A release(A) = -1, errno {busy}"),
                format!("B release(A) = -1, errno {busy}"),
                "A got 11".to_owned(),
            ]
        );
    }) else {
        return;
    };
    assert_child_passed(&out);
    let diags = diagnostics(&out);
    assert!(
        diags.len() == 3 && diags.iter().all(|d| d.starts_with("coroutine_release: ")),
        "{}",
        describe(&out)
    );
}

// ---------------------------------------------------------------------------
// yieldto misuse (child processes: the messages go to stderr)
// ---------------------------------------------------------------------------

#[test]
fn yieldto_exited_returns_null_with_message() {
    in_child_expecting(
        "yieldto_exited_returns_null_with_message",
        || {
            let runs = AtomicUsize::new(0);
            let co = Owned::new(count_runs);
            // SAFETY: co is initialised and unstarted; count_runs only touches `runs`, which outlives the call.
            let r = unsafe { run_to_exit(co.ptr(), arg(&runs)) };
            assert_eq!(r, 0x600D);
            assert!(co.exited());
            // SAFETY: co has exited; yieldto must refuse it without switching.
            let r = unsafe { sys::coroutine_yieldto(co.ptr(), arg(&runs)) };
            assert!(r.is_null(), "yieldto on an exited coroutine returns NULL");
            assert_eq!(runs.load(SeqCst), 1, "the entry must not run again");
            assert!(is_main(current()));
        },
        &[YIELDTO_EXITED],
    );
}

extern "C" fn yieldto_itself(arg: *mut c_void) -> *mut c_void {
    // SAFETY: the test passes a pointer to its World first.
    let w = unsafe { world(arg) };
    // SAFETY: A is running; yieldto must refuse it without switching.
    let r = unsafe { sys::coroutine_yieldto(w.a, val(5)) };
    w.log.push(format!("A: yieldto(A) = {:?}", r));
    w.log.check_self(w.a, "A after refused yieldto(A)");
    val(0x11)
}

extern "C" fn swap_started_yieldto_itself(arg: *mut c_void) -> *mut c_void {
    // SAFETY: the test passes a pointer to its World first.
    let w = unsafe { world(arg) };
    // SAFETY: B is running (started by swap, so it has no caller); yieldto must refuse it.
    let r = unsafe { sys::coroutine_yieldto(w.b, val(6)) };
    w.log.push(format!("B: yieldto(B) = {:?}", r));
    w.log.check_self(w.b, "B after refused yieldto(B)");
    // SAFETY: B is the running coroutine and main is suspended in its swap.
    unsafe { sys::coroutine_swap(w.b, w.main, val(0x22)) };
    val(0)
}

#[test]
fn yieldto_self_rejected() {
    in_child_expecting(
        "yieldto_self_rejected",
        || {
            let a = Owned::new(yieldto_itself);
            let b = Owned::new(swap_started_yieldto_itself);
            let w = World::new(a.ptr(), b.ptr(), ptr::null_mut());
            // SAFETY: a is initialised; it only touches w.
            let r = unsafe { sys::coroutine_yieldto(a.ptr(), arg(&w)) };
            assert_eq!(num(r), 0x11, "A must go on normally after the refusal");
            // SAFETY: main is running; b is initialised and only touches w.
            let r = unsafe { sys::coroutine_swap(w.main, b.ptr(), arg(&w)) };
            assert_eq!(num(r), 0x22);
            assert!(is_main(current()));
            assert_eq!(w.log.take(), ["A: yieldto(A) = 0x0", "B: yieldto(B) = 0x0"]);
        },
        &[YIELDTO_CALLER, YIELDTO_CALLER],
    );
}

extern "C" fn chain_a(arg: *mut c_void) -> *mut c_void {
    // SAFETY: the test passes a pointer to its World first.
    let w = unsafe { world(arg) };
    // SAFETY: w.b is initialised and unstarted; it only touches w.
    let r = unsafe { sys::coroutine_yieldto(w.b, arg) };
    w.log.push(format!("A got {:#x}", num(r)));
    val(0xA)
}

extern "C" fn chain_b(arg: *mut c_void) -> *mut c_void {
    // SAFETY: the test passes a pointer to its World first.
    let w = unsafe { world(arg) };
    // SAFETY: w.c is initialised and unstarted; it only touches w.
    let r = unsafe { sys::coroutine_yieldto(w.c, arg) };
    w.log.push(format!("B got {:#x}", num(r)));
    w.log.check_self(w.b, "B after C yielded");
    val(0xB)
}

extern "C" fn chain_c(arg: *mut c_void) -> *mut c_void {
    // SAFETY: the test passes a pointer to its World first.
    let w = unsafe { world(arg) };
    // SAFETY: A and B wait in yieldto; yieldto must refuse them without switching.
    let (ra, rb) = unsafe {
        (
            sys::coroutine_yieldto(w.a, val(1)),
            sys::coroutine_yieldto(w.b, val(2)),
        )
    };
    w.log
        .push(format!("C: yieldto(A) = {ra:?}, yieldto(B) = {rb:?}"));
    w.log.check_self(w.c, "C after refusals");
    // SAFETY: A, B and C are live; they are read, not written.
    let callers = unsafe { ((*w.a).caller, (*w.b).caller, (*w.c).caller) };
    w.log.check(callers == (w.main, w.a, w.b), || {
        format!("refusals changed the callers: {callers:?}")
    });
    // The chain is intact: this goes to B.
    // SAFETY: C was entered through yieldto, so it has a caller.
    unsafe { sys::coroutine_yield(val(0xC)) };
    val(0)
}

#[test]
fn yieldto_coroutine_on_caller_chain_rejected() {
    in_child_expecting(
        "yieldto_coroutine_on_caller_chain_rejected",
        || {
            let a = Owned::new(chain_a);
            let b = Owned::new(chain_b);
            let c = Owned::new(chain_c);
            let w = World::new(a.ptr(), b.ptr(), c.ptr());
            // SAFETY: a is initialised; A, B and C only touch w, which outlives them.
            let r = unsafe { sys::coroutine_yieldto(a.ptr(), arg(&w)) };
            assert_eq!(num(r), 0xA);
            assert_eq!(
                w.log.take(),
                [
                    "C: yieldto(A) = 0x0, yieldto(B) = 0x0",
                    "B got 0xc",
                    "A got 0xb"
                ]
            );
        },
        &[YIELDTO_CALLER, YIELDTO_CALLER],
    );
}

extern "C" fn yieldto_main_from_a(arg: *mut c_void) -> *mut c_void {
    // SAFETY: the test passes a pointer to its World first.
    let w = unsafe { world(arg) };
    // SAFETY: main is this thread's leader; yieldto must refuse it without switching.
    let r = unsafe { sys::coroutine_yieldto(w.main, val(2)) };
    w.log.push(format!("A: yieldto(main) = {r:?}"));
    w.log.check_self(w.a, "A after refused yieldto(main)");
    val(0xA)
}

#[test]
fn yieldto_main_rejected() {
    in_child_expecting(
        "yieldto_main_rejected",
        || {
            let a = Owned::new(yieldto_main_from_a);
            let w = World::new(a.ptr(), ptr::null_mut(), ptr::null_mut());
            // From main itself.
            // SAFETY: main is running; yieldto must refuse it without switching.
            let r = unsafe { sys::coroutine_yieldto(w.main, val(1)) };
            assert!(r.is_null());
            // From a coroutine.
            // SAFETY: a is initialised; it only touches w.
            let r = unsafe { sys::coroutine_yieldto(a.ptr(), arg(&w)) };
            assert_eq!(num(r), 0xA, "A must go on normally after the refusal");
            assert_eq!(w.log.take(), ["A: yieldto(main) = 0x0"]);
            // Another thread's main.
            let (tx, rx) = std::sync::mpsc::channel();
            let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
            let other = thread::spawn(move || {
                tx.send(SendPtr(current())).unwrap();
                // Stay alive (and keep the leader) until main has tried.
                done_rx.recv().ok();
            });
            let other_main = rx.recv().unwrap().get();
            // SAFETY: other_main is the leader of a live thread; yieldto must refuse it.
            let r = unsafe { sys::coroutine_yieldto(other_main, val(3)) };
            assert!(r.is_null());
            done_tx.send(()).unwrap();
            other.join().unwrap();
            // SAFETY: the leader struct of this thread is live for the thread's life.
            let caller = unsafe { (*w.main).caller };
            assert!(caller.is_null(), "main must not be left with a caller");
            assert!(current() == w.main);
        },
        &[YIELDTO_CALLER, YIELDTO_CALLER, YIELDTO_CALLER],
    );
}

#[test]
fn yieldto_null_rejected() {
    in_child_expecting(
        "yieldto_null_rejected",
        || {
            // SAFETY: NULL is documented as refused without switching.
            let r = unsafe { sys::coroutine_yieldto(ptr::null_mut(), val(1)) };
            assert!(r.is_null());
            assert!(is_main(current()));
        },
        &[YIELDTO_NULL],
    );
}

#[test]
fn yieldto_zeroed_and_garbage_rejected() {
    in_child_expecting(
        "yieldto_zeroed_and_garbage_rejected",
        || {
            let runs = AtomicUsize::new(0);
            for byte in [0x00u8, 0xA5, 0xFF, 0x5A] {
                for with_fields in [false, true] {
                    let co = filled_co(byte);
                    if with_fields {
                        // As a caller would before (forgetting) coroutine_init.
                        // SAFETY: co is a live allocation of the right size.
                        unsafe {
                            (*co).stack_size = 0;
                            (*co).entry = Some(count_runs);
                            (*co).release = None;
                        }
                    }
                    // SAFETY: co is never initialised; yieldto must refuse it without switching.
                    let r = unsafe { sys::coroutine_yieldto(co, arg(&runs)) };
                    assert!(r.is_null(), "bytes 0x{byte:02X}, fields set: {with_fields}");
                    // SAFETY: co is ours.
                    unsafe { libc::free(co.cast()) };
                }
            }
            assert_eq!(runs.load(SeqCst), 0, "no entry may run");
            assert!(is_main(current()));
        },
        &[YIELDTO_UNINIT; 8],
    );
}

#[test]
fn yieldto_after_failed_init_rejected() {
    let Some(out) = child("yieldto_after_failed_init_rejected", || {
        let runs = AtomicUsize::new(0);
        let try_after_failed_init = |co: Co, entry: Option<Entry>, size: usize, want: i32| {
            // SAFETY: co is a live allocation of the right size, not running.
            let (rc, err) = unsafe { init_with(co, entry, size) };
            assert_eq!((rc, err), (-1, want), "init with size {size:#x}");
            // SAFETY: init failed on co; yieldto must refuse it without switching.
            let r = unsafe { sys::coroutine_yieldto(co, arg(&runs)) };
            assert!(r.is_null(), "yieldto after a failed init (size {size:#x})");
        };
        let co = garbage_co();
        try_after_failed_init(co, Some(count_runs), usize::MAX, libc::EINVAL);
        try_after_failed_init(co, Some(count_runs), UNMAPPABLE, libc::ENOMEM);
        try_after_failed_init(co, None, 0, libc::EINVAL);
        // SAFETY: co is ours (never successfully initialised).
        unsafe { libc::free(co.cast()) };

        // A struct that was valid (an exited coroutine) and whose re-init failed.
        let co = Owned::new(count_runs);
        // SAFETY: co is initialised and unstarted; count_runs only touches `runs`, which outlives the call.
        let r = unsafe { run_to_exit(co.ptr(), arg(&runs)) };
        assert_eq!(r, 0x600D);
        try_after_failed_init(co.ptr(), Some(count_runs), usize::MAX, libc::EINVAL);
        assert_eq!(runs.load(SeqCst), 1, "no entry may run after a failed init");
        // Give Owned's drop a valid struct again.
        // SAFETY: co is not running.
        assert_eq!(unsafe { init_with(co.ptr(), Some(return_7), 0) }.0, 0);
    }) else {
        return;
    };
    assert_child_passed(&out);
    let all = diagnostics(&out);
    let yieldto: Vec<&String> = all
        .iter()
        .filter(|d| d.starts_with("coroutine_yieldto"))
        .collect();
    assert_eq!(yieldto, [YIELDTO_UNINIT; 4], "{}", describe(&out));
    assert_eq!(
        all.iter()
            .filter(|d| d.starts_with("coroutine_init: "))
            .count(),
        1,
        "init without entry reports once:\n{}",
        describe(&out)
    );
}

#[test]
fn yieldto_released_coroutine_rejected() {
    in_child_expecting(
        "yieldto_released_coroutine_rejected",
        || {
            let runs = AtomicUsize::new(0);
            // Released before it ever ran: like a struct never passed to init.
            let co = Owned::new(count_runs);
            // SAFETY: co is initialised and not running.
            assert_eq!(unsafe { sys::coroutine_release(co.ptr()) }, 0);
            // SAFETY: co is released; yieldto must refuse it without switching.
            let r = unsafe { sys::coroutine_yieldto(co.ptr(), arg(&runs)) };
            assert!(r.is_null());
            assert_eq!(runs.load(SeqCst), 0, "a released coroutine must not run");
            // Exited, then released: still exited.
            let co = Owned::new(count_runs);
            // SAFETY: co is initialised and unstarted; count_runs only touches `runs`, which outlives the call.
            unsafe { run_to_exit(co.ptr(), arg(&runs)) };
            // SAFETY: co has exited.
            assert_eq!(unsafe { sys::coroutine_release(co.ptr()) }, 0);
            // SAFETY: co is released; yieldto must refuse it without switching.
            let r = unsafe { sys::coroutine_yieldto(co.ptr(), arg(&runs)) };
            assert!(r.is_null());
            assert_eq!(runs.load(SeqCst), 1);
        },
        &[YIELDTO_UNINIT, YIELDTO_EXITED],
    );
}

// ---------------------------------------------------------------------------
// yield from main (fatal)
// ---------------------------------------------------------------------------

const BEFORE_YIELD: &str = "ucoro-test: calling coroutine_yield from main\n";
const AFTER_YIELD: &str = "ucoro-test: coroutine_yield returned";

/// Runs `test` in a child that (after `set_up`) yields from main, and checks
/// that the child aborted with the fatal message right after its own line
/// and that the yield never returned. Returns the child's stderr.
fn yield_from_main_child(test: &str, set_up: fn()) -> Option<String> {
    let out = child(test, || {
        set_up();
        assert!(is_main(current()));
        eprint!("{BEFORE_YIELD}");
        // SAFETY: yield from main is documented to print and abort; nothing
        // after it runs.
        unsafe { sys::coroutine_yield(val(1)) };
        eprintln!("{AFTER_YIELD}");
    })?;
    assert_child_aborted(&out);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        stderr.contains(&format!("{BEFORE_YIELD}{YIELD_TO_NO_ONE}")),
        "expected the message and newline right after the call:\n{}",
        describe(&out)
    );
    assert!(!stderr.contains(AFTER_YIELD), "yield must not return");
    Some(stderr)
}

#[test]
fn yield_from_main_aborts() {
    yield_from_main_child("yield_from_main_aborts", || {});
}

extern "C" fn say_handler_called(
    function: *const c_char,
    condition: *const c_char,
    _user_data: *mut c_void,
) {
    // SAFETY: the library passes two NUL-terminated strings.
    let (f, c) = unsafe { (CStr::from_ptr(function), CStr::from_ptr(condition)) };
    eprintln!("HANDLER CALLED: {f:?} {c:?}");
}

#[test]
fn yield_from_main_aborts_even_with_a_handler() {
    let Some(stderr) = yield_from_main_child("yield_from_main_aborts_even_with_a_handler", || {
        // SAFETY: say_handler_called is a valid handler for the process's life.
        unsafe { sys::ucoro_set_diagnostic_handler(Some(say_handler_called), ptr::null_mut()) };
    }) else {
        return;
    };
    assert!(
        !stderr.contains("HANDLER CALLED"),
        "the fatal message bypasses the handler"
    );
}

// ---------------------------------------------------------------------------
// swap
// ---------------------------------------------------------------------------

extern "C" fn swap_a(arg: *mut c_void) -> *mut c_void {
    // SAFETY: the test passes a pointer to its World first.
    let w = unsafe { world(arg) };
    w.log.push("A start");
    w.log.check_self(w.a, "A start");
    // SAFETY: w.a is live; read only.
    let caller = unsafe { (*w.a).caller };
    w.log
        .check(caller.is_null(), || "swap must not set a caller".into());
    // SAFETY: A is running; w.b is initialised and only touches w.
    let r = unsafe { sys::coroutine_swap(w.a, w.b, arg) };
    w.log.check_self(w.a, "A after swap");
    w.log.push(format!("A got {}", num(r)));
    val(0xA1)
}

extern "C" fn swap_b(arg: *mut c_void) -> *mut c_void {
    // SAFETY: the test passes a pointer to its World first.
    let w = unsafe { world(arg) };
    w.log.push("B start");
    w.log.check_self(w.b, "B start");
    // SAFETY: B is running; main is suspended in its swap.
    let r = unsafe { sys::coroutine_swap(w.b, w.main, val(2)) };
    w.log.check_self(w.b, "B after swap");
    w.log.push(format!("B got {}", num(r)));
    val(0xB1)
}

#[test]
fn swap_switches_between_coroutines() {
    in_own_process("swap_switches_between_coroutines", || {
        let a = Owned::new(swap_a);
        let b = Owned::new(swap_b);
        let w = World::new(a.ptr(), b.ptr(), ptr::null_mut());
        // main -> A -> B -> main
        // SAFETY: main is running; A and B only touch w, which outlives them.
        let r = unsafe { sys::coroutine_swap(w.main, a.ptr(), arg(&w)) };
        assert_eq!(num(r), 2, "B's swap to main delivers 2");
        assert_eq!(current(), w.main);
        assert_eq!(w.log.take(), ["A start", "B start"]);
        // main -> B, which finishes: back to main with its result.
        // SAFETY: main is running; B is suspended in its swap.
        let r = unsafe { sys::coroutine_swap(w.main, b.ptr(), val(3)) };
        assert_eq!(num(r), 0xB1);
        assert!(b.exited());
        assert_eq!(current(), w.main);
        // main -> A, which finishes.
        // SAFETY: main is running; A is suspended in its swap.
        let r = unsafe { sys::coroutine_swap(w.main, a.ptr(), val(4)) };
        assert_eq!(num(r), 0xA1);
        assert!(a.exited());
        assert_eq!(current(), w.main);
        assert_eq!(w.log.take(), ["B got 3", "A got 4"]);
    });
}

#[test]
fn swap_rejects_wrong_from_and_bad_targets() {
    let Some(out) = child("swap_rejects_wrong_from_and_bad_targets", || {
        let runs = AtomicUsize::new(0);
        let a = Owned::new(count_runs);
        let b = Owned::new(count_runs);
        let main = current();
        let done = Owned::new(return_7);
        // SAFETY: done is initialised and unstarted; the entry (return_7) touches nothing.
        unsafe { run_to_exit(done.ptr(), ptr::null_mut()) };
        // SAFETY: each call is documented to refuse without switching.
        let results = unsafe {
            [
                sys::coroutine_swap(a.ptr(), b.ptr(), arg(&runs)), // from is not running
                sys::coroutine_swap(main, main, arg(&runs)),       // to is from
                sys::coroutine_swap(main, ptr::null_mut(), arg(&runs)),
                sys::coroutine_swap(main, done.ptr(), arg(&runs)), // exited
            ]
        };
        assert!(results.iter().all(|r| r.is_null()), "{results:?}");
        assert_eq!(runs.load(SeqCst), 0, "nothing may run");
        assert_eq!(current(), main);
    }) else {
        return;
    };
    assert_child_passed(&out);
    let diags = diagnostics(&out);
    assert!(
        diags.len() == 4 && diags.iter().all(|d| d.starts_with("coroutine_swap: ")),
        "{}",
        describe(&out)
    );
    assert_eq!(diags[2], "coroutine_swap: assertion 'to != NULL' failed");
    assert_eq!(diags[3], "coroutine_swap: assertion '!to->exited' failed");
}

// ---------------------------------------------------------------------------
// Threads
// ---------------------------------------------------------------------------

#[test]
fn each_thread_has_its_own_leader() {
    in_own_process("each_thread_has_its_own_leader", || {
        const THREADS: usize = 4;
        let barrier = Arc::new(Barrier::new(THREADS + 1));
        let leaders = Arc::new(Mutex::new(Vec::<usize>::new()));
        let handles: Vec<_> = (0..THREADS)
            .map(|_| {
                let (barrier, leaders) = (barrier.clone(), leaders.clone());
                thread::spawn(move || {
                    let me = current();
                    let own_ok = !me.is_null() && is_main(me) && current() == me;
                    leaders.lock().unwrap().push(me as usize);
                    barrier.wait(); // every thread has published its leader
                    let all = leaders.lock().unwrap().clone();
                    let others_not_main = all
                        .iter()
                        .filter(|&&l| l != me as usize)
                        .all(|&l| !is_main(l as Co));
                    barrier.wait(); // keep every leader alive until all have checked
                    (me as usize, own_ok, others_not_main)
                })
            })
            .collect();
        let mine = current();
        barrier.wait();
        let theirs = leaders.lock().unwrap().clone();
        let none_main_here = theirs.iter().all(|&l| !is_main(l as Co));
        barrier.wait();
        let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();

        for (leader, own_ok, others_not_main) in &results {
            assert!(
                own_ok,
                "leader {leader:#x}: self must be non-NULL, main and stable"
            );
            assert!(
                others_not_main,
                "leader {leader:#x}: another thread's leader counted as main"
            );
        }
        let mut all: Vec<usize> = results.iter().map(|r| r.0).collect();
        all.push(mine as usize);
        all.sort_unstable();
        all.dedup();
        assert_eq!(
            all.len(),
            THREADS + 1,
            "every thread must have its own leader"
        );
        assert!(
            none_main_here,
            "other threads' leaders must not be main here"
        );
        assert!(is_main(mine) && current() == mine);
    });
}

const ROUNDS: usize = 5_000;

struct Worker {
    index: usize,
    me: Co,
    arrived: Arc<AtomicUsize>,
    bad: AtomicUsize,
}

/// Waits (up to 20 s) until `count` reaches `target`; false on timeout.
fn rendezvous(count: &AtomicUsize, target: usize) -> bool {
    count.fetch_add(1, SeqCst);
    let deadline = Instant::now() + Duration::from_secs(20);
    while count.load(SeqCst) < target {
        if Instant::now() > deadline {
            return false;
        }
        thread::yield_now();
    }
    true
}

extern "C" fn worker(arg: *mut c_void) -> *mut c_void {
    // SAFETY: each thread passes a pointer to its own live Worker.
    let w = unsafe { &*arg.cast::<Worker>() };
    let base = w.index * 1_000_000;
    for i in 0..ROUNDS {
        if current() != w.me || is_main(w.me) {
            w.bad.fetch_add(1, SeqCst);
        }
        // Twice, all four coroutines are inside their entries at the same time.
        if i == 0 || i == ROUNDS / 2 {
            let target = if i == 0 { 4 } else { 8 };
            if !rendezvous(&w.arrived, target) {
                w.bad.fetch_add(1_000_000, SeqCst);
            }
        }
        // SAFETY: this coroutine was entered through yieldto, so it has a caller.
        let got = unsafe { sys::coroutine_yield(val(base + i)) };
        if num(got) != i || current() != w.me {
            w.bad.fetch_add(1, SeqCst);
        }
    }
    val(w.index)
}

#[test]
fn coroutines_run_on_four_threads_at_once() {
    in_own_process("coroutines_run_on_four_threads_at_once", || {
        let arrived = Arc::new(AtomicUsize::new(0));
        let handles: Vec<_> = (0..4)
            .map(|index| {
                let arrived = arrived.clone();
                thread::spawn(move || {
                    let leader = current();
                    let co = Owned::new(worker);
                    let w = Worker {
                        index,
                        me: co.ptr(),
                        arrived,
                        bad: AtomicUsize::new(0),
                    };
                    let mut bad_here = 0;
                    // SAFETY: co is initialised on this thread; worker only touches w.
                    let mut got = unsafe { sys::coroutine_yieldto(co.ptr(), arg(&w)) };
                    for i in 0..ROUNDS {
                        if num(got) != index * 1_000_000 + i || current() != leader {
                            bad_here += 1;
                        }
                        // SAFETY: co is suspended in coroutine_yield with no caller.
                        got = unsafe { sys::coroutine_yieldto(co.ptr(), val(i)) };
                    }
                    if num(got) != index || !co.exited() || current() != leader {
                        bad_here += 1;
                    }
                    (index, bad_here, w.bad.load(SeqCst))
                })
            })
            .collect();
        for h in handles {
            let (index, bad_main, bad_co) = h.join().unwrap();
            assert_eq!(
                bad_co / 1_000_000,
                0,
                "thread {index}: the four coroutines never ran at once"
            );
            assert_eq!(
                (bad_main, bad_co),
                (0, 0),
                "thread {index}: wrong values or self"
            );
        }
    });
}

struct Migrant {
    me: Co,
    log: Log,
}

/// Who resumed the migrant: passed as the yieldto argument.
struct Hop {
    leader: Co,
    thread: libc::pthread_t,
    not_main: Co,
}

impl Hop {
    fn here(not_main: Co) -> Hop {
        Hop {
            leader: current(),
            // SAFETY: pthread_self has no preconditions.
            thread: unsafe { libc::pthread_self() },
            not_main,
        }
    }
}

extern "C" fn migrant(arg: *mut c_void) -> *mut c_void {
    // SAFETY: the test passes a pointer to its Migrant, which outlives the coroutine.
    let m = unsafe { &*arg.cast::<Migrant>() };
    for round in 1..=3 {
        // SAFETY: entered/resumed through yieldto, so this coroutine has a caller.
        let hop = unsafe { sys::coroutine_yield(val(round)) };
        // SAFETY: every resumer passes a pointer to a Hop it keeps alive meanwhile.
        let hop = unsafe { &*hop.cast::<Hop>() };
        // SAFETY: pthread_self and pthread_equal have no preconditions.
        let same = unsafe { libc::pthread_equal(libc::pthread_self(), hop.thread) } != 0;
        m.log.push(format!(
            "round {round}: on resumer's thread {same}, self is me {}, resumer's main is main {}, other main is main {}",
            current() == m.me,
            is_main(hop.leader),
            is_main(hop.not_main),
        ));
    }
    val(100)
}

#[test]
fn suspended_coroutine_resumes_on_another_thread() {
    in_own_process("suspended_coroutine_resumes_on_another_thread", || {
        let co = Owned::new(migrant);
        let m = Migrant {
            me: co.ptr(),
            log: Log::default(),
        };
        let main = current();
        // SAFETY: co is initialised; migrant only touches m (and the Hops passed in).
        let r = unsafe { sys::coroutine_yieldto(co.ptr(), arg(&m)) };
        assert_eq!(num(r), 1);

        let resume_elsewhere = |expect: usize| {
            let co_ptr = SendPtr(co.ptr());
            let main_ptr = SendPtr(main);
            thread::spawn(move || {
                let hop = Hop::here(main_ptr.get());
                // SAFETY: the coroutine is suspended with no caller and nothing
                // else touches it until this thread is joined; Migrant and the
                // test thread outlive this thread.
                let r = unsafe { sys::coroutine_yieldto(co_ptr.get(), arg(&hop)) };
                (num(r), current() == hop.leader && is_main(current()))
            })
            .join()
            .map(|(r, self_ok)| (r == expect, self_ok))
            .unwrap()
        };

        // Resume on thread 1; it yields there.
        assert_eq!(
            resume_elsewhere(2),
            (true, true),
            "thread 1's yieldto gets 2, self is its main"
        );
        assert_eq!(current(), main, "this thread's self is untouched");
        // Resume here again.
        let hop = Hop::here(ptr::null_mut());
        // SAFETY: co is suspended with no caller; hop outlives the call.
        let r = unsafe { sys::coroutine_yieldto(co.ptr(), arg(&hop)) };
        assert_eq!(num(r), 3);
        // Finish on thread 2 (its stack is freed there).
        assert_eq!(
            resume_elsewhere(100),
            (true, true),
            "thread 2's yieldto gets the result"
        );
        assert!(co.exited());
        assert_eq!(current(), main);
        let yes = "on resumer's thread true, self is me true, resumer's main is main true, other main is main false";
        assert_eq!(
            m.log.take(),
            [
                format!("round 1: {yes}"),
                format!("round 2: {yes}"),
                format!("round 3: {yes}"),
            ]
        );
    });
}

// ---------------------------------------------------------------------------
// Diagnostics
// ---------------------------------------------------------------------------

#[derive(Default)]
struct Seen(Mutex<Vec<(String, String, usize)>>);

extern "C" fn record_diagnostic(
    function: *const c_char,
    condition: *const c_char,
    user_data: *mut c_void,
) {
    // SAFETY: the test installs this handler with a pointer to a Seen that
    // outlives the installation.
    let seen = unsafe { &*user_data.cast::<Seen>() };
    // SAFETY: the library passes two NUL-terminated strings.
    let (f, c) = unsafe { (CStr::from_ptr(function), CStr::from_ptr(condition)) };
    seen.0.lock().unwrap_or_else(PoisonError::into_inner).push((
        f.to_string_lossy().into_owned(),
        c.to_string_lossy().into_owned(),
        user_data as usize,
    ));
}

const DEFAULT_RESTORED: &str = "ucoro-test: default handler restored";

#[test]
fn diagnostic_handler_receives_function_and_condition() {
    let Some(out) = child("diagnostic_handler_receives_function_and_condition", || {
        let seen = Seen::default();
        let ud = arg(&seen);
        // SAFETY: seen outlives the installation (the default is restored below).
        unsafe { sys::ucoro_set_diagnostic_handler(Some(record_diagnostic), ud) };

        let garbage = garbage_co();
        let done = Owned::new(return_7);
        // SAFETY: done is initialised and unstarted; the entry (return_7) touches nothing.
        unsafe { run_to_exit(done.ptr(), ptr::null_mut()) };
        let other = Owned::new(return_7);
        let main = current();
        // SAFETY: each call is a documented misuse that reports and returns
        // without switching or touching memory it does not own.
        unsafe {
            sys::coroutine_yieldto(ptr::null_mut(), val(1));
            sys::coroutine_yieldto(garbage, val(1));
            sys::coroutine_yieldto(done.ptr(), val(1));
            sys::coroutine_yieldto(main, val(1));
            sys::coroutine_release(ptr::null_mut());
            sys::coroutine_swap(other.ptr(), main, val(1));
        }
        // The handler may run on any thread.
        thread::spawn(|| {
            // SAFETY: NULL is documented as refused without switching.
            unsafe { sys::coroutine_yieldto(ptr::null_mut(), val(1)) };
        })
        .join()
        .unwrap();

        // SAFETY: NULL restores the default handler.
        unsafe { sys::ucoro_set_diagnostic_handler(None, ptr::null_mut()) };
        eprintln!("{DEFAULT_RESTORED}");
        // SAFETY: as above; this one goes to stderr.
        unsafe { sys::coroutine_yieldto(ptr::null_mut(), val(1)) };
        // SAFETY: garbage is ours.
        unsafe { libc::free(garbage.cast()) };

        let seen = seen.0.lock().unwrap().clone();
        let pairs: Vec<(&str, &str)> = seen
            .iter()
            .map(|(f, c, _)| (f.as_str(), c.as_str()))
            .collect();
        assert_eq!(
            pairs[..4],
            [
                ("coroutine_yieldto", "to != NULL"),
                ("coroutine_yieldto", "to is initialised"),
                ("coroutine_yieldto", "!to->exited"),
                ("coroutine_yieldto", "!to->caller"),
            ]
        );
        assert_eq!(pairs.len(), 7, "{pairs:?}");
        assert_eq!(pairs[4].0, "coroutine_release");
        assert_eq!(pairs[5].0, "coroutine_swap");
        assert_eq!(
            pairs[6],
            ("coroutine_yieldto", "to != NULL"),
            "from another thread"
        );
        assert!(pairs.iter().all(|(_, c)| !c.is_empty()));
        assert!(
            seen.iter().all(|(_, _, u)| *u == ud as usize),
            "user_data must be passed through"
        );
    }) else {
        return;
    };
    assert_child_passed(&out);
    // Nothing reached stderr while the handler was installed; the restored
    // default writes the usual line.
    assert_eq!(diagnostics(&out), [YIELDTO_NULL], "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("{DEFAULT_RESTORED}\n{YIELDTO_NULL}\n")),
        "{}",
        describe(&out)
    );
}

// ---------------------------------------------------------------------------
// Names
// ---------------------------------------------------------------------------

#[test]
fn library_defines_only_prefixed_symbols() {
    let lib = Path::new(env!("OUT_DIR")).join("libucoro.a");
    assert!(lib.exists(), "{} not found", lib.display());
    let out = Command::new("readelf")
        .arg("-sW")
        .arg(&lib)
        .output()
        .expect("readelf (binutils) is needed to list the library's symbols");
    assert!(out.status.success(), "readelf failed: {}", describe(&out));
    let table = String::from_utf8_lossy(&out.stdout);

    // "Num: Value Size Type Bind Vis Ndx Name"
    let mut defined = Vec::new();
    for line in table.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let is_entry =
            f.len() >= 8 && f[0].ends_with(':') && f[0][..f[0].len() - 1].parse::<u32>().is_ok();
        if !is_entry || f[4] == "LOCAL" || f[6] == "UND" {
            continue;
        }
        defined.push((f[7].to_owned(), f[5].to_owned()));
    }
    let names: Vec<&str> = defined.iter().map(|(n, _)| n.as_str()).collect();
    for api in [
        "coroutine_init",
        "coroutine_yieldto",
        "coroutine_yield",
        "cc_swap",
        "ucoro_set_diagnostic_handler",
    ] {
        assert!(
            names.contains(&api),
            "{api} must be defined (parsed: {names:?})"
        );
    }
    let stray: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| {
            !["coroutine_", "cc_", "ucoro_"]
                .iter()
                .any(|p| n.starts_with(p))
        })
        // GCC's i386 PIC helpers: hidden, one shared copy per link.
        .filter(|n| !n.starts_with("__x86.get_pc_thunk."))
        .collect();
    assert!(
        stray.is_empty(),
        "global symbols outside coroutine_/cc_/ucoro_: {stray:?}"
    );
    assert!(
        !names.contains(&"coroutine_enter"),
        "the caller defines coroutine_enter"
    );
    let visible_internal: Vec<&str> = defined
        .iter()
        .filter(|(n, vis)| n.starts_with("ucoro__") && vis != "HIDDEN")
        .map(|(n, _)| n.as_str())
        .collect();
    assert!(
        visible_internal.is_empty(),
        "ucoro__ helpers must be hidden: {visible_internal:?}"
    );
}

#[test]
fn built_in_the_requested_switch_mode() {
    // SAFETY: returns a pointer to a static NUL-terminated string.
    let mode = unsafe { std::ffi::CStr::from_ptr(sys::ucoro_switch_mode()) }
        .to_str()
        .expect("ASCII")
        .to_owned();
    // CI runs the suite once per mode with UCORO_SWITCH set for the build
    // and the run alike; this checks that the build really switched.
    let expected = match env::var("UCORO_SWITCH").as_deref() {
        Ok("setjmp") => "_setjmp/_longjmp",
        Ok("ucontext") => "swapcontext (strict)",
        _ if cfg!(target_arch = "x86_64") => "x86_64 assembly",
        _ if cfg!(target_arch = "aarch64") => "aarch64 assembly",
        _ if cfg!(target_arch = "x86") => "i386 assembly",
        _ if cfg!(all(target_arch = "arm", target_abi = "eabihf")) => "armhf assembly",
        _ if cfg!(all(target_arch = "powerpc64", target_endian = "little")) => "ppc64le assembly",
        _ if cfg!(target_arch = "s390x") => "s390x assembly",
        _ if cfg!(target_arch = "riscv64") => "riscv64 assembly",
        _ => "_setjmp/_longjmp",
    };
    assert_eq!(mode, expected);
}

extern "C" fn yield_arg_then_return_next(arg: *mut c_void) -> *mut c_void {
    // SAFETY: entered through yieldto, so it has a caller.
    let next = unsafe { sys::coroutine_yield(arg) };
    val(num(next) + 1)
}

#[test]
fn create_keeps_struct_and_extra_on_its_own_stack_until_destroy() {
    let mut extra: *mut c_void = ptr::null_mut();
    // SAFETY: plain call with a valid entry and out-pointer.
    let co = unsafe { sys::ucoro_create(0, Some(yield_arg_then_return_next), 100, &mut extra) };
    assert!(!co.is_null() && !extra.is_null());
    assert_eq!(
        extra as usize % 16,
        0,
        "the extra bytes are 16-byte aligned"
    );
    // SAFETY: co is live; cc.stack/stack_size describe its stack.
    let (lo, size) = unsafe { ((*co).cc.stack as usize, (*co).stack_size) };
    assert_eq!(size, 16 << 20, "the default size, written back");
    for p in [co as usize, extra as usize + 99] {
        assert!((lo..lo + size).contains(&p), "{p:#x} not on the stack");
    }
    // SAFETY: the 100 extra bytes are ours.
    unsafe { ptr::write_bytes(extra.cast::<u8>(), 0x5a, 100) };
    // SAFETY: co is initialised and unstarted; the entry touches nothing.
    unsafe {
        assert_eq!(num(sys::coroutine_yieldto(co, val(40))), 40);
        assert_eq!(num(sys::coroutine_yieldto(co, val(41))), 42);
        assert_eq!(
            (*co).exited,
            1,
            "finished, and the struct is still readable"
        );
        assert_eq!(
            *extra.cast::<u8>().add(99),
            0x5a,
            "extra bytes kept past exit"
        );
        assert_eq!(sys::ucoro_destroy(co), 0);
    }
}

#[test]
fn destroy_refuses_coroutines_not_made_by_create() {
    in_child_expecting(
        "destroy_refuses_coroutines_not_made_by_create",
        || {
            let co = Owned::new(return_7);
            // SAFETY: co is a live coroutine made by coroutine_init, not create.
            let rc = unsafe { sys::ucoro_destroy(co.ptr()) };
            assert_eq!(rc, -1);
            assert_eq!(
                io::Error::last_os_error().raw_os_error(),
                Some(libc::EINVAL)
            );
            // SAFETY: NULL is documented as refused.
            assert_eq!(unsafe { sys::ucoro_destroy(ptr::null_mut()) }, -1);
            let garbage = garbage_co();
            // SAFETY: readable memory that is no coroutine is refused
            // without being written.
            let (rc, err) = with_errno(|| unsafe { sys::ucoro_destroy(garbage) });
            assert_eq!((rc, err), (-1, libc::EINVAL));
            // SAFETY: from malloc in garbage_co, freed once.
            unsafe { libc::free(garbage.cast()) };
        },
        &[
            "ucoro_destroy: assertion 'co was made by ucoro_create' failed",
            "ucoro_destroy: assertion 'co was made by ucoro_create' failed",
            "ucoro_destroy: assertion 'co was made by ucoro_create' failed",
        ],
    );
}

#[test]
fn create_refuses_extra_bytes_beyond_half_the_stack() {
    let mut extra: *mut c_void = ptr::null_mut();
    // SAFETY: plain call; 64 KiB of extra on a 64 KiB stack cannot fit.
    let co = unsafe { sys::ucoro_create(64 << 10, Some(return_7), 64 << 10, &mut extra) };
    assert!(co.is_null());
    assert_eq!(io::Error::last_os_error().raw_os_error(), Some(libc::E2BIG));
}

extern "C" fn destroy_self(_arg: *mut c_void) -> *mut c_void {
    let me = current();
    // SAFETY: a documented misuse: destroying the running coroutine must be
    // refused (EBUSY) without freeing anything.
    let (rc, err) = with_errno(|| unsafe { sys::ucoro_destroy(me) });
    val(usize::from(rc == -1 && err == libc::EBUSY))
}

#[test]
fn destroy_refuses_a_running_coroutine() {
    in_child_expecting(
        "destroy_refuses_a_running_coroutine",
        || {
            let mut extra: *mut c_void = ptr::null_mut();
            // SAFETY: plain call with a valid entry and out-pointer.
            let co = unsafe { sys::ucoro_create(0, Some(destroy_self), 0, &mut extra) };
            assert!(!co.is_null());
            // SAFETY: co is unstarted; its entry only calls ucoro_destroy on itself.
            unsafe {
                assert_eq!(num(sys::coroutine_yieldto(co, ptr::null_mut())), 1);
                assert_eq!((*co).exited, 1, "the struct survived the refused destroy");
                assert_eq!(sys::ucoro_destroy(co), 0);
            }
        },
        &["coroutine_release: assertion '!co->caller' failed"],
    );
}

// ---------------------------------------------------------------------------
// The functions for embedding runtimes, through the raw bindings (the C
// program csrc/tests/embed_api.c covers their misuse rows)
// ---------------------------------------------------------------------------

/// Switches back to the main coroutine whose address is its user data,
/// passing what it received plus one, forever (a runtime's pooled body).
extern "C" fn bounce_to_user_data(mut arg: *mut c_void) -> *mut c_void {
    loop {
        // SAFETY: the test set this coroutine's user data to the main
        // coroutine that entered it, which waits in ucoro_switch.
        let back = unsafe { sys::ucoro_get_user_data(sys::coroutine_self()) }.cast();
        let mut status = 1;
        // SAFETY: both are initialised and on this thread; back is switched out.
        arg = unsafe {
            sys::ucoro_switch(
                sys::coroutine_self(),
                back,
                arg.wrapping_byte_add(1),
                &mut status,
            )
        };
        if status != 0 {
            std::process::abort();
        }
    }
}

#[test]
fn trusted_switch_passes_values_and_finds_the_runtime_object_through_user_data() {
    // SAFETY: a coroutine of the library's own making, switched to from
    // this thread's main one, which its user data names; it is destroyed
    // while suspended, as a runtime's pooled coroutine is.
    unsafe {
        let co = sys::ucoro_create(0, Some(bounce_to_user_data), 0, ptr::null_mut());
        assert!(!co.is_null());
        assert!(sys::ucoro_get_user_data(co).is_null());
        let main = sys::coroutine_self();
        assert_eq!(sys::ucoro_set_user_data(co, main.cast()), 0);
        let mut status = 1;
        assert_eq!(sys::ucoro_switch(main, co, val(1), &mut status), val(2));
        assert_eq!(status, 0);
        // NULL can be the value: the status says the switch happened.
        status = 1;
        let back = sys::ucoro_switch(main, co, val(usize::MAX), &mut status);
        assert!(back.is_null());
        assert_eq!(status, 0);
        assert_eq!(sys::ucoro_destroy(co), 0);
    }
    // SAFETY: plain queries.
    let (mode, sanitizers) = unsafe { (sys::ucoro_guard_mode(), sys::ucoro_sanitizers()) };
    assert!(mode == sys::UCORO_GUARD_MADVISE as i32 || mode == sys::UCORO_GUARD_MPROTECT as i32);
    assert_eq!(
        sanitizers & !(sys::UCORO_SANITIZER_ADDRESS | sys::UCORO_SANITIZER_THREAD),
        0
    );
}
