//! Helpers shared by the integration tests (`mod common;` in a test file).
//! Cargo builds `tests/*.rs` as test targets, not `tests/common/mod.rs`: this
//! file is compiled into each test that declares the module, and into
//! `tests/model_driver/mod.rs` (so also into the fuzz target that includes
//! it), which is why not every test uses every helper.
//!
//! - Values and identity: [`val`], [`num`], [`arg`], [`current`],
//!   [`is_main`], `errno` handling, the page size, `/proc/self/status`.
//! - Coroutine structs the way C callers hand them over: from `malloc`,
//!   never zeroed ([`filled_co`], [`garbage_co`]), the in-fields set by hand
//!   ([`set_fields`], [`init_with`]), owned ([`Owned`]) or with a counting
//!   release callback ([`Tracked`]).
//! - Entries several files use ([`return_7`], [`count_runs`]).
//! - [`SendPtr`], a raw pointer that may cross threads.
//! - Child processes: a test that triggers diagnostics, aborts or crashes
//!   re-runs its own binary for itself alone with `UCORO_CHILD` set
//!   ([`child`], [`child_command`]) and checks the child's output
//!   ([`describe`], [`assert_child_passed`], [`diagnostics`],
//!   [`in_child_expecting`], [`in_own_process`], ...).
//! - The documented diagnostic messages.
#![allow(dead_code)]
#![warn(clippy::undocumented_unsafe_blocks)]
#![deny(unsafe_op_in_unsafe_fn)]

use std::env;
use std::ffi::{c_int, c_void};
use std::io;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Output};
use std::ptr;
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering::SeqCst};

use ucoro::sys;

pub type Co = *mut sys::coroutine;
pub type Entry = unsafe extern "C" fn(*mut c_void) -> *mut c_void;

/// What `stack_size == 0` means (SPEC §2, init): 16 MiB.
pub const DEFAULT_STACK: usize = 16 << 20;
/// The smallest stack the library hands out: smaller requests are rounded up
/// to it (csrc/ucoro_internal.h, `UCORO_MIN_STACK_SIZE`).
pub const MIN_STACK: usize = 16 << 10;
/// A small stack: quick to overflow, cheap to have many of.
pub const SMALL_STACK: usize = 64 << 10;

/// A stack size that rounds up without overflow but that no address space
/// has room for: 1 EiB where addresses have 64 bits. 32-bit targets have no
/// such size (the stack layer refuses 2 GiB and up with EINVAL): the tests
/// using it are skipped there (.ci/cross-rust.sh), this only compiles.
#[cfg(target_pointer_width = "64")]
pub const UNMAPPABLE: usize = 1 << 60;
#[cfg(not(target_pointer_width = "64"))]
pub const UNMAPPABLE: usize = usize::MAX / 16 * 15;

// ---------------------------------------------------------------------------
// Values, identity, errno, the system
// ---------------------------------------------------------------------------

/// A small integer carried as a coroutine value.
pub fn val(n: usize) -> *mut c_void {
    n as *mut c_void
}

/// The integer carried by a coroutine value.
pub fn num(p: *mut c_void) -> usize {
    p as usize
}

/// A reference passed as a coroutine value.
pub fn arg<T>(r: &T) -> *mut c_void {
    (r as *const T).cast_mut().cast()
}

/// The running coroutine (this thread's main one outside any coroutine).
pub fn current() -> Co {
    // SAFETY: coroutine_self takes no arguments and only reads this thread's state.
    unsafe { sys::coroutine_self() }
}

/// Whether `co` is the calling thread's main coroutine.
pub fn is_main(co: Co) -> bool {
    // SAFETY: coroutine_is_main only compares the pointer, never dereferences it.
    unsafe { sys::coroutine_is_main(co) != 0 }
}

pub fn errno() -> i32 {
    io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

pub fn clear_errno() {
    // SAFETY: __errno_location returns this thread's errno slot, valid for writes.
    unsafe { *libc::__errno_location() = 0 };
}

/// Runs `call` with errno cleared first; returns its result and errno after.
pub fn with_errno<T>(call: impl FnOnce() -> T) -> (T, i32) {
    clear_errno();
    let r = call();
    (r, errno())
}

pub fn page_size() -> usize {
    // SAFETY: sysconf has no memory-safety preconditions.
    let ps = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(ps).expect("page size")
}

/// A `kB` field of /proc/self/status, in KiB.
pub fn proc_status_kib(field: &str) -> usize {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    let line = status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .unwrap_or_else(|| panic!("{field} not in /proc/self/status"));
    line.trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("{field}: {line:?}: {e}"))
}

