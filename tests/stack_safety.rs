//! SPEC §6 (stacks and overflow): guard regions, overflow reports, the
//! chaining of other faults, the cost of many stacks and `ucoro_stack_used`.
//!
//! How these tests are built:
//!
//! - Everything that faults runs in a child process: the test re-runs this
//!   binary for itself alone (`--exact <test>`) with
//!   `UCORO_CHILD=<test>/<scenario>`; in that child the test body runs the
//!   scenario instead (see [`scenario`] and [`run_child`]). The parent then
//!   checks how the child died and what it wrote.
//! - A child that survives a fault it should have died of panics, so its
//!   exit status (101) and stderr show what went wrong.
//! - Recursion that must overflow keeps a `black_box`ed array alive across
//!   its recursive call ([`recurse_forever`]), so it can be neither turned
//!   into a loop nor into a tail call.
//! - Signal handlers written by the tests only use atomics, `write` and
//!   `_exit` (async-signal-safe).
#![warn(clippy::undocumented_unsafe_blocks)]
#![deny(unsafe_op_in_unsafe_fn)]

use std::env;
use std::ffi::{c_int, c_void};
use std::hint::black_box;
use std::io::{self, Write};
use std::mem::{self, MaybeUninit};
use std::process::Output;
use std::ptr;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::Instant;

use ucoro::{sys, Builder, Coroutine, CoroutineResult, Yielder};

mod common;
use common::{
    assert_child_killed_by, assert_child_passed, child_command, describe, proc_status_bytes, Entry,
    CHILD_ENV, DEFAULT_STACK, SMALL_STACK,
};

/// The guard region below every stack (csrc/stack.c `GUARD_SIZE`).
const GUARD: usize = 64 << 10;
/// What the library writes when a guard region is hit.
const OVERFLOW_MSG: &str = "ucoro: stack overflow in coroutine 0x";
/// What Rust's runtime writes for a thread stack overflow.
const RUST_OVERFLOW_MSG: &str = "has overflowed its stack";

// ---------------------------------------------------------------------------
// Child processes
// ---------------------------------------------------------------------------

/// In a child started by [`run_child`] for `test`: the scenario it must run.
fn scenario(test: &str) -> Option<String> {
    let value = env::var(CHILD_ENV).ok()?;
    let rest = value.strip_prefix(test)?.strip_prefix('/')?;
    Some(rest.to_owned())
}

/// Re-runs this binary for `test` alone, asking it to run `scenario`, with
/// the extra environment `envs`; returns its output.
fn run_child(test: &str, scenario: &str, envs: &[(&str, &str)]) -> Output {
    let mut cmd = child_command(test, &format!("{test}/{scenario}"));
    // Inherited settings must not change what the child does.
    cmd.env_remove("UCORO_OVERFLOW_REPORTING")
        .env_remove("RUST_BACKTRACE");
    for (key, value) in envs {
        cmd.env(key, value);
    }
    cmd.output().expect("run the child test process")
}

fn stderr_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The child's one overflow report, checked against the format
/// `ucoro: stack overflow in coroutine 0x<hex> (stack <size> bytes)`;
/// returns the address as printed.
fn overflow_report(out: &Output, stack_size: usize) -> String {
    let stderr = stderr_of(out);
    let reports: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("ucoro: stack overflow"))
        .collect();
    assert_eq!(
        reports.len(),
        1,
        "exactly one overflow report expected:\n{}",
        describe(out)
    );
    let line = reports[0];
    let rest = line
        .strip_prefix(OVERFLOW_MSG)
        .unwrap_or_else(|| panic!("report must start with {OVERFLOW_MSG:?}: {line:?}"));
    let (hex, tail) = rest
        .split_once(' ')
        .unwrap_or_else(|| panic!("malformed report: {line:?}"));
    assert!(
        !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit()),
        "address in the report must be hex: {line:?}"
    );
    assert_eq!(
        tail,
        format!("(stack {stack_size} bytes)"),
        "stack size in the report: {line:?}"
    );
    format!("0x{hex}")
}

fn assert_no_overflow_report(out: &Output) {
    let stderr = stderr_of(out);
    assert!(
        !stderr.contains("ucoro: stack overflow"),
        "no ucoro overflow report expected:\n{}",
        describe(out)
    );
    assert!(
        !stderr.contains(RUST_OVERFLOW_MSG),
        "no Rust thread overflow report expected:\n{}",
        describe(out)
    );
}

/// Writes a line to stdout and flushes it: the process may die right after.
fn say(line: &str) {
    let mut stdout = io::stdout().lock();
    writeln!(stdout, "{line}").expect("write to stdout");
    stdout.flush().expect("flush stdout");
}

/// The value the child printed as `<key> <value>` (libtest's own output may
/// precede it on the line).
fn printed(out: &Output, key: &str) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout);
    stdout
        .lines()
        .find_map(|l| {
            let (_, rest) = l.split_once(&format!("{key} "))?;
            rest.split_whitespace().next().map(str::to_owned)
        })
        .unwrap_or_else(|| panic!("the child did not print {key:?}:\n{}", describe(out)))
}

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// Recurses until the stack runs out. Each frame keeps a 1 KiB array alive
/// across the recursive call (so neither a loop nor a tail call can replace
/// it), filled with one byte: it cannot reproduce [`pattern_byte`]'s
/// varying sequence.
#[inline(never)]
fn recurse_forever(depth: usize) -> usize {
    let frame = black_box([(depth as u8) | 1; 1024]);
    if black_box(depth) == usize::MAX {
        return usize::from(frame[0]);
    }
    recurse_forever(depth + 1).wrapping_add(usize::from(frame[depth % frame.len()]))
}

