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
//!   caller of `resume`.
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
//! `_Unwind_Backtrace` walk a coroutine's stack up to where it began. The
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
//! ## Safety model
//!
//! A panic inside a coroutine is caught before it reaches the C frames and
//! resumed in the caller of [`Coroutine::resume`]. Dropping a suspended
//! coroutine unwinds its stack so destructors run; user code that catches
//! that unwind and suspends again does not keep the coroutine alive (it is
//! leaked instead, which is safe). [`Coroutine`] is not `Send`: see its docs.
#![warn(missing_docs)]

#[cfg(feature = "bench-modes")]
#[doc(hidden)]
#[path = "bench_modes.rs"]
pub mod __bench_modes;
mod coroutine;
mod error;
mod generator;
pub mod sys;

pub use coroutine::{Builder, Coroutine, CoroutineResult, Yielder};
pub use error::Error;
pub use generator::Generator;
