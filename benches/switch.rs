//! Switch-cost benchmarks: ucoro (safe API, C API, and the C API in its other
//! switch modes) against corosensei, Boost.Context (the `context` crate) and
//! a thread hand-off, all in one run with the same criterion settings.
//!
//! ```text
//! cargo bench --bench switch                      # full run (a few minutes)
//! cargo bench --bench switch -- --test            # smoke: each bench once
//! cargo run --release --manifest-path benches/report/Cargo.toml  # BENCHMARKS.md + docs/benchmarks.svg
//! ```
//!
//! Groups and IDs (the report generator knows these names):
//!
//! - `round_trip/*`: one resume + one suspend of a long-lived coroutine
//!   (for `thread_condvar`: a token sent to another thread and back).
//! - `lifecycle/*`: create a coroutine, run it to its end, free it.
//! - `nesting_1000/*`: a chain of 1000 coroutines, each created and resumed
//!   by its parent; the innermost yields, every level yields once back up to
//!   the top, then the top is resumed once more and every level returns.
//! - `generator_1m/*`: a generator yielding 0..1_000_000, summed.
//! - `step/*`: one round trip inside a function that is not inlined and
//!   returns (an iterator's `next`, a protocol step), as callers write it.
//! - `generator_next/*`: one value of an endless generator through a
//!   `next()` that is not inlined.
//!
//! The `ucoro_c_setjmp` / `ucoro_c_ucontext` benches use the copies of the C
//! library built with `-DUCORO_SWITCH_SETJMP` / `-DUCORO_SWITCH_UCONTEXT`
//! (feature `bench-modes`, on for `cargo bench` through the self
//! dev-dependency in Cargo.toml).

use std::hint::black_box;
use std::mem::MaybeUninit;
use std::os::raw::{c_int, c_void};
use std::ptr;
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::thread;

use criterion::{criterion_group, Bencher, Criterion, SamplingMode};

#[path = "support/ops.rs"]
mod ops;

use ucoro::sys::coroutine;

#[cfg(feature = "bench-modes")]
#[path = "support/modes.rs"]
mod modes;

/// Stack size of every coroutine in the nesting benches (all libraries).
const NEST_STACK: usize = 64 << 10;
/// Number of coroutines in the nesting chain.
const NEST_DEPTH: usize = 1000;
/// Values yielded by the generator benches.
const GENERATOR_LEN: u64 = 1_000_000;

// ---------------------------------------------------------------------------
// The C API, generic over the copy of the C library (switch mode).

/// The C functions of one copy of the C library. Implementations call the
/// extern functions directly, so every mode is called the same way.
trait CApi {
    unsafe fn init(co: *mut coroutine) -> c_int;
    unsafe fn release(co: *mut coroutine) -> c_int;
    unsafe fn yieldto(to: *mut coroutine, arg: *mut c_void) -> *mut c_void;
    unsafe fn yield_(arg: *mut c_void) -> *mut c_void;
}

macro_rules! c_api {
    ($name:ident, $($module:ident)::+) => {
        struct $name;
        impl CApi for $name {
            #[inline(always)]
            unsafe fn init(co: *mut coroutine) -> c_int {
                unsafe { $($module)::+::coroutine_init(co) }
            }
            #[inline(always)]
            unsafe fn release(co: *mut coroutine) -> c_int {
                unsafe { $($module)::+::coroutine_release(co) }
            }
            #[inline(always)]
            unsafe fn yieldto(to: *mut coroutine, arg: *mut c_void) -> *mut c_void {
                unsafe { $($module)::+::coroutine_yieldto(to, arg) }
            }
            #[inline(always)]
            unsafe fn yield_(arg: *mut c_void) -> *mut c_void {
                unsafe { $($module)::+::coroutine_yield(arg) }
            }
        }
    };
}

c_api!(DefaultMode, ucoro::sys);
#[cfg(feature = "bench-modes")]
c_api!(SetjmpMode, modes::setjmp);
#[cfg(feature = "bench-modes")]
c_api!(UcontextMode, modes::ucontext);

/// A heap-allocated `struct coroutine` (its address must not change).
fn new_c_coroutine(
    entry: unsafe extern "C" fn(*mut c_void) -> *mut c_void,
    stack_size: usize,
) -> Box<coroutine> {
    // SAFETY: struct coroutine is plain C data for which all-zero is valid.
    let mut co: Box<coroutine> = Box::new(unsafe { MaybeUninit::zeroed().assume_init() });
    co.stack_size = stack_size;
    co.entry = Some(entry);
    co
}