/// A coroutine entry that overflows its stack.
///
/// # Safety
/// Only meant to be run as a coroutine entry by the C library.
unsafe extern "C" fn overflow_entry(_arg: *mut c_void) -> *mut c_void {
    recurse_forever(0) as *mut c_void
}

/// A zeroed C struct, with the given stack size and entry.
fn raw_coroutine(stack_size: usize, entry: Entry) -> sys::coroutine {
    // SAFETY: struct coroutine is plain C data (pointers, integers, optional
    // function pointers) for which all-zero is a valid value.
    let mut co: sys::coroutine = unsafe { MaybeUninit::zeroed().assume_init() };
    co.stack_size = stack_size;
    co.entry = Some(entry);
    co
}

/// A heap-allocated, initialised raw coroutine that never moves (it is
/// leaked: the children that use it die or exit without freeing it).
fn leaked_raw_coroutine(stack_size: usize, entry: Entry) -> *mut sys::coroutine {
    let co = Box::into_raw(Box::new(raw_coroutine(stack_size, entry)));
    // SAFETY: co points to a valid struct with its in-fields set, which
    // stays at this address for the rest of the process.
    let rc = unsafe { sys::coroutine_init(co) };
    assert_eq!(rc, 0, "coroutine_init: {}", io::Error::last_os_error());
    co
}

/// The usable stack of an initialised raw coroutine: (lowest address, size).
///
/// # Safety
/// `co` must point to a live struct coroutine that coroutine_init set up
/// (its stack fields are then only read, never written, until release).
unsafe fn stack_of(co: *const sys::coroutine) -> (usize, usize) {
    // SAFETY: the caller's contract.
    let cc = unsafe { &(*co).cc };
    (cc.stack as usize, cc.stack_size)
}

/// The current SIGSEGV disposition (`sa_sigaction`/`sa_handler` value).
fn sigsegv_handler() -> libc::sighandler_t {
    // SAFETY: all-zero is a valid sigaction; sigaction with a NULL new action
    // only writes the current one into `old`, which we own.
    unsafe {
        let mut old: libc::sigaction = mem::zeroed();
        assert_eq!(libc::sigaction(libc::SIGSEGV, ptr::null(), &mut old), 0);
        old.sa_sigaction
    }
}

type SigInfoHandler = extern "C" fn(c_int, *mut libc::siginfo_t, *mut c_void);
type PlainHandler = extern "C" fn(c_int);

/// Installs `handler` for SIGSEGV: with `SA_SIGINFO` when `siginfo`, always
/// on the alternate signal stack.
fn install_sigsegv(handler: libc::sighandler_t, siginfo: bool) {
    // SAFETY: all-zero is a valid sigaction; the handler is an extern "C" fn
    // of the signature that matches the flags (the two wrappers below), and
    // it only does async-signal-safe things.
    unsafe {
        let mut sa: libc::sigaction = mem::zeroed();
        sa.sa_sigaction = handler;
        sa.sa_flags = libc::SA_ONSTACK | if siginfo { libc::SA_SIGINFO } else { 0 };
        libc::sigemptyset(&mut sa.sa_mask);
        assert_eq!(libc::sigaction(libc::SIGSEGV, &sa, ptr::null_mut()), 0);
    }
}

fn install_siginfo_handler(handler: SigInfoHandler) -> libc::sighandler_t {
    let h = handler as libc::sighandler_t;
    install_sigsegv(h, true);
    h
}

fn install_plain_handler(handler: PlainHandler) -> libc::sighandler_t {
    let h = handler as libc::sighandler_t;
    install_sigsegv(h, false);
    h
}

/// Writes `msg` to stderr from a signal handler.
fn signal_say(msg: &[u8]) {
    // SAFETY: write(2) is async-signal-safe; msg is a valid buffer.
    unsafe { libc::write(libc::STDERR_FILENO, msg.as_ptr().cast(), msg.len()) };
}

/// Ends the process from a signal handler.
fn signal_exit(code: c_int) -> ! {
    // SAFETY: _exit is async-signal-safe and takes no pointers.
    unsafe { libc::_exit(code) }
}

/// The fault address of a SIGSEGV.
fn fault_address(info: *mut libc::siginfo_t) -> usize {
    // SAFETY: the kernel passes a valid siginfo_t to SA_SIGINFO handlers.
    unsafe { (*info).si_addr() as usize }
}

