//! # ucoro: stackful coroutines for C and Rust
//!
//! A coroutine is a function that runs on a stack of its own and can pause
//! in the middle ([`Yielder::suspend`]) and be resumed where it paused
//! ([`Coroutine::resume`]). One thread can run many of them, handing work
//! from a producer to a consumer without locks, or yielding values to a
//! loop like a Python generator.
//!
//! ucoro is two things over one C library:
//!
//! - a drop-in replacement for the coroutine API of spice-gtk and gtk-vnc
//!   (`coroutine_init`, `coroutine_yieldto`, `coroutine_yield`,
//!   `coroutine_self`), in `csrc/`, usable from C without Rust; its raw
//!   bindings are in [`sys`];
//! - a safe Rust API on top: [`Coroutine`], [`Yielder`], [`Generator`],
//!   [`Builder`], with typed [`Error`]s and panics that propagate to the
//!   caller of `resume`; coroutines that borrow local data
//!   ([`scope`](scope())), deep recursion on a fresh stack ([`on_stack`]),
//!   and futures awaited from synchronous code ([`Fiber`]).
//!
//! ```
//! use ucoro::{Coroutine, CoroutineResult, Generator};
//!
//! // A generator, like Python's `yield`.
//! let fib: Vec<u64> = Generator::new(|y| {
//!     let (mut a, mut b) = (0, 1);
//!     loop {
//!         y.suspend(a);
//!         (a, b) = (b, a + b);
//!     }
//! })
//! .take(8)
//! .collect();
//! assert_eq!(fib, [0, 1, 1, 2, 3, 5, 8, 13]);
//!
//! // A coroutine that takes inputs and returns a result.
//! let mut sum = Coroutine::new(|y, mut x: i32| {
//!     let mut total = 0;
//!     while x != 0 {
//!         total += x;
//!         x = y.suspend(total);
//!     }
//!     format!("total {total}")
//! });
//! for i in 1..=3 {
//!     println!("{:?}", sum.resume(i).unwrap());
//! }
//! println!("{:?}", sum.resume(0).unwrap());
//! ```
//!
//! prints
//!
//! ```text
//! Yield(1)
//! Yield(3)
//! Yield(6)
//! Return("total 6")
//! ```
//!
//! ## Coroutines that borrow: `scope`
//!
//! A [`Coroutine`]'s closure is `'static`. Inside [`scope`](scope()), the
//! closures, inputs and yields of [`Scope::coroutine`] and
//! [`Scope::generator`] may borrow anything that outlives the call, as
//! threads of `std::thread::scope` do: the scope does not return before
//! every coroutine it made has finished or been unwound, even one whose
//! handle was forgotten (the proof is in [`scope`](scope())'s docs).
//!
//! ```
//! let words = vec!["stackful", "coroutines", "borrow"];
//! let mut longest = "";
//! ucoro::scope(|s| {
//!     // Iterates a borrowed Vec...
//!     let gen = s.generator(|y| words.iter().for_each(|w| y.suspend(*w)));
//!     // ...and writes to a borrowed variable.
//!     let mut judge = s.coroutine(|y, mut w: &'static str| loop {
//!         if w.len() > longest.len() {
//!             longest = w;
//!         }
//!         w = y.suspend(());
//!     });
//!     for w in gen {
//!         println!("{w}");
//!         judge.resume(w).unwrap();
//!     }
//! });
//! println!("longest: {longest}");
//! ```
//!
//! prints
//!
//! ```text
//! stackful
//! coroutines
//! borrow
//! longest: coroutines
//! ```
//!
//! ## Deep recursion: `on_stack`
//!
//! [`on_stack`] runs a closure to its end on a fresh guarded stack of the
//! size asked for, so a recursion deeper than the thread's stack does not
//! overflow it; only the pages it touches cost memory.
//!
//! ```
//! fn depth(n: u64) -> u64 {
//!     let frame = std::hint::black_box([n; 32]);
//!     if n == 0 { 0 } else { 1 + depth(n - 1) + frame[0] - n }
//! }
//! // Some 30 MiB of frames: more than a main thread's 8 MiB.
//! let levels = ucoro::on_stack(128 << 20, || depth(100_000));
//! println!("recursed {levels} levels");
//! ```
//!
//! prints
//!
//! ```text
//! recursed 100000 levels
//! ```
//!
//! ## Futures from synchronous code: `Fiber`
//!
//! A [`Fiber`] is a future whose body is ordinary synchronous code on its
//! own stack; [`Awaiter::block_on`] awaits a future from anywhere in it,
//! suspending the fiber (its poll returns `Pending`) until the future is
//! ready. It runs under any executor that keeps it on one thread.
//!
//! ```
//! use std::future::Future;
//! use std::pin::Pin;
//! use std::task::{Context, Poll};
//!
//! /// Ready after being polled `n` more times (waking itself meanwhile).
//! struct Later(u32, &'static str);
//! impl Future for Later {
//!     type Output = &'static str;
//!     fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<&'static str> {
//!         if self.0 == 0 {
//!             return Poll::Ready(self.1);
//!         }
//!         self.0 -= 1;
//!         cx.waker().wake_by_ref();
//!         Poll::Pending
//!     }
//! }
//!
//! // A callback-style parser that cannot be `async`, awaiting its input.
//! fn parse_two(a: &ucoro::Awaiter) -> String {
//!     let first = a.block_on(Later(2, "hello"));
//!     let second = a.block_on(Later(1, "world"));
//!     format!("{first}, {second}")
//! }
//!
//! let greeting = futures_executor::block_on(ucoro::Fiber::new(|a| parse_two(a)));
//! println!("{greeting}");
//! ```
//!
//! prints
//!
//! ```text
//! hello, world
//! ```
//!
//! ## Smaller conveniences
//!
//! [`CoroutineResult`] has [`as_yield`](CoroutineResult::as_yield) /
//! [`as_return`](CoroutineResult::as_return) (borrowing) and
//! [`into_yield`](CoroutineResult::into_yield) /
//! [`into_return`](CoroutineResult::into_return) (by value, what
//! corosensei calls `as_*`); [`Generator`] is a
//! [`FusedIterator`](std::iter::FusedIterator); [`set_overflow_reporting`]
//! turns the stack-overflow report off and on.
//!
//! ```
//! use ucoro::Coroutine;
//!
//! ucoro::set_overflow_reporting(true); // the default
//! let mut co = Coroutine::new(|y, x: u32| y.suspend(x + 1) * 2);
//! println!("{:?}", co.resume(1).unwrap().as_yield());
//! println!("{:?}", co.resume(5).unwrap().into_return());
//! ```
//!
//! prints
//!
//! ```text
//! Some(2)
//! Some(10)
//! ```
//!
//! ## Platforms
//!
//! | target | default switch | how CI tests it |
//! |---|---|---|
//! | x86_64, glibc | x86_64 assembly | natively: the Rust and C suites in every mode, under ASan, TSan and Valgrind |
//! | x86_64, musl | x86_64 assembly | C suite built with `musl-gcc`, default and `_setjmp` modes |
//! | aarch64 (arm64) | aarch64 assembly | C suite under qemu-user, every mode |
//! | i686 (i386) | i386 assembly | C suite and Rust tests under qemu-user, every mode (Rust: default) |
//! | armhf (ARMv7, hard-float) | armhf assembly | C suite under qemu-user, every mode |
//! | ppc64el (ELFv2) | ppc64le assembly | C suite under qemu-user, every mode |
//! | s390x | s390x assembly | C suite and Rust tests under qemu-user, every mode (Rust: default) |
//! | riscv64 (lp64d) | riscv64 assembly | C suite under qemu-user, every mode |
//! | armel | `_setjmp`/`_longjmp`; stacks entered by an assembly stub | C suite under qemu-user, every mode |
//! | mips64el | `_setjmp`/`_longjmp`; stacks entered with `makecontext` | C suite under qemu-user, every mode |
//! | other Linux targets | `_setjmp`/`_longjmp`; stacks entered with `makecontext` | not tested |
//!
//! Each assembly switch saves exactly the registers its ABI makes
//! callee-saved and carries unwind information, so debuggers and
//! unwinders walk a coroutine's stack and on into whoever resumed it
//! (see [Debugging](#debugging)). The
//! C library can also be built with `-DUCORO_SWITCH_SETJMP` (the
//! portable path everywhere) or `-DUCORO_SWITCH_UCONTEXT` (strict mode:
//! `swapcontext` on every switch, so each coroutine keeps its own signal
//! mask and floating-point environment); the Rust build takes
//! `UCORO_SWITCH=setjmp` or `UCORO_SWITCH=ucontext` from the environment.
//! In the other modes floating-point control state (MXCSR, x87 control
//! word, FPCR, FPSCR, fcsr) is per thread, not per coroutine. What the
//! portable path needs from the libc: `_setjmp`/`_longjmp` only, where an
//! entry stub exists (every target above but mips64el: so musl works), and
//! `getcontext`/`makecontext`/`setcontext` elsewhere; strict mode needs a
//! working `swapcontext` (glibc; musl has none).
//!
//! Every stack has a 64 KiB guard region below it (`MADV_GUARD_INSTALL` on
//! Linux ≥ 6.13, `mprotect` before that), so an overflow faults instead of
//! corrupting memory, and the fault is reported as
//! `ucoro: stack overflow in coroutine 0x… (stack N bytes)`.
//!
//! The guard catches an overflow only if the code touches it: a frame
//! larger than 64 KiB can step over it unless the compiler probes each page
//! of large frames. Rust does that by default on x86_64 and aarch64 (stack
//! probes), except under `-Zsanitizer=address`, which turns them off; C code
//! that runs on coroutine stacks needs `-fstack-clash-protection` (GCC ≥ 8,
//! Clang ≥ 11; on by default in some distributions' compilers, not in
//! upstream GCC). Without probes, keep frames well under 64 KiB.
//!
//! ## Building
//!
//! The crate compiles its C library (`csrc/`) with the [`cc`](https://docs.rs/cc) crate, so a
//! build needs a C11 compiler (`gcc` or `clang`) and nothing else: the raw
//! bindings in [`sys`] are committed, generated from the C header. Linux
//! only, on the architectures in the table above; any other target fails
//! with a `compile_error!` naming this.
//!
//! Cargo features, all off by default:
//!
//! | feature | what it does |
//! |---|---|
//! | `bindgen` | regenerates the raw bindings from `csrc/include/ucoro/coroutine.h` with `bindgen` at build time (needs libclang: Debian's `libclang-dev`); the result must equal the committed `src/sys/bindings.rs` |
//! | `bench-modes` | benchmarks only: also builds the C library in its `_setjmp` and `swapcontext` modes, symbols renamed, so one benchmark run compares the three switches |
//!
//! The environment variable `UCORO_SWITCH=setjmp|ucontext` picks the
//! portable or strict switch at build time (see the table above).
//!
//! Build scripts of crates that depend on this one (`links = "ucoro"`) find
//! the C headers in `DEP_UCORO_INCLUDE`: add it to the include path and use
//! `#include <ucoro/coroutine.h>`, or add its `ucoro` subdirectory and use
//! `#include "coroutine.h"`, as with the installed library's pkg-config
//! flags. The C library itself is already linked into the crate.
//!
//! ## What the library does to the process
//!
//! A library that a plugin or a host program links should say what it
//! changes outside its own calls. ucoro:
//!
//! - **installs a `SIGSEGV` and `SIGBUS` handler** when the first coroutine
//!   is created, to report a stack overflow in a guard region; every other
//!   fault goes to the handler that was installed before it (Rust's own,
//!   for thread stacks). A program that installs its own handler afterwards
//!   owns fault reporting from then on. To keep ucoro's out, set the
//!   environment variable `UCORO_OVERFLOW_REPORTING=0` before the first
//!   coroutine, or call [`set_overflow_reporting`]`(false)` (the safe
//!   form of [`sys::ucoro_set_overflow_reporting`], which also puts the
//!   previous handler back);
//! - **gives each thread that creates a coroutine an alternate signal
//!   stack** (`sigaltstack`, 64 KiB), unless the thread
//!   already has one; it is freed when the thread exits;
//! - keeps its per-thread state in **initial-exec TLS** (a few words): a
//!   program that `dlopen`s the shared C library late needs the libc's
//!   static TLS reserve, which glibc sizes for such libraries;
//! - registers **`pthread_atfork` handlers** (so a child can use coroutines
//!   after a `fork` from any thread) and two thread-exit destructors;
//! - the shared C library (`libucoro.so`, not this crate, which links its C
//!   statically) is linked **`-z nodelete`**: `dlclose` leaves it loaded,
//!   since its handler and thread-exit destructors may still run.
//!
//! ## What a coroutine costs
//!
//! - **Address space:** its stack, rounded up to a size class (whole pages,
//!   then at most a quarter more: four classes per power of two; the
//!   default 16 MiB is one), plus the 64 KiB guard.
//! - **Memory:** only the pages it touches, and their page tables: about
//!   4 KiB + 4 KiB for a suspended coroutine that used one page.
//! - **Commit charge** under strict overcommit (`vm.overcommit_memory=2`,
//!   which ignores `MAP_NORESERVE`): the same as its address space, stack
//!   plus guard, as one mmap per stack would be charged.
//! - **Slack** the library holds beyond the stacks in use (address space,
//!   and commit charge under strict overcommit): per size class in use, the
//!   untouched tail of its newest slab (stacks come from slabs that start
//!   at four stacks and double up to 1 GiB, 64 MiB on 32-bit); at most two
//!   empty slabs; each thread's pool of up to eight freed stacks (128 MiB in
//!   all, two stacks on 32-bit); and freed stacks in slabs where another
//!   stack is still in use.
//! - **Reuse:** each thread keeps up to four coroutines of this API whose
//!   closures have ended, stack and all (with the pages their last runs
//!   touched), and starts the next coroutines made with the same stack size
//!   on them: create-run-drop in a loop rearms a stack instead of taking
//!   one from the pool. They are freed when the thread exits or when a
//!   stack cannot be allocated. Sanitizer builds always take fresh stacks.
//!
//! When the system refuses a mapping (`RLIMIT_AS`, `RLIMIT_DATA`, strict
//! overcommit, a full address space), the library gives back the calling
//! thread's pool, the empty slabs and the slab tails, and retries with
//! smaller slabs down to one stack: creating a coroutine fails only where
//! one mmap of its stack would fail too (other threads' pools and freed
//! stacks amid live ones aside). Memory goes back when coroutines end (the
//! four kept for reuse aside): a freed stack gives back its pages, and an
//! emptied slab is unmapped, which also frees its page tables.
//!
//! ```
//! // 100,000 bytes: 25 pages, in the class of 1.75 x 64 KiB.
//! let co = ucoro::Builder::new()
//!     .stack_size(100_000)
//!     .build(|_: &ucoro::Yielder<(), ()>, ()| ())
//!     .unwrap();
//! assert!((100_000..=128 << 10).contains(&co.stack_size()));
//! ```
//!
//! ## Debugging
//!
//! A backtrace taken inside a coroutine goes on past the coroutine's first
//! frame into the caller of [`Coroutine::resume`], through every level of
//! nesting, to `main` or the thread's start: [`std::backtrace::Backtrace`],
//! the backtrace of a panic inside a coroutine (`RUST_BACKTRACE=1`), gdb
//! and other unwinders all show the resume site. That is with the assembly
//! switch of the platforms above; with `UCORO_SWITCH=setjmp|ucontext` a
//! backtrace ends at the coroutine's first frame. On x86_64 and aarch64,
//! frame-pointer walkers (`perf record --call-graph fp`) follow into the
//! resumer as well; `perf --call-graph dwarf` stops at the first frame (it
//! only has a copy of the sampled stack).
//!
//! ```
//! use std::backtrace::Backtrace;
//! use ucoro::{Coroutine, CoroutineResult};
//!
//! let mut co: Coroutine<(), (), String> =
//!     Coroutine::new(|_, ()| Backtrace::force_capture().to_string());
//! if let Ok(CoroutineResult::Return(trace)) = co.resume(()) {
//!     // The closure's frames, the library's start stub, then this
//!     // function's and its callers'.
//!     println!("{trace}");
//! }
//! ```
//!
//! For gdb, the crate carries the C library's extension,
//! `csrc/gdb/ucoro-gdb.py` in its source (under Cargo's registry:
//! `~/.cargo/registry/src/*/ucoro-<version>/csrc/gdb/ucoro-gdb.py`; build
//! scripts of crates that depend on this one find its path in
//! `DEP_UCORO_GDB_SCRIPT`). A Rust program links ucoro statically, so gdb
//! does not load it by itself: `source` it. It adds `ucoro list` (every
//! live coroutine: its address, state, entry, stack, caller),
//! `ucoro bt ADDRESS` (a suspended coroutine's backtrace, without resuming
//! it) and `ucoro gcore FILE` (a core file with the coroutine stacks,
//! which plain `gcore` loses), on a live process or a core file; the
//! README's Debugging section shows a session.
//!
//! ```text
//! $ gdb -iex 'source ~/.cargo/registry/src/index.crates.io-*/ucoro-1.0.0/csrc/gdb/ucoro-gdb.py' ./my-program
//! (gdb) ucoro list
//! ```
//!
//! ## Safety model
//!
//! A panic inside a coroutine is caught before it reaches the C frames and
//! resumed in the caller of [`Coroutine::resume`]. Dropping a suspended
//! coroutine unwinds its stack so destructors run; user code that catches
//! that unwind and suspends again does not keep the coroutine alive (it is
//! leaked instead, which is safe), and the thread's panic state
//! (`std::thread::panicking()`) is left as it was, whatever the closure's
//! destructors do. The closure, the input type and the yield type are
//! `'static`, so a stack that is leaked while suspended never points to
//! anything that could be freed before it; the proof, and the one thing no
//! stackful coroutine library for Rust can rule out (thread-locals of an
//! exiting thread), are in [`Coroutine`]'s docs. [`Coroutine`] is not
//! `Send`: see its docs too. With `panic = "abort"`, a dropped suspended
//! coroutine is leaked instead of unwound.
//!
//! Scoped coroutines borrow, so their stacks may not be leaked: where a
//! suspended one cannot be unwound (`panic = "abort"`, an unwind caught
//! and followed by another suspend, a suspend during a panic that is still
//! in flight when its scope ends), the process aborts with a message; see
//! [`scope`](scope())'s proof. A [`Fiber`] is a coroutine underneath and
//! follows the same rules; a pending one is unwound when dropped.
#![warn(missing_docs)]

#[cfg(not(target_os = "linux"))]
compile_error!(
    "ucoro supports Linux only: its stacks, guard pages and overflow reporting \
     use Linux system calls (mmap, madvise, sigaltstack)"
);

mod arch;
mod coroutine;
mod error;
mod fiber;
mod generator;
mod on_stack;
mod overflow;
mod scope;
mod stack_cache;
pub mod sys;
mod unwind;

pub use coroutine::{Builder, Coroutine, CoroutineResult, Yielder};
pub use error::Error;
pub use fiber::{Awaiter, Fiber};
pub use generator::Generator;
pub use on_stack::on_stack;
pub use overflow::set_overflow_reporting;
pub use scope::{scope, Scope, ScopedCoroutine, ScopedGenerator};