/// A `kB` field of /proc/self/status, in bytes.
pub fn proc_status_bytes(field: &str) -> usize {
    proc_status_kib(field) * 1024
}

/// This process's address-space size in KiB (`VmSize` in /proc/self/status;
/// in KiB, so that it fits a 32-bit `usize` even under an emulator, whose
/// own 64-bit address space is what the file shows).
pub fn vm_size_kib() -> usize {
    proc_status_kib("VmSize")
}

// ---------------------------------------------------------------------------
// Coroutine structs as C callers pass them
// ---------------------------------------------------------------------------

/// A `T` from `malloc`, every byte set to `byte`.
pub fn malloc_filled<T>(byte: u8) -> *mut T {
    let size = std::mem::size_of::<T>();
    // SAFETY: malloc has no preconditions; the result is checked before use.
    let p: *mut T = unsafe { libc::malloc(size) }.cast();
    assert!(!p.is_null(), "malloc failed");
    // SAFETY: p points to `size` writable bytes just allocated.
    unsafe { ptr::write_bytes(p.cast::<u8>(), byte, size) };
    p
}

/// A `struct coroutine` from `malloc` every byte of which is `byte`: 0xA5 is
/// memory that was never zeroed, 0x00 an all-zero struct.
pub fn filled_co(byte: u8) -> Co {
    malloc_filled(byte)
}

/// A `struct coroutine` from `malloc`, every byte 0xA5: memory that was never
/// zeroed, as the canonical C caller passes it.
pub fn garbage_co() -> Co {
    filled_co(0xA5)
}

/// Sets the "in" fields of `co` the way C callers do (no init).
///
/// # Safety
/// `co` must point to a writable `struct coroutine` that is not live
/// (running or suspended).
pub unsafe fn set_fields(co: Co, entry: Option<Entry>, stack_size: usize) {
    // SAFETY: guaranteed by the caller.
    unsafe {
        (*co).stack_size = stack_size;
        (*co).entry = entry;
        (*co).release = None;
    }
}

/// `coroutine_init` after setting the in-fields, with errno cleared first;
/// (result, errno after the call).
///
/// # Safety
/// As for [`set_fields`].
pub unsafe fn init_with(co: Co, entry: Option<Entry>, stack_size: usize) -> (c_int, i32) {
    // SAFETY: guaranteed by the caller.
    unsafe { set_fields(co, entry, stack_size) };
    // SAFETY: co is writable and not live.
    with_errno(|| unsafe { sys::coroutine_init(co) })
}

/// An initialised coroutine in never-zeroed `malloc` memory; released and
/// freed on drop. `Owned(co)` takes over an initialised `co` from `malloc`.
pub struct Owned(pub Co);

impl Owned {
    /// With the default stack (`stack_size` 0).
    pub fn new(entry: Entry) -> Self {
        Self::with_stack(entry, 0)
    }

    /// With a [`SMALL_STACK`].
    pub fn small(entry: Entry) -> Self {
        Self::with_stack(entry, SMALL_STACK)
    }

    pub fn with_stack(entry: Entry, stack_size: usize) -> Self {
        let co = garbage_co();
        // SAFETY: co is a fresh malloc'd struct of the right size.
        let (rc, err) = unsafe { init_with(co, Some(entry), stack_size) };
        assert_eq!(
            rc,
            0,
            "coroutine_init: {}",
            io::Error::from_raw_os_error(err)
        );
        Owned(co)
    }

    pub fn ptr(&self) -> Co {
        self.0
    }

    pub fn exited(&self) -> bool {
        // SAFETY: self.0 is a live allocation; `exited` is the read-only out field.
        unsafe { (*self.0).exited != 0 }
    }

    pub fn caller(&self) -> Co {
        // SAFETY: self.0 is a live allocation owned by self.
        unsafe { (*self.0).caller }
    }
}

impl Drop for Owned {
    fn drop(&mut self) {
        // SAFETY: tests drop an Owned from its thread's main context when its
        // coroutine is not running nor on the chain (release is a no-op if
        // it exited or was released); then the memory is ours.
        unsafe {
            sys::coroutine_release(self.0);
            libc::free(self.0.cast());
        }
    }
}