/// Entry of the round-trip coroutine: yields its input plus one, forever.
unsafe extern "C" fn c_echo<A: CApi>(arg: *mut c_void) -> *mut c_void {
    let mut v = arg as usize;
    loop {
        v = unsafe { A::yield_(v.wrapping_add(1) as *mut c_void) } as usize;
    }
}

fn c_round_trip<A: CApi>(b: &mut Bencher) {
    let mut co = new_c_coroutine(c_echo::<A>, 0);
    let co: *mut coroutine = &mut *co;
    // SAFETY: co is a valid struct with entry set; it runs only inside the
    // yieldto calls below, and is released while suspended (its endless
    // loop holds nothing that needs dropping).
    unsafe {
        assert_eq!(A::init(co), 0, "coroutine_init");
        A::yieldto(co, ptr::null_mut()); // start it: later calls are pure switches
        let mut v = 0usize;
        b.iter(|| {
            v = A::yieldto(co, black_box(v) as *mut c_void) as usize;
        });
        assert_eq!(A::release(co), 0, "coroutine_release");
    }
}

/// Entry of the lifecycle coroutine: returns at once.
unsafe extern "C" fn c_return_at_once(arg: *mut c_void) -> *mut c_void {
    arg
}

fn c_lifecycle<A: CApi>(b: &mut Bencher) {
    let mut co = new_c_coroutine(c_return_at_once, 0);
    let co: *mut coroutine = &mut *co;
    b.iter(|| {
        // SAFETY: init accepts an exited (or never used) struct; the
        // coroutine runs to its end before it is released.
        unsafe {
            (*co).stack_size = 0; // the default, as a fresh caller would
            assert_eq!(A::init(co), 0, "coroutine_init");
            let r = loop {
                let r = A::yieldto(co, black_box(co.cast::<c_void>()));
                if (*co).exited != 0 {
                    break r;
                }
            };
            A::release(co);
            black_box(r)
        }
    });
}

/// One level of the C nesting chain; `arg` is the number of levels below.
unsafe extern "C" fn c_level<A: CApi>(arg: *mut c_void) -> *mut c_void {
    let below = arg as usize;
    // SAFETY: the child lives in this frame, which outlives it (the child
    // finishes before this function returns).
    unsafe {
        if below == 0 {
            A::yield_(ptr::null_mut());
            return ptr::null_mut();
        }
        let mut child: coroutine = MaybeUninit::zeroed().assume_init();
        child.stack_size = NEST_STACK;
        child.entry = Some(c_level::<A>);
        assert_eq!(A::init(&mut child), 0, "coroutine_init");
        let v = A::yieldto(&mut child, (below - 1) as *mut c_void) as usize;
        A::yield_((v + 1) as *mut c_void);
        let r = A::yieldto(&mut child, ptr::null_mut()) as usize;
        assert!(child.exited != 0);
        A::release(&mut child);
        (r + 1) as *mut c_void
    }
}

fn c_nesting<A: CApi>(b: &mut Bencher) {
    let mut top = new_c_coroutine(c_level::<A>, NEST_STACK);
    let top: *mut coroutine = &mut *top;
    b.iter(|| {
        // SAFETY: as in c_lifecycle; the chain finishes before release.
        unsafe {
            (*top).stack_size = NEST_STACK;
            assert_eq!(A::init(top), 0, "coroutine_init");
            let up = A::yieldto(top, (NEST_DEPTH - 1) as *mut c_void) as usize;
            let ret = A::yieldto(top, ptr::null_mut()) as usize;
            assert!((*top).exited != 0);
            A::release(top);
            assert_eq!((up, ret), (NEST_DEPTH - 1, NEST_DEPTH - 1));
        }
    });
}

// ---------------------------------------------------------------------------
// ucoro's safe API.

/// Round trips `op` on `co`, each handing on the value the last one
/// brought back (benches/support/ops.rs has the operations).
fn echo<C>(b: &mut Bencher, mut co: C, op: impl Fn(&mut C, u64) -> u64) {
    let mut v = 0u64;
    b.iter(|| v = op(&mut co, v));
}

