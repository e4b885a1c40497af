//! `std::backtrace::Backtrace::force_capture` from a signal handler while
//! coroutines switch (issue 17; `csrc/tests/signal_unwind.c` is the C side,
//! with glibc's `backtrace()` and `_Unwind_Backtrace`): a timer sends
//! SIGPROF to the test's thread every 20 µs, interrupting a loop of
//! resumptions, yields, nested starts and exits at whatever instruction it
//! is, and the handler captures a backtrace there. The process must not crash and every capture must
//! return.
//!
//! A capture allocates and takes std's backtrace lock, which no signal
//! handler may do in general. It is honest here because nothing else
//! captures while the timer runs, the handler cannot interrupt itself
//! (SIGPROF is blocked while it runs), and a counting global allocator
//! tells the handler when the signal landed inside the allocator: then it
//! only counts the signal. Allocations glibc makes for itself are not
//! seen, so whatever makes them once per thread (a thread-local's
//! destructor registered) runs before the timer starts. Captured
//! backtraces are kept and formatted (symbols resolved) after the timer
//! stopped.
//!
//! The storm lasts `UCORO_STORM_SECONDS` (default 1).

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::backtrace::Backtrace;
use std::cell::Cell;
use std::hint::black_box;
use std::sync::atomic::{compiler_fence, AtomicUsize, Ordering::Relaxed, Ordering::SeqCst};
use std::time::{Duration, Instant};

use ucoro::{Coroutine, CoroutineResult};

/// The system allocator, noting on each thread whether it is inside it.
struct Flagged;

thread_local! {
    /// Const-initialised and without a destructor: reading it allocates
    /// nothing, in the allocator or in the handler.
    static IN_ALLOCATOR: Cell<bool> = const { Cell::new(false) };
}

/// Runs f (a call into System) with the flag set. The compiler fences
/// keep the stores where they are: to the compiler, nothing reads the
/// flag between them (only the signal handler does).
fn flagged<T>(f: impl FnOnce() -> T) -> T {
    IN_ALLOCATOR.with(|flag| flag.set(true));
    compiler_fence(SeqCst);
    let result = f();
    compiler_fence(SeqCst);
    IN_ALLOCATOR.with(|flag| flag.set(false));
    result
}

// SAFETY: every method forwards to System with the caller's arguments; the
// flag around the call changes nothing about the memory.
unsafe impl GlobalAlloc for Flagged {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract for alloc, passed on.
        flagged(|| unsafe { System.alloc(layout) })
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract for dealloc, passed on.
        flagged(|| unsafe { System.dealloc(ptr, layout) })
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract for alloc_zeroed, passed on.
        flagged(|| unsafe { System.alloc_zeroed(layout) })
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller's contract for realloc, passed on.
        flagged(|| unsafe { System.realloc(ptr, layout, new_size) })
    }
}

#[global_allocator]
static ALLOCATOR: Flagged = Flagged;

/// Captures kept for formatting afterwards (a ring: the handler replaces
/// the oldest). Only the handler touches it while the timer runs.
const KEPT: usize = 64;
static mut CAPTURES: [Option<Backtrace>; KEPT] = [const { None }; KEPT];
static SIGNALS: AtomicUsize = AtomicUsize::new(0);
static TAKEN: AtomicUsize = AtomicUsize::new(0);
static IN_ALLOCATOR_SKIPPED: AtomicUsize = AtomicUsize::new(0);

extern "C" fn on_sigprof(_: libc::c_int) {
    // SAFETY: errno is this thread's; it is restored before returning, as
    // the interrupted code expects.
    let saved = unsafe { *libc::__errno_location() };
    SIGNALS.fetch_add(1, Relaxed);
    if IN_ALLOCATOR.with(Cell::get) {
        IN_ALLOCATOR_SKIPPED.fetch_add(1, Relaxed);
    } else {
        let backtrace = Backtrace::force_capture();
        let n = TAKEN.fetch_add(1, Relaxed);
        // SAFETY: only this handler uses CAPTURES while the timer runs, and
        // it cannot interrupt itself (SIGPROF is blocked while it runs).
        unsafe { (*std::ptr::addr_of_mut!(CAPTURES))[n % KEPT] = Some(backtrace) };
    }
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = saved };
}

/// A timer that sends SIGPROF to this thread every `interval` of real
/// time (a process-directed signal could land in the test harness's
/// thread instead).
struct ThreadTimer(libc::timer_t);