/// A coroutine with a release callback that counts its calls.
#[repr(C)]
pub struct Tracked {
    pub co: sys::coroutine,
    pub calls: AtomicUsize,
    /// What the callback returns.
    pub ret: AtomicI32,
    /// `co.exited` when the callback last ran (-1: never).
    pub exited_at_call: AtomicI32,
}

/// Counts the call in the `Tracked` around `co`, notes `exited`; returns
/// its `ret`.
///
/// # Safety
/// `co` must be the `co` field of a live `Tracked`.
pub unsafe extern "C" fn count_release(co: *mut sys::coroutine) -> c_int {
    // SAFETY: guaranteed by the caller; co is the first field of a repr(C)
    // Tracked, so the pointer is also the Tracked's address.
    let t = unsafe { &*co.cast::<Tracked>() };
    t.calls.fetch_add(1, SeqCst);
    // SAFETY: co is live (see above).
    t.exited_at_call.store(unsafe { (*co).exited }, SeqCst);
    t.ret.load(SeqCst)
}

/// A `Tracked` in never-zeroed `malloc` memory, initialised with `entry`;
/// its release callback returns `ret` until changed.
pub fn tracked(entry: Entry, stack_size: usize, ret: c_int) -> *mut Tracked {
    let t: *mut Tracked = malloc_filled(0xA5);
    // SAFETY: t points to a writable Tracked-sized block; the atomics are
    // written in place before any reference to them exists, the coroutine
    // is set up by init.
    let rc = unsafe {
        ptr::addr_of_mut!((*t).calls).write(AtomicUsize::new(0));
        ptr::addr_of_mut!((*t).ret).write(AtomicI32::new(ret));
        ptr::addr_of_mut!((*t).exited_at_call).write(AtomicI32::new(-1));
        let co = ptr::addr_of_mut!((*t).co);
        set_fields(co, Some(entry), stack_size);
        (*co).release = Some(count_release);
        sys::coroutine_init(co)
    };
    assert_eq!(rc, 0, "coroutine_init: {}", io::Error::last_os_error());
    t
}

/// The coroutine of a `Tracked`.
pub fn co_of(t: *mut Tracked) -> Co {
    // SAFETY: only the field's address is taken.
    unsafe { ptr::addr_of_mut!((*t).co) }
}

/// How often the release callback of `t` ran.
pub fn calls_of(t: *mut Tracked) -> usize {
    // SAFETY: t is live while the test uses it.
    unsafe { (*t).calls.load(SeqCst) }
}

// ---------------------------------------------------------------------------
// Entries
// ---------------------------------------------------------------------------

/// Counts its runs in the `AtomicUsize` its argument points to; returns 0x600D.
///
/// # Safety
/// `arg` must point to an `AtomicUsize` that outlives the coroutine.
pub unsafe extern "C" fn count_runs(arg: *mut c_void) -> *mut c_void {
    // SAFETY: guaranteed by the caller.
    let runs = unsafe { &*arg.cast::<AtomicUsize>() };
    runs.fetch_add(1, SeqCst);
    val(0x600D)
}

/// Returns 7 at once, touching nothing (for tiny stacks and never-run
/// entries).
pub extern "C" fn return_7(_arg: *mut c_void) -> *mut c_void {
    val(7)
}

// ---------------------------------------------------------------------------
// Threads
// ---------------------------------------------------------------------------

/// A raw pointer that may cross threads; each use says why that is sound.
#[derive(Clone, Copy)]
pub struct SendPtr<T>(pub *mut T);

// SAFETY: only the address moves; whoever dereferences it on the other
// thread says why the pointee is alive and not used concurrently.
unsafe impl<T> Send for SendPtr<T> {}

impl<T> SendPtr<T> {
    /// By method, so that closures capture the whole (Send) wrapper.
    pub fn get(self) -> *mut T {
        self.0
    }
}

// ---------------------------------------------------------------------------
// Child processes (stderr, the diagnostic handler, abort, crashes)
// ---------------------------------------------------------------------------

pub const CHILD_ENV: &str = "UCORO_CHILD";

/// Set by `.ci/cross-rust.sh` to the emulator command that runs this
/// binary (`qemu-s390x -L /usr/s390x-linux-gnu ...`): a child must be
/// started through it too, as the host cannot execute the binary itself.
pub const RUNNER_ENV: &str = "UCORO_TEST_RUNNER";