/// Values of the generator `g`, each fetched by `next`.
fn next_of<G>(b: &mut Bencher, mut g: G, next: impl Fn(&mut G) -> Option<u64>) {
    b.iter(|| next(&mut g));
}

fn safe_lifecycle(b: &mut Bencher) {
    b.iter(ops::ucoro_lifecycle);
}

fn safe_level(below: usize) -> ucoro::Coroutine<(), usize, usize> {
    ucoro::Builder::new()
        .stack_size(NEST_STACK)
        .build(move |y, ()| {
            if below == 0 {
                y.suspend(0);
                return 0;
            }
            let mut child = safe_level(below - 1);
            let Ok(ucoro::CoroutineResult::Yield(v)) = child.resume(()) else {
                unreachable!()
            };
            y.suspend(v + 1);
            let Ok(ucoro::CoroutineResult::Return(r)) = child.resume(()) else {
                unreachable!()
            };
            r + 1
        })
        .expect("stack")
}

fn safe_nesting(b: &mut Bencher) {
    b.iter(|| {
        let mut top = safe_level(NEST_DEPTH - 1);
        let up = top.resume(()).unwrap();
        let ret = top.resume(()).unwrap();
        assert_eq!(
            (up, ret),
            (
                ucoro::CoroutineResult::Yield(NEST_DEPTH - 1),
                ucoro::CoroutineResult::Return(NEST_DEPTH - 1)
            )
        );
    });
}

fn safe_generator(b: &mut Bencher) {
    b.iter(|| {
        let g = ucoro::Generator::new(|y| {
            for i in 0..GENERATOR_LEN {
                y.suspend(i);
            }
        });
        let sum: u64 = g.sum();
        assert_eq!(sum, GENERATOR_LEN * (GENERATOR_LEN - 1) / 2);
        sum
    });
}

// ---------------------------------------------------------------------------
// corosensei.

use corosensei::stack::DefaultStack;

fn corosensei_lifecycle_fresh(b: &mut Bencher) {
    b.iter(|| {
        let mut co: corosensei::Coroutine<u64, (), u64> = corosensei::Coroutine::new(|_, v| v + 1);
        let r = co.resume(black_box(1));
        drop(co);
        black_box(r)
    });
}

fn corosensei_lifecycle_reused(b: &mut Bencher) {
    let mut stack = Some(DefaultStack::default());
    b.iter(|| ops::corosensei_lifecycle_reused(&mut stack));
}

fn corosensei_level(below: usize) -> corosensei::Coroutine<(), usize, usize> {
    let stack = DefaultStack::new(NEST_STACK).expect("stack");
    corosensei::Coroutine::with_stack(stack, move |y, ()| {
        if below == 0 {
            y.suspend(0);
            return 0;
        }
        let mut child = corosensei_level(below - 1);
        let corosensei::CoroutineResult::Yield(v) = child.resume(()) else {
            unreachable!()
        };
        y.suspend(v + 1);
        let corosensei::CoroutineResult::Return(r) = child.resume(()) else {
            unreachable!()
        };
        r + 1
    })
}

fn corosensei_nesting(b: &mut Bencher) {
    b.iter(|| {
        let mut top = corosensei_level(NEST_DEPTH - 1);
        let up = top.resume(()).as_yield();
        let ret = top.resume(()).as_return();
        assert_eq!((up, ret), (Some(NEST_DEPTH - 1), Some(NEST_DEPTH - 1)));
    });
}

fn corosensei_generator(b: &mut Bencher) {
    b.iter(|| {
        let mut co: corosensei::Coroutine<(), u64, ()> = corosensei::Coroutine::new(|y, ()| {
            for i in 0..GENERATOR_LEN {
                y.suspend(i);
            }
        });
        let mut sum = 0u64;
        while let corosensei::CoroutineResult::Yield(v) = co.resume(()) {
            sum += v;
        }
        assert_eq!(sum, GENERATOR_LEN * (GENERATOR_LEN - 1) / 2);
        sum
    });
}

// ---------------------------------------------------------------------------
// Boost.Context through the `context` crate.

extern "C" fn boost_echo(mut t: context::context::Transfer) -> ! {
    loop {
        let next = t.data.wrapping_add(1);
        // SAFETY: t.context is the suspended caller, resumed exactly once.
        t = unsafe { t.context.resume(next) };
    }
}