/// One page of address space that faults on any access (PROT_NONE): not a
/// guard region, not a thread stack guard. Deliberately never unmapped, so
/// nothing else can be mapped there.
fn inaccessible_page() -> *mut u8 {
    // SAFETY: a fresh anonymous mapping touches no existing memory.
    let p = unsafe {
        libc::mmap(
            ptr::null_mut(),
            4096,
            libc::PROT_NONE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    assert_ne!(p, libc::MAP_FAILED, "mmap: {}", io::Error::last_os_error());
    p.cast()
}

// ---------------------------------------------------------------------------
// 1. An overflow in a safe-API coroutine is reported
// ---------------------------------------------------------------------------

#[test]
fn overflow_in_rust_coroutine_is_reported() {
    const TEST: &str = "overflow_in_rust_coroutine_is_reported";
    if let Some(s) = scenario(TEST) {
        assert_eq!(s, "overflow");
        let mut co = Builder::new()
            .stack_size(SMALL_STACK)
            .build(|_: &Yielder<(), ()>, ()| {
                // SAFETY: coroutine_self has no preconditions.
                let me = unsafe { sys::coroutine_self() };
                say(&format!("stack_safety: coroutine {me:p}"));
                black_box(recurse_forever(0));
            })
            .expect("build a coroutine with a small stack");
        assert_eq!(co.stack_size(), SMALL_STACK);
        let _ = co.resume(());
        panic!("the coroutine overflowed its stack and the process survived");
    }

    let out = overflow_child_reported(TEST);
    assert!(
        !stderr_of(&out).contains(RUST_OVERFLOW_MSG),
        "Rust's thread-stack message must not appear:\n{}",
        describe(&out)
    );
}

/// The safe API keeps a finished coroutine's stack for the next one it
/// creates (src/stack_cache.rs): an overflow on such a recycled stack is
/// still reported, naming the coroutine that runs there now.
#[test]
fn overflow_in_recycled_rust_coroutine_is_reported() {
    const TEST: &str = "overflow_in_recycled_rust_coroutine_is_reported";
    if let Some(s) = scenario(TEST) {
        assert_eq!(s, "overflow");
        let self_address = || {
            // SAFETY: coroutine_self has no preconditions.
            unsafe { sys::coroutine_self() as usize }
        };
        let mut first = Builder::new()
            .stack_size(SMALL_STACK)
            .build(move |_: &Yielder<(), ()>, ()| self_address())
            .expect("build a coroutine with a small stack");
        let first_address = first.resume(()).unwrap().into_return().unwrap();
        drop(first);
        let mut co = Builder::new()
            .stack_size(SMALL_STACK)
            .build(move |_: &Yielder<(), ()>, ()| {
                let me = self_address();
                // Sanitizer builds (which reserve terabytes of shadow
                // memory) never recycle: there it is a fresh stack.
                if common::proc_status_kib("VmSize") < 1 << 30 {
                    assert_eq!(me, first_address, "the finished coroutine was not reused");
                }
                say(&format!("stack_safety: coroutine {:p}", me as *const u8));
                black_box(recurse_forever(0));
            })
            .expect("build a coroutine with a small stack");
        let _ = co.resume(());
        panic!("the coroutine overflowed its stack and the process survived");
    }

    overflow_child_reported(TEST);
}

#[test]
fn overflow_in_on_stack_is_reported() {
    const TEST: &str = "overflow_in_on_stack_is_reported";
    if let Some(s) = scenario(TEST) {
        assert_eq!(s, "overflow");
        ucoro::on_stack(SMALL_STACK, || {
            // SAFETY: coroutine_self has no preconditions.
            let me = unsafe { sys::coroutine_self() };
            // SAFETY: the running coroutine's struct; stack_size is an
            // in/out field set when it was made.
            let size = unsafe { (*me).stack_size };
            assert!(size >= SMALL_STACK, "at least the size asked for");
            say(&format!("stack_safety: coroutine {me:p}"));
            say(&format!("stack_safety: size {size}"));
            black_box(recurse_forever(0));
        });
        panic!("on_stack's closure overflowed its stack and the process survived");
    }

    let out = run_child(TEST, "overflow", &[]);
    assert_child_killed_by(&out, libc::SIGSEGV);
    let size = printed(&out, "stack_safety: size").parse().expect("a size");
    let addr = overflow_report(&out, size);
    assert_eq!(
        addr,
        printed(&out, "stack_safety: coroutine"),
        "the report must name on_stack's coroutine:\n{}",
        describe(&out)
    );
}

// ---------------------------------------------------------------------------
// 2. An overflow in a raw C API coroutine is reported with its address
// ---------------------------------------------------------------------------

#[test]
fn overflow_in_c_api_coroutine_is_reported() {
    const TEST: &str = "overflow_in_c_api_coroutine_is_reported";
    if let Some(s) = scenario(TEST) {
        assert_eq!(s, "overflow");
        let co = leaked_raw_coroutine(SMALL_STACK, overflow_entry);
        // SAFETY: co is live and initialised.
        assert_eq!(unsafe { stack_of(co) }.1, SMALL_STACK);
        say(&format!("stack_safety: coroutine {co:p}"));
        // SAFETY: co is initialised, unstarted and never moves.
        unsafe { sys::coroutine_yieldto(co, ptr::null_mut()) };
        panic!("the coroutine overflowed its stack and the process survived");
    }

    overflow_child_reported(TEST);
}

/// Runs `test`'s "overflow" scenario, which prints "stack_safety: coroutine
/// <addr>" and then overflows a SMALL_STACK coroutine; checks that the child
/// died of SIGSEGV with the library's report naming that struct coroutine.
fn overflow_child_reported(test: &str) -> Output {
    let out = run_child(test, "overflow", &[]);
    assert_child_killed_by(&out, libc::SIGSEGV);
    let addr = overflow_report(&out, SMALL_STACK);
    assert_eq!(
        addr,
        printed(&out, "stack_safety: coroutine"),
        "the report must name the struct coroutine that overflowed:\n{}",
        describe(&out)
    );
    out
}

// ---------------------------------------------------------------------------
// 3. An overflow does not touch the stack below its guard
// ---------------------------------------------------------------------------

/// Bytes of the pattern the neighbour holds.
const PATTERN_LEN: usize = 4096;
/// Where the neighbour's pattern lives (exported by the neighbour).
static NEIGHBOUR_BUF: AtomicUsize = AtomicUsize::new(0);
/// The victim's guard region, [lo, hi).
static VICTIM_GUARD_LO: AtomicUsize = AtomicUsize::new(0);
static VICTIM_GUARD_HI: AtomicUsize = AtomicUsize::new(0);

const VERDICT_INTACT: &str = "verdict: fault in the victim's guard, neighbour intact";
const VERDICT_CORRUPT: &str = "verdict: neighbour's pattern corrupted";
const VERDICT_ELSEWHERE: &str = "verdict: fault outside the victim's guard";

/// A sequence no frame of [`recurse_forever`] can reproduce over 4 KiB.
fn pattern_byte(i: usize) -> u8 {
    (i.wrapping_mul(31).wrapping_add(7) % 251) as u8
}

fn pattern_intact(buf: *const u8) -> bool {
    (0..PATTERN_LEN).all(|i| {
        // SAFETY: buf points to the neighbour's PATTERN_LEN-byte array on
        // its (suspended, still allocated) stack.
        unsafe { buf.add(i).read_volatile() == pattern_byte(i) }
    })
}

/// Fills a local buffer with the pattern, exports its address and suspends
/// holding it.
///
/// # Safety
/// Only meant to be run as a coroutine entry by the C library, entered with
/// coroutine_yieldto (so that it has a caller to yield to).
unsafe extern "C" fn hold_pattern(_arg: *mut c_void) -> *mut c_void {
    let mut buf = [0u8; PATTERN_LEN];
    for (i, b) in buf.iter_mut().enumerate() {
        *b = pattern_byte(i);
    }
    NEIGHBOUR_BUF.store(buf.as_ptr() as usize, SeqCst);
    black_box(&mut buf);
    // SAFETY: entered through coroutine_yieldto, so we have a caller.
    unsafe { sys::coroutine_yield(ptr::null_mut()) };
    black_box(&buf);
    ptr::null_mut()
}

/// The test's own SIGSEGV handler: judges where the fault is and whether
/// the neighbour's pattern survived, then ends the process.
extern "C" fn judge_overflow(_sig: c_int, info: *mut libc::siginfo_t, _ctx: *mut c_void) {
    let addr = fault_address(info);
    let lo = VICTIM_GUARD_LO.load(SeqCst);
    let hi = VICTIM_GUARD_HI.load(SeqCst);
    if !(lo..hi).contains(&addr) {
        signal_say(VERDICT_ELSEWHERE.as_bytes());
        signal_say(b"\n");
        signal_exit(4);
    }
    if pattern_intact(NEIGHBOUR_BUF.load(SeqCst) as *const u8) {
        signal_say(VERDICT_INTACT.as_bytes());
        signal_say(b"\n");
        signal_exit(0);
    }
    signal_say(VERDICT_CORRUPT.as_bytes());
    signal_say(b"\n");
    signal_exit(3);
}

#[test]
fn overflow_leaves_neighbouring_stacks_intact() {
    const TEST: &str = "overflow_leaves_neighbouring_stacks_intact";
    if let Some(s) = scenario(TEST) {
        assert_eq!(s, "overflow");
        // Same size: carved one after the other from one slab.
        let cos: Vec<*mut sys::coroutine> = (0..8)
            .map(|_| leaked_raw_coroutine(SMALL_STACK, hold_pattern))
            .collect();
        // N's stack top is the bottom of V's guard.
        let (n, v) = cos
            .iter()
            .flat_map(|&n| cos.iter().map(move |&v| (n, v)))
            .find(|&(n, v)| {
                // SAFETY: all of cos are live and initialised.
                let ((n_lo, n_size), (v_lo, _)) = unsafe { (stack_of(n), stack_of(v)) };
                n_lo + n_size == v_lo - GUARD
            })
            .expect("two stacks of one size must lie guard-to-top: none did");
        // SAFETY: n and v are among cos: live and initialised.
        let ((n_lo, n_size), (v_lo, _)) = unsafe { (stack_of(n), stack_of(v)) };
        VICTIM_GUARD_LO.store(v_lo - GUARD, SeqCst);
        VICTIM_GUARD_HI.store(v_lo, SeqCst);
        // SAFETY: v is initialised, unstarted and never moves.
        unsafe { (*v).entry = Some(overflow_entry) };

        // SAFETY: n is initialised, unstarted and never moves.
        unsafe { sys::coroutine_yieldto(n, ptr::null_mut()) };
        let buf = NEIGHBOUR_BUF.load(SeqCst);
        assert!(
            buf >= n_lo && buf + PATTERN_LEN <= n_lo + n_size,
            "the neighbour's buffer must be on its stack"
        );
        assert!(pattern_intact(buf as *const u8), "pattern set up");

        // Installed after ucoro's (coroutine_init put it there): ours owns
        // fault reporting from now on.
        install_siginfo_handler(judge_overflow);
        // SAFETY: v is initialised, unstarted and never moves.
        unsafe { sys::coroutine_yieldto(v, ptr::null_mut()) };
        panic!("the victim overflowed its stack and the process survived");
    }

    let out = run_child(TEST, "overflow", &[]);
    let stderr = stderr_of(&out);
    assert!(
        out.status.code() == Some(0) && stderr.contains(VERDICT_INTACT),
        "the overflow must fault in the victim's guard and leave the \
         neighbour intact:\n{}",
        describe(&out)
    );
    assert!(
        !stderr.contains("ucoro: stack overflow"),
        "a handler installed after ucoro's owns fault reporting:\n{}",
        describe(&out)
    );
}

// ---------------------------------------------------------------------------
// 4. A fault anywhere in a guard region is an overflow
// ---------------------------------------------------------------------------

#[test]
fn guard_below_stack_traps() {
    const TEST: &str = "guard_below_stack_traps";
    /// A size no other stack in the child has, to check the report's size.
    const SIZE: usize = 128 << 10;
    if let Some(s) = scenario(TEST) {
        let co = leaked_raw_coroutine(SIZE, overflow_entry);
        // SAFETY: co is live and initialised.
        let (lo, size) = unsafe { stack_of(co) };
        assert_eq!(size, SIZE);
        let lo = lo as *mut u8;
        // SAFETY: lo is the lowest usable byte of the (unstarted) coroutine's
        // stack, mapped read-write.
        unsafe { lo.write_volatile(1) };
        let target = match s.as_str() {
            "top_of_guard" => lo.wrapping_sub(1),
            "bottom_of_guard" => lo.wrapping_sub(GUARD),
            other => panic!("unknown scenario {other}"),
        };
        // SAFETY: the write is the test: target lies in the guard region,
        // where there is no memory, so the CPU faults before anything is
        // stored and the process dies of SIGSEGV; no Rust object is touched.
        unsafe { target.write_volatile(1) };
        panic!("a write into the guard region did not fault");
    }

    for s in ["top_of_guard", "bottom_of_guard"] {
        let out = run_child(TEST, s, &[]);
        assert_child_killed_by(&out, libc::SIGSEGV);
        overflow_report(&out, SIZE);
    }
}

// ---------------------------------------------------------------------------
// 5. Overflow reporting can be turned off (and back on)
// ---------------------------------------------------------------------------

#[test]
fn overflow_reporting_can_be_turned_off() {
    const TEST: &str = "overflow_reporting_can_be_turned_off";
    if let Some(s) = scenario(TEST) {
        let before = sigsegv_handler();
        let co = leaked_raw_coroutine(SMALL_STACK, overflow_entry);
        match s.as_str() {
            "env" => assert_eq!(
                sigsegv_handler(),
                before,
                "UCORO_OVERFLOW_REPORTING=0: no handler may be installed"
            ),
            "function" => {
                assert_ne!(sigsegv_handler(), before, "ucoro installs its handler");
                // SAFETY: takes no pointers.
                unsafe { sys::ucoro_set_overflow_reporting(0) };
                assert_eq!(
                    sigsegv_handler(),
                    before,
                    "turning reporting off restores the previous handler"
                );
            }
            "safe_function" => {
                ucoro::set_overflow_reporting(false);
                assert_eq!(sigsegv_handler(), before, "the safe switch does the same");
            }
            "safe_function_then_on" => {
                ucoro::set_overflow_reporting(false);
                ucoro::set_overflow_reporting(true);
                assert_ne!(sigsegv_handler(), before, "ucoro's handler is back");
            }
            "function_then_on" => {
                // SAFETY: takes no pointers.
                unsafe { sys::ucoro_set_overflow_reporting(0) };
                // SAFETY: takes no pointers.
                unsafe { sys::ucoro_set_overflow_reporting(1) };
                assert_ne!(sigsegv_handler(), before, "ucoro's handler is back");
            }
            other => panic!("unknown scenario {other}"),
        }
        // SAFETY: co is initialised, unstarted and never moves.
        unsafe { sys::coroutine_yieldto(co, ptr::null_mut()) };
        panic!("the coroutine overflowed its stack and the process survived");
    }

    let out = run_child(TEST, "env", &[("UCORO_OVERFLOW_REPORTING", "0")]);
    assert_child_killed_by(&out, libc::SIGSEGV);
    assert_no_overflow_report(&out);

    let out = run_child(TEST, "function", &[]);
    assert_child_killed_by(&out, libc::SIGSEGV);
    assert_no_overflow_report(&out);

    let out = run_child(TEST, "function_then_on", &[]);
    assert_child_killed_by(&out, libc::SIGSEGV);
    overflow_report(&out, SMALL_STACK);

    let out = run_child(TEST, "safe_function", &[]);
    assert_child_killed_by(&out, libc::SIGSEGV);
    assert_no_overflow_report(&out);

    let out = run_child(TEST, "safe_function_then_on", &[]);
    assert_child_killed_by(&out, libc::SIGSEGV);
    overflow_report(&out, SMALL_STACK);
}

// ---------------------------------------------------------------------------
// 6. Faults outside guard regions go to the previous handler
// ---------------------------------------------------------------------------

/// The address the child is about to fault at.
static EXPECTED_FAULT: AtomicUsize = AtomicUsize::new(0);
const PREVIOUS_GOT_IT: &str = "previous handler: got the fault";
const PREVIOUS_WRONG_ADDR: &str = "previous handler: wrong fault address";

extern "C" fn previous_siginfo(_sig: c_int, info: *mut libc::siginfo_t, _ctx: *mut c_void) {
    if fault_address(info) == EXPECTED_FAULT.load(SeqCst) {
        signal_say(PREVIOUS_GOT_IT.as_bytes());
        signal_say(b"\n");
        signal_exit(0);
    }
    signal_say(PREVIOUS_WRONG_ADDR.as_bytes());
    signal_say(b"\n");
    signal_exit(5);
}

extern "C" fn previous_plain(_sig: c_int) {
    signal_say(PREVIOUS_GOT_IT.as_bytes());
    signal_say(b"\n");
    signal_exit(0);
}

/// Faults by writing one byte at `arg` (a PROT_NONE page).
///
/// # Safety
/// Only meant to be run as a coroutine entry by the C library.
unsafe extern "C" fn fault_at(arg: *mut c_void) -> *mut c_void {
    // SAFETY: the write is the test: arg is a PROT_NONE page that no Rust
    // object lives in, so the CPU faults before anything is stored (on this
    // coroutine's stack, outside any guard region).
    unsafe { arg.cast::<u8>().write_volatile(1) };
    ptr::null_mut()
}

#[test]
fn other_faults_reach_the_previous_handler() {
    const TEST: &str = "other_faults_reach_the_previous_handler";
    if let Some(s) = scenario(TEST) {
        let page = inaccessible_page();
        EXPECTED_FAULT.store(page as usize, SeqCst);
        let previous = match s.as_str() {
            // Rust's runtime handler is the previous one.
            "rust_runtime" => sigsegv_handler(),
            "own_siginfo" => install_siginfo_handler(previous_siginfo),
            "own_plain" => install_plain_handler(previous_plain),
            other => panic!("unknown scenario {other}"),
        };
        let mut co = Builder::new()
            .stack_size(SMALL_STACK)
            .build(|y: &Yielder<(), ()>, ()| y.suspend(()))
            .expect("build a coroutine");
        co.resume(()).expect("run it to its first suspend");
        assert_ne!(
            sigsegv_handler(),
            previous,
            "creating a coroutine installs ucoro's handler"
        );
        if s == "rust_runtime" {
            // SAFETY: the write is the test: page is PROT_NONE and no Rust
            // object lives there, so the CPU faults before anything is
            // stored (on the thread's stack, outside any guard region).
            unsafe { page.write_volatile(1) };
        } else {
            // The fault happens on a coroutine stack, but not in a guard.
            let raw = leaked_raw_coroutine(SMALL_STACK, fault_at);
            // SAFETY: raw is initialised, unstarted and never moves.
            unsafe { sys::coroutine_yieldto(raw, page.cast()) };
        }
        panic!("a write to a PROT_NONE page did not kill the process");
    }

    let out = run_child(TEST, "rust_runtime", &[]);
    assert_child_killed_by(&out, libc::SIGSEGV);
    assert_no_overflow_report(&out);

    for s in ["own_siginfo", "own_plain"] {
        let out = run_child(TEST, s, &[]);
        assert!(
            out.status.code() == Some(0) && stderr_of(&out).contains(PREVIOUS_GOT_IT),
            "{s}: the previous handler must get the fault, with its address:\n{}",
            describe(&out)
        );
        assert_no_overflow_report(&out);
    }
}

// ---------------------------------------------------------------------------
// 7. 100,000 suspended coroutines, each with its own stack and guard
// ---------------------------------------------------------------------------

const MANY: usize = 100_000;

/// Whether the kernel has MADV_GUARD_INSTALL (Linux >= 6.13), which ucoro
/// uses for guards that are not mappings of their own.
fn guard_install_supported() -> bool {
    const MADV_GUARD_INSTALL: c_int = 102;
    // SAFETY: a fresh anonymous mapping, advised and unmapped here only.
    unsafe {
        let p = libc::mmap(
            ptr::null_mut(),
            8192,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        assert_ne!(p, libc::MAP_FAILED);
        let ok = libc::madvise(p, 4096, MADV_GUARD_INSTALL) == 0;
        libc::munmap(p, 8192);
        ok
    }
}

/// How many coroutines the test makes: MANY, unless the kernel lacks
/// MADV_GUARD_INSTALL and vm.max_map_count cannot hold MANY stacks guarded
/// with mprotect (two mappings each; csrc/stack.c documents the limit).
fn many() -> usize {
    if guard_install_supported() {
        return MANY;
    }
    let max_maps: usize = std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(65530);
    let fits = max_maps.saturating_sub(4096) / 2;
    if fits < MANY {
        say(&format!(
            "stack_safety: NOTE: no MADV_GUARD_INSTALL and vm.max_map_count = \
             {max_maps}: testing {fits} coroutines instead of {MANY}"
        ));
    }
    fits.min(MANY)
}
/// VmRSS growth allowed per suspended coroutine.
const RSS_PER_COROUTINE: usize = 16 << 10;

/// One coroutine's stack as seen while it is suspended.
#[derive(Clone, Copy, Debug)]
struct StackSeen {
    index: usize,
    lo: usize,
    size: usize,
    /// The address of a local of the suspended coroutine.
    local: usize,
}

/// A pipe used to probe addresses without faulting: write(2) from an
/// inaccessible address fails with EFAULT.
struct Probe {
    read: c_int,
    write: c_int,
}

impl Probe {
    fn new() -> Self {
        let mut fds = [0 as c_int; 2];
        // SAFETY: fds is a valid array of two ints.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        Probe {
            read: fds[0],
            write: fds[1],
        }
    }

    /// Whether the byte at addr can be read.
    fn readable(&self, addr: usize) -> bool {
        // SAFETY: the kernel checks the address: an inaccessible one makes
        // write fail with EFAULT instead of faulting.
        let n = unsafe { libc::write(self.write, addr as *const c_void, 1) };
        if n == 1 {
            let mut b = 0u8;
            // SAFETY: reads back the one byte into a local.
            let back = unsafe { libc::read(self.read, (&mut b as *mut u8).cast(), 1) };
            assert_eq!(back, 1);
            return true;
        }
        let err = io::Error::last_os_error();
        assert_eq!(
            err.raw_os_error(),
            Some(libc::EFAULT),
            "probe {addr:#x}: {err}"
        );
        false
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        // SAFETY: closes the two descriptors this Probe owns.
        unsafe {
            libc::close(self.read);
            libc::close(self.write);
        }
    }
}

/// Every stack is distinct, has the expected size, holds the coroutine's
/// local, and has an inaccessible guard region directly below it that
/// overlaps no other stack.
fn check_stacks(seen: &mut [StackSeen], expected_size: usize) {
    for s in seen.iter() {
        assert_eq!(s.size, expected_size, "coroutine {}: stack size", s.index);
        assert!(
            s.local >= s.lo && s.local < s.lo + s.size,
            "coroutine {}: its local {:#x} must be on its stack [{:#x}, {:#x})",
            s.index,
            s.local,
            s.lo,
            s.lo + s.size
        );
    }
    seen.sort_by_key(|s| s.lo);
    for pair in seen.windows(2) {
        let (below, above) = (pair[0], pair[1]);
        assert!(
            below.lo + below.size <= above.lo - GUARD,
            "coroutines {} and {}: stack [{:#x}, {:#x}) overlaps the guard \
             or stack at [{:#x}, ..)",
            below.index,
            above.index,
            below.lo,
            below.lo + below.size,
            above.lo - GUARD
        );
    }
    let probe = Probe::new();
    for s in seen.iter() {
        for addr in [s.lo - 1, s.lo - GUARD / 2, s.lo - GUARD] {
            assert!(
                !probe.readable(addr),
                "coroutine {}: guard byte {:#x} (stack at {:#x}) is accessible",
                s.index,
                addr,
                s.lo
            );
        }
        assert!(probe.readable(s.local), "coroutine {}: own stack", s.index);
    }
}

fn report_memory(what: &str, n: usize, rss: usize, pte: usize) {
    say(&format!(
        "stack_safety: {what}: {n} suspended coroutines: VmRSS +{} KiB \
         ({} bytes/coroutine), VmPTE +{} KiB ({} bytes/coroutine)",
        rss >> 10,
        rss / n,
        pte >> 10,
        pte / n
    ));
    assert!(
        rss / n < RSS_PER_COROUTINE,
        "{what}: VmRSS grew by {} bytes per suspended coroutine (limit {})",
        rss / n,
        RSS_PER_COROUTINE
    );
}

fn many_safe() {
    let n = many();
    let rss0 = proc_status_bytes("VmRSS");
    let pte0 = proc_status_bytes("VmPTE");
    let t = Instant::now();
    let mut cos: Vec<Coroutine<(), StackSeen, usize>> = Vec::with_capacity(n);
    for index in 0..n {
        let co = Coroutine::new(move |y: &Yielder<(), StackSeen>, ()| {
            // SAFETY: coroutine_self returns this running coroutine, whose
            // struct is live and initialised.
            let (lo, size) = unsafe { stack_of(sys::coroutine_self()) };
            let local = 0u8;
            let local = black_box(&local) as *const u8 as usize;
            y.suspend(StackSeen {
                index,
                lo,
                size,
                local,
            });
            index * 3 + 1
        });
        cos.push(co);
    }
    let created = t.elapsed();
    let t = Instant::now();
    let mut seen = Vec::with_capacity(n);
    for co in &mut cos {
        match co.resume(()) {
            Ok(CoroutineResult::Yield(s)) => seen.push(s),
            other => panic!("first resume must suspend: {other:?}"),
        }
    }
    let resumed = t.elapsed();
    let rss = proc_status_bytes("VmRSS").saturating_sub(rss0);
    let pte = proc_status_bytes("VmPTE").saturating_sub(pte0);
    assert!(
        cos.iter().all(|c| c.started() && !c.is_finished()),
        "all alive and suspended"
    );
    report_memory("safe API", n, rss, pte);
    check_stacks(&mut seen, DEFAULT_STACK);
    let t = Instant::now();
    for (index, co) in cos.iter_mut().enumerate() {
        match co.resume(()) {
            Ok(CoroutineResult::Return(r)) => assert_eq!(r, index * 3 + 1),
            other => panic!("coroutine {index}: must return: {other:?}"),
        }
        assert!(co.is_finished());
    }
    let finished = t.elapsed();
    let t = Instant::now();
    drop(cos);
    say(&format!(
        "stack_safety: safe API: created {created:?}, suspended {resumed:?}, \
         finished {finished:?}, dropped {:?}",
        t.elapsed()
    ));
}

/// Yields the address of a local, then returns its argument times 3 plus 1.
///
/// # Safety
/// Only meant to be run as a coroutine entry by the C library, entered with
/// coroutine_yieldto.
unsafe extern "C" fn yield_local(arg: *mut c_void) -> *mut c_void {
    let local = 0u8;
    let local = black_box(&local) as *const u8;
    // SAFETY: entered through coroutine_yieldto, so we have a caller.
    unsafe { sys::coroutine_yield(local.cast_mut().cast()) };
    (arg as usize * 3 + 1) as *mut c_void
}

fn many_raw() {
    let n = many();
    let rss0 = proc_status_bytes("VmRSS");
    let pte0 = proc_status_bytes("VmPTE");
    let t = Instant::now();
    let mut cos: Box<[sys::coroutine]> = vec![raw_coroutine(0, yield_local); n].into_boxed_slice();
    for co in cos.iter_mut() {
        // SAFETY: co is a valid struct with its in-fields set; the boxed
        // slice never moves while the coroutines live.
        let rc = unsafe { sys::coroutine_init(co) };
        assert_eq!(rc, 0, "coroutine_init: {}", io::Error::last_os_error());
    }
    let created = t.elapsed();
    let t = Instant::now();
    let mut seen = Vec::with_capacity(n);
    for (index, co) in cos.iter_mut().enumerate() {
        // SAFETY: co is initialised and unstarted.
        let local = unsafe { sys::coroutine_yieldto(co, index as *mut c_void) };
        assert_eq!(co.exited, 0, "coroutine {index} must be suspended");
        // SAFETY: co is live and initialised.
        let (lo, size) = unsafe { stack_of(co) };
        seen.push(StackSeen {
            index,
            lo,
            size,
            local: local as usize,
        });
    }
    let resumed = t.elapsed();
    let rss = proc_status_bytes("VmRSS").saturating_sub(rss0);
    let pte = proc_status_bytes("VmPTE").saturating_sub(pte0);
    assert!(
        cos.iter().all(|c| c.exited == 0 && c.caller.is_null()),
        "all alive and suspended"
    );
    report_memory("C API", n, rss, pte);
    check_stacks(&mut seen, DEFAULT_STACK);
    let t = Instant::now();
    for (index, co) in cos.iter_mut().enumerate() {
        // SAFETY: co is initialised and suspended in coroutine_yield.
        let r = unsafe { sys::coroutine_yieldto(co, ptr::null_mut()) };
        assert_eq!(r as usize, index * 3 + 1, "coroutine {index}: result");
        assert_eq!(co.exited, 1, "coroutine {index} must have exited");
    }
    let finished = t.elapsed();
    for co in cos.iter_mut() {
        // SAFETY: co has exited: releasing it again is a no-op.
        assert_eq!(unsafe { sys::coroutine_release(co) }, 0);
    }
    say(&format!(
        "stack_safety: C API: created {created:?}, suspended {resumed:?}, finished {finished:?}"
    ));
}

#[test]
fn hundred_thousand_suspended_coroutines_with_guards() {
    const TEST: &str = "hundred_thousand_suspended_coroutines_with_guards";
    if let Some(s) = scenario(TEST) {
        match s.as_str() {
            "safe" => many_safe(),
            "raw" => many_raw(),
            other => panic!("unknown scenario {other}"),
        }
        return;
    }

    for s in ["safe", "raw"] {
        let t = Instant::now();
        let out = run_child(TEST, s, &[]);
        assert_child_passed(&out);
        let stdout = String::from_utf8_lossy(&out.stdout);
        for line in stdout.lines() {
            if let Some(i) = line.find("stack_safety:") {
                println!("{}", &line[i..]);
            }
        }
        println!("stack_safety: {s} child took {:?}", t.elapsed());
    }
}

// ---------------------------------------------------------------------------
// 8. ucoro_stack_used
// ---------------------------------------------------------------------------

/// How deep the deep coroutine touches its stack.
const DEEP: usize = 100 << 10;
/// A stack size no other in-process test uses (so no pooled stack with
/// someone else's pages turns up), and a size class: init keeps it as is.
const USED_STACK: usize = (1 << 20) + (256 << 10);

/// Touches DEEP bytes of stack, then suspends.
///
/// # Safety
/// Only meant to be run as a coroutine entry by the C library, entered with
/// coroutine_yieldto.
unsafe extern "C" fn touch_deep(_arg: *mut c_void) -> *mut c_void {
    let buf = black_box([0x5Au8; DEEP]);
    // SAFETY: entered through coroutine_yieldto, so we have a caller.
    unsafe { sys::coroutine_yield(ptr::null_mut()) };
    usize::from(black_box(&buf)[DEEP - 1]) as *mut c_void
}

/// Touches little stack, then suspends.
///
/// # Safety
/// Only meant to be run as a coroutine entry by the C library, entered with
/// coroutine_yieldto.
unsafe extern "C" fn touch_little(_arg: *mut c_void) -> *mut c_void {
    let x = black_box(1u64);
    // SAFETY: entered through coroutine_yieldto, so we have a caller.
    unsafe { sys::coroutine_yield(ptr::null_mut()) };
    black_box(x) as *mut c_void
}

#[test]
fn stack_used_grows_with_depth() {
    // SAFETY: NULL is documented to give 0.
    assert_eq!(unsafe { sys::ucoro_stack_used(ptr::null_mut()) }, 0);
    let mut zeroed = raw_coroutine(0, touch_little);
    // SAFETY: a valid, never initialised struct is documented to give 0.
    assert_eq!(unsafe { sys::ucoro_stack_used(&mut zeroed) }, 0);

    // Both exist before either runs: neither gets a stack the other used.
    let mut deep = Box::new(raw_coroutine(USED_STACK, touch_deep));
    let mut little = Box::new(raw_coroutine(USED_STACK, touch_little));
    for co in [&mut *deep, &mut *little] {
        // SAFETY: a valid struct with its in-fields set, boxed (it does not
        // move until it is released below).
        assert_eq!(unsafe { sys::coroutine_init(co) }, 0);
        assert_eq!(co.stack_size, USED_STACK);
        // SAFETY: initialised, unstarted.
        unsafe { sys::coroutine_yieldto(co, ptr::null_mut()) };
        assert_eq!(co.exited, 0, "suspended");
    }
    // SAFETY: both are initialised and suspended.
    let used_deep = unsafe { sys::ucoro_stack_used(&mut *deep) };
    // SAFETY: as above.
    let used_little = unsafe { sys::ucoro_stack_used(&mut *little) };
    assert!(
        (DEEP..USED_STACK).contains(&used_deep),
        "touched {DEEP} bytes of a {USED_STACK}-byte stack, reported {used_deep}"
    );
    assert!(
        used_little > 0 && used_little < used_deep,
        "a shallow coroutine must report less ({used_little}) than a deep one ({used_deep})"
    );

    for co in [&mut *deep, &mut *little] {
        // SAFETY: initialised and suspended.
        unsafe { sys::coroutine_yieldto(co, ptr::null_mut()) };
        assert_eq!(co.exited, 1);
        // SAFETY: an exited coroutine's stack is freed: documented to give 0.
        assert_eq!(unsafe { sys::ucoro_stack_used(co) }, 0);
        // SAFETY: exited: releasing it is a no-op, and the box outlives it.
        assert_eq!(unsafe { sys::coroutine_release(co) }, 0);
    }
}