/// A command that re-runs this test binary for `test` alone (ignored tests
/// included, on one thread, output not captured by libtest) with
/// `UCORO_CHILD=<value>`, through the `UCORO_TEST_RUNNER` emulator if set.
pub fn child_command(test: &str, value: &str) -> Command {
    let exe = env::current_exe().expect("path of this test binary");
    let runner = env::var(RUNNER_ENV).unwrap_or_default();
    let mut words = runner.split_whitespace();
    let mut cmd = match words.next() {
        Some(emulator) => {
            let mut cmd = Command::new(emulator);
            cmd.args(words).arg(exe);
            cmd
        }
        None => Command::new(exe),
    };
    cmd.args([
        "--exact",
        test,
        "--nocapture",
        "--test-threads=1",
        "--include-ignored",
    ])
    .env(CHILD_ENV, value);
    cmd
}

/// In the test process: re-runs this binary for `test` alone with
/// `UCORO_CHILD=<test>` and returns the child's output. In that child: runs
/// `scenario` and returns `None`, so the child's test passes if the
/// scenario's own assertions do.
pub fn child(test: &str, scenario: impl FnOnce()) -> Option<Output> {
    if env::var_os(CHILD_ENV).is_some_and(|v| v == test) {
        scenario();
        return None;
    }
    Some(output_within_deadline(&mut child_command(test, test)))
}

/// How long a child test process may take before it counts as hung (a
/// regression in switching often hangs rather than fails).
const CHILD_DEADLINE: std::time::Duration = std::time::Duration::from_secs(300);

/// The same under an emulator (`UCORO_TEST_RUNNER`), where each child
/// normally takes a second or two (see [`output_within_deadline`] for the
/// one retry).
const EMULATED_CHILD_DEADLINE: std::time::Duration = std::time::Duration::from_secs(120);

/// Runs `cmd` and collects its output like `Command::output`, but kills it
/// and fails the test if it is still running after [`CHILD_DEADLINE`],
/// showing what it had written by then.
///
/// Under an emulator, a child that hung before it wrote anything is run
/// once more before the test fails: qemu-user now and then hangs a process
/// it forks from a multi-threaded one before the guest's `main` runs (seen
/// in CI on s390x: killed with empty stdout, where libtest's first line,
/// written at once, was missing), which says nothing about this library. A
/// child that hangs after it has written something fails at once, and so
/// does every hang natively.
pub fn output_within_deadline(cmd: &mut Command) -> Output {
    let emulated = env::var_os(RUNNER_ENV).is_some_and(|r| !r.is_empty());
    let (deadline, attempts) = if emulated {
        (EMULATED_CHILD_DEADLINE, 2)
    } else {
        (CHILD_DEADLINE, 1)
    };
    for attempt in 1..=attempts {
        match run_with_deadline(cmd, deadline) {
            Ok(out) => return out,
            Err(partial)
                if attempt < attempts && partial.stdout.is_empty() && partial.stderr.is_empty() =>
            {
                // Written to the process's stderr, not through eprintln!
                // (which libtest captures and drops for a passing test), so
                // that a retry shows in CI's log.
                use std::io::Write;
                let _ = writeln!(
                    std::io::stderr(),
                    "note: the child test process hung under the emulator before it wrote \
                     anything and was killed after {deadline:?}; running it once more ({:?})",
                    partial.status
                );
            }
            Err(partial) => panic!(
                "the child test process hung: killed after {deadline:?} \
                 ({attempt} attempt(s)); what it had written:\n{}",
                describe(&partial)
            ),
        }
    }
    unreachable!("the last attempt returns or panics")
}