fn boost_round_trip(b: &mut Bencher) {
    use context::stack::ProtectedFixedSizeStack;
    use context::Context;

    let stack = ProtectedFixedSizeStack::default();
    // SAFETY: the stack outlives every use of the context (both live until
    // the end of this function; the suspended context holds no resources).
    let mut ctx = Some(unsafe { Context::new(&stack, boost_echo) });
    let mut v = 0usize;
    b.iter(|| {
        // SAFETY: ctx is the suspended coroutine, resumed exactly once; the
        // context it hands back replaces it.
        let t = unsafe { ctx.take().unwrap().resume(black_box(v)) };
        v = t.data;
        ctx = Some(t.context);
    });
    // The suspended context owns nothing: freeing its stack (after the
    // last resume above) is all the cleanup there is.
    drop(stack);
}

// ---------------------------------------------------------------------------
// Two OS threads handing a token back and forth.

#[derive(Clone, Copy, PartialEq, Eq)]
enum Turn {
    Main,
    Worker,
    Stop,
}

fn thread_round_trip(b: &mut Bencher) {
    let shared = Arc::new((Mutex::new(Turn::Main), Condvar::new()));
    let worker = {
        let shared = Arc::clone(&shared);
        thread::spawn(move || {
            unpin();
            let (lock, cv) = &*shared;
            let mut turn = lock.lock().unwrap();
            loop {
                while *turn == Turn::Main {
                    turn = cv.wait(turn).unwrap();
                }
                if *turn == Turn::Stop {
                    return;
                }
                *turn = Turn::Main;
                cv.notify_one();
            }
        })
    };
    let (lock, cv) = &*shared;
    b.iter(|| {
        let mut turn = lock.lock().unwrap();
        *turn = Turn::Worker;
        cv.notify_one();
        while *turn == Turn::Worker {
            turn = cv.wait(turn).unwrap();
        }
    });
    *lock.lock().unwrap() = Turn::Stop;
    cv.notify_one();
    worker.join().unwrap();
}

// ---------------------------------------------------------------------------

fn round_trip(c: &mut Criterion) {
    let mut g = c.benchmark_group("round_trip");
    g.bench_function("ucoro_safe", |b| {
        echo(b, ops::ucoro_echo(), ops::ucoro_round_trip)
    });
    g.bench_function("ucoro_c", c_round_trip::<DefaultMode>);
    #[cfg(feature = "bench-modes")]
    g.bench_function("ucoro_c_setjmp", c_round_trip::<SetjmpMode>);
    #[cfg(feature = "bench-modes")]
    g.bench_function("ucoro_c_ucontext", c_round_trip::<UcontextMode>);
    // Dropping the suspended coroutine unwinds its (drop-free) stack.
    g.bench_function("corosensei", |b| {
        echo(b, ops::corosensei_echo(), ops::corosensei_round_trip)
    });
    g.bench_function("boost_context", boost_round_trip);
    g.bench_function("thread_condvar", thread_round_trip);
    g.finish();
}

/// One round trip inside a function that returns, and one generator value
/// through a `next()` that is not inlined (benches/support/ops.rs).
fn step(c: &mut Criterion) {
    let mut g = c.benchmark_group("step");
    g.bench_function("ucoro_safe", |b| {
        echo(b, ops::ucoro_echo(), ops::ucoro_step)
    });
    g.bench_function("corosensei", |b| {
        echo(b, ops::corosensei_echo(), ops::corosensei_step)
    });
    g.finish();
    let mut g = c.benchmark_group("generator_next");
    g.bench_function("ucoro", |b| {
        next_of(b, ops::ucoro_counter(), ops::ucoro_next)
    });
    g.bench_function("corosensei", |b| {
        next_of(b, ops::corosensei_counter(), ops::corosensei_next)
    });
    g.finish();
}

fn lifecycle(c: &mut Criterion) {
    let mut g = c.benchmark_group("lifecycle");
    g.bench_function("ucoro_c", c_lifecycle::<DefaultMode>);
    #[cfg(feature = "bench-modes")]
    g.bench_function("ucoro_c_setjmp", c_lifecycle::<SetjmpMode>);
    #[cfg(feature = "bench-modes")]
    g.bench_function("ucoro_c_ucontext", c_lifecycle::<UcontextMode>);
    g.bench_function("ucoro_safe", safe_lifecycle);
    g.bench_function("corosensei_fresh_stack", corosensei_lifecycle_fresh);
    g.bench_function("corosensei_reused_stack", corosensei_lifecycle_reused);
    g.finish();
}