impl ThreadTimer {
    fn start(interval: Duration) -> Self {
        // SAFETY: a zeroed sigevent is valid; the fields set say "SIGPROF
        // to this thread".
        let mut event: libc::sigevent = unsafe { std::mem::zeroed() };
        event.sigev_notify = libc::SIGEV_THREAD_ID;
        event.sigev_signo = libc::SIGPROF;
        // SAFETY: gettid has no preconditions.
        event.sigev_notify_thread_id = unsafe { libc::syscall(libc::SYS_gettid) } as libc::c_int;
        let mut timer: libc::timer_t = std::ptr::null_mut();
        // SAFETY: valid pointers to the event and the timer id.
        assert_eq!(
            unsafe { libc::timer_create(libc::CLOCK_MONOTONIC, &mut event, &mut timer) },
            0
        );
        let spec = libc::timespec {
            tv_sec: 0,
            tv_nsec: interval.as_nanos() as libc::c_long,
        };
        let value = libc::itimerspec {
            it_interval: spec,
            it_value: spec,
        };
        // SAFETY: the timer just created, a valid itimerspec.
        assert_eq!(
            unsafe { libc::timer_settime(timer, 0, &value, std::ptr::null_mut()) },
            0
        );
        ThreadTimer(timer)
    }
}

impl Drop for ThreadTimer {
    fn drop(&mut self) {
        // SAFETY: the timer this value created, deleted once.
        unsafe { libc::timer_delete(self.0) };
    }
}

fn storm_seconds() -> f64 {
    std::env::var("UCORO_STORM_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|&s: &f64| s > 0.0)
        .unwrap_or(1.0)
}

/// One round: a coroutine that starts a nested one, resumes it until it
/// returns and yields to this caller after each resumption.
#[inline(never)]
fn round() -> u64 {
    let mut outer = Coroutine::new(|y, n: u64| {
        let mut inner = Coroutine::new(|y, mut n: u64| {
            for _ in 0..16 {
                n = y.suspend(n + 1);
            }
            n
        });
        let mut n = n;
        loop {
            match inner.resume(n) {
                Ok(CoroutineResult::Yield(v)) => n = y.suspend(v),
                Ok(CoroutineResult::Return(v)) => return v,
                Err(e) => panic!("inner: {e}"),
            }
        }
    });
    let mut n = 0;
    loop {
        match outer.resume(n) {
            Ok(CoroutineResult::Yield(v)) => n = black_box(v),
            Ok(CoroutineResult::Return(v)) => return v,
            Err(e) => panic!("outer: {e}"),
        }
    }
}

#[test]
fn backtraces_captured_in_a_signal_handler_during_switches_all_return() {
    if !common::switch_is_assembly() {
        // The portable modes switch with glibc's _longjmp or swapcontext,
        // whose unwind information is wrong right after they load the new
        // stack pointer (x86_64 swapcontext.S: libgcc reads garbage there
        // and faults): glibc's switch, not the library's.
        // csrc/tests/signal_unwind.c says the same.
        eprintln!(
            "SKIP backtraces_captured_in_a_signal_handler_during_switches_all_return: this \
             mode switches with glibc's _longjmp or swapcontext, which unwinders cannot \
             follow at every instruction"
        );
        return;
    }
    // SAFETY: a handler that does only what the module comment allows,
    // installed with an empty mask and no flags but SA_RESTART.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_sigprof as *const () as usize;
        sa.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut sa.sa_mask);
        assert_eq!(libc::sigaction(libc::SIGPROF, &sa, std::ptr::null_mut()), 0);
    }
    // std's one-time set-up, outside the handler.
    drop(Backtrace::force_capture());
    // The library's one-time set-up of this thread, outside the storm too:
    // its first finished coroutine registers a thread-exit destructor (the
    // reuse cache's), whose list glibc allocates with its own calloc, which
    // the counting allocator does not see: a capture there deadlocked on
    // malloc's lock.
    black_box(round());

    let end = Instant::now() + Duration::from_secs_f64(storm_seconds());
    let mut rounds = 0u64;
    let timer = ThreadTimer::start(Duration::from_micros(20));
    while Instant::now() < end {
        black_box(round());
        rounds += 1;
    }
    drop(timer);
    // SAFETY: restores the default action; a pending SIGPROF is then
    // ignored rather than delivered (the timer is off).
    unsafe { libc::signal(libc::SIGPROF, libc::SIG_IGN) };

    let (signals, taken) = (SIGNALS.load(Relaxed), TAKEN.load(Relaxed));
    eprintln!(
        "{rounds} rounds, {signals} signals, {taken} backtraces captured, {} in the allocator",
        IN_ALLOCATOR_SKIPPED.load(Relaxed)
    );
    assert!(taken > 0, "no backtrace was captured");
    // The kept captures resolve and show the handler.
    // SAFETY: the timer is off and SIGPROF ignored: the handler no longer runs.
    let kept = unsafe { &*std::ptr::addr_of!(CAPTURES) };
    for backtrace in kept.iter().flatten() {
        let text = backtrace.to_string();
        assert!(text.contains("on_sigprof"), "{text}");
    }
}