/// One run of `cmd`: its output, or (`Err`) what it had written when it was
/// killed at `deadline`.
fn run_with_deadline(cmd: &mut Command, deadline: std::time::Duration) -> Result<Output, Output> {
    use std::io::Read;
    use std::process::Stdio;
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the child test process");
    // Each pipe is read as it comes, so that what a killed child wrote is
    // there even if a process it started still holds the pipe open.
    let drain = |mut pipe: Box<dyn Read + Send>| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let sink = buf.clone();
        let reader = std::thread::spawn(move || {
            let mut chunk = [0u8; 4096];
            while let Ok(n @ 1..) = pipe.read(&mut chunk) {
                sink.lock().unwrap().extend_from_slice(&chunk[..n]);
            }
        });
        (buf, reader)
    };
    let (stdout, out_reader) = drain(Box::new(child.stdout.take().expect("piped stdout")));
    let (stderr, err_reader) = drain(Box::new(child.stderr.take().expect("piped stderr")));
    let started = Instant::now();
    let mut pause = Duration::from_millis(1);
    let (status, hung) = loop {
        if let Some(status) = child.try_wait().expect("wait for the child test process") {
            break (status, false);
        }
        if started.elapsed() >= deadline {
            // Where it hangs (blocked or spinning, in which call), for the
            // message: read before the kill takes the threads away.
            let threads = thread_states(child.id());
            let _ = std::io::Write::write_all(
                &mut std::io::stderr(),
                format!("the hung child's threads:\n{threads}").as_bytes(),
            );
            let _ = child.kill();
            break (child.wait().expect("reap the killed child"), true);
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    };
    if !hung {
        // The child has exited: read its pipes to the end, as
        // `Command::output` does.
        let _ = out_reader.join();
        let _ = err_reader.join();
    }
    let output = Output {
        status,
        stdout: stdout.lock().unwrap().clone(),
        stderr: stderr.lock().unwrap().clone(),
    };
    if hung {
        Err(output)
    } else {
        Ok(output)
    }
}

/// One line per thread of process `pid`: its id, state (R running, S
/// sleeping, ...), CPU time in clock ticks, kernel wait channel and current
/// system call (number and arguments, from /proc), or what could be read.
fn thread_states(pid: u32) -> String {
    let read = |path: String| {
        std::fs::read_to_string(path)
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|e| format!("({e})"))
    };
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return format!("  (no /proc/{pid}/task)\n");
    };
    let mut lines = Vec::new();
    for task in tasks.flatten() {
        let tid = task.file_name().to_string_lossy().into_owned();
        let dir = format!("/proc/{pid}/task/{tid}");
        let stat = read(format!("{dir}/stat"));
        // After the ")" closing the command name: state, then field 14
        // (utime) and 15 (stime) are the 12th and 13th fields.
        let after = stat.rsplit_once(") ").map_or("", |(_, rest)| rest);
        let fields: Vec<&str> = after.split(' ').collect();
        let state = fields.first().copied().unwrap_or("?");
        let cpu = match (fields.get(11), fields.get(12)) {
            (Some(u), Some(s)) => format!("utime {u} stime {s}"),
            _ => "cpu ?".to_string(),
        };
        lines.push(format!(
            "  thread {tid}: state {state}, {cpu}, wchan {}, syscall {}\n",
            read(format!("{dir}/wchan")),
            read(format!("{dir}/syscall"))
        ));
    }
    lines.sort();
    lines.concat()
}

pub fn describe(out: &Output) -> String {
    format!(
        "status: {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The child ran exactly one test and it passed.
pub fn assert_child_passed(out: &Output) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "child test did not pass:\n{}",
        describe(out)
    );
}

/// The diagnostic lines ("<function>: assertion '<condition>' failed") the
/// child wrote to stderr, in order.
pub fn diagnostics(out: &Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| l.contains(": assertion '"))
        .map(str::to_owned)
        .collect()
}

/// Runs `scenario` in a child process (see [`child`]) and asserts that it
/// passed and that its stderr holds exactly the diagnostic lines `want`, in
/// order.
pub fn in_child_expecting(test: &str, scenario: impl FnOnce(), want: &[&str]) {
    if let Some(out) = child(test, scenario) {
        assert_child_passed(&out);
        assert_eq!(
            diagnostics(&out),
            want,
            "the diagnostics on the child's stderr:\n{}",
            describe(&out)
        );
    }
}

/// Runs `scenario` in a process of its own and asserts that it passed
/// without any diagnostic. For behaviours whose bugs typically crash, and
/// for measurements no other test may disturb (the address space): a crash
/// then fails this one test instead of killing the whole test binary.
pub fn in_own_process(test: &str, scenario: impl FnOnce()) {
    in_child_expecting(test, scenario, &[]);
}

/// The child was killed by `signal`.
pub fn assert_child_killed_by(out: &Output, signal: c_int) {
    let name = match signal {
        libc::SIGABRT => "SIGABRT".to_owned(),
        libc::SIGSEGV => "SIGSEGV".to_owned(),
        _ => format!("signal {signal}"),
    };
    assert_eq!(
        out.status.signal(),
        Some(signal),
        "the child must die of {name}:\n{}",
        describe(out)
    );
}

/// The child was killed by SIGABRT.
pub fn assert_child_aborted(out: &Output) {
    assert_child_killed_by(out, libc::SIGABRT);
}