fn nesting(c: &mut Criterion) {
    let mut g = c.benchmark_group("nesting_1000");
    // Milliseconds per iteration: flat sampling keeps the run short.
    g.sampling_mode(SamplingMode::Flat).sample_size(20);
    g.bench_function("ucoro_c", c_nesting::<DefaultMode>);
    g.bench_function("ucoro_safe", safe_nesting);
    g.bench_function("corosensei", corosensei_nesting);
    g.finish();
}

fn generator(c: &mut Criterion) {
    let mut g = c.benchmark_group("generator_1m");
    g.sampling_mode(SamplingMode::Flat).sample_size(10);
    g.bench_function("ucoro", safe_generator);
    g.bench_function("corosensei", corosensei_generator);
    g.finish();
}

criterion_group!(benches, round_trip, step, lifecycle, nesting, generator);

/// `criterion_main!`, plus a marker with the start time of a measuring run,
/// so that the report generator can tell this run's results from leftovers.
fn main() {
    pin_from_env();
    mark_run_start();
    benches();
    Criterion::default().configure_from_args().final_summary();
}

/// The CPUs this process could run on before `pin_from_env` pinned the
/// measuring thread (unset when it did not).
static UNPINNED: OnceLock<libc::cpu_set_t> = OnceLock::new();

/// `UCORO_BENCH_CPU=N` pins the measuring thread to CPU N. On a shared
/// machine the scheduler moving it between CPUs whose neighbours load them
/// differently adds noise to some samples and not others; pinned, a ratio
/// of two benchmarks measured one after the other holds better. The
/// thread hand-off's worker is set free again (`unpin`): it would
/// otherwise share the one CPU and measure a different thing.
fn pin_from_env() {
    let Some(cpu) = std::env::var("UCORO_BENCH_CPU")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
    else {
        return;
    };
    // SAFETY: cpu_set_t is plain data (all zero is the empty set); the
    // calls read and write only the sets passed, for the calling thread.
    unsafe {
        let mut free: libc::cpu_set_t = std::mem::zeroed();
        let size = std::mem::size_of::<libc::cpu_set_t>();
        if libc::sched_getaffinity(0, size, &mut free) != 0 {
            eprintln!("UCORO_BENCH_CPU: sched_getaffinity failed; not pinned");
            return;
        }
        let mut one: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut one);
        if libc::sched_setaffinity(0, size, &one) != 0 {
            eprintln!("UCORO_BENCH_CPU={cpu}: cannot run there; not pinned");
            return;
        }
        let _ = UNPINNED.set(free);
    }
}

/// Lets the calling thread run on every CPU the process could before
/// `pin_from_env`.
fn unpin() {
    if let Some(free) = UNPINNED.get() {
        // SAFETY: as in `pin_from_env`.
        unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), free) };
    }
}

/// Writes `<criterion dir>/ucoro-bench-run` (the Unix time now) when this is
/// a measuring run (`cargo bench`, not `--test` or `--list`). The directory
/// is found the way criterion finds it: `$CRITERION_HOME`, else
/// `$CARGO_TARGET_DIR/criterion`, else `cargo metadata`'s target directory.
fn mark_run_start() {
    let args: Vec<String> = std::env::args().collect();
    let measuring = args.iter().any(|a| a == "--bench")
        && !args
            .iter()
            .any(|a| a == "--test" || a == "--list" || a.starts_with("--profile-time"));
    if !measuring {
        return;
    }
    let dir = if let Some(d) = std::env::var_os("CRITERION_HOME") {
        std::path::PathBuf::from(d)
    } else if let Some(d) = std::env::var_os("CARGO_TARGET_DIR") {
        std::path::PathBuf::from(d).join("criterion")
    } else {
        cargo_target_dir()
            .unwrap_or_else(|| "target".into())
            .join("criterion")
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(dir.join("ucoro-bench-run"), format!("{now}\n"));
}

fn cargo_target_dir() -> Option<std::path::PathBuf> {
    let out = std::process::Command::new(std::env::var_os("CARGO")?)
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let key = "\"target_directory\":\"";
    let start = text.find(key)? + key.len();
    let end = start + text[start..].find('"')?;
    Some(text[start..end].replace("\\\\", "\\").into())
}