// ---------------------------------------------------------------------------
// The documented diagnostics ("FUNCTION: assertion 'CONDITION' failed")
// ---------------------------------------------------------------------------

pub const INIT_NULL: &str = "coroutine_init: assertion 'co != NULL' failed";
pub const INIT_NO_ENTRY: &str = "coroutine_init: assertion 'co->entry != NULL' failed";
pub const YIELDTO_EXITED: &str = "coroutine_yieldto: assertion '!to->exited' failed";
pub const YIELDTO_CALLER: &str = "coroutine_yieldto: assertion '!to->caller' failed";
pub const YIELDTO_NULL: &str = "coroutine_yieldto: assertion 'to != NULL' failed";
pub const YIELDTO_UNINIT: &str = "coroutine_yieldto: assertion 'to is initialised' failed";
pub const SWAP_FROM: &str = "coroutine_swap: assertion 'from == coroutine_self()' failed";
pub const SWAP_NULL: &str = "coroutine_swap: assertion 'to != NULL' failed";
pub const SWAP_UNINIT: &str = "coroutine_swap: assertion 'to is initialised' failed";
pub const SWAP_EXITED: &str = "coroutine_swap: assertion '!to->exited' failed";
pub const SWAP_SELF: &str = "coroutine_swap: assertion 'to != from' failed";
pub const SWAP_OTHER_MAIN: &str = "coroutine_swap: assertion '!to->caller' failed";
pub const RELEASE_NULL: &str = "coroutine_release: assertion 'co != NULL' failed";
pub const RELEASE_UNINIT: &str = "coroutine_release: assertion 'co is initialised' failed";
pub const RELEASE_MAIN: &str = "coroutine_release: assertion '!coroutine_is_main(co)' failed";
pub const RELEASE_BUSY: &str = "coroutine_release: assertion '!co->caller' failed";
pub const YIELD_FROM: &str = "ucoro_yield_from: assertion 'co == coroutine_self()' failed";
pub const CC_INIT_NULL: &str = "cc_init: assertion 'cc != NULL' failed";
pub const CC_INIT_NO_ENTRY: &str = "cc_init: assertion 'cc->entry != NULL' failed";
pub const CC_SWAP_FROM_NULL: &str = "cc_swap: assertion 'from != NULL' failed";
pub const CC_SWAP_TO_NULL: &str = "cc_swap: assertion 'to != NULL' failed";
pub const CC_SWAP_UNINIT: &str = "cc_swap: assertion 'to is initialised' failed";
pub const CC_SWAP_EXITED: &str = "cc_swap: assertion '!to->exited' failed";
pub const CC_SWAP_RUNNING: &str = "cc_swap: assertion 'to is not running' failed";
/// The fatal message of `coroutine_yield` with no caller, on stderr directly
/// (not through the handler).
pub const YIELD_TO_NO_ONE: &str = "Co-routine is yielding to no one\n";

/// Records its drop in a shared counter (the tests' probe that a value's
/// destructor ran, and how often).
pub struct DropCounter(pub std::rc::Rc<std::cell::Cell<u32>>);

impl Drop for DropCounter {
    fn drop(&mut self) {
        self.0.set(self.0.get() + 1);
    }
}

/// The text of a panic payload (`&str` or `String`), or "".
pub fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_default()
}

/// The thread's panic state is as it was: not panicking, and a `Mutex`
/// locked and unlocked now is not poisoned.
pub fn assert_panic_state_clean() {
    assert!(
        !std::thread::panicking(),
        "std::thread::panicking() must be false"
    );
    let m = std::sync::Mutex::new(0);
    drop(m.lock().unwrap());
    assert!(
        !m.is_poisoned(),
        "a Mutex unlocked now must not be poisoned"
    );
}

/// Whether this build switches with one of the library's assembly switches
/// (the default where there is one), rather than glibc's `_longjmp` or
/// `swapcontext` (`UCORO_SWITCH=setjmp|ucontext`): only those link
/// backtraces and frame-pointer chains into the resumer and carry unwind
/// information at every instruction.
pub fn switch_is_assembly() -> bool {
    // SAFETY: ucoro_switch_mode returns a static NUL-terminated string.
    let mode = unsafe { std::ffi::CStr::from_ptr(ucoro::sys::ucoro_switch_mode()) };
    mode.to_string_lossy().ends_with(" assembly")
}
